#!/usr/bin/env bash
# shadow_callgrind.sh: what shadow mode (agate-server --shadow-matrix) costs per request, in
# instructions counted by callgrind: repeatable on a shared, noisy machine where CPU time is not
# (bench/shadow_live.sh measures time).
#
#   bench/shadow_callgrind.sh [BUILD_DIR] [REQUESTS]        (defaults: build, 2000)
#
# For each mix (allow, escalate: the same mixes and candidate as shadow_live.sh) and each server
# (base: no candidate; shadow: --shadow-matrix), runs agate-server under callgrind twice, with
# REQUESTS and 2 x REQUESTS requests (agate-load, 4 in flight), and takes the difference of the
# two runs' total instructions over REQUESTS: the instructions of one request, with the start,
# the matrix loads and the shutdown cancelled out. Prints them and the shadow's share.
set -euo pipefail
build=${1:-build}
requests=${2:-2000}
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/agate-shadow-cg-XXXXXX)
trap 'rm -rf "$work"' EXIT

. bench/shadow_inputs.sh

# instructions SERVER MIX N: total instructions of a server (base or shadow) that answered N
# requests of MIX, from its start to its exit on SIGTERM.
instructions() {
  local sock="$work/$1-$2-$3.sock" out="$work/$1-$2-$3.cg" extra=()
  [ "$1" = shadow ] && extra=(--shadow-matrix "$work/candidate.yaml")
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$build/server/agate-server" --matrix deploy/examples/escalation-matrix.yaml --store memory \
    --max-open-cases-per-tenant 0 --log-level warn --listen "unix:$sock" "${extra[@]}" \
    2>"$work/server.log" &
  local pid=$!
  for _ in $(seq 3000); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { echo "shadow_callgrind: server did not start: $(cat "$work/server.log")" >&2; exit 1; }
  "$build/bench/agate-load" --target "unix:$sock" --concurrency 4 --requests "$3" \
    --mix "$work/$2.jsonl" --unique-items --timeout 30s --json 2>/dev/null >"$work/load.json"
  /usr/bin/python3 -c "import json, sys; d = json.load(open('$work/load.json')); sys.exit(0 if d['ok'] == $3 and not d['errors'] and not d['mismatches'] else f'shadow_callgrind: load: {d}')"
  kill -TERM "$pid"
  wait "$pid" || true
  sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out"
}

for mix in allow escalate; do
  declare -A per_request=()
  for server in base shadow; do
    small=$(instructions "$server" "$mix" "$requests")
    large=$(instructions "$server" "$mix" $((2 * requests)))
    per_request[$server]=$(((large - small) / requests))
  done
  /usr/bin/python3 -c "
b, s = ${per_request[base]}, ${per_request[shadow]}
print(f'shadow_callgrind: {\"$mix\":<8} instructions per request: base {b:,}, shadow {s:,} ({(s / b - 1) * 100:+.1f}%)')"
done
