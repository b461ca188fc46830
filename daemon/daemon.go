// Package daemon builds tokend from a config and runs it: the store, the rotation engine, the scheduler
// loop, the provider polls, the HTTP endpoints and systemd notifications. Reload builds a whole new set of
// providers and sinks from a new config and swaps it in only when it is complete; on failure the old one
// keeps running.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/rotation"
	"github.com/tokend/tokend/scheduler"
	"github.com/tokend/tokend/store"
)

// Options configure a Daemon.
type Options struct {
	ConfigPath string // re-read on Reload
	Logger     *slog.Logger
	// Level is the logger's level; Reload changes it when log.level changes.
	Level     *slog.LevelVar
	Registry  *prometheus.Registry // nil: a new one
	BuildInfo metrics.BuildInfo
	// Notify sends a systemd notification; nil means sd_notify on $NOTIFY_SOCKET.
	Notify func(state string)
	// LeaseTTL overrides the store's lease TTL (tests).
	LeaseTTL time.Duration
	// Listener, when set, is used instead of listening on cfg.Listen (the demo and tests).
	Listener net.Listener
}

// Daemon is a running tokend.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	rdb     redis.UniversalClient
	store   *store.Store
	engine  *rotation.Engine
	metrics *metrics.Metrics
	history *history // the engine's observer: records each operation, forwards to metrics
	reg     *prometheus.Registry
	loop    *scheduler.Loop

	mu    sync.Mutex // guards world and crons
	world *world
	crons *cron.Cron

	redisUp    atomic.Bool
	lastReload atomic.Pointer[reloadResult]
	ctx        context.Context // Run's context, for polls started by reloads
	wg         sync.WaitGroup
	pollLimit  chan struct{}
	watchdog   time.Duration
	lastPing   atomic.Int64
}

type reloadResult struct {
	ok  bool
	at  time.Time
	err string
}

// New builds a daemon from a validated config. It reads every secret the config names, so a missing
// credential file fails here with its key path.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Notify == nil {
		opts.Notify = func(state string) { _, _ = sddaemon.SdNotify(false, state) }
	}
	key, err := config.ReadStateKey(cfg.StateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("state_key_file: %w", err)
	}
	rdb, err := NewRedis(cfg.Redis)
	if err != nil {
		return nil, err
	}
	st, err := store.New(rdb, key, store.Options{Prefix: cfg.Redis.KeyPrefix, Instance: cfg.InstanceID, LeaseTTL: opts.LeaseTTL, Logger: opts.Logger})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	d := &Daemon{opts: opts, log: opts.Logger, rdb: rdb, store: st, reg: opts.Registry, pollLimit: make(chan struct{}, 8)}
	d.metrics = metrics.New(opts.Registry, sourceFunc(d.snapshots), opts.BuildInfo, true)
	w, err := build(cfg, rdb, d.metrics, d.log)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	d.world = w
	d.history = newHistory(st, d.metrics, d.log)
	d.engine = rotation.New(st, w.tokens, rotation.Options{Logger: d.log, Observer: d.history})
	d.configureMetrics(cfg)
	d.lastReload.Store(&reloadResult{ok: true, at: time.Now()})
	d.metrics.ConfigReloaded(true, time.Now())
	return d, nil
}

// configureMetrics tells the metrics what cfg configures: its providers, and metrics.per_token.
func (d *Daemon) configureMetrics(cfg *config.Config) {
	d.metrics.SetProviders(providerNames(cfg))
	perToken := cfg.PerTokenMetrics()
	if !perToken && cfg.Metrics.PerToken == "auto" {
		d.log.Info("per-token series only for tokens that need attention: more tokens than metrics.per_token: auto allows",
			"tokens", len(cfg.Tokens), "limit", config.AutoPerTokenMax)
	}
	d.metrics.SetPerToken(perToken)
}

type sourceFunc func() []rotation.Snapshot

func (f sourceFunc) Snapshots() []rotation.Snapshot { return f() }

func (d *Daemon) snapshots() []rotation.Snapshot {
	if d.engine == nil {
		return nil
	}
	return d.engine.Snapshots()
}

func providerNames(cfg *config.Config) []string {
	var names []string
	for _, p := range cfg.Providers {
		names = append(names, p.Name)
	}
	return names
}

// Engine returns the rotation engine.
func (d *Daemon) Engine() *rotation.Engine { return d.engine }

// Config returns the config in force.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.world.cfg
}

