package daemon

import (
	"context"
	"fmt"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/astra"
	"github.com/tokend/tokend/providers/commvault"
	"github.com/tokend/tokend/providers/huaweiidc"
	"github.com/tokend/tokend/providers/vcd"
)

// account is one vendor account: it hands out a provider per token and can check its login.
type account interface {
	Token(t config.Token) (providers.Provider, error)
	Check(ctx context.Context) error
}

// VendorChecks returns the validation hook of every vendor type, keyed by the config's `type`.
func VendorChecks() map[string]config.VendorCheck {
	m := map[string]config.VendorCheck{
		"vcd":        vcd.Validate,
		"astra":      astra.Validate,
		"commvault":  commvault.Validate,
		"huawei-idc": huaweiidc.Validate,
	}
	addTestVendorCheck(m)
	return m
}

// newAccount builds the vendor account of provider p.
func newAccount(p config.Provider, opts providers.Options) (account, error) {
	switch p.Type {
	case "vcd":
		return vcd.New(p, opts)
	case "astra":
		return astra.New(p, opts)
	case "commvault":
		return commvault.New(p, opts)
	case "huawei-idc":
		return huaweiidc.New(p, opts)
	}
	if a, ok := newTestAccount(p, opts); ok {
		return a, nil
	}
	return nil, fmt.Errorf("%s.type: unknown provider type %q", p.Path(), p.Type)
}
