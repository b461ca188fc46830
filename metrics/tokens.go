package metrics

import (
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tokend/tokend/rotation"
)

// tokenCollector exports the per-token gauges from the Source at every scrape. Nothing is kept between
// scrapes, so a token removed by a reload is gone from the next one.
//
// It is built for 100,000 tokens (about 1.1 million series): instead of prometheus.MustNewConstMetric, which
// validates, sorts and allocates every label pair and value of every series, one scrape allocates a few
// large slabs up front and hands the registry pointers into them. Label pairs for a token, its provider and
// kind, the four states and each action are built once per scrape and shared by the series that carry them;
// label lists are already in the sorted order the registry wants. The registry treats what Write gives it
// as immutable, and every scrape has its own slabs, so concurrent scrapes share nothing mutable.
//
// With per-token series off (metrics.per_token, see SetPerToken), only the tokens that need attention keep
// their series, and every scrape carries the aggregates by provider and kind (summary.go).
type tokenCollector struct {
	src      Source
	now      func() time.Time
	perToken *atomic.Bool

	summaryDescs

	expiry, issued, renewableUntil, nextAction, state, failures, lastSuccess, prevRevoke *prometheus.Desc
}

// Label names, in the sorted order label lists must have: action < kind < provider < state < token.
const (
	lAction   = "action"
	lKind     = "kind"
	lProvider = "provider"
	lState    = "state"
	lToken    = "token"
)

// Slab sizes per token: upper bounds, so that a scrape allocates each slab once. (Were one too small, append
// would move the rest to a new array; series already sent keep pointing at the old one, which stays valid.)
var (
	seriesPerToken = 7 + len(rotation.States) // seven gauges plus one series per state
	valuesPerToken = 7                        // series with a value of their own; state series share 0 and 1
	labelsPerToken = 3 + 4 + 4*len(rotation.States)
)

func newTokenCollector(src Source, perToken *atomic.Bool) *tokenCollector {
	base := []string{lToken, lProvider, lKind}
	d := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append(append([]string(nil), base...), extra...), nil)
	}
	return &tokenCollector{
		src:            src,
		now:            time.Now,
		perToken:       perToken,
		summaryDescs:   newSummaryDescs(),
		expiry:         d("tokend_token_expiry_timestamp_seconds", "Unix time the current token expires, as the vendor gave it. Absent when it does not expire."),
		issued:         d("tokend_token_issued_timestamp_seconds", "Unix time the current token was issued, as the vendor gave it. Absent when unknown."),
		renewableUntil: d("tokend_token_renewable_until_timestamp_seconds", "Unix time after which the current token can no longer be renewed, as the vendor gave it. Absent when there is no such limit."),
		nextAction:     d("tokend_token_next_action_timestamp_seconds", "Unix time tokend plans its next action on the token. Absent when nothing is planned.", lAction),
		state:          d("tokend_token_state", "The token's state: 1 for the active state, 0 for the others.", lState),
		failures:       d("tokend_token_consecutive_failures", "Failed attempts since the token's last successful operation."),
		lastSuccess:    d("tokend_token_last_success_timestamp_seconds", "Unix time of the token's last successful operation. Absent when there was none."),
		prevRevoke:     d("tokend_token_previous_revoke_deadline_timestamp_seconds", "Unix time the previous token is due to be revoked. Absent when no previous token waits for revocation."),
	}
}

// Describe implements prometheus.Collector.
func (c *tokenCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.expiry, c.issued, c.renewableUntil, c.nextAction, c.state, c.failures, c.lastSuccess, c.prevRevoke} {
		ch <- d
	}
	c.summaryDescs.describe(ch)
}

// series is one sample handed to the registry. It points into its scrape's slabs.
type series struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	gauge  *dto.Gauge
}

func (s *series) Desc() *prometheus.Desc { return s.desc }

func (s *series) Write(m *dto.Metric) error {
	m.Label, m.Gauge = s.labels, s.gauge
	return nil
}

