// Package demo runs tokend against simulated vendors, with nothing installed: an in-process Redis
// (miniredis), the four vendor fakes the tests use (vcdtest, astratest, commvaulttest, huaweiidctest) on
// loopback with lifetimes of seconds, and the production daemon managing one token of every kind of
// DESIGN.md section 1 with file sinks in a working directory.
//
// The demo only supplies what an operator would: credential files, a config file, a Redis. The daemon is
// built with daemon.New and runs exactly as `tokend run` does; the generated config is a real file that
// `tokend status --config` can read while the demo runs.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/daemon"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/providertest/faults"
	"github.com/tokend/tokend/rotation"
	"github.com/tokend/tokend/store"
)

// Timing of the demo. Tokens that expire live Lifetime and are renewed or recreated when half of it is
// left; tokens that never expire are recreated after MaxAge; a superseded token is revoked RevokeAfter
// after its replacement was promoted. Commvault ALL tokens can be renewed for RenewableFor and are
// recreated RecreateBefore ahead of that. With these values every kind is renewed or recreated, and
// every superseded token revoked, within the first 25 seconds.
const (
	Lifetime       = 12 * time.Second
	MaxAge         = 10 * time.Second
	RenewableFor   = 24 * time.Second
	RecreateBefore = 4 * time.Second
	RevokeAfter    = 2 * time.Second
)

// Fault rates of Options.Faults, per request at every simulated vendor.
const (
	ErrorRate     = 0.10 // answer 5xx without acting
	RateLimitRate = 0.05 // answer 429 with Retry-After: 1 without acting
)

// Options configure a demo.
type Options struct {
	// Listener is where the daemon serves /metrics and the API. Required; the demo closes it.
	Listener net.Listener
	// Faults makes every simulated vendor fail some requests (ErrorRate, RateLimitRate), so retries and
	// failure metrics show.
	Faults bool
	// Dir is the working directory (config, credentials, sinks, log). "" makes a temporary directory,
	// which Close removes unless Keep is set.
	Dir  string
	Keep bool
	// BuildInfo is exported as tokend_build_info.
	BuildInfo metrics.BuildInfo
}

// Demo is a set-up demo: Redis and the simulators are running, the daemon is built. Call Run, then
// Close.
type Demo struct {
	// Dir is the working directory; TokensDir holds the file sinks, ConfigPath the generated config,
	// LogPath the daemon's log.
	Dir, TokensDir, ConfigPath, LogPath string

	cfg     *config.Config
	listen  net.Listener
	redis   *miniredis.Miniredis
	vendors *Fleet
	daemon  *daemon.Daemon
	log     *os.File
	removal bool // Close removes Dir

	closeOnce sync.Once
}

// New starts Redis and the four simulators, writes the credential files and the config into the working
// directory, and builds the daemon. Nothing rotates until Run. On error everything started is stopped.
func New(opts Options) (_ *Demo, err error) {
	if opts.Listener == nil {
		return nil, errors.New("demo: no listener")
	}
	d := &Demo{listen: opts.Listener, Dir: opts.Dir}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.Dir == "" {
		if d.Dir, err = os.MkdirTemp("", "tokend-demo-"); err != nil {
			return nil, fmt.Errorf("making the demo directory: %w", err)
		}
		d.removal = !opts.Keep
	}
	d.TokensDir = filepath.Join(d.Dir, "tokens")
	d.ConfigPath = filepath.Join(d.Dir, "tokend.yaml")
	d.LogPath = filepath.Join(d.Dir, "tokend.log")
	for _, sub := range []string{"tokens", "secrets"} {
		if err := os.MkdirAll(filepath.Join(d.Dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("making the demo directory: %w", err)
		}
	}

	d.redis = miniredis.NewMiniRedis()
	d.redis.ClockTTL(true) // lease TTLs run on the wall clock, as in a real Redis
	if err := d.redis.Start(); err != nil {
		return nil, fmt.Errorf("starting the in-process Redis: %w", err)
	}
	// The simulators' lifetimes are seconds.
	secrets := filepath.Join(d.Dir, "secrets")
	if d.vendors, err = StartFleet(FleetOptions{Lifetime: Lifetime, RenewableFor: RenewableFor, SecretsDir: secrets}); err != nil {
		return nil, err
	}
	if opts.Faults {
		d.vendors.SetFaults(faults.Profile{ErrorRate: ErrorRate, RateLimitRate: RateLimitRate, Seed: time.Now().UnixNano()})
	}
	stateKey, err := writeStateKey(secrets)
	if err != nil {
		return nil, err
	}
	yaml := configYAML(opts.Listener.Addr().String(), d.redis.Addr(), stateKey, d.vendors.YAML(d.TokensDir))
	if err := os.WriteFile(d.ConfigPath, []byte(yaml), 0o600); err != nil {
		return nil, fmt.Errorf("writing the demo config: %w", err)
	}
	if d.cfg, err = daemon.LoadConfig(d.ConfigPath); err != nil {
		return nil, fmt.Errorf("the generated demo config is invalid (a bug): %w", err)
	}

	if d.log, err = os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("opening the demo log: %w", err)
	}
	level := new(slog.LevelVar)
	logger := slog.New(slog.NewTextHandler(d.log, &slog.HandlerOptions{Level: level}))
	d.daemon, err = daemon.New(d.cfg, daemon.Options{
		ConfigPath: d.ConfigPath, Logger: logger, Level: level, BuildInfo: opts.BuildInfo,
		Notify:   func(string) {}, // the demo is never a systemd service
		Listener: opts.Listener,
	})
	if err != nil {
		return nil, fmt.Errorf("building the daemon: %w", err)
	}
	return d, nil
}

