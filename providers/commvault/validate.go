package commvault

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tokend/tokend/config"
)

// Validate checks the commvault-specific keys of provider p and of its tokens (only p's tokens are passed).
// Every error's message starts with the key path. It reads no file. Checks every vendor shares (url,
// an empty kind, positive durations) are the config package's and are not repeated here.
func Validate(p config.Provider, tokens []config.Token) []error {
	var errs []error
	pp := fmt.Sprintf("providers[%d] (%s)", p.Index, p.Name)
	add := func(path, key, msg string) { errs = append(errs, errors.New(path+"."+key+": "+msg)) }

	if p.Username == "" {
		add(pp, "username", "required: tokens are created and deleted through a login session")
	}
	if !p.PasswordFile.IsSet() {
		add(pp, "password_file", "required: tokens are created and deleted through a login session")
	}
	for _, k := range []struct {
		key string
		set bool
	}{
		{"org", p.Org != ""},
		{"api_version", p.APIVersion != ""},
		{"account_id", p.AccountID != ""},
		{"user_id", p.UserID != ""},
		{"scim_url", p.SCIMURL != ""},
		{"identity_store_id", p.IdentityStoreID != ""},
		{"access_key_file", p.AccessKeyFile.IsSet()},
		{"secret_key_file", p.SecretKeyFile.IsSet()},
	} {
		if k.set {
			add(pp, k.key, "not used by commvault providers")
		}
	}

	for _, t := range tokens {
		tp := fmt.Sprintf("tokens[%d] (%s)", t.Index, t.Name)
		if t.Kind != Kind && t.Kind != "" { // an empty kind is reported by the config package
			add(tp, "kind", fmt.Sprintf("commvault tokens are of kind %s, not %q", Kind, t.Kind))
		}
		typ, ok := parseTokenType(t.TokenType)
		if !ok {
			add(tp, "token_type", fmt.Sprintf("unknown type %q (ALL, CUSTOM, MS_SCIM or OneTouch)", t.TokenType))
		}
		if t.BootstrapFile.IsSet() {
			add(tp, "bootstrap_file", "not used by commvault tokens: tokend creates them through the login session")
		}
		if t.TenantID != "" {
			add(tp, "tenant_id", "not used by commvault tokens")
		}
		if !ok {
			continue
		}
		switch {
		case typ == typeCUSTOM && len(t.APIEndpoints) == 0:
			add(tp, "api_endpoints", "required for a CUSTOM token (the APIs it may call)")
		case typ != typeCUSTOM && len(t.APIEndpoints) > 0:
			add(tp, "api_endpoints", "only a CUSTOM token takes api_endpoints")
		}
		for i, e := range t.APIEndpoints {
			if !strings.HasPrefix(e, "/") || strings.ContainsAny(e, " \t\r\n") {
				add(tp, fmt.Sprintf("api_endpoints[%d]", i), fmt.Sprintf("%q must be an API path such as /client", e))
			}
		}
		if typ.renewable() {
			if t.Lifetime != nil {
				add(tp, "lifetime", fmt.Sprintf("not used by %s tokens (the vendor sets the access-token lifetime; renewable_for sets how long they can be renewed)", typ))
			}
		} else {
			if t.RenewableFor != nil {
				add(tp, "renewable_for", fmt.Sprintf("%s tokens cannot be renewed (use lifetime)", typ))
			}
		}
	}
	return errs
}
