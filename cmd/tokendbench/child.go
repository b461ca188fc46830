package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/daemon"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/rotation"
	"github.com/tokend/tokend/scheduler"
	"github.com/tokend/tokend/sinks"
	"github.com/tokend/tokend/store"
)

// Token policy of the bench: 24h tokens renewed 2h before expiry, no jitter, so that a token issued at t is
// due at exactly t+22h (2h is more than 1/20 of the lifetime: the emergency rule never fires).
const (
	lifetime    = 24 * time.Hour
	renewBefore = 2 * time.Hour
	instance    = "bench"
)

var stateKey = []byte("tokendbench-state-key-32-bytes!!")

// benchClock is real time plus an offset the bench moves to make tokens due.
type benchClock struct{ offset atomic.Int64 }

func (c *benchClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// vendorClock is one fake vendor's clock: pinned while the bench creates tokens with chosen issue times.
type vendorClock struct {
	pinned atomic.Int64
	c      *benchClock
}

func (v *vendorClock) Now() time.Time {
	if p := v.pinned.Load(); p != 0 {
		return time.Unix(0, p)
	}
	return v.c.Now()
}

// bench is one child's world: Redis, the store, n tokens spread over o.providers fake vendors.
type bench struct {
	o       opts
	rdb     *redis.Client
	hook    *rttHook
	st      *store.Store
	clock   *benchClock
	names   []string // token i is names[i]
	index   map[string]int
	tokens  map[string]*rotation.Token
	vendor  [][]string // token names per vendor, in index order
	vclocks []*vendorClock
	obs     *observer
	reg     *prometheus.Registry
	engine  atomic.Pointer[rotation.Engine]

	configMS float64 // loading, validating and resolving the config
	perToken bool    // metrics.per_token: auto, as the config resolves it
}

// tokenName is the name of token i.
func tokenName(i int) string { return fmt.Sprintf("bench-%06d", i) }

func newBench(o opts) (*bench, error) {
	rdb, err := connect(o.redisURL)
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, rdb: rdb, hook: &rttHook{}, clock: &benchClock{}, index: make(map[string]int, o.n),
		tokens: make(map[string]*rotation.Token, o.n), reg: prometheus.NewRegistry()}
	rdb.AddHook(b.hook)
	b.st, err = store.New(rdb, stateKey, store.Options{Prefix: o.prefix, Instance: instance})
	if err != nil {
		return nil, err
	}
	m := metrics.New(b.reg, sourceFunc(b.snapshots), metrics.BuildInfo{Version: "bench"}, true)
	b.obs = &observer{m: m}
	// The tokens come from a config file, loaded, validated and resolved as tokend does at start (its
	// vendors are replaced by the in-memory fakes below).
	start := time.Now()
	cfg, err := daemon.LoadConfig(o.configPath)
	if err != nil {
		return nil, err
	}
	if len(cfg.Tokens) != o.n {
		return nil, fmt.Errorf("%s holds %d tokens, want %d", o.configPath, len(cfg.Tokens), o.n)
	}
	m.SetPerToken(cfg.PerTokenMetrics())
	b.perToken = cfg.PerTokenMetrics()
	provs := make([]providerOf, o.providers)
	for p := range provs {
		vc := &vendorClock{c: b.clock}
		b.vclocks = append(b.vclocks, vc)
		fake := providertest.NewFake(providertest.FakeOptions{Now: vc.Now, Lifetime: lifetime, Renewable: true})
		provs[p] = providerOf{name: fmt.Sprintf("vendor-%02d", p), fake: fake}
	}
	b.vendor = make([][]string, o.providers)
	snk := discardSink{}
	for i, t := range cfg.Tokens {
		name := t.Name
		p := i % o.providers
		if name != tokenName(i) || t.Provider != provs[p].name {
			return nil, fmt.Errorf("%s: token %d is %s of %s, want %s of %s", o.configPath, i, name, t.Provider, tokenName(i), provs[p].name)
		}
		b.names = append(b.names, name)
		b.index[name] = i
		b.vendor[p] = append(b.vendor[p], name)
		b.tokens[name] = &rotation.Token{
			Config: t, Policy: cfg.Resolve(t), Provider: provs[p].fake.Provider(), ProviderName: provs[p].name,
			Sinks: []sinks.Sink{snk},
		}
	}
	b.configMS = ms(time.Since(start))
	return b, nil
}

