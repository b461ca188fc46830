package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokend/tokend/providers"
)

// Transport wraps next (nil: http.DefaultTransport) so that every request made through it for provider is
// counted in tokend_provider_requests_total{provider,operation,code} and timed in
// tokend_provider_request_duration_seconds{provider,operation}. The operation is
// providers.OperationFrom(req.Context()) ("other" when unset); code is the HTTP status as a string, or
// "error" when no response arrived (refused, timed out, cancelled). The duration runs to the response
// headers, not to the end of the body. The Date header of every answer below 500 is read for provider's
// clock skew (tokend_provider_clock_skew_seconds, ClockSkew; see skew.go). The returned RoundTripper is safe
// for concurrent use if next is, and passes CloseIdleConnections on to next.
func (m *Metrics) Transport(provider string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{
		next:     next,
		provider: provider,
		skew:     &m.skew,
		requests: m.requests.MustCurryWith(prometheus.Labels{"provider": provider}),
		duration: m.requestDuration.MustCurryWith(prometheus.Labels{"provider": provider}),
	}
}

type transport struct {
	next     http.RoundTripper
	provider string
	skew     *clockSkew
	requests *prometheus.CounterVec // curried: operation, code
	duration prometheus.ObserverVec // curried: operation
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := providers.OperationFrom(req.Context())
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	end := time.Now()
	t.duration.WithLabelValues(op).Observe(end.Sub(start).Seconds())
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
		if resp.StatusCode < 500 { // a 5xx may come from a proxy in front of the vendor, on another clock
			t.skew.observe(t.provider, resp.Header.Get("Date"), start, end)
		}
	}
	t.requests.WithLabelValues(op, code).Inc()
	return resp, err
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the wrapped transport.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
