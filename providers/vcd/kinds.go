package vcd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/tokend/tokend/providers"
)

// Attrs keys (non-secret, stored in clear).
const (
	attrSession         = "session_id"       // the VCD session behind the current access token
	attrRequireRotation = "require_rotation" // "true" when the API token rotates on every use
)

func notRenewable(op, msg string) error {
	return &providers.APIError{Op: op, Message: msg, Class: providers.NotRenewable}
}

// ---- access_token ----

// accessToken keeps a bearer JWT alive with the refresh grant of the API token behind it.
type accessToken struct{ a *Account }

var (
	_ providers.Renewer      = (*accessToken)(nil)
	_ providers.Verifier     = (*accessToken)(nil)
	_ providers.Bootstrapper = (*accessToken)(nil)
	_ providers.OrphanFinder = (*accessToken)(nil)
)

// Bootstrap exchanges the API token from the bootstrap file for a first access token and looks up the API
// token's id through the session it made. When the vendor rotated the API token in that exchange, a failed
// lookup is Lost: the file's value is dead and the new one is not returned.
func (p *accessToken) Bootstrap(ctx context.Context, secret providers.Secret) (providers.Token, error) {
	g, err := p.a.refreshGrant(providers.WithOperation(ctx, "renew"), secret)
	if err != nil {
		return providers.Token{}, fmt.Errorf("bootstrapping: exchanging the api token: %w", err)
	}
	refresh := secret
	if !g.refresh.IsZero() {
		refresh = g.refresh
	}
	rec, sid, err := p.a.sessionToken(providers.WithOperation(ctx, "inspect"), g.access)
	if err != nil {
		err = fmt.Errorf("bootstrapping: looking up the api token: %w", err)
		if !g.refresh.IsZero() {
			err = providers.Lost(err)
		}
		return providers.Token{}, err
	}
	return providers.Token{
		ID:        rec.ID,
		Name:      rec.Name,
		Secret:    g.access,
		Refresh:   refresh,
		IssuedAt:  g.at,
		ExpiresAt: g.expires,
		CreatedAt: g.at, // VCD keeps no creation time; this is when tokend first saw the token
		Attrs:     attrs(nil, sid, rec.RequireRotation != nil && *rec.RequireRotation || !g.refresh.IsZero()),
	}, nil
}

// Renew runs the refresh grant with t.Refresh. A refresh_token in the answer replaces t.Refresh in the
// returned token (the presented one is then dead). invalid_grant is Unauthorized; a lost answer is Ambiguous.
func (p *accessToken) Renew(ctx context.Context, t providers.Token) (providers.Token, error) {
	if t.Refresh.IsZero() {
		return providers.Token{}, notRenewable("renew", "no api token stored for this access token")
	}
	g, err := p.a.refreshGrant(providers.WithOperation(ctx, "renew"), t.Refresh)
	if err != nil {
		return providers.Token{}, fmt.Errorf("renewing access token: %w", err)
	}
	n := t
	n.Secret, n.IssuedAt, n.ExpiresAt = g.access, g.at, g.expires
	rotates := t.Attrs[attrRequireRotation] == "true"
	if !g.refresh.IsZero() {
		n.Refresh, rotates = g.refresh, true
	}
	n.Attrs = attrs(t.Attrs, "", rotates)
	return n, nil
}

// Create mints a new API token named req.VendorName through the password session (register a client,
// fetch its one-time initial token) and exchanges it for a first access token. It is also how a dead API
// token (invalid_grant) is replaced.
func (p *accessToken) Create(ctx context.Context, req providers.CreateRequest) (providers.Token, error) {
	ctx = providers.WithOperation(ctx, "create")
	id, first, err := p.a.mint(ctx, req.VendorName)
	if err != nil {
		return providers.Token{}, fmt.Errorf("creating api token %s: %w", req.VendorName, err)
	}
	g, err := p.a.refreshGrant(ctx, first.refresh)
	if err != nil {
		return providers.Token{}, fmt.Errorf("creating access token from %s: %w", id, lostIfAPI(err))
	}
	refresh := first.refresh
	if !g.refresh.IsZero() {
		refresh = g.refresh
	}
	return providers.Token{
		ID:        id,
		Name:      req.VendorName,
		Secret:    g.access,
		Refresh:   refresh,
		IssuedAt:  g.at,
		ExpiresAt: g.expires,
		CreatedAt: first.at,
		Attrs:     attrs(nil, "", !g.refresh.IsZero()),
	}, nil
}

