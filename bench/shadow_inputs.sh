# shadow_inputs.sh: sourced by the shadow benchmarks (shadow_live.sh, shadow_callgrind.sh) with
# $work set: writes the candidate matrix (the bundled one with the refund limit lowered from 250 to
# 100) to $work/candidate.yaml, and the two mixes to $work/allow.jsonl (every request ALLOW under
# both matrices) and $work/escalate.jsonl (a third HOLD, a third BLOCK, a third a $150 refund the
# live matrix allows and the candidate blocks).
sed '/id: refund-over-limit/,/when:/s/> 250.0/> 100.0/' deploy/examples/escalation-matrix.yaml \
  >"$work/candidate.yaml"
grep -q '> 100.0' "$work/candidate.yaml"
cat >"$work/allow.jsonl" <<'MIX'
{"weight": 1, "expect": "VERDICT_ALLOW", "request": {"request_id": "allow", "tenant_id": "t1", "workflow_id": "support", "item_id": "ticket-1", "action": {"type": "send_reply", "customer_facing": true}, "model": {"confidence": 0.93}}}
MIX
cat >"$work/escalate.jsonl" <<'MIX'
{"weight": 1, "expect": "VERDICT_HOLD", "request": {"request_id": "hold", "tenant_id": "t1", "workflow_id": "support", "item_id": "ticket-2", "action": {"type": "send_reply", "customer_facing": true}, "model": {"confidence": 0.5}}}
{"weight": 1, "expect": "VERDICT_BLOCK", "request": {"request_id": "block", "tenant_id": "t1", "workflow_id": "refunds", "item_id": "order-7", "action": {"type": "refund", "amount": 400}}}
{"weight": 1, "expect": "VERDICT_ALLOW", "request": {"request_id": "refund150", "tenant_id": "t1", "workflow_id": "refunds", "item_id": "order-8", "action": {"type": "refund", "amount": 150}}}
MIX
