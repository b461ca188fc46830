package astra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tokend/tokend/providers"
)

// listPageSize is the limit sent on list requests.
const listPageSize = 100

// maxListPages bounds paging, so a vendor that keeps answering with a cursor cannot loop tokend forever.
const maxListPages = 1000

// APIToken is the provider of one configured Astra api_token. It implements providers.Provider,
// providers.Verifier, providers.Bootstrapper and providers.OrphanFinder. It is safe for concurrent use.
type APIToken struct {
	a    *Account
	name string
}

var (
	_ providers.Provider     = (*APIToken)(nil)
	_ providers.Verifier     = (*APIToken)(nil)
	_ providers.Bootstrapper = (*APIToken)(nil)
	_ providers.OrphanFinder = (*APIToken)(nil)
	_ providers.Checker      = (*Account)(nil)
)

// Create makes a new token named req.VendorName (labelled managed-by=tokend and tokend-vendor-name=
// req.VendorName), authenticating with req.Current's secret. The answer is the only place the secret
// ever appears. A transport failure or an unreadable 2xx answer is Lost (the token may exist; Orphans
// finds it by name). The token never expires: ExpiresAt is zero, CreatedAt is the vendor's
// metadata.creationTimestamp (the local time of the answer if the vendor gave none).
func (p *APIToken) Create(ctx context.Context, req providers.CreateRequest) (providers.Token, error) {
	if req.Current == nil || req.Current.Secret.IsZero() {
		return providers.Token{}, fmt.Errorf("creating astra token %s: %w",
			req.VendorName, &providers.APIError{Op: "POST " + p.a.collection.Path, Class: providers.Unauthorized,
				Message: errNoCredential.Error() + " (set bootstrap_file to a token made in the Astra UI)"})
	}
	if err := checkName(req.VendorName); err != nil {
		return providers.Token{}, fmt.Errorf("creating astra token: %w", err)
	}
	var body createBody
	body.Type, body.Version, body.Name = tokenType, tokenVersion, req.VendorName
	body.Metadata.Labels = []wireLabel{{Name: labelManagedBy, Value: "tokend"}, {Name: labelVendorName, Value: req.VendorName}}
	b, err := json.Marshal(body)
	if err != nil {
		return providers.Token{}, fmt.Errorf("creating astra token %s: %w", req.VendorName, err)
	}
	r := request{op: "create", method: http.MethodPost, bearer: req.Current.Secret, body: b, accept: mediaToken}
	resp, err := p.a.do(ctx, r)
	if err != nil {
		var ae *providers.APIError
		switch {
		case errors.As(err, &ae):
			if ae.Status == http.StatusNotFound {
				// The collection is missing: a wrong account_id or user_id, not a missing token.
				ae.Class = providers.Permanent
			}
		case !errors.Is(err, errNoCredential) && !errors.As(err, new(errNotSent)):
			err = providers.Lost(err)
		}
		return providers.Token{}, fmt.Errorf("creating astra token %s: %w", req.VendorName, err)
	}
	w, err := decodeCreated(resp.body)
	if err != nil {
		return providers.Token{}, fmt.Errorf("creating astra token %s: %w", req.VendorName,
			providers.Lost(malformed(p.a.opName(r), resp.status, err)))
	}
	t := p.token(w, providers.NewSecret(w.Token))
	if t.CreatedAt.IsZero() {
		t.CreatedAt = p.a.now().UTC()
		t.IssuedAt = t.CreatedAt
	}
	return t, nil
}

// token converts a vendor resource to a providers.Token with secret s.
func (p *APIToken) token(w wireToken, s providers.Secret) providers.Token {
	created := w.created()
	user := w.UserID
	if user == "" {
		user = p.a.userID
	}
	return providers.Token{
		ID: w.ID, Name: w.Name, Secret: s,
		IssuedAt: created, CreatedAt: created,
		Attrs: map[string]string{"user_id": user},
	}
}

