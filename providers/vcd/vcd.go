// Package vcd keeps VMware Cloud Director credentials alive: bearer access tokens minted from a user's API
// token (kind access_token), the API tokens themselves (api_token) and proxy tokens (proxy_token).
//
// A password session (POST /cloudapi/1.0.0/sessions, or /sessions/provider for the System org) is the only
// session that may create, list or revoke tokens; sessions made from an API token may not. Every CloudAPI
// request carries the configured API version in Accept. Tokens of one Account share its password session.
package vcd

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
)

// Token kinds of the vcd provider type.
const (
	KindAccessToken = "access_token"
	KindAPIToken    = "api_token"
	KindProxyToken  = "proxy_token"
)

// DefaultAPIVersion is the API version sent when the provider sets no api_version (VCD 10.6).
const DefaultAPIVersion = "39.0"

var versionRe = regexp.MustCompile(`^[0-9]{2}\.[0-9]{1,2}$`)

// Validate checks the vcd-specific keys of provider p and its tokens. It reads no secret file.
func Validate(p config.Provider, tokens []config.Token) []error {
	var errs []error
	pp := fmt.Sprintf("providers[%d] (%s)", p.Index, p.Name)
	if strings.TrimSpace(p.Org) == "" {
		errs = append(errs, fmt.Errorf("%s.org: required (the organization name, or System for provider users)", pp))
	} else if strings.ContainsAny(p.Org, "/?#@: ") {
		errs = append(errs, fmt.Errorf("%s.org: must be an organization name, not %q", pp, p.Org))
	}
	if p.APIVersion != "" && !versionRe.MatchString(p.APIVersion) {
		errs = append(errs, fmt.Errorf("%s.api_version: %q is not an API version such as 39.0", pp, p.APIVersion))
	}
	hasUser, hasPass := p.Username != "", p.PasswordFile.IsSet()
	if hasUser != hasPass {
		errs = append(errs, fmt.Errorf("%s: username and password_file go together", pp))
	}
	if strings.ContainsAny(p.Username, "@:") {
		errs = append(errs, fmt.Errorf("%s.username: give the user name without @org (org is its own key)", pp))
	}
	for _, k := range []struct {
		set bool
		key string
	}{
		{p.AccountID != "", "account_id"}, {p.UserID != "", "user_id"}, {p.SCIMURL != "", "scim_url"},
		{p.IdentityStoreID != "", "identity_store_id"}, {p.AccessKeyFile.IsSet(), "access_key_file"},
		{p.SecretKeyFile.IsSet(), "secret_key_file"},
	} {
		if k.set {
			errs = append(errs, fmt.Errorf("%s.%s: not used by vcd providers", pp, k.key))
		}
	}
	login := hasUser && hasPass
	for _, t := range tokens {
		tp := fmt.Sprintf("tokens[%d] (%s)", t.Index, t.Name)
		switch t.Kind {
		case KindAccessToken:
			if !t.BootstrapFile.IsSet() && !login {
				errs = append(errs, fmt.Errorf("%s.bootstrap_file: required for kind access_token when provider %s has no username and password_file", tp, p.Name))
			}
		case KindAPIToken:
			if !login {
				errs = append(errs, fmt.Errorf("%s: kind api_token needs a password session: set username and password_file on provider %s", tp, p.Name))
			}
		case KindProxyToken:
			if !login {
				errs = append(errs, fmt.Errorf("%s: kind proxy_token needs a password session: set username and password_file on provider %s", tp, p.Name))
			}
			if t.BootstrapFile.IsSet() {
				errs = append(errs, fmt.Errorf("%s.bootstrap_file: not allowed for kind proxy_token (tokend creates proxy tokens itself)", tp))
			}
		case "":
			errs = append(errs, fmt.Errorf("%s.kind: required (access_token, api_token or proxy_token)", tp))
		default:
			errs = append(errs, fmt.Errorf("%s.kind: %q is not a vcd kind (access_token, api_token or proxy_token)", tp, t.Kind))
		}
		for _, k := range []struct {
			set bool
			key string
		}{
			{t.TokenType != "", "token_type"}, {t.RenewableFor != nil, "renewable_for"},
			{len(t.APIEndpoints) > 0, "api_endpoints"}, {t.Lifetime != nil, "lifetime"}, {t.TenantID != "", "tenant_id"},
		} {
			if k.set {
				errs = append(errs, fmt.Errorf("%s.%s: not used by vcd tokens", tp, k.key))
			}
		}
	}
	return errs
}

// Account is one VCD login (URL, org, user). It is safe for concurrent use; the tokens it hands out share
// its password session.
type Account struct {
	name     string
	base     string // scheme://host[/prefix], no trailing slash
	org      string
	system   bool
	version  string
	username string
	password providers.Secret
	hasLogin bool
	http     *http.Client
	now      func() time.Time
	log      *slog.Logger

	mu      sync.Mutex
	sess    providers.Secret // cached password session JWT
	sessExp time.Time        // drop it after this
}

// New builds the account from p: it reads the password file (when set) and does no network I/O.
func New(p config.Provider, opts providers.Options) (*Account, error) {
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("provider %s: url: must be an http(s) URL", p.Name)
	}
	if p.Org == "" {
		return nil, fmt.Errorf("provider %s: org: required", p.Name)
	}
	a := &Account{
		name:     p.Name,
		base:     strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"),
		org:      p.Org,
		system:   strings.EqualFold(p.Org, "system"),
		version:  p.APIVersion,
		username: p.Username,
		http:     opts.HTTP,
		now:      opts.Clock(),
		log:      opts.Logger,
	}
	if a.version == "" {
		a.version = DefaultAPIVersion
	}
	if a.http == nil {
		a.http = http.DefaultClient
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if p.Username != "" && p.PasswordFile.IsSet() {
		pw, err := p.PasswordFile.Read()
		if err != nil {
			return nil, fmt.Errorf("provider %s: password_file: %w", p.Name, err)
		}
		a.password, a.hasLogin = pw, true
	}
	return a, nil
}

// Token returns the provider for one configured token of this account; t.Kind picks the behaviour:
//   - access_token: Renewer, Verifier, Bootstrapper, OrphanFinder. Secret is a bearer JWT, Refresh the API
//     token behind it, ID that API token's id.
//   - api_token: Verifier, Bootstrapper, OrphanFinder. Secret is the API token; it never expires.
//   - proxy_token: OrphanFinder. Secret is the proxy token; recreate only.
func (a *Account) Token(t config.Token) (providers.Provider, error) {
	switch t.Kind {
	case KindAccessToken:
		return &accessToken{a: a}, nil
	case KindAPIToken:
		return &apiToken{a: a}, nil
	case KindProxyToken:
		return &proxyToken{a: a}, nil
	}
	return nil, fmt.Errorf("token %s: kind %q is not a vcd kind", t.Name, t.Kind)
}

// Check logs in with the configured username and password (a fresh session). An account without a login
// (access tokens from a bootstrap file only) checks that the API answers GET /api/versions.
func (a *Account) Check(ctx context.Context) error {
	if a.hasLogin {
		_, err := a.login(ctx)
		return err
	}
	_, err := a.do(providers.WithOperation(ctx, "login"), call{method: http.MethodGet, path: "/api/versions", accept: "application/*+xml;version=" + a.version})
	if err != nil {
		return fmt.Errorf("checking %s: %w", a.name, err)
	}
	return nil
}
