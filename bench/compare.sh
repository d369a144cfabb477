#!/usr/bin/env bash
# compare.sh: agate-server (bundled matrix) against the no-op gRPC floor, same load, same run.
#
#   bench/compare.sh [BUILD_DIR] [DURATION]        (defaults: build, 10s)
#
# Starts agate-noop-server and agate-server, pins the servers to CPU 0 and the load to CPU 1
# when there are two CPUs, runs agate-load closed-loop (64 in flight) over TCP and over a Unix
# socket 3 times each, then single-client (1 in flight) for p99, and prints medians and ratios.
# Then the same throughput comparison with ../shared/peers/h2grpc.sh (a neutral h2load driver).
set -euo pipefail
build=${1:-build}
duration=${2:-10s}
cd "$(dirname "$0")/.."
. bench/bench_env.sh

wait_listening() {  # log file, count
  for _ in $(seq 100); do
    [ "$(grep -c 'listening on' "$1" 2>/dev/null || true)" -ge "$2" ] && return 0
    sleep 0.1
  done
  echo "compare: server did not start: $(cat "$1")" >&2; exit 1
}

"${server_cpu[@]}" "$build/bench/agate-noop-server" --listen 127.0.0.1:0 --listen "unix:$work/noop.sock" 2>"$work/noop.log" &
# agate as it ships: the durable store and the decision log on (in a temporary data dir).
"${server_cpu[@]}" "$build/server/agate-server" --matrix deploy/examples/escalation-matrix.yaml \
  --listen 127.0.0.1:0 --listen "unix:$work/agate.sock" --data-dir "$work/data" 2>"$work/agate.log" &
wait_listening "$work/noop.log" 2
wait_listening "$work/agate.log" 2
noop_tcp=$(grep -m1 'listening on 127' "$work/noop.log" | sed 's/.*listening on //')
agate_tcp=$(grep -m1 'listening on 127' "$work/agate.log" | sed 's/.*listening on //')

load() {  # target, concurrency -> "rps p99_us"
  "${load_cpu[@]}" "$build/bench/agate-load" --target "$1" --concurrency "$2" \
    --duration "$duration" --json 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert not d["errors"] and not d["mismatches"], d; print(d["rps"], d["latency_us"]["p99"])'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for transport in tcp unix; do
  if [ $transport = tcp ]; then n=$noop_tcp a=$agate_tcp; else n=unix:$work/noop.sock a=unix:$work/agate.sock; fi
  for c in 64 1; do
    : >"$work/noop.$transport.$c" ; : >"$work/agate.$transport.$c"
    for _ in 1 2 3; do
      load "$n" $c >>"$work/noop.$transport.$c"
      load "$a" $c >>"$work/agate.$transport.$c"
    done
    nr=$(cut -d' ' -f1 "$work/noop.$transport.$c" | median); ar=$(cut -d' ' -f1 "$work/agate.$transport.$c" | median)
    np=$(cut -d' ' -f2 "$work/noop.$transport.$c" | median); ap=$(cut -d' ' -f2 "$work/agate.$transport.$c" | median)
    printf 'compare: %-4s %3d in flight: noop %8.0f req/s p99 %7.1f us | agate %8.0f req/s p99 %7.1f us | throughput %.2fx, p99 %.2fx\n' \
      $transport $c "$nr" "$np" "$ar" "$ap" "$(/usr/bin/python3 -c "print($ar / $nr)")" "$(/usr/bin/python3 -c "print($ap / $np)")"
  done
done

peers=../shared/peers/h2grpc.sh
if [ -x "$peers" ] || [ -r "$peers" ]; then
  body="$work/allow.bin"
  printf 'request_id: "load" tenant_id: "t1" workflow_id: "support" item_id: "ticket-1" action { type: "send_reply" customer_facing: true } model { confidence: 0.93 }' |
    protoc --encode=agate.v1.EvaluateRequest -I proto proto/agate/v1/agate.proto >"$body"
  # h2load sends this one body over and over: after the first call agate answers it from its
  # idempotency cache (replayed), which agate-load above avoids with a request_id per call.
  for target in "$noop_tcp" "$agate_tcp"; do
    echo "compare: h2grpc $target"
    H2GRPC_QUIET=1 "${load_cpu[@]}" bash "$peers" "$target" /agate.v1.Agate/Evaluate "$body" -n 200000 -c 4 -m 32 | grep '^h2grpc:'
  done
fi
