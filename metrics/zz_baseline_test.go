package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tokend/tokend/rotation"
)

type naive struct{ c *tokenCollector }

func (n naive) Describe(ch chan<- *prometheus.Desc) { n.c.Describe(ch) }
func (n naive) Collect(ch chan<- prometheus.Metric) {
	c := n.c
	for _, t := range c.src.Snapshots() {
		ts := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, t.Name, t.Provider, t.Kind) }
		ts(c.expiry, seconds(t.ExpiresAt))
		ts(c.issued, seconds(t.IssuedAt))
		ts(c.renewableUntil, seconds(t.RenewableUntil))
		ts(c.failures, float64(t.ConsecutiveFailures))
		ts(c.lastSuccess, seconds(t.LastSuccess))
		ts(c.prevRevoke, seconds(t.PrevRevokeAt))
		ch <- prometheus.MustNewConstMetric(c.nextAction, prometheus.GaugeValue, seconds(t.NextAt), t.Name, t.Provider, t.Kind, t.NextAction)
		for _, st := range rotation.States {
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, b2f(st == t.State), t.Name, t.Provider, t.Kind, st)
		}
	}
}

func BenchmarkNaive100k(b *testing.B) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(naive{newTokenCollector(bigSource(100_000))})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
