package commvault

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/tokend/tokend/providers"
)

// maxBody bounds every vendor answer read (a token list of a few thousand entries fits).
const maxBody = 4 << 20

// Account is one Commvault login (a providers entry of type commvault): the API base URL, the user and
// password, and the QSDK session that every token of the account shares. It is safe for concurrent use.
type Account struct {
	name     string
	base     string // no trailing slash
	user     string
	password providers.Secret
	http     *http.Client
	log      *slog.Logger
	now      func() time.Time

	loginSem chan struct{} // one login at a time
	mu       sync.Mutex
	session  providers.Secret // "QSDK ..." or empty before the first login
}

// call is one HTTP request to the vendor.
type call struct {
	op     string // operation label for providers.WithOperation
	method string
	path   string // below the base URL, e.g. /V4/AccessToken
	body   any    // marshalled as JSON; nil: no body
	header map[string]string
	// lost marks a call the vendor may act on (create, renew): a transport error after it may have been
	// sent is wrapped with providers.Lost.
	lost bool
}

// name is the operation as APIError.Op shows it.
func (c call) name() string { return c.method + " " + c.path }

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) ok() bool { return a.status >= 200 && a.status < 300 }

// send makes one request. The body of the answer is read through a limit.
func (a *Account) send(ctx context.Context, c call) (answer, error) {
	if err := ctx.Err(); err != nil {
		return answer{}, fmt.Errorf("%s: %w", c.name(), err)
	}
	var rd io.Reader
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			return answer{}, fmt.Errorf("%s: encoding request: %w", c.name(), err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(providers.WithOperation(ctx, c.op), c.method, a.base+c.path, rd)
	if err != nil {
		return answer{}, fmt.Errorf("%s: %w", c.name(), err)
	}
	req.Header.Set("Accept", "application/json")
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		err = fmt.Errorf("%s: %w", c.name(), err)
		if c.lost {
			err = providers.Lost(err)
		}
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = errors.New("answer larger than 4 MiB")
	}
	if err != nil {
		if c.lost && resp.StatusCode < 300 {
			return answer{}, providers.Lost(fmt.Errorf("%s: reading answer: %w", c.name(), err))
		}
		return answer{}, &providers.APIError{Op: c.name(), Status: resp.StatusCode,
			Message: "unreadable answer: " + err.Error(), Class: providers.Transient}
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// sessionDo sends c with the account's session in the Authtoken header, logging in first when there is no
// session. When the vendor answers 401 (the session lapsed) it logs in again once and retries c once.
func (a *Account) sessionDo(ctx context.Context, c call) (answer, error) {
	sess, err := a.currentSession(ctx)
	if err != nil {
		return answer{}, err
	}
	c.header = map[string]string{"Authtoken": sess.Reveal()}
	ans, err := a.send(ctx, c)
	if err != nil || ans.status != http.StatusUnauthorized {
		return ans, err
	}
	a.log.Debug("commvault session refused, logging in again", "provider", a.name, "op", c.name())
	if sess, err = a.relogin(ctx, sess); err != nil {
		return answer{}, err
	}
	c.header = map[string]string{"Authtoken": sess.Reveal()}
	return a.send(ctx, c)
}

func (a *Account) currentSession(ctx context.Context) (providers.Secret, error) {
	a.mu.Lock()
	s := a.session
	a.mu.Unlock()
	if !s.IsZero() {
		return s, nil
	}
	return a.relogin(ctx, s)
}

// relogin logs in unless another caller already replaced the stale session meanwhile.
func (a *Account) relogin(ctx context.Context, stale providers.Secret) (providers.Secret, error) {
	select {
	case a.loginSem <- struct{}{}:
	case <-ctx.Done():
		return providers.Secret{}, fmt.Errorf("logging in: %w", ctx.Err())
	}
	defer func() { <-a.loginSem }()
	a.mu.Lock()
	cur := a.session
	a.mu.Unlock()
	if !cur.IsZero() && cur.Reveal() != stale.Reveal() {
		return cur, nil
	}
	s, err := a.login(ctx)
	if err != nil {
		return providers.Secret{}, err
	}
	a.mu.Lock()
	a.session = s
	a.mu.Unlock()
	return s, nil
}

type loginBody struct {
	Username string `json:"username"`
	Password string `json:"password"` // base64 of the UTF-8 password
}

// login makes one POST /Login and returns the session token.
func (a *Account) login(ctx context.Context) (providers.Secret, error) {
	c := call{op: "login", method: http.MethodPost, path: "/Login", body: loginBody{
		Username: a.user,
		Password: base64.StdEncoding.EncodeToString([]byte(a.password.Reveal())),
	}}
	ans, err := a.send(ctx, c)
	if err != nil {
		return providers.Secret{}, fmt.Errorf("logging in: %w", err)
	}
	if !ans.ok() {
		return providers.Secret{}, fmt.Errorf("logging in: %w", a.apiError(c, ans, a.password.Reveal()))
	}
	tok, refusal, err := decodeLogin(ans.body)
	if err != nil {
		return providers.Secret{}, fmt.Errorf("logging in: %w", malformedRead(c, err))
	}
	if refusal.failed() {
		// A refused login comes inside a 200 body (errList): the credentials are wrong or the account locked.
		return providers.Secret{}, fmt.Errorf("logging in: %w", &providers.APIError{
			Op: c.name(), Code: strconv.FormatInt(refusal.Code, 10),
			Message: scrub(refusal.Message, a.password.Reveal()), Class: providers.Unauthorized,
		})
	}
	return providers.NewSecret(tok), nil
}

// Check logs in with the configured credentials (tokend check --online) and keeps the session.
func (a *Account) Check(ctx context.Context) error {
	s, err := a.login(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.session = s
	a.mu.Unlock()
	return nil
}

// apiError turns a failed answer into a classified *providers.APIError. secrets are values sent with the
// request, removed from the vendor's message should it echo one.
func (a *Account) apiError(c call, ans answer, secrets ...string) *providers.APIError {
	ve := decodeError(ans.body)
	return vendorFailure(c, ans.status, ans.header, ve, secrets...)
}

func vendorFailure(c call, status int, h http.Header, ve vendorError, secrets ...string) *providers.APIError {
	e := &providers.APIError{
		Op:      c.name(),
		Status:  status,
		Message: scrub(ve.Message, secrets...),
		Class:   classify(c, status, ve),
	}
	if ve.Code != 0 && ve.Code != -1 {
		e.Code = strconv.FormatInt(ve.Code, 10)
	}
	if h != nil {
		e.RetryAfter = retryAfter(h.Get("Retry-After"))
	}
	return e
}

// classify sorts a vendor failure. status is 0 for an error reported inside a 2xx body.
func classify(c call, status int, ve vendorError) providers.Class {
	m := strings.ToLower(ve.Message)
	if c.op == "renew" && notRenewable(m) {
		return providers.NotRenewable
	}
	if status != 0 {
		return providers.ClassForStatus(status)
	}
	switch {
	case ve.Code == 5 || strings.Contains(m, "access denied"):
		return providers.Unauthorized
	case strings.Contains(m, "not found") || strings.Contains(m, "does not exist"):
		return providers.NotFound
	}
	return providers.Permanent
}

// notRenewable recognises the vendor saying a token cannot be renewed any more: past renewableUntil, or its
// refresh token expired. Both mean: recreate.
func notRenewable(m string) bool {
	if strings.Contains(m, "renew") {
		for _, w := range []string{"until", "beyond", "any more", "anymore", "no longer", "cannot", "not allowed"} {
			if strings.Contains(m, w) {
				return true
			}
		}
	}
	return strings.Contains(m, "refresh token") && strings.Contains(m, "expired")
}

// malformedRead is the error for an unreadable 2xx answer to a read: the next attempt may do better.
func malformedRead(c call, err error) error {
	return &providers.APIError{Op: c.name(), Status: http.StatusOK, Message: err.Error(), Class: providers.Transient}
}

// malformedWrite is the error for an unreadable 2xx answer to create or renew: the vendor acted, the
// answer is lost.
func malformedWrite(c call, err error) error {
	return providers.Lost(malformedRead(c, err))
}

// scrub makes a vendor message safe for an error: printable, short, and without any value sent in the
// request.
func scrub(msg string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "<secret>")
		}
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(msg))
	if r := []rune(msg); len(r) > 200 {
		msg = string(r[:200]) + "..."
	}
	return msg
}

func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(min(n, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return min(d, 24*time.Hour)
		}
	}
	return 0
}
