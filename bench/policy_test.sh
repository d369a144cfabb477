#!/usr/bin/env bash
# policy_test.sh: `agate test` on generated policy tests of the bundled matrix (issue 21's target:
# 10,000 test cases in under 2 s). The file holds CASES tests: 80% table rows (refunds around the
# $250 limit), 15% single requests (customer-facing replies around the 0.72 confidence
# threshold), 5% sequences (a refund blocked, approved, redeemed: four steps each).
#
#   bench/policy_test.sh [BUILD_DIR] [CASES]        (defaults: build, 10000)
#
# Prints the file's size, then the wall time of 3 runs and their median.
set -euo pipefail
build=${1:-build}
cases=${2:-10000}
cd "$(dirname "$0")/.."
source bench/bench_env.sh
cp deploy/examples/escalation-matrix.yaml "$work/"
python3 - "$cases" >"$work/generated_test.yaml" <<'PY'
import sys
n = int(sys.argv[1])
rows, singles = n * 80 // 100, n * 15 // 100
sequences = n - rows - singles
out = ["matrix: escalation-matrix.yaml",
       "defaults: {tenant_id: t1, workflow_id: refunds, model: {confidence: 0.95}}",
       "tests:",
       "  - name: refunds",
       "    base: {action: {type: refund}}",
       "    rows:"]
for i in range(rows):
    amount = 200 + i % 100
    verdict = "BLOCK" if amount > 250 else "ALLOW"
    out.append(f"      - {{name: r{i}, request: {{item_id: i{i}, action: {{amount: {amount}}}}}, "
               f"expect: {{verdict: {verdict}}}}}")
for i in range(singles):
    confidence = 0.60 + (i % 25) / 100
    verdict = "HOLD" if confidence < 0.72 else "ALLOW"
    out.append(f"  - name: reply {i}")
    out.append(f"    request: {{item_id: t{i}, action: {{type: send_reply, customer_facing: true}}, "
               f"model: {{confidence: {confidence:.2f}}}}}")
    out.append(f"    expect: {{verdict: {verdict}}}")
for i in range(sequences):
    out += [f"  - name: approval {i}",
            "    steps:",
            f"      - {{name: ask, request: {{item_id: o{i}, action: {{type: refund, amount: 400}}}}, "
            "expect: {verdict: BLOCK, lane: financial}}",
            "      - {at: +5m, acknowledge: {case: ask, decision: APPROVE, principal: finance-approver}}",
            "      - {redeem: ask}",
            "      - {redeem: ask, expect: {verdict: BLOCK}}"]
print("\n".join(out))
PY
echo "$cases tests, $(wc -c <"$work/generated_test.yaml") bytes"
times=()
for round in 1 2 3; do
  start=$(date +%s.%N)
  "$build/client/agate" test "$work/generated_test.yaml" >"$work/out.txt"
  end=$(date +%s.%N)
  t=$(echo "$end - $start" | bc)
  times+=("$t")
  echo "round $round: ${t}s ($(tail -n +1 "$work/out.txt" | grep -m1 passed))"
done
printf '%s\n' "${times[@]}" | sort -n | sed -n 2p | sed 's/^/median: /; s/$/ s/'
