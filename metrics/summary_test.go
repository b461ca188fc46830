package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tokend/tokend/rotation"
)

// healthy is a token at t0 that needs nothing: issued an hour ago, renewed in 16 hours, expiring in a day.
func healthy(name string) rotation.Snapshot {
	return rotation.Snapshot{
		Name: name, Provider: "vcd", Kind: "api_token", State: rotation.StateCurrent, Generation: 3,
		IssuedAt: t0.Add(-time.Hour), ExpiresAt: t0.Add(23 * time.Hour), RenewableUntil: t0.Add(30 * 24 * time.Hour),
		NextAction: "renew", NextAt: t0.Add(16 * time.Hour), LastSuccess: t0.Add(-time.Hour),
	}
}

// attentionSource holds one healthy token and one token for each reason to need attention.
func attentionSource() (*fakeSource, []string) {
	mk := func(name string, change func(*rotation.Snapshot)) rotation.Snapshot {
		s := healthy(name)
		change(&s)
		return s
	}
	snaps := []rotation.Snapshot{
		healthy("fine"),
		mk("failed", func(s *rotation.Snapshot) { s.State = rotation.StateFailed }),
		mk("expired", func(s *rotation.Snapshot) { s.State, s.ExpiresAt = rotation.StateExpired, t0.Add(-time.Second) }),
		mk("failing", func(s *rotation.Snapshot) { s.ConsecutiveFailures = 1 }),
		mk("late", func(s *rotation.Snapshot) { s.NextAt = t0.Add(-2 * time.Minute) }),
		mk("revoke-late", func(s *rotation.Snapshot) { s.PrevRevokeAt = t0.Add(-2 * time.Minute) }),
		mk("renewable-near", func(s *rotation.Snapshot) { s.RenewableUntil = t0.Add(23 * time.Hour) }),
		mk("expiring", func(s *rotation.Snapshot) { s.ExpiresAt = t0.Add(time.Minute) }),
		mk("expiring-no-issue", func(s *rotation.Snapshot) { s.IssuedAt, s.ExpiresAt = time.Time{}, t0.Add(59*time.Minute) }),
	}
	var names []string
	for _, s := range snaps[1:] {
		names = append(names, s.Name)
	}
	return &fakeSource{snaps: snaps}, names
}

func TestPerTokenOffExportsOnlyTokensNeedingAttention(t *testing.T) {
	src, attention := attentionSource()
	text := exposition(t, collectorGatherer(collectorAt(src, false)))
	for _, name := range attention {
		if !strings.Contains(text, fmt.Sprintf(`tokend_token_state{kind="api_token",provider="vcd",state="current",token=%q}`, name)) {
			t.Errorf("token %q needs attention but has no series:\n%s", name, text)
		}
	}
	if strings.Contains(text, `token="fine"`) {
		t.Errorf("the healthy token has series with per-token series off:\n%s", text)
	}
	for _, want := range []string{
		"tokend_metrics_per_token 0",
		fmt.Sprintf(`tokend_tokens_needing_attention{kind="api_token",provider="vcd"} %d`, len(attention)),
		`tokend_tokens{kind="api_token",provider="vcd",state="current"} 7`,
		`tokend_tokens{kind="api_token",provider="vcd",state="failed"} 1`,
		`tokend_tokens{kind="api_token",provider="vcd",state="expired"} 1`,
		`tokend_tokens{kind="api_token",provider="vcd",state="rotating"} 0`,
		fmt.Sprintf(`tokend_tokens_earliest_expiry_timestamp_seconds{kind="api_token",provider="vcd"} %v`, float64(t0.Add(-time.Second).Unix())+0.5),
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("exposition lacks %q:\n%s", want, text)
		}
	}

	// On, every token has its series, the healthy one included.
	on := exposition(t, collectorGatherer(collectorAt(src, true)))
	if !strings.Contains(on, `token="fine"`) || !strings.Contains(on, "tokend_metrics_per_token 1\n") {
		t.Errorf("per-token on lacks the healthy token or says off:\n%s", on)
	}
}

func TestSetPerTokenDropsTheCountersTokenLabel(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, nil, BuildInfo{}, false)
	m.Operation("cv-api", "cv-prod", "renew", "success", time.Second)
	m.Delivery("cv-api", "file", "success")

	m.SetPerToken(false)
	if n := testutil.CollectAndCount(m.rotations); n != 0 {
		t.Errorf("after switching off, rotations_total has %d series from before, want them reset", n)
	}
	m.Operation("cv-api", "cv-prod", "renew", "success", time.Second)
	m.Operation("cv-web", "cv-prod", "renew", "success", time.Second)
	m.Delivery("cv-api", "file", "success")
	if got := testutil.ToFloat64(m.rotations.WithLabelValues("", "cv-prod", "renew", "success")); got != 2 {
		t.Errorf("rotations_total without a token = %v, want both renewals in one series", got)
	}
	if got := testutil.ToFloat64(m.deliveries.WithLabelValues("", "file", "success")); got != 1 {
		t.Errorf("deliveries_total without a token = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.rotations); n != 1 {
		t.Errorf("rotations_total series = %d, want 1 (the successes of both tokens)", n)
	}

	m.Operation("cv-web", "cv-prod", "revoke", "unauthorized", time.Second)
	m.Delivery("cv-web", "file", "permission")
	if got := testutil.ToFloat64(m.rotations.WithLabelValues("cv-web", "cv-prod", "revoke", "unauthorized")); got != 1 {
		t.Errorf("a failure without per-token series lost its token name: rotations_total{token=cv-web} = %v", got)
	}
	if got := testutil.ToFloat64(m.deliveries.WithLabelValues("cv-web", "file", "permission")); got != 1 {
		t.Errorf("a failed delivery without per-token series lost its token name: %v", got)
	}

	m.SetPerToken(false) // unchanged: nothing is reset
	if got := testutil.ToFloat64(m.rotations.WithLabelValues("", "cv-prod", "renew", "success")); got != 2 {
		t.Errorf("setting the same mode again reset the counters: %v", got)
	}
	m.SetPerToken(true)
	m.Operation("cv-api", "cv-prod", "renew", "success", time.Second)
	if got := testutil.ToFloat64(m.rotations.WithLabelValues("cv-api", "cv-prod", "renew", "success")); got != 1 {
		t.Errorf("rotations_total{token=cv-api} after switching on = %v, want 1", got)
	}
}

// BenchmarkCollect100kSummary is BenchmarkCollect100k with per-token series off: 100,000 tokens of which
// 1% need attention.
func BenchmarkCollect100kSummary(b *testing.B) {
	const n = 100_000
	src := &fakeSource{snaps: make([]rotation.Snapshot, n)}
	for i := range src.snaps {
		src.snaps[i] = healthy(fmt.Sprintf("token-%06d", i))
		src.snaps[i].Provider = fmt.Sprintf("vendor-%02d", i%16)
		if i%100 == 0 {
			src.snaps[i].ConsecutiveFailures = 1
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectorAt(src, false))
	b.ReportAllocs()
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		if len(mfs) == 0 {
			b.Fatal("nothing gathered")
		}
	}
}
