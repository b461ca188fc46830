// Package commvaulttest is a stateful fake of the Commvault Command Center REST API's V4 access-token family
// (POST /Login, GET/POST /V4/AccessToken, POST /V4/AccessToken/Renew, DELETE /V4/AccessToken/{id},
// GET /v2/WhoAmI), served by httptest on 127.0.0.1 for tests, the demo and the reliability suite.
//
// It is as strict as the real service as described in shared/api/commvault.md:
//   - Login takes a base64 password and answers failures inside a 200 body (errList); a session ("QSDK ..."
//     in the Authtoken header) lapses after Options.SessionIdle without use and then answers 401.
//   - Token values (access and refresh) appear only in the create and renew answers, never in the list.
//   - Renew takes the current access+refresh pair. Presenting an older pair of a token's chain deletes the
//     whole token (every value of the chain stops working) and is counted in Stats.Replays and
//     Stats.ChainDeletions. A renew after the refresh token expired, or at or after renewableUntil, is refused.
//   - MS_SCIM and OneTouch tokens have no refresh token; their requested lifetime is capped.
//   - Token names are unique per user (a duplicate is an error inside a 200 body).
//   - Paths are matched case-insensitively below /commandcenter/api, as the real server does; methods,
//     Content-Type (application/json on bodies) and Accept (JSON) are checked; unknown JSON fields are refused.
//   - Times are whole epoch seconds.
//
// A renewed token's previous access token stays valid until its own expiry unless Options.InvalidateOnRenew
// is set (field reports disagree; the default is the lenient reading).
package commvaulttest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend/providers/providertest/faults"
)

// BasePath is the path below which the fake serves the API; URL() includes it.
const BasePath = "/commandcenter/api"

// The login the fake accepts when Options.Users is nil.
const (
	DefaultUser     = "tokend"
	DefaultPassword = "tokend-password"
)

// Token types as the create call takes them (cvpysdk's integers).
const (
	typeDefault    = 0
	typeMSSCIM     = 1
	typeALL        = 2
	typeCUSTOM     = 3
	typeOneTouch   = 4
	typeHyperscale = 5
)

// Error codes the fake puts in bodies (the real codes are not documented except 5).
const (
	codeAccessDenied   = 5
	codeNameTaken      = 1001
	codeBadRequest     = 1002
	codeNotRenewable   = 1003
	codeRefreshExpired = 1004
	codeNotFound       = 1005
	codeCap            = 1006
	codeMismatch       = 1007
	codeScope          = 1008
)

// Options configures a fake. Zero durations take the vendor's documented defaults.
type Options struct {
	Now func() time.Time // nil: time.Now

	// Users maps user names to passwords; nil: {DefaultUser: DefaultPassword}.
	Users map[string]string

	AccessLifetime    time.Duration // ALL/CUSTOM access token; default 30m
	RefreshLifetime   time.Duration // refresh token, from its issue; default 14d
	RenewableLifetime time.Duration // renewableUntil when the create call does not ask; default 90d
	MaxRenewable      time.Duration // cap on a requested renewableUntil, from creation; default 365d
	SCIMLifetime      time.Duration // MS_SCIM default lifetime; default 30d
	SCIMMaxLifetime   time.Duration // MS_SCIM cap; default 365d
	OneTouchLifetime  time.Duration // OneTouch default lifetime; default 7d
	OneTouchMax       time.Duration // OneTouch cap; default 14d
	SessionIdle       time.Duration // a login session lapses after this long unused; default 30m

	// MaxTokens caps the tokens one user may hold (0: no cap, as documented).
	MaxTokens int
	// RenewRequiresBearer makes Renew demand "Authorization: Bearer <accessToken>" (the docs' form) instead
	// of accepting a request without an auth header (Commvault's own MCP server's form).
	RenewRequiresBearer bool
	// InvalidateOnRenew makes a renew invalidate the previous access token at once.
	InvalidateOnRenew bool
}

// Faults are random failures for demo and reliability runs (see faults.Profile); they apply to every
// request, logins included. ErrorRate answers 500 or 503, and an injected status carries a Commvault error
// body.
type Faults = faults.Profile

