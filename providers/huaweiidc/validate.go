package huaweiidc

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/tokend/tokend/config"
)

// Validate checks the huawei-idc keys of provider p and of its tokens (only p's tokens are passed). Each
// error's message starts with the key path ("providers[3] (huawei).scim_url: required",
// "tokens[5] (huawei-scim).tenant_id: required"). It does not read secret files. It returns nil when all is well.
func Validate(p config.Provider, tokens []config.Token) []error {
	var errs []error
	pp := providerPath(p)
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", pp, key, fmt.Sprintf(format, args...)))
	}
	if p.Type != "" && p.Type != Type {
		bad("type", "%q is not %s", p.Type, Type)
	}
	if err := checkURL(p.URL); err != nil {
		bad("url", "%v", err)
	}
	if err := checkURL(p.SCIMURL); err != nil {
		bad("scim_url", "%v", err)
	}
	if err := checkID(p.IdentityStoreID); err != nil {
		bad("identity_store_id", "%v", err)
	}
	if !p.AccessKeyFile.IsSet() {
		bad("access_key_file", "required (the AK of the AK/SK pair that signs requests)")
	}
	if !p.SecretKeyFile.IsSet() {
		bad("secret_key_file", "required (the SK of the AK/SK pair that signs requests)")
	}
	for key, set := range map[string]bool{
		"username":      p.Username != "",
		"password_file": p.PasswordFile.IsSet(),
		"org":           p.Org != "",
		"api_version":   p.APIVersion != "",
		"account_id":    p.AccountID != "",
		"user_id":       p.UserID != "",
	} {
		if set {
			bad(key, "not used by %s (requests are signed with access_key_file/secret_key_file)", Type)
		}
	}
	// Map iteration order is random; keep the report stable.
	sortErrors(errs)

	tenants := map[string]string{} // tenant id -> path of the token that manages it
	for _, t := range tokens {
		tp := tokenPath(t)
		tbad := func(key, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s.%s: %s", tp, key, fmt.Sprintf(format, args...)))
		}
		switch t.Kind {
		case KindSCIMToken:
		case "":
			tbad("kind", "required (%s has kind %s)", Type, KindSCIMToken)
		default:
			tbad("kind", "%q is not a %s kind (want %s)", t.Kind, Type, KindSCIMToken)
		}
		if err := checkID(t.TenantID); err != nil {
			tbad("tenant_id", "%v", err)
		} else if other, dup := tenants[t.TenantID]; dup {
			tbad("tenant_id", "tenant %s is already managed by %s; its cap of %d tokens leaves room for one managed token per tenant",
				t.TenantID, other, MaxTokensPerTenant)
		} else {
			tenants[t.TenantID] = tp
		}
		if t.BootstrapFile.IsSet() {
			tbad("bootstrap_file", "not used by %s: tokend creates the first token itself (a token's id cannot be looked up from its value)", KindSCIMToken)
		}
		if t.TokenType != "" {
			tbad("token_type", "not used by %s", Type)
		}
		if t.RenewableFor != nil {
			tbad("renewable_for", "not used by %s (tokens cannot be renewed)", Type)
		}
		if len(t.APIEndpoints) > 0 {
			tbad("api_endpoints", "not used by %s", Type)
		}
		if t.Lifetime != nil {
			tbad("lifetime", "not supported by %s (the vendor fixes the lifetime at 365 days)", Type)
		}
		if t.MaxAge != nil {
			tbad("max_age", "not used by %s: its tokens expire; use renew_before", KindSCIMToken)
		}
	}
	return errs
}

func sortErrors(errs []error) {
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
}

// checkURL accepts an absolute https URL, or http to a loopback address, without query or fragment.
func checkURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q: no query, fragment or user info allowed", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%q: plain http is allowed only to loopback addresses", s)
	}
	return fmt.Errorf("%q: scheme must be https", s)
}

// checkID accepts a vendor id that can go into a URL path segment as is.
func checkID(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if len(s) > 128 {
		return errors.New("too long")
	}
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) >= 0 || s == "." || s == ".." {
		return fmt.Errorf("%q: only letters, digits, '-', '_' and '.' allowed", s)
	}
	return nil
}
