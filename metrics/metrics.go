// Package metrics exports tokend's Prometheus metrics (DESIGN.md section 7).
//
// New registers everything on a registerer it is given; the package has no globals. Per-token gauges come
// from a collector that reads the engine's current snapshots at scrape time, so a token removed by a reload
// disappears at the next scrape and nothing about a token is cached between scrapes. Counters and histograms
// are fed by the rotation engine through the rotation.Observer methods of Metrics, by the daemon (Redis,
// reloads, polls) and by the HTTP transport every provider's client is built on (Transport).
//
// Labels come only from config names (token, provider, kind, sink) and from fixed vocabularies (operation,
// result, action, state, HTTP code); never from vendor ids or secrets. Times are the vendor's, exported as
// Unix seconds with sub-second precision; a time that is unknown is an absent series, never 0.
package metrics

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tokend/tokend/rotation"
)

// Source gives the per-token collector the current state. rotation.Engine satisfies it. Snapshots is called
// once per scrape, from the scrape's goroutine, and must return a slice the caller may keep; token names in
// it are unique.
type Source interface{ Snapshots() []rotation.Snapshot }

// BuildInfo labels tokend_build_info. An empty GoVersion means runtime.Version().
type BuildInfo struct{ Version, Revision, GoVersion string }

// Metrics records what tokend does. Its methods are safe for concurrent use. It implements rotation.Observer.
type Metrics struct {
	rotations        *prometheus.CounterVec
	rotationDuration *prometheus.HistogramVec
	deliveries       *prometheus.CounterVec
	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	schedulerLag     prometheus.Histogram
	redisUp          prometheus.Gauge
	reloadOK         prometheus.Gauge
	reloadTime       *prometheus.GaugeVec // no labels: absent until the first successful reload
	pollTime         *prometheus.GaugeVec
	skew             clockSkew // tokend_provider_clock_skew_seconds and ClockSkew (skew.go)

	// perToken is metrics.per_token as the current config resolves it: whether every token has its own
	// series, and whether the counters carry a token label. Shared with the token collector.
	perToken atomic.Bool

	mu        sync.Mutex
	providers map[string]struct{} // configured providers; nil until SetProviders is first called
	polled    map[string]struct{} // providers with a poll series
}

var (
	_ rotation.Observer = (*Metrics)(nil)
	_ Source            = (*rotation.Engine)(nil)
)

// Bucket layouts, in seconds. The scheduler's lateness target is p99 <= 100 ms (DESIGN.md section 9), so
// 0.1 is a bucket boundary.
var (
	rotationBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
	requestBuckets  = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	lagBuckets      = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
)

