// Package astratest is a stateful fake of the NetApp Astra Control token API (api/astra.md) on httptest,
// for tests, the reliability suite and `tokend demo`.
//
// It is as strict as the real service is documented to be: bearer auth with a token of the account
// (missing: 401 /problems/3; unknown, revoked or disabled: 401 /problems/4), a user manages only their own
// tokens (403 /problems/11), unknown account or user (404 /problems/2), unknown token (404 /problems/1),
// exact paths and methods, Content-Type application/astra-token+json on POST (415 otherwise), Accept
// negotiated (406 for a type it cannot produce), request schemas with additionalProperties false (400
// /problems/8), names of 1-63 safe characters (400 /problems/9), limit/continue paging, problem bodies with
// a string status, and one-time secrets: the value is in the create answer only; the fake keeps a hash.
//
// Secrets are minted as Astra's spec describes them, base64 text of a JWT, whose jti claim is the token id
// (Options.OpaqueSecrets mints random values instead, so a client cannot learn the id from the secret).
package astratest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend/providers/providertest/faults"
)

// Default identities of the fake's account and first user.
const (
	DefaultAccountID = "9a3b51a2-5a63-4e0b-9f43-2d0c0e2f6a10"
	DefaultUserID    = "6f3c2d1e-8b7a-4c5d-9e0f-1a2b3c4d5e6f"
)

const (
	tokenType  = "application/astra-token"
	mediaToken = "application/astra-token+json"
	problemURI = "https://astra.netapp.io/problems/"
)

// Options configure the fake. The zero value is one account with one user and JWT-shaped secrets.
type Options struct {
	Now       func() time.Time // nil: time.Now
	AccountID string           // "": DefaultAccountID
	// Users are the account's user ids; the first is the one IssueBootstrap mints for. Empty: DefaultUserID.
	Users []string
	// OpaqueSecrets mints random secrets that do not name their token.
	OpaqueSecrets bool
	// MaxPageSize caps the items of one list page whatever limit asks (0: no cap beyond limit).
	MaxPageSize int
	// TLS serves https (Client trusts it) instead of plain http on 127.0.0.1.
	TLS bool
}

// Faults are random failures for demo and reliability runs (see faults.Profile); ErrorRate answers 500 or
// 503, and an injected status carries an Astra problem body.
type Faults = faults.Profile

// Stats are counters of what the fake saw and did.
type Stats struct {
	Creates          int // tokens created through the API
	Bootstraps       int // tokens minted as by a person in the UI (IssueBootstrap, IssueToken)
	Renews           int // always 0: Astra has no renew
	Revokes          int // tokens deleted through the API
	OutOfBandDeletes int // tokens deleted behind the client's back (DeleteToken)
	Replays          int // always 0: Astra has no rotating refresh credential
	ChainDeletions   int // always 0 (Commvault only)
	Live             int // tokens that exist now
	Requests         int // API requests received
	Unauthorized     int // requests answered 401
}

// TokenInfo describes one vendor-side token; it never holds the secret.
type TokenInfo struct {
	ID        string
	Name      string
	UserID    string
	Labels    map[string]string
	CreatedAt time.Time
	ExpiresAt time.Time // always zero: Astra tokens never expire
}

type label struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type token struct {
	id, name, user string
	labels         []label
	created        time.Time
	hash           [32]byte
	seq            int
}

// Server is the fake. It is safe for concurrent use.
type Server struct {
	srv     *httptest.Server
	opts    Options
	now     func() time.Time
	jwtKey  []byte
	account string

	mu       sync.Mutex
	users    map[string]bool // user id -> disabled
	tokens   map[string]*token
	bySecret map[[32]byte]string
	seq      int
	stats    Stats

	// Injector's FailNext, MalformedNext and SetFaults fail API requests.
	*faults.Injector
}

