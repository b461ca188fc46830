// Package commvault keeps Commvault Command Center V4 access tokens alive (provider type "commvault", token
// kind "access_token").
//
// The account logs in with POST /Login (base64 password) and sends the QSDK session in the Authtoken header
// for list, create and delete; a 401 on such a call means the session lapsed, so it logs in again once and
// retries the call once. Tokens of type ALL and CUSTOM are renewed in place with POST /V4/AccessToken/Renew
// and their current access+refresh pair; MS_SCIM and OneTouch tokens cannot be renewed and are recreated (their
// providers do not implement providers.Renewer). The access token is the secret delivered to sinks; the refresh
// token stays inside tokend (Token.Refresh). Commvault deletes a whole token when an older pair of its chain is
// presented again, so a pair is presented at most once: a renew whose answer was lost is ambiguous and the
// token is recreated.
//
// There is no get-by-id: Inspect and Orphans read GET /V4/AccessToken and filter it. All vendor times are
// epoch seconds.
package commvault

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
)

// Kind is the only token kind of this vendor.
const Kind = "access_token"

// tokenType values as tokend names them (the config's token_type).
const (
	typeALL        tokenType = "ALL"
	typeCUSTOM     tokenType = "CUSTOM"
	typeMSSCIM     tokenType = "MS_SCIM"
	typeOneTouch   tokenType = "OneTouch"
	typeHyperscale tokenType = "Hyperscale"
)

// parseTokenType reads a config token_type; empty is the vendor's default, ALL.
func parseTokenType(s string) (tokenType, bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "ALL", "DEFAULT":
		return typeALL, true
	case "CUSTOM":
		return typeCUSTOM, true
	case "MS_SCIM":
		return typeMSSCIM, true
	case "ONETOUCH":
		return typeOneTouch, true
	}
	return "", false
}

// renewable reports whether tokens of type t come with a refresh token.
func (t tokenType) renewable() bool { return t == typeALL || t == typeCUSTOM || t == typeHyperscale }

// wire is the create call's integer for t (cvpysdk's values); ALL is sent as no value at all.
func (t tokenType) wire() int {
	switch t {
	case typeMSSCIM:
		return 1
	case typeCUSTOM:
		return 3
	case typeOneTouch:
		return 4
	}
	return 0
}

// New builds the account from its config entry: it reads the password file and makes no request.
// opts.HTTP carries every request (nil: a client with a 30 s timeout).
func New(p config.Provider, opts providers.Options) (*Account, error) {
	path := fmt.Sprintf("providers[%d] (%s)", p.Index, p.Name)
	u, err := url.Parse(strings.TrimSpace(p.URL))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%s.url: must be an http(s) URL such as https://host/commandcenter/api", path)
	}
	if p.Username == "" {
		return nil, fmt.Errorf("%s.username: required", path)
	}
	pw, err := p.PasswordFile.Read()
	if err != nil {
		return nil, fmt.Errorf("%s.password_file: %w", path, err)
	}
	hc := opts.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Account{
		name:     p.Name,
		base:     strings.TrimRight(u.String(), "/"),
		user:     p.Username,
		password: pw,
		http:     hc,
		log:      log,
		now:      opts.Clock(),
		loginSem: make(chan struct{}, 1),
	}, nil
}

// Token returns the provider for one configured token of this account. ALL tokens implement
// providers.Renewer, providers.Verifier and providers.OrphanFinder; CUSTOM tokens Renewer and OrphanFinder;
// MS_SCIM and OneTouch tokens only OrphanFinder (they are recreated, never renewed).
func (a *Account) Token(t config.Token) (providers.Provider, error) {
	path := fmt.Sprintf("tokens[%d] (%s)", t.Index, t.Name)
	if t.Kind != Kind {
		return nil, fmt.Errorf("%s.kind: commvault tokens are of kind %s, not %q", path, Kind, t.Kind)
	}
	typ, ok := parseTokenType(t.TokenType)
	if !ok {
		return nil, fmt.Errorf("%s.token_type: unknown type %q (ALL, CUSTOM, MS_SCIM or OneTouch)", path, t.TokenType)
	}
	if typ == typeCUSTOM && len(t.APIEndpoints) == 0 {
		return nil, errors.New(path + ".api_endpoints: required for a CUSTOM token")
	}
	p := &provider{a: a, typ: typ}
	if typ == typeCUSTOM {
		p.endpoints = append([]string(nil), t.APIEndpoints...)
	}
	if t.RenewableFor != nil && typ.renewable() {
		p.renewableFor = t.RenewableFor.D()
	}
	if t.Lifetime != nil && !typ.renewable() {
		p.lifetime = t.Lifetime.D()
	}
	switch typ {
	case typeALL:
		return &verifyingRenewer{renewer{p}}, nil
	case typeCUSTOM:
		return &renewer{p}, nil
	}
	return p, nil
}
