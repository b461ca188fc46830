package metrics

import (
	"cmp"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokend/tokend/rotation"
)

// The aggregates by provider and kind. They are a handful of series whatever the number of tokens, so every
// scrape carries them; with per-token series off (metrics.per_token) they are what dashboards and capacity
// alerts read, while the tokens that need attention keep their own series (needsAttention).
type summaryDescs struct {
	perTokenOn, tokens, earliestExpiry, earliestRenewableUntil, attention *prometheus.Desc
}

func newSummaryDescs() summaryDescs {
	pk := []string{lProvider, lKind}
	return summaryDescs{
		perTokenOn: prometheus.NewDesc("tokend_metrics_per_token",
			"Whether every token has its own tokend_token_* series (1), or only the tokens that need attention (0): metrics.per_token.", nil, nil),
		tokens: prometheus.NewDesc("tokend_tokens",
			"Configured tokens by provider, kind and state.", []string{lProvider, lKind, lState}, nil),
		earliestExpiry: prometheus.NewDesc("tokend_tokens_earliest_expiry_timestamp_seconds",
			"Unix time the first of the provider's tokens of this kind expires. Absent when none expires.", pk, nil),
		earliestRenewableUntil: prometheus.NewDesc("tokend_tokens_earliest_renewable_until_timestamp_seconds",
			"Unix time the first of the provider's tokens of this kind can no longer be renewed. Absent when none has such a limit.", pk, nil),
		attention: prometheus.NewDesc("tokend_tokens_needing_attention",
			"Tokens that are failed, expired, failing, late for a planned action or a revoke, near expiry or near renewable-until: those that keep their own series when metrics.per_token is off.", pk, nil),
	}
}

func (d *summaryDescs) describe(ch chan<- *prometheus.Desc) {
	ch <- d.perTokenOn
	ch <- d.tokens
	ch <- d.earliestExpiry
	ch <- d.earliestRenewableUntil
	ch <- d.attention
}

// group is the aggregate of one provider's tokens of one kind.
type group struct {
	provider, kind         string
	states                 map[string]int
	attention              int
	expiry, renewableUntil time.Time // earliest; zero when none
}

// summary sends the aggregates of snaps. Every state of rotation.States has a series for every provider
// and kind that has a token, so a count that drops to 0 reads 0, not absent.
func (c *tokenCollector) summary(ch chan<- prometheus.Metric, snaps []rotation.Snapshot, now time.Time) {
	groups := map[[2]string]*group{}
	for i := range snaps {
		t := &snaps[i]
		g := groups[[2]string{t.Provider, t.Kind}]
		if g == nil {
			g = &group{provider: t.Provider, kind: t.Kind, states: map[string]int{}}
			groups[[2]string{t.Provider, t.Kind}] = g
		}
		g.states[t.State]++
		if needsAttention(t, now) {
			g.attention++
		}
		g.expiry = earliest(g.expiry, t.ExpiresAt)
		g.renewableUntil = earliest(g.renewableUntil, t.RenewableUntil)
	}
	sorted := make([]*group, 0, len(groups))
	for _, g := range groups {
		sorted = append(sorted, g)
	}
	slices.SortFunc(sorted, func(a, b *group) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.provider, b.provider)) // the labels' order
	})
	states := slices.Sorted(slices.Values(rotation.States))
	for _, g := range sorted {
		p, k := validUTF8(&g.provider), validUTF8(&g.kind)
		for _, st := range states {
			ch <- prometheus.MustNewConstMetric(c.tokens, prometheus.GaugeValue, float64(g.states[st]), *p, *k, st)
		}
		ch <- prometheus.MustNewConstMetric(c.attention, prometheus.GaugeValue, float64(g.attention), *p, *k)
		if !g.expiry.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.earliestExpiry, prometheus.GaugeValue, seconds(g.expiry), *p, *k)
		}
		if !g.renewableUntil.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.earliestRenewableUntil, prometheus.GaugeValue, seconds(g.renewableUntil), *p, *k)
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// What makes a token need attention: the thresholds of the alerts in configs/prometheus/alerts.yaml, so that
// with per-token series off every per-token alert still sees the series of every token it would fire for.
const (
	actionLate         = time.Minute    // a planned action or a revoke this late: the scheduler is behind or wedged
	renewableUntilNear = 24 * time.Hour // TokendRenewableUntilNear
	expiringNoLifetime = time.Hour      // TokendTokenExpiringSoon for a token whose issue time is unknown
)

// needsAttention reports whether t keeps its own series when per-token series are off: it is failed or
// expired, its last attempt failed, a planned action or the revoke of its predecessor is late, or it is near
// its expiry (1/20 of its lifetime, tokend's emergency line) or its renewable-until.
func needsAttention(t *rotation.Snapshot, now time.Time) bool {
	switch {
	case t.State == rotation.StateFailed, t.State == rotation.StateExpired, t.ConsecutiveFailures > 0:
		return true
	case !t.NextAt.IsZero() && now.Sub(t.NextAt) > actionLate:
		return true
	case !t.PrevRevokeAt.IsZero() && now.Sub(t.PrevRevokeAt) > actionLate:
		return true
	case !t.RenewableUntil.IsZero() && t.RenewableUntil.Sub(now) < renewableUntilNear:
		return true
	case !t.ExpiresAt.IsZero():
		soon := expiringNoLifetime
		if !t.IssuedAt.IsZero() && t.ExpiresAt.After(t.IssuedAt) {
			soon = t.ExpiresAt.Sub(t.IssuedAt) / 20
		}
		return t.ExpiresAt.Sub(now) < soon
	}
	return false
}
