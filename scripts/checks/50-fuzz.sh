#!/usr/bin/env bash
# Runs every fuzz target briefly: decoders of vendor answers and the config loader must not panic on any
# input. CI gives each target a budget of executions (FUZZTIME, default 20000x): a count has no wall-clock
# deadline, which go1.26's fuzz coordinator can race at the end of a duration budget and report as a bare
# "context deadline exceeded" failure with nothing found (golang/go#75804, fixed in go1.27). Long runs:
# FUZZTIME=5m bash scripts/checks/50-fuzz.sh; with a duration, a failure that is only that race (no
# failing input written, no panic) is run once more, and fails the check if it comes back.
# Each target's last progress line (elapsed, executions) is printed, for docs/reliability.md.
set -euo pipefail
fuzztime=${FUZZTIME:-20000x}
log=$(mktemp /tmp/tokend-fuzz.XXXXXX)
trap 'rm -f "$log"' EXIT

# deadline_race tells whether a failed run's log is only the coordinator's end-of-budget race.
deadline_race() {
  grep -q 'context deadline exceeded' "$log" && ! grep -qE 'Failing input written|panic:' "$log"
}

for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    run() { go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; }
    if ! run; then
      if deadline_race; then
        echo "fuzz $pkg $target: the fuzz coordinator's deadline race (golang/go#75804), nothing found; running it again"
        run || { cat "$log"; exit 1; }
      else
        cat "$log"
        exit 1
      fi
    fi
    last=$(grep -o 'elapsed: .*execs: [0-9]*' "$log" | tail -1 || true)
    echo "fuzz $pkg $target ($fuzztime): ${last:-no progress line}"
  done
done
