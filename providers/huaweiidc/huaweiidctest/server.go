// Package huaweiidctest is a stateful fake of the Huawei Cloud IAM Identity Center APIs tokend uses, on
// httptest: the identity-store bearer-token API (list, create, delete; provisioning tenants) behind an API
// gateway that checks AK/SK signatures (SDK-HMAC-SHA256, X-Sdk-Date within 15 minutes), and the SCIM
// endpoint's ServiceProviderConfig, which accepts a bearer token while it exists and has not expired.
//
// It is as strict as the real service is documented to be (api/huawei-idc.md): exact paths and methods,
// millisecond timestamps, the token value only in the 201 create answer, a per-tenant cap that expired but
// undeleted tokens count toward, 404 for unknown ids, the vendor's error shapes. Its signature check is an
// implementation of its own (not the provider's), pinned by the vendor SDK's test vectors in
// ../testdata. Lifetimes are settable down to seconds for tokend demo, and faults can be injected.
package huaweiidctest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend/providers/providertest/faults"
)

// Defaults used when Options leave a field empty.
const (
	DefaultAccessKey       = "HPUAFAKEACCESSKEY0001"
	DefaultSecretKey       = "fakeSecretKeyForTheHuaweiIDCFake0123456789"
	DefaultIdentityStoreID = "d-1234567890"
	DefaultTenantID        = "8f2c6a4e-1b3d-4f5a-9c7e-0d2b4a6c8e1f"
	DefaultMaxTokens       = 2
	DefaultLifetime        = 365 * 24 * time.Hour
	DefaultMaxSkew         = 15 * time.Minute
)

// Options configure a Server. The zero value is the vendor's documented behaviour with one identity store
// and one provisioning tenant.
type Options struct {
	Now             func() time.Time // nil: time.Now; shift it to move the fake's clock (and its Date)
	AccessKey       string           // the one AK the gateway knows; default DefaultAccessKey
	SecretKey       string           // its SK; default DefaultSecretKey
	IdentityStoreID string           // default DefaultIdentityStoreID
	Tenants         []string         // provisioning tenant ids; default {DefaultTenantID}
	MaxTokens       int              // per-tenant cap, expired tokens included; default 2
	Lifetime        time.Duration    // token lifetime; default 365 days (may be seconds for the demo)
	MaxSkew         time.Duration    // allowed |X-Sdk-Date - now|; default 15 minutes
}

// Faults are random failures for the demo and the reliability runs (see faults.Profile); ErrorRate answers
// 503, and an injected status carries the body the gateway or the service would send.
type Faults = faults.Profile

// Stats counts what the fake saw.
type Stats struct {
	Requests       int // every request, including refused ones
	Creates        int // tokens created through the API
	Renews         int // always 0: the vendor has no renew call
	Revokes        int // tokens deleted through the API
	Replays        int // always 0: the vendor has no rotating refresh credential
	ChainDeletions int // always 0 (Commvault only)
	Live           int // tokens that exist now (expired but undeleted ones included)
	BadSignatures  int // identity-store requests refused by the gateway (signature, AK, date)
	CapRefusals    int // creates refused because the tenant was at its cap
	StaleBearers   int // SCIM requests presenting a token that was deleted or has expired
	UnknownBearers int // SCIM requests presenting a token the vendor never issued
}

