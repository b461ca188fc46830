#!/usr/bin/env bash
# Alert rules: promtool check rules and promtool test rules (configs/prometheus/alerts_test.yaml). Installs
# Debian's prometheus package (promtool and the server) when either is missing. The end-to-end test in
# test/prometheus runs both (it skips without them, and fails under CI=true), so scripts/check calls this
# script with --install-only before `go test`.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  echo "installing prometheus (promtool and server)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # The package's postinst may try to start a service; under no init system that is harmlessly skipped.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool --version 2>&1 | head -1
[ "${1:-}" = "--install-only" ] && exit 0

promtool check rules configs/prometheus/alerts.yaml
promtool test rules configs/prometheus/alerts_test.yaml
