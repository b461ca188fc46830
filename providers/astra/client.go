package astra

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend/providers"
)

const (
	maxBody      = 4 << 20  // a list page or a token
	maxErrorBody = 64 << 10 // a problem body
)

// request is one call to the token API.
type request struct {
	op     string // providers.WithOperation label
	method string
	id     string // token id; "" for the collection
	query  url.Values
	bearer providers.Secret
	body   []byte // JSON; sent with Content-Type application/astra-token+json
	accept string
}

// errNotSent marks a request that was never sent (its context was done first).
type errNotSent struct{ err error }

func (e errNotSent) Error() string { return e.err.Error() }
func (e errNotSent) Unwrap() error { return e.err }

// response is a 2xx answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// opName is the "METHOD /path" of r for errors; paths hold only ids, never a secret.
func (a *Account) opName(r request) string {
	p := a.collection.Path
	if r.id != "" {
		p += "/" + url.PathEscape(r.id)
	}
	return r.method + " " + p
}

// do sends r once. A non-2xx answer is a *providers.APIError; a transport failure is returned wrapped with
// the operation name (callers of non-idempotent requests wrap it with providers.Lost). An error whose
// body could not be read after a 2xx status is returned as is (callers decide Lost or Transient).
func (a *Account) do(ctx context.Context, r request) (response, error) {
	if r.bearer.IsZero() {
		return response{}, fmt.Errorf("%s: %w", a.opName(r), errNoCredential)
	}
	if err := ctx.Err(); err != nil {
		// Not sent: the caller must not take this for a lost answer.
		return response{}, fmt.Errorf("%s: %w", a.opName(r), errNotSent{err})
	}
	u := *a.collection
	if r.id != "" {
		u = *u.JoinPath(r.id)
	}
	if r.query != nil {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(providers.WithOperation(ctx, r.op), r.method, u.String(), body)
	if err != nil {
		return response{}, fmt.Errorf("%s: %w", a.opName(r), err)
	}
	req.Header.Set("Authorization", "Bearer "+r.bearer.Reveal())
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", mediaToken)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s: %w", a.opName(r), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return response{}, apiError(a.opName(r), resp, b, r.bearer)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return response{}, fmt.Errorf("%s: reading answer: %w", a.opName(r), err)
	}
	if len(b) > maxBody {
		return response{}, fmt.Errorf("%s: answer larger than %d bytes", a.opName(r), maxBody)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// apiError builds the typed error for a non-2xx answer. The problem's title and detail become the message,
// with the bearer scrubbed in case a vendor ever echoed it.
func apiError(op string, resp *http.Response, body []byte, bearer providers.Secret) *providers.APIError {
	ae := &providers.APIError{Op: op, Status: resp.StatusCode, Class: providers.ClassForStatus(resp.StatusCode)}
	if p, ok := decodeProblem(body); ok {
		// Scrub before truncating, so no prefix of the bearer survives either.
		scrub := func(v string) string {
			if s := bearer.Reveal(); s != "" {
				v = strings.ReplaceAll(v, s, "<secret>")
			}
			return v
		}
		ae.Code = truncate(scrub(p.code()), 80)
		msg := p.Title
		if p.Detail != "" && p.Detail != p.Title {
			msg = strings.TrimSpace(msg + ": " + p.Detail)
		}
		ae.Message = truncate(scrub(msg), 300)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		ae.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return ae
}

// retryAfter reads a Retry-After header: delta seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return min(time.Duration(n)*time.Second, 24*time.Hour)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}

// malformed is the error for a 2xx body that cannot be read.
func malformed(op string, status int, err error) *providers.APIError {
	return &providers.APIError{Op: op, Status: status, Class: providers.Transient,
		Message: "unreadable answer: " + truncate(err.Error(), 200)}
}
