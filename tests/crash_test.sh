#!/usr/bin/env bash
# crash_test.sh BUILD_DIR [ITERATIONS]
#
# Nothing a client was told is lost on kill -9. Each iteration starts agate-server on one data
# dir, drives escalations (every request opens a BLOCK case) and acknowledgements at it with the
# agate CLI, kills the server with SIGKILL at a random moment, and restarts it. At the end every
# case id a client received must exist, in the state the client was last told (APPROVED after a
# confirmed ack; OPEN or APPROVED when an ack was sent but its answer was lost to the kill; OPEN
# otherwise); answered requests sent again must be replayed with the same decision; and the
# decision log's hash chain must verify. Prints the counts; exits 1 on any loss.
set -euo pipefail

build=$(cd "${1:?usage: crash_test.sh BUILD_DIR [ITERATIONS]}" && pwd)
iterations=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
server=$build/server/agate-server
cli=$build/client/agate
python=/usr/bin/python3
work=$(mktemp -d /tmp/agate-crash-XXXXXX)
data=$work/data
sock=$work/agate.sock
addr=unix:$sock
pid=

cleanup() {
  touch "$work/stop"
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "crash_test: FAIL: $*" >&2
  echo "crash_test: server log (last 20 lines):" >&2
  tail -n 20 "$work/server.log" >&2 || true
  exit 1
}

start_server() {
  "$server" --matrix "$root/deploy/examples/escalation-matrix.yaml" --listen "$addr" \
    --data-dir "$data" --log-level warn 2>>"$work/server.log" &
  pid=$!
  for _ in $(seq 300); do
    if "$cli" stats --server "$addr" >/dev/null 2>&1; then return 0; fi
    kill -0 "$pid" 2>/dev/null || fail "agate-server exited at start"
    sleep 0.05
  done
  fail "agate-server did not answer within 15 s"
}

# requests I: escalations with unique ids and items, until the stop file appears.
requests() {
  local n=0
  while [ ! -e "$work/stop" ]; do
    n=$((n + 1))
    printf '{"request_id":"c%s-%s","tenant_id":"t1","workflow_id":"wf%s","item_id":"item-%s-%s","action":{"type":"refund","amount":400}}\n' \
      "$1" "$n" "$((n % 5))" "$1" "$n"
    sleep 0.004
  done
}

# acks I: approves cases answered in earlier iterations; logs each attempt before sending it
# and each confirmation after the answer.
acks() {
  local id
  for id in $(cat "$work"/open.* 2>/dev/null | shuf -n 200 2>/dev/null || true); do
    [ -e "$work/stop" ] && break
    echo "$id" >>"$work/ack-attempted"
    if "$cli" ack --server "$addr" --case "$id" --decision approve --approver finance-approver \
      --timeout 1s >/dev/null 2>&1; then
      echo "$id" >>"$work/ack-confirmed"
    fi
  done
}

touch "$work/ack-attempted" "$work/ack-confirmed"
for i in $(seq "$iterations"); do
  rm -f "$work/stop"
  start_server
  (requests "$i" | "$cli" eval --server "$addr" --timeout 1s >"$work/out.$i" 2>/dev/null) &
  load=$!
  acks &
  ackers=$!
  # Kill at a random moment between 0.2 s and 1.2 s into the load.
  sleep "0.$((RANDOM % 10 + 2))"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  touch "$work/stop"
  wait "$load" "$ackers" 2>/dev/null || true
  # Case ids this iteration's client was told about (answers that did not fail closed).
  "$python" - "$work/out.$i" >"$work/open.$i" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("case_id") and not r.get("failed_closed"):
        print(r["case_id"])
EOF
  echo "crash_test: iteration $i: killed after $(wc -l <"$work/out.$i") answers, $(wc -l <"$work/open.$i") cases received"
done

start_server
"$cli" cases --server "$addr" --all >"$work/cases.jsonl"
# Replays: every answered request of the first iterations, sent again, must get its decision.
"$python" - "$work" "$iterations" >"$work/replay-in.jsonl" <<'EOF'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
with open(f"{work}/replay-want.txt", "w") as want:
    for i in range(1, min(n, 5) + 1):
        for k, line in enumerate(open(f"{work}/out.{i}")):
            r = json.loads(line)
            if r.get("case_id") and not r.get("failed_closed"):
                j = k + 1
                print(json.dumps({"request_id": f"c{i}-{j}", "tenant_id": "t1",
                                  "workflow_id": f"wf{j % 5}", "item_id": f"item-{i}-{j}",
                                  "action": {"type": "refund", "amount": 400}}))
                want.write(f"{r['decision_id']} {r['case_id']}\n")
EOF
"$cli" eval --server "$addr" <"$work/replay-in.jsonl" >"$work/replay-out.jsonl"
"$cli" verify-log "$data/decisions" >"$work/verify.txt" || fail "decision log: $(cat "$work/verify.txt")"

"$python" - "$work" "$iterations" <<'EOF' || fail "see above"
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
states = {}
for line in open(f"{work}/cases.jsonl"):
    c = json.loads(line)
    states[c["id"]] = c["state"]
received = [l.strip() for i in range(1, n + 1) for l in open(f"{work}/open.{i}") if l.strip()]
attempted = {l.strip() for l in open(f"{work}/ack-attempted")}
confirmed = {l.strip() for l in open(f"{work}/ack-confirmed")}
lost, wrong = [], []
for cid in received:
    state = states.get(cid)
    if state is None:
        lost.append(cid)
    elif cid in confirmed:
        if state != "CASE_STATE_APPROVED":
            wrong.append((cid, state, "APPROVED"))
    elif cid in attempted:
        if state not in ("CASE_STATE_OPEN", "CASE_STATE_APPROVED"):
            wrong.append((cid, state, "OPEN or APPROVED"))
    elif state != "CASE_STATE_OPEN":
        wrong.append((cid, state, "OPEN"))
# Replays: the decision first answered, marked replayed.
want = [l.split() for l in open(f"{work}/replay-want.txt")]
replays = [json.loads(l) for l in open(f"{work}/replay-out.jsonl")]
bad_replays = [r for r, (decision, case) in zip(replays, want)
               if not r.get("replayed") or r.get("decision_id") != decision or
               r.get("case_id") != case]
if len(replays) != len(want):
    bad_replays.append({"error": f"{len(replays)} replay answers for {len(want)} requests"})
print(f"crash_test: {n} kill -9 restarts; {len(received)} case ids received, "
      f"{len(states)} cases in the store; {len(confirmed)} acks confirmed, "
      f"{len(attempted) - len(confirmed)} unconfirmed; {len(replays)} replays")
for cid in lost[:10]:
    print(f"crash_test: LOST case {cid}")
for cid, state, want in wrong[:10]:
    print(f"crash_test: case {cid} is {state}, expected {want}")
for r in bad_replays[:10]:
    print(f"crash_test: replay not the first decision: {r}")
if not received:
    print("crash_test: no case was received: the load did not run")
    sys.exit(1)
sys.exit(1 if lost or wrong or bad_replays else 0)
EOF
echo "crash_test: $(cat "$work/verify.txt" | head -1)"
echo "crash_test: PASS"
