package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/providers/providertest/httpprov"
)

// stormVendor is a vendor (providertest's HTTP fake) that measures what reaches it: the arrival time of
// every request, the most requests in flight at once, and the connections opened. Each request takes
// latency at the vendor, so that concurrency builds up as it would against a real API.
type stormVendor struct {
	*httptest.Server
	fake    *providertest.Fake
	latency time.Duration

	inFlight, peak atomic.Int64
	conns          atomic.Int64
	mu             sync.Mutex
	arrivals       []time.Time
}

func newStormVendor(t *testing.T, latency time.Duration) *stormVendor {
	t.Helper()
	v := &stormVendor{fake: providertest.NewFake(providertest.FakeOptions{Lifetime: time.Hour}), latency: latency}
	api := providertest.NewHandler(v.fake)
	v.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		n := v.inFlight.Add(1)
		defer v.inFlight.Add(-1)
		for p := v.peak.Load(); n > p && !v.peak.CompareAndSwap(p, n); p = v.peak.Load() {
		}
		v.mu.Lock()
		v.arrivals = append(v.arrivals, now)
		v.mu.Unlock()
		time.Sleep(v.latency) // the vendor's own response time, not a wait for a condition
		api.ServeHTTP(w, r)
	}))
	v.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			v.conns.Add(1)
		}
	}
	v.Start()
	t.Cleanup(v.Close)
	return v
}

// peakIn returns the most requests that arrived within any window of length w.
func (v *stormVendor) peakIn(w time.Duration) int {
	v.mu.Lock()
	ts := slices.Clone(v.arrivals)
	v.mu.Unlock()
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	best, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// TestRateLimitHoldsUnderStorm makes 10,000 tokens due at once: every one asks the vendor for a new token at
// the same moment, through the HTTP client the daemon builds for a provider with a rate_limit. The vendor
// must never see more requests in flight than the concurrency limit, nor more requests in any window than
// the token bucket allows (burst + rps × window), and every token must still get its answer.
//
// The scheduler hands out at most its worker count (16) of tokens at once, so 10,000 simultaneous callers is
// a harsher storm than the daemon itself can make. Without the limiter this vendor would see about 1,600
// requests a second (8 connections, 5 ms each) and up to 10,000 at once, so both checks can fail.
func TestRateLimitHoldsUnderStorm(t *testing.T) {
	const (
		tokens      = 10_000
		rps         = 1000
		burst       = 20
		concurrency = 8
	)
	v := newStormVendor(t, 5*time.Millisecond)
	p := config.Provider{Name: "storm", Type: "fake", URL: v.URL,
		RateLimit: &config.RateLimit{RPS: rps, Burst: burst, Concurrency: concurrency}}
	client, err := httpClient(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	prov := httpprov.New(v.URL, false, providers.Options{HTTP: client})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	for i := range tokens {
		wg.Go(func() {
			<-start
			_, err := prov.Create(ctx, providers.CreateRequest{VendorName: fmt.Sprintf("tokend-storm-%05d-g1", i)})
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(began)

	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d creates failed, first: %v", n, tokens, firstErr.Load())
	}
	if got := v.fake.Stats().Creates; got != tokens {
		t.Fatalf("vendor created %d tokens, want %d", got, tokens)
	}
	peak := v.peak.Load()
	if peak > concurrency {
		t.Errorf("vendor saw %d requests in flight, want at most rate_limit.concurrency = %d", peak, concurrency)
	}
	if peak < 2 {
		t.Errorf("vendor saw at most %d request in flight: the storm did not build up, the test proves nothing", peak)
	}
	// A request leaves the limiter at its reserved time; on the way to the vendor it can catch up with at most
	// the ones in flight, hence the slack of one concurrency's worth.
	for _, w := range []time.Duration{100 * time.Millisecond, time.Second} {
		limit := burst + int(rps*w.Seconds()) + concurrency
		if got := v.peakIn(w); got > limit {
			t.Errorf("vendor saw %d requests within %v, want at most burst + rps × %v (+%d) = %d", got, w, w, concurrency, limit)
		}
	}
	// Idle connections are kept for the provider's concurrency, so a storm reuses them instead of
	// opening (and, against a real vendor, handshaking) a new one for most requests.
	if c := v.conns.Load(); c > 4*int64(concurrency) {
		t.Errorf("the storm opened %d connections, want at most a few times rate_limit.concurrency = %d", c, concurrency)
	}
	t.Logf("%d creates in %v: %.0f/s overall, peak %d per 100ms and %d per 1s, %d in flight at most, %d connections opened",
		tokens, took.Round(time.Millisecond), tokens/took.Seconds(), v.peakIn(100*time.Millisecond), v.peakIn(time.Second), peak, v.conns.Load())
}

// TestLimiterReserve checks the token bucket's arithmetic on a fixed clock: a burst passes at once, then one
// request per 1/rps.
func TestLimiterReserve(t *testing.T) {
	l := newLimiter(config.RateLimit{RPS: 10, Burst: 3}, nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []time.Duration
	for range 5 {
		got = append(got, l.reserve(t0))
	}
	want := []time.Duration{0, 0, 0, 100 * time.Millisecond, 200 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Fatalf("reserve() waits = %v, want %v", got, want)
	}
	// A second later the bucket has refilled by 10 tokens, capped at the burst of 3, minus the 2 owed.
	if d := l.reserve(t0.Add(time.Second)); d != 0 {
		t.Fatalf("reserve() after 1s = %v, want 0", d)
	}
}