// New starts a fake on 127.0.0.1.
func New(opts Options) *Server {
	s := &Server{opts: opts, now: opts.Now, account: opts.AccountID,
		users: map[string]bool{}, tokens: map[string]*token{}, bySecret: map[[32]byte]string{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.account == "" {
		s.account = DefaultAccountID
	}
	if len(s.opts.Users) == 0 {
		s.opts.Users = []string{DefaultUserID}
	}
	for _, u := range s.opts.Users {
		s.users[u] = false
	}
	s.jwtKey = make([]byte, 32)
	_, _ = rand.Read(s.jwtKey)
	s.Injector = faults.New(faults.Options{Now: s.now, ServerErrors: []int{500, 503}, Garbage: `{"type": "application/astra-tok`})
	h := faults.Handler(s.Injector, http.HandlerFunc(s.api), writeInjected)
	if opts.TLS {
		s.srv = httptest.NewTLSServer(h)
	} else {
		s.srv = httptest.NewServer(h)
	}
	return s
}

// URL is the server address to configure as the provider's url.
func (s *Server) URL() string { return s.srv.URL }

// AccountID is the account id to configure.
func (s *Server) AccountID() string { return s.account }

// UserID is the first user's id, to configure as user_id.
func (s *Server) UserID() string { return s.opts.Users[0] }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Client returns a client that trusts the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Valid reports whether the fake would accept secret as a bearer now.
func (s *Server) Valid(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.lookup(secret)
	return ok
}

// lookup returns the live token for a secret of an enabled user. Caller holds mu.
func (s *Server) lookup(secret string) (*token, bool) {
	id, ok := s.bySecret[sha256.Sum256([]byte(secret))]
	if !ok {
		return nil, false
	}
	t := s.tokens[id]
	if t == nil || s.users[t.user] {
		return nil, false
	}
	return t, true
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

// Tokens returns the tokens that exist, oldest first.
func (s *Server) Tokens() []TokenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.sorted("")
	out := make([]TokenInfo, 0, len(ts))
	for _, t := range ts {
		ls := map[string]string{}
		for _, l := range t.labels {
			ls[l.Name] = l.Value
		}
		out = append(out, TokenInfo{ID: t.id, Name: t.name, UserID: t.user, Labels: ls, CreatedAt: t.created})
	}
	return out
}

// IssueBootstrap mints a token for the first user as a person does in the Astra UI ("Generate API token")
// and returns its secret.
func (s *Server) IssueBootstrap() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, secret := s.mint(s.opts.Users[0], fmt.Sprintf("ui-token-%d", s.seq+1), nil)
	s.stats.Bootstraps++
	return secret
}

// IssueToken mints a token for user (which must be one of Options.Users) named name, as in the UI, and
// returns its id and secret.
func (s *Server) IssueToken(user, name string) (id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[user]; !ok {
		panic("astratest: IssueToken for unknown user " + user)
	}
	s.stats.Bootstraps++
	return s.mint(user, name, nil)
}

// DeleteToken deletes a token behind the client's back (a person revoking it in the UI). It reports
// whether the token existed.
func (s *Server) DeleteToken(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens[id] == nil {
		return false
	}
	s.remove(id)
	s.stats.OutOfBandDeletes++
	return true
}

// DisableUser refuses (or accepts again) every bearer of user without deleting its tokens: a credential
// that is bad although its token still exists (Tokens lists it, Valid is false). The fake answers 401
// /problems/4, as for a deleted token; whether the real service does is unconfirmed.
func (s *Server) DisableUser(user string, disabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[user]; ok {
		s.users[user] = disabled
	}
}

// mint creates a token and returns its id and one-time secret. Caller holds mu.
func (s *Server) mint(user, name string, labels []label) (string, string) {
	s.seq++
	id := newUUID()
	now := s.now().UTC()
	var secret string
	if s.opts.OpaqueSecrets {
		b := make([]byte, 36)
		_, _ = rand.Read(b)
		secret = base64.StdEncoding.EncodeToString(b)
	} else {
		secret = s.jwt(id, user, now)
	}
	h := sha256.Sum256([]byte(secret))
	s.tokens[id] = &token{id: id, name: name, user: user, labels: labels, created: now, hash: h, seq: s.seq}
	s.bySecret[h] = id
	return id, secret
}

// jwt returns base64(JWT) naming token id, signed with the fake's key.
func (s *Server) jwt(id, user string, now time.Time) string {
	enc := base64.RawURLEncoding
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	h := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"iss": "astra-fake", "sub": user, "jti": id, "aid": s.account,
		"iat": now.Unix(), "nonce": hex.EncodeToString(nonce)})
	unsigned := h + "." + enc.EncodeToString(claims)
	m := hmac.New(sha256.New, s.jwtKey)
	m.Write([]byte(unsigned))
	return base64.StdEncoding.EncodeToString([]byte(unsigned + "." + enc.EncodeToString(m.Sum(nil))))
}

