#!/usr/bin/env bash
# Regenerates the seed corpora in tests/fuzz/corpus/<target>/ (files named seed-*; the
# regression-* reproducers of fixed bugs are kept):
#   fuzz_matrix_loader     the bundled matrix, tests/testdata/matrices/*, tests/fuzz/matrices/*
#   fuzz_cel               the conditions of those matrices and tests/fuzz/cel_seeds.txt (a line each)
#   fuzz_evaluate_request  the sample requests (sample_requests.cc), via make_request_corpus
#   fuzz_policy_test       the policy test files in deploy/examples (*_test.yaml)
# Usage: tests/fuzz/make_corpus.sh [FUZZ_BUILD_DIR]   (default build-fuzz; it must have built
# make_request_corpus: cmake --preset fuzz && cmake --build --preset fuzz)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$(cd "${1:-$root/build-fuzz}" && pwd)"
corpus="$here/corpus"

for target in fuzz_matrix_loader fuzz_cel fuzz_evaluate_request fuzz_policy_test; do
  mkdir -p "$corpus/$target"
  rm -f "$corpus/$target"/seed-*
done

matrices=("$root/deploy/examples/escalation-matrix.yaml" "$root"/tests/testdata/matrices/*.yaml
          "$here"/matrices/*.yaml)
for m in "${matrices[@]}"; do
  cp "$m" "$corpus/fuzz_matrix_loader/seed-$(basename "$m" .yaml)"
done

n=0
{
  # `when:` conditions written on one line in the matrices (quotes stripped), then the list.
  sed -n "s/^ *when: *//p" "${matrices[@]}" | sed "s/^'\(.*\)'$/\1/" | grep -v '^[|>]'
  cat "$here/cel_seeds.txt"
} | sort -u | while IFS= read -r expression; do
  n=$((n + 1))
  printf '%s' "$expression" > "$corpus/fuzz_cel/$(printf 'seed-%02d' "$n")"
done

"$build/tests/fuzz/make_request_corpus" "$corpus/fuzz_evaluate_request"
for f in "$corpus/fuzz_evaluate_request"/*.pb; do mv "$f" "$corpus/fuzz_evaluate_request/seed-$(basename "$f" .pb)"; done
for t in "$root"/deploy/examples/*_test.yaml; do
  cp "$t" "$corpus/fuzz_policy_test/seed-$(basename "$t" .yaml)"
done
echo "make_corpus: $(ls "$corpus"/fuzz_matrix_loader | wc -l) matrices," \
  "$(ls "$corpus"/fuzz_cel | wc -l) conditions, $(ls "$corpus"/fuzz_evaluate_request | wc -l) requests," \
  "$(ls "$corpus"/fuzz_policy_test | wc -l) policy test files"