// Inspect asks VCD about the session of the current access token (GET /sessions/current, then
// /sessions/{id}/token). When that JWT is refused before its expiry, the password session (if configured)
// reads the API token: 404 means it was deleted (which ends its sessions) and is Gone; otherwise the refusal
// is returned. An access token past its expiry is reported as it is, for the engine to renew.
func (p *accessToken) Inspect(ctx context.Context, t providers.Token) (providers.Status, error) {
	ctx = providers.WithOperation(ctx, "inspect")
	now := p.a.now()
	st := providers.Status{ExpiresAt: t.ExpiresAt}
	var jwtErr error
	if !t.Secret.IsZero() && now.Before(t.ExpiresAt) {
		rec, _, err := p.a.sessionToken(ctx, t.Secret)
		switch {
		case err == nil:
			if (t.ID != "" && rec.ID != t.ID) || (!rec.expires.IsZero() && !rec.expires.After(now)) {
				// The session is not backed by our API token any more, or that token expired: act now.
				st.RotateNow = true
			}
			return st, nil
		case providers.IsUnauthorized(err):
			jwtErr = err
		case providers.IsNotFound(err):
			// The session has no token record (or is gone): ask about the API token directly.
		default:
			return providers.Status{}, fmt.Errorf("inspecting access token: %w", err)
		}
	}
	if p.a.hasLogin && t.ID != "" {
		if _, err := p.a.getToken(ctx, t.ID); err != nil {
			if providers.IsNotFound(err) {
				return providers.Status{Gone: true}, nil
			}
			return providers.Status{}, fmt.Errorf("inspecting api token %s: %w", t.ID, err)
		}
	}
	if jwtErr != nil {
		return providers.Status{}, fmt.Errorf("inspecting access token: %w", jwtErr)
	}
	return st, nil
}

// Verify makes one authenticated call with the access token (GET /sessions/current).
func (p *accessToken) Verify(ctx context.Context, t providers.Token) error {
	if _, err := p.a.currentSession(providers.WithOperation(ctx, "verify"), t.Secret); err != nil {
		return fmt.Errorf("verifying access token: %w", err)
	}
	return nil
}

// Revoke deletes the API token behind t (ending its sessions) with the password session. It refuses to
// delete the API token that backs current.
func (p *accessToken) Revoke(ctx context.Context, t providers.Token, current providers.Token) error {
	return revoke(ctx, p.a, t, current, "access token")
}

// Orphans finds API tokens named req.VendorName that tokend does not hold.
func (p *accessToken) Orphans(ctx context.Context, req providers.CreateRequest) ([]providers.Token, error) {
	return orphans(ctx, p.a, req, "REFRESH")
}

// ---- api_token ----

// apiToken delivers the API token itself; it never expires and is recreated once it is max_age old.
type apiToken struct{ a *Account }

var (
	_ providers.Verifier     = (*apiToken)(nil)
	_ providers.Bootstrapper = (*apiToken)(nil)
	_ providers.OrphanFinder = (*apiToken)(nil)
)

// Create registers a client named req.VendorName and fetches its one-time initial API token.
func (p *apiToken) Create(ctx context.Context, req providers.CreateRequest) (providers.Token, error) {
	id, g, err := p.a.mint(providers.WithOperation(ctx, "create"), req.VendorName)
	if err != nil {
		return providers.Token{}, fmt.Errorf("creating api token %s: %w", req.VendorName, err)
	}
	return providers.Token{ID: id, Name: req.VendorName, Secret: g.refresh, IssuedAt: g.at, CreatedAt: g.at}, nil
}

