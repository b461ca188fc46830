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
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/daemon"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/astra/astratest"
	"github.com/tokend/tokend/providers/commvault/commvaulttest"
	"github.com/tokend/tokend/providers/huaweiidc/huaweiidctest"
	"github.com/tokend/tokend/providers/vcd/vcdtest"
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
	vcd     *vcdtest.Server
	astra   *astratest.Server
	cv      *commvaulttest.Server
	huawei  *huaweiidctest.Server
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
	d.startVendors(opts.Faults)

	creds, err := d.writeSecrets()
	if err != nil {
		return nil, err
	}
	yaml := configYAML(endpoints{
		Listen:         opts.Listener.Addr().String(),
		Redis:          d.redis.Addr(),
		VCD:            d.vcd.URL(),
		Astra:          d.astra.URL(),
		AstraAccountID: d.astra.AccountID(),
		AstraUserID:    d.astra.UserID(),
		Commvault:      d.cv.URL(),
		Huawei:         d.huawei.URL(),
		HuaweiSCIM:     d.huawei.SCIMURL(),
		HuaweiStoreID:  d.huawei.IdentityStoreID(),
		HuaweiTenantID: d.huawei.TenantID(),
	}, d.Dir, creds)
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

// startVendors starts the four simulators with lifetimes of seconds.
func (d *Demo) startVendors(faults bool) {
	d.vcd = vcdtest.New(vcdtest.Options{AccessTokenLifetime: Lifetime, ProxyTokenLifetime: Lifetime})
	d.astra = astratest.New(astratest.Options{})
	d.cv = commvaulttest.New(commvaulttest.Options{
		AccessLifetime: Lifetime, RenewableLifetime: RenewableFor, SCIMLifetime: Lifetime, OneTouchLifetime: Lifetime,
	})
	d.huawei = huaweiidctest.New(huaweiidctest.Options{Lifetime: Lifetime})
	if !faults {
		return
	}
	seed := time.Now().UnixNano()
	d.vcd.SetFaults(vcdtest.Faults{ErrorRate: ErrorRate, RateLimitRate: RateLimitRate, Seed: seed})
	d.astra.SetFaults(astratest.Faults{ErrorRate: ErrorRate, RateLimitRate: RateLimitRate, Seed: seed + 1})
	d.cv.SetFaults(commvaulttest.Faults{ErrorRate: ErrorRate, RateLimitRate: RateLimitRate, Seed: seed + 2})
	d.huawei.SetFaults(huaweiidctest.Faults{ErrorRate: ErrorRate, RateLimitRate: RateLimitRate, Seed: seed + 3})
}

// files are the credential files the config names.
type files struct {
	StateKey, VCDPassword, VCDAPIToken, AstraToken, CommvaultPassword, HuaweiAK, HuaweiSK string
}

// writeSecrets writes the state key, the vendor logins and the bootstrap tokens (minted at the
// simulators as a person would in each vendor's UI) into Dir/secrets, mode 0600.
func (d *Demo) writeSecrets() (files, error) {
	dir := filepath.Join(d.Dir, "secrets")
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return files{}, fmt.Errorf("making the state key: %w", err)
	}
	f := files{
		StateKey:          filepath.Join(dir, "state.key"),
		VCDPassword:       filepath.Join(dir, "vcd-password"),
		VCDAPIToken:       filepath.Join(dir, "vcd-api-token"),
		AstraToken:        filepath.Join(dir, "astra-token"),
		CommvaultPassword: filepath.Join(dir, "commvault-password"),
		HuaweiAK:          filepath.Join(dir, "huawei-access-key"),
		HuaweiSK:          filepath.Join(dir, "huawei-secret-key"),
	}
	for path, value := range map[string]string{
		f.StateKey:          base64.StdEncoding.EncodeToString(key),
		f.VCDPassword:       "alice-password", // vcdtest's default user alice@acme
		f.VCDAPIToken:       d.vcd.IssueBootstrap(),
		f.AstraToken:        d.astra.IssueBootstrap(),
		f.CommvaultPassword: commvaulttest.DefaultPassword,
		f.HuaweiAK:          d.huawei.AccessKey(),
		f.HuaweiSK:          d.huawei.SecretKey(),
	} {
		if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
			return files{}, fmt.Errorf("writing %s: %w", filepath.Base(path), err)
		}
	}
	return f, nil
}

