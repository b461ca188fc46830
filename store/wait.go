package store

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis replicates asynchronously: a master acknowledges a write before any replica has it, so a failover
// (Sentinel or Cluster promoting a replica) can lose the writes of the last moments. Most of tokend's
// state can be lost that way and rebuilt (a schedule, a delivery mark, a failure count), but three writes
// cannot:
//
//   - the intent of a rotation, written before the vendor is called: without it a vendor-side token whose
//     secret never reached Redis could not be found and revoked, and a renew whose outcome is unknown
//     would be retried with a rotating refresh credential the vendor already replaced (a replay);
//   - the pending token, written the moment the vendor answered: its secret exists nowhere else;
//   - the promote: it is what lets tokend revoke the token before it.
//
// These go to the master together with a WAIT in one pipeline, on one connection (WAIT counts the
// replicas that have every write that connection made), so they reach a replica before tokend acts on
// them, at no extra round trip. Replication is ordered, so a write that reached a replica carries every
// earlier write with it (the lease's fencing counter, the intent before the pending token).

// WaitOptions say how the writes that must survive a failover wait for replicas.
type WaitOptions struct {
	// Replicas is how many replicas must acknowledge such a write. 0 detects: wait for one when the
	// master the write goes to has an online replica (INFO replication, re-read every RecheckEvery), else
	// do not wait. A positive value always waits for that many; a negative value never waits.
	Replicas int
	// Timeout is how long a write waits for the acknowledgement; default 500ms, at most 2s (it must stay
	// below the client's read timeout). Redis checks it on its cron tick (hz 10: about 100ms steps). A
	// write that times out is kept (the master has it): tokend goes on, logs a warning and counts it in
	// WaitStats.Unacked.
	Timeout time.Duration
	// RecheckEvery is how long a detected replica count is trusted; default 5s. A write whose WAIT timed
	// out stops the waiting on that master until the next check sees an online replica again.
	RecheckEvery time.Duration
}

// WaitStats counts the writes that waited for replicas.
type WaitStats struct {
	Acked     uint64 // acknowledged by enough replicas in time
	Unacked   uint64 // not acknowledged in time (or WAIT refused): kept on the master only
	Unchecked uint64 // sent without WAIT because the master has no online replica (detected)
}

type waiter struct {
	opts WaitOptions
	log  *slog.Logger

	mu          sync.Mutex
	nodes       map[string]nodeReplicas // by node address
	infoRefused map[string]bool         // nodes whose INFO failed, warned about once

	acked, unacked, unchecked atomic.Uint64
}

type nodeReplicas struct {
	online    int
	checkedAt time.Time
}

func newWaiter(o WaitOptions, log *slog.Logger) *waiter {
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
	o.Timeout = min(o.Timeout, 2*time.Second)
	if o.RecheckEvery <= 0 {
		o.RecheckEvery = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &waiter{opts: o, log: log, nodes: map[string]nodeReplicas{}, infoRefused: map[string]bool{}}
}

// WaitStats returns how the writes that must survive a failover fared.
func (s *Store) WaitStats() WaitStats {
	if s.wait == nil {
		return WaitStats{}
	}
	return WaitStats{Acked: s.wait.acked.Load(), Unacked: s.wait.unacked.Load(), Unchecked: s.wait.unchecked.Load()}
}

// durable reports whether c holds a write that must survive a failover: a new intent or a pending token.
func (c *Change) durable() bool {
	_, intent := c.set[fIntent]
	_, pend := c.set[fPend]
	return intent || pend
}

// runDurable runs a fenced write script on the master of key and, when that master has replicas, waits
// until one has the write. Without replicas, or for writes that need not wait, it runs the script as
// before. The scripts it runs are idempotent for their caller (a retried Apply writes the same fields, a
// retried Promote finds its own generation), so a write whose answer was lost may be sent again.
func (s *Store) runDurable(ctx context.Context, sc *redis.Script, durable bool, op string, keys []string, args ...any) *redis.Cmd {
	w := s.wait
	if !durable || w == nil || w.opts.Replicas < 0 {
		return sc.Run(ctx, s.rdb, keys, args...)
	}
	node, addr, err := s.masterFor(ctx, keys[0])
	if err != nil || node == nil {
		// No node to pin the write to (the cluster map is being rebuilt, or an unknown client type): write
		// through the client, which follows redirects, and say the write was not confirmed.
		cmd := sc.Run(ctx, s.rdb, keys, args...)
		if cmd.Err() == nil {
			w.missed(op, keys[0], addr, 0, 1, err)
		}
		return cmd
	}
	want := w.want(ctx, node, addr)
	if want == 0 {
		w.unchecked.Add(1)
		return sc.Run(ctx, s.rdb, keys, args...)
	}
	ev, wt := evalWait(ctx, node, sc, false, keys, args, want, w.opts.Timeout)
	if redis.HasErrorPrefix(ev.Err(), "NOSCRIPT") {
		ev, wt = evalWait(ctx, node, sc, true, keys, args, want, w.opts.Timeout)
	}
	if err := ev.Err(); err != nil && !errors.Is(err, redis.Nil) {
		if isRedisReply(err) && !isRedirect(err) {
			return ev // the script's own answer (a Lua error): nothing was written
		}
		// The node moved or went away under the write: go through the client, which follows the cluster's
		// redirects and the Sentinels' new master. The write may have been applied already; the scripts are
		// idempotent for their caller.
		w.forget(addr)
		cmd := sc.Run(ctx, s.rdb, keys, args...)
		if cmd.Err() == nil {
			w.missed(op, keys[0], addr, 0, want, err)
		}
		return cmd
	}
	n, werr := wt.Int64()
	if werr != nil || n < int64(want) {
		w.missed(op, keys[0], addr, n, want, werr)
		w.noReplicaUntilRecheck(addr)
		return ev
	}
	w.acked.Add(1)
	return ev
}

// evalWait sends the script and WAIT want timeout in one pipeline on node's connection.
func evalWait(ctx context.Context, node *redis.Client, sc *redis.Script, full bool, keys []string, args []any, want int, timeout time.Duration) (*redis.Cmd, *redis.Cmd) {
	var ev, wt *redis.Cmd
	// Pipelined's error is the first command's error, which ev and wt already carry.
	_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
		if full {
			ev = sc.Eval(ctx, p, keys, args...)
		} else {
			ev = sc.EvalSha(ctx, p, keys, args...)
		}
		wt = p.Do(ctx, "wait", want, timeout.Milliseconds())
		return nil
	})
	return ev, wt
}

