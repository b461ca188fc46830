package huaweiidc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
)

// exampleYAML is the huawei part of spec/tokend.example.yaml.
const exampleYAML = `
providers:
  - name: huawei
    type: huawei-idc
    url: https://identitystore.ap-southeast-1.myhuaweicloud.com
    scim_url: https://scim.ap-southeast-1.myhuaweicloud.com   # used to verify a new token
    identity_store_id: d-1234567890
    access_key_file: /run/credentials/tokend.service/huawei-ak
    secret_key_file: /run/credentials/tokend.service/huawei-sk
tokens:
  - name: huawei-scim
    provider: huawei
    kind: scim_token
    tenant_id: 8f2c6a4e-1b3d-4f5a-9c7e-0d2b4a6c8e1f
    renew_before: 30d
    deliver:
      - exec: {command: ["/usr/local/bin/push-scim-token-to-idp"], timeout: 60s}
`

func decodeConfig(t *testing.T, src string) config.Config {
	t.Helper()
	var c config.Config
	d := yaml.NewDecoder(strings.NewReader(src))
	d.KnownFields(true)
	if err := d.Decode(&c); err != nil {
		t.Fatalf("decoding config: %v", err)
	}
	for i := range c.Providers {
		c.Providers[i].Index = i
	}
	for i := range c.Tokens {
		c.Tokens[i].Index = i
	}
	return c
}

func TestValidateExample(t *testing.T) {
	srcs := map[string]string{"embedded": exampleYAML}
	// The shared example, when this tree sits beside it (the embedded copy above is what always runs).
	if b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "spec", "tokend.example.yaml")); err == nil {
		srcs["shared"] = string(b)
	}
	for name, src := range srcs {
		c := decodeConfig(t, src)
		n := 0
		for _, p := range c.Providers {
			if p.Type != Type {
				continue
			}
			var toks []config.Token
			for _, tk := range c.Tokens {
				if tk.Provider == p.Name {
					toks = append(toks, tk)
				}
			}
			n += len(toks)
			if errs := Validate(p, toks); len(errs) != 0 {
				t.Errorf("%s: Validate(example) = %v, want none", name, errs)
			}
		}
		if n == 0 {
			t.Errorf("%s: no huawei-idc token in the example", name)
		}
	}
}

