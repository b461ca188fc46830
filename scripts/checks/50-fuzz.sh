#!/usr/bin/env bash
# Runs every fuzz target briefly (FUZZTIME, default 3s each): decoders of vendor answers and the config
# loader must not panic on any input. Long runs: FUZZTIME=5m bash scripts/checks/50-fuzz.sh
# Each target's last progress line (elapsed, executions) is printed, for docs/reliability.md.
set -euo pipefail
fuzztime=${FUZZTIME:-3s}
log=$(mktemp /tmp/tokend-fuzz.XXXXXX)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1 || { cat "$log"; exit 1; }
    last=$(grep -o 'elapsed: .*execs: [0-9]*' "$log" | tail -1 || true)
    echo "fuzz $pkg $target ($fuzztime): ${last:-no progress line}"
  done
done
