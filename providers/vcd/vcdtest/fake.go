// Package vcdtest is a stateful fake of the VMware Cloud Director token APIs on httptest, as strict as the
// real service where the research notes (shared/api/vcd.md) say how it behaves:
//
//   - password logins at POST /cloudapi/1.0.0/sessions (tenant users) and /sessions/provider (System users),
//     Basic "user@org:password", the bearer JWT in the X-VMWARE-VCLOUD-ACCESS-TOKEN header;
//   - every CloudAPI call needs a versioned Accept (application/json;version=X with X supported), else 406;
//   - API tokens: POST /oauth/{tenant/<org>|provider}/register, then a one-time jwt-bearer grant that shows
//     the API token once; a second fetch is invalid_grant;
//   - refresh grants (form bodies only, else 415) mint session JWTs that expire after
//     Options.AccessTokenLifetime; with Options.RequireRotation every grant rotates the API token, and a
//     replayed one is invalid_grant and counted in Stats().Replays;
//   - sessions made from an API token may not create, list or revoke other tokens (403);
//   - PROXY tokens from POST /cloudapi/1.0.0/tokens, value shown once, expiring after
//     Options.ProxyTokenLifetime; DELETE /tokens/{id} revokes and ends the sessions made from the token;
//   - lists are paged (page, pageSize ≤ 128, FIQL filter on name, type, id, owner.name) with a Link
//     rel="nextPage" header, or only resultTotal with Options.OmitNextPage;
//   - errors are {minorErrorCode, message} bodies.
//
// Not modelled: session idle timeouts, service-account device flows, EXTENSION tokens, tenant context headers.
package vcdtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend/providers/providertest/faults"
)

// User is an account that can log in with a password.
type User struct {
	Name     string
	Org      string // "System" for provider users
	Password string
}

// Options configure a Server. Zero values take the defaults named on each field.
type Options struct {
	Now func() time.Time // nil: time.Now
	// Users who can log in. Default: alice@acme (password "alice-password") and administrator@System
	// ("admin-password").
	Users []User
	// AccessTokenLifetime is the lifetime of session JWTs (expires_in of grants). Default 30m.
	AccessTokenLifetime time.Duration
	// ProxyTokenLifetime is the lifetime of PROXY tokens. Default 24h (the real value is unconfirmed).
	ProxyTokenLifetime time.Duration
	// RequireRotation makes every API token rotate on every refresh grant (service accounts, requireRotation).
	RequireRotation bool
	// MaxTokensPerUser caps the tokens one user may hold; 0: no cap.
	MaxTokensPerUser int
	// OmitNextPage leaves the Link nextPage header and pageCount out of list answers.
	OmitNextPage bool
	// Versions are the API versions accepted in Accept. Default 36.1, 37.0, 38.0, 39.0.
	Versions []string
}

// Faults are random failures for demo and reliability runs (see faults.Profile); ErrorRate answers 503, and
// an injected status carries a VCD error body.
type Faults = faults.Profile

// Stats counts what happened at the fake.
type Stats struct {
	Creates        int // API tokens registered and PROXY tokens created
	Renews         int // successful refresh grants
	Revokes        int // tokens deleted
	Replays        int // rotated-out API tokens presented again
	ChainDeletions int // always 0 (Commvault only)
	Live           int // tokens that exist now
	Requests       int // every request, faulted or not
	Logins         int // successful password logins
}

// TokenInfo describes one vendor-side token, without its secret.
type TokenInfo struct {
	ID              string
	Name            string
	Type            string // REFRESH or PROXY
	Owner           string
	CreatedAt       time.Time
	ExpiresAt       time.Time // zero for API tokens
	RequireRotation bool
}

type session struct {
	id      string
	jwt     string
	user    User
	tokenID string // the token the session was made from; "" for a password session
	expires time.Time
}

type token struct {
	TokenInfo
	org         string
	registered  bool   // an OAuth client whose initial token was not fetched yet
	refresh     string // current API token value
	proxy       string // PROXY token value
	rotateOnUse bool
}

// Server is the fake. It is safe for concurrent use.
type Server struct {
	ts   *httptest.Server
	mux  *http.ServeMux
	opts Options

	mu         sync.Mutex
	sessions   map[string]*session // by jwt
	tokens     map[string]*token   // by id
	refreshIdx map[string]string   // current API token value -> token id
	retired    map[string]string   // rotated-out API token value -> token id
	proxyIdx   map[string]string   // proxy token value -> token id
	stats      Stats
	issued     int

	// Injector's FailNext, MalformedNext and SetFaults fail requests.
	*faults.Injector
}

