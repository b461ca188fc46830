// Package redisha holds integration tests that run tokend's store and rotation engine on Redis Sentinel
// and Redis Cluster while a master is killed and a replica promoted. The tests start their own
// redis-server and redis-sentinel processes on loopback ports, from Debian's redis-server and
// redis-sentinel packages, and stop them by PID. They run when TOKEND_REDIS_HA=1 (scripts/checks/70-redis-ha.sh
// sets it); see docs/redis.md for what they prove and the figures they measured.
package redisha