func (s *Server) remove(id string) {
	t := s.tokens[id]
	delete(s.bySecret, t.hash)
	delete(s.tokens, id)
}

// sorted returns the tokens of user ("" for all) in creation order. Caller holds mu.
func (s *Server) sorted(user string) []*token {
	var ts []*token
	for _, t := range s.tokens {
		if user == "" || t.user == user {
			ts = append(ts, t)
		}
	}
	slices.SortFunc(ts, func(a, b *token) int { return a.seq - b.seq })
	return ts
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var pathRE = regexp.MustCompile(`^/accounts/([^/]+)/core/v1/users/([^/]+)/tokens(?:/([^/]+))?$`)

// writeInjected answers a status injected by FailNext or SetFaults.
func writeInjected(w http.ResponseWriter, status int) {
	writeProblem(w, status, 0, http.StatusText(status), "injected failure", nil)
}

// api is the token API proper.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		writeProblem(w, http.StatusNotFound, 2, "Collection not found", "The requested collection does not exist.", nil)
		return
	}
	acct, user, id := m[1], m[2], m[3]
	allowed := []string{http.MethodGet, http.MethodPost}
	if id != "" {
		allowed = []string{http.MethodGet, http.MethodPut, http.MethodDelete}
	}
	if !slices.Contains(allowed, r.Method) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeProblem(w, http.StatusMethodNotAllowed, 0, "Method not allowed", r.Method+" is not supported here.", nil)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	scheme, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		s.stats.Unauthorized++
		writeProblem(w, http.StatusUnauthorized, 3, "Missing bearer token", "The request did not include a bearer token.", nil)
		return
	}
	caller, ok := s.lookup(secret)
	if !ok {
		s.stats.Unauthorized++
		writeProblem(w, http.StatusUnauthorized, 4, "Invalid bearer token", "The bearer token provided is invalid, revoked, or doesn't exist.", nil)
		return
	}
	if _, known := s.users[user]; acct != s.account || !known {
		writeProblem(w, http.StatusNotFound, 2, "Collection not found", "The account or user does not exist.", nil)
		return
	}
	if caller.user != user {
		writeProblem(w, http.StatusForbidden, 11, "Operation not permitted", "The user may not manage tokens of another user.", nil)
		return
	}
	if !acceptable(r.Header.Get("Accept")) {
		writeProblem(w, http.StatusNotAcceptable, 0, "Not acceptable", "Supported media types: application/json, application/astra-token+json.", nil)
		return
	}
	switch {
	case id == "" && r.Method == http.MethodGet:
		s.list(w, r, user)
	case id == "" && r.Method == http.MethodPost:
		s.create(w, r, user)
	case r.Method == http.MethodGet:
		s.get(w, r, user, id)
	case r.Method == http.MethodPut:
		s.put(w, r, user, id)
	case r.Method == http.MethodDelete:
		t := s.tokens[id]
		if t == nil || t.user != user {
			writeProblem(w, http.StatusNotFound, 1, "Resource not found", "The resource does not exist.", nil)
			return
		}
		s.remove(id)
		s.stats.Revokes++
		w.WriteHeader(http.StatusNoContent)
	}
}

// acceptable reports whether the fake can answer an Accept header.
func acceptable(h string) bool {
	if strings.TrimSpace(h) == "" {
		return true
	}
	for part := range strings.SplitSeq(h, ",") {
		mt, _, _ := strings.Cut(part, ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "*/*", "application/*", "application/json", mediaToken:
			return true
		}
	}
	return false
}

// respType is the Content-Type of a resource answer given the request's Accept.
func respType(accept string) string {
	if strings.Contains(accept, mediaToken) {
		return mediaToken
	}
	return "application/json"
}

type resource struct {
	Type     string   `json:"type"`
	Version  string   `json:"version"`
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	UserID   string   `json:"userID"`
	Metadata metadata `json:"metadata"`
	Token    string   `json:"token,omitempty"`
}

type metadata struct {
	Labels                []label `json:"labels"`
	CreationTimestamp     string  `json:"creationTimestamp"`
	ModificationTimestamp string  `json:"modificationTimestamp"`
	CreatedBy             string  `json:"createdBy"`
	ModifiedBy            string  `json:"modifiedBy"`
}