// Bootstrap exchanges the given API token once to learn its id. When VCD rotates it in that exchange, the
// returned Secret is the replacement.
func (p *apiToken) Bootstrap(ctx context.Context, secret providers.Secret) (providers.Token, error) {
	t, err := (&accessToken{a: p.a}).Bootstrap(ctx, secret)
	if err != nil {
		return providers.Token{}, err
	}
	return providers.Token{ID: t.ID, Name: t.Name, Secret: t.Refresh, IssuedAt: t.IssuedAt, CreatedAt: t.CreatedAt}, nil
}

// Inspect reads the token with the password session: 404 is Gone.
func (p *apiToken) Inspect(ctx context.Context, t providers.Token) (providers.Status, error) {
	rec, err := p.a.getToken(providers.WithOperation(ctx, "inspect"), t.ID)
	if err != nil {
		if providers.IsNotFound(err) {
			return providers.Status{Gone: true}, nil
		}
		return providers.Status{}, fmt.Errorf("inspecting api token %s: %w", t.ID, err)
	}
	return providers.Status{ExpiresAt: rec.expires, RotateNow: !rec.expires.IsZero() && !rec.expires.After(p.a.now())}, nil
}

// errRotating is returned by Verify for an API token that rotates on every use: consumers cannot hold it.
var errRotating = errors.New("the api token rotates on every use (requireRotation); manage it with kind access_token")

// Verify checks, without using it, that the token does not rotate on use (GET /tokens/{id}), then exchanges
// it once with the refresh grant.
func (p *apiToken) Verify(ctx context.Context, t providers.Token) error {
	ctx = providers.WithOperation(ctx, "verify")
	rec, err := p.a.getToken(ctx, t.ID)
	if err != nil && !providers.IsNotFound(err) {
		return fmt.Errorf("verifying api token %s: %w", t.ID, err)
	}
	// A token VCD no longer lists goes on to the grant, which refuses it as invalid_grant (Unauthorized).
	if err == nil && rec.RequireRotation != nil && *rec.RequireRotation {
		return fmt.Errorf("verifying api token %s: %w", t.ID, &providers.APIError{Op: "GET " + tokenPath(t.ID), Status: http.StatusOK, Message: errRotating.Error(), Class: providers.Permanent})
	}
	g, err := p.a.refreshGrant(ctx, t.Secret)
	if err != nil {
		return fmt.Errorf("verifying api token %s: %w", t.ID, err)
	}
	if !g.refresh.IsZero() && g.refresh.Reveal() != t.Secret.Reveal() {
		return fmt.Errorf("verifying api token %s: %w", t.ID, &providers.APIError{Op: "POST " + p.a.oauthPath("token"), Status: http.StatusOK, Message: errRotating.Error(), Class: providers.Permanent})
	}
	return nil
}

// Revoke deletes the token (DELETE /cloudapi/1.0.0/tokens/{id}); already gone is done.
func (p *apiToken) Revoke(ctx context.Context, t providers.Token, current providers.Token) error {
	return revoke(ctx, p.a, t, current, "api token")
}

// Orphans finds API tokens named req.VendorName that tokend does not hold.
func (p *apiToken) Orphans(ctx context.Context, req providers.CreateRequest) ([]providers.Token, error) {
	return orphans(ctx, p.a, req, "REFRESH")
}

// ---- proxy_token ----

// proxyToken creates PROXY tokens and recreates them before expirationTimeUtc.
type proxyToken struct{ a *Account }

var _ providers.OrphanFinder = (*proxyToken)(nil)

