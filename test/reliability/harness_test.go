package reliability

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/cmd/tokend/tokendtest"
	"github.com/tokend/tokend/demo"
	"github.com/tokend/tokend/providers/astra/astratest"
	"github.com/tokend/tokend/providers/commvault/commvaulttest"
	"github.com/tokend/tokend/providers/huaweiidc/huaweiidctest"
	fakefaults "github.com/tokend/tokend/providers/providertest/faults"
	"github.com/tokend/tokend/providers/vcd/vcdtest"
	"github.com/tokend/tokend/store"
)

// quietRedis drops go-redis' own log lines: while Redis is down it logs every refused dial.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{})
	code := m.Run()
	tokendtest.RemoveBinary()
	os.Exit(code)
}

// enabled skips the test unless TOKEND_RELIABILITY=1.
func enabled(t *testing.T) {
	t.Helper()
	if os.Getenv("TOKEND_RELIABILITY") != "1" {
		t.Skip("set TOKEND_RELIABILITY=1 to run the reliability suite (scripts/checks/80-reliability.sh does)")
	}
}

// long reports whether the suite runs in long mode (the published figures).
func long() bool { return os.Getenv("TOKEND_RELIABILITY_LONG") == "1" }

// pick returns short in short mode and long in long mode.
func pick[T any](short, longv T) T {
	if long() {
		return longv
	}
	return short
}

// waitFor polls cond every 50 ms until it returns nil, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v for %s: %v", d, what, err)
		}
		<-tick.C
	}
}

