package commvault

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/tokend/tokend/providers"
)

// Attrs keys a token carries (non-secret, epoch seconds as decimal strings).
const (
	attrType           = "token_type"
	attrRenewableUntil = "renewable_until"    // the vendor's renewableUntilTimestamp
	attrRefreshExpires = "refresh_expires_at" // the vendor's refreshTokenExpiryTimestamp
)

// provider manages one configured token; by itself it is the recreate-only kind (MS_SCIM, OneTouch).
type provider struct {
	a            *Account
	typ          tokenType
	renewableFor time.Duration // ALL/CUSTOM: asked for at creation; 0: the vendor's default
	lifetime     time.Duration // MS_SCIM/OneTouch: asked for at creation; 0: the vendor's default
	endpoints    []string      // CUSTOM
}

// renewer is a provider of a type that renews in place (ALL, CUSTOM).
type renewer struct{ *provider }

// verifyingRenewer is an ALL token: it can also be verified with a cheap call, which a CUSTOM, MS_SCIM or
// OneTouch token's limited scope may not allow.
type verifyingRenewer struct{ renewer }

var (
	_ providers.OrphanFinder = (*provider)(nil)
	_ providers.Renewer      = (*renewer)(nil)
	_ providers.Verifier     = (*verifyingRenewer)(nil)
	_ providers.OrphanFinder = (*verifyingRenewer)(nil)
)

// fromEpoch reads a vendor timestamp; zero (or less) means none.
func fromEpoch(n num) time.Time {
	if n <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(n), 0)
}

// earliest returns the earlier of the non-zero times, or zero when both are.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// int32Epoch caps a requested timestamp where the vendor's int32 fields end (2038-01-19).
func int32Epoch(t time.Time) int64 { return min(t.Unix(), math.MaxInt32) }

func attrTime(t providers.Token, key string) time.Time {
	n, err := strconv.ParseInt(t.Attrs[key], 10, 64)
	if err != nil {
		return time.Time{}
	}
	return fromEpoch(num(n))
}

type createBody struct {
	TokenName      string   `json:"tokenName"`
	TokenType      int      `json:"tokenType,omitempty"` // omitted for ALL, the vendor's default
	RenewableUntil int64    `json:"renewableUntilTimestamp,omitempty"`
	TokenExpiry    int64    `json:"tokenExpiryTimestamp,omitempty"`
	APIEndpoints   []string `json:"apiEndpoints,omitempty"`
}

// Create makes a token named req.VendorName. ALL/CUSTOM tokens ask for renewableUntil = now + renewable_for;
// MS_SCIM/OneTouch tokens ask for expiry = now + lifetime (the vendor caps both).
func (p *provider) Create(ctx context.Context, req providers.CreateRequest) (providers.Token, error) {
	c := call{op: "create", method: http.MethodPost, path: "/V4/AccessToken", lost: true}
	if req.VendorName == "" {
		return providers.Token{}, errors.New("creating token: no vendor-side name given")
	}
	now := p.a.now()
	body := createBody{TokenName: req.VendorName, TokenType: p.typ.wire(), APIEndpoints: p.endpoints}
	if p.typ.renewable() && p.renewableFor > 0 {
		body.RenewableUntil = int32Epoch(now.Add(p.renewableFor))
	}
	if !p.typ.renewable() && p.lifetime > 0 {
		body.TokenExpiry = int32Epoch(now.Add(p.lifetime))
	}
	c.body = body
	ans, err := p.a.sessionDo(ctx, c)
	if err != nil {
		return providers.Token{}, err
	}
	if !ans.ok() {
		return providers.Token{}, p.a.apiError(c, ans)
	}
	rec, ve, err := decodeCreate(ans.body)
	if err != nil {
		return providers.Token{}, malformedWrite(c, err)
	}
	if ve.failed() {
		return providers.Token{}, vendorFailure(c, 0, nil, ve)
	}
	if rec.TokenExpiry <= 0 {
		return providers.Token{}, malformedWrite(c, errors.New("create answer without tokenExpiryTimestamp"))
	}
	t := providers.Token{
		ID:        strconv.FormatInt(int64(rec.AccessTokenID), 10),
		Name:      rec.TokenName,
		Secret:    providers.NewSecret(rec.AccessToken),
		IssuedAt:  now,
		ExpiresAt: fromEpoch(rec.TokenExpiry),
		CreatedAt: now,
		Attrs:     map[string]string{attrType: string(p.typ)},
	}
	if t.Name == "" {
		t.Name = req.VendorName
	}
	if c := fromEpoch(rec.CreatedTime); !c.IsZero() {
		t.CreatedAt = c
	}
	if p.typ.renewable() {
		// Without a refresh token the token still works until it expires; Renew then asks for a recreate.
		t.Refresh = providers.NewSecret(rec.RefreshToken)
		p.setRenewal(&t, rec, time.Time{})
	}
	return t, nil
}

