package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/cmd/tokend/tokendtest"
	"github.com/tokend/tokend/daemon"
	"github.com/tokend/tokend/providers/astra/astratest"
	"github.com/tokend/tokend/providers/commvault/commvaulttest"
	"github.com/tokend/tokend/providers/huaweiidc/huaweiidctest"
	"github.com/tokend/tokend/providers/vcd/vcdtest"
	"github.com/tokend/tokend/store/storetest"
)

// TestVendorsEndToEnd runs the real binary against each vendor's fake, one tokend and one fake per case,
// for every kind of every vendor: VCD access_token (plain and with a rotating refresh token), api_token
// and proxy_token; Astra api_token; Commvault ALL, CUSTOM, MS_SCIM and OneTouch; Huawei IDC scim_token
// (also with a tenant already at its cap of two tokens). Lifetimes are seconds. A consumer samples the
// file sinks (raw and json) every 100-250 ms and asks the fake whether the vendor accepts what it read.
//
// Each case proves: no bad sample once the sink was first written; at least two rotations (generation ≥ 3);
// a superseded secret keeps working through its grace period and every superseded vendor-side token is
// revoked after it (the fake ends with exactly one live token, and superseded recreated secrets stop
// working); no refresh-token replay and no Commvault chain deletion; tokend stops cleanly on SIGTERM; and
// no secret (delivered, bootstrap or pre-existing) appears in tokend's log, /api/v1/tokens or
// `tokend status --json`.
//
// The "faults" cases inject, one at a time just before a rotation is due, 503, 429, 401, 403, 404, two
// malformed (acted-on, truncated) answers and two 500s (everyFault), each followed by a rotation that
// must still happen, with the same assertions.
//
// The cases run concurrently in goroutines rather than as t.Parallel subtests, whose concurrency is
// capped by -parallel (GOMAXPROCS, 2 on CI); their results are reported by one subtest per case, with
// tokend's whole log when TOKEND_E2E_DUMP is set (its tail when a case fails). TOKEND_E2E_ONLY=text runs
// only the cases whose name contains text.
func TestVendorsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the real binary for about a minute")
	}
	bin := tokendtest.Binary(t)
	rdb := storetest.RealRedis(t)

	var runs []*vrun
	for _, c := range vendorCases() {
		if f := os.Getenv("TOKEND_E2E_ONLY"); f != "" && !strings.Contains(c.name, f) {
			continue
		}
		runs = append(runs, newVRun(t, rdb, bin, c))
	}
	if len(runs) == 0 {
		t.Fatalf("no case matches TOKEND_E2E_ONLY=%q", os.Getenv("TOKEND_E2E_ONLY"))
	}
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(r.drive)
	}
	wg.Wait()
	for _, r := range runs {
		t.Run(r.c.name, func(t *testing.T) {
			for _, e := range r.errs {
				t.Error(e)
			}
			t.Logf("%s: generation %d, %d samples, %d distinct secrets in the sink, %d failures logged, fake %+v, %s",
				r.c.name, r.lastGen, r.samples, len(r.order), r.failuresLogged(), r.fake.stats(), r.elapsed.Round(time.Millisecond))
			if t.Failed() || os.Getenv("TOKEND_E2E_DUMP") != "" {
				t.Logf("tokend log tail:\n%s", r.logTail())
			}
		})
	}
}

// Timing shared by every case.
const (
	vLifetime    = 4 * time.Second // tokens that expire; renew_before 50% acts every 2 s
	vMaxAge      = 2 * time.Second // tokens that never expire
	vRevokeAfter = 1500 * time.Millisecond
)

// fault is one injected failure: status for FailNext, or a malformed answer (MalformedNext).
type fault struct {
	status    int
	malformed bool
	n         int
}

func (f fault) String() string {
	if f.malformed {
		return fmt.Sprintf("%d malformed answer(s)", f.count())
	}
	return fmt.Sprintf("%d× %d", f.count(), f.status)
}

func (f fault) count() int { return max(f.n, 1) }

