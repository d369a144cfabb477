#!/usr/bin/env bash
# watchers.sh: what WatchCases streams cost an escalation. For W = 0, 100 and 500 watchers that
# read every event (bench/agate_watchers.cc), agate-load sends BLOCK verdicts at a fixed rate, each
# for a new item so that each opens a case and publishes an event to every watcher; the server's
# CPU time (utime + stime from /proc/PID/stat) over the run, divided by the requests, is the cost
# of one BLOCK. A fresh agate-server (bundled matrix, --store memory, a Unix socket) per run,
# server on one core and the clients on the other where taskset and 2 cores allow.
#
#   bench/watchers.sh [BUILD_DIR] [ROUNDS] [REQUESTS] [RATE] [WINDOW]
#                                          (defaults: build, 3, 1500, 100, 250ms)
#
# W = 100 and 500 run three ways: streams that take one message per event, streams that ask for
# a batch_window of WINDOW ("500/250ms"), and batched streams that ask for the summary view
# (CASE_VIEW_SUMMARY: the case without evidence, history and request ids; "500/250ms/summary").
# Prints each run and a table of the medians with the ratio to W = 0 (issue 17's target: <= 1.5
# at 500). The machine's noise shows in the spread of the rounds.
set -euo pipefail
build=${1:-build}
rounds=${2:-3}
requests=${3:-1500}
rate=${4:-100}
window=${5:-250ms}
cd "$(dirname "$0")/.."
. bench/bench_env.sh
ticks=$(getconf CLK_TCK)
cat >"$work/block.jsonl" <<'EOF'
{"weight": 1, "expect": "VERDICT_BLOCK", "request": {"request_id": "block", "tenant_id": "t1", "workflow_id": "refunds", "item_id": "order", "action": {"type": "refund", "amount": 400}}}
EOF

cpu_ticks() {  # pid -> utime + stime (fields 14 and 15; the command name has no space)
  awk '{print $14 + $15}' "/proc/$1/stat"
}

watchers_subscribed() {  # socket
  "$build/client/agate" stats --server "unix:$1" --metrics |
    sed -n 's/^agate_watchers \([0-9]*\)$/\1/p'
}

# run W [WINDOW [summary]]: one measurement; prints
# "W[/WINDOW[/summary]] ms_per_block events messages dropped bytes"
run() {
  local w=$1 batch=${2:-} view=${3:-} sock="$work/agate-$1.sock" log="$work/agate-$1.log"
  "${server_cpu[@]}" "$build/server/agate-server" --matrix deploy/examples/escalation-matrix.yaml \
    --store memory --listen "unix:$sock" --log-level warn >/dev/null 2>"$log" &
  local server=$!
  for _ in $(seq 100); do [ -S "$sock" ] && watchers_subscribed "$sock" >/dev/null 2>&1 && break; sleep 0.1; done
  local watchers=""
  if [ "$w" -gt 0 ]; then
    "${load_cpu[@]}" "$build/bench/agate-watchers" --target "unix:$sock" --watchers "$w" \
      ${batch:+--batch-window "$batch"} ${view:+--summary} >"$work/watchers.out" 2>"$work/watchers.err" &
    watchers=$!
    for _ in $(seq 200); do [ "$(watchers_subscribed "$sock")" = "$w" ] && break; sleep 0.1; done
    [ "$(watchers_subscribed "$sock")" = "$w" ] || { echo "watchers.sh: $w watchers did not subscribe" >&2; exit 1; }
  fi
  # Warm up (the first cases, the allocator's pools), then measure.
  "${load_cpu[@]}" "$build/bench/agate-load" --target "unix:$sock" --mix "$work/block.jsonl" \
    --unique-items --rate "$rate" --requests 200 --json >/dev/null
  local before after
  before=$(cpu_ticks "$server")
  "${load_cpu[@]}" "$build/bench/agate-load" --target "unix:$sock" --mix "$work/block.jsonl" \
    --unique-items --rate "$rate" --requests "$requests" --json >"$work/load.json"
  # The events still buffered (a batch window's, or a lagging stream's) are part of the cost:
  # let them go out before reading the CPU time (every run waits the same).
  sleep 3
  after=$(cpu_ticks "$server")
  local events=0 messages=0 dropped=0 bytes=0
  if [ -n "$watchers" ]; then
    kill -TERM "$watchers"
    wait "$watchers" || true
    events=$(sed -n 's/.*streams, \([0-9]*\) events read.*/\1/p' "$work/watchers.out")
    messages=$(sed -n 's/.*events read in \([0-9]*\) messages.*/\1/p' "$work/watchers.out")
    bytes=$(sed -n 's/.*messages (\([0-9]*\) bytes).*/\1/p' "$work/watchers.out")
    dropped=$(sed -n 's/.*bytes), \([0-9]*\) dropped.*/\1/p' "$work/watchers.out")
  fi
  kill -TERM "$server"
  wait "$server" || true
  /usr/bin/python3 -c "print('$w${batch:+/$batch}${view:+/$view}', f'{($after - $before) * 1000 / $ticks / $requests:.3f}', $events, $messages, $dropped, $bytes)"
}

results=()
for round in $(seq "$rounds"); do
  for config in 0 100 500 "100 $window" "500 $window" "500 $window summary"; do
    # shellcheck disable=SC2086  # config is "W", "W WINDOW" or "W WINDOW summary"
    line=$(run $config)
    read -r name ms events messages dropped bytes <<<"$line"
    echo "watchers: round $round: W=$name server CPU $ms ms/BLOCK, events read $events in $messages messages ($bytes bytes), dropped $dropped"
    results+=("$line")
  done
done
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import statistics, sys
runs = {}
for line in sys.stdin:
    name, ms, events, messages, dropped, _ = line.split()
    runs.setdefault(name, []).append(float(ms))
base = statistics.median(runs["0"])
print("watchers: %-12s %-24s %-10s %s" % ("W", "ms CPU per BLOCK (runs)", "median", "vs W=0"))
for name in runs:
    m = statistics.median(runs[name])
    print("watchers: %-12s %-24s %-10.3f %.2fx" % (name, " ".join("%.3f" % x for x in runs[name]), m, m / base))
batched = [n for n in runs if n.startswith("500/") and not n.endswith("/summary")][0]
summary = batched + "/summary"
print("watchers: ratio at 500 vs 0: %.2fx one message per event, %.2fx with %s, %.2fx with %s (target <= 1.5x)" % (
    statistics.median(runs["500"]) / base, statistics.median(runs[batched]) / base, batched,
    statistics.median(runs[summary]) / base, summary))
'
