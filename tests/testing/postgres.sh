#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the tests (Debian's postgresql-15; PostgreSQL refuses to run as
# root, so as root the server runs as the postgres user).
#   tests/testing/postgres.sh start DIR   initdb into DIR/data, start on a free port on 127.0.0.1
#                                         with its Unix socket in DIR, trust auth; writes the
#                                         libpq URL of database "postgres" to DIR/url
#   tests/testing/postgres.sh stop DIR    stop it (fast) and remove DIR
#   tests/testing/postgres.sh restart DIR stop and start again on the same port and data
# Both are idempotent: start on a running DIR prints its URL, stop on a missing DIR does nothing.
# The tests' server runs with fsync=off; AGATE_PG_FSYNC=on keeps PostgreSQL's durable defaults
# (the benchmarks: a commit is flushed to disk as in production).
set -euo pipefail
bin=${AGATE_PG_BIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: $0 start|stop|restart DIR" >&2
  exit 2
fi
if [[ ! -x "$bin/pg_ctl" ]]; then
  echo "postgres.sh: $bin/pg_ctl not found: apt-get install postgresql-15 (tools/install-deps.sh)" >&2
  exit 1
fi
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_ctl_start() {
  local port
  port=$(cat "$dir/port")
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${AGATE_PG_FSYNC:-off} -c max_connections=200" \
    start >/dev/null
}
case "$cmd" in
  start)
    if [[ -f "$dir/url" ]] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      cat "$dir/url"
      exit 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
      echo "postgres.sh: initdb failed:" >&2
      cat "$dir/initdb.log" >&2
      exit 1
    }
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
    pg_ctl_start || {
      echo "postgres.sh: the server did not start:" >&2
      cat "$dir/log" >&2
      exit 1
    }
    echo "postgresql://postgres@127.0.0.1:$port/postgres" >"$dir/url"
    cat "$dir/url"
    ;;
  stop)
    [[ -d "$dir/data" ]] && as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  restart)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    pg_ctl_start
    ;;
  *)
    echo "usage: $0 start|stop|restart DIR" >&2
    exit 2
    ;;
esac
