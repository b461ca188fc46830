package metrics

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// gatherGolden compares what reg exports under metricNames with testdata/name, or rewrites the file under
// -update.
func gatherGolden(t *testing.T, reg prometheus.Gatherer, name string, metricNames ...string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		var keep []string
		for _, block := range strings.SplitAfter(exposition(t, reg), "# HELP ") {
			for _, n := range metricNames {
				if strings.HasPrefix(block, n+" ") {
					keep = append(keep, block)
				}
			}
		}
		text := "# HELP " + strings.TrimSuffix(strings.Join(keep, ""), "# HELP ")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(reg, f, metricNames...); err != nil {
		t.Error(err)
	}
}

// observerNames are the families TestObserverGolden checks, every one New registers except the per-token
// gauges (tokens.txt) and the transport's (TestTransport).
var observerNames = []string{
	"tokend_build_info",
	"tokend_config_last_reload_success_timestamp_seconds",
	"tokend_config_last_reload_successful",
	"tokend_deliveries_total",
	"tokend_poll_last_success_timestamp_seconds",
	"tokend_redis_up",
	"tokend_rotation_duration_seconds",
	"tokend_rotations_total",
	"tokend_scheduler_lag_seconds",
}

func TestObserverGolden(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, nil, BuildInfo{Version: "1.2.3", Revision: "abc1234", GoVersion: "go1.26.8"}, false)

	m.Operation("cv-api", "cv-prod", "renew", "success", 1500*time.Millisecond)
	m.Operation("cv-api", "cv-prod", "renew", "retryable", 40*time.Millisecond)
	m.Operation("astra-ci", "astra", "recreate", "success", 200*time.Millisecond)
	m.Delivery("cv-api", "backup-env", "success")
	m.Delivery("cv-api", "backup-env", "success")
	m.Delivery("cv-api", "redis-out", "error")
	m.Changed("cv-api")
	m.SchedulerLag(30 * time.Millisecond)
	m.SchedulerLag(-5 * time.Millisecond) // early counts as 0
	m.SetRedisUp(true)
	m.ConfigReloaded(true, t0)
	m.ConfigReloaded(false, t0.Add(time.Hour)) // a failure keeps the last success time
	m.PollSucceeded("cv-prod", t0)
	m.PollSucceeded("astra", t0.Add(time.Minute))

	gatherGolden(t, reg, "observer.txt", observerNames...)
}

func TestBeforeFirstUse(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	New(reg, nil, BuildInfo{Version: "dev"}, false)
	tests := []struct {
		name string
		want int
	}{
		{"tokend_redis_up", 1},
		{"tokend_config_last_reload_successful", 1},
		{"tokend_config_last_reload_success_timestamp_seconds", 0}, // unknown: absent, not 0
		{"tokend_poll_last_success_timestamp_seconds", 0},
		{"tokend_build_info", 1},
		{"tokend_scheduler_lag_seconds", 1},
	}
	for _, tt := range tests {
		got, err := testutil.GatherAndCount(reg, tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("GatherAndCount(%s) = %d, want %d", tt.name, got, tt.want)
		}
	}
	if want := `goversion="` + runtime.Version() + `"`; !strings.Contains(exposition(t, reg), want) {
		t.Errorf("tokend_build_info lacks %s", want)
	}
}

