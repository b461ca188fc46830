package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tokend/tokend/providers"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func okResponse(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
}

func newRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, "{}")
		case "/busy":
			http.Error(w, "busy", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there any more: a transport failure

	reg := prometheus.NewPedanticRegistry()
	m := New(reg, nil, BuildInfo{}, false)
	cv := &http.Client{Transport: m.Transport("cv-prod", srv.Client().Transport), Timeout: 10 * time.Second}
	astra := &http.Client{Transport: m.Transport("astra", nil), Timeout: 10 * time.Second}

	calls := []struct {
		client *http.Client
		op     string // "" leaves the context unlabelled
		url    string
	}{
		{cv, "inspect", srv.URL + "/ok"},
		{cv, "inspect", srv.URL + "/ok"},
		{cv, "renew", srv.URL + "/busy"},
		{cv, "", srv.URL + "/nope"},
		{cv, "revoke", deadURL + "/x"},
		{astra, "inspect", srv.URL + "/ok"},
	}
	for _, c := range calls {
		ctx := context.Background()
		if c.op != "" {
			ctx = providers.WithOperation(ctx, c.op)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
		} else if !strings.Contains(c.url, deadURL) {
			t.Fatalf("GET %s: %v", c.url, err)
		}
	}

	want := `
# HELP tokend_provider_requests_total HTTP requests to vendor APIs by operation and status code ("error": no response).
# TYPE tokend_provider_requests_total counter
tokend_provider_requests_total{code="200",operation="inspect",provider="astra"} 1
tokend_provider_requests_total{code="200",operation="inspect",provider="cv-prod"} 2
tokend_provider_requests_total{code="404",operation="other",provider="cv-prod"} 1
tokend_provider_requests_total{code="503",operation="renew",provider="cv-prod"} 1
tokend_provider_requests_total{code="error",operation="revoke",provider="cv-prod"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tokend_provider_requests_total"); err != nil {
		t.Error(err)
	}

	// Durations are not deterministic; their counts are.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "tokend_provider_request_duration_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var provider, op string
			for _, l := range mt.GetLabel() {
				switch l.GetName() {
				case "provider":
					provider = l.GetValue()
				case "operation":
					op = l.GetValue()
				}
			}
			counts[provider+"/"+op] = mt.GetHistogram().GetSampleCount()
		}
	}
	wantCounts := map[string]uint64{"cv-prod/inspect": 2, "cv-prod/renew": 1, "cv-prod/other": 1, "cv-prod/revoke": 1, "astra/inspect": 1}
	if len(counts) != len(wantCounts) {
		t.Errorf("duration series = %v, want %v", counts, wantCounts)
	}
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("duration count %s = %d, want %d", k, counts[k], v)
		}
	}
}

type idleCloser struct {
	http.RoundTripper
	closed int
}

func (c *idleCloser) CloseIdleConnections() { c.closed++ }

func TestTransportCloseIdleConnections(t *testing.T) {
	m := New(prometheus.NewRegistry(), nil, BuildInfo{}, false)
	next := &idleCloser{RoundTripper: roundTripFunc(okResponse)}
	(&http.Client{Transport: m.Transport("p", next)}).CloseIdleConnections()
	if next.closed != 1 {
		t.Errorf("CloseIdleConnections reached the wrapped transport %d times, want 1", next.closed)
	}
}
