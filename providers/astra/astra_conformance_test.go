package astra

import (
	"testing"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/astra/astratest"
	"github.com/tokend/tokend/providers/providertest"
)

// TestConformance runs the shared suite for the only astra kind, api_token, against the fake with each
// secret shape (JWT naming its token, opaque) and over plain http and TLS. The first token comes from
// Bootstrap, as in production.
func TestConformance(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts astratest.Options
	}{
		{"api_token jwt secrets", astratest.Options{}},
		{"api_token opaque secrets tls paged", astratest.Options{OpaqueSecrets: true, TLS: true, MaxPageSize: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			providertest.Run(t, func(t *testing.T) providertest.Fixture {
				e := newEnv(t, tt.opts)
				boot := e.bootstrap(t)
				return providertest.Fixture{
					Provider:      e.p,
					Current:       &boot,
					Valid:         func(s providers.Secret) bool { return e.srv.Valid(s.Reveal()) },
					FailNext:      e.srv.FailNext,
					MalformedNext: e.srv.MalformedNext,
					Renewable:     false,
				}
			})
		})
	}
}
