// Package astra manages NetApp Astra Control API tokens (provider type "astra", token kind "api_token").
//
// Astra tokens never expire and cannot be renewed, and the API has no login: every request is made with a
// token itself ("Authorization: Bearer <token>"). The first token is made by hand in the Astra UI and read
// from the token's bootstrap_file; from then on tokend rotates by recreating once max_age is reached:
// create a new token with the current one, verify it with a GET made with only the new token, deliver it,
// and delete the old one with the new one after revoke_after. See api/astra.md beside DESIGN.md.
//
// Choices where the vendor's documentation is silent, and why:
//
//   - Deleted or bad credential. Inspect reads the token by id with the token's own secret. A 401 whose
//     problem type is /problems/4 ("invalid, revoked or unknown bearer token") is reported as Gone: the
//     secret was proven to work when tokend got it (Verify, Bootstrap), Astra tokens never expire, and the
//     only documented way such a secret stops working is the deletion of its Token resource. Anything that
//     cannot be a deletion stays an Unauthorized error: a 401 without an Astra problem body (a proxy), a
//     401 /problems/3 (the bearer did not arrive), any 403 (/problems/11: the token exists but may not read
//     itself). A secret that never worked fails at Bootstrap or Verify as Unauthorized, never as Gone.
//   - Which token the bootstrap secret is. The API has no "who am I": Bootstrap lists the user's tokens
//     with the secret, then picks its own token by the best evidence there is: the secret's own claims
//     (read as a JWT, verbatim or base64-decoded; jti or tokenID) naming a listed id; failing that, the
//     only listed token whose name does not start with "tokend-". When neither is conclusive it refuses,
//     because tokend must never later revoke a token it was not given.
//   - Bearer form. The secret is sent verbatim, as users send the string copied from the UI; Verify
//     proves the form works before a new token is delivered.
//   - Revoke deletes the old token authenticating with the current one (a token deleting itself is
//     unconfirmed), falling back to the old token's own secret only when there is no current one.
package astra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
)

// KindAPIToken is the only token kind of the astra provider type.
const KindAPIToken = "api_token"

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// maxTokenNameLen is the longest configured token name whose vendor-side name,
// "tokend-<name>-g<generation>" with a generation of up to 9 digits, fits Astra's 63 characters.
const maxTokenNameLen = maxNameLen - len("tokend-") - len("-g") - 9

// Validate checks the astra-specific keys of provider p and its tokens. Each error starts with the key
// path. It reads no files.
func Validate(p config.Provider, tokens []config.Token) []error {
	var errs []error
	pp := fmt.Sprintf("providers[%d] (%s)", p.Index, p.Name)
	add := func(prefix, key, msg string) { errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, msg)) }

	switch {
	case p.URL == "":
		add(pp, "url", "required (https://astra.netapp.io or the Astra Control Center address)")
	default:
		u, err := url.Parse(p.URL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			add(pp, "url", "must be an absolute http(s) URL")
		case strings.Contains(u.Path, "/accounts/"):
			add(pp, "url", "must be the server address only; tokend adds /accounts/{account_id}/...")
		case u.RawQuery != "" || u.Fragment != "":
			add(pp, "url", "must not have a query or fragment")
		}
	}
	for _, k := range []struct{ key, val string }{{"account_id", p.AccountID}, {"user_id", p.UserID}} {
		switch {
		case k.val == "":
			add(pp, k.key, "required (a UUID shown on the Astra UI's API access page)")
		case !uuidRE.MatchString(k.val):
			add(pp, k.key, "must be a UUID")
		}
	}
	for _, k := range []struct {
		key string
		set bool
	}{
		{"username", p.Username != ""}, {"password_file", p.PasswordFile.IsSet()}, {"org", p.Org != ""},
		{"api_version", p.APIVersion != ""}, {"scim_url", p.SCIMURL != ""},
		{"identity_store_id", p.IdentityStoreID != ""}, {"access_key_file", p.AccessKeyFile.IsSet()},
		{"secret_key_file", p.SecretKeyFile.IsSet()},
	} {
		if k.set {
			add(pp, k.key, "not used by astra providers (Astra authenticates with the managed token itself)")
		}
	}
	errs = append(errs, neverExpires(pp, p.Policy)...)

	for _, t := range tokens {
		tp := fmt.Sprintf("tokens[%d] (%s)", t.Index, t.Name)
		switch t.Kind {
		case KindAPIToken:
		case "":
			add(tp, "kind", "required (astra: api_token)")
		default:
			add(tp, "kind", fmt.Sprintf("unknown kind %q for astra (want api_token)", t.Kind))
		}
		if !t.BootstrapFile.IsSet() {
			add(tp, "bootstrap_file", "required: the first Astra token is made by hand in the Astra UI (API access, Generate API token)")
		}
		if len(t.Name) > maxTokenNameLen {
			add(tp, "name", fmt.Sprintf("at most %d characters for astra (the vendor-side name tokend-<name>-g<generation> must fit %d)", maxTokenNameLen, maxNameLen))
		}
		for _, k := range []struct {
			key string
			set bool
		}{
			{"token_type", t.TokenType != ""}, {"renewable_for", t.RenewableFor != nil},
			{"api_endpoints", len(t.APIEndpoints) > 0}, {"tenant_id", t.TenantID != ""},
		} {
			if k.set {
				add(tp, k.key, "not used by astra tokens")
			}
		}
		if t.Lifetime != nil {
			add(tp, "lifetime", "astra tokens never expire and take no lifetime; use max_age")
		}
		errs = append(errs, neverExpires(tp, t.Policy)...)
	}
	return errs
}