type providerOf struct {
	name string
	fake *providertest.Fake
}

type sourceFunc func() []rotation.Snapshot

func (f sourceFunc) Snapshots() []rotation.Snapshot { return f() }

func (b *bench) snapshots() []rotation.Snapshot {
	if e := b.engine.Load(); e != nil {
		return e.Snapshots()
	}
	return nil
}

// due is the renewal time of token i: the lateness stream, rate per second from base.
func (b *bench) due(i int) time.Time {
	return time.UnixMilli(b.o.base).Add(time.Duration(i) * time.Second / time.Duration(b.o.rate))
}

// checkScheduled fails unless the due index holds every token.
func (b *bench) checkScheduled(ctx context.Context) error {
	n, err := b.rdb.ZCard(ctx, b.o.prefix+":due").Result()
	if err != nil {
		return err
	}
	if int(n) != b.o.n {
		return fmt.Errorf("due index holds %d tokens after LoadAll, want %d", n, b.o.n)
	}
	return nil
}

func child(o opts, stdout, stderr io.Writer) int {
	ctx := context.Background()
	b, err := newBench(o)
	if err != nil {
		fmt.Fprintln(stderr, "tokendbench:", err)
		return 1
	}
	defer b.rdb.Close()
	var res Result
	switch o.role {
	case "work":
		err = b.work(ctx, &res, stderr)
	case "restart":
		err = b.restart(ctx, &res, stderr)
	default:
		err = fmt.Errorf("unknown role %q", o.role)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tokendbench %s N=%d: %v\n", o.role, o.n, err)
		return 1
	}
	_ = json.NewEncoder(stdout).Encode(res)
	return 0
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// work is the child that rotates: empty start, creates, the lateness stream, full speed, a poll pass, a scrape.
func (b *bench) work(ctx context.Context, res *Result, log io.Writer) error {
	o := b.o
	eng := rotation.New(b.st, b.tokens, rotation.Options{Now: b.clock.Now, Observer: b.obs})
	b.engine.Store(eng)
	start := time.Now()
	if err := eng.LoadAll(ctx); err != nil {
		return err
	}
	res.LoadAllEmptyMS = ms(time.Since(start))
	res.StartEmptyMS = ms(time.Since(time.Unix(0, o.t0)))
	if err := b.checkScheduled(ctx); err != nil {
		return err
	}
	fmt.Fprintf(log, "work: empty start %.0f ms (LoadAll %.0f ms)\n", res.StartEmptyMS, res.LoadAllEmptyMS)

	// Create every token, one worker per vendor, each vendor's clock pinned to the token's issue time.
	start = time.Now()
	issue0 := time.UnixMilli(o.base).Add(-(lifetime - renewBefore))
	var wg sync.WaitGroup
	for p, names := range b.vendor {
		own := make(map[string]*rotation.Token, len(names))
		for _, n := range names {
			own[n] = b.tokens[n]
		}
		vc := b.vclocks[p]
		e := rotation.New(b.st, own, rotation.Options{Now: vc.Now, Observer: b.obs})
		wg.Go(func() {
			for _, n := range names {
				vc.pinned.Store(issue0.Add(b.due(b.index[n]).Sub(b.due(0))).UnixNano())
				e.Work(ctx, n)
			}
			vc.pinned.Store(0)
		})
	}
	wg.Wait()
	res.PopulatePerSec = float64(o.n) / time.Since(start).Seconds()
	if c := b.obs.count("create"); c != o.n || b.obs.failures.Load() != 0 {
		return fmt.Errorf("populate: %d creates, %d failures, want %d creates", c, b.obs.failures.Load(), o.n)
	}
	fmt.Fprintf(log, "work: created %d tokens at %.0f/s\n", o.n, res.PopulatePerSec)
	if err := eng.LoadAll(ctx); err != nil { // the view of the main engine, as after a restart
		return err
	}

	if err := b.lateness(ctx, eng, res, log); err != nil {
		return err
	}
	if err := b.fullSpeed(ctx, eng, res, log); err != nil {
		return err
	}
	if err := b.pollPass(ctx, eng, res, log); err != nil {
		return err
	}
	d, _, _, err := b.scrape()
	if err != nil {
		return err
	}
	res.ScrapeAfterWorkMS = ms(d)
	return nil
}

// pollPass runs one provider poll over every token as the daemon does (engine.Poll, 8 at a time): the work
// the default poll schedule (@every 10m) adds to an otherwise idle tokend.
func (b *bench) pollPass(ctx context.Context, eng *rotation.Engine, res *Result, log io.Writer) error {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var failed atomic.Int64
	cpu0, start := cpuTime(), time.Now()
	for _, n := range b.names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := eng.Poll(ctx, n); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	wall, cpu := time.Since(start), cpuTime()-cpu0
	if f := failed.Load(); f != 0 {
		return fmt.Errorf("poll pass: %d polls failed", f)
	}
	res.PollPassS, res.PollCPUS = wall.Seconds(), cpu.Seconds()
	res.PollCPUPercent10m = 100 * cpu.Seconds() / 600
	fmt.Fprintf(log, "work: poll pass over %d tokens in %v, %.2f s CPU (%.2f%% of a core at @every 10m)\n",
		len(b.names), wall.Round(time.Millisecond), res.PollCPUS, res.PollCPUPercent10m)
	return nil
}

// lateness runs the real loop while o.rate tokens per second fall due, and records how late each is
// handed to a worker (scheduler.Loop's Lag, tokend_scheduler_lag_seconds) and how late it is done.
func (b *bench) lateness(ctx context.Context, eng *rotation.Engine, res *Result, log io.Writer) error {
	o := b.o
	// At most half the tokens, so that the full-speed phase has the other half to renew.
	count := min(o.n/2, int(float64(o.rate)*o.lateness.Seconds()))
	span := time.Duration(count) * time.Second / time.Duration(o.rate)
	// Virtual now = 0.5 s before the first renewal.
	b.clock.offset.Store(int64(time.Until(time.UnixMilli(o.base).Add(-500 * time.Millisecond))))
	var mu sync.Mutex
	var lag, done []time.Duration
	renews0 := b.obs.count("renew")
	loop := &scheduler.Loop{
		Index: b.st, Owns: eng.Owns, Workers: o.workers, Now: b.clock.Now,
		Lag: func(d time.Duration) { lag = append(lag, d) }, // called from the loop goroutine only
		Work: func(ctx context.Context, name string) time.Time {
			t := eng.Work(ctx, name)
			late := b.clock.Now().Sub(b.due(b.index[name]))
			mu.Lock()
			done = append(done, late)
			mu.Unlock()
			return t
		},
	}
	lctx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	go func() { loop.Run(lctx); close(finished) }()
	// Stop when the last token of the stream is due, plus time for it to be handed out.
	time.Sleep(500*time.Millisecond + span + 50*time.Millisecond)
	cancel()
	<-finished
	renewed := b.obs.count("renew") - renews0
	res.LatenessRotations = renewed
	if renewed < count*9/10 || len(lag) == 0 {
		return fmt.Errorf("lateness: %d renewals for %d tokens due", renewed, count)
	}
	if f := b.obs.failures.Load(); f != 0 {
		return fmt.Errorf("lateness: %d failed operations", f)
	}
	res.LatenessSamples = len(lag)
	res.LatenessP50MS, res.LatenessP99MS, res.LatenessMaxMS = quantile(lag, 0.5), quantile(lag, 0.99), quantile(lag, 1)
	res.DoneP50MS, res.DoneP99MS = quantile(done, 0.5), quantile(done, 0.99)
	fmt.Fprintf(log, "work: lateness over %d due at %d/s: p50 %.1f ms p99 %.1f ms max %.1f ms (done p99 %.1f ms)\n",
		len(lag), o.rate, res.LatenessP50MS, res.LatenessP99MS, res.LatenessMaxMS, res.DoneP99MS)
	return nil
}

func quantile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return ms(s[max(0, min(i, len(s)-1))])
}