// Run starts everything, tells systemd it is ready once Redis answered and every token is scheduled,
// and runs until ctx ends. On the way out it stops taking new work and waits for rotations under way.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.rdb.Close()
	defer func() {
		d.mu.Lock()
		d.world.close()
		d.mu.Unlock()
	}()
	d.ctx = ctx
	start, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := d.store.Ping(start)
	cancel()
	if err != nil {
		return fmt.Errorf("connecting to Redis: %w", err)
	}
	d.redisUp.Store(true)
	d.metrics.SetRedisUp(true)
	if w := d.store.PersistenceWarning(ctx); w != "" {
		d.log.Warn(w)
	}
	if err := d.engine.LoadAll(ctx); err != nil {
		return fmt.Errorf("loading state: %w", err)
	}
	// Loading every token's state allocates far more than the daemon keeps; hand it back now rather
	// than let the RSS of a 100,000-token instance stay at its start-up peak (docs/benchmarks.md).
	debug.FreeOSMemory()

	ln := d.opts.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", d.Config().Listen)
		if err != nil {
			return fmt.Errorf("listening on %s (listen): %w", d.Config().Listen, err)
		}
	}
	srv := d.httpServer()
	httpDone := make(chan error, 1)
	go func() { httpDone <- serve(ln, srv, d.Config().WebConfigFile, d.log) }()

	d.watchdog, _ = sddaemon.SdWatchdogEnabled(false)
	d.loop = &scheduler.Loop{
		Index: d.store, Work: d.engine.Work, Owns: d.engine.Owns, Logger: d.log,
		Tick: d.tick, Lag: d.metrics.SchedulerLag,
	}
	if d.watchdog > 0 {
		// The loop ticks at least this often even when idle, so the pings come every WatchdogSec/4.
		d.loop.MaxSleep = min(5*time.Second, d.watchdog/4)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	stopHistory := d.history.start()
	d.wg.Add(3)
	go func() { defer d.wg.Done(); d.loop.Run(runCtx) }()
	go func() { defer d.wg.Done(); d.listen(runCtx) }()
	go func() { defer d.wg.Done(); d.watchRedis(runCtx) }()
	d.mu.Lock()
	d.startPolls(d.world)
	d.mu.Unlock()

	d.opts.Notify("READY=1\nSTATUS=" + d.statusLine())
	d.log.Info("tokend running", "tokens", len(d.engine.Tokens()), "listen", ln.Addr().String(), "instance", d.store.Instance())

	select {
	case <-ctx.Done():
	case err = <-httpDone:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			err = fmt.Errorf("serving HTTP: %w", err)
		}
	}
	d.opts.Notify("STOPPING=1")
	d.log.Info("stopping: finishing rotations under way")
	d.mu.Lock()
	if d.crons != nil {
		<-d.crons.Stop().Done()
	}
	d.mu.Unlock()
	stopRun()
	d.wg.Wait()
	stopHistory()
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// tick runs once per scheduler loop iteration: it pings the systemd watchdog, so a wedged loop stops
// the pings and systemd restarts the service.
func (d *Daemon) tick() {
	wedge(d.log) // failpoint builds only: the watchdog test blocks the loop here
	if d.watchdog <= 0 {
		return
	}
	now := time.Now().UnixNano()
	if now-d.lastPing.Load() < int64(d.watchdog/4) {
		return
	}
	d.lastPing.Store(now)
	d.opts.Notify("WATCHDOG=1")
}

// startPolls schedules each provider's poll. Caller holds d.mu.
func (d *Daemon) startPolls(w *world) {
	if d.crons != nil {
		d.crons.Stop()
	}
	logger := cronLogger{d.log}
	c := cron.New(cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)), cron.WithLogger(logger))
	for _, p := range w.cfg.Providers {
		spec := w.cfg.ResolveProvider(p).Poll
		names := w.byProv[p.Name]
		name := p.Name
		if _, err := c.AddFunc(spec, func() { d.poll(name, names) }); err != nil {
			d.log.Error("scheduling poll", "provider", name, "err", err)
		}
	}
	c.Start()
	d.crons = c
}

