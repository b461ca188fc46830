#!/usr/bin/env bash
# Reliability suite (test/reliability, docs/reliability.md): the real tokend binary against the four vendor
# fakes and a redis-server the tests start themselves on loopback ports (AOF) and stop by PID. Scenarios:
# kill -9 at random moments, Redis killed and restarted mid-run, vendor faults, three instances on one Redis
# (one killed repeatedly), and a corpus of broken configs. Short mode (CI): about 2-3 minutes.
# Long mode, for the published figures: RELIABILITY_LONG=1 bash scripts/checks/80-reliability.sh
# Installs Debian's redis-server when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

timeout=6m
if [ "${RELIABILITY_LONG:-}" = 1 ]; then
  export TOKEND_RELIABILITY_LONG=1
  timeout=120m
fi
log=/tmp/tokend-reliability.log
TOKEND_RELIABILITY=1 go test -count=1 -timeout "$timeout" -parallel 6 -v ./test/reliability/ >"$log" 2>&1 || true
grep -E '^(=== RUN|--- |PASS|FAIL|ok)|FIGURES|kept in' "$log" | grep -v '^=== RUN' || true
grep -q '^ok' "$log" || { grep -vE '^ +\{' "$log" | tail -100; exit 1; }
