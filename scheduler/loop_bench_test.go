package scheduler

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
	"github.com/tokend/tokend/store/storetest"
)

// countingIndex counts what the loop reads from the due index.
type countingIndex struct {
	DueIndex
	reads, entries atomic.Int64
}

func (c *countingIndex) Due(ctx context.Context, now time.Time, limit int) ([]store.DueItem, error) {
	items, err := c.DueIndex.Due(ctx, now, limit)
	c.reads.Add(1)
	c.entries.Add(int64(len(items)))
	return items, err
}

// BenchmarkLoopBacklog is the loop working through a backlog of 5,000 due tokens on the real Redis
// (skipped without one outside CI) with 16 workers whose work is one round trip (the schedule that ends
// a Work call). "entries/token" is how many due-index entries the loop read per token it handed out
// (docs/benchmarks.md, "Rotation rate": the loop used to read up to 1,016 per iteration).
func BenchmarkLoopBacklog(b *testing.B) {
	const n = 5000
	rdb := storetest.RealRedis(b)
	st, err := store.New(rdb, make([]byte, 32), store.Options{Prefix: storetest.Prefix(b, rdb, "tokendbench"), Instance: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	names := make([]store.Planned, n)
	var reads, entries int64
	for b.Loop() {
		b.StopTimer()
		now := time.Now()
		for i := range names {
			names[i] = store.Planned{Name: "token-" + strconv.Itoa(i), Action: "renew", At: now.Add(-time.Hour + time.Duration(i)*time.Millisecond)}
		}
		if err := st.ScheduleMany(ctx, names); err != nil {
			b.Fatal(err)
		}
		idx := &countingIndex{DueIndex: st}
		var worked atomic.Int64
		all := make(chan struct{})
		var once sync.Once
		l := &Loop{
			Index: idx, Owns: func(string) bool { return true }, Workers: 16, MaxSleep: time.Hour,
			Work: func(ctx context.Context, name string) time.Time {
				if err := st.Schedule(ctx, name, "renew", time.Now().Add(time.Hour)); err != nil {
					b.Error(err)
				}
				if worked.Add(1) == n {
					once.Do(func() { close(all) })
				}
				return time.Time{}
			},
		}
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		b.StartTimer()
		go func() { l.Run(lctx); close(done) }()
		<-all
		b.StopTimer()
		cancel()
		<-done
		reads += idx.reads.Load()
		entries += idx.entries.Load()
		b.StartTimer()
	}
	tokens := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/tokens, "ns/token")
	b.ReportMetric(float64(entries)/tokens, "entries/token")
	b.ReportMetric(float64(reads)/tokens, "reads/token")
}
