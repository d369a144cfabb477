#!/usr/bin/env bash
# health_ratio.sh: Evaluate against the same server's grpc.health.v1.Health/Check, both driven by
# the neutral h2load driver (../shared/peers/h2grpc.sh, 16 connections x 8 streams), server and
# driver pinned to different cores. Evaluate sends one fixed body, so after the first call it is
# answered from the idempotency cache: the ratio is what agate's request path adds to gRPC's.
#
#   bench/health_ratio.sh [BUILD_DIR] [REQUESTS]        (defaults: build, 300000)
#
# agate as it ships (SQLite store and decision log in a temporary data dir), 3 rounds alternating
# the two methods; prints each round and the median ratio.
set -euo pipefail
build=${1:-build}
requests=${2:-300000}
cd "$(dirname "$0")/.."
peers=../shared/peers/h2grpc.sh
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
server_cpu=() load_cpu=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpu=(taskset -c 0) load_cpu=(taskset -c 1)
fi
"${server_cpu[@]}" "$build/server/agate-server" --matrix deploy/examples/escalation-matrix.yaml \
  --listen 127.0.0.1:0 --data-dir "$work/data" >/dev/null 2>"$work/agate.log" &
for _ in $(seq 100); do grep -q 'listening on' "$work/agate.log" && break; sleep 0.1; done
target=$(grep -m1 'listening on 127' "$work/agate.log" | sed 's/.*listening on //; s/ .*//')
printf 'request_id: "ratio" tenant_id: "t1" workflow_id: "support" item_id: "ticket-1" action { type: "send_reply" customer_facing: true } model { confidence: 0.93 }' |
  protoc --encode=agate.v1.EvaluateRequest -I proto proto/agate/v1/agate.proto >"$work/evaluate.bin"
: >"$work/health.bin"
rps() {  # method body
  H2GRPC_QUIET=1 H2GRPC_ALLOW_ERROR=0 "${load_cpu[@]}" bash "$peers" "$target" "$1" "$2" \
    -n "$requests" -c 16 -m 8 -t 1 | sed -n 's/^h2grpc: elapsed_s=[^ ]* rps=//p'
}
rps /agate.v1.Agate/Evaluate "$work/evaluate.bin" >/dev/null  # warm up
ratios=()
for round in 1 2 3; do
  h=$(rps /grpc.health.v1.Health/Check "$work/health.bin")
  e=$(rps /agate.v1.Agate/Evaluate "$work/evaluate.bin")
  r=$(/usr/bin/python3 -c "print(f'{$e / $h:.3f}')")
  ratios+=("$r")
  echo "health_ratio: round $round: Health/Check $h req/s, Evaluate (replayed) $e req/s, ratio $r"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print "health_ratio: median " a[int((NR+1)/2)]}'