// checkName refuses a name Astra would refuse, before anything is sent.
func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return &providers.APIError{Op: "POST tokens", Class: providers.Permanent,
			Message: fmt.Sprintf("token name %q must be 1 to %d characters", name, maxNameLen)}
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(" ._-", c)) {
			return &providers.APIError{Op: "POST tokens", Class: providers.Permanent,
				Message: fmt.Sprintf("token name %q may hold only letters, digits, space, '.', '_' and '-'", name)}
		}
	}
	return nil
}

// get reads token id with bearer.
func (p *APIToken) get(ctx context.Context, op, id string, bearer providers.Secret) (wireToken, error) {
	r := request{op: op, method: http.MethodGet, id: id, bearer: bearer, accept: mediaToken}
	resp, err := p.a.do(ctx, r)
	if err != nil {
		return wireToken{}, err
	}
	w, err := decodeToken(resp.body)
	if err != nil {
		return wireToken{}, malformed(p.a.opName(r), resp.status, err)
	}
	if w.ID != id {
		return wireToken{}, malformed(p.a.opName(r), resp.status, fmt.Errorf("answer is about token %q", truncate(w.ID, 64)))
	}
	return w, nil
}

// Inspect reads t by id, authenticating with t's own secret. A 404, or a 401 with Astra's "invalid,
// revoked or unknown bearer token" problem (/problems/4), means the token was deleted: Status{Gone: true}
// (see the package comment for why a 401 counts as deleted). Other 401s and any 403 are Unauthorized
// errors. Astra tokens never expire, so a live token's Status is zero.
func (p *APIToken) Inspect(ctx context.Context, t providers.Token) (providers.Status, error) {
	if t.ID == "" {
		return providers.Status{}, fmt.Errorf("inspecting astra token %s: no token id", p.name)
	}
	_, err := p.get(ctx, "inspect", t.ID, t.Secret)
	if err == nil {
		return providers.Status{}, nil
	}
	var ae *providers.APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusNotFound:
			return providers.Status{Gone: true}, nil
		case ae.Status == http.StatusUnauthorized && ae.Code == "problems/4":
			return providers.Status{Gone: true}, nil
		}
	}
	return providers.Status{}, fmt.Errorf("inspecting astra token %s: %w", t.ID, err)
}

// Verify proves t's secret works: it reads t by id authenticating with t's own secret, a cheap call that
// succeeds only if the vendor accepts the secret as sent (verbatim) and knows the token.
func (p *APIToken) Verify(ctx context.Context, t providers.Token) error {
	if _, err := p.get(ctx, "verify", t.ID, t.Secret); err != nil {
		return fmt.Errorf("verifying astra token %s: %w", t.ID, err)
	}
	return nil
}

// Revoke deletes t, authenticating with current's secret (with t's own secret when current has none).
// 204 and 404 are done. Revoking the token that would authenticate the call itself (t.ID == current.ID)
// is refused: tokend never revokes the token in use.
func (p *APIToken) Revoke(ctx context.Context, t providers.Token, current providers.Token) error {
	if t.ID == "" {
		return fmt.Errorf("revoking astra token of %s: no token id", p.name)
	}
	if t.ID == current.ID {
		return fmt.Errorf("revoking astra token %s: %w", t.ID, &providers.APIError{Op: "DELETE " + p.a.collection.Path + "/" + t.ID,
			Class: providers.Permanent, Message: "refusing to revoke the current token"})
	}
	bearer := current.Secret
	if bearer.IsZero() {
		bearer = t.Secret
	}
	_, err := p.a.do(ctx, request{op: "revoke", method: http.MethodDelete, id: t.ID, bearer: bearer, accept: mediaToken})
	var ae *providers.APIError
	if err == nil || errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil
	}
	return fmt.Errorf("revoking astra token %s: %w", t.ID, err)
}