// masterFor returns a client of the one server that holds key and its address, for a WAIT on the
// connection that wrote. A standalone or Sentinel client is its own master (the Sentinel client follows
// failovers itself); a cluster client names the slot's master.
func (s *Store) masterFor(ctx context.Context, key string) (*redis.Client, string, error) {
	switch c := s.rdb.(type) {
	case *redis.Client:
		return c, c.Options().Addr, nil
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, "", err
		}
		return n, n.Options().Addr, nil
	}
	return nil, "", nil
}

// want returns how many replicas a durable write to the master at addr waits for.
func (w *waiter) want(ctx context.Context, node *redis.Client, addr string) int {
	if w.opts.Replicas > 0 {
		return w.opts.Replicas
	}
	now := time.Now()
	w.mu.Lock()
	nr, ok := w.nodes[addr]
	w.mu.Unlock()
	if ok && now.Sub(nr.checkedAt) < w.opts.RecheckEvery {
		return min(nr.online, 1)
	}
	info, err := node.Info(ctx, "replication").Result()
	online := 0
	if err == nil {
		online = onlineReplicas(info)
	}
	w.mu.Lock()
	w.nodes[addr] = nodeReplicas{online: online, checkedAt: now}
	warn := err != nil && !w.infoRefused[addr]
	if err != nil {
		w.infoRefused[addr] = true
	}
	w.mu.Unlock()
	if warn {
		// An ACL without +info, or a managed service, refuses INFO: without a replica count, do not wait
		// (a positive WaitOptions.Replicas waits anyway). Said once per node; re-checked like a count.
		w.log.Warn("reading Redis replication info (allow INFO to tokend's ACL user); writes will not wait for replicas",
			"addr", addr, "err", err)
	}
	return min(online, 1)
}

// noReplicaUntilRecheck stops waiting on addr until its replicas are checked again: a master whose
// replica is gone (it was just promoted, the replica died) would otherwise delay every write by Timeout.
func (w *waiter) noReplicaUntilRecheck(addr string) {
	if w.opts.Replicas > 0 {
		return
	}
	w.mu.Lock()
	w.nodes[addr] = nodeReplicas{online: 0, checkedAt: time.Now()}
	w.mu.Unlock()
}

// forget drops what is known of addr's replicas, so the next write checks again.
func (w *waiter) forget(addr string) {
	w.mu.Lock()
	delete(w.nodes, addr)
	w.mu.Unlock()
}

func (w *waiter) missed(op, key, addr string, got int64, want int, err error) {
	w.unacked.Add(1)
	attrs := []any{"op", op, "key", key, "addr", addr, "replicas_acked", got, "replicas_wanted", want}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	w.log.Warn("a write that must survive a Redis failover reached no replica in time; it is on the master only", attrs...)
}

// onlineReplicas counts the replicas INFO replication lists as online.
func onlineReplicas(info string) int {
	n := 0
	for line := range strings.SplitSeq(info, "\n") {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(k, "slave") || strings.TrimLeft(k[len("slave"):], "0123456789") != "" || k == "slave" {
			continue
		}
		if strings.Contains(","+v+",", ",state=online,") {
			n++
		}
	}
	return n
}

// isRedisReply reports whether err is an error reply from the server, not a network or client error.
func isRedisReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// isRedirect reports whether err is a cluster reply that means the key is served elsewhere or not yet.
func isRedirect(err error) bool {
	if _, ok := redis.IsMovedError(err); ok {
		return true
	}
	if _, ok := redis.IsAskError(err); ok {
		return true
	}
	return redis.IsClusterDownError(err) || redis.IsTryAgainError(err) || redis.HasErrorPrefix(err, "READONLY") ||
		redis.HasErrorPrefix(err, "LOADING") || redis.HasErrorPrefix(err, "MASTERDOWN")
}
