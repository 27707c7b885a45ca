#!/usr/bin/env bash
# make bench: the performance targets, each printed as a ratio against the
# plain tools doing the same work on the same content in the same run.
# Nothing here asserts timings; read the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
export FERRY_TESTBIN="${FERRY_TESTBIN:-$PWD/.testbin}"

echo "== archive writer and reader (Go benchmarks)"
go test -run '^$' -bench . -benchmem ./archive

for part in collect ingest; do
  if [[ -f "hack/bench-$part.sh" ]]; then
    echo
    echo "== $part"
    bash "hack/bench-$part.sh"
  fi
done
