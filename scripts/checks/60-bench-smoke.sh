#!/usr/bin/env bash
# Keeps the performance tooling from rotting: runs tokendbench in its seconds-long smoke mode (300 tokens,
# every phase, redis-benchmark with few requests) against the Redis scripts/check started, and every Go
# benchmark once. tokendbench exits non-zero when a phase's sanity check fails (a token not scheduled, a
# renewal that did not happen, work done while idle, a scrape without the tokens' series).
# The figures in docs/benchmarks.md come from a full run: go run ./cmd/tokendbench (see that file).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v redis-benchmark >/dev/null 2>&1; then
  echo "installing redis-tools (redis-benchmark)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-tools >/dev/null
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! go run ./cmd/tokendbench -smoke 2>"$log"; then
  cat "$log"
  exit 1
fi

go test -run '^$' -bench . -benchtime 1x ./scheduler/ ./store/ ./rotation/ ./metrics/ >"$log" 2>&1 || { cat "$log"; exit 1; }
grep -E '^(Benchmark|ok|FAIL)' "$log"
