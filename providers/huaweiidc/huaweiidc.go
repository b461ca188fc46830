// Package huaweiidc is tokend's provider for Huawei Cloud IAM Identity Center SCIM bearer tokens (provider
// type "huawei-idc", token kind "scim_token").
//
// The identity-store API (list, create, delete bearer tokens of a provisioning tenant) is called with AK/SK
// request signing (SDK-HMAC-SHA256, see sign.go). Tokens cannot be renewed: they are recreated before
// expiration_time. A tenant holds at most MaxTokensPerTenant tokens, expired ones included; when it is full,
// Create first revokes the oldest token of that tenant that is not the current one. A new token is verified
// with GET {scim_url}/{tenant_id}/scim/v2/ServiceProviderConfig and "Authorization: Bearer <token>".
//
// Research notes: api/huawei-idc.md beside DESIGN.md.
package huaweiidc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
)

// Type is the provider type string in the config.
const Type = "huawei-idc"

// KindSCIMToken is the only token kind of this vendor.
const KindSCIMToken = "scim_token"

// MaxTokensPerTenant is the per-tenant bearer-token cap Create assumes (unconfirmed by Huawei; the best
// evidence says 2, see api/huawei-idc.md §7). Expired tokens that were not deleted count toward it.
const MaxTokensPerTenant = 2

// maxBody bounds every vendor body tokend reads.
const maxBody = 1 << 20

// Account is one huawei-idc provider: an identity store reached with one AK/SK pair. It is safe for
// concurrent use; create and delete calls of one tenant are serialized (the vendor answers 409 to
// concurrent changes).
type Account struct {
	name    string
	base    *url.URL // identity-store API, e.g. https://identitystore.ap-southeast-1.myhuaweicloud.com
	scim    *url.URL // SCIM base, e.g. https://scim.ap-southeast-1.myhuaweicloud.com
	storeID string
	ak, sk  providers.Secret
	http    *http.Client
	now     func() time.Time
	log     *slog.Logger

	mu      sync.Mutex
	tenants map[string]chan struct{} // per-tenant lock, held by create and revoke
}

// New builds the account from its config: it reads the access and secret key files; no network I/O.
func New(p config.Provider, opts providers.Options) (*Account, error) {
	if errs := Validate(p, nil); len(errs) > 0 {
		return nil, errs[0]
	}
	base, _ := url.Parse(strings.TrimRight(p.URL, "/"))
	scim, _ := url.Parse(strings.TrimRight(p.SCIMURL, "/"))
	ak, err := p.AccessKeyFile.Read()
	if err != nil {
		return nil, fmt.Errorf("%s.access_key_file: %w", providerPath(p), err)
	}
	sk, err := p.SecretKeyFile.Read()
	if err != nil {
		return nil, fmt.Errorf("%s.secret_key_file: %w", providerPath(p), err)
	}
	if strings.ContainsAny(ak.Reveal(), " ,\t\r\n") {
		return nil, fmt.Errorf("%s.access_key_file: access key contains spaces or commas", providerPath(p))
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
		name:    p.Name,
		base:    base,
		scim:    scim,
		storeID: p.IdentityStoreID,
		ak:      ak,
		sk:      sk,
		http:    hc,
		now:     opts.Clock(),
		log:     log.With("provider", p.Name),
		tenants: map[string]chan struct{}{},
	}, nil
}

// Token returns the provider of one configured scim_token of this account. The result implements
// providers.Provider, providers.Verifier and providers.OrphanFinder (not Renewer: these tokens cannot be
// renewed).
func (a *Account) Token(t config.Token) (providers.Provider, error) {
	if t.Kind != KindSCIMToken {
		return nil, fmt.Errorf("%s.kind: %q is not a huawei-idc kind (want %s)", tokenPath(t), t.Kind, KindSCIMToken)
	}
	if err := checkID(t.TenantID); err != nil {
		return nil, fmt.Errorf("%s.tenant_id: %w", tokenPath(t), err)
	}
	return &SCIMToken{acct: a, name: t.Name, tenant: t.TenantID}, nil
}

