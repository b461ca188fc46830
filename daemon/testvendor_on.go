//go:build tokend_testprovider

package daemon

import (
	"context"
	"fmt"
	"strings"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/providertest/httpprov"
)

// The test provider (type "fake") speaks to providertest's HTTP fake, so the real binary can be tested end
// to end against a vendor that lives in the test process. Token kinds: "renewable" and "recreate". Only
// binaries built with -tags tokend_testprovider know it.
func addTestVendorCheck(m map[string]config.VendorCheck) {
	m["fake"] = func(p config.Provider, tokens []config.Token) []error {
		var errs []error
		for _, t := range tokens {
			if t.Kind != "renewable" && t.Kind != "recreate" {
				errs = append(errs, fmt.Errorf("%s.kind: %q is not a kind of fake (renewable, recreate)", t.Path(), t.Kind))
			}
		}
		return errs
	}
}

type testAccount struct {
	url  string
	opts providers.Options
}

func newTestAccount(p config.Provider, opts providers.Options) (account, bool) {
	if p.Type != "fake" {
		return nil, false
	}
	return &testAccount{url: strings.TrimSuffix(p.URL, "/"), opts: opts}, true
}

func (a *testAccount) Token(t config.Token) (providers.Provider, error) {
	return httpprov.New(a.url, t.Kind == "renewable", a.opts), nil
}

func (a *testAccount) Check(context.Context) error { return nil }
