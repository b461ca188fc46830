package metrics

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/tokend/tokend/rotation"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the current output")

// fakeSource is a Source whose tokens a test can change between scrapes.
type fakeSource struct {
	mu    sync.Mutex
	snaps []rotation.Snapshot
	calls int
}

func (f *fakeSource) Snapshots() []rotation.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return slices.Clone(f.snaps)
}

func (f *fakeSource) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps = slices.DeleteFunc(f.snaps, func(s rotation.Snapshot) bool { return s.Name == name })
}

// perTokenOn is the switch as New sets it before any config says otherwise.
func perTokenOn() *atomic.Bool {
	var on atomic.Bool
	on.Store(true)
	return &on
}

// collectorAt is a token collector whose clock is stopped at t0, with per-token series on or off.
func collectorAt(src Source, perToken bool) *tokenCollector {
	var on atomic.Bool
	on.Store(perToken)
	c := newTokenCollector(src, &on)
	c.now = func() time.Time { return t0 }
	return c
}

// tokenFamilies are the per-token families, which carry a token label.
var tokenFamilies = []string{
	"tokend_token_expiry_timestamp_seconds", "tokend_token_issued_timestamp_seconds",
	"tokend_token_renewable_until_timestamp_seconds", "tokend_token_next_action_timestamp_seconds",
	"tokend_token_state", "tokend_token_consecutive_failures", "tokend_token_last_success_timestamp_seconds",
	"tokend_token_previous_revoke_deadline_timestamp_seconds",
}

// t0 has a sub-second part so the golden files prove it is kept.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 500_000_000, time.UTC) // 1748779200.5

// leakyError stands for whatever a vendor put into an error message; it must never reach the metrics.
const leakyError = "renewing huawei-scim: 401 unauthorized: token sk-LEAKED-4242 is invalid"

func smallSource() *fakeSource {
	return &fakeSource{snaps: []rotation.Snapshot{
		{ // every time set
			Name: "cv-api", Provider: "cv-prod", Kind: "access_token", State: rotation.StateCurrent, Generation: 7,
			IssuedAt: t0, ExpiresAt: t0.Add(30 * time.Minute), RenewableUntil: t0.Add(24 * time.Hour),
			CreatedAt: t0.Add(-72 * time.Hour), NextAction: "renew", NextAt: t0.Add(20 * time.Minute),
			LastSuccess: t0, PrevRevokeAt: t0.Add(time.Hour),
		},
		{ // no expiry, no renewable-until, no previous token
			Name: "astra-ci", Provider: "astra", Kind: "api_token", State: rotation.StateCurrent, Generation: 2,
			IssuedAt: t0.Add(-90 * 24 * time.Hour), CreatedAt: t0.Add(-90 * 24 * time.Hour),
			NextAction: "recreate", NextAt: t0.Add(10 * 24 * time.Hour), LastSuccess: t0.Add(-90 * 24 * time.Hour),
		},
		{ // failed: nothing planned, never succeeded
			Name: "huawei-scim", Provider: "huawei", Kind: "scim_token", State: rotation.StateFailed, Generation: 1,
			IssuedAt: t0.Add(-25 * time.Hour), ExpiresAt: t0.Add(-time.Hour),
			ConsecutiveFailures: 3, LastError: leakyError,
		},
	}}
}

