#!/usr/bin/env bash
# The status page in a real browser. Installs Debian's chromium when it is absent. The end-to-end test
# (test/browser: the tokend binary, vendor fakes, real Redis, the page opened in headless Chromium) runs
# in `go test ./...`; it skips without chromium and fails under CI, so scripts/check calls this script with
# --install-only before `go test`. With --test it also runs that test on its own (screenshots go to
# $TOKEND_ARTIFACTS when set).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
chromium --version 2>/dev/null
case "${1:-}" in
  --test) TOKEND_BROWSER_REQUIRED=1 exec go test -count=1 -timeout 5m -run '^TestStatusPageInChromium$' -v ./test/browser/ ;;
  *) echo "the browser test runs in go test ./... (test/browser); --test runs it alone" ;;
esac
