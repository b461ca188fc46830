package vcd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
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
	maxBody     = 1 << 20 // bytes read from any vendor answer
	maxPages    = 1000    // pages followed in one list
	listPage    = 128     // pageSize asked for (the CloudAPI maximum)
	cloudAPI    = "/cloudapi/1.0.0"
	jwtHeader   = "X-VMWARE-VCLOUD-ACCESS-TOKEN"
	sessionSkew = 30 * time.Second // a password session is dropped this long before its JWT expires
)

// call is one HTTP request to the vendor.
type call struct {
	method string
	path   string     // unescaped-safe path below the base URL, e.g. /cloudapi/1.0.0/tokens
	query  url.Values // optional
	full   string     // when set, the absolute URL to use instead of path+query (a nextPage link)
	bearer providers.Secret
	basic  string // "user@org:password" for a password login; never logged
	accept string // default: the versioned CloudAPI Accept
	form   url.Values
	json   any
	// mutating marks non-idempotent calls (create, renew): a transport error after sending is Lost.
	mutating bool
}

// answer is a 2xx response, body read.
type answer struct {
	header http.Header
	body   []byte
	url    *url.URL
}

func (a *Account) cloudAccept() string { return "application/json;version=" + a.version }

// do sends c once. Non-2xx answers become *providers.APIError; transport errors of mutating calls are Lost.
func (a *Account) do(ctx context.Context, c call) (answer, error) {
	op := c.method + " " + c.path
	if err := ctx.Err(); err != nil {
		return answer{}, fmt.Errorf("%s: %w", op, err)
	}
	var target string
	if c.full != "" {
		target = c.full
	} else {
		target = a.base + c.path
		if len(c.query) > 0 {
			target += "?" + c.query.Encode()
		}
	}
	var body io.Reader
	var ctype string
	switch {
	case c.form != nil:
		body, ctype = strings.NewReader(c.form.Encode()), "application/x-www-form-urlencoded"
	case c.json != nil:
		b, err := json.Marshal(c.json)
		if err != nil {
			return answer{}, fmt.Errorf("%s: encoding request: %w", op, err)
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, c.method, target, body)
	if err != nil {
		return answer{}, fmt.Errorf("%s: building request: %w", op, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	accept := c.accept
	if accept == "" {
		accept = a.cloudAccept()
	}
	req.Header.Set("Accept", accept)
	switch {
	case !c.bearer.IsZero():
		req.Header.Set("Authorization", "Bearer "+c.bearer.Reveal())
	case c.basic != "":
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.basic)))
	}
	resp, err := a.http.Do(req)
	if err != nil {
		err = fmt.Errorf("%s: %w", op, stripURL(err))
		if c.mutating {
			return answer{}, providers.Lost(err)
		}
		return answer{}, err
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answer{}, apiError(op, resp, b)
	}
	if rerr != nil {
		err = fmt.Errorf("%s: reading answer: %w", op, rerr)
		if c.mutating {
			return answer{}, providers.Lost(err)
		}
		return answer{}, err
	}
	return answer{header: resp.Header, body: b, url: resp.Request.URL}, nil
}

