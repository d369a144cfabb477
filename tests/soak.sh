#!/usr/bin/env bash
# soak.sh BUILD_DIR [MINUTES] [RATE]
#
# Mixed load against a real agate-server with its durable store for MINUTES (default 30) at RATE
# Evaluate calls per second (default 1000, open loop, bench/mixes/support.jsonl: 90% ALLOW, HOLD,
# BLOCK, DENY), while an operator loop acknowledges every open case every 2 s (each lane's owner:
# approve, or resolve for DENY) and a watcher streams every transition. Samples the server's RSS
# every 10 s. At the end it prints the RSS series, the load's errors and verdict mismatches, the
# failed acknowledgements and the events watched, and exits 1 if there was any error, if the
# watcher died, or if RSS grew by more than 10% over the second half of the run.
#
#   tests/soak.sh build 30        # what docs/reliability.md records
#   tests/soak.sh build 2 500     # a quick look
set -euo pipefail

build=$(cd "${1:?usage: soak.sh BUILD_DIR [MINUTES] [RATE]}" && pwd)
minutes=${2:-30}
rate=${3:-1000}
root=$(cd "$(dirname "$0")/.." && pwd)
cli=$build/client/agate
python=/usr/bin/python3
work=$(mktemp -d /tmp/agate-soak-XXXXXX)
addr=unix:$work/agate.sock
trap 'touch "$work/stop"; kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

"$build/server/agate-server" --matrix "$root/deploy/examples/escalation-matrix.yaml" \
  --listen "$addr" --data-dir "$work/data" --log-level warn 2>"$work/server.log" &
server=$!
for _ in $(seq 300); do "$cli" stats --server "$addr" >/dev/null 2>&1 && break; sleep 0.05; done

"$cli" watch --server "$addr" --for "$((minutes * 60 + 30))s" >"$work/events.jsonl" 2>"$work/watch.err" &
watcher=$!

# The operator: acknowledge every open case, as its lane's owner.
operator() {
  while [ ! -e "$work/stop" ]; do
    "$cli" cases --server "$addr" --state open --all 2>>"$work/ack.err" |
      "$python" -c '
import json, sys
who = {"customer": "support-lead", "policy": "workflow-owner", "ops": "ops-oncall",
       "security": "security-oncall", "financial": "finance-approver"}
for line in sys.stdin:
    c = json.loads(line)
    decision = "resolve" if c["verdict"] == "VERDICT_DENY" else "approve"
    print(c["id"], decision, who.get(c["lane"], "nobody"))' |
      while read -r id decision approver; do
        if err=$("$cli" ack --server "$addr" --case "$id" --decision "$decision" \
          --approver "$approver" 2>&1 >/dev/null); then
          echo ok >>"$work/acks"
        elif [[ $err == *", not OPEN: it cannot be acknowledged"* ]]; then
          # The case moved on (its SLA ran out) between the listing and this ack: not an error.
          echo "raced $id" >>"$work/acks"
        else
          echo "failed $id: ${err//$'\n'/ }" >>"$work/acks"
        fi
      done || echo "failed listing the open cases" >>"$work/acks"
    sleep 2
  done
}
touch "$work/acks"
operator &
operator_pid=$!

"$build/bench/agate-load" --target "$addr" --mix "$root/bench/mixes/support.jsonl" \
  --rate "$rate" --concurrency 64 --duration "${minutes}m" --json \
  >"$work/load.json" 2>"$work/load.err" &
load=$!

echo "soak: $minutes min at $rate req/s; server pid $server; sampling RSS every 10 s"
start=$(date +%s)
: >"$work/rss"
while kill -0 "$load" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
  echo "$(($(date +%s) - start)) $rss" >>"$work/rss"
  echo "soak: t=$(($(date +%s) - start))s rss=${rss} KiB acks=$(grep -c ok "$work/acks") events=$(wc -l <"$work/events.jsonl")"
  sleep 10
done
wait "$load" || true
touch "$work/stop"
sleep 3
watcher_alive=0
kill -0 "$watcher" 2>/dev/null && watcher_alive=1
# The operator loop ends by itself on the stop file; it must have lived until then.
wait "$operator_pid" 2>/dev/null && operator_ok=1 || operator_ok=0
kill -0 "$server" 2>/dev/null || { echo "soak: FAIL: agate-server died"; tail "$work/server.log"; exit 1; }

"$python" - "$work" "$watcher_alive" "$operator_ok" <<'EOF'
import json, sys
work, watcher_alive, operator_ok = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
load = json.load(open(f"{work}/load.json"))
rss = [tuple(map(int, l.split())) for l in open(f"{work}/rss") if l.strip()]
acks = [l.strip() for l in open(f"{work}/acks")]
raced_acks = [a for a in acks if a.startswith("raced ")]
failed_acks = [a for a in acks if a != "ok" and not a.startswith("raced ")]
events = sum(1 for _ in open(f"{work}/events.jsonl"))
half = [kb for t, kb in rss if t >= rss[-1][0] / 2] or [rss[-1][1]]
growth = (half[-1] - half[0]) / half[0] * 100 if half[0] else 0
print(f"soak: {load['requests']} requests in {load['seconds']:.0f} s ({load['rps']:.0f} req/s); "
      f"p50 {load['latency_us']['p50']:.0f} us p99 {load['latency_us']['p99']:.0f} us "
      f"max {load['latency_us']['max']:.0f} us")
print(f"soak: errors {load['errors'] or 'none'}; verdict mismatches {load['mismatches']}; "
      f"verdicts {load['verdicts']}")
for a in failed_acks[:10]:
    print(f"soak: {a}")
print(f"soak: acknowledgements {len(acks) - len(failed_acks) - len(raced_acks)} ok, "
      f"{len(raced_acks)} raced a timeout, {len(failed_acks)} failed; "
      f"{events} case events watched; watcher {'alive' if watcher_alive else 'DEAD'}; "
      f"operator {'ran to the end' if operator_ok else 'DIED early'}")
print(f"soak: RSS KiB first {rss[0][1]}, max {max(kb for _, kb in rss)}, last {rss[-1][1]}; "
      f"second half {half[0]} -> {half[-1]} ({growth:+.1f}%)")
ok = not load["errors"] and load["mismatches"] == 0 and not failed_acks and watcher_alive \
     and operator_ok \
     and events > 0 and growth <= 10
print("soak: PASS" if ok else "soak: FAIL")
sys.exit(0 if ok else 1)
EOF