// countingIndex counts the scheduler loop's reads of the due index (one round trip each).
type countingIndex struct {
	st    *store.Store
	calls atomic.Int64
}

func (c *countingIndex) Due(ctx context.Context, now time.Time, limit int) ([]store.DueItem, error) {
	c.calls.Add(1)
	return c.st.Due(ctx, now, limit)
}

func (c *countingIndex) NextAfter(ctx context.Context, now time.Time) (time.Time, bool, error) {
	c.calls.Add(1)
	return c.st.NextAfter(ctx, now)
}

// fullSpeed moves the clock past every due time and renews every token not yet renewed as fast as the loop
// and the engine go, counting Redis round trips and CPU.
func (b *bench) fullSpeed(ctx context.Context, eng *rotation.Engine, res *Result, log io.Writer) error {
	o := b.o
	b.clock.offset.Store(int64(time.Until(b.due(o.n).Add(time.Second))))
	renews0 := b.obs.count("renew")
	// The loop renews half of what is left; the other half is renewed by plain goroutines calling Work
	// (direct), which shows what the loop itself costs.
	want := (o.n - renews0) / 2
	idx := &countingIndex{st: b.st}
	// The loop hands out want tokens at most: past them, the phase ends before a 5 ms check could see it
	// when the loop is fast, and the direct phase would find nothing left. The rest are put off.
	var handed atomic.Int64
	work := func(ctx context.Context, name string) time.Time {
		if handed.Add(1) > int64(want) {
			return b.clock.Now().Add(time.Hour)
		}
		return eng.Work(ctx, name)
	}
	loop := &scheduler.Loop{Index: idx, Owns: eng.Owns, Workers: o.workers, Now: b.clock.Now, Work: work}
	stats0, err := commandStats(ctx, b.rdb)
	if err != nil {
		return err
	}
	rcpu0, err := redisCPU(ctx, b.rdb)
	if err != nil {
		return err
	}
	stopProfile := b.profile("work-fullspeed")
	b.hook.reset()
	cpu0 := cpuTime()
	start := time.Now()
	lctx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	go func() { loop.Run(lctx); close(finished) }()
	deadline := start.Add(o.fullMax)
	for b.obs.count("renew")-renews0 < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	<-finished
	cpu := cpuTime() - cpu0
	stopProfile()
	rtt, cmds, kinds := b.hook.snapshot()
	stats1, err := commandStats(ctx, b.rdb)
	if err != nil {
		return err
	}
	rcpu1, err := redisCPU(ctx, b.rdb)
	if err != nil {
		return err
	}
	n := b.obs.count("renew") - renews0
	if n == 0 {
		return errors.New("full speed: no renewal")
	}
	if f := b.obs.failures.Load(); f != 0 {
		return fmt.Errorf("full speed: %d failed operations", f)
	}
	if n < want && elapsed < o.fullMax {
		return fmt.Errorf("full speed: %d of %d renewals", n, want)
	}
	res.FullRotations = n
	res.FullPerSec = float64(n) / elapsed.Seconds()
	res.RTTPerRotation = float64(rtt) / float64(n)
	res.LoopRTTPerRot = float64(idx.calls.Load()) / float64(n)
	res.CmdsPerRotation = float64(cmds) / float64(n)
	res.RTTByKind = map[string]float64{}
	for k, v := range kinds {
		res.RTTByKind[k] = float64(v) / float64(n)
	}
	res.CommandStats = map[string]float64{}
	for k, v := range stats1 {
		if d := v - stats0[k]; d > 0 && k != "info" {
			res.CommandStats[k] = float64(d) / float64(n)
		}
	}
	res.CPUPerRotationUS = float64(cpu.Microseconds()) / float64(n)
	res.RedisCPUPerRotUS = (rcpu1 - rcpu0) * 1e6 / float64(n)
	fmt.Fprintf(log, "work: full speed %d renewals in %v: %.0f/s, %.2f round trips each (loop %.3f), CPU %.0f µs tokend + %.0f µs redis\n",
		n, elapsed.Round(time.Millisecond), res.FullPerSec, res.RTTPerRotation, res.LoopRTTPerRot, res.CPUPerRotationUS, res.RedisCPUPerRotUS)
	return b.direct(ctx, eng, res, log)
}

