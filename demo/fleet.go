package demo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokend/tokend/providers/astra/astratest"
	"github.com/tokend/tokend/providers/commvault/commvaulttest"
	"github.com/tokend/tokend/providers/huaweiidc/huaweiidctest"
	"github.com/tokend/tokend/providers/providertest/faults"
	"github.com/tokend/tokend/providers/vcd/vcdtest"
)

// FleetOptions configure a Fleet.
type FleetOptions struct {
	// Now is every fake's clock (and so their Date headers and the times they state); nil: time.Now.
	Now func() time.Time
	// Lifetime is the lifetime of expiring tokens; RenewableFor how long Commvault ALL tokens can be renewed.
	Lifetime, RenewableFor time.Duration
	// VendorLifetimes leaves the lifetimes to the fakes: the config asks for no lifetime or renewable_for,
	// which Commvault takes as absolute times that tokend computes on its own clock.
	VendorLifetimes bool
	// SecretsDir is where the credential files the config names are written (mode 0600). Required.
	SecretsDir string
}

// TokenSpec is one configured token: its name, provider, kind and the kind's extra config lines.
type TokenSpec struct{ Name, Provider, Kind, Extra string }

// Fleet is the four vendor fakes on loopback that tokend runs against in the demo and in the reliability
// suite (test/reliability), with the credential files and the config that reach them, so that both run the
// same vendors set up the same way.
type Fleet struct {
	VCD       *vcdtest.Server
	Astra     *astratest.Server
	Commvault *commvaulttest.Server
	Huawei    *huaweiidctest.Server
	// Tokens are one token of every kind of DESIGN.md section 1, as YAML configures them.
	Tokens []TokenSpec

	providers string // the providers: section of the config
}

// StartFleet starts the four fakes, writes their credentials into o.SecretsDir, and mints the bootstrap
// tokens that a person would in each vendor's UI. On error it stops what it started.
func StartFleet(o FleetOptions) (_ *Fleet, err error) {
	if o.SecretsDir == "" {
		return nil, errors.New("starting the vendor fakes: no secrets directory")
	}
	f := &Fleet{
		VCD:   vcdtest.New(vcdtest.Options{Now: o.Now, AccessTokenLifetime: o.Lifetime, ProxyTokenLifetime: o.Lifetime}),
		Astra: astratest.New(astratest.Options{Now: o.Now}),
		Commvault: commvaulttest.New(commvaulttest.Options{Now: o.Now, AccessLifetime: o.Lifetime,
			RenewableLifetime: o.RenewableFor, SCIMLifetime: o.Lifetime, OneTouchLifetime: o.Lifetime}),
		Huawei: huaweiidctest.New(huaweiidctest.Options{Now: o.Now, Lifetime: o.Lifetime}),
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if err := os.MkdirAll(o.SecretsDir, 0o700); err != nil {
		return nil, fmt.Errorf("making the secrets directory: %w", err)
	}
	var werr error
	write := func(name, value string) string {
		p := filepath.Join(o.SecretsDir, name)
		if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil && werr == nil {
			werr = fmt.Errorf("writing %s: %w", name, err)
		}
		return p
	}
	f.providers = fmt.Sprintf(`providers:
  - name: vcd
    type: vcd
    url: %s
    org: acme
    username: alice
    password_file: %s
  - name: astra
    type: astra
    url: %s
    account_id: %s
    user_id: %s
  - name: commvault
    type: commvault
    url: %s
    username: %s
    password_file: %s
  - name: huawei
    type: huawei-idc
    url: %s
    scim_url: %s
    identity_store_id: %s
    access_key_file: %s
    secret_key_file: %s
`, f.VCD.URL(), write("vcd-password", "alice-password"), // vcdtest's default user alice@acme
		f.Astra.URL(), f.Astra.AccountID(), f.Astra.UserID(),
		f.Commvault.URL(), commvaulttest.DefaultUser, write("commvault-password", commvaulttest.DefaultPassword),
		f.Huawei.URL(), f.Huawei.SCIMURL(), f.Huawei.IdentityStoreID(),
		write("huawei-access-key", f.Huawei.AccessKey()), write("huawei-secret-key", f.Huawei.SecretKey()))
	renewableFor := "\n    renewable_for: " + o.RenewableFor.String()
	lifetime := "\n    lifetime: " + o.Lifetime.String()
	if o.VendorLifetimes {
		renewableFor, lifetime = "", ""
	}
	f.Tokens = []TokenSpec{
		{"vcd-access-token", "vcd", "access_token", "bootstrap_file: " + write("vcd-api-token", f.VCD.IssueBootstrap())},
		{"vcd-api-token", "vcd", "api_token", ""},
		{"vcd-proxy-token", "vcd", "proxy_token", ""},
		{"astra-api-token", "astra", "api_token", "bootstrap_file: " + write("astra-token", f.Astra.IssueBootstrap())},
		{"commvault-all", "commvault", "access_token", "token_type: ALL" + renewableFor},
		{"commvault-ms-scim", "commvault", "access_token", "token_type: MS_SCIM" + lifetime},
		{"commvault-onetouch", "commvault", "access_token", "token_type: OneTouch" + lifetime},
		{"huawei-scim-token", "huawei", "scim_token", "tenant_id: " + f.Huawei.TenantID()},
	}
	return f, werr
}

// YAML returns the providers: and tokens: sections of a config for the fleet, every token delivered to a
// raw file named after it in sinkDir.
func (f *Fleet) YAML(sinkDir string) string {
	var b strings.Builder
	b.WriteString(f.providers)
	b.WriteString("tokens:\n")
	for _, t := range f.Tokens {
		fmt.Fprintf(&b, "  - name: %s\n    provider: %s\n    kind: %s\n", t.Name, t.Provider, t.Kind)
		if t.Extra != "" {
			fmt.Fprintf(&b, "    %s\n", t.Extra)
		}
		fmt.Fprintf(&b, "    deliver:\n      - file: {path: %s}\n", filepath.Join(sinkDir, t.Name))
	}
	return b.String()
}

// SetFaults sets the same random faults at every fake, each drawing from its own seed (p.Seed, +1, +2, +3);
// the zero Profile turns them off.
func (f *Fleet) SetFaults(p faults.Profile) {
	for i, set := range []func(faults.Profile){f.VCD.SetFaults, f.Astra.SetFaults, f.Commvault.SetFaults, f.Huawei.SetFaults} {
		q := p
		q.Seed += int64(i)
		set(q)
	}
}

// LiveIDs lists the ids of the tokens that exist at each fake, keyed by provider name.
func (f *Fleet) LiveIDs() map[string][]string {
	out := map[string][]string{}
	for _, t := range f.VCD.Tokens() {
		out["vcd"] = append(out["vcd"], t.ID)
	}
	for _, t := range f.Astra.Tokens() {
		out["astra"] = append(out["astra"], t.ID)
	}
	for _, t := range f.Commvault.Tokens() {
		out["commvault"] = append(out["commvault"], t.ID)
	}
	for _, t := range f.Huawei.Tokens() {
		out["huawei"] = append(out["huawei"], t.ID)
	}
	return out
}

// Close stops the fakes.
func (f *Fleet) Close() {
	f.VCD.Close()
	f.Astra.Close()
	f.Commvault.Close()
	f.Huawei.Close()
}
