package huaweiidc

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/huaweiidc/huaweiidctest"
)

// clock is a settable clock shared by the provider and the fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 8, 4, 3, 16, 9, 275_000_000, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is a provider wired to a fresh fake.
type env struct {
	t     *testing.T
	srv   *huaweiidctest.Server
	clk   *clock
	acct  *Account
	tok   *SCIMToken
	pcfg  config.Provider
	tcfg  config.Token
	owned []string // every secret issued in the test, for leak checks
}

type envOpt func(*envSetup)

type envSetup struct {
	fake      huaweiidctest.Options
	sk        string // secret key written to the key file ("" = the fake's)
	providerT func(time.Time) time.Time
	transport func(http.RoundTripper) http.RoundTripper
}

func withFake(f func(*huaweiidctest.Options)) envOpt { return func(s *envSetup) { f(&s.fake) } }
func withSK(sk string) envOpt                        { return func(s *envSetup) { s.sk = sk } }
func withProviderClock(f func(time.Time) time.Time) envOpt {
	return func(s *envSetup) { s.providerT = f }
}
func withTransport(f func(http.RoundTripper) http.RoundTripper) envOpt {
	return func(s *envSetup) { s.transport = f }
}

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	clk := newClock()
	var st envSetup
	st.fake.Now = clk.Now
	for _, o := range opts {
		o(&st)
	}
	srv := huaweiidctest.New(st.fake)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	write := func(name, v string) config.SecretRef {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return config.SecretRef(p)
	}
	sk := st.sk
	if sk == "" {
		sk = srv.SecretKey()
	}
	pcfg := config.Provider{
		Name: "huawei", Type: Type, URL: srv.URL(), SCIMURL: srv.SCIMURL(),
		IdentityStoreID: srv.IdentityStoreID(),
		AccessKeyFile:   write("ak", srv.AccessKey()),
		SecretKeyFile:   write("sk", sk),
		Index:           3,
	}
	hc := srv.Client()
	if st.transport != nil {
		base := hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		hc = &http.Client{Transport: st.transport(base), Timeout: 10 * time.Second}
	}
	now := clk.Now
	if st.providerT != nil {
		now = func() time.Time { return st.providerT(clk.Now()) }
	}
	acct, err := New(pcfg, providers.Options{HTTP: hc, Now: now})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	tcfg := config.Token{Name: "huawei-scim", Provider: "huawei", Kind: KindSCIMToken, TenantID: srv.TenantID(), Index: 5}
	p, err := acct.Token(tcfg)
	if err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	return &env{t: t, srv: srv, clk: clk, acct: acct, tok: p.(*SCIMToken), pcfg: pcfg, tcfg: tcfg}
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(e.t.Context(), 10*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

func (e *env) create(req providers.CreateRequest) (providers.Token, error) {
	if req.StartedAt.IsZero() {
		req.StartedAt = e.clk.Now()
	}
	tok, err := e.tok.Create(e.ctx(), req)
	if err == nil {
		e.owned = append(e.owned, tok.Secret.Reveal())
	}
	return tok, err
}

func (e *env) mustCreate(req providers.CreateRequest) providers.Token {
	e.t.Helper()
	tok, err := e.create(req)
	if err != nil {
		e.t.Fatalf("Create() error = %v", err)
	}
	return tok
}

// issue makes a token the way a person does in the console.
func (e *env) issue() (huaweiidctest.TokenInfo, string) {
	e.t.Helper()
	ti, secret, err := e.srv.IssueToken(e.srv.TenantID())
	if err != nil {
		e.t.Fatalf("IssueToken() error = %v", err)
	}
	e.owned = append(e.owned, secret)
	return ti, secret
}

func tokenOf(ti huaweiidctest.TokenInfo, secret string) *providers.Token {
	return &providers.Token{ID: ti.ID, Secret: providers.NewSecret(secret), CreatedAt: ti.CreatedAt, ExpiresAt: ti.ExpiresAt}
}

func liveIDs(srv *huaweiidctest.Server) []string {
	var ids []string
	for _, ti := range srv.Tokens() {
		ids = append(ids, ti.ID)
	}
	return ids
}
