package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReadSkew(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 200_000_000, time.UTC) // .2 s into a second
	date := func(d time.Duration) string { return start.Add(d).UTC().Format(http.TimeFormat) }
	tests := []struct {
		name   string
		date   string
		rtt    time.Duration
		want   time.Duration
		wantOK bool
	}{
		// Our mid is :05.300; the vendor's Date :05 means somewhere in [:05, :06), so :05.5 on its clock.
		{"same clock", date(0), 200 * time.Millisecond, 200 * time.Millisecond, true},
		{"five minutes ahead", date(5 * time.Minute), 200 * time.Millisecond, 5*time.Minute + 200*time.Millisecond, true},
		{"five minutes behind", date(-5 * time.Minute), 200 * time.Millisecond, -5*time.Minute + 200*time.Millisecond, true},
		{"slow answer, middle of the round trip", date(time.Minute), 2 * time.Second, time.Minute + 500*time.Millisecond - 1200*time.Millisecond, true},
		{"too slow to tell", date(time.Minute), maxSkewRTT + time.Millisecond, 0, false},
		{"no Date", "", 0, 0, false},
		{"not a date", "yesterday", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := readSkew(tt.date, start, start.Add(tt.rtt))
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("readSkew(%q) = %v, %v, want %v, %v", tt.date, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestSettle(t *testing.T) {
	tests := []struct {
		name    string
		settled time.Duration
		have    bool
		reading time.Duration
		want    time.Duration
	}{
		{"first reading, rounded", 0, false, 299600 * time.Millisecond, 300 * time.Second},
		{"first reading near zero", 0, false, 300 * time.Millisecond, 0},
		{"a second of noise keeps it", 300 * time.Second, true, 301400 * time.Millisecond, 300 * time.Second},
		{"noise below keeps it", 300 * time.Second, true, 298100 * time.Millisecond, 300 * time.Second},
		{"a real change moves it", 300 * time.Second, true, 302 * time.Second, 302 * time.Second},
		{"the clock was fixed", 300 * time.Second, true, 400 * time.Millisecond, 0},
		{"behind", 0, true, -299700 * time.Millisecond, -300 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := settle(tt.settled, tt.have, tt.reading); got != tt.want {
				t.Errorf("settle(%v, %v, %v) = %v, want %v", tt.settled, tt.have, tt.reading, got, tt.want)
			}
		})
	}
}

// skewServer answers every request with a Date offset from the real clock by off.
func skewServer(t *testing.T, off time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(off).UTC().Format(http.TimeFormat))
		io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func gaugeValue(t *testing.T, reg prometheus.Gatherer, provider string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tokend_provider_clock_skew_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "provider" && l.GetValue() == provider {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestTransportClockSkew sends requests through the metrics transport to vendors whose clocks are five
// minutes ahead and behind: the gauge and ClockSkew show it, within the Date header's resolution.
func TestTransportClockSkew(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, nil, BuildInfo{}, false)
	if _, ok := m.ClockSkew("ahead"); ok {
		t.Error("ClockSkew before any answer: ok = true, want false")
	}
	if n, err := testutil.GatherAndCount(reg, "tokend_provider_clock_skew_seconds"); err != nil || n != 0 {
		t.Errorf("skew series before any answer = %d (%v), want 0: an unknown skew is absent", n, err)
	}
	for _, tt := range []struct {
		provider string
		off      time.Duration
	}{
		{"ahead", 5 * time.Minute},
		{"behind", -5 * time.Minute},
		{"same", 0},
	} {
		srv := skewServer(t, tt.off)
		c := &http.Client{Transport: m.Transport(tt.provider, srv.Client().Transport), Timeout: 10 * time.Second}
		for range 3 {
			resp, err := c.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		got, ok := gaugeValue(t, reg, tt.provider)
		if !ok || (time.Duration(got*float64(time.Second))-tt.off).Abs() > 1500*time.Millisecond {
			t.Errorf("tokend_provider_clock_skew_seconds{provider=%q} = %v (present %v), want %v ± 1.5 s", tt.provider, got, ok, tt.off.Seconds())
		}
		skew, ok := m.ClockSkew(tt.provider)
		if !ok || (skew-tt.off).Abs() > time.Second || skew != skew.Round(time.Second) {
			t.Errorf("ClockSkew(%q) = %v, %v, want %v ± 1 s in whole seconds", tt.provider, skew, ok, tt.off)
		}
	}
	m.SetProviders([]string{"ahead"})
	if _, ok := gaugeValue(t, reg, "behind"); ok {
		t.Error("skew series of a provider no longer configured is still exported")
	}
	if _, ok := gaugeValue(t, reg, "ahead"); !ok {
		t.Error("skew series of a configured provider is gone")
	}
	problems, err := testutil.GatherAndLint(reg, "tokend_provider_clock_skew_seconds")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestTransportNoDateNoSkew: answers without a Date header (or failures) tell nothing about the clock.
func TestTransportNoDateNoSkew(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, nil, BuildInfo{}, false)
	rt := m.Transport("cv", roundTripFunc(okResponse))
	resp, err := rt.RoundTrip(newRequest(t, "http://vendor.invalid/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if skew, ok := m.ClockSkew("cv"); ok {
		t.Errorf("ClockSkew after an answer without Date = %v, true; want absent", skew)
	}
	out, err := testutil.GatherAndCount(reg, "tokend_provider_clock_skew_seconds")
	if err != nil || out != 0 {
		t.Errorf("skew series = %d (%v), want 0", out, err)
	}
}

// TestTransportSkewIgnoresServerErrors: a 5xx may come from a proxy or load balancer in front of the
// vendor, whose clock is not the vendor's.
func TestTransportSkewIgnoresServerErrors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, nil, BuildInfo{}, false)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	c := &http.Client{Transport: m.Transport("lb", srv.Client().Transport), Timeout: 10 * time.Second}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s, ok := m.ClockSkew("lb"); ok {
		t.Errorf("ClockSkew after a 502 only = %v, want unknown", s)
	}
}
