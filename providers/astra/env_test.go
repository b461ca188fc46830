package astra

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/astra/astratest"
)

// env is one fake Astra and a provider for a token "backup" of it.
type env struct {
	srv   *astratest.Server
	acct  *Account
	p     *APIToken
	clock *clock
	ctx   context.Context // bounded by the test
}

// clock is a settable clock shared by the fake and the provider.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newEnv(t *testing.T, opts astratest.Options) *env {
	t.Helper()
	c := &clock{t: time.Date(2024, 6, 1, 10, 0, 0, 123456000, time.UTC)}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	srv := astratest.New(opts)
	t.Cleanup(srv.Close)
	acct, err := New(providerConfig(srv), providers.Options{HTTP: srv.Client(), Now: c.Now})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	p, err := acct.Token(config.Token{Name: "backup", Provider: "astra", Kind: KindAPIToken})
	if err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	return &env{srv: srv, acct: acct, p: p.(*APIToken), clock: c, ctx: ctx(t)}
}

func providerConfig(srv *astratest.Server) config.Provider {
	return config.Provider{Name: "astra", Type: "astra", URL: srv.URL(), AccountID: srv.AccountID(), UserID: srv.UserID()}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// bootstrap mints a UI token and bootstraps it.
func (e *env) bootstrap(t *testing.T) providers.Token {
	t.Helper()
	tok, err := e.p.Bootstrap(ctx(t), providers.NewSecret(e.srv.IssueBootstrap()))
	if err != nil {
		t.Fatalf("Bootstrap() error = %v", err)
	}
	return tok
}

// create makes a token named name with current.
func (e *env) create(t *testing.T, name string, current providers.Token) providers.Token {
	t.Helper()
	tok, err := e.p.Create(ctx(t), providers.CreateRequest{VendorName: name, Current: &current, Keep: []string{current.ID}})
	if err != nil {
		t.Fatalf("Create(%s) error = %v", name, err)
	}
	return tok
}