// TokenInfo is a vendor-side token, without its secret. Name is always empty: the vendor takes no name.
type TokenInfo struct {
	ID        string
	Name      string
	TenantID  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

type token struct {
	TokenInfo
	secret string
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	srv  *httptest.Server

	mu       sync.Mutex
	tokens   map[string]*token // by id; the tokens that exist
	bySecret map[string]*token // live tokens by secret
	dead     map[string]bool   // secrets of deleted tokens
	stats    Stats

	// Injector's FailNext, MalformedNext and SetFaults fail requests.
	*faults.Injector
}

// New starts a fake on a plain-HTTP 127.0.0.1 listener (tokend allows http to loopback).
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AccessKey == "" {
		opts.AccessKey = DefaultAccessKey
	}
	if opts.SecretKey == "" {
		opts.SecretKey = DefaultSecretKey
	}
	if opts.IdentityStoreID == "" {
		opts.IdentityStoreID = DefaultIdentityStoreID
	}
	if len(opts.Tenants) == 0 {
		opts.Tenants = []string{DefaultTenantID}
	}
	if opts.MaxTokens <= 0 {
		opts.MaxTokens = DefaultMaxTokens
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = DefaultLifetime
	}
	if opts.MaxSkew <= 0 {
		opts.MaxSkew = DefaultMaxSkew
	}
	s := &Server{
		opts:     opts,
		tokens:   map[string]*token{},
		bySecret: map[string]*token{},
		dead:     map[string]bool{},
		Injector: faults.New(faults.Options{Now: opts.Now, Garbage: "<html><body>upstream"}),
	}
	s.srv = httptest.NewServer(faults.Handler(s.Injector, http.HandlerFunc(s.route), writeFault))
	return s
}

// URL is the identity-store API base (the provider's url).
func (s *Server) URL() string { return s.srv.URL }

// SCIMURL is the SCIM base (the provider's scim_url); the fake serves it on the same listener.
func (s *Server) SCIMURL() string { return s.srv.URL }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// AccessKey returns the AK the gateway accepts.
func (s *Server) AccessKey() string { return s.opts.AccessKey }

// SecretKey returns the SK of AccessKey.
func (s *Server) SecretKey() string { return s.opts.SecretKey }

// IdentityStoreID returns the identity store's id.
func (s *Server) IdentityStoreID() string { return s.opts.IdentityStoreID }

// TenantID returns the first provisioning tenant's id.
func (s *Server) TenantID() string { return s.opts.Tenants[0] }

// MaxTokens returns the per-tenant cap.
func (s *Server) MaxTokens() int { return s.opts.MaxTokens }

// Valid reports whether the SCIM endpoint would accept secret right now: the token exists and has not
// expired.
func (s *Server) Valid(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.bySecret[secret]
	return ok && s.opts.Now().Before(t.ExpiresAt)
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

// Tokens returns the tokens that exist (expired but undeleted ones included), oldest first.
func (s *Server) Tokens() []TokenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TokenInfo, 0, len(s.tokens))
	for _, t := range s.sortedLocked("") {
		out = append(out, t.TokenInfo)
	}
	return out
}

// IssueToken creates a token in tenant the way a person does in the console (not counted in Stats.Creates)
// and returns it with its secret. It fails like the API does when the tenant is unknown or full.
func (s *Server) IssueToken(tenant string) (TokenInfo, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.knownTenant(tenant) {
		return TokenInfo{}, "", fmt.Errorf("unknown tenant %q", tenant)
	}
	if n := len(s.sortedLocked(tenant)); n >= s.opts.MaxTokens {
		return TokenInfo{}, "", fmt.Errorf("tenant %s is at its cap of %d tokens", tenant, s.opts.MaxTokens)
	}
	t := s.mintLocked(tenant)
	return t.TokenInfo, t.secret, nil
}

// RemoveToken deletes a token behind tokend's back (a person in the console). It reports whether it existed.
func (s *Server) RemoveToken(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	if ok {
		s.deleteLocked(t)
	}
	return ok
}

func (s *Server) knownTenant(id string) bool {
	for _, t := range s.opts.Tenants {
		if t == id {
			return true
		}
	}
	return false
}