// stripURL removes the URL from a *url.Error: the op already names the path, and a query may be long.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// apiError turns a non-2xx answer into a classified *providers.APIError.
func apiError(op string, resp *http.Response, body []byte) *providers.APIError {
	code, msg := decodeError(body)
	e := &providers.APIError{Op: op, Status: resp.StatusCode, Code: code, Message: msg, Class: providers.ClassForStatus(resp.StatusCode)}
	if strings.EqualFold(code, "invalid_grant") {
		// The refresh token (API token) is dead: revoked, replayed, or rotated by an answer we lost.
		e.Class = providers.Unauthorized
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

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

// malformed wraps a decode error of a 2xx answer: Lost for mutating calls (the vendor acted), a transient
// failure for reads.
func malformed(op string, mutating bool, err error) error {
	if mutating {
		return providers.Lost(fmt.Errorf("%s: %w", op, err))
	}
	return &providers.APIError{Op: op, Status: http.StatusOK, Code: "malformed", Message: truncate(clean(err.Error()), 200), Class: providers.Transient}
}

// ---- password session ----

func (a *Account) loginPath() string {
	if a.system {
		return cloudAPI + "/sessions/provider"
	}
	return cloudAPI + "/sessions"
}

// login makes a new password session and caches it.
func (a *Account) login(ctx context.Context) (providers.Secret, error) {
	if !a.hasLogin {
		return providers.Secret{}, errors.New("logging in: no username and password_file configured for this provider")
	}
	ctx = providers.WithOperation(ctx, "login")
	path := a.loginPath()
	ans, err := a.do(ctx, call{method: http.MethodPost, path: path, basic: a.username + "@" + a.org + ":" + a.password.Reveal()})
	if err != nil {
		return providers.Secret{}, fmt.Errorf("logging in: %w", err)
	}
	jwt := strings.TrimSpace(ans.header.Get(jwtHeader))
	if jwt == "" {
		return providers.Secret{}, fmt.Errorf("logging in: POST %s: no %s header in the answer", path, jwtHeader)
	}
	s, err := decodeSession(ans.body)
	if err != nil {
		return providers.Secret{}, fmt.Errorf("logging in: %w", malformed("POST "+path, false, err))
	}
	now := a.now()
	exp := jwtExpiry(jwt)
	if exp.IsZero() {
		idle := time.Duration(s.SessionIdleTimeoutMinutes) * time.Minute
		if idle <= 0 {
			idle = 30 * time.Minute
		}
		exp = now.Add(idle)
	}
	sec := providers.NewSecret(jwt)
	a.mu.Lock()
	a.sess, a.sessExp = sec, exp.Add(-sessionSkew)
	a.mu.Unlock()
	return sec, nil
}

// session returns the cached password session, logging in when there is none or it lapsed. fresh is true
// when it was made by this call.
func (a *Account) session(ctx context.Context) (sec providers.Secret, fresh bool, err error) {
	a.mu.Lock()
	sec, exp := a.sess, a.sessExp
	a.mu.Unlock()
	if !sec.IsZero() && a.now().Before(exp) {
		return sec, false, nil
	}
	sec, err = a.login(ctx)
	return sec, true, err
}

// dropSession forgets sec if it is still the cached session.
func (a *Account) dropSession(sec providers.Secret) {
	a.mu.Lock()
	if a.sess.Reveal() == sec.Reveal() {
		a.sess, a.sessExp = providers.Secret{}, time.Time{}
	}
	a.mu.Unlock()
}

// authed sends c with the password session; when a cached session is refused (it lapsed or was logged
// out), it logs in again and sends c once more. A refused request was not acted on, so this is safe for
// mutating calls too.
func (a *Account) authed(ctx context.Context, c call) (answer, providers.Secret, error) {
	sec, fresh, err := a.session(ctx)
	if err != nil {
		return answer{}, sec, err
	}
	c.bearer = sec
	ans, err := a.do(ctx, c)
	var ae *providers.APIError
	if err != nil && !fresh && errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		a.dropSession(sec)
		if sec, err = a.login(ctx); err != nil {
			return answer{}, sec, err
		}
		c.bearer = sec
		ans, err = a.do(ctx, c)
	}
	return ans, sec, err
}

// jwtExpiry reads the exp claim of a JWT without verifying it; zero when there is none.
func jwtExpiry(jwt string) time.Time {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil {
		return time.Time{}
	}
	n, err := claims.Exp.Int64()
	if err != nil || n <= 0 || n > 1<<40 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// ---- OAuth ----

func (a *Account) oauthPath(endpoint string) string {
	if a.system {
		return "/oauth/provider/" + endpoint
	}
	return "/oauth/tenant/" + url.PathEscape(a.org) + "/" + endpoint
}

// grant is an answered OAuth token request.
type grant struct {
	access  providers.Secret
	refresh providers.Secret // zero unless the vendor returned one
	at      time.Time        // local time the answer arrived
	expires time.Time        // at + expires_in
}

func (a *Account) tokenGrant(ctx context.Context, form url.Values) (grant, error) {
	path := a.oauthPath("token")
	ans, err := a.do(ctx, call{method: http.MethodPost, path: path, form: form, accept: "application/json", mutating: true})
	if err != nil {
		return grant{}, err
	}
	at := a.now()
	g, err := decodeGrant(ans.body)
	if err != nil {
		return grant{}, malformed("POST "+path, true, err)
	}
	return grant{
		access:  providers.NewSecret(g.AccessToken),
		refresh: providers.NewSecret(g.RefreshToken),
		at:      at,
		expires: at.Add(time.Duration(g.ExpiresIn) * time.Second),
	}, nil
}

// refreshGrant exchanges an API token for a bearer JWT. When the vendor rotates the API token, the answer's
// refresh is the replacement and the presented one is dead.
func (a *Account) refreshGrant(ctx context.Context, apiToken providers.Secret) (grant, error) {
	return a.tokenGrant(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {apiToken.Reveal()}})
}

// mint registers an OAuth client named name and fetches its one-time initial API token, with a password
// session (API-token sessions may not create tokens). The result's refresh is the new API token.
func (a *Account) mint(ctx context.Context, name string) (id string, g grant, err error) {
	path := a.oauthPath("register")
	ans, sess, err := a.authed(ctx, call{method: http.MethodPost, path: path, json: map[string]string{"client_name": name}, accept: "application/json", mutating: true})
	if err != nil {
		return "", grant{}, fmt.Errorf("registering client: %w", err)
	}
	cl, err := decodeClient(ans.body)
	if err != nil {
		return "", grant{}, fmt.Errorf("registering client: %w", malformed("POST "+path, true, err))
	}
	id = "urn:vcloud:token:" + cl.ClientID
	g, err = a.tokenGrant(ctx, url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion":  {sess.Reveal()},
		"client_id":  {cl.ClientID},
	})
	if err != nil {
		// The token exists vendor-side without a secret we hold: the caller's orphan search finds it by name.
		return id, grant{}, fmt.Errorf("fetching the initial api token of %s: %w", id, lostIfAPI(err))
	}
	if g.refresh.IsZero() {
		return id, grant{}, fmt.Errorf("fetching the initial api token of %s: %w", id, providers.Lost(errors.New("no refresh_token in the answer")))
	}
	return id, g, nil
}