// New starts a fake on a loopback httptest server (plain HTTP).
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Users == nil {
		opts.Users = []User{{"alice", "acme", "alice-password"}, {"administrator", "System", "admin-password"}}
	}
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = 30 * time.Minute
	}
	if opts.ProxyTokenLifetime <= 0 {
		opts.ProxyTokenLifetime = 24 * time.Hour
	}
	if opts.Versions == nil {
		opts.Versions = []string{"36.1", "37.0", "38.0", "39.0"}
	}
	s := &Server{
		opts:       opts,
		sessions:   map[string]*session{},
		tokens:     map[string]*token{},
		refreshIdx: map[string]string{},
		retired:    map[string]string{},
		proxyIdx:   map[string]string{},
		Injector:   faults.New(faults.Options{Now: opts.Now, Garbage: `{"resultTot`}),
	}
	s.mux = s.routes()
	s.ts = httptest.NewServer(faults.Handler(s.Injector, s.mux, writeInjected))
	return s
}

// URL is the base URL of the fake.
func (s *Server) URL() string { return s.ts.URL }

// Close stops the fake.
func (s *Server) Close() { s.ts.Close() }

// Client returns an HTTP client for the fake.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Live = len(s.tokens)
	st.Requests = s.Injector.Requests()
	return st
}

// Tokens lists the tokens that exist, sorted by name then id.
func (s *Server) Tokens() []TokenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TokenInfo, 0, len(s.tokens))
	for _, t := range s.tokens {
		out = append(out, t.TokenInfo)
	}
	slices.SortFunc(out, func(a, b TokenInfo) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Valid reports whether VCD would accept secret now: a live session JWT, the current value of an API token,
// or an unexpired proxy token.
func (s *Server) Valid(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	if ss, ok := s.sessions[secret]; ok {
		return now.Before(ss.expires)
	}
	if _, ok := s.refreshIdx[secret]; ok {
		return true
	}
	if id, ok := s.proxyIdx[secret]; ok {
		return now.Before(s.tokens[id].ExpiresAt)
	}
	return false
}

// IssueBootstrap mints an API token for the first configured user the way a person does in the VCD UI,
// and returns its value (rotating when Options.RequireRotation is set).
func (s *Server) IssueBootstrap() string {
	s.mu.Lock()
	s.issued++
	n := s.issued
	s.mu.Unlock()
	_, secret, err := s.IssueAPIToken(s.opts.Users[0].Name, s.opts.Users[0].Org, fmt.Sprintf("bootstrap-%d", n))
	if err != nil {
		panic(err) // only on a misconfigured fake
	}
	return secret
}

// IssueAPIToken mints an API token named name for user@org and returns its id and value.
func (s *Server) IssueAPIToken(user, org, name string) (id, secret string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.user(user, org)
	if !ok {
		return "", "", fmt.Errorf("vcdtest: no user %s@%s", user, org)
	}
	t := s.newToken(u, name, "REFRESH")
	t.refresh = randToken(32)
	s.refreshIdx[t.refresh] = t.ID
	return t.ID, t.refresh, nil
}

// SetRequireRotation turns rotation on every use on or off for one API token.
func (s *Server) SetRequireRotation(id string, on bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	if ok {
		t.rotateOnUse, t.RequireRotation = on, on
	}
	return ok
}

// DeleteToken deletes a token behind tokend's back (as an admin in the UI would).
func (s *Server) DeleteToken(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tokens[id]; !ok {
		return false
	}
	s.deleteToken(id)
	return true
}

// ExpireSessions ends every session (as an idle timeout or a restart would).
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sessions)
}

func (s *Server) user(name, org string) (User, bool) {
	for _, u := range s.opts.Users {
		if u.Name == name && strings.EqualFold(u.Org, org) {
			return u, true
		}
	}
	return User{}, false
}

func (s *Server) newToken(u User, name, typ string) *token {
	t := &token{
		TokenInfo: TokenInfo{ID: "urn:vcloud:token:" + uuid(), Name: name, Type: typ, Owner: u.Name, CreatedAt: s.opts.Now()},
		org:       u.Org,
	}
	if typ == "REFRESH" {
		t.rotateOnUse, t.RequireRotation = s.opts.RequireRotation, s.opts.RequireRotation
	}
	s.tokens[t.ID] = t
	s.stats.Creates++
	return t
}

