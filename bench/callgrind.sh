#!/usr/bin/env bash
# callgrind.sh [BUILD_DIR]: instructions per call of the request path, counted by valgrind's
# callgrind (repeatable whatever else the machine does, unlike timings).
#
# For each (benchmark, function) pair below it runs build/bench/engine_bench under callgrind,
# counting only inside the function, and divides the instructions by the number of calls.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() {  # benchmark filter, function (demangled prefix), label[, benchmark min time]
  valgrind --tool=callgrind --callgrind-out-file="$work/out" --toggle-collect="$2*" \
    --compress-strings=no "$build/bench/engine_bench" --benchmark_filter="$1" \
    --benchmark_min_time="${4:-0.3}" >/dev/null 2>&1
  /usr/bin/python3 - "$work/out" "$2" "$3" <<'PY'
import sys
# Each "cfn=<function>" is followed by "calls=<n> ..." and a line whose last number is the
# inclusive instruction count of those n calls. The record with the most calls is the steady
# state (the first calls carry one-time set-up: the benchmark's warm-up, OpenSSL's first fetch).
path, fn, label = sys.argv[1], sys.argv[2], sys.argv[3]
records, target, calls = [], False, None
for line in open(path):
    if line.startswith("cfn="):
        target = line[4:].strip().startswith(fn)
    elif line.startswith("calls=") and target:
        calls = int(line[6:].split()[0])
    elif calls is not None:
        records.append((calls, int(line.split()[-1])))
        calls, target = None, False
n, ir = max(records) if records else (0, 0)
print(f"callgrind: {label:<56} {ir / max(n, 1):>9,.0f} instructions/call ({n} calls)")
PY
}

measure 'BM_EvaluateAllow$' 'agate::engine::Evaluator::Evaluate(' 'Evaluator::Evaluate, ALLOW (bundled matrix)'
measure 'BM_EvaluateThreeLanes' 'agate::engine::Evaluator::Evaluate(' 'Evaluator::Evaluate, three lanes fire'
measure 'BM_ServiceEvaluateAllow/0/0' 'agate::server::Service::Evaluate(' 'Service::Evaluate, ALLOW, memory store'
measure 'BM_ServiceEvaluateReplay' 'agate::server::Service::Evaluate(' 'Service::Evaluate, replayed request_id'
measure 'BM_ServiceEvaluateDurable/0' 'agate::server::Service::Evaluate(' 'Service::Evaluate, ALLOW, sqlite store + decision log' 20
measure 'BM_ServiceEvaluateDurable/1' 'agate::server::Service::Evaluate(' 'Service::Evaluate, BLOCK opening a case, sqlite + log' 20