// Check makes one signed call (list the identity store's provisioning tenants), which proves the AK/SK, the
// clock, the endpoint and the identity_store_id. It implements providers.Checker.
func (a *Account) Check(ctx context.Context) error {
	ctx = providers.WithOperation(ctx, "login")
	path := "/v1/identity-stores/" + a.storeID + "/provision-tenant"
	ans, err := a.signed(ctx, http.MethodGet, path)
	if err != nil {
		return fmt.Errorf("checking credentials: %w", err)
	}
	if ans.status != http.StatusOK {
		return fmt.Errorf("checking credentials: %w", a.apiError("GET "+path, ans))
	}
	if _, err := decodeTenants(ans.body); err != nil {
		return fmt.Errorf("checking credentials: %w", unreadable("GET "+path, ans.status, err))
	}
	return nil
}

// answer is one HTTP response, its body read (bounded).
type answer struct {
	status  int
	header  http.Header
	body    []byte
	readErr error // reading the body failed after the status arrived
}

// signed sends an AK/SK-signed identity-store request with no body. A transport error is returned as is
// (callers of non-idempotent calls wrap it with providers.Lost).
func (a *Account) signed(ctx context.Context, method, path string) (answer, error) {
	u := *a.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return answer{}, fmt.Errorf("building %s %s: %w", method, path, err)
	}
	if method == http.MethodPost {
		// The SDK sends this with an empty body; Content-Type is not signed.
		req.Header.Set("Content-Type", "application/json")
	}
	signRequest(req, nil, a.ak.Reveal(), a.sk.Reveal(), a.now())
	return a.do(req)
}

func (a *Account) do(req *http.Request) (answer, error) {
	resp, err := a.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return answer{status: resp.StatusCode, header: resp.Header, body: body, readErr: rerr}, nil
}

// apiError turns a non-success answer into a classified *providers.APIError.
func (a *Account) apiError(op string, ans answer) *providers.APIError {
	ve := decodeError(ans.body)
	e := &providers.APIError{
		Op:      op,
		Status:  ans.status,
		Code:    ve.Code,
		Message: ve.Message,
		Class:   providers.ClassForStatus(ans.status),
	}
	if ve.RequestID != "" {
		e.Message = strings.TrimSpace(e.Message + " (request_id " + ve.RequestID + ")")
	}
	switch {
	case ans.status == http.StatusConflict && (codeSuffix(ve.Code) == "1006" || codeSuffix(ve.Code) == "1007"):
		// Concurrency conflict / modification failed: "retry later".
		e.Class = providers.Transient
	case ans.status == http.StatusTooManyRequests:
		e.RetryAfter = retryAfter(ans.header.Get("Retry-After"), a.now())
	case ans.status == http.StatusUnauthorized:
		// A refused signature is often a skewed clock: the gateway allows 15 minutes.
		if d, err := http.ParseTime(ans.header.Get("Date")); err == nil {
			if skew := a.now().Sub(d); skew > 5*time.Minute || skew < -5*time.Minute {
				e.Message = strings.TrimSpace(e.Message + fmt.Sprintf(" (local clock is %s off the vendor's)", skew.Round(time.Second)))
			}
		}
	}
	return e
}

// unreadable is the error for a success answer whose body cannot be used. On reads it is transient; callers
// of create wrap it with providers.Lost.
func unreadable(op string, status int, err error) *providers.APIError {
	return &providers.APIError{Op: op, Status: status, Message: "unreadable answer: " + clean(err.Error(), 160), Class: providers.Transient}
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); 0 when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return min(time.Duration(n)*time.Second, time.Hour)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), time.Hour)
	}
	return 0
}

// lockTenant serializes changes to one tenant's tokens; it honours ctx while waiting.
func (a *Account) lockTenant(ctx context.Context, tenant string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	ch, ok := a.tenants[tenant]
	if !ok {
		ch = make(chan struct{}, 1)
		a.tenants[tenant] = ch
	}
	a.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func providerPath(p config.Provider) string {
	return fmt.Sprintf("providers[%d] (%s)", p.Index, p.Name)
}
func tokenPath(t config.Token) string { return fmt.Sprintf("tokens[%d] (%s)", t.Index, t.Name) }
