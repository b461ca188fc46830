package commvault_test

import (
	"testing"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/commvault/commvaulttest"
	"github.com/tokend/tokend/providers/providertest"
)

func TestConformance(t *testing.T) {
	for _, typ := range []string{"ALL", "CUSTOM", "MS_SCIM", "OneTouch"} {
		t.Run(typ, func(t *testing.T) {
			providertest.Run(t, func(t *testing.T) providertest.Fixture {
				f := newFixture(t, commvaulttest.Options{}, tokenConfig(typ))
				return providertest.Fixture{
					Provider:      f.prov,
					Valid:         func(s providers.Secret) bool { return f.srv.Valid(s.Reveal()) },
					FailNext:      f.srv.FailNext,
					MalformedNext: f.srv.MalformedNext,
					Renewable:     typ == "ALL" || typ == "CUSTOM",
				}
			})
		})
	}
}
