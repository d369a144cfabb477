#!/usr/bin/env bash
# scrape_cost.sh: what Prometheus scraping costs agate-server (issue 18: a /metrics scrape with
# 10,000 open cases and 1,000 triggers <= 10 ms; scraping every second costs Evaluate <= 2% of its
# throughput).
#
#   bench/scrape_cost.sh [BUILD_DIR] [ROUNDS] [DURATION] [CONCURRENCY]
#                                       (defaults: build, 3, 10s, 16)
#
# One agate-server (--store memory, a Unix socket for gRPC, --http-listen on loopback, pinned to
# core 0 where taskset and 2 cores allow) on a matrix of the bundled lanes and 1,000 triggers
# `action.type == "tN"` (as bench/metrics_bench.cc builds it), with 10,000 open cases: 10 per
# trigger, each on an item of its own, opened through `agate eval --server`. Then:
#   1. scrape: 200 sequential GET /metrics with curl, a connection each (agate closes keep-alive
#      connections idle for 2 s, so Prometheus at its default 15 s interval opens one per
#      scrape): curl's time_total per scrape (median, p90, max), and the server's CPU (utime +
#      stime) per scrape;
#   2. throughput: ROUNDS pairs of DURATION closed-loop agate-load runs (ALLOW requests,
#      CONCURRENCY in flight, core 1), one without scraping and one with a GET /metrics every
#      second, alternating which goes first; the medians and the loss.
set -euo pipefail
build=${1:-build}
rounds=${2:-3}
duration=${3:-10s}
concurrency=${4:-16}
cd "$(dirname "$0")/.."
. bench/bench_env.sh
ticks=$(getconf CLK_TCK)

cpu_ticks() {  # pid -> utime + stime (fields 14 and 15; the command name has no space)
  awk '{print $14 + $15}' "/proc/$1/stat"
}

# The matrix: the bundled lanes, 1,000 triggers over the three per-item lanes.
matrix="$work/scrape-matrix.yaml"
sed '/^triggers:/,$d' deploy/examples/escalation-matrix.yaml >"$matrix"
lanes=(customer policy financial)
{
  echo "triggers:"
  for i in $(seq 0 999); do
    printf '  - id: trigger-%d\n    lane: %s\n    when: action.type == "t%d"\n' \
      "$i" "${lanes[$((i % 3))]}" "$i"
  done
} >>"$matrix"

sock="$work/agate.sock"
"${server_cpu[@]}" "$build/server/agate-server" --matrix "$matrix" --store memory \
  --listen "unix:$sock" --http-listen 127.0.0.1:0 --log-level info >/dev/null 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do grep -q 'serving HTTP on' "$work/server.log" && break; sleep 0.1; done
http=$(sed -n 's/.*serving HTTP on \([0-9.:]*\).*/\1/p' "$work/server.log" | head -1)
[ -n "$http" ] || { echo "scrape_cost.sh: the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }

# 10,000 open cases, 10 per trigger, across 50 tenants.
for n in $(seq 0 9999); do
  printf '{"request_id":"r%d","tenant_id":"tenant-%d","workflow_id":"w","item_id":"item-%d","action":{"type":"t%d"},"model":{"confidence":0.99}}\n' \
    "$n" "$((n % 50))" "$n" "$((n % 1000))"
done >"$work/open.jsonl"
"${load_cpu[@]}" "$build/client/agate" eval --server "unix:$sock" <"$work/open.jsonl" >"$work/open.out"
opened=$(grep -c '"case_id":"case_' "$work/open.out" || true)
curl -s "http://$http/metrics" >"$work/metrics.txt"
open_gauge=$(sed -n 's/^agate_open_cases \([0-9]*\)$/\1/p' "$work/metrics.txt")
fired=$(grep -c '^agate_trigger_fired_total{' "$work/metrics.txt" || true)
echo "setup: $opened cases opened, agate_open_cases $open_gauge, $fired trigger series," \
  "scrape $(wc -c <"$work/metrics.txt") bytes"
[ "$open_gauge" = 10000 ] || { echo "scrape_cost.sh: expected 10000 open cases" >&2; exit 1; }

# 1. The scrape itself.
before=$(cpu_ticks "$server")
for _ in $(seq 200); do
  "${load_cpu[@]}" curl -s -o /dev/null -w '%{time_total}\n' "http://$http/metrics"
done >"$work/scrapes.txt"
after=$(cpu_ticks "$server")
sort -n "$work/scrapes.txt" | awk -v cpu="$((after - before))" -v ticks="$ticks" '
  { t[NR] = $1 * 1000 }
  END {
    printf "scrape (200, curl time_total): median %.2f ms, p90 %.2f ms, max %.2f ms; server CPU %.2f ms per scrape\n",
      t[int(NR / 2) + 1], t[int(NR * 0.9)], t[NR], cpu * 1000 / ticks / NR
  }'

# 2. Evaluate throughput with and without a scrape every second.
cat >"$work/allow.jsonl" <<'EOF'
{"weight": 1, "expect": "VERDICT_ALLOW", "request": {"request_id": "allow", "tenant_id": "acme", "workflow_id": "support", "item_id": "ticket-1", "action": {"type": "send_reply", "customer_facing": true}, "model": {"confidence": 0.93}}}
EOF
load() {  # -> req/s of one run; agate-load's errors (it exits 1 on any) go to stderr
  "${load_cpu[@]}" "$build/bench/agate-load" --target "unix:$sock" --mix "$work/allow.jsonl" \
    --concurrency "$concurrency" --duration "$duration" --json >"$work/load.json" \
    2>"$work/load.err" || echo "agate-load: $(tail -c 300 "$work/load.json")" >&2
  sed -n 's/.*"rps":\([0-9.]*\).*/\1/p' "$work/load.json"
}
scraping() {
  while true; do curl -s -o /dev/null "http://$http/metrics"; sleep 1; done
}
"${load_cpu[@]}" "$build/bench/agate-load" --target "unix:$sock" --mix "$work/allow.jsonl" \
  --concurrency "$concurrency" --duration 3s --json >/dev/null 2>&1  # warm up
: >"$work/without.txt"
: >"$work/with.txt"
for round in $(seq "$rounds"); do
  for kind in $( [ $((round % 2)) = 1 ] && echo "without with" || echo "with without"); do
    if [ "$kind" = with ]; then
      scraping &
      scraper=$!
      rps=$(load)
      kill "$scraper"
      wait "$scraper" 2>/dev/null || true
    else
      rps=$(load)
    fi
    echo "$rps" >>"$work/$kind.txt"
    echo "round $round, $kind scraping: $rps req/s"
  done
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
without=$(median "$work/without.txt")
with=$(median "$work/with.txt")
awk -v a="$without" -v b="$with" 'BEGIN {
  printf "throughput: without scraping %.0f req/s, scraping every second %.0f req/s (median of each): %+.2f%%\n",
    a, b, (b - a) * 100 / a }'
kill -TERM "$server"
wait "$server" || true
