package rotation

import (
	"context"
	"testing"
)

// BenchmarkPollUnchanged is one poll of a token the vendor reports unchanged and that is not due: what
// every token costs on every provider poll (docs/benchmarks.md, "Idle CPU and polls"). "rtt/op" counts
// Redis round trips with the go-redis hook of engine_bench_test.go.
func BenchmarkPollUnchanged(b *testing.B) {
	e, hook, _ := benchEngine(b, 1)
	ctx := context.Background()
	e.Work(ctx, "token-0") // creates the first token: due again in about 24h
	before, _ := e.Snapshot("token-0")
	var rtt, cmds int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r0, c0 := hook.RTT.Load(), hook.Cmds.Load()
		if err := e.Poll(ctx, "token-0"); err != nil {
			b.Fatal(err)
		}
		rtt += hook.RTT.Load() - r0
		cmds += hook.Cmds.Load() - c0
	}
	b.StopTimer()
	after, _ := e.Snapshot("token-0")
	if after.Generation != before.Generation || !after.NextAt.Equal(before.NextAt) || after.State != StateCurrent {
		b.Fatalf("polls of an unchanged token changed it: %+v, was %+v", after, before)
	}
	b.ReportMetric(float64(rtt)/float64(b.N), "rtt/op")
	b.ReportMetric(float64(cmds)/float64(b.N), "cmds/op")
}
