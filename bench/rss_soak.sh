#!/usr/bin/env bash
# rss_soak.sh: RSS of agate-server under steady mixed load, sampled every 10 s.
#   bench/rss_soak.sh [BUILD_DIR] [DURATION] [SERVER FLAG...]     (defaults: build, 5m)
# The flags are added to agate-server's, e.g. deploy/kubernetes/sidecar.yaml's.
set -euo pipefail
build=${1:-build}
duration=${2:-5m}
shift $(( $# < 2 ? $# : 2 ))
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
"$build/server/agate-server" --matrix deploy/examples/escalation-matrix.yaml \
  --listen "unix:$work/agate.sock" --data-dir "$work/data" "$@" 2>"$work/agate.log" &
pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/agate.log" && break; sleep 0.1; done
"$build/bench/agate-load" --target "unix:$work/agate.sock" --mix bench/mixes/support.jsonl \
  --concurrency 16 --duration "$duration" >"$work/load.out" 2>/dev/null &
load=$!
start=$(date +%s)
while kill -0 $load 2>/dev/null; do
  echo "rss_soak: t=$(( $(date +%s) - start ))s $(grep VmRSS /proc/$pid/status | tr -s ' ')"
  sleep 10
done
wait $load || true
cat "$work/load.out"
echo "rss_soak: end $(grep -E 'VmRSS|VmHWM' /proc/$pid/status | tr -s ' ' | tr '\n' ' ')"