// Stats counts what happened at the fake.
type Stats struct {
	Requests       int // every HTTP request
	Logins         int // successful logins
	Creates        int // tokens created
	Renews         int // successful renews
	Revokes        int // tokens deleted through the API
	Replays        int // renews that presented an older pair of a chain
	ChainDeletions int // tokens deleted because an older pair was presented
	Live           int // tokens that exist now
}

// TokenInfo is a vendor-side token without its secrets.
type TokenInfo struct {
	ID               string
	Name             string
	Type             string // ALL, CUSTOM, MS_SCIM, OneTouch, Hyperscale
	User             string
	CreatedAt        time.Time
	ExpiresAt        time.Time // of the current access token
	RefreshExpiresAt time.Time // zero for MS_SCIM/OneTouch
	RenewableUntil   time.Time // zero for MS_SCIM/OneTouch
	Renewals         int       // how many times the chain was renewed
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	ts   *httptest.Server

	mu        sync.Mutex
	users     map[string]*user // by name
	sessions  map[string]*session
	tokens    map[int]*token
	byAccess  map[string]int
	byRefresh map[string]int
	nextID    int
	stats     Stats

	// Injector's FailNext, MalformedNext and SetFaults fail requests. FailNext and MalformedNext pass over
	// POST /Login, which tests do not count among the API requests.
	*faults.Injector
}

type user struct {
	id       int
	name     string
	password string
}

type session struct {
	user     *user
	lastUsed time.Time
}

type token struct {
	id             int
	name           string
	user           *user
	typ            int
	created        time.Time
	lastUsed       time.Time
	renewableUntil time.Time
	endpoints      []string
	pairs          []pair // oldest first; the last one is current
}

type pair struct {
	access, refresh string
	accessExpiry    time.Time
	refreshExpiry   time.Time
}

func (t *token) current() *pair { return &t.pairs[len(t.pairs)-1] }

// New starts a fake on 127.0.0.1 with plain HTTP.
func New(opts Options) *Server {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	const day = 24 * time.Hour
	def(&opts.AccessLifetime, 30*time.Minute)
	def(&opts.RefreshLifetime, 14*day)
	def(&opts.RenewableLifetime, 90*day)
	def(&opts.MaxRenewable, 365*day)
	def(&opts.SCIMLifetime, 30*day)
	def(&opts.SCIMMaxLifetime, 365*day)
	def(&opts.OneTouchLifetime, 7*day)
	def(&opts.OneTouchMax, 14*day)
	def(&opts.SessionIdle, 30*time.Minute)
	if opts.Users == nil {
		opts.Users = map[string]string{DefaultUser: DefaultPassword}
	}
	s := &Server{
		opts:      opts,
		users:     map[string]*user{},
		sessions:  map[string]*session{},
		tokens:    map[int]*token{},
		byAccess:  map[string]int{},
		byRefresh: map[string]int{},
		nextID:    101,
	}
	names := make([]string, 0, len(opts.Users))
	for n := range opts.Users {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		s.users[n] = &user{id: 5 + i, name: n, password: opts.Users[n]}
	}
	s.Injector = faults.New(faults.Options{Now: s.now, ServerErrors: []int{500, 503}, Exempt: isLogin,
		Garbage: "<html><body>Bad Gateway"})
	s.ts = httptest.NewServer(faults.Handler(s.Injector, http.HandlerFunc(s.route), writeInjected))
	return s
}

// URL returns the API base URL (ending in /commandcenter/api), what a provider's url: takes.
func (s *Server) URL() string { return s.ts.URL + BasePath }

// Close shuts the server down.
func (s *Server) Close() { s.ts.Close() }

// Client returns a client for the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now().Truncate(time.Second)
	}
	return time.Now().Truncate(time.Second)
}

// Valid reports whether the vendor would accept secret as an access token right now: it belongs to a token
// that exists and has not expired (and, with InvalidateOnRenew, is the chain's current one).
func (s *Server) Valid(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, ok := s.validAccess(secret)
	return ok
}

