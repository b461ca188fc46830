package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// RoundTrips is a go-redis hook that counts round trips to Redis (a pipeline is one) and the commands in
// them: the "rtt/op" of the benchmarks (DESIGN.md section 9 asks for at most 6 per rotation).
type RoundTrips struct{ RTT, Cmds atomic.Int64 }

var _ redis.Hook = (*RoundTrips)(nil)

func (c *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.RTT.Add(1)
		c.Cmds.Add(1)
		return next(ctx, cmd)
	}
}

func (c *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.RTT.Add(1)
		c.Cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// Prefix returns a key prefix of its own for one test or benchmark on the shared Redis (name, then random
// hex), whose keys are deleted when it ends.
func Prefix(tb testing.TB, rdb redis.UniversalClient, name string) string {
	nonce := make([]byte, 4)
	_, _ = rand.Read(nonce)
	prefix := name + "-" + hex.EncodeToString(nonce)
	tb.Cleanup(func() { DeletePrefix(context.Background(), rdb, prefix) })
	return prefix
}

// DeletePrefix deletes every key under prefix, a thousand at a time.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) {
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			rdb.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		rdb.Unlink(ctx, keys...)
	}
}