// direct renews every token not renewed yet with o.workers goroutines calling Engine.Work, without the loop.
func (b *bench) direct(ctx context.Context, eng *rotation.Engine, res *Result, log io.Writer) error {
	names := b.obs.notRenewed(b.names)
	if len(names) == 0 {
		return errors.New("direct: nothing left to renew")
	}
	renews0 := b.obs.count("renew")
	next := make(chan string)
	var wg sync.WaitGroup
	stopProfile := b.profile("work-direct")
	b.hook.reset()
	cpu0, start := cpuTime(), time.Now()
	deadline := start.Add(b.o.fullMax)
	for range b.o.workers {
		wg.Go(func() {
			for n := range next {
				eng.Work(ctx, n)
			}
		})
	}
	for _, n := range names {
		if time.Now().After(deadline) {
			break
		}
		next <- n
	}
	close(next)
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	stopProfile()
	b.heapProfile("work-heap")
	rtt, _, _ := b.hook.snapshot()
	n := b.obs.count("renew") - renews0
	if n == 0 || b.obs.failures.Load() != 0 {
		return fmt.Errorf("direct: %d renewals, %d failures", n, b.obs.failures.Load())
	}
	res.DirectRotations = n
	res.DirectPerSec = float64(n) / elapsed.Seconds()
	res.DirectRTTPerRot = float64(rtt) / float64(n)
	res.DirectCPUPerRotUS = float64(cpu.Microseconds()) / float64(n)
	fmt.Fprintf(log, "work: direct %d renewals in %v: %.0f/s, %.2f round trips each, CPU %.0f µs tokend\n",
		n, elapsed.Round(time.Millisecond), res.DirectPerSec, res.DirectRTTPerRot, res.DirectCPUPerRotUS)
	return nil
}