// list reads every token of the user, following metadata.continue.
func (p *APIToken) list(ctx context.Context, bearer providers.Secret) ([]wireToken, error) {
	var all []wireToken
	cursor := ""
	seen := map[string]bool{}
	for range maxListPages {
		q := url.Values{"limit": {strconv.Itoa(listPageSize)}}
		if cursor != "" {
			q.Set("continue", cursor)
		}
		r := request{op: "list", method: http.MethodGet, query: q, bearer: bearer, accept: "application/json"}
		resp, err := p.a.do(ctx, r)
		if err != nil {
			return nil, err
		}
		page, err := decodeList(resp.body, nil)
		if err != nil {
			return nil, malformed(p.a.opName(r), resp.status, err)
		}
		all = append(all, page.Items...)
		if page.Continue == "" {
			return all, nil
		}
		if seen[page.Continue] {
			return nil, malformed(p.a.opName(r), resp.status, errors.New("list cursor repeats"))
		}
		seen[page.Continue] = true
		cursor = page.Continue
	}
	return nil, fmt.Errorf("listing astra tokens: more than %d pages", maxListPages)
}

// Bootstrap turns the secret from bootstrap_file (a token made by hand in the Astra UI) into a Token: it
// lists the user's tokens with the secret (proving it works) and finds the secret's own token by its claims
// or, failing that, as the only token whose name does not start with "tokend-" (see the package comment).
// When the evidence is not conclusive it returns a Permanent error naming what to do.
func (p *APIToken) Bootstrap(ctx context.Context, secret providers.Secret) (providers.Token, error) {
	items, err := p.list(ctx, secret)
	if err != nil {
		return providers.Token{}, fmt.Errorf("bootstrapping astra token %s: %w", p.name, err)
	}
	op := "GET " + p.a.collection.Path
	if id, ok := selfID(secret.Reveal()); ok {
		i := slices.IndexFunc(items, func(w wireToken) bool { return w.ID == id })
		if i < 0 {
			return providers.Token{}, fmt.Errorf("bootstrapping astra token %s: %w", p.name, &providers.APIError{Op: op,
				Class: providers.Permanent, Message: fmt.Sprintf("the bootstrap token names itself %s, which is not among the tokens of user %s: check user_id", truncate(id, 64), p.a.userID)})
		}
		return p.token(items[i], secret), nil
	}
	var hand []wireToken
	for _, w := range items {
		if !strings.HasPrefix(w.Name, "tokend-") {
			hand = append(hand, w)
		}
	}
	if len(hand) == 1 {
		return p.token(hand[0], secret), nil
	}
	return providers.Token{}, fmt.Errorf("bootstrapping astra token %s: %w", p.name, &providers.APIError{Op: op,
		Class: providers.Permanent, Message: fmt.Sprintf("cannot tell which of the %d hand-made tokens of user %s the bootstrap token is: "+
			"the user must hold exactly one token not named tokend-* while tokend bootstraps (a dedicated Astra user for tokend is best)", len(hand), p.a.userID)})
}

// Orphans lists the user's tokens with req.Current's secret and returns those named req.VendorName (or
// labelled with it) whose id is not in req.Keep: tokens an interrupted Create made whose secret was lost.
func (p *APIToken) Orphans(ctx context.Context, req providers.CreateRequest) ([]providers.Token, error) {
	if req.Current == nil || req.Current.Secret.IsZero() {
		return nil, fmt.Errorf("finding orphans of astra token %s: %w", p.name, errNoCredential)
	}
	if req.VendorName == "" {
		return nil, fmt.Errorf("finding orphans of astra token %s: no vendor name", p.name)
	}
	items, err := p.list(ctx, req.Current.Secret)
	if err != nil {
		return nil, fmt.Errorf("finding orphans of astra token %s: %w", p.name, err)
	}
	var out []providers.Token
	for _, w := range items {
		if w.Name != req.VendorName && w.label(labelVendorName) != req.VendorName {
			continue
		}
		if slices.Contains(req.Keep, w.ID) || w.ID == req.Current.ID {
			continue
		}
		out = append(out, p.token(w, providers.Secret{}))
	}
	return out, nil
}