// Create makes a PROXY token named req.VendorName (POST /cloudapi/1.0.0/tokens); the value is only in this
// answer.
func (p *proxyToken) Create(ctx context.Context, req providers.CreateRequest) (providers.Token, error) {
	ctx = providers.WithOperation(ctx, "create")
	path := cloudAPI + "/tokens"
	ans, _, err := p.a.authed(ctx, call{method: http.MethodPost, path: path, json: map[string]string{"name": req.VendorName, "type": "PROXY"}, mutating: true})
	if err != nil {
		return providers.Token{}, fmt.Errorf("creating proxy token %s: %w", req.VendorName, err)
	}
	now := p.a.now()
	rec, err := decodeToken(ans.body)
	if err == nil && rec.Token == "" {
		err = errors.New("decoding token: no token value in the answer")
	}
	if err == nil && rec.expires.IsZero() {
		err = errors.New("decoding token: no expirationTimeUtc in the answer")
	}
	if err != nil {
		return providers.Token{}, fmt.Errorf("creating proxy token %s: %w", req.VendorName, malformed("POST "+path, true, err))
	}
	name := rec.Name
	if name == "" {
		name = req.VendorName
	}
	return providers.Token{ID: rec.ID, Name: name, Secret: providers.NewSecret(rec.Token), IssuedAt: now, CreatedAt: now, ExpiresAt: rec.expires}, nil
}

// Inspect reads the token: its expirationTimeUtc, or Gone on 404.
func (p *proxyToken) Inspect(ctx context.Context, t providers.Token) (providers.Status, error) {
	rec, err := p.a.getToken(providers.WithOperation(ctx, "inspect"), t.ID)
	if err != nil {
		if providers.IsNotFound(err) {
			return providers.Status{Gone: true}, nil
		}
		return providers.Status{}, fmt.Errorf("inspecting proxy token %s: %w", t.ID, err)
	}
	return providers.Status{ExpiresAt: rec.expires}, nil
}

// Revoke deletes the token; already gone is done.
func (p *proxyToken) Revoke(ctx context.Context, t providers.Token, current providers.Token) error {
	return revoke(ctx, p.a, t, current, "proxy token")
}

// Orphans finds proxy tokens named req.VendorName that tokend does not hold.
func (p *proxyToken) Orphans(ctx context.Context, req providers.CreateRequest) ([]providers.Token, error) {
	return orphans(ctx, p.a, req, "PROXY")
}

// ---- shared ----

func revoke(ctx context.Context, a *Account, t, current providers.Token, what string) error {
	if t.ID == "" {
		return fmt.Errorf("revoking %s: no token id", what)
	}
	if t.ID == current.ID {
		return fmt.Errorf("revoking %s %s: refusing to revoke the token in use", what, t.ID)
	}
	if err := a.deleteToken(providers.WithOperation(ctx, "revoke"), t.ID); err != nil {
		return fmt.Errorf("revoking %s %s: %w", what, t.ID, err)
	}
	return nil
}

func orphans(ctx context.Context, a *Account, req providers.CreateRequest, typ string) ([]providers.Token, error) {
	if req.VendorName == "" {
		return nil, errors.New("finding orphans: no vendor name")
	}
	// FIQL values cannot carry these; tokend's names never do.
	if !clientIDRe.MatchString(req.VendorName) {
		return nil, fmt.Errorf("finding orphans: name %q cannot be filtered on", req.VendorName)
	}
	list, err := a.listTokens(providers.WithOperation(ctx, "list"), "name=="+req.VendorName)
	if err != nil {
		return nil, fmt.Errorf("finding orphans of %s: %w", req.VendorName, err)
	}
	var out []providers.Token
	for _, t := range list {
		// Filter again locally: a vendor that ignores part of the filter must not make us revoke others.
		if t.Name != req.VendorName || (t.Type != "" && t.Type != typ) || slices.Contains(req.Keep, t.ID) {
			continue
		}
		out = append(out, providers.Token{ID: t.ID, Name: t.Name, ExpiresAt: t.expires})
	}
	return out, nil
}

func attrs(old map[string]string, session string, rotates bool) map[string]string {
	m := maps.Clone(old)
	if m == nil {
		m = map[string]string{}
	}
	if session != "" {
		m[attrSession] = session
	} else {
		delete(m, attrSession)
	}
	m[attrRequireRotation] = strconv.FormatBool(rotates)
	return m
}