func (s *Server) deleteToken(id string) {
	t := s.tokens[id]
	delete(s.tokens, id)
	delete(s.refreshIdx, t.refresh)
	delete(s.proxyIdx, t.proxy)
	for v, tid := range s.retired {
		if tid == id {
			delete(s.retired, v)
		}
	}
	for jwt, ss := range s.sessions {
		if ss.tokenID == id {
			delete(s.sessions, jwt)
		}
	}
}

func (s *Server) countTokens(u User) int {
	n := 0
	for _, t := range s.tokens {
		if t.Owner == u.Name && strings.EqualFold(t.org, u.Org) {
			n++
		}
	}
	return n
}

// writeInjected answers a status injected by FailNext or SetFaults.
func writeInjected(w http.ResponseWriter, status int) {
	writeError(w, status, "INJECTED", "injected failure")
}

// ---- routing ----

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	const c = "/cloudapi/1.0.0"
	mux.HandleFunc("GET /api/versions", s.versions)
	mux.HandleFunc("POST "+c+"/sessions", s.login(false))
	mux.HandleFunc("POST "+c+"/sessions/provider", s.login(true))
	mux.HandleFunc("GET "+c+"/sessions/current", s.cloud(s.currentSession))
	mux.HandleFunc("DELETE "+c+"/sessions/current", s.cloud(s.logout))
	mux.HandleFunc("GET "+c+"/sessions/{id}", s.cloud(s.getSession))
	mux.HandleFunc("DELETE "+c+"/sessions/{id}", s.cloud(s.deleteSession))
	mux.HandleFunc("GET "+c+"/sessions/{id}/token", s.cloud(s.sessionToken))
	mux.HandleFunc("GET "+c+"/tokens", s.cloud(s.listTokens))
	mux.HandleFunc("POST "+c+"/tokens", s.cloud(s.createToken))
	mux.HandleFunc("GET "+c+"/tokens/{id}", s.cloud(s.getToken))
	mux.HandleFunc("DELETE "+c+"/tokens/{id}", s.cloud(s.deleteTokenReq))
	mux.HandleFunc("POST /oauth/tenant/{org}/token", s.grant(false))
	mux.HandleFunc("POST /oauth/provider/token", s.grant(true))
	mux.HandleFunc("POST /oauth/tenant/{org}/register", s.register(false))
	mux.HandleFunc("POST /oauth/provider/register", s.register(true))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;version=39.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"minorErrorCode": code, "message": msg, "stackTrace": "com.vmware.vcloud.api.presentation.service." + code})
}

// versionOK checks a versioned Accept header.
func (s *Server) versionOK(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		_, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && slices.Contains(s.opts.Versions, params["version"]) {
			return true
		}
	}
	return false
}

type authedHandler func(w http.ResponseWriter, r *http.Request, ss *session)

// cloud wraps a CloudAPI handler: versioned Accept, then a live bearer session. The lock is held.
func (s *Server) cloud(h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.versionOK(r) {
			writeError(w, http.StatusNotAcceptable, "NOT_ACCEPTABLE", "The request has invalid accept header: version missing or unsupported")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		ss := s.bearer(r)
		if ss == nil {
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Either no security context or the security context has expired")
			return
		}
		h(w, r, ss)
	}
}

