#!/usr/bin/env bash
# make demo: runs ferry end to end on local stand-ins the test bed starts.
set -euo pipefail
cd "$(dirname "$0")/.."
export FERRY_TESTBIN="${FERRY_TESTBIN:-$PWD/.testbin}"
go test -tags demo -count=1 -run '^TestDemo$' -v ./internal/demo | grep -v -E '^(=== RUN|--- PASS|PASS$|ok )'