// setRenewal fills RenewableUntil and its Attrs from an answer; fallback is the renewable-until known
// before, for answers that leave it out.
func (p *provider) setRenewal(t *providers.Token, rec record, fallback time.Time) {
	until := fromEpoch(rec.RenewableUntil)
	if until.IsZero() {
		until = fallback
	}
	refresh := fromEpoch(rec.RefreshExpiry)
	t.RenewableUntil = earliest(until, refresh)
	if !until.IsZero() {
		t.Attrs[attrRenewableUntil] = strconv.FormatInt(until.Unix(), 10)
	}
	if !refresh.IsZero() {
		t.Attrs[attrRefreshExpires] = strconv.FormatInt(refresh.Unix(), 10)
	}
}

// list reads the account's tokens.
func (a *Account) list(ctx context.Context, op string) ([]record, error) {
	c := call{op: op, method: http.MethodGet, path: "/V4/AccessToken"}
	ans, err := a.sessionDo(ctx, c)
	if err != nil {
		return nil, err
	}
	if !ans.ok() {
		return nil, a.apiError(c, ans)
	}
	recs, ve, err := decodeList(ans.body)
	if err != nil {
		return nil, malformedRead(c, err)
	}
	if ve.failed() {
		return nil, vendorFailure(c, 0, nil, ve)
	}
	return recs, nil
}

// Inspect reads the token list and reports t's expiry and renewable-until. A token the list does not hold
// is Gone. For a renewable token whose vendor-side expiry has moved past the one tokend holds, the chain was
// renewed without tokend's pair (by another holder, or by a renew whose answer was lost): presenting tokend's
// pair again would make the vendor delete the token, so renewing is reported as over (RenewableUntil now,
// RotateNow) and the token is recreated.
func (p *provider) Inspect(ctx context.Context, t providers.Token) (providers.Status, error) {
	id, err := strconv.ParseInt(t.ID, 10, 64)
	if err != nil || id <= 0 {
		return providers.Status{}, errors.New("inspecting token: not a commvault accessTokenId: " + strconv.Quote(t.ID))
	}
	recs, err := p.a.list(ctx, "inspect")
	if err != nil {
		return providers.Status{}, err
	}
	i := slices.IndexFunc(recs, func(r record) bool { return int64(r.AccessTokenID) == id })
	if i < 0 {
		return providers.Status{Gone: true}, nil
	}
	rec := recs[i]
	st := providers.Status{ExpiresAt: fromEpoch(rec.TokenExpiry)}
	if !p.typ.renewable() {
		return st, nil
	}
	until := fromEpoch(rec.RenewableUntil)
	if until.IsZero() {
		until = attrTime(t, attrRenewableUntil)
	}
	st.RenewableUntil = earliest(until, attrTime(t, attrRefreshExpires))
	if !t.ExpiresAt.IsZero() && int64(rec.TokenExpiry) > t.ExpiresAt.Unix() {
		st.RenewableUntil = p.a.now()
		st.RotateNow = true
	}
	return st, nil
}

// Revoke deletes t (DELETE /V4/AccessToken/{id}); a token the vendor does not know is done.
func (p *provider) Revoke(ctx context.Context, t providers.Token, _ providers.Token) error {
	id, err := strconv.ParseInt(t.ID, 10, 64)
	if err != nil || id <= 0 {
		return errors.New("revoking token: not a commvault accessTokenId: " + strconv.Quote(t.ID))
	}
	c := call{op: "revoke", method: http.MethodDelete, path: "/V4/AccessToken/" + strconv.FormatInt(id, 10)}
	ans, err := p.a.sessionDo(ctx, c)
	if err != nil {
		return err
	}
	if !ans.ok() {
		e := p.a.apiError(c, ans)
		if e.Class == providers.NotFound {
			return nil
		}
		return e
	}
	ve, err := decodeDelete(ans.body)
	if err != nil {
		return malformedRead(c, err) // a retry finds the token gone (404) or deletes it
	}
	if ve.failed() {
		e := vendorFailure(c, 0, nil, ve)
		if e.Class == providers.NotFound {
			return nil
		}
		return e
	}
	return nil
}

