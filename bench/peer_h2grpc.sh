#!/usr/bin/env bash
# peer_h2grpc.sh [BUILD_DIR]: agate and the no-op gRPC floor under the neutral h2load driver
# (../shared/peers/h2grpc.sh), with the same loads, pinning and medians as
# ../shared/peers/cerbos/run.sh, so that the numbers stand beside a peer PDP measured with it.
#
#   bench/peer_h2grpc.sh build          # 3 repetitions, "RESULT ..." lines at the end
#   REPS=1 bench/peer_h2grpc.sh build   # quicker
#
# Per repetition and server (agate-noop-server, then agate-server on the bundled matrix with its
# durable store in a temporary data dir): start it pinned to $SERVER_CPU, warm up, drive the
# ALLOW and the financial (BLOCK) request at maximum throughput, then the ALLOW request at a fixed
# 1,000 req/s, pinned to $CLIENT_CPU; read idle and peak RSS. h2load sends one fixed body, so
# after the first call agate answers from its idempotency cache (a replay, marked replayed=true:
# h2grpc.sh's response-size check then says MISMATCH, which is expected here); bench/compare.sh
# measures fresh decisions with agate-load.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
peers=../shared/peers
[ -r "$peers/h2grpc.sh" ] || { echo "peer_h2grpc: $peers/h2grpc.sh not found" >&2; exit 2; }
: "${REPS:=3}"
: "${SERVER_CPU=0}" "${CLIENT_CPU=1}"
: "${WARM_ARGS:=-c 16 -m 8 -n 20000 -t 1}"
: "${MAX_ARGS:=-c 16 -m 8 -n 200000 -t 1}"
: "${RATE_ARGS:=-c 4 -m 1 --rps 250 -n 15000 -t 1}"
work=$(mktemp -d)
spid=""
stop_server() {
  if [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null; then kill "$spid"; wait "$spid" 2>/dev/null || true; fi
  spid=""
}
trap 'stop_server; rm -rf "$work"' EXIT
pin() { local cpu=$1; shift; if [ -n "$cpu" ]; then taskset -c "$cpu" "$@"; else "$@"; fi; }
kv() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" | tail -n 1; }

encode() {  # name, text proto
  printf '%s' "$2" | protoc --encode=agate.v1.EvaluateRequest -I proto proto/agate/v1/agate.proto \
    > "$work/$1.bin"
}
encode allow 'request_id: "peer-allow" tenant_id: "t1" workflow_id: "support" item_id: "ticket-1" action { type: "send_reply" customer_facing: true } model { confidence: 0.93 }'
encode financial 'request_id: "peer-financial" tenant_id: "t1" workflow_id: "refunds" item_id: "order-7" action { type: "refund" amount: 400 }'

start_server() {  # name
  local cmd
  if [ "$1" = noop ]; then
    cmd=("$build/bench/agate-noop-server" --listen 127.0.0.1:0)
  else
    rm -rf "$work/data"
    cmd=("$build/server/agate-server" --matrix deploy/examples/escalation-matrix.yaml
         --listen 127.0.0.1:0 --data-dir "$work/data")
  fi
  # taskset execs the server: $! is the server's PID (a shell function would put a subshell there).
  [ -z "$SERVER_CPU" ] || cmd=(taskset -c "$SERVER_CPU" "${cmd[@]}")
  "${cmd[@]}" 2> "$work/$1.log" &
  spid=$!
  for _ in $(seq 100); do grep -q 'listening on' "$work/$1.log" 2>/dev/null && break; sleep 0.1; done
  address=$(grep -m1 'listening on' "$work/$1.log" | sed 's/.*listening on //')
  [ -n "$address" ] || { cat "$work/$1.log" >&2; echo "peer_h2grpc: $1 did not start" >&2; exit 1; }
  case "$(readlink "/proc/$spid/exe")" in
    */agate-server | */agate-noop-server) ;;
    *) echo "peer_h2grpc: pid $spid is not the server" >&2; exit 1 ;;
  esac
}

load() {  # server, name, body, args...
  local server=$1 name=$2 body=$3 out
  shift 3
  out=$(H2GRPC_QUIET=1 pin "$CLIENT_CPU" bash "$peers/h2grpc.sh" "$address" \
        /agate.v1.Agate/Evaluate "$work/$body.bin" "$@" | grep '^h2grpc:')
  echo "$out" | sed "s/^/   [$server $name] /"
  echo "$out" | grep -q 'postflight grpc-status=0' || { echo "peer_h2grpc: postflight failed" >&2; exit 1; }
  echo "$out" | grep -q ' failed=0 errored=0 ' || { echo "peer_h2grpc: failed requests" >&2; exit 1; }
  echo "$server $name $(echo "$out" | grep 'rps=' | kv rps) $(echo "$out" | grep latency_us | kv p50) $(echo "$out" | grep latency_us | kv p99)" >> "$work/results.txt"
}

: > "$work/results.txt"
for rep in $(seq 1 "$REPS"); do
  for server in noop agate; do
    echo "== repetition $rep/$REPS: $server (cpu ${SERVER_CPU:-any}), client cpu ${CLIENT_CPU:-any}"
    start_server "$server"
    idle=$(awk '/^VmRSS/ {print $2}' "/proc/$spid/status")
    H2GRPC_QUIET=1 pin "$CLIENT_CPU" bash "$peers/h2grpc.sh" "$address" /agate.v1.Agate/Evaluate \
      "$work/allow.bin" $WARM_ARGS > /dev/null
    load "$server" max_allow allow $MAX_ARGS
    load "$server" max_financial financial $MAX_ARGS
    load "$server" rate_allow allow $RATE_ARGS
    echo "$server rss $idle $(awk '/^VmHWM/ {print $2}' "/proc/$spid/status")" >> "$work/rss.txt"
    stop_server
  done
done

median() { sort -g | awk '{a[NR] = $1} END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -v s="$1" -v n="$2" -v c="$3" '$1 == s && $2 == n { print $c }' "$work/results.txt"; }
echo
for server in noop agate; do
  echo "RESULT $server max[allow] ($MAX_ARGS): req/s=$(col $server max_allow 3 | median) p99_us=$(col $server max_allow 5 | median)"
  echo "RESULT $server max[financial] ($MAX_ARGS): req/s=$(col $server max_financial 3 | median) p99_us=$(col $server max_financial 5 | median)"
  echo "RESULT $server rate[allow] ($RATE_ARGS): p50_us=$(col $server rate_allow 4 | median) p99_us=$(col $server rate_allow 5 | median)   (p99 runs: $(col $server rate_allow 5 | tr '\n' ' '))"
  echo "RESULT $server rss_kib: idle=$(awk -v s=$server '$1 == s {print $3}' "$work/rss.txt" | median) peak_VmHWM=$(awk -v s=$server '$1 == s {print $4}' "$work/rss.txt" | median)"
done