type value struct {
	g dto.Gauge
	v float64
}

// scrape holds the slabs of one Collect call.
type scrape struct {
	c      *tokenCollector
	snaps  []rotation.Snapshot
	toks   []tokenLabels // by index into snaps
	order  []int         // indices into snaps, sorted by kind, provider, name
	series []series
	values []value
	labels []*dto.LabelPair

	names                     [5]string // lAction, lKind, lProvider, lState, lToken; label pairs point at them
	unknown                   string    // the action of a planned time without an action (not expected)
	kinds, providers, actions map[string]*dto.LabelPair
	states                    []dto.LabelPair // one per rotation.States, in their label values' order
	active                    []string        // the state each pair of states stands for
	zero, one                 value
}

// tokenLabels are one token's label pairs in a scrape. kind, provider and action are shared.
type tokenLabels struct {
	token                  dto.LabelPair
	kind, provider, action *dto.LabelPair // action is nil when nothing is planned
}

// Collect implements prometheus.Collector.
//
// The registry sorts every family by its label values before it returns, which at a million series is most
// of a scrape's cost unless the series already arrive in order (its sort is then linear). So each family is
// sent in its labels' order: tokens ordered by kind, provider and name; the state family grouped by kind
// and provider, then state, then token; the next-action family by action first. The order is only for
// speed: the registry sorts whatever it gets.
func (c *tokenCollector) Collect(ch chan<- prometheus.Metric) {
	perToken := c.perToken.Load()
	ch <- prometheus.MustNewConstMetric(c.perTokenOn, prometheus.GaugeValue, b2f(perToken))
	if c.src == nil {
		return
	}
	snaps := c.src.Snapshots()
	now := c.now()
	c.summary(ch, snaps, now)
	if !perToken {
		snaps = slices.DeleteFunc(snaps, func(t rotation.Snapshot) bool { return !needsAttention(&t, now) })
	}
	n := len(snaps)
	if n == 0 {
		return
	}
	s := &scrape{
		c:         c,
		snaps:     snaps,
		toks:      make([]tokenLabels, n),
		order:     make([]int, n),
		series:    make([]series, 0, n*seriesPerToken),
		values:    make([]value, 0, n*valuesPerToken),
		labels:    make([]*dto.LabelPair, 0, n*labelsPerToken),
		names:     [5]string{lAction, lKind, lProvider, lState, lToken},
		unknown:   "unknown",
		kinds:     map[string]*dto.LabelPair{},
		providers: map[string]*dto.LabelPair{},
		actions:   map[string]*dto.LabelPair{},
		states:    make([]dto.LabelPair, len(rotation.States)),
		active:    slices.Sorted(slices.Values(rotation.States)),
	}
	s.zero.g.Value = &s.zero.v
	s.one.v = 1
	s.one.g.Value = &s.one.v
	for i := range s.active {
		s.states[i].Name, s.states[i].Value = &s.names[3], &s.active[i]
	}
	for i := range s.order {
		s.order[i] = i
	}
	slices.SortFunc(s.order, func(a, b int) int {
		x, y := &snaps[a], &snaps[b]
		if c := strings.Compare(x.Kind, y.Kind); c != 0 {
			return c
		}
		if c := strings.Compare(x.Provider, y.Provider); c != 0 {
			return c
		}
		return strings.Compare(x.Name, y.Name)
	})

	for _, i := range s.order {
		s.token(ch, i)
	}
	s.stateFamily(ch)
	s.nextActionFamily(ch)
}

