#!/usr/bin/env bash
# shadow_live.sh: what shadow mode (agate-server --shadow-matrix) costs the live server, against
# the same server without it, same run.
#
#   bench/shadow_live.sh [BUILD_DIR] [REQUESTS]        (defaults: build, 60000)
#
# Starts two agate-servers on the bundled matrix (--store memory, no per-tenant case quota, Unix
# sockets), one
# with a candidate that lowers the refund limit from 250 to 100 as --shadow-matrix, both pinned to
# CPU 0 (the load to CPU 1). For each mix, three rounds alternating the servers:
#   - closed loop, 64 in flight, REQUESTS requests: CPU per request from /proc/PID/stat
#     (utime + stime of the server over the run, divided by the requests);
#   - one client (1 in flight), REQUESTS/3 requests: the live answer's p50.
# Mixes: allow (every request ALLOW under both matrices: the shadow's lock-free path) and
# escalate (each request on an item of its own: a third HOLD, a third BLOCK, a third a $150 refund
# the live matrix allows and the candidate blocks: the shadow's locked path, with changes).
# Prints the medians and the differences.
set -euo pipefail
build=${1:-build}
requests=${2:-60000}
cd "$(dirname "$0")/.."
. bench/bench_env.sh

. bench/shadow_inputs.sh

wait_socket() {  # path, log file
  for _ in $(seq 200); do
    [ -S "$1" ] && return 0
    sleep 0.1
  done
  echo "shadow_live: server did not start: $(cat "$2")" >&2; exit 1
}
# Unix sockets: known addresses with --log-level warn (nothing is logged per call).
common=(--matrix deploy/examples/escalation-matrix.yaml --store memory
        --max-open-cases-per-tenant 0 --log-level warn)
"${server_cpu[@]}" "$build/server/agate-server" "${common[@]}" --listen "unix:$work/base.sock" \
  2>"$work/base.log" &
base_pid=$! base_target=unix:$work/base.sock
"${server_cpu[@]}" "$build/server/agate-server" "${common[@]}" --listen "unix:$work/shadow.sock" \
  --shadow-matrix "$work/candidate.yaml" 2>"$work/shadow.log" &
shadow_pid=$! shadow_target=unix:$work/shadow.sock
wait_socket "$work/base.sock" "$work/base.log"
wait_socket "$work/shadow.sock" "$work/shadow.log"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# run SERVER MIX: one round; appends "cpu_us_per_request" and "p50_us" to $work/SERVER.MIX.{cpu,p50}
run() {
  local target_var=${1}_target pid_var=${1}_pid
  local before after
  before=$(ticks "${!pid_var}")
  "${load_cpu[@]}" "$build/bench/agate-load" --target "${!target_var}" --concurrency 64 \
    --requests "$requests" --mix "$work/$2.jsonl" --unique-items --json 2>/dev/null >"$work/out.json"
  after=$(ticks "${!pid_var}")
  /usr/bin/python3 -c "import json; d=json.load(open('$work/out.json')); assert not d['errors'] and not d['mismatches'], d; print(($after - $before) / $hz * 1e6 / d['ok'])" >>"$work/$1.$2.cpu"
  "${load_cpu[@]}" "$build/bench/agate-load" --target "${!target_var}" --concurrency 1 \
    --requests $((requests / 3)) --mix "$work/$2.jsonl" --unique-items --json 2>/dev/null >"$work/out.json"
  /usr/bin/python3 -c "import json; d=json.load(open('$work/out.json')); assert not d['errors'] and not d['mismatches'], d; print(d['latency_us']['p50'])" >>"$work/$1.$2.p50"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for mix in allow escalate; do
  for _ in 1 2 3; do
    run base $mix
    run shadow $mix
  done
  bc=$(median <"$work/base.$mix.cpu"); sc=$(median <"$work/shadow.$mix.cpu")
  bp=$(median <"$work/base.$mix.p50"); sp=$(median <"$work/shadow.$mix.p50")
  printf 'shadow_live: %-8s CPU/request: base %6.1f us, shadow %6.1f us (%+.1f%%) | p50 (1 in flight): base %6.1f us, shadow %6.1f us (%+.1f us) | rounds: cpu %s / %s, p50 %s / %s\n' \
    $mix "$bc" "$sc" "$(/usr/bin/python3 -c "print(($sc / $bc - 1) * 100)")" "$bp" "$sp" \
    "$(/usr/bin/python3 -c "print($sp - $bp)")" \
    "$(paste -sd, "$work/base.$mix.cpu" | cut -c1-40)" "$(paste -sd, "$work/shadow.$mix.cpu" | cut -c1-40)" \
    "$(paste -sd, "$work/base.$mix.p50")" "$(paste -sd, "$work/shadow.$mix.p50")"
done
"$build/client/agate" shadow --server "$shadow_target" | head -12