func (t *token) resource() resource {
	ts := t.created.Format("2006-01-02T15:04:05.000000Z")
	ls := t.labels
	if ls == nil {
		ls = []label{}
	}
	return resource{Type: tokenType, Version: "1.0", ID: t.id, Name: t.name, UserID: t.user,
		Metadata: metadata{Labels: ls, CreationTimestamp: ts, ModificationTimestamp: ts, CreatedBy: t.user, ModifiedBy: t.user}}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, user, id string) {
	t := s.tokens[id]
	if t == nil || t.user != user {
		writeProblem(w, http.StatusNotFound, 1, "Resource not found", "The resource does not exist.", nil)
		return
	}
	b, _ := json.Marshal(t.resource())
	sum := md5.Sum(b)
	w.Header().Set("Etag", hex.EncodeToString(sum[:]))
	w.Header().Set("Content-Type", respType(r.Header.Get("Accept")))
	_, _ = w.Write(b)
}

// cursor is the opaque continue value: base64 of the sequence number to resume after.
func cursor(seq int) string {
	return base64.StdEncoding.EncodeToString([]byte("after:" + strconv.Itoa(seq)))
}

func parseCursor(c string) (int, bool) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "after:"))
	return n, err == nil && strings.HasPrefix(string(b), "after:") && n >= 0
}

var filterRE = regexp.MustCompile(`^name eq '([A-Za-z0-9 ._-]*)'$`)

