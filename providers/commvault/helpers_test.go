package commvault_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/commvault"
	"github.com/tokend/tokend/providers/commvault/commvaulttest"
)

// clock is a settable clock shared by a fake and a provider.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1767225600, 0)} } // 2026-01-01T00:00:00Z

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	srv  *commvaulttest.Server
	acct *commvault.Account
	prov providers.Provider
	cfg  config.Provider
}

func tokenConfig(typ string) config.Token {
	t := config.Token{Name: "commvault-" + typ, Provider: "commvault", Kind: "access_token", TokenType: typ}
	if typ == "CUSTOM" {
		t.APIEndpoints = []string{"/client", "/v2/WhoAmI"}
	}
	return t
}

// providerConfig returns the config of an account on srv whose password file holds password.
func providerConfig(t *testing.T, srv *commvaulttest.Server, user, password string) config.Provider {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Provider{Name: "commvault", Type: "commvault", URL: srv.URL(), Username: user,
		PasswordFile: config.SecretRef(pw)}
}

// newFixture starts a fake with opts and builds the provider of tok on it. A nil opts.Now stays on real
// time; the provider shares the fake's clock.
func newFixture(t *testing.T, opts commvaulttest.Options, tok config.Token) *fixture {
	t.Helper()
	srv := commvaulttest.New(opts)
	t.Cleanup(srv.Close)
	cfg := providerConfig(t, srv, commvaulttest.DefaultUser, commvaulttest.DefaultPassword)
	acct, err := commvault.New(cfg, providers.Options{HTTP: srv.Client(), Now: opts.Now})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	p, err := acct.Token(tok)
	if err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	return &fixture{srv: srv, acct: acct, prov: p, cfg: cfg}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

func providersOptions() providers.Options { return providers.Options{} }