// pause waits d or until ctx ends (the schedule of a scenario, never a wait for a condition).
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// redisServer is a redis-server the test started on a loopback port, with AOF (fsync always) in its own
// directory, so a SIGKILL loses nothing.
type redisServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (apt-get install redis-server): %v", err)
	}
	r := &redisServer{t: t, port: tokendtest.FreePort(t), dir: t.TempDir()}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	out, err := os.OpenFile(filepath.Join(r.dir, "redis.out"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--protected-mode", "yes")
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	done := make(chan struct{})
	r.done = done
	cmd := r.cmd
	go func() { _ = cmd.Wait(); out.Close(); close(done) }()
	waitFor(r.t, 10*time.Second, "redis-server answers", func() error {
		c := redis.NewClient(&redis.Options{Addr: r.addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
		defer c.Close()
		return c.Ping(context.Background()).Err()
	})
}

// stop kills redis-server by its PID (SIGKILL: AOF with fsync always must lose nothing) and waits for it.
func (r *redisServer) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		r.t.Logf("killing redis-server (pid %d): %v", r.cmd.Process.Pid, err)
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.t.Errorf("redis-server (pid %d) still runs 10s after SIGKILL", r.cmd.Process.Pid)
	}
}

// timing is a scenario's token timing.
type timing struct {
	Lifetime       time.Duration // expiring tokens
	MaxAge         time.Duration // tokens that never expire
	RenewableFor   time.Duration // Commvault ALL
	RecreateBefore time.Duration
	RevokeAfter    time.Duration
	// Skew sets every fake's clock, and so its Date header and the times it states, this far ahead of ours
	// (negative: behind).
	Skew time.Duration
	// VendorLifetimes leaves the lifetimes to the fakes: the config asks for no lifetime or renewable_for,
	// which Commvault takes as absolute times that tokend computes on its own clock (a vendor ahead by more
	// than the lifetime refuses them).
	VendorLifetimes bool
}

var fastTiming = timing{Lifetime: 12 * time.Second, MaxAge: 8 * time.Second, RenewableFor: 24 * time.Second,
	RecreateBefore: 4 * time.Second, RevokeAfter: 2 * time.Second}

// tokenSpec is one configured token.
type tokenSpec struct{ name, provider, kind, extra string }

// vendors are the four fakes (demo.Fleet, as the demo runs them) and the config that reaches them.
type vendors struct {
	*demo.Fleet
	vcd    *vcdtest.Server // shorthands for the fleet's fakes
	astra  *astratest.Server
	cv     *commvaulttest.Server
	huawei *huaweiidctest.Server
	tokens []tokenSpec
	yaml   string // the providers: and tokens: sections, with a SINKDIR placeholder
}

func newVendors(t *testing.T, dir string, tm timing) *vendors {
	t.Helper()
	f, err := demo.StartFleet(demo.FleetOptions{
		Now:             func() time.Time { return time.Now().Add(tm.Skew) },
		Lifetime:        tm.Lifetime,
		RenewableFor:    tm.RenewableFor,
		VendorLifetimes: tm.VendorLifetimes,
		SecretsDir:      filepath.Join(dir, "secrets"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	v := &vendors{Fleet: f, vcd: f.VCD, astra: f.Astra, cv: f.Commvault, huawei: f.Huawei, yaml: f.YAML("SINKDIR")}
	for _, s := range f.Tokens {
		v.tokens = append(v.tokens, tokenSpec{s.Name, s.Provider, s.Kind, s.Extra})
	}
	return v
}

// valid asks the fake of provider whether secret works now.
func (v *vendors) valid(provider, secret string) bool {
	switch provider {
	case "vcd":
		return v.vcd.Valid(secret)
	case "astra":
		return v.astra.Valid(secret)
	case "commvault":
		return v.cv.Valid(secret)
	case "huawei":
		return v.huawei.Valid(secret)
	}
	return false
}

// liveIDs lists the ids of the tokens that exist at each fake, keyed by provider.
func (v *vendors) liveIDs() map[string][]string { return v.LiveIDs() }

// describe returns what a fake knows of the token provider/id, for failure messages (no secret).
func (v *vendors) describe(key string) string {
	provider, id, _ := strings.Cut(key, "/")
	var out any
	switch provider {
	case "vcd":
		for _, t := range v.vcd.Tokens() {
			if t.ID == id {
				out = t
			}
		}
	case "astra":
		for _, t := range v.astra.Tokens() {
			if t.ID == id {
				out = t
			}
		}
	case "commvault":
		for _, t := range v.cv.Tokens() {
			if t.ID == id {
				out = t
			}
		}
	case "huawei":
		for _, t := range v.huawei.Tokens() {
			if t.ID == id {
				out = t
			}
		}
	}
	return fmt.Sprintf("%s %+v", key, out)
}

// vendorStats are the fakes' counters summed over the four vendors.
type vendorStats struct {
	Creates, Renews, Revokes, Replays, ChainDeletions, Live, Requests int
}

func (v *vendors) stats() vendorStats {
	a, b, c, d := v.vcd.Stats(), v.astra.Stats(), v.cv.Stats(), v.huawei.Stats()
	return vendorStats{
		Creates:        a.Creates + b.Creates + c.Creates + d.Creates,
		Renews:         a.Renews + b.Renews + c.Renews + d.Renews,
		Revokes:        a.Revokes + b.Revokes + c.Revokes + d.Revokes,
		Replays:        a.Replays + b.Replays + c.Replays + d.Replays,
		ChainDeletions: a.ChainDeletions + b.ChainDeletions + c.ChainDeletions + d.ChainDeletions,
		Live:           a.Live + b.Live + c.Live + d.Live,
		Requests:       a.Requests + b.Requests + c.Requests + d.Requests,
	}
}

// faults sets the same probabilistic faults at every fake; the zero value turns them off.
type faults struct {
	Error, RateLimit, Malformed, Drop float64
	Delay                             time.Duration
}

func (v *vendors) setFaults(f faults, seed int64) {
	v.SetFaults(fakefaults.Profile{ErrorRate: f.Error, RateLimitRate: f.RateLimit, MalformedRate: f.Malformed, DropRate: f.Drop,
		Delay: f.Delay, Seed: seed})
}

// cluster is one run: a Redis, the fakes, and one or more tokend instances sharing them.
type cluster struct {
	t         *testing.T
	dir       string
	redis     *redisServer
	vendors   *vendors
	timing    timing
	prefix    string
	instances []*instance
}

// instance is one tokend: its config, sink directory, listener and the process now running (nil: none).
type instance struct {
	c      *cluster
	id     string
	dir    string
	sinks  string
	config string
	listen string
	log    *os.File

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	kills int
}

func newCluster(t *testing.T, tm timing, n int) *cluster {
	t.Helper()
	// Build first: the vendors mint bootstrap tokens whose max_age runs from now, and a cold build can take
	// longer than that, which would make the first start recreate them at once.
	tokendtest.Binary(t)
	c := &cluster{t: t, dir: t.TempDir(), timing: tm, prefix: "tokend-rel"}
	c.redis = startRedis(t)
	c.vendors = newVendors(t, c.dir, tm)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(c.dir, "secrets", "state.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		in := &instance{c: c, id: fmt.Sprintf("rel-%d", i), dir: filepath.Join(c.dir, fmt.Sprintf("i%d", i))}
		in.sinks = filepath.Join(in.dir, "tokens")
		if err := os.MkdirAll(in.sinks, 0o700); err != nil {
			t.Fatal(err)
		}
		in.listen = tokendtest.FreeAddr(t)
		in.config = filepath.Join(in.dir, "tokend.yaml")
		cfg := fmt.Sprintf(`listen: %q
instance_id: %s
log: {level: debug, format: json}
redis: {url: "redis://%s/0", key_prefix: %s}
state_key_file: %s
defaults:
  renew_before: 50%%
  recreate_before: %s
  max_age: %s
  jitter: 0%%
  revoke_after: %s
  poll: "@every 5s"
  retry: {min: 200ms, max: 2s}
%s`, in.listen, in.id, c.redis.addr(), c.prefix, keyFile, tm.RecreateBefore, tm.MaxAge, tm.RevokeAfter,
			strings.ReplaceAll(c.vendors.yaml, "SINKDIR", in.sinks))
		if err := os.WriteFile(in.config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(filepath.Join(in.dir, "tokend.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		in.log = f
		t.Cleanup(func() { in.stop(); f.Close() })
		c.instances = append(c.instances, in)
	}
	return c
}

// start runs the instance's binary; it must not be running.
func (in *instance) start() {
	t := in.c.t
	t.Helper()
	cmd := exec.Command(tokendtest.Binary(t), "run", "--config", in.config)
	cmd.Stdout, cmd.Stderr = in.log, in.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting tokend %s: %v", in.id, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	in.mu.Lock()
	in.cmd, in.done = cmd, done
	in.mu.Unlock()
}

// kill sends SIGKILL (os.Process.Kill) to the running process and waits for it to be gone.
func (in *instance) kill() {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		in.c.t.Errorf("killing tokend %s (pid %d): %v", in.id, cmd.Process.Pid, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		in.c.t.Errorf("tokend %s (pid %d) still runs 10s after SIGKILL", in.id, cmd.Process.Pid)
	}
	in.mu.Lock()
	in.kills++
	in.mu.Unlock()
}

// exited reports whether the process started last has exited on its own.
func (in *instance) exited() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.done == nil {
		return false
	}
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// stop ends the running process with SIGTERM, then SIGKILL after 10 s, by its PID.
func (in *instance) stop() {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (in *instance) logTail() string {
	b, _ := os.ReadFile(filepath.Join(in.dir, "tokend.log"))
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// readyz returns the status code of /readyz (0 when nothing answers).
func (in *instance) readyz() int {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get("http://" + in.listen + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// reader opens a secret-less reader of the cluster's state.
func (c *cluster) reader() (*store.Store, func()) {
	rdb := redis.NewClient(&redis.Options{Addr: c.redis.addr(), DialTimeout: 300 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, MaxRetries: -1})
	return store.NewReader(rdb, c.prefix), func() { rdb.Close() }
}

func (c *cluster) names() []string {
	var out []string
	for _, t := range c.vendors.tokens {
		out = append(out, t.name)
	}
	return out
}

// generations returns every token's generation (error when Redis does not answer).
func (c *cluster) generations() (map[string]int64, error) {
	r, closeFn := c.reader()
	defer closeFn()
	states, err := r.Load(context.Background(), c.names())
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for name, st := range states {
		if st != nil {
			out[name] = st.Generation
		}
	}
	return out, nil
}

// waitGenerations waits until every token's generation is at least min(name).
func (c *cluster) waitGenerations(d time.Duration, what string, atLeast func(name string) int64) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		gens, err := c.generations()
		var behind []string
		if err != nil {
			behind = append(behind, err.Error())
		} else {
			for _, n := range c.names() {
				if gens[n] < atLeast(n) {
					behind = append(behind, fmt.Sprintf("%s at %d, want %d", n, gens[n], atLeast(n)))
				}
			}
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("waiting %v for %s: %s\nlog tail of %s:\n%s", d, what, strings.Join(behind, "; "),
				c.instances[0].id, c.instances[0].logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
