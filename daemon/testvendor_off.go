//go:build !tokend_testprovider

package daemon

import (
	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
)

// Release builds have no test provider: see testvendor_on.go.
func addTestVendorCheck(map[string]config.VendorCheck) {}

func newTestAccount(config.Provider, providers.Options) (account, bool) { return nil, false }