func TestSetProvidersDropsPollSeries(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, nil, BuildInfo{}, false)
	polled := func() string {
		t.Helper()
		var lines []string
		for _, l := range strings.Split(exposition(t, reg), "\n") {
			if strings.HasPrefix(l, "tokend_poll_last_success_timestamp_seconds{") {
				lines = append(lines, strings.TrimPrefix(l, "tokend_poll_last_success_timestamp_seconds"))
			}
		}
		return strings.Join(lines, " ")
	}

	m.PollSucceeded("a", t0) // before any SetProviders every provider counts
	m.PollSucceeded("b", t0)
	if got, want := polled(), `{provider="a"} 1.7487792005e+09 {provider="b"} 1.7487792005e+09`; got != want {
		t.Fatalf("poll series = %s, want %s", got, want)
	}
	m.SetProviders([]string{"a", "c"}) // a reload removed b, added c
	if got, want := polled(), `{provider="a"} 1.7487792005e+09`; got != want {
		t.Errorf("after SetProviders(a, c): poll series = %s, want %s", got, want)
	}
	m.PollSucceeded("b", t0.Add(time.Second)) // a late poll of the removed provider
	m.PollSucceeded("c", t0.Add(2*time.Second))
	if got, want := polled(), `{provider="a"} 1.7487792005e+09 {provider="c"} 1.7487792025e+09`; got != want {
		t.Errorf("after late polls: poll series = %s, want %s", got, want)
	}
	m.SetProviders(nil)
	if got := polled(); got != "" {
		t.Errorf("after SetProviders(nil): poll series = %s, want none", got)
	}
}

func TestRuntimeCollectors(t *testing.T) {
	for _, withRuntime := range []bool{false, true} {
		reg := prometheus.NewRegistry()
		New(reg, nil, BuildInfo{}, withRuntime)
		got, err := testutil.GatherAndCount(reg, "go_goroutines", "process_start_time_seconds")
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if withRuntime {
			want = 1 // go_goroutines always; process_* only where procfs exists
			if runtime.GOOS == "linux" {
				want = 2
			}
		}
		if got != want {
			t.Errorf("withRuntime=%v: runtime series = %d, want %d", withRuntime, got, want)
		}
	}
}

func TestNoGlobals(t *testing.T) {
	// Two recorders on two registries count apart: nothing is registered globally.
	r1, r2 := prometheus.NewRegistry(), prometheus.NewRegistry()
	m1 := New(r1, nil, BuildInfo{}, true)
	New(r2, nil, BuildInfo{}, true)
	m1.Delivery("t", "s", "success")
	if got := testutil.ToFloat64(m1.deliveries.WithLabelValues("t", "s", "success")); got != 1 {
		t.Errorf("deliveries on r1 = %v, want 1", got)
	}
	n, err := testutil.GatherAndCount(r2, "tokend_deliveries_total")
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("deliveries on r2 = %d series, want 0", n)
	}
}

func TestLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, smallSource(), BuildInfo{Version: "1.2.3", Revision: "abc"}, true)
	// Give every vector a series so the linter sees every family.
	m.Operation("cv-api", "cv-prod", "renew", "success", time.Second)
	m.Delivery("cv-api", "file", "success")
	m.SchedulerLag(time.Millisecond)
	m.SetRedisUp(true)
	m.ConfigReloaded(true, t0)
	m.PollSucceeded("cv-prod", t0)
	m.requests.WithLabelValues("cv-prod", "renew", "200").Inc()
	m.requestDuration.WithLabelValues("cv-prod", "renew").Observe(0.1)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var tokendFamilies int
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "tokend_") {
			tokendFamilies++
		}
	}
	if want := 8 + 5 + 11; tokendFamilies != want { // per-token gauges + aggregates + the rest of section 7
		t.Errorf("tokend_ families = %d, want %d", tokendFamilies, want)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestConcurrentUse(t *testing.T) {
	src := bigSource(50)
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, src, BuildInfo{}, false)
	rt := m.Transport("p", roundTripFunc(okResponse))

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				m.Operation("t", "p", "renew", "success", time.Millisecond)
				m.Delivery("t", "s", "success")
				m.SchedulerLag(time.Millisecond)
				m.SetRedisUp(i%2 == 0)
				m.ConfigReloaded(true, t0)
				m.PollSucceeded("p", t0)
				if g == 0 && i%50 == 0 {
					m.SetProviders([]string{"p"})
				}
				if _, err := rt.RoundTrip(newRequest(t, "http://127.0.0.1/x")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	if got := testutil.ToFloat64(m.rotations.WithLabelValues("t", "p", "renew", "success")); got != 800 {
		t.Errorf("rotations = %v, want 800", got)
	}
}
