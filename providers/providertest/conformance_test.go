package providertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/providers"
)

// badEnv names the broken provider TestBrokenProviderHelper runs the suite on, in a child process.
const badEnv = "PROVIDERTEST_BROKEN"

// broken wraps a renewable Fake and breaks one rule of the contract, chosen by mode.
type broken struct {
	*RenewingFake
	mode string

	mu      sync.Mutex
	first   map[string]providers.Secret // first refresh credential seen per id
	revoked map[string]bool
}

func (b *broken) Create(ctx context.Context, req providers.CreateRequest) (providers.Token, error) {
	if b.mode == "ignores ctx" {
		ctx = context.Background()
	}
	tok, err := b.RenewingFake.Create(ctx, req)
	if err != nil && b.mode == "loses the class" {
		return tok, fmt.Errorf("creating: %v", err)
	}
	if err == nil {
		b.mu.Lock()
		b.first[tok.ID] = tok.Refresh
		b.mu.Unlock()
	}
	return tok, err
}

func (b *broken) Renew(ctx context.Context, t providers.Token) (providers.Token, error) {
	if b.mode == "replays the refresh credential" {
		b.mu.Lock()
		t.Refresh = b.first[t.ID]
		b.mu.Unlock()
	}
	tok, err := b.RenewingFake.Renew(ctx, t)
	if err == nil && b.mode == "moves expiry back" {
		tok.ExpiresAt = t.ExpiresAt.Add(-time.Minute)
	}
	return tok, err
}

func (b *broken) Inspect(ctx context.Context, t providers.Token) (providers.Status, error) {
	st, err := b.RenewingFake.Inspect(ctx, t)
	switch {
	case err != nil && b.mode == "leaks the secret":
		return st, fmt.Errorf("inspecting token with %s: %w", t.Secret.Reveal(), err)
	case err == nil && st.Gone && b.mode == "says gone with an error":
		return providers.Status{}, &providers.APIError{Op: "GET", Status: 404, Class: providers.NotFound}
	}
	return st, err
}

func (b *broken) Revoke(ctx context.Context, t, cur providers.Token) error {
	b.mu.Lock()
	again := b.revoked[t.ID]
	b.revoked[t.ID] = true
	b.mu.Unlock()
	if again && b.mode == "fails a second revoke" {
		return &providers.APIError{Op: "DELETE", Status: 404, Class: providers.NotFound}
	}
	if b.mode == "does not revoke" {
		return nil
	}
	return b.RenewingFake.Revoke(ctx, t, cur)
}

// TestBrokenProviderHelper runs the suite on a broken provider when badEnv is set; TestSuiteCatches runs it
// in a child process and expects it to fail.
func TestBrokenProviderHelper(t *testing.T) {
	mode := os.Getenv(badEnv)
	if mode == "" {
		t.Skip("run by TestSuiteCatches")
	}
	Run(t, func(t *testing.T) Fixture {
		f := NewFake(FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true})
		b := &broken{RenewingFake: &RenewingFake{f}, mode: mode, first: map[string]providers.Secret{},
			revoked: map[string]bool{}}
		fx := Fixture{
			Provider:      b,
			Valid:         func(s providers.Secret) bool { return f.Valid(s.Reveal()) },
			FailNext:      func(status, n int) { f.FailNext("", StatusError("", status), n) },
			MalformedNext: func(n int) { f.LoseNext("", n) },
			Renewable:     true,
		}
		if mode == "renews though not renewable" {
			fx.Renewable = false
		}
		return fx
	})
}

// TestSuiteCatches proves the suite can fail: each broken provider makes Run report the rule it breaks.
func TestSuiteCatches(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	tests := []struct {
		mode string
		want string // in the child's output
	}{
		{"leaks the secret", "error contains the secret of"},
		{"renews though not renewable", "implements providers.Renewer = true, want false"},
		{"replays the refresh credential", "second Renew() error"},
		{"moves expiry back", "earlier than before the renew"},
		{"fails a second revoke", "second Revoke() error"},
		{"does not revoke", "Valid(revoked secret) = true"},
		{"says gone with an error", "Inspect(revoked) error"},
		{"loses the class", "class = permanent, want unauthorized"},
		{"ignores ctx", "with a cancelled context: error = nil"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBrokenProviderHelper$", "-test.v")
			cmd.Env = append(os.Environ(), badEnv+"="+tt.mode)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("child run: err = %v, want a failing exit; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("child output does not contain %q:\n%s", tt.want, out)
			}
			if strings.Contains(string(out), "fake-secret-") || strings.Contains(string(out), "fake-refresh-") {
				t.Errorf("child output shows a secret value; the suite must mask them")
			}
		})
	}
}
