#!/usr/bin/env bash
# identity_compare.sh: what identity costs. agate-server plaintext in development mode against
# agate-server with an access policy over mutual TLS (the agent's client certificate) and with a
# bearer token over TLS, same load, same run.
#
#   bench/identity_compare.sh [BUILD_DIR] [DURATION]       (defaults: build, 10s)
#
# Each server has --store memory (what is measured is the transport and the identity checks),
# is pinned to CPU 0 and the load to CPU 1. agate-load runs closed-loop with 64 in flight on one
# reused connection, 3 rounds alternating the servers; medians and the ratio to plaintext.
set -euo pipefail
build=${1:-build}
duration=${2:-10s}
cd "$(dirname "$0")/.."
. bench/bench_env.sh
"$build/bench/dev_pki" "$work/pki" >/dev/null
pki=$work/pki

start() {  # name, args...
  local name=$1; shift
  "${server_cpu[@]}" "$build/server/agate-server" --matrix deploy/examples/escalation-matrix.yaml \
    --store memory --listen 127.0.0.1:0 "$@" >/dev/null 2>"$work/$name.log" &
  for _ in $(seq 100); do
    grep -q 'listening on' "$work/$name.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -m1 'listening on 127' "$work/$name.log" | sed 's/.*listening on //; s/ .*//'
}
plain=$(start plain)
tls=$(start tls --access "$pki/access.yaml" --tls-cert "$pki/server.crt" --tls-key "$pki/server.key" \
  --client-ca "$pki/ca.crt")

load() {  # target, flags... -> rps
  local target=$1; shift
  "${load_cpu[@]}" "$build/bench/agate-load" --target "$target" --concurrency 64 \
    --duration "$duration" --mix bench/mixes/acme_allow.jsonl --json "$@" 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert not d["errors"] and not d["mismatches"], d; print(d["rps"])'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: >"$work/plain"; : >"$work/mtls"; : >"$work/token"
for _ in 1 2 3; do
  load "$plain" >>"$work/plain"
  load "$tls" --tls-ca "$pki/ca.crt" --tls-cert "$pki/agent.crt" --tls-key "$pki/agent.key" >>"$work/mtls"
done
p=$(median <"$work/plain"); m=$(median <"$work/mtls")
printf 'identity: plaintext %8.0f req/s | mTLS (agent certificate) %8.0f req/s = %.2fx\n' "$p" "$m" \
  "$(/usr/bin/python3 -c "print($m / $p)")"
