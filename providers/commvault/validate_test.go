package commvault_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers/commvault"
)

func TestValidate(t *testing.T) {
	good := config.Provider{Name: "commvault", Type: "commvault", Index: 2, URL: "https://cv.example.com/commandcenter/api",
		Username: "svc-rotator", PasswordFile: "/run/credentials/tokend.service/commvault-password"}
	tok := func(name, typ string, mod func(*config.Token)) config.Token {
		t := config.Token{Name: name, Index: 5, Provider: "commvault", Kind: "access_token", TokenType: typ}
		if mod != nil {
			mod(&t)
		}
		return t
	}
	tests := []struct {
		name   string
		prov   func(*config.Provider)
		tokens []config.Token
		want   []string // each error must start with one of these, in order
	}{
		{name: "the example config", tokens: []config.Token{
			tok("commvault-api", "ALL", func(t *config.Token) { t.RenewableFor = dur(90 * 24 * time.Hour) }),
			tok("commvault-scim", "MS_SCIM", func(t *config.Token) { t.Lifetime = dur(30 * 24 * time.Hour) }),
			tok("commvault-custom", "CUSTOM", func(t *config.Token) { t.APIEndpoints = []string{"/client", "/v4/servergroup"} }),
			tok("commvault-1touch", "OneTouch", nil),
			tok("commvault-default", "", nil),
		}},
		{name: "missing login", prov: func(p *config.Provider) { p.Username, p.PasswordFile = "", "" }, want: []string{
			"providers[2] (commvault).username: required",
			"providers[2] (commvault).password_file: required",
		}},
		{name: "keys of other vendors", prov: func(p *config.Provider) { p.Org, p.SCIMURL = "acme", "https://x" }, want: []string{
			"providers[2] (commvault).org: not used",
			"providers[2] (commvault).scim_url: not used",
		}},
		{name: "CUSTOM without api_endpoints", tokens: []config.Token{tok("c", "CUSTOM", nil)},
			want: []string{"tokens[5] (c).api_endpoints: required"}},
		{name: "api_endpoints on ALL", tokens: []config.Token{tok("a", "ALL", func(t *config.Token) { t.APIEndpoints = []string{"/client"} })},
			want: []string{"tokens[5] (a).api_endpoints: only a CUSTOM"}},
		{name: "endpoint not a path", tokens: []config.Token{tok("c", "CUSTOM", func(t *config.Token) { t.APIEndpoints = []string{"client"} })},
			want: []string{"tokens[5] (c).api_endpoints[0]:"}},
		{name: "unknown type", tokens: []config.Token{tok("x", "SCIM", nil)}, want: []string{"tokens[5] (x).token_type: unknown"}},
		{name: "wrong kind", tokens: []config.Token{tok("x", "ALL", func(t *config.Token) { t.Kind = "api_token" })},
			want: []string{"tokens[5] (x).kind:"}},
		{name: "renewable_for on a recreate-only type", tokens: []config.Token{tok("s", "MS_SCIM", func(t *config.Token) { t.RenewableFor = dur(time.Hour) })},
			want: []string{"tokens[5] (s).renewable_for: MS_SCIM tokens cannot be renewed"}},
		{name: "lifetime on a renewable type", tokens: []config.Token{tok("a", "CUSTOM", func(t *config.Token) {
			t.Lifetime = dur(time.Hour)
			t.APIEndpoints = []string{"/client"}
		})}, want: []string{"tokens[5] (a).lifetime: not used by CUSTOM"}},
		{name: "empty kind is left to the config package", tokens: []config.Token{tok("a", "ALL", func(t *config.Token) { t.Kind = "" })}},
		{name: "bootstrap_file", tokens: []config.Token{tok("a", "ALL", func(t *config.Token) { t.BootstrapFile = "/x" })},
			want: []string{"tokens[5] (a).bootstrap_file: not used"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			if tt.prov != nil {
				tt.prov(&p)
			}
			errs := commvault.Validate(p, tt.tokens)
			if len(errs) != len(tt.want) {
				t.Fatalf("Validate() = %v, want %d errors %q", errs, len(tt.want), tt.want)
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tt.want[i]) {
					t.Errorf("Validate()[%d] = %q, want prefix %q", i, err, tt.want[i])
				}
			}
		})
	}
}

func TestNewReadsPasswordFile(t *testing.T) {
	p := config.Provider{Name: "cv", URL: "https://cv.example.com/commandcenter/api", Username: "u",
		PasswordFile: config.SecretRef(t.TempDir() + "/missing")}
	if _, err := commvault.New(p, providersOptions()); err == nil || !strings.HasPrefix(err.Error(), "providers[0] (cv).password_file:") {
		t.Errorf("New() with a missing password file: err = %v", err)
	}
}