// Orphans lists the tokens named req.VendorName whose ids are not in req.Keep: tokens an interrupted
// Create made.
func (p *provider) Orphans(ctx context.Context, req providers.CreateRequest) ([]providers.Token, error) {
	if req.VendorName == "" {
		return nil, nil
	}
	recs, err := p.a.list(ctx, "list")
	if err != nil {
		return nil, err
	}
	var out []providers.Token
	for _, r := range recs {
		id := strconv.FormatInt(int64(r.AccessTokenID), 10)
		if r.TokenName != req.VendorName || slices.Contains(req.Keep, id) {
			continue
		}
		out = append(out, providers.Token{
			ID:        id,
			Name:      r.TokenName,
			ExpiresAt: fromEpoch(r.TokenExpiry),
			CreatedAt: fromEpoch(r.CreatedTime),
			Attrs:     map[string]string{attrType: string(p.typ)},
		})
	}
	return out, nil
}

type renewBody struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
}

// notRenewableLocally is the error for a renew tokend does not even send: the vendor would refuse it.
func notRenewableLocally(msg string) error {
	return &providers.APIError{Op: "POST /V4/AccessToken/Renew", Message: msg + " (not sent)", Class: providers.NotRenewable}
}

// Renew exchanges t's access+refresh pair for a new pair (same id and name). The pair is sent without an
// auth header (as Commvault's own client does); on 401 the same request is repeated once with
// "Authorization: Bearer <access token>" (the documented form), which is safe because a 401 means the vendor
// did not act. A transport failure or an unreadable answer is ambiguous (providers.Lost): the vendor may have
// rotated the pair, so it must never be presented again.
func (r *renewer) Renew(ctx context.Context, t providers.Token) (providers.Token, error) {
	c := call{op: "renew", method: http.MethodPost, path: "/V4/AccessToken/Renew", lost: true}
	now := r.a.now()
	switch {
	case t.Secret.IsZero() || t.Refresh.IsZero():
		return providers.Token{}, notRenewableLocally("token has no refresh token")
	case !t.RenewableUntil.IsZero() && !now.Before(t.RenewableUntil):
		return providers.Token{}, notRenewableLocally("renewable until " + t.RenewableUntil.UTC().Format(time.RFC3339) + " has passed")
	}
	c.body = renewBody{AccessToken: t.Secret.Reveal(), RefreshToken: t.Refresh.Reveal()}
	ans, err := r.a.send(ctx, c)
	if err == nil && ans.status == http.StatusUnauthorized {
		c.header = map[string]string{"Authorization": "Bearer " + t.Secret.Reveal()}
		ans, err = r.a.send(ctx, c)
	}
	if err != nil {
		return providers.Token{}, err
	}
	secrets := []string{t.Secret.Reveal(), t.Refresh.Reveal()}
	if !ans.ok() {
		return providers.Token{}, r.a.apiError(c, ans, secrets...)
	}
	rec, ve, err := decodeRenew(ans.body)
	if err != nil {
		return providers.Token{}, malformedWrite(c, err)
	}
	if ve.failed() {
		return providers.Token{}, vendorFailure(c, 0, nil, ve, secrets...)
	}
	if rec.TokenExpiry <= 0 || (rec.AccessTokenID != 0 && strconv.FormatInt(int64(rec.AccessTokenID), 10) != t.ID) {
		return providers.Token{}, malformedWrite(c, errors.New("renew answer without tokenExpiryTimestamp or for another accessTokenId"))
	}
	out := providers.Token{
		ID:        t.ID,
		Name:      t.Name,
		Secret:    providers.NewSecret(rec.AccessToken),
		Refresh:   providers.NewSecret(rec.RefreshToken),
		IssuedAt:  now,
		ExpiresAt: fromEpoch(rec.TokenExpiry),
		CreatedAt: t.CreatedAt,
		Attrs:     map[string]string{},
	}
	for k, v := range t.Attrs {
		out.Attrs[k] = v
	}
	out.Attrs[attrType] = string(r.typ)
	r.setRenewal(&out, rec, attrTime(t, attrRenewableUntil))
	return out, nil
}

// Verify makes one GET /v2/WhoAmI with the access token ("Authtoken: Bearer <t>", then on 401
// "Authorization: Bearer <t>", the two forms servers accept).
func (v *verifyingRenewer) Verify(ctx context.Context, t providers.Token) error {
	c := call{op: "verify", method: http.MethodGet, path: "/v2/WhoAmI",
		header: map[string]string{"Authtoken": "Bearer " + t.Secret.Reveal()}}
	ans, err := v.a.send(ctx, c)
	if err == nil && ans.status == http.StatusUnauthorized {
		c.header = map[string]string{"Authorization": "Bearer " + t.Secret.Reveal()}
		ans, err = v.a.send(ctx, c)
	}
	if err != nil {
		return err
	}
	if !ans.ok() {
		return v.a.apiError(c, ans, t.Secret.Reveal())
	}
	ve, err := decodeWhoAmI(ans.body)
	if err != nil {
		return malformedRead(c, err)
	}
	if ve.failed() {
		return vendorFailure(c, 0, nil, ve, t.Secret.Reveal())
	}
	return nil
}