func (s *Server) bearer(r *http.Request) *session {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil
	}
	ss := s.sessions[v]
	if ss == nil {
		return nil
	}
	if !s.opts.Now().Before(ss.expires) {
		delete(s.sessions, v)
		return nil
	}
	return ss
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/xml")
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><SupportedVersions xmlns="http://www.vmware.com/vcloud/versions">`)
	for _, v := range s.opts.Versions {
		fmt.Fprintf(&b, `<VersionInfo deprecated="false"><Version>%s</Version><LoginUrl>%s/api/sessions</LoginUrl></VersionInfo>`, v, s.ts.URL)
	}
	b.WriteString(`</SupportedVersions>`)
	_, _ = io.WriteString(w, b.String())
}

func (s *Server) newSession(u User, tokenID string) *session {
	now := s.opts.Now()
	ss := &session{id: "urn:vcloud:session:" + uuid(), user: u, tokenID: tokenID, expires: now.Add(s.opts.AccessTokenLifetime)}
	ss.jwt = makeJWT(ss, now)
	s.sessions[ss.jwt] = ss
	return ss
}

func sessionJSON(ss *session) map[string]any {
	return map[string]any{
		"id":                        ss.id,
		"user":                      map[string]string{"name": ss.user.Name, "id": "urn:vcloud:user:" + ss.user.Name},
		"org":                       map[string]string{"name": ss.user.Org, "id": "urn:vcloud:org:" + strings.ToLower(ss.user.Org)},
		"operatingOrg":              map[string]string{"name": ss.user.Org, "id": "urn:vcloud:org:" + strings.ToLower(ss.user.Org)},
		"location":                  strings.ToLower(ss.user.Org) + "@site",
		"roles":                     []string{"Organization Administrator"},
		"sessionIdleTimeoutMinutes": 30,
	}
}

func (s *Server) login(provider bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.versionOK(r) {
			writeError(w, http.StatusNotAcceptable, "NOT_ACCEPTABLE", "The request has invalid accept header: version missing or unsupported")
			return
		}
		cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Basic ")
		raw, err := base64.StdEncoding.DecodeString(cred)
		userOrg, pass, ok2 := strings.Cut(string(raw), ":")
		name, org, ok3 := strings.Cut(userOrg, "@")
		s.mu.Lock()
		defer s.mu.Unlock()
		u, known := s.user(name, org)
		// System users must use /sessions/provider and tenants /sessions.
		if !ok || err != nil || !ok2 || !ok3 || !known || u.Password != pass || provider != strings.EqualFold(org, "system") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ss := s.newSession(u, "")
		s.stats.Logins++
		w.Header().Set("X-VMWARE-VCLOUD-ACCESS-TOKEN", ss.jwt)
		w.Header().Set("X-VMWARE-VCLOUD-TOKEN-TYPE", "Bearer")
		writeJSON(w, http.StatusOK, sessionJSON(ss))
	}
}

func (s *Server) currentSession(w http.ResponseWriter, r *http.Request, ss *session) {
	writeJSON(w, http.StatusOK, sessionJSON(ss))
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, ss *session) {
	delete(s.sessions, ss.jwt)
	w.WriteHeader(http.StatusNoContent)
}

// ownSession finds a session of the caller's user by id.
func (s *Server) ownSession(id string, caller *session) *session {
	for _, o := range s.sessions {
		if o.id == id && o.user == caller.user && s.opts.Now().Before(o.expires) {
			return o
		}
	}
	return nil
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, ss *session) {
	o := s.ownSession(r.PathValue("id"), ss)
	if o == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "session not found")
		return
	}
	writeJSON(w, http.StatusOK, sessionJSON(o))
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, ss *session) {
	o := s.ownSession(r.PathValue("id"), ss)
	if o == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "session not found")
		return
	}
	delete(s.sessions, o.jwt)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) sessionToken(w http.ResponseWriter, r *http.Request, ss *session) {
	o := s.ownSession(r.PathValue("id"), ss)
	if o == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "session not found")
		return
	}
	t := s.tokens[o.tokenID]
	if o.tokenID == "" || t == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no token is associated with this session")
		return
	}
	writeJSON(w, http.StatusOK, tokenJSON(t, false))
}

func tokenJSON(t *token, withSecret bool) map[string]any {
	m := map[string]any{
		"id":       t.ID,
		"name":     t.Name,
		"token":    nil,
		"owner":    map[string]string{"name": t.Owner, "id": "urn:vcloud:user:" + t.Owner},
		"org":      map[string]string{"name": t.org, "id": "urn:vcloud:org:" + strings.ToLower(t.org)},
		"type":     t.Type,
		"username": t.Owner,
		"orgName":  t.org,
	}
	if t.Type == "REFRESH" {
		m["requireRotation"] = t.RequireRotation
		m["expirationTimeUtc"] = nil
	} else {
		m["requireRotation"] = nil
		m["expirationTimeUtc"] = t.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	if withSecret {
		m["token"] = t.proxy
	}
	return m
}

// visible reports whether the caller may see t: password sessions see their user's tokens, API-token
// sessions only their own token.
func visible(t *token, ss *session) bool {
	if ss.tokenID != "" {
		return t.ID == ss.tokenID
	}
	return t.Owner == ss.user.Name && strings.EqualFold(t.org, ss.user.Org)
}

func forbidTokenSession(w http.ResponseWriter, ss *session) bool {
	if ss.tokenID != "" {
		writeError(w, http.StatusForbidden, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "A session created from an API token cannot manage tokens")
		return true
	}
	return false
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, ss *session) {
	if forbidTokenSession(w, ss) {
		return
	}
	q := r.URL.Query()
	page, pageSize := 1, 25
	var err error
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 {
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", "page must be at least 1")
			return
		}
	}
	if v := q.Get("pageSize"); v != "" {
		if pageSize, err = strconv.Atoi(v); err != nil || pageSize < 1 || pageSize > 128 {
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", "pageSize must be between 1 and 128")
			return
		}
	}
	match := func(*token) bool { return true }
	if f := q.Get("filter"); f != "" {
		if match, err = parseFilter(f); err != nil {
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", "invalid filter: "+err.Error())
			return
		}
	}
	var all []*token
	for _, t := range s.tokens {
		if visible(t, ss) && match(t) {
			all = append(all, t)
		}
	}
	slices.SortFunc(all, func(a, b *token) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	values := []map[string]any{}
	for i := (page - 1) * pageSize; i < len(all) && i < page*pageSize; i++ {
		values = append(values, tokenJSON(all[i], false))
	}
	pages := int(math.Ceil(float64(len(all)) / float64(pageSize)))
	body := map[string]any{"resultTotal": len(all), "page": page, "pageSize": pageSize, "associations": nil, "values": values}
	if !s.opts.OmitNextPage {
		body["pageCount"] = pages
		if page < pages {
			next := *r.URL
			nq := next.Query()
			nq.Set("page", strconv.Itoa(page+1))
			next.RawQuery = nq.Encode()
			w.Header().Add("Link", fmt.Sprintf(`<%s%s>;rel="nextPage";type="application/json;version=39.0"`, s.ts.URL, next.RequestURI()))
		}
		w.Header().Add("Link", fmt.Sprintf(`<%s/cloudapi/1.0.0/tokens>;rel="up";type="application/json;version=39.0"`, s.ts.URL))
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) getToken(w http.ResponseWriter, r *http.Request, ss *session) {
	t := s.tokens[r.PathValue("id")]
	if t == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "token not found")
		return
	}
	if !visible(t, ss) {
		if ss.tokenID != "" {
			writeError(w, http.StatusForbidden, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "A session created from an API token cannot view other tokens")
			return
		}
		writeError(w, http.StatusNotFound, "NOT_FOUND", "token not found")
		return
	}
	writeJSON(w, http.StatusOK, tokenJSON(t, false))
}

func (s *Server) deleteTokenReq(w http.ResponseWriter, r *http.Request, ss *session) {
	t := s.tokens[r.PathValue("id")]
	if t != nil && !visible(t, ss) && ss.tokenID != "" {
		writeError(w, http.StatusForbidden, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "A session created from an API token cannot revoke other tokens")
		return
	}
	if t == nil || !visible(t, ss) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "token not found")
		return
	}
	s.deleteToken(t.ID)
	s.stats.Revokes++
	w.WriteHeader(http.StatusNoContent)
}

func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, ss *session) {
	if forbidTokenSession(w, ss) {
		return
	}
	if !isJSON(r) {
		writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json")
		return
	}
	var req struct {
		Name        string `json:"name"`
		Type        string `json:"type"`
		ExtensionID string `json:"extensionId"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Name == "" {
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", "invalid token parameters")
		return
	}
	if req.Type != "PROXY" {
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", "only PROXY tokens can be created here")
		return
	}
	if s.opts.MaxTokensPerUser > 0 && s.countTokens(ss.user) >= s.opts.MaxTokensPerUser {
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", "token limit reached")
		return
	}
	t := s.newToken(ss.user, req.Name, "PROXY")
	t.ExpiresAt = s.opts.Now().Add(s.opts.ProxyTokenLifetime)
	t.proxy = randToken(32)
	s.proxyIdx[t.proxy] = t.ID
	writeJSON(w, http.StatusOK, tokenJSON(t, true))
}