// restart is the child that starts over the state the work child left: start time, memory, idle CPU, scrape.
func (b *bench) restart(ctx context.Context, res *Result, log io.Writer) error {
	o := b.o
	eng := rotation.New(b.st, b.tokens, rotation.Options{Now: b.clock.Now, Observer: b.obs})
	b.engine.Store(eng)
	stopProfile := b.profile("restart-loadall")
	start := time.Now()
	if err := eng.LoadAll(ctx); err != nil {
		return err
	}
	res.LoadAllStateMS = ms(time.Since(start))
	res.StartStateMS = ms(time.Since(time.Unix(0, o.t0)))
	res.ConfigMS = b.configMS
	res.PerToken = map[bool]string{true: "on", false: "off"}[b.perToken]
	stopProfile()
	res.PeakRSSStartMiB = float64(procStatus("VmHWM")) / 1024
	if err := b.checkScheduled(ctx); err != nil {
		return err
	}
	for _, s := range eng.Snapshots() {
		if s.Generation < 1 || s.State != rotation.StateCurrent || s.NextAt.IsZero() {
			return fmt.Errorf("after restart %s is %s, generation %d, next at %v: the state was not loaded", s.Name, s.State, s.Generation, s.NextAt)
		}
	}
	// The read and decrypt alone, batch by batch as LoadAll reads (store.Load would hold every state at
	// once and raise the peak measured below).
	start = time.Now()
	if err := b.st.LoadEach(ctx, b.names, func([]*store.State) error { return nil }); err != nil {
		return err
	}
	res.LoadOnlyMS = ms(time.Since(start))
	if o.freeOSMemory {
		debug.FreeOSMemory()
	}
	fmt.Fprintf(log, "restart: start %.0f ms (LoadAll %.0f ms, of which the pipelined read %.0f ms)\n",
		res.StartStateMS, res.LoadAllStateMS, res.LoadOnlyMS)

	// Idle: the real loop runs, nothing is due (the earliest renewal is an hour away).
	var works atomic.Int64
	loop := &scheduler.Loop{Index: b.st, Owns: eng.Owns, Workers: o.workers, Now: b.clock.Now,
		Work: func(ctx context.Context, name string) time.Time { works.Add(1); return eng.Work(ctx, name) }}
	lctx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	go func() { loop.Run(lctx); close(finished) }()
	runtime.GC()
	cpu0, t0 := cpuTime(), time.Now()
	time.Sleep(o.idle)
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	cancel()
	<-finished
	res.IdleSeconds = wall.Seconds()
	res.IdleCPUPercent = 100 * cpu.Seconds() / wall.Seconds()
	res.IdleWorks = int(works.Load())
	if res.IdleWorks != 0 {
		return fmt.Errorf("idle: the loop worked %d tokens, want none", res.IdleWorks)
	}
	res.RSSMiB = float64(procStatus("VmRSS")) / 1024
	res.PeakRSSMiB = float64(procStatus("VmHWM")) / 1024
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	res.HeapMiB = float64(ms0.HeapInuse) / (1 << 20)
	res.RSSPerTokenKiB = res.RSSMiB * 1024 / float64(o.n)
	res.HeapPerTokenKiB = res.HeapMiB * 1024 / float64(o.n)
	b.heapProfile("restart-heap")
	fmt.Fprintf(log, "restart: RSS %.1f MiB (peak %.1f), heap %.1f MiB; idle CPU %.3f%% of a core over %v\n",
		res.RSSMiB, res.PeakRSSMiB, res.HeapMiB, res.IdleCPUPercent, wall.Round(time.Millisecond))

	stopProfile = b.profile("restart-scrape")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d, size, series, err := b.scrape()
	runtime.ReadMemStats(&after)
	stopProfile()
	if err != nil {
		return err
	}
	res.ScrapeMS, res.ScrapeBytes, res.ScrapeSeries = ms(d), size, series
	res.ScrapeAllocMiB = float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20)
	res.PeakRSSScrapeMiB = float64(procStatus("VmHWM")) / 1024
	if err := checkSeries(series, o.n, b.perToken); err != nil {
		return err
	}
	fmt.Fprintf(log, "restart: scrape (per-token %s) %.0f ms, %d series, %.1f MiB body, %.0f MiB allocated, peak RSS %.1f MiB\n",
		res.PerToken, res.ScrapeMS, series, float64(size)/(1<<20), res.ScrapeAllocMiB, res.PeakRSSScrapeMiB)
	if !b.perToken {
		// What metrics.per_token: true would cost at this size.
		b.obs.m.SetPerToken(true)
		runtime.ReadMemStats(&before)
		d, size, series, err := b.scrape()
		runtime.ReadMemStats(&after)
		if err != nil {
			return err
		}
		if err := checkSeries(series, o.n, true); err != nil {
			return err
		}
		res.ScrapePerTokenMS, res.ScrapePerTokenSeries = ms(d), series
		res.ScrapePerTokenAllocMiB = float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20)
		fmt.Fprintf(log, "restart: scrape with per_token: true %.0f ms, %d series, %.1f MiB body, %.0f MiB allocated\n",
			res.ScrapePerTokenMS, series, float64(size)/(1<<20), res.ScrapePerTokenAllocMiB)
	}
	return nil
}

