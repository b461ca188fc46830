package astra

import (
	"strings"
	"testing"

	"github.com/tokend/tokend/config"
)

func TestValidate(t *testing.T) {
	d := config.Duration(0)
	w := config.Window{Dur: 1}
	goodP := config.Provider{Name: "astra", Type: "astra", URL: "https://astra.netapp.io",
		AccountID: "9a3b51a2-5a63-4e0b-9f43-2d0c0e2f6a10", UserID: "6f3c2d1e-8b7a-4c5d-9e0f-1a2b3c4d5e6f", Index: 1}
	goodT := config.Token{Name: "astra-backup", Provider: "astra", Kind: "api_token",
		BootstrapFile: "/run/credentials/tokend.service/astra-token", Index: 2}
	for _, tt := range []struct {
		name string
		p    func(*config.Provider)
		t    func(*config.Token)
		want []string // each error must start with one of these, in order
	}{
		{name: "the example config is valid"},
		{name: "missing ids", p: func(p *config.Provider) { p.AccountID, p.UserID = "", "" },
			want: []string{"providers[1] (astra).account_id: required", "providers[1] (astra).user_id: required"}},
		{name: "ids that are not uuids", p: func(p *config.Provider) { p.UserID = "bob" },
			want: []string{"providers[1] (astra).user_id: must be a UUID"}},
		{name: "missing url", p: func(p *config.Provider) { p.URL = "" }, want: []string{"providers[1] (astra).url: required"}},
		{name: "url with the api path", p: func(p *config.Provider) { p.URL = "https://astra.netapp.io/accounts/x/core/v1" },
			want: []string{"providers[1] (astra).url: must be the server address only"}},
		{name: "url that is not one", p: func(p *config.Provider) { p.URL = "astra.netapp.io" },
			want: []string{"providers[1] (astra).url: must be an absolute"}},
		{name: "keys of other vendors", p: func(p *config.Provider) { p.Username, p.PasswordFile, p.SCIMURL = "u", "/x", "https://s" },
			want: []string{"providers[1] (astra).username: not used", "providers[1] (astra).password_file: not used", "providers[1] (astra).scim_url: not used"}},
		{name: "provider renew_before", p: func(p *config.Provider) { p.RenewBefore = &w },
			want: []string{"providers[1] (astra).renew_before: astra tokens never expire"}},
		{name: "unknown kind", t: func(t *config.Token) { t.Kind = "proxy_token" },
			want: []string{`tokens[2] (astra-backup).kind: unknown kind "proxy_token"`}},
		{name: "missing kind", t: func(t *config.Token) { t.Kind = "" }, want: []string{"tokens[2] (astra-backup).kind: required"}},
		{name: "missing bootstrap_file", t: func(t *config.Token) { t.BootstrapFile = "" },
			want: []string{"tokens[2] (astra-backup).bootstrap_file: required"}},
		{name: "token keys of other vendors", t: func(t *config.Token) { t.TokenType, t.TenantID, t.Lifetime = "ALL", "x", &d },
			want: []string{"tokens[2] (astra-backup).token_type: not used", "tokens[2] (astra-backup).tenant_id: not used",
				"tokens[2] (astra-backup).lifetime: astra tokens never expire"}},
		{name: "token recreate_before", t: func(t *config.Token) { t.RecreateBefore = &d },
			want: []string{"tokens[2] (astra-backup).recreate_before: astra tokens cannot be renewed"}},
		{name: "a name too long for the vendor-side name", t: func(t *config.Token) { t.Name = strings.Repeat("a", 46) },
			want: []string{"tokens[2] (" + strings.Repeat("a", 46) + ").name: at most 45"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, tok := goodP, goodT
			if tt.p != nil {
				tt.p(&p)
			}
			if tt.t != nil {
				tt.t(&tok)
			}
			errs := Validate(p, []config.Token{tok})
			if len(errs) != len(tt.want) {
				t.Fatalf("Validate() = %q, want %d errors %q", errs, len(tt.want), tt.want)
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tt.want[i]) {
					t.Errorf("Validate()[%d] = %q, want prefix %q", i, err, tt.want[i])
				}
			}
		})
	}
}