// lostIfAPI marks any failure after a vendor-side object was created as Lost: whatever the second call
// said, the first one acted, so the engine must look for what it left behind.
func lostIfAPI(err error) error {
	if providers.IsAmbiguous(err) {
		return err
	}
	return providers.Lost(err)
}

// ---- CloudAPI reads ----

func tokenPath(id string) string { return cloudAPI + "/tokens/" + url.PathEscape(id) }

// getToken reads one token with the password session.
func (a *Account) getToken(ctx context.Context, id string) (wireToken, error) {
	path := tokenPath(id)
	ans, _, err := a.authed(ctx, call{method: http.MethodGet, path: path})
	if err != nil {
		return wireToken{}, err
	}
	t, err := decodeToken(ans.body)
	if err != nil {
		return wireToken{}, malformed("GET "+path, false, err)
	}
	return t, nil
}

// deleteToken revokes one token with the password session; a token already gone is done.
func (a *Account) deleteToken(ctx context.Context, id string) error {
	_, _, err := a.authed(ctx, call{method: http.MethodDelete, path: tokenPath(id)})
	if err != nil && providers.IsNotFound(err) {
		return nil
	}
	return err
}

// listTokens reads every token matching the FIQL filter, following the Link rel="nextPage" header and, when
// the vendor leaves it out, computing the next page from resultTotal.
func (a *Account) listTokens(ctx context.Context, filter string) ([]wireToken, error) {
	path := cloudAPI + "/tokens"
	q := url.Values{"page": {"1"}, "pageSize": {strconv.Itoa(listPage)}, "sortAsc": {"name"}}
	if filter != "" {
		q.Set("filter", filter)
	}
	c := call{method: http.MethodGet, path: path, query: q}
	var out []wireToken
	seen := 0
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("GET %s: more than %d pages", path, maxPages)
		}
		ans, _, err := a.authed(ctx, c)
		if err != nil {
			return nil, err
		}
		p, err := decodePage(ans.body)
		if err != nil {
			return nil, malformed("GET "+path, false, err)
		}
		out = append(out, p.Values...)
		seen += len(p.Values)
		if next := nextPageLink(ans.header.Values("Link")); next != "" {
			u, err := ans.url.Parse(next)
			if err != nil || !a.sameOrigin(u) {
				return nil, &providers.APIError{Op: "GET " + path, Status: http.StatusOK, Code: "malformed", Message: "nextPage link points elsewhere", Class: providers.Permanent}
			}
			c = call{method: http.MethodGet, path: path, full: u.String()}
			continue
		}
		if len(p.Values) == 0 || seen >= p.ResultTotal {
			return out, nil
		}
		q.Set("page", strconv.Itoa(page+1))
		c = call{method: http.MethodGet, path: path, query: q}
	}
}

func (a *Account) sameOrigin(u *url.URL) bool {
	b, err := url.Parse(a.base)
	return err == nil && strings.EqualFold(u.Scheme, b.Scheme) && strings.EqualFold(u.Host, b.Host)
}

// currentSession returns the session behind a bearer JWT.
func (a *Account) currentSession(ctx context.Context, jwt providers.Secret) (wireSession, error) {
	path := cloudAPI + "/sessions/current"
	ans, err := a.do(ctx, call{method: http.MethodGet, path: path, bearer: jwt})
	if err != nil {
		return wireSession{}, err
	}
	s, err := decodeSession(ans.body)
	if err != nil {
		return wireSession{}, malformed("GET "+path, false, err)
	}
	return s, nil
}

// sessionToken returns the token record behind the session of a bearer JWT
// (GET /sessions/current, then GET /sessions/{id}/token).
func (a *Account) sessionToken(ctx context.Context, jwt providers.Secret) (wireToken, string, error) {
	s, err := a.currentSession(ctx, jwt)
	if err != nil {
		return wireToken{}, "", err
	}
	path := cloudAPI + "/sessions/" + url.PathEscape(s.ID) + "/token"
	ans, err := a.do(ctx, call{method: http.MethodGet, path: path, bearer: jwt})
	if err != nil {
		return wireToken{}, s.ID, err
	}
	t, err := decodeToken(ans.body)
	if err != nil {
		return wireToken{}, s.ID, malformed("GET "+path, false, err)
	}
	return t, s.ID, nil
}
