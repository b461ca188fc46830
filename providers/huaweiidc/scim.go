package huaweiidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tokend/tokend/providers"
)

// orphanSlack is how much earlier than CreateRequest.StartedAt (by tokend's clock) a token may have been
// created (by the vendor's clock) and still count as one tokend's interrupted Create made.
const orphanSlack = 2 * time.Minute

// attrTenant is the Token.Attrs key of the tenant a token belongs to.
const attrTenant = "tenant_id"

// SCIMToken is the provider of one configured scim_token: the bearer tokens of one provisioning tenant. It
// implements providers.Provider, providers.Verifier and providers.OrphanFinder; it is safe for concurrent use.
type SCIMToken struct {
	acct   *Account
	name   string // tokend's token name, for logs
	tenant string
}

var (
	_ providers.Provider     = (*SCIMToken)(nil)
	_ providers.Verifier     = (*SCIMToken)(nil)
	_ providers.OrphanFinder = (*SCIMToken)(nil)
	_ providers.Checker      = (*Account)(nil)
)

func (p *SCIMToken) tokensPath(tenant string) string {
	return "/v1/identity-stores/" + p.acct.storeID + "/tenant/" + tenant + "/bearer-token"
}

// tenantOf is the tenant t lives in: the one recorded when it was created, else the configured one.
func (p *SCIMToken) tenantOf(t providers.Token) string {
	if id := t.Attrs[attrTenant]; id != "" && checkID(id) == nil {
		return id
	}
	return p.tenant
}

// list returns the tenant's tokens as the vendor reports them (one attempt; errors are classified).
func (p *SCIMToken) list(ctx context.Context, tenant string) ([]listedToken, error) {
	path := p.tokensPath(tenant)
	op := "GET " + path
	ans, err := p.acct.signed(ctx, http.MethodGet, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if ans.status != http.StatusOK {
		return nil, p.acct.apiError(op, ans)
	}
	if ans.readErr != nil {
		return nil, unreadable(op, ans.status, ans.readErr)
	}
	toks, err := decodeList(ans.body)
	if err != nil {
		return nil, unreadable(op, ans.status, err)
	}
	return toks, nil
}

// Inspect lists the tenant's tokens and reports t's expiration_time; a token no longer listed is Gone.
func (p *SCIMToken) Inspect(ctx context.Context, t providers.Token) (providers.Status, error) {
	if t.ID == "" {
		return providers.Status{}, errors.New("inspecting token: no token_id")
	}
	toks, err := p.list(providers.WithOperation(ctx, "inspect"), p.tenantOf(t))
	if err != nil {
		return providers.Status{}, fmt.Errorf("inspecting token: %w", err)
	}
	for _, lt := range toks {
		if lt.ID == t.ID {
			return providers.Status{ExpiresAt: lt.ExpiresAt}, nil
		}
	}
	return providers.Status{Gone: true}, nil
}

// Create makes a new bearer token in the tenant. When the tenant already holds MaxTokensPerTenant tokens
// (expired ones count), it first revokes the oldest one that is not req.Current, so the current token is
// never touched; when only the current token could go, it fails with a permanent error. The secret of the
// answer is the only copy. A transport error or an unreadable 2xx answer to the create call returns an error
// for which providers.IsAmbiguous is true (the vendor may have made the token; Orphans finds it).
func (p *SCIMToken) Create(ctx context.Context, req providers.CreateRequest) (providers.Token, error) {
	unlock, err := p.acct.lockTenant(ctx, p.tenant)
	if err != nil {
		return providers.Token{}, fmt.Errorf("creating token: %w", err)
	}
	defer unlock()

	toks, err := p.list(providers.WithOperation(ctx, "list"), p.tenant)
	if err != nil {
		return providers.Token{}, fmt.Errorf("creating token: listing tenant tokens: %w", unknownTenant(err))
	}
	if err := p.makeRoom(ctx, toks, req); err != nil {
		return providers.Token{}, fmt.Errorf("creating token: %w", err)
	}

	ctx = providers.WithOperation(ctx, "create")
	path := p.tokensPath(p.tenant)
	op := "POST " + path
	ans, err := p.acct.signed(ctx, http.MethodPost, path)
	if err != nil {
		return providers.Token{}, providers.Lost(fmt.Errorf("creating token: %s: %w", op, err))
	}
	if ans.status < 200 || ans.status > 299 {
		return providers.Token{}, fmt.Errorf("creating token: %w", p.acct.apiError(op, ans))
	}
	if ans.readErr != nil {
		return providers.Token{}, providers.Lost(fmt.Errorf("creating token: %w", unreadable(op, ans.status, errors.New("body cut short"))))
	}
	ct, err := decodeCreate(ans.body)
	if err != nil {
		// decodeCreate's errors never quote the body, which holds the secret.
		return providers.Token{}, providers.Lost(fmt.Errorf("creating token: %w", unreadable(op, ans.status, err)))
	}
	return providers.Token{
		ID:        ct.ID,
		Secret:    providers.NewSecret(ct.Secret),
		IssuedAt:  ct.CreatedAt,
		CreatedAt: ct.CreatedAt,
		ExpiresAt: ct.ExpiresAt,
		Attrs:     map[string]string{attrTenant: p.tenant},
	}, nil
}

// unknownTenant reclassifies a 404 from the list call as permanent: for Create it means the identity store
// or tenant in the config does not exist (or the URL is wrong), not that a token is gone.
func unknownTenant(err error) error {
	var ae *providers.APIError
	if errors.As(err, &ae) && ae.Class == providers.NotFound {
		c := *ae
		c.Class = providers.Permanent
		return &c
	}
	return err
}

// makeRoom revokes the oldest non-current tokens until the tenant is below its cap. Only tokens of this
// tenant are considered, and never req.Current (DESIGN.md §11: "oldest non-current first").
func (p *SCIMToken) makeRoom(ctx context.Context, toks []listedToken, req providers.CreateRequest) error {
	current := ""
	if req.Current != nil {
		current = req.Current.ID
	}
	toks = slices.Clone(toks)
	slices.SortFunc(toks, func(a, b listedToken) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for len(toks) >= MaxTokensPerTenant {
		i := slices.IndexFunc(toks, func(t listedToken) bool { return t.ID != current })
		if i < 0 {
			return fmt.Errorf("tenant %s is at its cap of %d tokens and only the current token is left", p.tenant, MaxTokensPerTenant)
		}
		victim := toks[i]
		if err := p.delete(ctx, p.tenant, victim.ID); err != nil {
			return fmt.Errorf("making room (tenant at its cap of %d): revoking oldest non-current token %s: %w",
				MaxTokensPerTenant, victim.ID, err)
		}
		p.acct.log.Info("revoked the oldest non-current token to make room under the tenant's token cap",
			"token", p.name, "op", "revoke", "token_id", victim.ID,
			"created_at", victim.CreatedAt, "expires_at", victim.ExpiresAt)
		toks = slices.Delete(toks, i, i+1)
	}
	return nil
}

// Revoke deletes t. A token the vendor does not know (404) counts as done. current is not used: the call is
// signed with the account's AK/SK.
func (p *SCIMToken) Revoke(ctx context.Context, t providers.Token, current providers.Token) error {
	if t.ID == "" {
		return errors.New("revoking token: no token_id")
	}
	tenant := p.tenantOf(t)
	unlock, err := p.acct.lockTenant(ctx, tenant)
	if err != nil {
		return fmt.Errorf("revoking token: %w", err)
	}
	defer unlock()
	if err := p.delete(ctx, tenant, t.ID); err != nil {
		return fmt.Errorf("revoking token: %w", err)
	}
	return nil
}

// delete is one DELETE; 404 is success. The caller holds the tenant lock.
func (p *SCIMToken) delete(ctx context.Context, tenant, id string) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("token_id: %w", err)
	}
	ctx = providers.WithOperation(ctx, "revoke")
	path := p.tokensPath(tenant) + "/" + id
	op := "DELETE " + path
	ans, err := p.acct.signed(ctx, http.MethodDelete, path)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch {
	case ans.status >= 200 && ans.status <= 299, ans.status == http.StatusNotFound:
		return nil
	}
	return p.acct.apiError(op, ans)
}