// poll reads what the vendor says about each token of one provider.
func (d *Daemon) poll(provider string, names []string) {
	ctx := d.ctx
	if ctx == nil || ctx.Err() != nil {
		return
	}
	var failed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range names {
		d.pollLimit <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-d.pollLimit; wg.Done() }()
			err := d.engine.Poll(ctx, n)
			// The poll did the token's due step and rescheduled it behind the loop's back: wake the loop
			// so that it sleeps until the new due time, not the one it last saw.
			d.loop.Wake()
			if err != nil {
				d.log.Warn("polling", "token", n, "provider", provider, "err", err)
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed == 0 {
		d.metrics.PollSucceeded(provider, time.Now())
	}
}

// listen follows other instances' announcements: a token rotated elsewhere is re-read, and this
// instance's sinks are brought up to date at once.
func (d *Daemon) listen(ctx context.Context) {
	for ctx.Err() == nil {
		sub := d.store.Subscribe(ctx)
		ch := sub.Channel()
	recv:
		for {
			select {
			case <-ctx.Done():
				break recv
			case msg, ok := <-ch:
				if !ok {
					break recv
				}
				name := msg.Payload
				if !d.engine.Owns(name) {
					continue
				}
				d.wg.Add(1)
				go func() {
					defer d.wg.Done()
					// This instance's sinks first, without the lease: the announcing instance may still
					// hold it. Then the step, if one is due.
					due, err := d.engine.Announced(ctx, name)
					if err != nil {
						d.log.Warn("bringing sinks up to date", "token", name, "err", err)
					}
					if due {
						d.engine.Work(ctx, name)
					}
					d.loop.Wake()
				}()
			}
		}
		_ = sub.Close()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// watchRedis keeps tokend_redis_up and /readyz true to Redis.
func (d *Daemon) watchRedis(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := d.store.Ping(pctx)
		cancel()
		up := err == nil
		if up != d.redisUp.Swap(up) {
			if up {
				d.log.Info("Redis answers again")
				d.loop.Wake()
			} else {
				d.log.Error("Redis does not answer", "err", err)
			}
		}
		d.metrics.SetRedisUp(up)
	}
}

// Reload re-reads the config file and swaps in the new config only when it validates and builds whole.
func (d *Daemon) Reload() error {
	d.opts.Notify("RELOADING=1\nMONOTONIC_USEC=" + sddaemon.SdNotifyMonotonicUsec())
	err := d.reload()
	now := time.Now()
	d.metrics.ConfigReloaded(err == nil, now)
	if err != nil {
		d.lastReload.Store(&reloadResult{ok: false, at: now, err: err.Error()})
		d.log.Error("reload failed; the previous config stays in force", "err", err)
		d.opts.Notify("READY=1\nSTATUS=reload failed, previous config in force: " + firstLine(err.Error()))
		return err
	}
	d.lastReload.Store(&reloadResult{ok: true, at: now})
	d.log.Info("config reloaded", "tokens", len(d.engine.Tokens()))
	d.opts.Notify("READY=1\nSTATUS=" + d.statusLine())
	return nil
}

func (d *Daemon) reload() error {
	cfg, err := LoadConfig(d.opts.ConfigPath)
	if err != nil {
		return err
	}
	old := d.Config()
	if !sameRedis(old, cfg) {
		return errors.New("redis, state_key_file and instance_id cannot change on reload: restart tokend")
	}
	w, err := build(cfg, d.rdb, d.metrics, d.log)
	if err != nil {
		return err
	}
	d.mu.Lock()
	prev := d.world
	d.world = w
	d.engine.SetTokens(w.tokens)
	if d.ctx != nil {
		d.startPolls(w)
	}
	d.mu.Unlock()
	prev.close()
	if d.opts.Level != nil {
		d.opts.Level.Set(ParseLevel(cfg.Log.Level))
	}
	d.configureMetrics(cfg)
	ctx := d.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	var removed []string
	for _, t := range old.Tokens {
		if _, ok := w.tokens[t.Name]; !ok {
			removed = append(removed, t.Name)
		}
	}
	_ = d.store.Unschedule(ctx, removed...)
	if err := d.engine.LoadAll(ctx); err != nil {
		d.log.Warn("rescheduling after reload", "err", err)
	}
	if d.loop != nil {
		d.loop.Wake()
	}
	return nil
}

// sameRedis reports whether b keeps a's Redis connection, state key and instance id (DeepEqual follows the
// Sentinel, Cluster and TLS pointers, so two loads of one file compare equal).
func sameRedis(a, b *config.Config) bool {
	return reflect.DeepEqual(a.Redis, b.Redis) && a.StateKeyFile == b.StateKeyFile && a.InstanceID == b.InstanceID
}

// ParseLevel maps log.level to a slog level (info when unknown; config validation rejects those).
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// statusLine is the one-line summary systemd shows: tokens managed, failing, next action.
func (d *Daemon) statusLine() string {
	snaps := d.engine.Snapshots()
	failing := 0
	var next *rotation.Snapshot
	for i, s := range snaps {
		if s.State == rotation.StateFailed || s.State == rotation.StateExpired {
			failing++
		}
		if s.NextAction != "" && (next == nil || s.NextAt.Before(next.NextAt)) {
			next = &snaps[i]
		}
	}
	line := fmt.Sprintf("%d tokens, %d failing", len(snaps), failing)
	if next != nil {
		line += fmt.Sprintf(", next: %s %s in %s", next.NextAction, next.Name, time.Until(next.NextAt).Round(time.Second))
	}
	return line
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// RequestRotation asks for a token's rotation (the API and tokend rotate).
func (d *Daemon) RequestRotation(ctx context.Context, name string, now bool) error {
	if !d.engine.Owns(name) {
		return fmt.Errorf("no token named %q", name)
	}
	if err := d.store.RequestRotation(ctx, name, time.Now(), now); err != nil {
		return err
	}
	if d.loop != nil {
		d.loop.Wake()
	}
	return nil
}

// Ready reports whether the daemon can do its work, with the reasons when it cannot.
func (d *Daemon) Ready() (bool, []string) {
	var reasons []string
	if !d.redisUp.Load() {
		reasons = append(reasons, "redis: not answering")
	}
	sort.Strings(reasons)
	return len(reasons) == 0, reasons
}

type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}