// everyFault is injected in this order, each just before a rotation is due. Some come twice in a row:
// where due times fall on whole seconds (Commvault and Huawei give whole-second expiries), the poll that
// runs on the same tick often meets the first, and the rotation the second. 401, 403 and 429 come once:
// tokend waits retry.max (or Retry-After) after each, and two in a row would bring a 4 s token too near
// its expiry. 404 comes once, injected when no previous token waits for revocation: a 404 that met the
// DELETE of a token that still exists would rightly count as revoked (already gone is done) and leave
// it behind at the fake, which no real vendor does.
var everyFault = []fault{
	{status: 503}, {status: 429}, {status: 401}, {status: 403},
	{status: 404}, {malformed: true, n: 2}, {status: 500, n: 2},
}

// fakeStats are the counters every vendor fake keeps.
type fakeStats struct{ Creates, Renews, Revokes, Replays, ChainDeletions, Live int }

// vendorFake is what a case needs of a vendor fake, whichever vendor it is.
type vendorFake struct {
	valid     func(string) bool
	failNext  func(status, n int)
	malformed func(n int)
	ids       func() []string
	stats     func() fakeStats
}

// fake is what every vendor fake offers, with its vendor's own TokenInfo and Stats types.
type fake[TI, ST any] interface {
	Valid(secret string) bool
	FailNext(status, n int)
	MalformedNext(n int)
	Tokens() []TI
	Stats() ST
}

// adapt makes the vendorFake of s. The vendors' TokenInfo and Stats types differ but name the fields read
// here alike (ID, and those of fakeStats), so a JSON round trip reads them from any of the four.
func adapt[TI, ST any](s fake[TI, ST]) *vendorFake {
	sameFields := func(from, to any) {
		b, err := json.Marshal(from)
		if err == nil {
			err = json.Unmarshal(b, to)
		}
		if err != nil {
			panic(err) // the fakes' types are plain structs
		}
	}
	return &vendorFake{valid: s.Valid, failNext: s.FailNext, malformed: s.MalformedNext,
		ids: func() []string {
			var toks []struct{ ID string }
			sameFields(s.Tokens(), &toks)
			var ids []string
			for _, t := range toks {
				ids = append(ids, t.ID)
			}
			return ids
		},
		stats: func() fakeStats {
			var st fakeStats
			sameFields(s.Stats(), &st)
			return st
		},
	}
}

// vendorSetup is a started fake, the config blocks for its provider and token (indented as list items),
// and the secrets tokend is given or that exist before it starts (they must never be shown either).
type vendorSetup struct {
	fake     *vendorFake
	provider string
	token    string
	secrets  []string
	// firstDelivered is the one of secrets that tokend delivers as the first token (Astra's bootstrap).
	firstDelivered string
	// check runs after the case; it returns what went wrong.
	check func() []string
}

type vendorCase struct {
	name string
	// renews: the token is renewed in place, so a superseded secret may keep working until it expires.
	renews                  bool
	faults                  []fault
	wantCreates, wantRenews int // at least, at the fake
	setup                   func(t *testing.T, dir string) vendorSetup
}

func vendorCases() []vendorCase {
	var cases []vendorCase
	for _, faulty := range []bool{false, true} {
		var faults []fault
		suffix := ""
		if faulty {
			faults, suffix = everyFault, "/faults"
		}
		cases = append(cases,
			vendorCase{name: "vcd/access_token" + suffix, renews: true, faults: faults, wantRenews: 2,
				setup: vcdSetup(vcdtest.Options{AccessTokenLifetime: vLifetime}, "access_token")},
			vendorCase{name: "vcd/access_token-rotating" + suffix, renews: true, faults: faults, wantRenews: 2,
				setup: vcdSetup(vcdtest.Options{AccessTokenLifetime: vLifetime, RequireRotation: true}, "access_token")},
			vendorCase{name: "vcd/api_token" + suffix, faults: faults, wantCreates: 3,
				setup: vcdSetup(vcdtest.Options{}, "api_token")},
			vendorCase{name: "vcd/proxy_token" + suffix, faults: faults, wantCreates: 3,
				setup: vcdSetup(vcdtest.Options{ProxyTokenLifetime: vLifetime}, "proxy_token")},
			vendorCase{name: "astra/api_token" + suffix, faults: faults, wantCreates: 2,
				setup: astraSetup},
			// ALL and CUSTOM: renewable for 10 s and recreated 2 s before that, so every run renews and recreates.
			vendorCase{name: "commvault/ALL" + suffix, renews: true, faults: faults, wantCreates: 2, wantRenews: 1,
				setup: commvaultSetup("ALL")},
			vendorCase{name: "commvault/CUSTOM" + suffix, renews: true, faults: faults, wantCreates: 2, wantRenews: 1,
				setup: commvaultSetup("CUSTOM")},
			vendorCase{name: "commvault/MS_SCIM" + suffix, faults: faults, wantCreates: 3,
				setup: commvaultSetup("MS_SCIM")},
			vendorCase{name: "commvault/OneTouch" + suffix, faults: faults, wantCreates: 3,
				setup: commvaultSetup("OneTouch")},
			vendorCase{name: "huawei-idc/scim_token" + suffix, faults: faults, wantCreates: 3,
				setup: huaweiSetup(0)},
		)
	}
	// The tenant already holds two tokens (its cap) made by a person in the console before tokend starts.
	cases = append(cases, vendorCase{name: "huawei-idc/scim_token-tenant-full", wantCreates: 3, setup: huaweiSetup(2)})
	return cases
}

