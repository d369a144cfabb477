#!/usr/bin/env bash
# replicas.sh: issue 20's numbers for the shared PostgreSQL store (docs/scale.md), against a
# throwaway PostgreSQL 15 with its durable defaults (fsync on; tests/testing/postgres.sh with
# AGATE_PG_FSYNC=on), the bundled matrix, Unix sockets, agate-load checking every status and
# verdict. Servers and PostgreSQL on core 0, the load on core 1 (when taskset and 2 cores allow).
#
#   bench/replicas.sh [BUILD_DIR] [SECONDS] [ROUNDS]      (defaults: build, 10, 3)
#
# 1. ALLOW req/s of one server, --store sqlite vs --store postgres (64 in flight), ROUNDS
#    interleaved rounds, a fresh server and data dir / database per run.
# 2. BLOCK latency (each request a new item: a new case), 1 in flight, 2,000 requests: p50 / p99,
#    sqlite vs postgres (and sqlite --fsync, which flushes each commit as PostgreSQL does).
# 3. 1, 2 and 3 replicas on one database, one agate-load per replica at once: total escalations/s
#    (BLOCK, 8 in flight each) and ALLOW req/s (32 in flight each), and the servers' CPU time
#    (utime + stime) per decision.
# 4. One replica, BLOCK at fixed rates (open loop): the p99 at each rate, to find where the
#    commit latency's p99 doubles.
set -euo pipefail
build=${1:-build}
seconds=${2:-10}
rounds=${3:-3}
cd "$(dirname "$0")/.."
. bench/bench_env.sh
chmod 755 "$work"  # PostgreSQL runs as the postgres user
ticks=$(getconf CLK_TCK)
matrix=deploy/examples/escalation-matrix.yaml
cat >"$work/block.jsonl" <<'EOF2'
{"weight": 1, "expect": "VERDICT_BLOCK", "request": {"request_id": "block", "tenant_id": "t1", "workflow_id": "refunds", "item_id": "order", "action": {"type": "refund", "amount": 400}}}
EOF2
allow_mix=bench/mixes/acme_allow.jsonl

AGATE_PG_FSYNC=on "${server_cpu[@]}" tests/testing/postgres.sh start "$work/pg" >/dev/null
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; tests/testing/postgres.sh stop "$work/pg"; rm -rf "$work"' EXIT
pg_url=$(cat "$work/pg/url")
databases=0

fresh_database() {  # prints the URL of a new empty database
  databases=$((databases + 1))
  psql -q "$pg_url" -c "CREATE DATABASE bench_$databases" >/dev/null
  echo "${pg_url%/postgres}/bench_$databases"
}