// New registers every metric of DESIGN.md section 7 on reg (plus the Go and process collectors when
// withRuntime) and returns the recorder. src feeds the per-token gauges at scrape time; nil exports no
// tokens. Like prometheus.MustRegister, New panics when a metric is already registered on reg, so call it
// once per registry (a reload keeps the Metrics and calls SetProviders).
//
// Until they are first set, tokend_redis_up and tokend_config_last_reload_successful are 0 and the
// timestamp series are absent.
func New(reg prometheus.Registerer, src Source, info BuildInfo, withRuntime bool) *Metrics {
	m := &Metrics{
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_rotations_total",
			Help: "Rotation operations (renew, recreate, verify, deliver, revoke) by result: success or the error class.",
		}, []string{"token", "provider", "operation", "result"}),
		rotationDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokend_rotation_duration_seconds",
			Help:    "Duration of rotation operations, vendor calls and state writes included.",
			Buckets: rotationBuckets,
		}, []string{"provider", "operation"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_deliveries_total",
			Help: "Deliveries of a token to one sink by result: success or the error class.",
		}, []string{"token", "sink", "result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_provider_requests_total",
			Help: "HTTP requests to vendor APIs by operation and status code (\"error\": no response).",
		}, []string{"provider", "operation", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokend_provider_request_duration_seconds",
			Help:    "Time from sending a vendor API request to its response headers (or failure).",
			Buckets: requestBuckets,
		}, []string{"provider", "operation"}),
		schedulerLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tokend_scheduler_lag_seconds",
			Help:    "How late the scheduler started a due action, relative to its due time.",
			Buckets: lagBuckets,
		}),
		redisUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tokend_redis_up",
			Help: "Whether the last Redis health check succeeded (1) or not (0).",
		}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tokend_config_last_reload_successful",
			Help: "Whether the last configuration load succeeded (1) or not (0).",
		}),
		reloadTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tokend_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load.",
		}, nil),
		pollTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tokend_poll_last_success_timestamp_seconds",
			Help: "Unix time of the last successful poll of a provider's tokens.",
		}, []string{"provider"}),
		polled: map[string]struct{}{},
	}
	m.perToken.Store(true)
	if info.GoVersion == "" {
		info.GoVersion = runtime.Version()
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "tokend_build_info",
		Help:        "A metric with a constant 1 value labelled by the version, revision and Go version tokend was built from.",
		ConstLabels: prometheus.Labels{"version": info.Version, "revision": info.Revision, "goversion": info.GoVersion},
	})
	buildInfo.Set(1)

	reg.MustRegister(
		m.rotations, m.rotationDuration, m.deliveries, m.requests, m.requestDuration, m.schedulerLag,
		m.redisUp, m.reloadOK, m.reloadTime, m.pollTime, buildInfo, skewCollector{m}, newTokenCollector(src, &m.perToken),
	)
	if withRuntime {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Operation records one renew, recreate, verify, deliver or revoke of token with its result ("success" or the
// error class) and duration.
func (m *Metrics) Operation(token, provider, op, result string, d time.Duration) {
	m.rotations.WithLabelValues(m.tokenLabel(token, result), provider, op, result).Inc()
	m.rotationDuration.WithLabelValues(provider, op).Observe(d.Seconds())
}

// Delivery records one delivery of token to sink with its result ("success" or the error class).
func (m *Metrics) Delivery(token, sink, result string) {
	m.deliveries.WithLabelValues(m.tokenLabel(token, result), sink, result).Inc()
}

// SetPerToken sets metrics.per_token as the config resolves it (config.Config.PerTokenMetrics). On (the
// default): every token has its tokend_token_* series, and tokend_rotations_total and tokend_deliveries_total
// count by token. Off, for very many tokens: only the tokens that need attention keep their tokend_token_*
// series (failed, failing, late or near expiry: the tokens an alert would fire for), the tokend_tokens*
// aggregates by provider and kind are the overview, and the counters count successes with an empty token
// label, which Prometheus stores as no label (failures keep the token's name: they are few, and the failure
// alerts name the token). A change resets those two counters, so no series mixes the two meanings.
func (m *Metrics) SetPerToken(on bool) {
	if m.perToken.Swap(on) != on {
		m.rotations.Reset()
		m.deliveries.Reset()
	}
}

// tokenLabel is the token label of a counter: the token's name, or "" for a success with per-token series
// off.
func (m *Metrics) tokenLabel(token, result string) string {
	if m.perToken.Load() || result != "success" {
		return token
	}
	return ""
}

// Changed does nothing: the per-token gauges read the Source at scrape time.
func (m *Metrics) Changed(string) {}

// SchedulerLag records how late an action started after its due time. A negative d (early) counts as 0.
func (m *Metrics) SchedulerLag(d time.Duration) {
	m.schedulerLag.Observe(max(d, 0).Seconds())
}

// SetRedisUp records the result of a Redis health check.
func (m *Metrics) SetRedisUp(up bool) { m.redisUp.Set(b2f(up)) }

// ConfigReloaded records a configuration load (the first one included) that succeeded (ok) or not. at is
// recorded as the last success time only when ok.
func (m *Metrics) ConfigReloaded(ok bool, at time.Time) {
	m.reloadOK.Set(b2f(ok))
	if ok {
		m.reloadTime.WithLabelValues().Set(seconds(at))
	}
}

// PollSucceeded records that a poll of provider's tokens finished successfully at at. Once SetProviders has
// been called, a provider not in its list is ignored, so a poll of a removed provider that finishes after a
// reload does not bring its series back.
func (m *Metrics) PollSucceeded(provider string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.providers != nil {
		if _, ok := m.providers[provider]; !ok {
			return
		}
	}
	m.polled[provider] = struct{}{}
	m.pollTime.WithLabelValues(provider).Set(seconds(at))
}

// SetProviders tells which providers are configured now; the poll series of any other provider is dropped.
// Counters keep their series for the life of the process, as Prometheus counters do.
func (m *Metrics) SetProviders(names []string) {
	set := make(map[string]struct{}, len(names))
	for _, n := range names {
		set[n] = struct{}{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.polled {
		if _, ok := set[p]; !ok {
			m.pollTime.DeleteLabelValues(p)
			delete(m.polled, p)
		}
	}
	m.providers = set
}

// seconds converts t to Unix seconds with sub-second precision. Unlike UnixNano it does not overflow for
// times after 2262, which a vendor may send for "practically never".
func seconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