func writeSecret(t *testing.T, dir, name, value string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func vcdSetup(opts vcdtest.Options, kind string) func(*testing.T, string) vendorSetup {
	return func(t *testing.T, dir string) vendorSetup {
		s := vcdtest.New(opts)
		t.Cleanup(s.Close)
		const pw = "alice-password" // vcdtest's default user alice@acme
		password := writeSecret(t, dir, "vcd-password", pw)
		v := vendorSetup{
			secrets:  []string{pw},
			fake:     adapt[vcdtest.TokenInfo, vcdtest.Stats](s),
			provider: fmt.Sprintf("type: vcd\n    url: %s\n    org: acme\n    username: alice\n    password_file: %s\n", s.URL(), password),
			token:    "kind: " + kind + "\n",
		}
		switch kind {
		case "access_token":
			boot := s.IssueBootstrap()
			v.secrets = append(v.secrets, boot)
			v.token += "    bootstrap_file: " + writeSecret(t, dir, "vcd-api-token", boot) + "\n"
		case "api_token":
			v.token += fmt.Sprintf("    max_age: %s\n", vMaxAge)
		}
		return v
	}
}

func astraSetup(t *testing.T, dir string) vendorSetup {
	s := astratest.New(astratest.Options{})
	t.Cleanup(s.Close)
	boot := s.IssueBootstrap()
	return vendorSetup{
		fake:     adapt[astratest.TokenInfo, astratest.Stats](s),
		provider: fmt.Sprintf("type: astra\n    url: %s\n    account_id: %s\n    user_id: %s\n", s.URL(), s.AccountID(), s.UserID()),
		token: fmt.Sprintf("kind: api_token\n    bootstrap_file: %s\n    max_age: %s\n",
			writeSecret(t, dir, "astra-token", boot), vMaxAge),
		secrets:        []string{boot},
		firstDelivered: boot,
	}
}

func commvaultSetup(typ string) func(*testing.T, string) vendorSetup {
	return func(t *testing.T, dir string) vendorSetup {
		s := commvaulttest.New(commvaulttest.Options{AccessLifetime: vLifetime})
		t.Cleanup(s.Close)
		password := writeSecret(t, dir, "commvault-password", commvaulttest.DefaultPassword)
		token := "kind: access_token\n    token_type: " + typ + "\n"
		switch typ {
		case "ALL", "CUSTOM":
			token += "    renewable_for: 10s\n    recreate_before: 2s\n"
			if typ == "CUSTOM" {
				token += "    api_endpoints: [/client]\n"
			}
		default:
			token += fmt.Sprintf("    lifetime: %s\n", vLifetime)
		}
		return vendorSetup{
			fake: adapt[commvaulttest.TokenInfo, commvaulttest.Stats](s),
			provider: fmt.Sprintf("type: commvault\n    url: %s\n    username: %s\n    password_file: %s\n",
				s.URL(), commvaulttest.DefaultUser, password),
			token:   token,
			secrets: []string{commvaulttest.DefaultPassword},
		}
	}
}

// huaweiSetup starts the Huawei fake; prefill tokens are made in the tenant first, as a person would.
func huaweiSetup(prefill int) func(*testing.T, string) vendorSetup {
	return func(t *testing.T, dir string) vendorSetup {
		s := huaweiidctest.New(huaweiidctest.Options{Lifetime: vLifetime})
		t.Cleanup(s.Close)
		v := vendorSetup{
			fake: adapt[huaweiidctest.TokenInfo, huaweiidctest.Stats](s),
			provider: fmt.Sprintf("type: huawei-idc\n    url: %s\n    scim_url: %s\n    identity_store_id: %s\n    access_key_file: %s\n    secret_key_file: %s\n",
				s.URL(), s.SCIMURL(), s.IdentityStoreID(),
				writeSecret(t, dir, "huawei-ak", s.AccessKey()), writeSecret(t, dir, "huawei-sk", s.SecretKey())),
			token:   "kind: scim_token\n    tenant_id: " + s.TenantID() + "\n",
			secrets: []string{s.SecretKey()},
		}
		var before []string
		for range prefill {
			info, secret, err := s.IssueToken(s.TenantID())
			if err != nil {
				t.Fatalf("IssueToken: %v", err)
			}
			before = append(before, info.ID)
			v.secrets = append(v.secrets, secret)
		}
		v.check = func() []string {
			var errs []string
			for _, tok := range s.Tokens() {
				if slices.Contains(before, tok.ID) {
					errs = append(errs, fmt.Sprintf("token %s that the tenant held before tokend started was never revoked", tok.ID))
				}
			}
			if n := s.Stats().CapRefusals; n != 0 {
				errs = append(errs, fmt.Sprintf("%d creates refused at the tenant's cap: tokend must make room first", n))
			}
			if n := s.Stats().BadSignatures; n != 0 {
				errs = append(errs, fmt.Sprintf("%d requests with a bad signature", n))
			}
			return errs
		}
		return v
	}
}

// vrun is one case: its fake, config, tokend process and what its consumer saw.
type vrun struct {
	c      vendorCase
	bin    string
	dir    string
	config string
	listen string
	sink   string
	// sinkJSON is the same token delivered in the json format, for its expiry.
	sinkJSON string
	fake     *vendorFake
	setup    vendorSetup
	cmd      *exec.Cmd
	exited   chan struct{}
	logF     *os.File

	mu      sync.Mutex
	errs    []string
	samples int
	bad     int
	early   int
	order   []string             // distinct secrets the sink held, in order
	leftAt  map[string]time.Time // when the consumer first saw a secret replaced
	expires map[string]time.Time // a secret's expiry as the json sink gave it (zero: never)
	bodies  map[string]bool      // distinct /api/v1/tokens answers
	lastGen int64
	lastRow daemon.Row
	elapsed time.Duration
}

func (r *vrun) errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// newVRun starts the case's fake, writes its credential files and config, and starts tokend.
func newVRun(t *testing.T, rdb *redis.Client, bin string, c vendorCase) *vrun {
	t.Helper()
	dir := t.TempDir()
	r := &vrun{c: c, bin: bin, dir: dir, listen: tokendtest.FreeAddr(t), sink: filepath.Join(dir, "out", "tok.token"),
		sinkJSON: filepath.Join(dir, "out", "tok.json"), expires: map[string]time.Time{},
		exited: make(chan struct{}), leftAt: map[string]time.Time{}, bodies: map[string]bool{}}
	if err := os.MkdirAll(filepath.Dir(r.sink), 0o700); err != nil {
		t.Fatal(err)
	}
	r.setup = c.setup(t, dir)
	r.fake = r.setup.fake
	key := writeSecret(t, dir, "state-key", "0123456789abcdef0123456789abcdef")
	prefix := fmt.Sprintf("tokendvend2e-%s-%d", strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(c.name)), time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := rdb.Keys(ctx, prefix+":*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	r.config = filepath.Join(dir, "tokend.yaml")
	cfg := fmt.Sprintf(`listen: %s
instance_id: e2e
log: {level: debug, format: json}
redis: {url: "redis://%s/0", key_prefix: %s}
state_key_file: %s
defaults:
  renew_before: 50%%
  jitter: 0%%
  max_age: %s
  revoke_after: %s
  poll: "@every 1s"
  retry: {min: 100ms, max: 1s}
providers:
  - name: vendor
    %s
tokens:
  - name: tok
    provider: vendor
    %s    deliver:
      - file: {path: %s}
      - file: {path: %s, format: json}
`, r.listen, rdb.Options().Addr, prefix, key, vMaxAge, vRevokeAfter, r.setup.provider, r.setup.token, r.sink, r.sinkJSON)
	if err := os.WriteFile(r.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "--config", r.config).CombinedOutput(); err != nil {
		t.Fatalf("%s: tokend check: %v\n%s\n%s", c.name, err, out, cfg)
	}

	var err error
	if r.logF, err = os.OpenFile(filepath.Join(dir, "tokend.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "run", "--config", r.config)
	r.cmd.Stdout, r.cmd.Stderr = r.logF, r.logF
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
		r.logF.Close()
	})
	return r
}

func (r *vrun) running() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// stop ends tokend with SIGTERM and expects a clean exit.
func (r *vrun) stop() {
	if !r.running() {
		r.errorf("tokend exited by itself: %v", r.cmd.ProcessState)
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
		if code := r.cmd.ProcessState.ExitCode(); code != 0 {
			r.errorf("tokend exited %d after SIGTERM", code)
		}
	case <-time.After(15 * time.Second):
		r.errorf("tokend did not stop within 15 s of SIGTERM")
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}

// failuresLogged counts the failed steps and polls in tokend's log.
func (r *vrun) failuresLogged() int {
	b, _ := os.ReadFile(filepath.Join(r.dir, "tokend.log"))
	n := 0
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, `"msg":"step failed"`) || strings.Contains(line, `"msg":"polling"`) {
			n++
		}
	}
	return n
}

func (r *vrun) logTail() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "tokend.log"))
	if len(b) > 6000 && os.Getenv("TOKEND_E2E_DUMP") == "" {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// sinkJSON is the json sink's file.
type sinkJSON struct {
	Token      string     `json:"token"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Generation int64      `json:"generation"`
}

// sample is the consumer: every 100-250 ms it reads both sinks and asks the fake whether the vendor
// accepts what they hold, and checks that every secret it saw replaced still works through its grace
// period (or until it expires, when that comes first).
func (r *vrun) sample(ctx context.Context) {
	// A replacement is seen up to 250 ms late, and the grace period counts from promotion, just after delivery.
	const slack = 450 * time.Millisecond
	var last string
	for ctx.Err() == nil {
		now := time.Now()
		if b, err := os.ReadFile(r.sinkJSON); err == nil {
			var j sinkJSON
			if err := json.Unmarshal(b, &j); err != nil {
				r.errorf("the json sink holds unreadable JSON: %v", err)
			} else {
				r.check(now, "json", j.Token)
				r.mu.Lock()
				if j.ExpiresAt != nil {
					r.expires[j.Token] = *j.ExpiresAt
				} else if _, ok := r.expires[j.Token]; !ok {
					r.expires[j.Token] = time.Time{}
				}
				r.mu.Unlock()
			}
		}
		if b, err := os.ReadFile(r.sink); err == nil {
			secret := string(b)
			r.check(now, "raw", secret)
			r.mu.Lock()
			if secret != last {
				if last != "" {
					r.leftAt[last] = now
				}
				if !slices.Contains(r.order, secret) {
					r.order = append(r.order, secret)
				}
				last = secret
			}
			var inGrace []string
			for s, at := range r.leftAt {
				exp, known := r.expires[s]
				if known && now.Sub(at) < vRevokeAfter-slack && (exp.IsZero() || now.Before(exp.Add(-100*time.Millisecond))) {
					inGrace = append(inGrace, s)
				}
			}
			r.mu.Unlock()
			for _, s := range inGrace {
				if !r.fake.valid(s) {
					r.mu.Lock()
					r.early++
					if r.early <= 3 {
						r.errs = append(r.errs, fmt.Sprintf("a superseded token stopped working within its %s grace period, before it expired (at %s)",
							vRevokeAfter, now.Format("15:04:05.000")))
					}
					delete(r.leftAt, s) // report each once
					r.mu.Unlock()
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100*time.Millisecond + rand.N(150*time.Millisecond)):
		}
	}
}

// check records one sample of a sink.
func (r *vrun) check(now time.Time, sink, secret string) {
	ok := r.fake.valid(secret)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples++
	if !ok {
		r.bad++
		if r.bad <= 3 {
			r.errs = append(r.errs, fmt.Sprintf("the %s sink held a token the vendor refused at %s", sink, now.Format("15:04:05.000")))
		}
	}
}

// row reads the token's row from /api/v1/tokens and keeps the body for the secret check.
func (r *vrun) row() (daemon.Row, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + r.listen + "/api/v1/tokens")
	if err != nil {
		return daemon.Row{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return daemon.Row{}, err
	}
	var rows daemon.Rows
	if err := json.Unmarshal(body, &rows); err != nil {
		return daemon.Row{}, fmt.Errorf("unreadable /api/v1/tokens: %w", err)
	}
	if len(rows.Tokens) != 1 {
		return daemon.Row{}, fmt.Errorf("/api/v1/tokens has %d rows, want 1", len(rows.Tokens))
	}
	r.mu.Lock()
	r.bodies[string(body)] = true
	r.lastGen, r.lastRow = rows.Tokens[0].Generation, rows.Tokens[0]
	r.mu.Unlock()
	return rows.Tokens[0], nil
}

var errTokendGone = errors.New("tokend exited")

// waitFor polls cond every 100 ms until it holds, the deadline passes or tokend exits.
func (r *vrun) waitFor(what string, d time.Duration, cond func(daemon.Row) bool) error {
	deadline := time.Now().Add(d)
	for {
		if !r.running() {
			return fmt.Errorf("waiting for %s: %w", what, errTokendGone)
		}
		if row, err := r.row(); err == nil && cond(row) {
			return nil
		}
		if time.Now().After(deadline) {
			r.mu.Lock()
			row := r.lastRow
			r.mu.Unlock()
			return fmt.Errorf("timed out after %s waiting for %s; last row: generation %d, state %s, next %s, failures %d, last error %q",
				d, what, row.Generation, row.State, row.NextAction, row.ConsecutiveFailures, row.LastError)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// drive runs the case to the end and records what went wrong.
func (r *vrun) drive() {
	start := time.Now()
	defer func() { r.elapsed = time.Since(start) }()
	ctx, cancel := context.WithCancel(context.Background())
	var sampler sync.WaitGroup
	sampler.Go(func() { r.sample(ctx) })
	if err := r.rotate(); err != nil {
		r.errorf("%v", err)
	}
	cancel()
	sampler.Wait()
	r.stop()
	r.finalChecks()
}

func (r *vrun) rotate() error {
	if err := r.waitFor("the first token", 20*time.Second, func(row daemon.Row) bool { return row.Generation >= 1 }); err != nil {
		return err
	}
	for _, f := range r.c.faults {
		// Inject just before a rotation is due, so that the rotation's own requests (or the poll on the same
		// tick) meet the fault. The next action is then the rotation, not a revocation: no previous token
		// waits (its revocation, revoke_after after promotion, comes before the next rotation).
		var gen int64
		err := r.waitFor("a rotation about to be due", 20*time.Second, func(row daemon.Row) bool {
			gen = row.Generation
			return (row.NextAction == "renew" || row.NextAction == "recreate") && row.NextActionAt != nil &&
				time.Until(*row.NextActionAt) < 300*time.Millisecond
		})
		if err != nil {
			return fmt.Errorf("before injecting %s: %w", f, err)
		}
		if f.malformed {
			r.fake.malformed(f.count())
		} else {
			r.fake.failNext(f.status, f.count())
		}
		if err := r.waitFor("a rotation after "+f.String(), 25*time.Second, func(row daemon.Row) bool { return row.Generation > gen }); err != nil {
			return err
		}
	}
	want := max(int64(3), r.lastGen+2)
	if err := r.waitFor(fmt.Sprintf("generation %d", want), 30*time.Second, func(row daemon.Row) bool {
		st := r.fake.stats()
		return row.Generation >= want && st.Creates >= r.c.wantCreates && st.Renews >= r.c.wantRenews
	}); err != nil {
		return fmt.Errorf("%w (fake %+v)", err, r.fake.stats())
	}
	// Every superseded vendor-side token is revoked once its grace period is over: the fake holds only the
	// current token, and a superseded recreated secret no longer works. Rotations go on meanwhile, so this
	// holds between a revocation and the next rotation.
	var why string
	err := r.waitFor("every superseded token revoked", 20*time.Second, func(daemon.Row) bool {
		why = r.settled()
		return why == ""
	})
	if err != nil {
		return fmt.Errorf("%w: %s", err, why)
	}
	return nil
}

// settled reports why the vendor still holds something tokend should have revoked ("" when it does not).
func (r *vrun) settled() string {
	r.mu.Lock()
	n := len(r.order)
	r.mu.Unlock()
	if n < 3 {
		return fmt.Sprintf("the consumer saw %d distinct secrets so far, want 3", n)
	}
	if ids := r.fake.ids(); len(ids) != 1 {
		return fmt.Sprintf("the vendor holds %d tokens (%v), want 1", len(ids), ids)
	}
	if r.c.renews {
		return "" // an access token renewed away keeps working until it expires
	}
	cutoff := time.Now().Add(-vRevokeAfter - 200*time.Millisecond)
	r.mu.Lock()
	var old []string
	for s, at := range r.leftAt {
		if at.Before(cutoff) {
			old = append(old, s)
		}
	}
	r.mu.Unlock()
	for _, s := range old {
		if r.fake.valid(s) {
			return "a superseded secret still works after its grace period"
		}
	}
	return ""
}

func (r *vrun) finalChecks() {
	st := r.fake.stats()
	if st.Replays != 0 {
		r.errorf("%d replayed refresh credentials", st.Replays)
	}
	if st.ChainDeletions != 0 {
		r.errorf("%d Commvault chain deletions", st.ChainDeletions)
	}
	r.mu.Lock()
	nsecrets, bad, samples := len(r.order), r.bad, r.samples
	r.mu.Unlock()
	if bad > 0 {
		r.errorf("%d of %d sink samples held a token the vendor did not accept", bad, samples)
	}
	if samples < 20 {
		r.errorf("only %d sink samples: the consumer did not watch the run", samples)
	}
	if nsecrets < 3 {
		r.errorf("the sink held %d distinct secrets, want at least 3", nsecrets)
	}
	if r.setup.check != nil {
		for _, e := range r.setup.check() {
			r.errorf("%s", e)
		}
	}
	r.checkNoSecretShown()
}

// checkNoSecretShown asserts that no secret the sink held, nor any given to tokend or held at the vendor
// before it started, appears in tokend's log, any /api/v1/tokens answer, or `tokend status --json`.
func (r *vrun) checkNoSecretShown() {
	outputs := map[string]string{}
	if b, err := os.ReadFile(filepath.Join(r.dir, "tokend.log")); err == nil {
		outputs["tokend's log"] = string(b)
	}
	out, err := exec.Command(r.bin, "status", "--json", "--config", r.config).CombinedOutput()
	if err != nil {
		r.errorf("tokend status --json: %v\n%s", err, out)
	}
	outputs["tokend status --json"] = string(out)
	r.mu.Lock()
	var api strings.Builder
	for body := range r.bodies {
		api.WriteString(body)
	}
	outputs["/api/v1/tokens"] = api.String()
	delivered := slices.Clone(r.order)
	r.mu.Unlock()
	secrets := append(slices.Clone(delivered), r.setup.secrets...)
	if !strings.Contains(outputs["tokend status --json"], `"tok"`) {
		r.errorf("tokend status --json shows no token:\n%s", out)
	}
	for _, s := range secrets {
		if len(s) < 8 {
			r.errorf("a secret of %d bytes is too short to look for", len(s))
			continue
		}
		for where, text := range outputs {
			if strings.Contains(text, s) {
				r.errorf("a secret appears in %s", where)
			}
		}
	}
	// Only what consumers use reaches a sink: never a password or key, nor the API token that is a VCD
	// access_token's refresh credential, nor a Huawei token tokend did not make.
	for _, s := range r.setup.secrets {
		if s != r.setup.firstDelivered && slices.Contains(delivered, s) {
			r.errorf("a credential given to tokend, or held at the vendor before it started, was delivered to the sink")
		}
	}
}
