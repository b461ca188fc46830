// Package httpprov is a provider for the small JSON vendor API that providertest.NewHandler serves, so the
// rotation engine and the real binary can be tested end to end, over HTTP, against a fake vendor living in the
// test process. It behaves like a vendor package: one attempt per call, typed errors classified with
// providers.ClassForStatus, transport errors and unreadable answers of create and renew wrapped with
// providers.Lost, and no secret in any error.
package httpprov

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend/providers"
)

// maxBody bounds the answers read from the vendor.
const maxBody = 1 << 20

// maxMessage bounds the vendor message copied into an error.
const maxMessage = 200

// Provider talks to a providertest.NewHandler vendor. It implements providers.Provider, Verifier,
// OrphanFinder and Bootstrapper; Renewing adds Renewer. It is safe for concurrent use.
type Provider struct {
	base string
	hc   *http.Client
}

// Renewing is a Provider that renews tokens in place (providers.Renewer).
type Renewing struct{ *Provider }

// New returns a provider for the vendor at baseURL ("http://127.0.0.1:port", no trailing path needed). Its
// dynamic type implements providers.Renewer exactly when renewable. opts.HTTP is used for every request
// (nil: a client with a 30s timeout).
func New(baseURL string, renewable bool, opts providers.Options) providers.Provider {
	hc := opts.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	p := &Provider{base: strings.TrimRight(baseURL, "/"), hc: hc}
	if renewable {
		return &Renewing{p}
	}
	return p
}

// Inspect reads GET /tokens/{id}; 404 is Status{Gone: true}.
func (p *Provider) Inspect(ctx context.Context, t providers.Token) (providers.Status, error) {
	if t.ID == "" {
		return providers.Status{}, errors.New("inspecting token: empty id")
	}
	status, body, hdr, err := p.do(ctx, "inspect", http.MethodGet, "/tokens/"+url.PathEscape(t.ID), "", nil)
	op := "GET /tokens/" + t.ID
	switch {
	case err != nil:
		return providers.Status{}, fmt.Errorf("inspecting token: %s: %w", op, err)
	case status == http.StatusNotFound:
		return providers.Status{Gone: true}, nil
	case status != http.StatusOK:
		return providers.Status{}, fmt.Errorf("inspecting token: %w", apiError(op, status, hdr, body))
	}
	w, err := decodeToken(body)
	if err != nil {
		return providers.Status{}, fmt.Errorf("inspecting token: %w", unreadable(op, err))
	}
	return providers.Status{ExpiresAt: timeOf(w.ExpiresAt), RenewableUntil: timeOf(w.RenewableUntil)}, nil
}

// Create posts {"name": req.VendorName} to /tokens.
func (p *Provider) Create(ctx context.Context, req providers.CreateRequest) (providers.Token, error) {
	body, err := json.Marshal(map[string]string{"name": req.VendorName})
	if err != nil {
		return providers.Token{}, fmt.Errorf("creating token: %w", err)
	}
	tok, err := p.issue(ctx, "create", "/tokens", "", body)
	if err != nil {
		return providers.Token{}, fmt.Errorf("creating token: %w", err)
	}
	return tok, nil
}

// Renew posts to /tokens/{id}/renew presenting t.Refresh. The answer's refresh credential replaces t's.
func (r *Renewing) Renew(ctx context.Context, t providers.Token) (providers.Token, error) {
	if t.ID == "" || t.Refresh.IsZero() {
		return providers.Token{}, errors.New("renewing token: no id or refresh credential")
	}
	tok, err := r.issue(ctx, "renew", "/tokens/"+url.PathEscape(t.ID)+"/renew", t.Refresh.Reveal(), nil)
	if err != nil {
		return providers.Token{}, fmt.Errorf("renewing token %s: %w", t.ID, err)
	}
	if tok.ID != t.ID {
		return providers.Token{}, fmt.Errorf("renewing token %s: %w", t.ID,
			providers.Lost(fmt.Errorf("answer names token %q", tok.ID)))
	}
	return tok, nil
}

// issue makes a non-idempotent request whose answer carries a secret: a lost or unreadable answer is
// providers.Lost.
func (p *Provider) issue(ctx context.Context, opName, path, auth string, body []byte) (providers.Token, error) {
	op := "POST " + path
	status, answer, hdr, err := p.do(ctx, opName, http.MethodPost, path, auth, body)
	if err != nil {
		if status == -1 {
			return providers.Token{}, fmt.Errorf("%s: %w", op, err) // never sent
		}
		return providers.Token{}, providers.Lost(fmt.Errorf("%s: %w", op, err))
	}
	if status != http.StatusOK && status != http.StatusCreated {
		return providers.Token{}, apiError(op, status, hdr, answer)
	}
	w, err := decodeToken(answer)
	if err == nil && w.Secret == "" {
		err = errors.New("no secret in answer")
	}
	if err != nil {
		return providers.Token{}, providers.Lost(fmt.Errorf("%s: decoding answer: %w", op, err))
	}
	return w.token(), nil
}

