package store

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/store/storetest"
)

// Benchmarks of the store's hot paths against the real Redis (skipped when none answers outside CI). Each
// uses its own key prefix and deletes its keys afterwards. The "rtt/op" figure counts the round trips one
// operation makes (a pipeline is one), from a go-redis hook.

// benchStore returns a store on the real Redis under a fresh prefix, with a round-trip counter, and deletes
// the prefix's keys when the benchmark ends.
func benchStore(b *testing.B) (*Store, *storetest.RoundTrips) {
	b.Helper()
	rdb := storetest.RealRedis(b)
	c := &storetest.RoundTrips{}
	rdb.AddHook(c)
	s, err := New(rdb, testKey(), Options{Prefix: storetest.Prefix(b, rdb, "tokendbench"), Instance: "bench", LeaseTTL: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	return s, c
}

// benchToken is a token as a renewable vendor gives it: secret, refresh credential, times, one attribute.
func benchToken(i int, now time.Time) *providers.Token {
	return &providers.Token{
		ID: "tok-" + strconv.Itoa(i), Name: "tokend-token-" + strconv.Itoa(i) + "-g1",
		Secret:   providers.NewSecret("fake-secret-0123456789abcdef0123456789abcdef01234567"),
		Refresh:  providers.NewSecret("fake-refresh-0123456789abcdef0123456789abcdef0123456"),
		IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour), CreatedAt: now, Attrs: map[string]string{"vendor": "fake"},
	}
}

// seed writes n tokens' states (a current token, generation, next action, delivery mark) with pipelines,
// as a tokend that rotated each once leaves them.
func seed(b testing.TB, s *Store, n int) []string {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	names := make([]string, n)
	for i := range names {
		names[i] = "token-" + strconv.Itoa(i)
	}
	for i := 0; i < n; i += 1000 {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j := i; j < min(i+1000, n); j++ {
				cur, err := s.encodeToken(names[j], benchToken(j, now))
				if err != nil {
					return err
				}
				at := now.Add(24*time.Hour - 10*time.Minute).UnixMilli()
				p.HSet(ctx, s.stateKey(names[j]), fFence, 1, fGen, 1, fCur, cur, fLastSuccess, now.UnixMilli(),
					fNextAction, "renew", fNextAt, at, fDelivered+"bench", 1)
				p.ZAdd(ctx, s.dueKey(), redis.Z{Score: float64(at), Member: names[j]})
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return names
}

// BenchmarkLoad reads the whole state of n tokens (pipelined HGETALL in batches of 1,000, then decrypting
// and decoding): the read half of a restart. ns/token is the cost per token.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			s, c := benchStore(b)
			names := seed(b, s, n)
			ctx := context.Background()
			c.RTT.Store(0)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				all, err := s.Load(ctx, names)
				if err != nil || len(all) != n {
					b.Fatalf("Load() = %d states, %v", len(all), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
			b.ReportMetric(float64(c.RTT.Load())/float64(b.N), "rtt/op")
		})
	}
}

// BenchmarkScheduleAll is the write half of a restart as LoadAll does it today: one Schedule (a pipeline of
// ZADD and HSET) per token, one after the other.
func BenchmarkScheduleAll(b *testing.B) {
	const n = 1_000
	s, c := benchStore(b)
	names := seed(b, s, n)
	ctx := context.Background()
	at := time.Now().Add(time.Hour)
	c.RTT.Store(0)
	b.ResetTimer()
	for b.Loop() {
		for _, name := range names {
			if err := s.Schedule(ctx, name, "renew", at); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
	b.ReportMetric(float64(c.RTT.Load())/float64(b.N*n), "rtt/token")
}

// BenchmarkDecodeState is the CPU half of Load for one token: JSON and two AES-GCM opens.
func BenchmarkDecodeState(b *testing.B) {
	s, err := New(nil, testKey(), Options{Instance: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	cur, _ := s.encodeToken("token-1", benchToken(1, now))
	h := map[string]string{fFence: "3", fGen: "2", fCur: cur, fLastSuccess: "1700000000000", fNextAction: "renew",
		fNextAt: "1700000000000", fDelivered + "bench": "2"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.decodeState("token-1", h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPromote measures the promote script alone; the pending token it promotes is written (Lease.Apply)
// with the timer stopped.
func BenchmarkPromote(b *testing.B) {
	s, c := benchStore(b)
	ctx := context.Background()
	l, _, err := s.Acquire(ctx, "token-1")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	if err := l.Apply(ctx, new(Change).SetCurrent(benchToken(0, now), 1)); err != nil {
		b.Fatal(err)
	}
	pend := new(Change).SetPending(benchToken(1, now))
	var rtt int64
	gen := int64(1)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if err := l.Apply(ctx, pend); err != nil {
			b.Fatal(err)
		}
		before := c.RTT.Load()
		b.StartTimer()
		gen++
		// keepPrevious false: a renew keeps the vendor-side id, so nothing becomes previous.
		if err := l.Promote(ctx, gen, false, now.Add(15*time.Minute), now); err != nil {
			b.Fatal(err)
		}
		rtt += c.RTT.Load() - before
	}
	b.ReportMetric(float64(rtt)/float64(b.N), "rtt/op")
}

// BenchmarkAcquireRelease is the lease taken and given back around every step of every rotation.
func BenchmarkAcquireRelease(b *testing.B) {
	s, c := benchStore(b)
	names := seed(b, s, 1)
	ctx := context.Background()
	c.RTT.Store(0)
	b.ResetTimer()
	for b.Loop() {
		l, _, err := s.Acquire(ctx, names[0])
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.RTT.Load())/float64(b.N), "rtt/op")
}

// BenchmarkDue is the scheduler loop's read of the due index with 10,000 entries, 1,016 of them due.
func BenchmarkDue(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	now := time.Now()
	for i := 0; i < 10_000; i += 1000 {
		zs := make([]redis.Z, 0, 1000)
		for j := i; j < i+1000; j++ {
			zs = append(zs, redis.Z{Score: float64(now.Add(time.Duration(j-1016) * time.Second).UnixMilli()), Member: "token-" + strconv.Itoa(j)})
		}
		if err := s.rdb.ZAdd(ctx, s.dueKey(), zs...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		items, err := s.Due(ctx, now, 1016)
		if err != nil || len(items) != 1016 {
			b.Fatalf("Due() = %d items, %v", len(items), err)
		}
	}
}
