package daemon

import (
	"net/http"
	"sync"
	"time"

	"github.com/tokend/tokend/config"
)

// limiter bounds one provider's traffic: a token bucket for the request rate and a semaphore for
// requests in flight. Requests wait for their turn (or their context's end).
type limiter struct {
	next http.RoundTripper
	sem  chan struct{}

	mu     sync.Mutex
	rps    float64
	burst  float64
	tokens float64
	last   time.Time
}

func newLimiter(c config.RateLimit, next http.RoundTripper) *limiter {
	l := &limiter{next: next, rps: c.RPS, burst: float64(max(c.Burst, 1))}
	l.tokens = l.burst
	if c.Concurrency > 0 {
		l.sem = make(chan struct{}, c.Concurrency)
	}
	return l
}

func (l *limiter) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if l.sem != nil {
		select {
		case l.sem <- struct{}{}:
			defer func() { <-l.sem }()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if l.rps > 0 {
		if wait := l.reserve(time.Now()); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
	}
	return l.next.RoundTrip(req)
}

// reserve takes one token from the bucket and returns how long to wait for it.
func (l *limiter) reserve(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rps)
	}
	l.last = now
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rps * float64(time.Second))
}