// compareGolden compares what c exports with testdata/name, or rewrites the file under -update.
func compareGolden(t *testing.T, c prometheus.Collector, name string, metricNames ...string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if len(metricNames) > 0 {
			t.Fatal("compareGolden: -update needs the whole collector")
		}
		if err := os.WriteFile(path, []byte(exposition(t, collectorGatherer(c))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.CollectAndCompare(c, f, metricNames...); err != nil {
		t.Error(err)
	}
}

// exposition returns everything g exports in the text format. (testutil's *AndFormat export only the names
// they are given.)
func exposition(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather() error = %v", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

func collectorGatherer(c prometheus.Collector) prometheus.Gatherer {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	return reg
}

func TestTokenCollectorGolden(t *testing.T) {
	compareGolden(t, collectorAt(smallSource(), true), "tokens.txt")
}

func TestTokenCollectorNoSecretOrError(t *testing.T) {
	got := exposition(t, collectorGatherer(collectorAt(smallSource(), true)))
	if !strings.Contains(got, `token="huawei-scim"`) {
		t.Fatalf("exposition lacks the failed token:\n%s", got)
	}
	for _, bad := range []string{"sk-LEAKED-4242", "unauthorized", "generation"} {
		if strings.Contains(got, bad) {
			t.Errorf("exposition contains %q:\n%s", bad, got)
		}
	}
}

func TestTokenRemovedDisappears(t *testing.T) {
	src := smallSource()
	reg := prometheus.NewPedanticRegistry()
	New(reg, src, BuildInfo{}, false)

	before, err := testutil.GatherAndCount(reg, "tokend_token_state")
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * len(rotation.States); before != want {
		t.Fatalf("tokend_token_state series before = %d, want %d", before, want)
	}

	src.remove("cv-api")
	after, err := testutil.GatherAndCount(reg, "tokend_token_state")
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * len(rotation.States); after != want {
		t.Errorf("tokend_token_state series after removal = %d, want %d", after, want)
	}
	text := exposition(t, reg)
	if strings.Contains(text, `token="cv-api"`) {
		t.Errorf("removed token still exported:\n%s", text)
	}
	if !strings.Contains(text, `token="astra-ci"`) {
		t.Errorf("remaining token not exported:\n%s", text)
	}
}

func TestTokenCollectorEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		src  Source
		want int // series of all per-token metrics
	}{
		{name: "nil source", src: nil, want: 0},
		{name: "no tokens", src: &fakeSource{}, want: 0},
		{
			// a token without any time: only its state and failure count exist
			name: "nothing known",
			src:  &fakeSource{snaps: []rotation.Snapshot{{Name: "new", Provider: "p", Kind: "k", State: rotation.StateRotating}}},
			want: len(rotation.States) + 1,
		},
		{
			// a planned time without an action still shows, under action="unknown"
			name: "time without action",
			src:  &fakeSource{snaps: []rotation.Snapshot{{Name: "x", Provider: "p", Kind: "k", NextAt: t0}}},
			want: len(rotation.States) + 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testutil.CollectAndCount(newTokenCollector(tt.src, perTokenOn()), tokenFamilies...); got != tt.want {
				t.Errorf("CollectAndCount() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestTokenCollectorUnknownActionAndBadUTF8(t *testing.T) {
	src := &fakeSource{snaps: []rotation.Snapshot{{Name: "bad\xff", Provider: "p", Kind: "k", NextAt: t0}}}
	got, err := testutil.CollectAndFormat(newTokenCollector(src, perTokenOn()), expfmt.TypeTextPlain, "tokend_token_next_action_timestamp_seconds")
	if err != nil {
		t.Fatalf("CollectAndFormat() error = %v (an invalid name must not break the scrape)", err)
	}
	if want := `{action="unknown",kind="k",provider="p",token="bad` + "\uFFFD" + `"} 1.7487792005e+09`; !strings.Contains(string(got), want) {
		t.Errorf("exposition = %s, want it to contain %s", got, want)
	}
}

func TestSeconds(t *testing.T) {
	tests := []struct {
		t    time.Time
		want float64
	}{
		{time.Unix(1748779200, 123_456_789), 1748779200.123456789},
		{time.Unix(0, 0), 0},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), 253402300799}, // past UnixNano's range
		{time.Date(1960, 1, 1, 0, 0, 0, 250_000_000, time.UTC), -315619199.75},
	}
	for _, tt := range tests {
		if got := seconds(tt.t); math.Abs(got-tt.want) > 1e-6 {
			t.Errorf("seconds(%v) = %f, want %f", tt.t, got, tt.want)
		}
	}
}

func bigSource(n int) *fakeSource {
	provs := []string{"cv-prod", "astra", "huawei", "vcd-lab"}
	kinds := []string{"access_token", "api_token", "scim_token"}
	src := &fakeSource{snaps: make([]rotation.Snapshot, n)}
	for i := range src.snaps {
		src.snaps[i] = rotation.Snapshot{
			Name: fmt.Sprintf("token-%06d", i), Provider: provs[i%len(provs)], Kind: kinds[i%len(kinds)],
			State: rotation.States[i%len(rotation.States)], IssuedAt: t0, ExpiresAt: t0.Add(time.Hour),
			RenewableUntil: t0.Add(24 * time.Hour), NextAction: "renew", NextAt: t0.Add(40 * time.Minute),
			ConsecutiveFailures: i % 5, LastSuccess: t0, PrevRevokeAt: t0.Add(10 * time.Minute),
		}
	}
	return src
}

func TestCollectManyTokens(t *testing.T) {
	const n = 1000
	reg := prometheus.NewPedanticRegistry() // also checks every series against its Desc
	New(reg, bigSource(n), BuildInfo{}, false)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "tokend_token_") {
			total += len(mf.GetMetric())
		}
	}
	if want := n * seriesPerToken; total != want {
		t.Errorf("per-token series = %d, want %d", total, want)
	}
}

// BenchmarkCollect100k measures one full scrape (registry Gather) of 100,000 tokens with every time set
// (11 series each, 1.1 million in all). The Source returns a prebuilt slice copy, so the figure is the
// collector's and the registry's cost, not the engine's.
func BenchmarkCollect100k(b *testing.B) {
	reg := prometheus.NewRegistry()
	New(reg, bigSource(100_000), BuildInfo{Version: "bench"}, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTokenCollectorOrderIndependent(t *testing.T) {
	src := smallSource()
	want := exposition(t, collectorGatherer(newTokenCollector(src, perTokenOn())))
	slices.Reverse(src.snaps)
	if got := exposition(t, collectorGatherer(newTokenCollector(src, perTokenOn()))); got != want {
		t.Errorf("exposition depends on the Source's order:\n%s\nwant:\n%s", got, want)
	}
}

// TestCollectSendsSorted checks that every family arrives in the order the registry sorts it into, which
// keeps a scrape of 100,000 tokens from spending most of its time sorting (see Collect).
func TestCollectSendsSorted(t *testing.T) {
	src := bigSource(500)
	slices.Reverse(src.snaps)
	ch := make(chan prometheus.Metric, 500*seriesPerToken+100) // and the aggregates
	c := newTokenCollector(src, perTokenOn())
	c.Collect(ch)
	close(ch)
	aggregates := map[*prometheus.Desc]bool{c.perTokenOn: true, c.tokens: true, c.earliestExpiry: true, c.earliestRenewableUntil: true, c.attention: true}
	last := map[*prometheus.Desc][]string{}
	n := 0
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		var values []string
		for _, l := range pb.GetLabel() {
			values = append(values, l.GetValue())
		}
		if prev, ok := last[m.Desc()]; ok && slices.Compare(prev, values) >= 0 {
			t.Fatalf("%s: series %v sent after %v", m.Desc(), values, prev)
		}
		last[m.Desc()] = values
		if !aggregates[m.Desc()] {
			n++
		}
	}
	if want := 500 * seriesPerToken; n != want {
		t.Errorf("series sent = %d, want %d", n, want)
	}
}