// validAccess finds the token whose access token is secret and reports whether it is accepted now.
func (s *Server) validAccess(secret string) (*token, *pair, bool) {
	id, ok := s.byAccess[secret]
	if !ok {
		return nil, nil, false
	}
	t := s.tokens[id]
	for i := range t.pairs {
		p := &t.pairs[i]
		if p.access != secret {
			continue
		}
		if s.opts.InvalidateOnRenew && i != len(t.pairs)-1 {
			return t, p, false
		}
		return t, p, s.now().Before(p.accessExpiry)
	}
	return nil, nil, false
}

// ExpireSessions ends every login session, as an idle timeout would.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sessions)
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Live = len(s.tokens)
	st.Requests = s.Injector.Requests()
	return st
}

// Tokens returns the tokens that exist, by id.
func (s *Server) Tokens() []TokenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.tokens))
	for id := range s.tokens {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]TokenInfo, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.tokens[id].info())
	}
	return out
}

func (t *token) info() TokenInfo {
	p := t.current()
	return TokenInfo{
		ID:               strconv.Itoa(t.id),
		Name:             t.name,
		Type:             typeName(t.typ),
		User:             t.user.name,
		CreatedAt:        t.created,
		ExpiresAt:        p.accessExpiry,
		RefreshExpiresAt: p.refreshExpiry,
		RenewableUntil:   t.renewableUntil,
		Renewals:         len(t.pairs) - 1,
	}
}

// Issued is a token made with Seed, with its one-time values.
type Issued struct {
	TokenInfo
	AccessToken  string
	RefreshToken string // empty for MS_SCIM/OneTouch
}

// Seed creates a token for userName as a person would in the Command Center UI, with the type's default
// lifetimes. tokenType is ALL, CUSTOM, MS_SCIM or OneTouch (CUSTOM gets the endpoint "/client").
func (s *Server) Seed(userName, name, tokenType string) (Issued, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userName]
	if !ok {
		return Issued{}, fmt.Errorf("seeding token: unknown user %q", userName)
	}
	typ, ok := parseTypeName(tokenType)
	if !ok {
		return Issued{}, fmt.Errorf("seeding token: unknown token type %q", tokenType)
	}
	var eps []string
	if typ == typeCUSTOM {
		eps = []string{"/client"}
	}
	t, msg := s.create(u, name, typ, 0, 0, eps)
	if t == nil {
		return Issued{}, fmt.Errorf("seeding token: %s", msg)
	}
	p := t.current()
	return Issued{TokenInfo: t.info(), AccessToken: p.access, RefreshToken: p.refresh}, nil
}

// ---- HTTP ----

