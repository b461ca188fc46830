package vcd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/vcd/vcdtest"
)

// env is one fake VCD and an account logged in to it.
type env struct {
	srv *vcdtest.Server
	acc *Account
}

// setup starts a fake and builds an account for user@org. password "" means no login is configured.
func setup(t *testing.T, opts vcdtest.Options, user, org, password string) env {
	t.Helper()
	srv := vcdtest.New(opts)
	t.Cleanup(srv.Close)
	p := config.Provider{Name: "vcd-test", Type: "vcd", URL: srv.URL(), Org: org, APIVersion: "39.0"}
	if password != "" {
		f := filepath.Join(t.TempDir(), "password")
		if err := os.WriteFile(f, []byte(password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p.Username, p.PasswordFile = user, config.SecretRef(f)
	}
	acc, err := New(p, providers.Options{HTTP: srv.Client()})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return env{srv: srv, acc: acc}
}

func tenant(t *testing.T, opts vcdtest.Options) env {
	return setup(t, opts, "alice", "acme", "alice-password")
}

func (e env) kind(t *testing.T, kind string) providers.Provider {
	t.Helper()
	p, err := e.acc.Token(config.Token{Name: "vcd-" + kind, Kind: kind})
	if err != nil {
		t.Fatalf("Token(%s) error = %v", kind, err)
	}
	return p
}

func (e env) valid(s providers.Secret) bool { return e.srv.Valid(s.Reveal()) }
