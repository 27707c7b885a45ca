#!/usr/bin/env bash
# make bench: the performance targets, each printed as a ratio against the
# plain tools doing the same work on the same content in the same run.
# Nothing here asserts timings; read the numbers. Every part runs even when
# an earlier one missed its target, so one run prints all the numbers; the
# exit status is non-zero at the end if any part failed or missed a target.
set -uo pipefail
cd "$(dirname "$0")/.."
export FERRY_TESTBIN="${FERRY_TESTBIN:-$PWD/.testbin}"

failed=()

echo "== archive writer and reader (Go benchmarks)"
go test -run '^$' -bench . -benchmem ./archive || failed+=(archive)

for part in collect ingest; do
  if [[ -f "hack/bench-$part.sh" ]]; then
    echo
    echo "== $part"
    bash "hack/bench-$part.sh" || failed+=("$part")
  fi
done

echo
if (( ${#failed[@]} > 0 )); then
  echo "bench: target missed or bench failed: ${failed[*]}"
  exit 1
fi
echo "bench: every target met"