func TestValidate(t *testing.T) {
	good := func() (config.Provider, []config.Token) {
		c := decodeConfig(t, exampleYAML)
		return c.Providers[0], c.Tokens
	}
	d := config.Duration(0)
	tests := []struct {
		name   string
		change func(p *config.Provider, ts *[]config.Token)
		want   []string // each an exact error message
	}{
		{"missing provider keys", func(p *config.Provider, _ *[]config.Token) {
			p.URL, p.SCIMURL, p.IdentityStoreID, p.AccessKeyFile, p.SecretKeyFile = "", "", "", "", ""
		}, []string{
			"providers[0] (huawei).access_key_file: required (the AK of the AK/SK pair that signs requests)",
			"providers[0] (huawei).identity_store_id: required",
			"providers[0] (huawei).scim_url: required",
			"providers[0] (huawei).secret_key_file: required (the SK of the AK/SK pair that signs requests)",
			"providers[0] (huawei).url: required",
		}},
		{"plain http scim_url off loopback", func(p *config.Provider, _ *[]config.Token) {
			p.SCIMURL = "http://scim.example.com"
		}, []string{`providers[0] (huawei).scim_url: "http://scim.example.com": plain http is allowed only to loopback addresses`}},
		{"http to loopback is fine", func(p *config.Provider, _ *[]config.Token) {
			p.SCIMURL, p.URL = "http://127.0.0.1:8080", "http://localhost:9"
		}, nil},
		{"identity store id with a slash", func(p *config.Provider, _ *[]config.Token) {
			p.IdentityStoreID = "d-1/../x"
		}, []string{`providers[0] (huawei).identity_store_id: "d-1/../x": only letters, digits, '-', '_' and '.' allowed`}},
		{"keys of other vendors", func(p *config.Provider, _ *[]config.Token) {
			p.Username, p.PasswordFile = "admin", "/x"
		}, []string{
			"providers[0] (huawei).password_file: not used by huawei-idc (requests are signed with access_key_file/secret_key_file)",
			"providers[0] (huawei).username: not used by huawei-idc (requests are signed with access_key_file/secret_key_file)",
		}},
		{"tenant_id required", func(_ *config.Provider, ts *[]config.Token) {
			(*ts)[0].TenantID = ""
		}, []string{"tokens[0] (huawei-scim).tenant_id: required"}},
		{"wrong kind", func(_ *config.Provider, ts *[]config.Token) {
			(*ts)[0].Kind = "api_token"
		}, []string{`tokens[0] (huawei-scim).kind: "api_token" is not a huawei-idc kind (want scim_token)`}},
		{"token keys that make no sense", func(_ *config.Provider, ts *[]config.Token) {
			tk := &(*ts)[0]
			tk.BootstrapFile, tk.Lifetime, tk.MaxAge, tk.TokenType = "/x", &d, &d, "ALL"
		}, []string{
			"tokens[0] (huawei-scim).bootstrap_file: not used by scim_token: tokend creates the first token itself (a token's id cannot be looked up from its value)",
			"tokens[0] (huawei-scim).token_type: not used by huawei-idc",
			"tokens[0] (huawei-scim).lifetime: not supported by huawei-idc (the vendor fixes the lifetime at 365 days)",
			"tokens[0] (huawei-scim).max_age: not used by scim_token: its tokens expire; use renew_before",
		}},
		{"two tokens on one tenant", func(_ *config.Provider, ts *[]config.Token) {
			second := (*ts)[0]
			second.Name, second.Index = "huawei-scim-2", 7
			*ts = append(*ts, second)
		}, []string{"tokens[7] (huawei-scim-2).tenant_id: tenant 8f2c6a4e-1b3d-4f5a-9c7e-0d2b4a6c8e1f is already managed by tokens[0] (huawei-scim); its cap of 2 tokens leaves room for one managed token per tenant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ts := good()
			tt.change(&p, &ts)
			errs := Validate(p, ts)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Validate() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestNewAndToken(t *testing.T) {
	dir := t.TempDir()
	ak := filepath.Join(dir, "ak")
	if err := os.WriteFile(ak, []byte("AKVALUE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := config.Provider{Name: "huawei", Type: Type, URL: "https://identitystore.example.com", SCIMURL: "https://scim.example.com",
		IdentityStoreID: "d-1", AccessKeyFile: config.SecretRef(ak), SecretKeyFile: config.SecretRef(filepath.Join(dir, "missing"))}
	_, err := New(p, providers.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "providers[0] (huawei).secret_key_file: ") {
		t.Fatalf("New() with a missing SK file = %v, want an error naming secret_key_file", err)
	}
	t.Setenv("TOKEND_TEST_HUAWEI_SK", "the-sk-value")
	p.SecretKeyFile = "env:TOKEND_TEST_HUAWEI_SK"
	a, err := New(p, providers.Options{})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	if a.ak.Reveal() != "AKVALUE" || a.sk.Reveal() != "the-sk-value" {
		t.Errorf("keys not read as configured (trailing newline must be dropped)")
	}
	if _, err := a.Token(config.Token{Name: "x", Kind: "api_token", TenantID: "t"}); err == nil {
		t.Errorf("Token(kind api_token) = nil error")
	}
	if _, err := a.Token(config.Token{Name: "x", Kind: KindSCIMToken}); err == nil {
		t.Errorf("Token(no tenant_id) = nil error")
	}
	pr, err := a.Token(config.Token{Name: "x", Kind: KindSCIMToken, TenantID: "t-1"})
	if err != nil {
		t.Fatalf("Token() = %v", err)
	}
	if _, ok := pr.(providers.Verifier); !ok {
		t.Errorf("provider does not implement Verifier")
	}
	if _, ok := pr.(providers.OrphanFinder); !ok {
		t.Errorf("provider does not implement OrphanFinder")
	}
	p.SCIMURL = ""
	if _, err := New(p, providers.Options{}); err == nil {
		t.Errorf("New() without scim_url = nil error")
	}
}