// checkSeries is the scrape's sanity check: with per-token series, at least 8 per token (3 timestamps,
// failures, 4 states); without, the aggregates only (no token of the bench needs attention after a restart).
func checkSeries(series, n int, perToken bool) error {
	if perToken && series < 8*n {
		return fmt.Errorf("scrape: %d series for %d tokens with per-token series", series, n)
	}
	if !perToken && (series == 0 || series >= n) {
		return fmt.Errorf("scrape: %d series for %d tokens without per-token series", series, n)
	}
	return nil
}

// scrape serves /metrics once as Prometheus would fetch it (text format, no compression) into a counter.
func (b *bench) scrape() (time.Duration, int, int, error) {
	h := promhttp.HandlerFor(b.reg, promhttp.HandlerOpts{Registry: b.reg})
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	w := &countingWriter{h: http.Header{}, lineStart: true}
	start := time.Now()
	h.ServeHTTP(w, req)
	d := time.Since(start)
	if w.code != 0 && w.code != http.StatusOK {
		return d, 0, 0, fmt.Errorf("scrape: status %d", w.code)
	}
	return d, w.bytes, w.series, nil
}

// countingWriter is a ResponseWriter that keeps nothing: it counts bytes and sample lines.
type countingWriter struct {
	h         http.Header
	code      int
	bytes     int
	series    int
	lineStart bool
}