// writeStateKey writes a new state key into dir, mode 0600, and returns its path.
func writeStateKey(dir string) (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("making the state key: %w", err)
	}
	path := filepath.Join(dir, "state.key")
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing the state key: %w", err)
	}
	return path, nil
}

// configYAML returns the demo's config file: the demo's timing in defaults, then the providers and tokens
// of vendors (Fleet.YAML).
func configYAML(listen, redisAddr, stateKey, vendors string) string {
	return fmt.Sprintf(`# Generated by tokend demo. Every vendor is a simulator on loopback; lifetimes are seconds.
listen: %q
instance_id: demo
log: {level: info, format: text}
redis: {url: "redis://%s/0", key_prefix: tokend-demo}
state_key_file: %s
defaults:
  renew_before: 50%%     # renew or recreate when half of the lifetime is left
  recreate_before: %s   # Commvault ALL: recreate this long before renewable-until
  max_age: %s          # tokens that never expire: recreate at this age
  revoke_after: %s      # grace period of a superseded token
  poll: "@every 5s"
  retry: {min: 200ms, max: 2s}
%s`, listen, redisAddr, stateKey, RecreateBefore.String(), MaxAge.String(), RevokeAfter.String(), vendors)
}

// Config returns the demo's config as loaded and validated.
func (d *Demo) Config() *config.Config { return d.cfg }

// Addr is the address of /metrics and the API.
func (d *Demo) Addr() string { return d.listen.Addr().String() }

// Run runs the daemon until ctx ends, then waits for rotations under way. It returns the daemon's error.
func (d *Demo) Run(ctx context.Context) error { return d.daemon.Run(ctx) }

// Snapshots returns every token's status, sorted by name (what `tokend status` shows).
func (d *Demo) Snapshots() []rotation.Snapshot { return d.daemon.Engine().Snapshots() }

// LogWriter is the demo's log file, for other output that must stay off the terminal (the simulators'
// HTTP servers log through the standard log package).
func (d *Demo) LogWriter() io.Writer { return d.log }

// Close stops the simulators and Redis, closes the log and removes the working directory when New made
// it and Options.Keep was not set. It is safe to call more than once.
func (d *Demo) Close() {
	d.closeOnce.Do(func() {
		if d.listen != nil {
			_ = d.listen.Close() // closed already when the daemon served on it; harmless then
		}
		if d.vendors != nil {
			d.vendors.Close()
		}
		if d.redis != nil {
			d.redis.Close()
		}
		if d.log != nil {
			_ = d.log.Close()
		}
		if d.removal {
			_ = os.RemoveAll(d.Dir)
		}
	})
}

// Audit is what the vendors hold compared with what tokend keeps.
type Audit struct {
	Live    int // tokens that exist at the simulators
	Current int // of which tokend's current (or pending) tokens
	Grace   int // of which superseded tokens still in their revoke_after grace period
	Stray   int // of which tokens tokend neither holds nor revoked: a superseded token left behind
}

// Audit compares the tokens that exist at every simulator with the tokens tokend holds in Redis. Call it
// after Run returned, while Redis and the simulators still run (before Close).
func (d *Demo) Audit(ctx context.Context) (Audit, error) {
	rdb, err := daemon.NewRedis(d.cfg.Redis)
	if err != nil {
		return Audit{}, err
	}
	defer rdb.Close()
	names := make([]string, 0, len(d.cfg.Tokens))
	for _, t := range d.cfg.Tokens {
		names = append(names, t.Name)
	}
	states, err := store.NewReader(rdb, d.cfg.Redis.KeyPrefix).Load(ctx, names)
	if err != nil {
		return Audit{}, fmt.Errorf("reading the demo's state: %w", err)
	}
	held := map[string]map[string]string{} // provider -> vendor id -> "current" | "previous"
	for _, t := range d.cfg.Tokens {
		if held[t.Provider] == nil {
			held[t.Provider] = map[string]string{}
		}
		st := states[t.Name]
		if st == nil {
			continue
		}
		for _, h := range []struct {
			tok  *providers.Token
			role string
		}{{st.Current, "current"}, {st.Pending, "current"}, {st.Previous, "previous"}} {
			if h.tok != nil && h.tok.ID != "" {
				held[t.Provider][h.tok.ID] = h.role
			}
		}
	}
	var a Audit
	for provider, ids := range d.vendors.LiveIDs() {
		for _, id := range ids {
			a.Live++
			switch held[provider][id] {
			case "current":
				a.Current++
			case "previous":
				a.Grace++
			default:
				a.Stray++
			}
		}
	}
	return a, nil
}
