package httpprov_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/providers/providertest/httpprov"
)

// vendor is a Fake served over HTTP on loopback, with its httpprov client.
type vendor struct {
	fake *providertest.Fake
	srv  *httptest.Server
	prov providers.Provider
}

func newVendor(t *testing.T, opts providertest.FakeOptions) *vendor {
	t.Helper()
	f := providertest.NewFake(opts)
	srv := httptest.NewServer(providertest.NewHandler(f))
	t.Cleanup(srv.Close)
	return &vendor{fake: f, srv: srv,
		prov: httpprov.New(srv.URL, opts.Renewable, providers.Options{HTTP: srv.Client()})}
}

// control posts to the handler's /control endpoints, as a test driving the vendor over HTTP would.
func (v *vendor) control(t *testing.T, path string) {
	t.Helper()
	resp, err := v.srv.Client().Post(v.srv.URL+path, "", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST %s: %d, want 204", path, resp.StatusCode)
	}
}

func fixture(opts providertest.FakeOptions, bootstrap bool) func(t *testing.T) providertest.Fixture {
	return func(t *testing.T) providertest.Fixture {
		v := newVendor(t, opts)
		fx := providertest.Fixture{
			Provider:      v.prov,
			Valid:         func(s providers.Secret) bool { return v.fake.Valid(s.Reveal()) },
			FailNext:      func(status, n int) { v.control(t, fmt.Sprintf("/control/fail?status=%d&n=%d", status, n)) },
			MalformedNext: func(n int) { v.control(t, fmt.Sprintf("/control/malformed?n=%d", n)) },
			Renewable:     opts.Renewable,
		}
		if bootstrap {
			b, ok := v.prov.(providers.Bootstrapper)
			if !ok {
				t.Fatalf("httpprov provider does not implement providers.Bootstrapper")
			}
			cur, err := b.Bootstrap(t.Context(), providers.NewSecret(v.fake.IssueBootstrap()))
			if err != nil {
				t.Fatalf("Bootstrap() error = %v", err)
			}
			fx.Current = &cur
		}
		return fx
	}
}

func TestConformance(t *testing.T) {
	tests := []struct {
		name      string
		opts      providertest.FakeOptions
		bootstrap bool
	}{
		{"never expires", providertest.FakeOptions{}, false},
		{"expires, recreated", providertest.FakeOptions{Lifetime: time.Hour}, false},
		{"renewable", providertest.FakeOptions{Lifetime: time.Hour, Renewable: true, RenewableFor: 24 * time.Hour}, false},
		{"renewable with rotating refresh", providertest.FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true}, false},
		{"renewable with rotating refresh, bootstrap", providertest.FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true}, true},
		{"never expires, bootstrap", providertest.FakeOptions{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { providertest.Run(t, fixture(tt.opts, tt.bootstrap)) })
	}
}
