#!/usr/bin/env bash
# Runs every fuzz target briefly (FUZZTIME, default 3s each): decoders of vendor answers and the config
# loader must not panic on any input. Long runs: FUZZTIME=5m bash scripts/checks/50-fuzz.sh
set -euo pipefail
fuzztime=${FUZZTIME:-3s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/tokend-fuzz.log 2>&1 || { cat /tmp/tokend-fuzz.log; exit 1; }
  done
done
