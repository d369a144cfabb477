# Sourced by the bench scripts, from the repository root: a scratch directory $work removed on
# exit (with every background job killed), and server_cpu / load_cpu, commands that pin the
# server and the load generator to different cores when there are two.
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
server_cpu=() load_cpu=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpu=(taskset -c 0) load_cpu=(taskset -c 1)
fi
