package providertest

import (
	"context"
	"testing"
	"time"

	"github.com/tokend/tokend/providers"
)

// fakeFixture runs a Fake (in memory) as a conformance fixture. MalformedNext maps to LoseNext: an unreadable
// answer is an answer lost after the vendor acted.
func fakeFixture(opts FakeOptions, bootstrap bool) func(t *testing.T) Fixture {
	return func(t *testing.T) Fixture {
		f := NewFake(opts)
		fx := Fixture{
			Provider:      f.Provider(),
			Valid:         func(s providers.Secret) bool { return f.Valid(s.Reveal()) },
			FailNext:      func(status, n int) { f.FailNext("", StatusError("", status), n) },
			MalformedNext: func(n int) { f.LoseNext("", n) },
			Renewable:     opts.Renewable,
		}
		if bootstrap {
			cur, err := f.Bootstrap(context.Background(), providers.NewSecret(f.IssueBootstrap()))
			if err != nil {
				t.Fatalf("Bootstrap(IssueBootstrap()) error = %v", err)
			}
			fx.Current = &cur
		}
		return fx
	}
}

func TestFakeConformance(t *testing.T) {
	tests := []struct {
		name      string
		opts      FakeOptions
		bootstrap bool
	}{
		{"never expires", FakeOptions{}, false},
		{"expires, recreated", FakeOptions{Lifetime: time.Hour}, false},
		{"renewable", FakeOptions{Lifetime: time.Hour, Renewable: true, RenewableFor: 24 * time.Hour}, false},
		{"renewable with rotating refresh", FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true}, false},
		{"renewable, bootstrap", FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true}, true},
		{"never expires, bootstrap", FakeOptions{}, true},
		{"capped", FakeOptions{Lifetime: time.Hour, Cap: 5}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { Run(t, fakeFixture(tt.opts, tt.bootstrap)) })
	}
}