// ---- OAuth ----

// orgOf checks the org of an OAuth path; provider paths are the System org.
func orgOf(r *http.Request, provider bool) string {
	if provider {
		return "System"
	}
	return r.PathValue("org")
}

func (s *Server) register(provider bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ss := s.bearer(r)
		if ss == nil {
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Either no security context or the security context has expired")
			return
		}
		if forbidTokenSession(w, ss) {
			return
		}
		if !strings.EqualFold(orgOf(r, provider), ss.user.Org) {
			writeError(w, http.StatusForbidden, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "wrong organization")
			return
		}
		if !isJSON(r) {
			writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json")
			return
		}
		var req struct {
			ClientName string `json:"client_name"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.ClientName == "" {
			writeError(w, http.StatusBadRequest, "invalid_client_metadata", "client_name is required")
			return
		}
		if s.opts.MaxTokensPerUser > 0 && s.countTokens(ss.user) >= s.opts.MaxTokensPerUser {
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", "token limit reached")
			return
		}
		t := s.newToken(ss.user, req.ClientName, "REFRESH")
		t.registered = true
		writeJSON(w, http.StatusOK, map[string]any{
			"client_name":                req.ClientName,
			"client_id":                  strings.TrimPrefix(t.ID, "urn:vcloud:token:"),
			"grant_types":                []string{"urn:ietf:params:oauth:grant-type:jwt-bearer", "refresh_token"},
			"token_endpoint_auth_method": "none",
		})
	}
}

func grantError(w http.ResponseWriter, code, msg string) {
	writeError(w, http.StatusBadRequest, code, msg)
}

func (s *Server) grant(provider bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/x-www-form-urlencoded")
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			grantError(w, "invalid_request", "unreadable body")
			return
		}
		form, err := url.ParseQuery(string(b))
		if err != nil {
			grantError(w, "invalid_request", "malformed form")
			return
		}
		org := orgOf(r, provider)
		s.mu.Lock()
		defer s.mu.Unlock()
		switch form.Get("grant_type") {
		case "refresh_token":
			s.refreshGrant(w, org, form.Get("refresh_token"))
		case "urn:ietf:params:oauth:grant-type:jwt-bearer":
			s.initialGrant(w, org, form.Get("assertion"), form.Get("client_id"))
		default:
			grantError(w, "unsupported_grant_type", "unsupported grant type")
		}
	}
}

func (s *Server) grantAnswer(w http.ResponseWriter, ss *session, refresh string) {
	body := map[string]any{"access_token": ss.jwt, "token_type": "Bearer", "expires_in": int64(s.opts.AccessTokenLifetime / time.Second)}
	if refresh != "" {
		body["refresh_token"] = refresh
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) refreshGrant(w http.ResponseWriter, org, value string) {
	id, ok := s.refreshIdx[value]
	if !ok {
		if _, replayed := s.retired[value]; replayed {
			s.stats.Replays++
		}
		grantError(w, "invalid_grant", "Invalid refresh token")
		return
	}
	t := s.tokens[id]
	if !strings.EqualFold(t.org, org) {
		grantError(w, "invalid_grant", "Invalid refresh token")
		return
	}
	u, _ := s.user(t.Owner, t.org)
	ss := s.newSession(u, t.ID)
	s.stats.Renews++
	next := ""
	if t.rotateOnUse {
		next = randToken(32)
		delete(s.refreshIdx, value)
		s.retired[value] = t.ID
		t.refresh = next
		s.refreshIdx[next] = t.ID
	}
	s.grantAnswer(w, ss, next)
}

func (s *Server) initialGrant(w http.ResponseWriter, org, assertion, clientID string) {
	ss := s.sessions[assertion]
	if ss == nil || !s.opts.Now().Before(ss.expires) {
		grantError(w, "invalid_grant", "Invalid assertion")
		return
	}
	if ss.tokenID != "" {
		writeError(w, http.StatusForbidden, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "A session created from an API token cannot create tokens")
		return
	}
	t := s.tokens["urn:vcloud:token:"+clientID]
	if t == nil || t.Owner != ss.user.Name || !strings.EqualFold(t.org, org) || !strings.EqualFold(ss.user.Org, org) {
		grantError(w, "invalid_client", "Unknown client")
		return
	}
	if !t.registered {
		grantError(w, "invalid_grant", "The initial token of this client was already issued")
		return
	}
	t.registered = false
	t.refresh = randToken(32)
	s.refreshIdx[t.refresh] = t.ID
	s.grantAnswer(w, s.newSession(ss.user, t.ID), t.refresh)
}

// ---- helpers ----

func randToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func uuid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// makeJWT builds a JWT-shaped bearer (the fake does not check signatures; it knows its sessions).
func makeJWT(ss *session, now time.Time) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{
		"iss": "vcdtest", "sub": ss.user.Name, "org": ss.user.Org, "sid": ss.id,
		"iat": now.Unix(), "exp": ss.expires.Unix(), "jti": uuid(),
	})
	return head + "." + enc.EncodeToString(claims) + "." + randToken(64)
}