func (s *Server) list(w http.ResponseWriter, r *http.Request, user string) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "limit", "continue", "count", "filter", "include":
		default:
			writeProblem(w, http.StatusBadRequest, 6, "Query parameters not supported", "Unsupported query parameter.",
				map[string]any{"invalidParams": []map[string]string{{"name": k, "reason": "not supported"}}})
			return
		}
	}
	bad := func(name, reason string) {
		writeProblem(w, http.StatusBadRequest, 5, "Invalid query parameters", "A query parameter is invalid.",
			map[string]any{"invalidParams": []map[string]string{{"name": name, "reason": reason}}})
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("limit", "must be a positive integer")
			return
		}
		limit = n
	}
	if s.opts.MaxPageSize > 0 && (limit == 0 || limit > s.opts.MaxPageSize) {
		limit = s.opts.MaxPageSize
	}
	after := 0
	if v := q.Get("continue"); v != "" {
		n, ok := parseCursor(v)
		if !ok {
			bad("continue", "invalid cursor")
			return
		}
		after = n
	}
	nameFilter, hasFilter := "", false
	if v := q.Get("filter"); v != "" {
		m := filterRE.FindStringSubmatch(v)
		if m == nil {
			bad("filter", "only name eq '<value>' is supported by the fake")
			return
		}
		nameFilter, hasFilter = m[1], true
	}
	var include []string
	if v := q.Get("include"); v != "" {
		include = strings.Split(v, ",")
		for _, f := range include {
			if !slices.Contains([]string{"id", "name", "userID", "type", "version", "metadata"}, f) {
				bad("include", "unknown field "+f)
				return
			}
		}
	}
	var match []*token
	for _, t := range s.sorted(user) {
		if !hasFilter || t.name == nameFilter {
			match = append(match, t)
		}
	}
	items := []any{}
	meta := map[string]any{}
	last := 0
	for _, t := range match {
		if t.seq <= after {
			continue
		}
		if limit > 0 && len(items) == limit {
			meta["continue"] = cursor(last)
			break
		}
		res := t.resource()
		if include != nil {
			row := make([]any, len(include))
			for i, f := range include {
				row[i] = map[string]any{"id": res.ID, "name": res.Name, "userID": res.UserID, "type": res.Type,
					"version": res.Version, "metadata": res.Metadata}[f]
			}
			items = append(items, row)
		} else {
			items = append(items, res)
		}
		last = t.seq
	}
	if q.Get("count") == "true" {
		meta["count"] = len(match)
	}
	b, _ := json.Marshal(map[string]any{"type": "application/astra-tokens", "version": "1.0", "items": items, "metadata": meta})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9 ._-]{1,63}$`)

// readBody enforces the media type and the strict schema (type, version, name, metadata.labels only).
func readBody(w http.ResponseWriter, r *http.Request) (resource, bool) {
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) != mediaToken {
		writeProblem(w, http.StatusUnsupportedMediaType, 0, "Unsupported media type", "Send Content-Type: application/astra-token+json.", nil)
		return resource{}, false
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, 7, "Invalid JSON payload", "The body could not be read.", nil)
		return resource{}, false
	}
	var req struct {
		Type     string `json:"type"`
		Version  string `json:"version"`
		ID       string `json:"id"`
		Name     string `json:"name"`
		UserID   string `json:"userID"`
		Metadata *struct {
			Labels []label `json:"labels"`
		} `json:"metadata"`
	}
	if !json.Valid(raw) {
		writeProblem(w, http.StatusBadRequest, 7, "Invalid JSON payload", "The body is not valid JSON.", nil)
		return resource{}, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeProblem(w, http.StatusBadRequest, 8, "Request body does not match the schema", "Schema validation failed.",
			map[string]any{"schemaValidationFailure": err.Error()})
		return resource{}, false
	}
	if req.Type != tokenType || req.Version != "1.0" {
		writeProblem(w, http.StatusBadRequest, 8, "Request body does not match the schema", "type and version are required.",
			map[string]any{"schemaValidationFailure": "type must be application/astra-token, version 1.0"})
		return resource{}, false
	}
	res := resource{Type: req.Type, Version: req.Version, ID: req.ID, Name: req.Name, UserID: req.UserID}
	if req.Metadata != nil {
		seen := map[label]bool{}
		for _, l := range req.Metadata.Labels {
			if seen[l] {
				writeProblem(w, http.StatusBadRequest, 8, "Request body does not match the schema", "Labels must be unique.", nil)
				return resource{}, false
			}
			seen[l] = true
		}
		res.Metadata.Labels = req.Metadata.Labels
	}
	return res, true
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, user string) {
	req, ok := readBody(w, r)
	if !ok {
		return
	}
	if req.ID != "" || req.UserID != "" {
		writeProblem(w, http.StatusBadRequest, 8, "Request body does not match the schema", "id and userID are not accepted on create.", nil)
		return
	}
	if !nameRE.MatchString(req.Name) {
		writeProblem(w, http.StatusBadRequest, 9, "Failed extended validation", "The name is invalid.",
			map[string]any{"invalidFields": []map[string]string{{"name": "name", "reason": "1-63 characters of letters, digits, space, '.', '_', '-'"}}})
		return
	}
	id, secret := s.mint(user, req.Name, req.Metadata.Labels)
	s.stats.Creates++
	res := s.tokens[id].resource()
	res.Token = secret
	b, _ := json.Marshal(res)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	w.Header().Set("Location", fmt.Sprintf("%s://%s/accounts/%s/core/v1/users/%s/tokens/%s", scheme, r.Host, s.account, user, id))
	w.Header().Set("Content-Type", respType(r.Header.Get("Accept")))
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(b)
}

func (s *Server) put(w http.ResponseWriter, r *http.Request, user, id string) {
	t := s.tokens[id]
	if t == nil || t.user != user {
		writeProblem(w, http.StatusNotFound, 1, "Resource not found", "The resource does not exist.", nil)
		return
	}
	req, ok := readBody(w, r)
	if !ok {
		return
	}
	if (req.ID != "" && req.ID != id) || (req.UserID != "" && req.UserID != user) {
		writeProblem(w, http.StatusConflict, 10, "Conflict", "id and userID cannot change.", nil)
		return
	}
	if req.Name != "" {
		if !nameRE.MatchString(req.Name) {
			writeProblem(w, http.StatusBadRequest, 9, "Failed extended validation", "The name is invalid.", nil)
			return
		}
		t.name = req.Name
	}
	if req.Metadata.Labels != nil {
		t.labels = req.Metadata.Labels
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeProblem writes an RFC 7807 body with Astra's string status. n is the Astra problem number (0: none).
func writeProblem(w http.ResponseWriter, status, n int, title, detail string, extra map[string]any) {
	typ := "about:blank"
	if n > 0 {
		typ = problemURI + strconv.Itoa(n)
	}
	p := map[string]any{"type": typ, "title": title, "detail": detail, "status": strconv.Itoa(status),
		"correlationID": newUUID()}
	for k, v := range extra {
		p[k] = v
	}
	b, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