// sortedLocked returns the tokens of tenant ("" for all), oldest first.
func (s *Server) sortedLocked(tenant string) []*token {
	var out []*token
	for _, t := range s.tokens {
		if tenant == "" || t.TenantID == tenant {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// mintLocked creates a token: creation_time in ms, expiration_time = creation_time truncated to whole
// seconds + Lifetime (as in the vendor's examples).
func (s *Server) mintLocked(tenant string) *token {
	now := s.opts.Now().UTC().Truncate(time.Millisecond)
	t := &token{TokenInfo: TokenInfo{
		ID:        newUUID(),
		TenantID:  tenant,
		CreatedAt: now,
		ExpiresAt: now.Truncate(time.Second).Add(s.opts.Lifetime).Truncate(time.Millisecond),
	}}
	t.secret = newJWT(t)
	s.tokens[t.ID] = t
	s.bySecret[t.secret] = t
	return t
}

func (s *Server) deleteLocked(t *token) {
	delete(s.tokens, t.ID)
	delete(s.bySecret, t.secret)
	s.dead[t.secret] = true
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newJWT returns an opaque JWT-shaped value ("eyJraWQiOi..." as in the vendor's example) with a random
// signature part, so it cannot be guessed.
func newJWT(t *token) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"kid":"fake-huawei-idc","alg":"RS256"}`))
	claims, _ := json.Marshal(map[string]any{"tid": t.TenantID, "jti": t.ID, "exp": t.ExpiresAt.Unix()})
	var sig [32]byte
	_, _ = rand.Read(sig[:])
	return head + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString(sig[:])
}

// ---- HTTP ----

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	seg := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case len(seg) == 4 && seg[1] == "scim" && seg[2] == "v2" && seg[3] == "ServiceProviderConfig":
		if r.Method != http.MethodGet {
			writeGatewayNotFound(w)
			return
		}
		s.serviceProviderConfig(w, r, seg[0])
		return
	case len(seg) >= 4 && seg[0] == "v1" && seg[1] == "identity-stores":
	default:
		writeGatewayNotFound(w)
		return
	}
	var handler func(http.ResponseWriter, *http.Request, []string)
	switch {
	case len(seg) == 4 && seg[3] == "provision-tenant" && r.Method == http.MethodGet:
		handler = s.listTenants
	case len(seg) == 6 && seg[3] == "tenant" && seg[5] == "bearer-token" && r.Method == http.MethodGet:
		handler = s.listTokens
	case len(seg) == 6 && seg[3] == "tenant" && seg[5] == "bearer-token" && r.Method == http.MethodPost:
		handler = s.createToken
	case len(seg) == 7 && seg[3] == "tenant" && seg[5] == "bearer-token" && r.Method == http.MethodDelete:
		handler = s.deleteToken
	default:
		writeGatewayNotFound(w)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 12<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "APIGW.0201", "Request body read failed")
		return
	}
	if msg := s.checkSignature(r, body); msg != "" {
		s.mu.Lock()
		s.stats.BadSignatures++
		s.mu.Unlock()
		writeError(w, http.StatusUnauthorized, "APIGW.0301", "Incorrect IAM authentication information: "+msg)
		return
	}
	if seg[2] != s.opts.IdentityStoreID {
		writeError(w, http.StatusNotFound, "IdentityCenter.404", "Not Found: identity store does not exist")
		return
	}
	if len(seg) >= 5 && !s.knownTenant(seg[4]) {
		writeError(w, http.StatusNotFound, "IdentityCenter.404", "Not Found: provisioning tenant does not exist")
		return
	}
	if len(body) > 0 { // none of these calls takes a body
		writeError(w, http.StatusBadRequest, "IdentityCenter.400", "Bad Request: unexpected request body")
		return
	}
	handler(w, r, seg)
}

func (s *Server) listTenants(w http.ResponseWriter, _ *http.Request, _ []string) {
	type tenant struct {
		CreationTime int64  `json:"creation_time"`
		ScimEndpoint string `json:"scim_endpoint"`
		TenantID     string `json:"tenant_id"`
	}
	out := struct {
		Tenants []tenant `json:"provisioning_tenants"`
	}{Tenants: []tenant{}}
	for _, id := range s.opts.Tenants {
		out.Tenants = append(out.Tenants, tenant{CreationTime: 1754277000000, ScimEndpoint: s.SCIMURL() + "/" + id + "/scim/v2/", TenantID: id})
	}
	writeJSON(w, http.StatusOK, "application/json", out)
}

type wireToken struct {
	CreationTime   int64  `json:"creation_time"`
	ExpirationTime int64  `json:"expiration_time"`
	Token          string `json:"token,omitempty"`
	TokenID        string `json:"token_id"`
}

func wire(t *token) wireToken {
	return wireToken{CreationTime: t.CreatedAt.UnixMilli(), ExpirationTime: t.ExpiresAt.UnixMilli(), TokenID: t.ID}
}

func (s *Server) listTokens(w http.ResponseWriter, _ *http.Request, seg []string) {
	s.mu.Lock()
	out := struct {
		BearerTokens []wireToken `json:"bearer_tokens"`
	}{BearerTokens: []wireToken{}}
	for _, t := range s.sortedLocked(seg[4]) {
		out.BearerTokens = append(out.BearerTokens, wire(t))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, "application/json", out)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, seg []string) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		writeError(w, http.StatusBadRequest, "IdentityCenter.400", "Bad Request: unsupported Content-Type")
		return
	}
	s.mu.Lock()
	if len(s.sortedLocked(seg[4])) >= s.opts.MaxTokens {
		s.stats.CapRefusals++
		s.mu.Unlock()
		// The vendor's code for "tenant full" is unconfirmed (api/huawei-idc.md §7); this is the best guess.
		writeError(w, http.StatusBadRequest, "IdentityCenter.1003",
			fmt.Sprintf("Bad Request: the number of access tokens has reached the upper limit (%d)", s.opts.MaxTokens))
		return
	}
	t := s.mintLocked(seg[4])
	s.stats.Creates++
	out := wire(t)
	out.Token = t.secret
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, "application/json", out)
}

func (s *Server) deleteToken(w http.ResponseWriter, _ *http.Request, seg []string) {
	s.mu.Lock()
	t, ok := s.tokens[seg[6]]
	if !ok || t.TenantID != seg[4] {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "IdentityCenter.404", "Not Found: the access token does not exist")
		return
	}
	s.deleteLocked(t)
	s.stats.Revokes++
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *Server) serviceProviderConfig(w http.ResponseWriter, r *http.Request, tenant string) {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	t, live := s.bySecret[secret]
	valid := ok && live && t.TenantID == tenant && s.opts.Now().Before(t.ExpiresAt)
	if ok && !valid {
		if s.dead[secret] || live && !s.opts.Now().Before(t.ExpiresAt) {
			s.stats.StaleBearers++
		} else if !live {
			s.stats.UnknownBearers++
		}
	}
	s.mu.Unlock()
	if !valid {
		writeJSON(w, http.StatusUnauthorized, "application/scim+json", map[string]any{
			"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
			"detail":  "Authorization failure. The authorization header is invalid or missing.",
			"status":  "401",
		})
		return
	}
	writeJSON(w, http.StatusOK, "application/scim+json", map[string]any{
		"schemas":        []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"patch":          map[string]bool{"supported": true},
		"bulk":           map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":         map[string]any{"supported": true, "maxResults": 100},
		"changePassword": map[string]bool{"supported": false},
		"sort":           map[string]bool{"supported": false},
		"etag":           map[string]bool{"supported": false},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
			"description": "Authentication scheme using the OAuth Bearer Token Standard",
		}},
	})
}

// ---- gateway signature check (independent of the provider's signer) ----

const sdkDateLayout = "20060102T150405Z"

// checkSignature returns "" when r carries a valid SDK-HMAC-SHA256 signature by the known AK, else the
// gateway's reason.
func (s *Server) checkSignature(r *http.Request, body []byte) string {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "SDK-HMAC-SHA256 ")
	if !ok {
		return "Authorization header is missing or not SDK-HMAC-SHA256"
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ", ") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return "Authorization header is malformed"
		}
		fields[k] = v
	}
	ak, signed, sig := fields["Access"], fields["SignedHeaders"], fields["Signature"]
	if ak == "" || signed == "" || sig == "" || len(fields) != 3 {
		return "Authorization header is malformed"
	}
	date, err := time.Parse(sdkDateLayout, r.Header.Get("X-Sdk-Date"))
	if err != nil {
		return "X-Sdk-Date is missing or malformed"
	}
	if d := s.opts.Now().Sub(date); d > s.opts.MaxSkew || d < -s.opts.MaxSkew {
		return "signature expired"
	}
	if ak != s.opts.AccessKey {
		return "access key does not exist"
	}
	names := strings.Split(signed, ";")
	if !sort.StringsAreSorted(names) || !contains(names, "host") || !contains(names, "x-sdk-date") {
		return "SignedHeaders must be sorted and include host and x-sdk-date"
	}
	var hdrs strings.Builder
	for _, n := range names {
		if n != strings.ToLower(n) || n == "authorization" {
			return "SignedHeaders is malformed"
		}
		var vals []string
		if n == "host" {
			vals = []string{r.Host}
		} else {
			vals = append(vals, r.Header.Values(n)...)
		}
		if len(vals) == 0 {
			return "signed header " + n + " is missing"
		}
		sort.Strings(vals)
		for _, v := range vals {
			hdrs.WriteString(n + ":" + strings.TrimSpace(v) + "\n")
		}
	}
	bodySum := sha256.Sum256(body)
	canon := r.Method + "\n" + gatewayURI(r.URL.Path) + "\n" + gatewayQuery(r.URL.Query()) + "\n" +
		hdrs.String() + "\n" + signed + "\n" + hex.EncodeToString(bodySum[:])
	canonSum := sha256.Sum256([]byte(canon))
	sts := "SDK-HMAC-SHA256\n" + r.Header.Get("X-Sdk-Date") + "\n" + hex.EncodeToString(canonSum[:])
	mac := hmac.New(sha256.New, []byte(s.opts.SecretKey))
	mac.Write([]byte(sts))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return "verify aksk signature fail"
	}
	return ""
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func gatewayURI(path string) string {
	var b strings.Builder
	for i, seg := range strings.Split(path, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(gatewayEscape(seg))
	}
	out := b.String()
	if !strings.HasSuffix(out, "/") {
		out += "/"
	}
	return out
}

func gatewayQuery(q url.Values) string {
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, gatewayEscape(k)+"="+gatewayEscape(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// gatewayEscape is RFC 3986 escaping of everything but unreserved characters, upper-case hex.
func gatewayEscape(s string) string {
	var b bytes.Buffer
	for _, c := range []byte(s) {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// ---- answers ----

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", contentType+";charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	body := map[string]string{"error_code": code, "error_msg": msg, "request_id": strings.ReplaceAll(newUUID(), "-", "")}
	if status == http.StatusForbidden {
		body["encoded_authorization_message"] = base64.StdEncoding.EncodeToString([]byte("fake encrypted detail"))
	}
	writeJSON(w, status, "application/json", body)
}

func writeGatewayNotFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "APIGW.0101", "The API does not exist or has not been published in the environment")
}

// writeFault answers an injected failure in the shape the gateway or the service would use.
func writeFault(w http.ResponseWriter, status int) {
	switch {
	case status == http.StatusTooManyRequests: // faults.Handler has set Retry-After
		writeError(w, status, "APIG.0308", "The throttling threshold has been reached: policy user over ratelimit")
	case status == http.StatusUnauthorized:
		writeError(w, status, "APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail")
	case status == http.StatusForbidden:
		writeError(w, status, "IdentityCenter.1000", "Forbidden: no permission to perform this action")
	case status == http.StatusNotFound:
		writeError(w, status, "IdentityCenter.404", "Not Found")
	case status == http.StatusConflict:
		writeError(w, status, "IdentityCenter.1006", "Concurrency conflict, please try again later")
	case status >= 500:
		writeError(w, status, "APIGW.0203", "Backend unavailable")
	default:
		writeError(w, status, fmt.Sprintf("IdentityCenter.%d", status), http.StatusText(status))
	}
}
