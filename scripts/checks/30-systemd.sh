#!/usr/bin/env bash
# The systemd unit: `systemd-analyze verify` (unknown keys, bad values, executables that are not there) and
# `systemd-analyze security --offline=true --threshold=15` (exposure 1.5 at most), on systemd/tokend.service
# alone and with each drop-in of systemd/examples/. Needs no running systemd: verify works on a scratch root
# that holds the unit and a stub for each program it executes.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "installing systemd (for systemd-analyze)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq systemd >/dev/null
fi
systemd-analyze --version | head -1

unit=systemd/tokend.service
threshold=15 # tenths: 1.5
root=$(mktemp -d /tmp/tokend-unit-XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/systemd/system/tokend.service.d" "$root/usr/bin"
cp "$unit" "$root/etc/systemd/system/tokend.service"

# verify insists that every Exec*= program exists and is executable under the root: stub each one (the
# real tokend is not what is checked here). Bare names (kill) are looked up in the usual bin directories.
sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "$unit" | sort -u | while read -r prog; do
  case "$prog" in
    /*) stub="$root$prog" ;;
    *) stub="$root/usr/bin/$prog" ;;
  esac
  mkdir -p "$(dirname "$stub")"
  printf '#!/bin/sh\nexit 0\n' >"$stub"
  chmod 0755 "$stub"
done

fail=0
check() { # $1: what is checked
  local out
  # --recursive-errors=no: fail on a warning about tokend.service itself, not on units it names.
  if ! out=$(systemd-analyze verify --root="$root" --man=no --recursive-errors=no \
    /etc/systemd/system/tokend.service 2>&1); then
    echo "FAIL: systemd-analyze verify ($1):"; echo "$out"; fail=1
  fi
  if ! out=$(cd "$root/etc/systemd/system" && systemd-analyze security --offline=true --root="$root" \
    --threshold=$threshold tokend.service 2>&1); then
    echo "FAIL: systemd-analyze security --offline=true --threshold=$threshold ($1):"; echo "$out"; fail=1
  fi
  echo "$1: $(echo "$out" | grep -o 'Overall exposure level.*' || echo 'no exposure figure')"
}

check "$unit"
for dropin in systemd/examples/*.conf; do
  [ -e "$dropin" ] || continue
  cp "$dropin" "$root/etc/systemd/system/tokend.service.d/"
  check "$unit + $dropin"
  rm "$root/etc/systemd/system/tokend.service.d/$(basename "$dropin")"
done
exit $fail
