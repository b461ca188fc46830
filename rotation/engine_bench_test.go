package rotation

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/storetest"
)

// Benchmarks of the engine against the real Redis (skipped when none answers outside CI) and a zero-latency
// in-memory vendor (providertest.Fake). "rtt/op" counts Redis round trips (a pipeline is one) with a go-redis
// hook: DESIGN.md section 9 asks for at most 6 per rotation.

// benchEngine returns an engine over n tokens of one renewable Fake (24h lifetime, renewed 10 minutes
// before expiry, no sinks) on the real Redis under a fresh prefix that is deleted afterwards.
func benchEngine(b *testing.B, n int) (*Engine, *storetest.RoundTrips, *store.Store) {
	b.Helper()
	rdb := storetest.RealRedis(b)
	hook := &storetest.RoundTrips{}
	rdb.AddHook(hook)
	prefix := storetest.Prefix(b, rdb, "tokendbench")
	st, err := store.New(rdb, []byte("0123456789abcdef0123456789abcdef"), store.Options{Prefix: prefix, Instance: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	fake := providertest.NewFake(providertest.FakeOptions{Lifetime: 24 * time.Hour, Renewable: true})
	pol := config.Builtins()
	pol.RenewBefore = config.Window{Dur: 10 * time.Minute}
	pol.Jitter = 0
	tokens := make(map[string]*Token, n)
	for i := range n {
		name := "token-" + strconv.Itoa(i)
		tokens[name] = &Token{Config: config.Token{Name: name, Provider: "fake", Kind: "access_token"}, Policy: pol,
			Provider: fake.Provider(), ProviderName: "fake"}
	}
	return New(st, tokens, Options{}), hook, st
}

// BenchmarkWorkRenew is one whole renewal through Engine.Work: lease, intent, vendor renew, persist pending,
// verify, promote, publish, release, re-read, reschedule. The rotation request that makes the token due
// (tokend rotate) runs with the timer stopped and is not counted in rtt/op.
func BenchmarkWorkRenew(b *testing.B) {
	e, hook, st := benchEngine(b, 1)
	ctx := context.Background()
	e.Work(ctx, "token-0") // creates the first token
	var rtt, cmds int64
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if err := st.RequestRotation(ctx, "token-0", time.Now(), false); err != nil {
			b.Fatal(err)
		}
		r0, c0 := hook.RTT.Load(), hook.Cmds.Load()
		b.StartTimer()
		e.Work(ctx, "token-0")
		rtt += hook.RTT.Load() - r0
		cmds += hook.Cmds.Load() - c0
	}
	b.StopTimer()
	s, _ := e.Snapshot("token-0")
	if s.Generation < int64(b.N)+1 || s.State != StateCurrent {
		b.Fatalf("after %d renewals: generation %d, state %s", b.N, s.Generation, s.State)
	}
	b.ReportMetric(float64(rtt)/float64(b.N), "rtt/op")
	b.ReportMetric(float64(cmds)/float64(b.N), "cmds/op")
}

// BenchmarkLoadAll is a start of 10,000 tokens none of which has a token yet (each gets a create): read
// every state, decide, and write every token's next action to the due index. tokendbench measures the
// restart over real state at 1k, 10k and 100k.
func BenchmarkLoadAll(b *testing.B) {
	const n = 10_000
	e, hook, _ := benchEngine(b, n)
	ctx := context.Background()
	if err := e.LoadAll(ctx); err != nil { // schedules a create for every token: no state yet
		b.Fatal(err)
	}
	measureLoadAll(b, e, hook, n)
}

// BenchmarkLoadAllCurrent is a restart of 10,000 tokens that each hold a current token: read every state,
// decrypt it (two AES-GCM opens and JSON per token, on GOMAXPROCS goroutines), decide, and schedule, 1,000
// tokens per batch with the next batches read and decoded while one is scheduled.
func BenchmarkLoadAllCurrent(b *testing.B) {
	const n = 10_000
	e, hook, _ := benchEngine(b, n)
	ctx := context.Background()
	if err := e.LoadAll(ctx); err != nil {
		b.Fatal(err)
	}
	names := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for name := range names {
				e.Work(ctx, name) // the first create
			}
		})
	}
	for name := range e.Tokens() {
		names <- name
	}
	close(names)
	wg.Wait()
	for _, s := range e.Snapshots() {
		if s.State != StateCurrent {
			b.Fatalf("%s is %s after its create, want current", s.Name, s.State)
		}
	}
	measureLoadAll(b, e, hook, n)
}

// measureLoadAll times LoadAll of the n tokens of e, reporting time per token and round trips per LoadAll.
func measureLoadAll(b *testing.B, e *Engine, hook *storetest.RoundTrips, n int) {
	ctx := context.Background()
	hook.RTT.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := e.LoadAll(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
	b.ReportMetric(float64(hook.RTT.Load())/float64(b.N), "rtt/op")
}
