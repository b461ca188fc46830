package scheduler

import (
	"strconv"
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/store"
)

// The due-time maths runs once per token at start-up (LoadAll) and after every step of a rotation, so at
// 100,000 tokens it must cost microseconds, not milliseconds. These benchmarks are the figures behind
// docs/benchmarks.md ("Go benchmarks").

var sink Plan // keeps the compiler from dropping the benchmarked calls

func benchNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "token-" + strconv.Itoa(i)
	}
	return names
}

func BenchmarkJitter(b *testing.B) {
	names := benchNames(1024)
	var s float64
	i := 0
	for b.Loop() {
		s += Jitter(names[i&1023])
		i++
	}
	if s < 0 {
		b.Fatal(s)
	}
}

func BenchmarkDueAt(b *testing.B) {
	names := benchNames(1024)
	share := pol(func(p *config.Resolved) { p.Jitter = 0.1 })
	dur := pol(func(p *config.Resolved) { p.RenewBefore = config.Window{Dur: 10 * time.Minute}; p.Jitter = 0.1 })
	expiring := &providers.Token{IssuedAt: t0, ExpiresAt: t0.Add(24 * time.Hour), CreatedAt: t0}
	forever := &providers.Token{IssuedAt: t0, CreatedAt: t0}
	for _, bc := range []struct {
		name string
		t    *providers.Token
		pol  config.Resolved
	}{
		{"expiry-share", expiring, share},
		{"expiry-duration", expiring, dur},
		{"max-age", forever, share},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var last time.Time
			i := 0
			for b.Loop() {
				last = DueAt(t0.Add(time.Hour), names[i&1023], bc.t, bc.pol)
				i++
			}
			sink.At = last
		})
	}
}

// BenchmarkNext is the whole decision for one token, as LoadAll and Engine.Work make it.
func BenchmarkNext(b *testing.B) {
	names := benchNames(1024)
	p := pol(func(p *config.Resolved) { p.Jitter = 0.1 })
	cur := &providers.Token{ID: "v-1", IssuedAt: t0, ExpiresAt: t0.Add(24 * time.Hour), CreatedAt: t0,
		RenewableUntil: t0.Add(30 * 24 * time.Hour)}
	prev := &providers.Token{ID: "v-0", IssuedAt: t0.Add(-24 * time.Hour), ExpiresAt: t0, CreatedAt: t0.Add(-24 * time.Hour)}
	for _, bc := range []struct {
		name string
		st   store.State
	}{
		{"current", store.State{Current: cur, Generation: 3, Delivered: map[string]int64{"a": 3}}},
		{"with-previous", store.State{Current: cur, Previous: prev, PrevRevokeAt: t0.Add(15 * time.Minute),
			Generation: 3, Delivered: map[string]int64{"a": 3}}},
		{"empty", store.State{Delivered: map[string]int64{}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st := bc.st
			i := 0
			for b.Loop() {
				st.Name = names[i&1023]
				sink = Next(t0.Add(time.Hour), &st, p, Caps{CanRenew: true}, "a")
				i++
			}
		})
	}
}

func BenchmarkBackoff(b *testing.B) {
	r := func() float64 { return 0.5 }
	var d time.Duration
	i := 0
	for b.Loop() {
		d += Backoff(i%12+1, 30*time.Second, 30*time.Minute, 6*time.Hour, 0, r)
		i++
	}
	sink.At = t0.Add(d)
}