func (w *countingWriter) Header() http.Header  { return w.h }
func (w *countingWriter) WriteHeader(code int) { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) {
	w.bytes += len(p)
	for _, c := range p {
		if w.lineStart && c != '#' {
			w.series++
		}
		w.lineStart = c == '\n'
	}
	return len(p), nil
}

// profile starts a CPU profile of a phase when -profile is set; the returned func stops it.
func (b *bench) profile(phase string) func() {
	if b.o.profileDir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(b.o.profileDir, fmt.Sprintf("%s-%d.cpu.pprof", phase, b.o.n)))
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func (b *bench) heapProfile(phase string) {
	if b.o.profileDir == "" {
		return
	}
	if f, err := os.Create(filepath.Join(b.o.profileDir, fmt.Sprintf("%s-%d.heap.pprof", phase, b.o.n))); err == nil {
		_ = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
}

// observer feeds the real metrics and counts operations for the bench's checks.
type observer struct {
	m        *metrics.Metrics
	mu       sync.Mutex
	ok       map[string]int
	renewed  map[string]bool
	failures atomic.Int64
}

func (o *observer) Operation(token, provider, op, result string, d time.Duration) {
	o.m.Operation(token, provider, op, result, d)
	if result != "success" {
		o.failures.Add(1)
		return
	}
	o.mu.Lock()
	if o.ok == nil {
		o.ok, o.renewed = map[string]int{}, map[string]bool{}
	}
	o.ok[op]++
	if op == "renew" {
		o.renewed[token] = true
	}
	o.mu.Unlock()
}

func (o *observer) Delivery(token, sink, result string) { o.m.Delivery(token, sink, result) }
func (o *observer) Changed(name string)                 { o.m.Changed(name) }

// notRenewed returns the names not renewed yet, in order.
func (o *observer) notRenewed(names []string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, n := range names {
		if !o.renewed[n] {
			out = append(out, n)
		}
	}
	return out
}

func (o *observer) count(op string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ok[op]
}

// discardSink is a zero-latency sink: the delivery path runs, nothing is written.
type discardSink struct{}

func (discardSink) Deliver(context.Context, sinks.Delivery) error { return nil }
func (discardSink) String() string                                { return "discard" }
func (discardSink) Close() error                                  { return nil }

// rttHook counts Redis round trips (a pipeline is one) and commands, by kind.
type rttHook struct {
	mu    sync.Mutex
	rtt   int64
	cmds  int64
	kinds map[string]int64
}

func (h *rttHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *rttHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd.Name(), 1)
		return next(ctx, cmd)
	}
}

func (h *rttHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		names := make([]string, len(cmds))
		for i, c := range cmds {
			names[i] = c.Name()
		}
		h.add("pipeline("+strings.Join(names, "+")+")", len(cmds))
		return next(ctx, cmds)
	}
}

func (h *rttHook) add(kind string, cmds int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.kinds == nil {
		h.kinds = map[string]int64{}
	}
	h.rtt++
	h.cmds += int64(cmds)
	h.kinds[kind]++
}

func (h *rttHook) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rtt, h.cmds, h.kinds = 0, 0, map[string]int64{}
}

func (h *rttHook) snapshot() (int64, int64, map[string]int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	kinds := make(map[string]int64, len(h.kinds))
	for k, v := range h.kinds {
		if strings.HasPrefix(k, "pipeline(") && len(k) > 60 {
			k = k[:57] + "...)"
		}
		kinds[k] += v
	}
	return h.rtt, h.cmds, kinds
}

// commandStats returns the calls of every command from INFO commandstats.
func commandStats(ctx context.Context, rdb *redis.Client) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_")
		if !ok {
			continue
		}
		name, fields, _ := strings.Cut(rest, ":")
		for _, f := range strings.Split(fields, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				out[name], _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return out, nil
}

// redisCPU returns the Redis server's CPU seconds (user + system).
func redisCPU(ctx context.Context, rdb *redis.Client) (float64, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	u, _ := strconv.ParseFloat(infoField(info, "used_cpu_user"), 64)
	s, _ := strconv.ParseFloat(infoField(info, "used_cpu_sys"), 64)
	return u + s, nil
}
