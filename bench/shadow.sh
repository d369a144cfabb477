#!/usr/bin/env bash
# shadow.sh: offline shadow throughput: `agate shadow` over REQUESTS generated requests (default
# 1,000,000) in the eval input format, the bundled matrix against a candidate that adds one
# policy trigger (refunds over $100). The mix: replies around the confidence threshold, refunds
# around both limits, syncs reporting retries, over 1,000 tenants and 10,000 items. Nobody
# acknowledges offline, so cases stay open and joins make them grow: with 50,000 items the
# candidate's case store reached its 512 MiB budget of open cases and refused a tenth of them.
#
#   bench/shadow.sh [BUILD_DIR] [REQUESTS]        (defaults: build, 1000000)
#
# Prints the input's size, the wall time and requests per second (each request is decided
# twice: once per matrix), then the report.
set -euo pipefail
build=${1:-build}
requests=${2:-1000000}
cd "$(dirname "$0")/.."
source bench/bench_env.sh
cp deploy/examples/escalation-matrix.yaml "$work/candidate.yaml"
cat >>"$work/candidate.yaml" <<'YAML'

  - id: refund-review
    lane: policy
    when: action.type == "refund" && action.amount > 100.0
YAML
python3 - "$requests" >"$work/requests.jsonl" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout
for i in range(n):
    head = f'{{"request_id":"r{i}","tenant_id":"t{i % 1000}","workflow_id":"w{i % 7}","item_id":"i{i % 10000}",'
    k = i % 10
    if k < 6:
        body = f'"action":{{"type":"send_reply","customer_facing":true}},"model":{{"confidence":{0.6 + (i % 40) / 100:.2f}}}}}'
    elif k < 9:
        body = f'"action":{{"type":"refund","amount":{50 + i % 400}}},"model":{{"confidence":0.95}}}}'
    else:
        body = f'"action":{{"type":"sync"}},"signals":{{"retry":1}},"model":{{"confidence":0.95}}}}'
    out.write(head + body + "\n")
PY
echo "$requests requests, $(wc -c <"$work/requests.jsonl") bytes"
start=$(date +%s.%N)
"$build/client/agate" shadow --live deploy/examples/escalation-matrix.yaml \
  --candidate "$work/candidate.yaml" --requests "$work/requests.jsonl" --span 24h >"$work/report.txt"
end=$(date +%s.%N)
echo "$end - $start" | bc | awk -v n="$requests" '{printf "%.2f s, %.0f requests/s\n", $1, n / $1}'
cat "$work/report.txt"