// Revoke deletes /tokens/{id}; 404 counts as done.
func (p *Provider) Revoke(ctx context.Context, t providers.Token, _ providers.Token) error {
	if t.ID == "" {
		return errors.New("revoking token: empty id")
	}
	op := "DELETE /tokens/" + t.ID
	status, body, hdr, err := p.do(ctx, "revoke", http.MethodDelete, "/tokens/"+url.PathEscape(t.ID), "", nil)
	switch {
	case err != nil:
		return fmt.Errorf("revoking token: %s: %w", op, err)
	case status == http.StatusNotFound || status/100 == 2:
		return nil
	}
	return fmt.Errorf("revoking token: %w", apiError(op, status, hdr, body))
}

// Verify calls GET /verify with t.Secret.
func (p *Provider) Verify(ctx context.Context, t providers.Token) error {
	const op = "GET /verify"
	status, body, hdr, err := p.do(ctx, "verify", http.MethodGet, "/verify", t.Secret.Reveal(), nil)
	switch {
	case err != nil:
		return fmt.Errorf("verifying token %s: %s: %w", t.ID, op, err)
	case status != http.StatusOK:
		return fmt.Errorf("verifying token %s: %w", t.ID, apiError(op, status, hdr, body))
	}
	return nil
}

// Orphans lists the tokens named req.VendorName whose ids are not in req.Keep.
func (p *Provider) Orphans(ctx context.Context, req providers.CreateRequest) ([]providers.Token, error) {
	const op = "GET /orphans"
	q := url.Values{"name": {req.VendorName}}
	if len(req.Keep) > 0 {
		q.Set("keep", strings.Join(req.Keep, ","))
	}
	if !req.StartedAt.IsZero() {
		q.Set("since", req.StartedAt.UTC().Format(time.RFC3339Nano))
	}
	status, body, hdr, err := p.do(ctx, "list", http.MethodGet, "/orphans?"+q.Encode(), "", nil)
	switch {
	case err != nil:
		return nil, fmt.Errorf("finding orphans: %s: %w", op, err)
	case status != http.StatusOK:
		return nil, fmt.Errorf("finding orphans: %w", apiError(op, status, hdr, body))
	}
	ws, err := decodeOrphans(body)
	if err != nil {
		return nil, fmt.Errorf("finding orphans: %w", unreadable(op, err))
	}
	var out []providers.Token
	for _, w := range ws {
		if w.Name == req.VendorName && !slices.Contains(req.Keep, w.ID) { // trust, but check
			w.Secret, w.Refresh = "", ""
			out = append(out, w.token())
		}
	}
	return out, nil
}

// Bootstrap exchanges the bootstrap secret at POST /bootstrap for its token (id, times, refresh credential).
func (p *Provider) Bootstrap(ctx context.Context, secret providers.Secret) (providers.Token, error) {
	const op = "POST /bootstrap"
	status, body, hdr, err := p.do(ctx, "inspect", http.MethodPost, "/bootstrap", secret.Reveal(), nil)
	switch {
	case err != nil:
		return providers.Token{}, fmt.Errorf("bootstrapping token: %s: %w", op, err)
	case status != http.StatusOK:
		return providers.Token{}, fmt.Errorf("bootstrapping token: %w", apiError(op, status, hdr, body))
	}
	w, err := decodeToken(body)
	if err != nil {
		return providers.Token{}, fmt.Errorf("bootstrapping token: %w", unreadable(op, err))
	}
	w.Secret = secret.Reveal() // the value we were given is the credential, whatever the answer says
	return w.token(), nil
}

// do makes one request and reads its answer. status is -1 when no request was sent (ctx already done).
// Transport errors are returned as they are; the caller decides whether they are Lost.
func (p *Provider) do(ctx context.Context, op, method, path, bearer string, body []byte) (int, []byte, http.Header, error) {
	if err := ctx.Err(); err != nil {
		return -1, nil, nil, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(providers.WithOperation(ctx, op), method, p.base+path, rd)
	if err != nil {
		return -1, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading answer: %w", err)
	}
	return resp.StatusCode, answer, resp.Header, nil
}

// apiError builds the error for a non-2xx answer.
func apiError(op string, status int, hdr http.Header, body []byte) *providers.APIError {
	e := &providers.APIError{Op: op, Status: status, Class: providers.ClassForStatus(status)}
	if w, err := decodeError(body); err == nil {
		e.Code = w.Code
		e.Message = w.Message
		if len(e.Message) > maxMessage {
			e.Message = e.Message[:maxMessage]
		}
	}
	switch e.Code {
	case "not_renewable":
		e.Class = providers.NotRenewable
	case "invalid_grant":
		e.Class = providers.Unauthorized
	}
	if s, err := strconv.Atoi(strings.TrimSpace(hdr.Get("Retry-After"))); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// unreadable is the error for a 2xx answer of a read that cannot be decoded: transient (the next read may
// be fine).
func unreadable(op string, err error) error {
	return &providers.APIError{Op: op, Status: http.StatusOK, Message: "unreadable answer: " + err.Error(),
		Class: providers.Transient}
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