// Verify checks t's secret against the tenant's SCIM endpoint: GET
// {scim_url}/{tenant_id}/scim/v2/ServiceProviderConfig with "Authorization: Bearer <token>". Any 2xx
// answer is success; 401/403 mean the token is refused (providers.IsUnauthorized).
func (p *SCIMToken) Verify(ctx context.Context, t providers.Token) error {
	if t.Secret.IsZero() {
		return errors.New("verifying token: no secret")
	}
	ctx = providers.WithOperation(ctx, "verify")
	u := *p.acct.scim
	u.Path = strings.TrimRight(u.Path, "/") + "/" + p.tenantOf(t) + "/scim/v2/ServiceProviderConfig"
	op := "GET " + u.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("verifying token: building request: %w", err)
	}
	req.Header.Set("Accept", "application/scim+json, application/json")
	req.Header.Set("Authorization", "Bearer "+t.Secret.Reveal())
	ans, err := p.acct.do(req)
	if err != nil {
		return fmt.Errorf("verifying token: %s: %w", op, err)
	}
	if ans.status < 200 || ans.status > 299 {
		return fmt.Errorf("verifying token: %w", p.acct.apiError(op, ans))
	}
	return nil
}

// Orphans returns the tenant's tokens that an interrupted Create with req may have made: Huawei tokens have
// no name, so these are the ones created at or after req.StartedAt (less orphanSlack for clock skew) whose
// id is neither in req.Keep nor req.Current's.
func (p *SCIMToken) Orphans(ctx context.Context, req providers.CreateRequest) ([]providers.Token, error) {
	if req.StartedAt.IsZero() {
		return nil, errors.New("finding orphans: no start time")
	}
	toks, err := p.list(providers.WithOperation(ctx, "list"), p.tenant)
	if err != nil {
		return nil, fmt.Errorf("finding orphans: %w", err)
	}
	keep := map[string]bool{}
	for _, id := range req.Keep {
		keep[id] = true
	}
	if req.Current != nil {
		keep[req.Current.ID] = true
	}
	since := req.StartedAt.Add(-orphanSlack)
	var out []providers.Token
	for _, lt := range toks {
		if keep[lt.ID] || lt.CreatedAt.Before(since) {
			continue
		}
		out = append(out, providers.Token{
			ID:        lt.ID,
			IssuedAt:  lt.CreatedAt,
			CreatedAt: lt.CreatedAt,
			ExpiresAt: lt.ExpiresAt,
			Attrs:     map[string]string{attrTenant: p.tenant},
		})
	}
	return out, nil
}