// endpoints are the addresses of the demo's Redis, simulators and HTTP listener, and the vendor ids the
// config needs.
type endpoints struct {
	Listen, Redis                                      string
	VCD, Astra, AstraAccountID, AstraUserID, Commvault string
	Huawei, HuaweiSCIM, HuaweiStoreID, HuaweiTenantID  string
}

// configYAML returns the demo's config file: the four providers, one token of every kind, each delivered
// to a raw file under dir/tokens, and the demo's timing in defaults.
func configYAML(e endpoints, dir string, f files) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by tokend demo. Every vendor is a simulator on loopback; lifetimes are seconds.
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
providers:
  - name: vcd
    type: vcd
    url: %s
    org: acme
    username: alice
    password_file: %s
  - name: astra
    type: astra
    url: %s
    account_id: %s
    user_id: %s
  - name: commvault
    type: commvault
    url: %s
    username: %s
    password_file: %s
  - name: huawei
    type: huawei-idc
    url: %s
    scim_url: %s
    identity_store_id: %s
    access_key_file: %s
    secret_key_file: %s
tokens:
`, e.Listen, e.Redis, f.StateKey, RecreateBefore.String(), MaxAge.String(), RevokeAfter.String(),
		e.VCD, f.VCDPassword,
		e.Astra, e.AstraAccountID, e.AstraUserID,
		e.Commvault, commvaulttest.DefaultUser, f.CommvaultPassword,
		e.Huawei, e.HuaweiSCIM, e.HuaweiStoreID, f.HuaweiAK, f.HuaweiSK)
	for _, t := range []struct{ name, provider, kind, extra string }{
		{"vcd-access-token", "vcd", "access_token", "bootstrap_file: " + f.VCDAPIToken},
		{"vcd-api-token", "vcd", "api_token", ""},
		{"vcd-proxy-token", "vcd", "proxy_token", ""},
		{"astra-api-token", "astra", "api_token", "bootstrap_file: " + f.AstraToken},
		{"commvault-all", "commvault", "access_token", "token_type: ALL\n    renewable_for: " + RenewableFor.String()},
		{"commvault-ms-scim", "commvault", "access_token", "token_type: MS_SCIM\n    lifetime: " + Lifetime.String()},
		{"commvault-onetouch", "commvault", "access_token", "token_type: OneTouch\n    lifetime: " + Lifetime.String()},
		{"huawei-scim-token", "huawei", "scim_token", "tenant_id: " + e.HuaweiTenantID},
	} {
		fmt.Fprintf(&b, "  - name: %s\n    provider: %s\n    kind: %s\n", t.name, t.provider, t.kind)
		if t.extra != "" {
			fmt.Fprintf(&b, "    %s\n", t.extra)
		}
		fmt.Fprintf(&b, "    deliver:\n      - file: {path: %s}\n", filepath.Join(dir, "tokens", t.name))
	}
	return b.String()
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
		if d.vcd != nil {
			d.vcd.Close()
		}
		if d.astra != nil {
			d.astra.Close()
		}
		if d.cv != nil {
			d.cv.Close()
		}
		if d.huawei != nil {
			d.huawei.Close()
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
	for provider, ids := range d.liveIDs() {
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

// liveIDs lists the ids of the tokens that exist at each simulator, keyed by provider name.
func (d *Demo) liveIDs() map[string][]string {
	out := map[string][]string{}
	for _, t := range d.vcd.Tokens() {
		out["vcd"] = append(out["vcd"], t.ID)
	}
	for _, t := range d.astra.Tokens() {
		out["astra"] = append(out["astra"], t.ID)
	}
	for _, t := range d.cv.Tokens() {
		out["commvault"] = append(out["commvault"], t.ID)
	}
	for _, t := range d.huawei.Tokens() {
		out["huawei"] = append(out["huawei"], t.ID)
	}
	return out
}
