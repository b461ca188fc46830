#!/usr/bin/env bash
# Redis failover: runs tokend's rotations on a 3-master 3-replica Redis Cluster and on a master, a replica
# and three Sentinels, kills the master mid-rotation, and checks nothing is lost (test/redisha). The tests
# start their own servers on loopback ports from 17000 (and 27000 for the cluster bus) and stop them by PID.
# Installs Debian's redis-server, redis-sentinel and redis-tools when missing. About 40s.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  # The packages start their own services where an init system runs them; the tests need none of them.
fi

TOKEND_REDIS_HA=1 go test -count=1 -timeout 5m -v -run 'TestClusterFailover|TestSentinelFailover' ./test/redisha/ 2>&1 |
  tee /tmp/tokend-redis-ha.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|FIGURES|tokens per master' || true
grep -q '^ok' /tmp/tokend-redis-ha.log || { cat /tmp/tokend-redis-ha.log; exit 1; }
