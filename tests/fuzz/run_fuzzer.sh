#!/usr/bin/env bash
# Runs one fuzz target for a bounded time on a copy of its seed corpus; the repository is never
# modified. Exits non-zero on a crash, leak, timeout or out-of-memory, leaving the reproducer in
# the work directory (printed), to be replayed with: build-fuzz/tests/fuzz/TARGET FILE. An
# interrupted run (SIGINT or SIGTERM) prints its counts and exits 0.
#
# Pause a run by interrupting it, never by SIGSTOP: libFuzzer's -timeout is wall-clock time, so a
# stopped process reports the unit it was running as a timeout.
#
# Usage: tests/fuzz/run_fuzzer.sh TARGET SECONDS [libFuzzer flags...]
# Environment: FUZZ_BUILD (default build-fuzz), FUZZ_WORK (default: a new temporary directory;
# name one to keep the grown corpus between runs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="$1"
seconds="$2"
shift 2
binary="${FUZZ_BUILD:-$root/build-fuzz}/tests/fuzz/$target"
work="${FUZZ_WORK:-}"
if [ -z "$work" ]; then
  work="$(mktemp -d "${TMPDIR:-/tmp}/agate-$target.XXXXXX")"
  keep=0
else
  keep=1
fi
mkdir -p "$work/corpus" "$work/artifacts"
cp -n "$here/corpus/$target"/* "$work/corpus/" 2>/dev/null || true

declare -A max_len=([fuzz_matrix_loader]=8192 [fuzz_cel]=512 [fuzz_evaluate_request]=4096
  [fuzz_policy_test]=16384)
echo "fuzz: $target for ${seconds}s in $work"
status=0
"$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len="${max_len[$target]}" -dict="$here/$target.dict" -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" 2> "$work/log" || status=$?
grep -E '^(stat::|#[0-9]+ +DONE)' "$work/log" || true
if [ "$status" -eq 72 ] && grep -q 'libFuzzer: run interrupted' "$work/log"; then
  # SIGINT/SIGTERM (libFuzzer's -interrupted_exit_code): the counts above are what ran; not a
  # failure of the target.
  echo "fuzz: $target interrupted"
  status=0
elif [ "$status" -ne 0 ]; then
  tail -n 60 "$work/log"
  echo "fuzz: $target FAILED (exit $status); reproducer(s):" "$work"/artifacts/*
  echo "fuzz: replay with: ${binary#"$root/"} FILE"
elif [ "$keep" -eq 0 ]; then
  rm -rf "$work"
fi
exit "$status"
