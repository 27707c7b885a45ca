#!/usr/bin/env bash
# make demo: runs ferry end to end on local stand-ins the test bed starts,
# then checks that the plan's volume count is what the collect wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
export FERRY_TESTBIN="${FERRY_TESTBIN:-$PWD/.testbin}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
go test -tags demo -count=1 -run '^TestDemo$' -v ./internal/demo | grep -v -E '^(=== RUN|--- PASS|PASS$|ok )' | tee "$out" || status=$?
# The last plan before the first collect, and the volumes that collect
# reported as complete.
planned=$(awk '/^## Collect into/ { exit } / volume\(s\)$/ { n = $(NF-1) } END { print n }' "$out")
written=$(grep -cE '^volume [0-9]+ complete' "$out" || true)
if [[ -n "$planned" && "$written" -gt 0 ]]; then
	if [[ "$planned" != "$written" ]]; then
		echo "demo: --plan said $planned volume(s), collect wrote $written" >&2
		exit 1
	fi
	echo "demo: --plan and collect agree: $written volume(s)"
fi
exit "$status"