# start NAME STORE [URL]: a fresh server on unix:$work/NAME.sock; sets $pid_NAME
start() {
  local name=$1 kind=$2 url=${3:-} sock="$work/$1.sock"
  rm -rf "$work/$name.data" "$sock"
  local args=(--matrix "$matrix" --listen "unix:$sock" --data-dir "$work/$name.data" --log-level warn)
  case "$kind" in
    postgres) args+=(--store postgres --postgres-url "$url" --replica-id "$name") ;;
    sqlite-fsync) args+=(--fsync) ;;
  esac
  "${server_cpu[@]}" "$build/server/agate-server" "${args[@]}" >/dev/null 2>"$work/$name.log" &
  eval "pid_$name=$!"
  for _ in $(seq 200); do [ -S "$sock" ] && return 0; sleep 0.05; done
  echo "replicas.sh: server $name did not start:" >&2
  cat "$work/$name.log" >&2
  exit 1
}
stop() {  # NAME...
  for name in "$@"; do
    local p
    p=$(eval echo "\$pid_$name")
    kill "$p" && wait "$p" || true
  done
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() {  # NAME agate-load-args... -> JSON report
  "${load_cpu[@]}" "$build/bench/agate-load" --target "unix:$work/$1.sock" --json "${@:2}"
}
field() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "== 1. ALLOW req/s, one server, 64 in flight, ${seconds}s per run"
for round in $(seq "$rounds"); do
  for kind in sqlite postgres; do
    url=""
    [ "$kind" = postgres ] && url=$(fresh_database)
    start a "$kind" "$url"
    rps=$(load a --mix "$allow_mix" --concurrency 64 --duration "${seconds}s" | field 'd["rps"] if d["ok"] == d["requests"] and not d["mismatches"] else "FAILED %s" % d')
    echo "round $round $kind allow_rps $rps"
    stop a
  done
done

echo "== 2. BLOCK latency, 1 in flight, 2000 requests (each a new case)"
for round in $(seq "$rounds"); do
  for kind in sqlite sqlite-fsync postgres; do
    url=""
    [ "$kind" = postgres ] && url=$(fresh_database)
    start a "$kind" "$url"
    load a --mix "$work/block.jsonl" --unique-items --requests 200 >/dev/null
    load a --mix "$work/block.jsonl" --unique-items --concurrency 1 --requests 2000 |
      field '"round '"$round"' '"$kind"' block_p50_us %.0f p99_us %.0f rps %.0f%s" % (d["latency_us"]["p50"], d["latency_us"]["p99"], d["rps"], "" if d["ok"] == d["requests"] else " FAILED %s" % d["errors"])'
    stop a
  done
done

echo "== 3. replicas on one database: totals, ${seconds}s per run"
for n in 1 2 3; do
  url=$(fresh_database)
  names=()
  for i in $(seq "$n"); do start "r$i" postgres "$url"; names+=("r$i"); done
  for what in block allow; do
    before=0
    for name in "${names[@]}"; do before=$((before + $(cpu_ticks "$(eval echo "\$pid_$name")"))); done
    for name in "${names[@]}"; do
      if [ "$what" = block ]; then
        load "$name" --mix "$work/block.jsonl" --unique-items --concurrency 8 --duration "${seconds}s" >"$work/$name.$what.json" &
      else
        load "$name" --mix "$allow_mix" --concurrency 32 --duration "${seconds}s" >"$work/$name.$what.json" &
      fi
    done
    wait $(jobs -p | tail -n "$n") 2>/dev/null || true
    after=0
    for name in "${names[@]}"; do after=$((after + $(cpu_ticks "$(eval echo "\$pid_$name")"))); done
    /usr/bin/python3 - "$n" "$what" "$before" "$after" "$ticks" "${names[@]/#/$work/}" <<'EOF2'
import json, sys
n, what, before, after, ticks = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
reports = [json.load(open(f"{p}.{what}.json")) for p in sys.argv[6:]]
ok = sum(r["ok"] for r in reports)
rps = sum(r["rps"] for r in reports)
bad = sum(r["requests"] - r["ok"] + r["mismatches"] for r in reports)
cpu_us = (after - before) / ticks * 1e6 / max(ok, 1)
p99 = max(r["latency_us"]["p99"] for r in reports)
print(f"replicas {n} {what} total_rps {rps:.0f} server_cpu_us_per_decision {cpu_us:.1f} worst_p99_us {p99:.0f} not_ok {bad}")
EOF2
  done
  stop "${names[@]}"
done

echo "== 4. one replica, BLOCK at fixed rates: p99 (5 s per rate)"
url=$(fresh_database)
start a postgres "$url"
for rate in 25 50 100 150 200 250; do
  load a --mix "$work/block.jsonl" --unique-items --rate "$rate" --requests $((rate * 5)) --concurrency 64 --timeout 5s |
    field '"rate '"$rate"' achieved_rps %.0f p50_us %.0f p99_us %.0f%s" % (d["rps"], d["latency_us"]["p50"], d["latency_us"]["p99"], "" if d["ok"] == d["requests"] else " errors %s" % d["errors"])'
done
"$build/client/agate" stats --server "unix:$work/a.sock" --metrics | grep '^agate_store_commit_duration_seconds' || true
stop a
