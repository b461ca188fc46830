package metrics

import (
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Clock skew: how far each vendor's clock is ahead of tokend's, read from the Date header of its answers.
//
// Vendors state some times as absolute timestamps on their own clock (Commvault's tokenExpiryTimestamp,
// Huawei's expiration_time, VCD's expirationTimeUtc). When a vendor's clock is ahead of ours, its token dies
// before the time it names, on our clock; the daemon translates those times with ClockSkew, and
// tokend_provider_clock_skew_seconds shows the skew so that an operator can fix the clock that is wrong.
//
// An HTTP Date has a resolution of one second and is stamped at some moment between our request and its
// answer, so one reading is known to about ±(0.5 s + half the round trip): the skew of one answer is
// Date + 0.5 s (the middle of the second it names) minus the middle of the round trip on our clock.

// maxSkewRTT is the longest round trip whose Date is used: beyond it, when the vendor stamped its answer is
// too uncertain to say more about its clock than the noise band does.
const maxSkewRTT = 3 * time.Second

// settleBand is how far readings may stray from the skew tokend acts on before that skew is changed. The
// reading of a steady clock wanders by about a second (the Date's resolution); a skew that followed it
// would move translated times by a second from one answer to the next.
const settleBand = 2 * time.Second

// clockSkew holds the latest reading and the settled skew of every provider. The zero value is ready.
type clockSkew struct {
	mu sync.Mutex
	by map[string]*skewReading
}

type skewReading struct {
	last    time.Duration // the latest reading, exported as the gauge
	settled time.Duration // whole seconds, what ClockSkew returns
}

var skewDesc = prometheus.NewDesc("tokend_provider_clock_skew_seconds",
	"How far the provider's clock is ahead of tokend's (negative: behind), from the Date header of its latest answer.",
	[]string{"provider"}, nil)

// readSkew returns the skew one answer shows: its Date header (the vendor's clock, truncated to the second)
// against the middle of the round trip from start to end on our clock. ok is false without a usable Date or
// when the round trip took longer than maxSkewRTT.
func readSkew(date string, start, end time.Time) (skew time.Duration, ok bool) {
	if date == "" || end.Sub(start) > maxSkewRTT {
		return 0, false
	}
	d, err := http.ParseTime(date)
	if err != nil {
		return 0, false
	}
	mid := start.Add(end.Sub(start) / 2)
	return d.Add(500 * time.Millisecond).Sub(mid), true
}

// settle returns the skew to act on after a reading: the reading rounded to whole seconds when it strays
// settleBand or more from the settled one (or nothing was settled yet), else the settled one unchanged.
func settle(settled time.Duration, have bool, reading time.Duration) time.Duration {
	if have && (reading-settled).Abs() < settleBand {
		return settled
	}
	return reading.Round(time.Second)
}

// observe records the skew of provider's answer with the given Date header, sent at start and answered at
// end (its headers); an answer without a usable Date changes nothing.
func (c *clockSkew) observe(provider, date string, start, end time.Time) {
	reading, ok := readSkew(date, start, end)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[string]*skewReading{}
	}
	r, have := c.by[provider]
	if !have {
		r = &skewReading{}
		c.by[provider] = r
	}
	r.last = reading
	r.settled = settle(r.settled, have, reading)
}

// ClockSkew returns how far provider's clock is ahead of tokend's (negative: behind), for translating the
// absolute times that provider states onto tokend's clock: whole seconds, held steady while readings stay
// within settleBand of it, so that the same vendor time translates to the same local time from one answer to
// the next. ok is false until an answer of provider with a usable Date header has been seen. Safe for
// concurrent use.
func (m *Metrics) ClockSkew(provider string) (skew time.Duration, ok bool) {
	m.skew.mu.Lock()
	defer m.skew.mu.Unlock()
	r, ok := m.skew.by[provider]
	if !ok {
		return 0, false
	}
	return r.settled, true
}

// skewCollector exports tokend_provider_clock_skew_seconds: one series per provider that has answered with a
// usable Date, absent before (an unknown skew is not 0), and none for a provider that SetProviders no longer
// lists.
type skewCollector struct{ m *Metrics }

func (c skewCollector) Describe(ch chan<- *prometheus.Desc) { ch <- skewDesc }

func (c skewCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	configured := c.m.providers
	c.m.mu.Unlock()
	c.m.skew.mu.Lock()
	defer c.m.skew.mu.Unlock()
	for p, r := range c.m.skew.by {
		if configured != nil {
			if _, ok := configured[p]; !ok {
				continue
			}
		}
		ch <- prometheus.MustNewConstMetric(skewDesc, prometheus.GaugeValue, roundMillis(r.last.Seconds()), p)
	}
}

// roundMillis keeps a reading to the millisecond: finer digits are noise.
func roundMillis(s float64) float64 { return math.Round(s*1000) / 1000 }