// token sends the series of snaps[i] whose families have only the token, provider and kind labels.
func (s *scrape) token(ch chan<- prometheus.Metric, i int) {
	c, t, l := s.c, &s.snaps[i], &s.toks[i]
	l.token.Name, l.token.Value = &s.names[4], validUTF8(&t.Name)
	l.kind = shared(s.kinds, &s.names[1], &t.Kind)
	l.provider = shared(s.providers, &s.names[2], &t.Provider)
	if !t.NextAt.IsZero() {
		action := &t.NextAction
		if *action == "" {
			action = &s.unknown
		}
		l.action = shared(s.actions, &s.names[0], action)
	}
	base := s.list(l.kind, l.provider, &l.token)
	s.timestamp(ch, c.expiry, base, t.ExpiresAt)
	s.timestamp(ch, c.issued, base, t.IssuedAt)
	s.timestamp(ch, c.renewableUntil, base, t.RenewableUntil)
	s.gauge(ch, c.failures, base, float64(t.ConsecutiveFailures))
	s.timestamp(ch, c.lastSuccess, base, t.LastSuccess)
	s.timestamp(ch, c.prevRevoke, base, t.PrevRevokeAt)
}

// stateFamily sends tokend_token_state: for each run of tokens sharing kind and provider, every state in
// turn for all of them.
func (s *scrape) stateFamily(ch chan<- prometheus.Metric) {
	for start := 0; start < len(s.order); {
		first := &s.toks[s.order[start]]
		end := start + 1
		for end < len(s.order) && s.toks[s.order[end]].kind == first.kind && s.toks[s.order[end]].provider == first.provider {
			end++
		}
		for j := range s.states {
			for _, i := range s.order[start:end] {
				l, g := &s.toks[i], &s.zero.g
				if s.snaps[i].State == s.active[j] {
					g = &s.one.g
				}
				s.send(ch, s.c.state, s.list(l.kind, l.provider, &s.states[j], &l.token), g)
			}
		}
		start = end
	}
}

// nextActionFamily sends tokend_token_next_action_timestamp_seconds, one action after the other (there
// are a handful).
func (s *scrape) nextActionFamily(ch chan<- prometheus.Metric) {
	actions := make([]*dto.LabelPair, 0, len(s.actions))
	for _, p := range s.actions {
		actions = append(actions, p)
	}
	slices.SortFunc(actions, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetValue(), b.GetValue()) })
	for _, a := range actions {
		for _, i := range s.order {
			if l := &s.toks[i]; l.action == a {
				s.timestamp(ch, s.c.nextAction, s.list(a, l.kind, l.provider, &l.token), s.snaps[i].NextAt)
			}
		}
	}
}

// list returns the label pairs as a list carved out of the scrape's slab, capped so that nobody appending to
// it can overwrite the next one.
func (s *scrape) list(pairs ...*dto.LabelPair) []*dto.LabelPair {
	start := len(s.labels)
	s.labels = append(s.labels, pairs...)
	return s.labels[start:len(s.labels):len(s.labels)]
}

func (s *scrape) timestamp(ch chan<- prometheus.Metric, d *prometheus.Desc, labels []*dto.LabelPair, t time.Time) {
	if !t.IsZero() {
		s.gauge(ch, d, labels, seconds(t))
	}
}

func (s *scrape) gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, labels []*dto.LabelPair, v float64) {
	s.values = append(s.values, value{v: v})
	val := &s.values[len(s.values)-1]
	val.g.Value = &val.v
	s.send(ch, d, labels, &val.g)
}

func (s *scrape) send(ch chan<- prometheus.Metric, d *prometheus.Desc, labels []*dto.LabelPair, g *dto.Gauge) {
	s.series = append(s.series, series{desc: d, labels: labels, gauge: g})
	ch <- &s.series[len(s.series)-1]
}

// shared returns the scrape's label pair name=*v, creating it on first use.
func shared(m map[string]*dto.LabelPair, name, v *string) *dto.LabelPair {
	if p, ok := m[*v]; ok {
		return p
	}
	p := &dto.LabelPair{Name: name, Value: validUTF8(v)}
	m[*v] = p
	return p
}

// validUTF8 returns v, or a repaired copy when it is not valid UTF-8: the registry rejects such a label
// value, and with it the whole scrape. Config names are validated, so this is a safety net.
func validUTF8(v *string) *string {
	if utf8.ValidString(*v) {
		return v
	}
	r := strings.ToValidUTF8(*v, "\uFFFD")
	return &r
}