type errBody struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorCode    int    `json:"errorCode"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed shapes are marshalled
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeErr(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, errBody{ErrorMessage: msg, ErrorCode: code})
}

// writeInjected answers a status injected by FailNext or SetFaults.
func writeInjected(w http.ResponseWriter, status int) {
	if status == http.StatusUnauthorized {
		writeErr(w, status, codeAccessDenied, "Access denied")
		return
	}
	writeErr(w, status, status, http.StatusText(status))
}

// isLogin reports whether r is for the login path (whatever its method).
func isLogin(r *http.Request) bool {
	return strings.EqualFold(strings.TrimSuffix(r.URL.Path, "/"), BasePath+"/Login")
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	p, ok := strings.CutPrefix(r.URL.Path, BasePath)
	if !ok {
		writeErr(w, http.StatusNotFound, codeNotFound, "Not Found")
		return
	}
	p = strings.ToLower(strings.TrimSuffix(p, "/"))
	if !acceptsJSON(r) {
		writeErr(w, http.StatusNotAcceptable, codeBadRequest, "only application/json is served here")
		return
	}
	if r.Method == http.MethodPost && !isJSON(r.Header.Get("Content-Type")) {
		writeErr(w, http.StatusUnsupportedMediaType, codeBadRequest, "Content-Type must be application/json")
		return
	}
	method := func(m string) bool {
		if r.Method != m {
			w.Header().Set("Allow", m)
			writeErr(w, http.StatusMethodNotAllowed, codeBadRequest, "Method Not Allowed")
			return false
		}
		return true
	}
	switch {
	case p == "/login":
		if method(http.MethodPost) {
			s.login(w, r)
		}
	case p == "/v2/whoami":
		if method(http.MethodGet) {
			s.whoAmI(w, r)
		}
	case p == "/v4/accesstoken":
		switch r.Method {
		case http.MethodGet:
			s.list(w, r)
		case http.MethodPost:
			s.createHTTP(w, r)
		default:
			w.Header().Set("Allow", "GET, POST")
			writeErr(w, http.StatusMethodNotAllowed, codeBadRequest, "Method Not Allowed")
		}
	case p == "/v4/accesstoken/renew":
		if method(http.MethodPost) {
			s.renew(w, r)
		}
	case strings.HasPrefix(p, "/v4/accesstoken/"):
		if method(http.MethodDelete) {
			s.delete(w, r, strings.TrimPrefix(p, "/v4/accesstoken/"))
		}
	default:
		writeErr(w, http.StatusNotFound, codeNotFound, "Not Found")
	}
}

func acceptsJSON(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return strings.Contains(a, "application/json") || strings.Contains(a, "*/*")
}

func isJSON(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(ct), "application/json")
}

// decode reads a JSON body strictly: unknown fields and trailing data are refused.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

func randomValue(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// sessionUser returns the user of the request's login session, or answers 401.
func (s *Server) sessionUser(w http.ResponseWriter, r *http.Request) *user {
	h := r.Header.Get("Authtoken")
	if sess, ok := s.sessions[h]; ok && strings.HasPrefix(h, "QSDK ") {
		now := s.now()
		if now.Sub(sess.lastUsed) < s.opts.SessionIdle {
			sess.lastUsed = now
			return sess.user
		}
		delete(s.sessions, h)
	}
	writeErr(w, http.StatusUnauthorized, codeAccessDenied, "Access denied")
	return nil
}

type loginReq struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	Domain     string `json:"domain"`
	Commserver string `json:"commserver"`
	DeviceID   string `json:"deviceId"`
	Timeout    int    `json:"timeout"`
	Mode       int    `json:"mode"`
	ClientType int    `json:"clientType"`
}

type loginErr struct {
	ErrLogMessage string `json:"errLogMessage"`
	ErrorCode     int    `json:"errorCode"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginReq
	if err := decode(r, &req); err != nil {
		writeErr(w, http.StatusBadRequest, codeBadRequest, "Invalid request body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pw, err := base64.StdEncoding.DecodeString(req.Password)
	u, ok := s.users[req.Username]
	if err != nil || !ok || string(pw) != u.password {
		writeJSON(w, http.StatusOK, map[string]any{
			"errList":       []loginErr{{ErrLogMessage: "Invalid Username or Password", ErrorCode: 1116}},
			"loginAttempts": 1,
		})
		return
	}
	tok := "QSDK " + strings.ToLower(randomValue(24))
	s.sessions[tok] = &session{user: u, lastUsed: s.now()}
	s.stats.Logins++
	writeJSON(w, http.StatusOK, map[string]any{
		"token": tok, "userName": u.name, "aliasName": strconv.Itoa(u.id), "userGUID": randomValue(16),
		"loginAttempts": 0, "remainingLockTime": 0, "providerType": 1, "forcePasswordChange": false,
		"isAccountLocked": false, "errList": []loginErr{},
	})
}

func (s *Server) whoAmI(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var u *user
	h := r.Header.Get("Authtoken")
	if strings.HasPrefix(h, "QSDK ") {
		if u = s.sessionUser(w, r); u == nil {
			return
		}
	} else {
		v := strings.TrimPrefix(h, "Bearer ")
		if v == "" {
			v, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		t, _, ok := s.validAccess(v)
		if !ok {
			writeErr(w, http.StatusUnauthorized, codeAccessDenied, "Access denied")
			return
		}
		if !t.allows("/v2/WhoAmI") {
			writeErr(w, http.StatusForbidden, codeScope, "The access token is not authorized for this API")
			return
		}
		t.lastUsed = s.now()
		u = t.user
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": map[string]any{"userName": u.name, "userId": u.id}})
}

// allows reports whether the token's scope covers the API path.
func (t *token) allows(path string) bool {
	switch t.typ {
	case typeALL:
		return true
	case typeCUSTOM:
		return slices.ContainsFunc(t.endpoints, func(e string) bool { return strings.EqualFold(e, path) })
	}
	return false
}

type listEntry struct {
	AccessTokenID  int      `json:"accessTokenId"`
	UserID         int      `json:"userId"`
	TokenName      string   `json:"tokenName"`
	CreatedTime    int64    `json:"createdTime"`
	TokenType      string   `json:"tokenType"`
	RenewableUntil int64    `json:"renewableUntilTimestamp"`
	LastUsedTime   int64    `json:"lastUsedTime"`
	TokenExpiry    int64    `json:"tokenExpiryTimestamp"`
	APIEndpoints   []string `json:"apiEndpoints"`
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.sessionUser(w, r)
	if u == nil {
		return
	}
	if q := r.URL.Query().Get("userId"); q != "" && q != strconv.Itoa(u.id) {
		writeErr(w, http.StatusForbidden, codeAccessDenied, "User does not have permission to view tokens of another user")
		return
	}
	ids := make([]int, 0, len(s.tokens))
	for id, t := range s.tokens {
		if t.user == u {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	entries := make([]listEntry, 0, len(ids))
	for _, id := range ids {
		t := s.tokens[id]
		eps := t.endpoints
		if eps == nil {
			eps = []string{}
		}
		entries = append(entries, listEntry{
			AccessTokenID: t.id, UserID: u.id, TokenName: t.name, CreatedTime: unix(t.created),
			TokenType: typeName(t.typ), RenewableUntil: unix(t.renewableUntil), LastUsedTime: unix(t.lastUsed),
			TokenExpiry: unix(t.current().accessExpiry), APIEndpoints: eps,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": entries, "error": errBody{}})
}

type createReq struct {
	TokenName                string          `json:"tokenName"`
	TokenType                json.RawMessage `json:"tokenType"`
	RenewableUntil           *int64          `json:"renewableUntilTimestamp"`
	TokenExpiry              *int64          `json:"tokenExpiryTimestamp"`
	APIEndpoints             []string        `json:"apiEndpoints"`
	UserID                   *int64          `json:"userId"`
	AllowedIPs               []string        `json:"allowedIPs"`
	EnableIPAllowListFeature *bool           `json:"enableIPAllowListFeature"`
}

type tokenInfo struct {
	Error          errBody `json:"error"`
	AccessTokenID  int     `json:"accessTokenId"`
	TokenName      string  `json:"tokenName"`
	UserID         int     `json:"userId"`
	TokenType      *int    `json:"tokenType,omitempty"`
	TokenExpiry    int64   `json:"tokenExpiryTimestamp"`
	AccessToken    string  `json:"accessToken"`
	RefreshToken   string  `json:"refreshToken,omitempty"`
	RefreshExpiry  int64   `json:"refreshTokenExpiryTimestamp,omitempty"`
	RenewableUntil int64   `json:"renewableUntilTimestamp,omitempty"`
}

func (t *token) answer() tokenInfo {
	p := t.current()
	return tokenInfo{
		AccessTokenID: t.id, TokenName: t.name, UserID: t.user.id, TokenExpiry: unix(p.accessExpiry),
		AccessToken: p.access, RefreshToken: p.refresh, RefreshExpiry: unix(p.refreshExpiry),
		RenewableUntil: unix(t.renewableUntil),
	}
}

func (s *Server) createHTTP(w http.ResponseWriter, r *http.Request) {
	var req createReq
	if err := decode(r, &req); err != nil {
		writeErr(w, http.StatusBadRequest, codeBadRequest, "Invalid request body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.sessionUser(w, r)
	if u == nil {
		return
	}
	if req.UserID != nil && *req.UserID != int64(u.id) {
		writeErr(w, http.StatusForbidden, codeAccessDenied, "User cannot create an access token for another user")
		return
	}
	typ := typeALL
	if len(req.TokenType) > 0 {
		var ok bool
		if typ, ok = parseType(req.TokenType); !ok {
			writeErr(w, http.StatusBadRequest, codeBadRequest, "Invalid tokenType")
			return
		}
	}
	if strings.TrimSpace(req.TokenName) == "" {
		writeErr(w, http.StatusBadRequest, codeBadRequest, "tokenName is required")
		return
	}
	if typ == typeCUSTOM && len(req.APIEndpoints) == 0 {
		writeErr(w, http.StatusBadRequest, codeBadRequest, "apiEndpoints is required for tokenType CUSTOM")
		return
	}
	var until, expiry int64
	if req.RenewableUntil != nil {
		until = *req.RenewableUntil
	}
	if req.TokenExpiry != nil {
		expiry = *req.TokenExpiry
	}
	now := s.now().Unix()
	if (until != 0 && until <= now) || (expiry != 0 && expiry <= now) || until < 0 || expiry < 0 ||
		until > 1<<31-1 || expiry > 1<<31-1 {
		writeErr(w, http.StatusBadRequest, codeBadRequest, "Invalid timestamp")
		return
	}
	if typ != typeCUSTOM {
		req.APIEndpoints = nil
	}
	t, msg := s.create(u, req.TokenName, typ, until, expiry, req.APIEndpoints)
	if t == nil {
		// Business errors come inside a 200 body, as the real server does.
		writeJSON(w, http.StatusOK, map[string]any{
			"error":     errBody{ErrorMessage: msg, ErrorCode: codeNameTaken},
			"tokenInfo": map[string]any{"error": errBody{ErrorMessage: msg, ErrorCode: codeNameTaken}},
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"error": errBody{}, "tokenInfo": t.answer()})
}

// create makes a token; on a refusal it returns nil and the vendor's message. s.mu is held.
func (s *Server) create(u *user, name string, typ int, until, expiry int64, eps []string) (*token, string) {
	if typ == typeDefault {
		typ = typeALL
	}
	n := 0
	for _, t := range s.tokens {
		if t.user != u {
			continue
		}
		if t.name == name {
			return nil, "Token name already present"
		}
		n++
	}
	if s.opts.MaxTokens > 0 && n >= s.opts.MaxTokens {
		return nil, "Maximum number of access tokens reached for the user"
	}
	now := s.now()
	t := &token{id: s.nextID, name: name, user: u, typ: typ, created: now, endpoints: slices.Clone(eps)}
	s.nextID++
	var p pair
	p.access = randomValue(32)
	switch typ {
	case typeMSSCIM, typeOneTouch:
		def, limit := s.opts.SCIMLifetime, s.opts.SCIMMaxLifetime
		if typ == typeOneTouch {
			def, limit = s.opts.OneTouchLifetime, s.opts.OneTouchMax
		}
		p.accessExpiry = now.Add(def)
		if expiry != 0 {
			p.accessExpiry = time.Unix(expiry, 0)
		}
		if p.accessExpiry.After(now.Add(limit)) {
			p.accessExpiry = now.Add(limit).Truncate(time.Second)
		}
	default:
		t.renewableUntil = now.Add(s.opts.RenewableLifetime)
		if until != 0 {
			t.renewableUntil = time.Unix(until, 0)
		}
		if t.renewableUntil.After(now.Add(s.opts.MaxRenewable)) {
			t.renewableUntil = now.Add(s.opts.MaxRenewable).Truncate(time.Second)
		}
		p.refresh = randomValue(32)
		p.accessExpiry = now.Add(s.opts.AccessLifetime).Truncate(time.Second)
		p.refreshExpiry = now.Add(s.opts.RefreshLifetime).Truncate(time.Second)
		s.byRefresh[p.refresh] = t.id
	}
	t.pairs = []pair{p}
	s.byAccess[p.access] = t.id
	s.tokens[t.id] = t
	s.stats.Creates++
	return t, ""
}

// remove deletes a token and every value of its chain. s.mu is held.
func (s *Server) remove(t *token) {
	for _, p := range t.pairs {
		delete(s.byAccess, p.access)
		if p.refresh != "" {
			delete(s.byRefresh, p.refresh)
		}
	}
	delete(s.tokens, t.id)
}

type renewReq struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
}

func (s *Server) renew(w http.ResponseWriter, r *http.Request) {
	var req renewReq
	if err := decode(r, &req); err != nil || req.AccessToken == "" || req.RefreshToken == "" {
		writeErr(w, http.StatusBadRequest, codeBadRequest, "accessToken and refreshToken are required")
		return
	}
	// An auth header, when sent, must carry the presented access token.
	bearer, hasAuth := "", false
	if h := r.Header.Get("Authorization"); h != "" {
		bearer, hasAuth = strings.TrimPrefix(h, "Bearer "), true
	} else if h := r.Header.Get("Authtoken"); h != "" {
		bearer, hasAuth = strings.TrimPrefix(h, "Bearer "), true
	}
	if (hasAuth && bearer != req.AccessToken) || (!hasAuth && s.opts.RenewRequiresBearer) {
		writeErr(w, http.StatusUnauthorized, codeAccessDenied, "Access denied")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byRefresh[req.RefreshToken]
	if !ok {
		writeErr(w, http.StatusNotFound, codeNotFound, "Invalid access token")
		return
	}
	t := s.tokens[id]
	gen := slices.IndexFunc(t.pairs, func(p pair) bool { return p.refresh == req.RefreshToken })
	agen := slices.IndexFunc(t.pairs, func(p pair) bool { return p.access == req.AccessToken })
	last := len(t.pairs) - 1
	if gen < last || (agen >= 0 && agen < last) {
		// An older pair of this chain: the real service invalidates and deletes the whole chain.
		s.remove(t)
		s.stats.Replays++
		s.stats.ChainDeletions++
		writeErr(w, http.StatusUnauthorized, codeAccessDenied, "Access denied")
		return
	}
	if agen != last {
		writeErr(w, http.StatusBadRequest, codeMismatch, "The access token does not match the refresh token")
		return
	}
	now := s.now()
	cur := t.current()
	if !now.Before(cur.refreshExpiry) {
		writeErr(w, http.StatusBadRequest, codeRefreshExpired, "Refresh token has expired")
		return
	}
	if !now.Before(t.renewableUntil) {
		writeErr(w, http.StatusBadRequest, codeNotRenewable, "Access token cannot be renewed beyond its renewable until time")
		return
	}
	p := pair{
		access:        randomValue(32),
		refresh:       randomValue(32),
		accessExpiry:  now.Add(s.opts.AccessLifetime).Truncate(time.Second),
		refreshExpiry: now.Add(s.opts.RefreshLifetime).Truncate(time.Second),
	}
	t.pairs = append(t.pairs, p)
	s.byAccess[p.access] = t.id
	s.byRefresh[p.refresh] = t.id
	s.stats.Renews++
	ans := t.answer()
	typ := t.typ
	ans.TokenType = &typ
	ans.Error = errBody{}
	writeJSON(w, http.StatusOK, ans)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, rawID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.sessionUser(w, r)
	if u == nil {
		return
	}
	id, err := strconv.Atoi(rawID)
	if err != nil || id <= 0 {
		writeErr(w, http.StatusBadRequest, codeBadRequest, "Invalid accessTokenId")
		return
	}
	t, ok := s.tokens[id]
	if !ok || t.user != u {
		writeErr(w, http.StatusNotFound, codeNotFound, "Access token not found")
		return
	}
	s.remove(t)
	s.stats.Revokes++
	writeJSON(w, http.StatusOK, errBody{})
}

func typeName(typ int) string {
	switch typ {
	case typeMSSCIM:
		return "MS_SCIM"
	case typeCUSTOM:
		return "CUSTOM"
	case typeOneTouch:
		return "OneTouch"
	case typeHyperscale:
		return "Hyperscale"
	}
	return "ALL"
}

func parseTypeName(s string) (int, bool) {
	switch s {
	case "DEFAULT":
		return typeDefault, true
	case "ALL":
		return typeALL, true
	case "MS_SCIM":
		return typeMSSCIM, true
	case "CUSTOM":
		return typeCUSTOM, true
	case "OneTouch":
		return typeOneTouch, true
	case "Hyperscale":
		return typeHyperscale, true
	}
	return 0, false
}

// parseType reads tokenType as an integer (cvpysdk) or a name (OpenAPI).
func parseType(raw json.RawMessage) (int, bool) {
	raw = bytes.TrimSpace(raw)
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, n >= typeDefault && n <= typeHyperscale
	}
	var name string
	if err := json.Unmarshal(raw, &name); err == nil {
		return parseTypeName(name)
	}
	return 0, false
}