// neverExpires reports policy keys that only apply to tokens with a vendor expiry.
func neverExpires(prefix string, p config.Policy) []error {
	var errs []error
	if p.RenewBefore != nil {
		errs = append(errs, fmt.Errorf("%s.renew_before: astra tokens never expire; use max_age", prefix))
	}
	if p.RecreateBefore != nil {
		errs = append(errs, fmt.Errorf("%s.recreate_before: astra tokens cannot be renewed; use max_age", prefix))
	}
	return errs
}

// Account is one Astra account and user, as configured. It holds no credential of its own: every request
// authenticates with a managed token. It is safe for concurrent use.
type Account struct {
	name       string
	collection *url.URL // .../accounts/{account_id}/core/v1/users/{user_id}/tokens
	userID     string
	http       *http.Client
	now        func() time.Time
}

// New builds the account from p. It does no network I/O and reads no files (Astra has no account-level
// secret). opts.HTTP nil means a client with a 30 s timeout.
func New(p config.Provider, opts providers.Options) (*Account, error) {
	u, err := url.Parse(strings.TrimRight(p.URL, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("building astra provider %s: invalid url", p.Name)
	}
	if !uuidRE.MatchString(p.AccountID) || !uuidRE.MatchString(p.UserID) {
		return nil, fmt.Errorf("building astra provider %s: account_id and user_id must be UUIDs", p.Name)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	u = u.JoinPath("accounts", p.AccountID, "core", "v1", "users", p.UserID, "tokens")
	hc := opts.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Account{name: p.Name, collection: u, userID: p.UserID, http: hc, now: opts.Clock()}, nil
}

// Token returns the provider for configured token t. Only kind api_token exists; the result implements
// providers.Provider, Verifier, Bootstrapper and OrphanFinder (not Renewer).
func (a *Account) Token(t config.Token) (providers.Provider, error) {
	if t.Kind != KindAPIToken {
		return nil, fmt.Errorf("token %s: astra has no kind %q (want api_token)", t.Name, t.Kind)
	}
	return &APIToken{a: a, name: t.Name}, nil
}

// Check tells whether the configured server answers as an Astra API, which is as far as it can be told
// without a token: Astra has no login, and the only credentials are the managed
// tokens themselves, whose current values live in tokend's state (the bootstrap file is stale once tokend
// has rotated). It sends an unauthenticated GET of the user's token collection and expects Astra's
// "missing bearer token" problem (401, /problems/3). The tokens' own credentials are proven by Bootstrap,
// Verify and every poll.
func (a *Account) Check(ctx context.Context) error {
	ctx = providers.WithOperation(ctx, "login")
	q := url.Values{"limit": {"1"}}
	u := *a.collection
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("checking astra %s: %w", a.name, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("checking astra %s: GET %s: %w", a.name, a.collection.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	p, ok := decodeProblem(body)
	if resp.StatusCode == http.StatusUnauthorized && ok && p.code() == "problems/3" {
		return nil
	}
	ae := apiError("GET "+a.collection.Path, resp, body, providers.Secret{})
	if resp.StatusCode < 300 {
		ae = &providers.APIError{Op: ae.Op, Status: resp.StatusCode, Class: providers.Permanent,
			Message: "answered without a bearer token: not an Astra API"}
	} else if resp.StatusCode == http.StatusUnauthorized {
		ae.Class = providers.Permanent
		ae.Message = strings.TrimSpace("not Astra's missing-bearer problem " + ae.Message)
	}
	return fmt.Errorf("checking astra %s: %w", a.name, ae)
}

var errNoCredential = errors.New("no token to authenticate with: astra authenticates with the managed token itself")
