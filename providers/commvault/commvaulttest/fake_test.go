package commvaulttest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/providers/commvault/commvaulttest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type client struct {
	t   *testing.T
	srv *commvaulttest.Server
}

// do sends a request with JSON headers (override with hdr; an empty value deletes) and decodes the answer.
func (c client) do(method, path string, hdr map[string]string, body any) (int, map[string]any, http.Header) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.srv.URL()+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, resp.Header
}

func (c client) login() string {
	c.t.Helper()
	_, out, _ := c.do("POST", "/Login", nil, map[string]any{"username": commvaulttest.DefaultUser,
		"password": base64.StdEncoding.EncodeToString([]byte(commvaulttest.DefaultPassword))})
	tok, _ := out["token"].(string)
	if !strings.HasPrefix(tok, "QSDK ") {
		c.t.Fatalf("login = %v, want a QSDK token", out)
	}
	return tok
}

func (c client) create(sess string, body map[string]any) map[string]any {
	c.t.Helper()
	st, out, _ := c.do("POST", "/V4/AccessToken", map[string]string{"Authtoken": sess}, body)
	info, _ := out["tokenInfo"].(map[string]any)
	if st != 200 || info == nil || info["accessToken"] == nil {
		c.t.Fatalf("create(%v) = %d %v", body, st, out)
	}
	return info
}

func newClient(t *testing.T, opts commvaulttest.Options) client {
	srv := commvaulttest.New(opts)
	t.Cleanup(srv.Close)
	return client{t, srv}
}

func num(v any) int64 { f, _ := v.(float64); return int64(f) }

func TestLogin(t *testing.T) {
	c := newClient(t, commvaulttest.Options{})
	tests := []struct {
		name string
		body any
		hdr  map[string]string
		want int
		ok   bool
	}{
		{"base64 password", map[string]any{"username": commvaulttest.DefaultUser, "password": base64.StdEncoding.EncodeToString([]byte(commvaulttest.DefaultPassword)), "deviceId": "h1", "timeout": 30}, nil, 200, true},
		{"plain password refused", map[string]any{"username": commvaulttest.DefaultUser, "password": commvaulttest.DefaultPassword}, nil, 200, false},
		{"wrong user", map[string]any{"username": "x", "password": base64.StdEncoding.EncodeToString([]byte(commvaulttest.DefaultPassword))}, nil, 200, false},
		{"unknown field", map[string]any{"username": commvaulttest.DefaultUser, "pasword": "x"}, nil, 400, false},
		{"text/plain", map[string]any{"username": "x"}, map[string]string{"Content-Type": "text/plain"}, 415, false},
		{"XML wanted", map[string]any{"username": "x"}, map[string]string{"Accept": "application/xml"}, 406, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, out, _ := c.do("POST", "/Login", tt.hdr, tt.body)
			_, hasTok := out["token"]
			if st != tt.want || hasTok != tt.ok {
				t.Errorf("POST /Login = %d %v, want %d, token %v", st, out, tt.want, tt.ok)
			}
			if st == 200 && !tt.ok {
				if l, _ := out["errList"].([]any); len(l) == 0 {
					t.Errorf("refused login without errList: %v", out)
				}
			}
		})
	}
	if st, _, _ := c.do("GET", "/Login", nil, nil); st != 405 {
		t.Errorf("GET /Login = %d, want 405", st)
	}
	if n := c.srv.Stats().Logins; n != 1 {
		t.Errorf("Logins = %d, want 1", n)
	}
}

func TestSessionsAndPaths(t *testing.T) {
	clk := &clock{t: time.Unix(1767225600, 0)}
	c := newClient(t, commvaulttest.Options{Now: clk.Now, SessionIdle: time.Minute})
	sess := c.login()
	auth := map[string]string{"Authtoken": sess}
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		want               int
	}{
		{"list", "GET", "/V4/AccessToken", auth, 200},
		{"list, lower-case path as the API explorer writes it", "GET", "/v4/accesstoken", auth, 200},
		{"list without a session", "GET", "/V4/AccessToken", nil, 401},
		{"list with a made-up session", "GET", "/V4/AccessToken", map[string]string{"Authtoken": "QSDK 00"}, 401},
		{"list of another user", "GET", "/V4/AccessToken?userId=99", auth, 403},
		{"no get-by-id", "GET", "/V4/AccessToken/101", auth, 405},
		{"delete unknown id", "DELETE", "/V4/AccessToken/4242", auth, 404},
		{"delete bad id", "DELETE", "/V4/AccessToken/abc", auth, 400},
		{"the literal /webservice path does not exist", "GET", "/webservice/V4/AccessToken", auth, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if st, out, _ := c.do(tt.method, tt.path, tt.hdr, nil); st != tt.want {
				t.Errorf("%s %s = %d %v, want %d", tt.method, tt.path, st, out, tt.want)
			}
		})
	}
	clk.Add(59 * time.Second)
	if st, _, _ := c.do("GET", "/V4/AccessToken", auth, nil); st != 200 {
		t.Errorf("list after 59 s = %d, want 200 (use keeps the session alive)", st)
	}
	clk.Add(61 * time.Second)
	if st, out, _ := c.do("GET", "/V4/AccessToken", auth, nil); st != 401 || num(out["errorCode"]) != 5 {
		t.Errorf("list after the idle timeout = %d %v, want 401 errorCode 5", st, out)
	}
}

func TestOneTimeSecretsAndCaps(t *testing.T) {
	const day = 24 * time.Hour
	clk := &clock{t: time.Unix(1767225600, 0)}
	c := newClient(t, commvaulttest.Options{Now: clk.Now, MaxTokens: 4})
	sess := c.login()
	now := clk.Now().Unix()
	all := c.create(sess, map[string]any{"tokenName": "a", "renewableUntilTimestamp": now + int64(400*day/time.Second)})
	scim := c.create(sess, map[string]any{"tokenName": "s", "tokenType": 1, "tokenExpiryTimestamp": now + int64(400*day/time.Second)})
	one := c.create(sess, map[string]any{"tokenName": "o", "tokenType": "OneTouch"})
	if got := num(all["renewableUntilTimestamp"]) - now; got != int64(365*day/time.Second) {
		t.Errorf("renewableUntil asked 400d, got %v, want the 365d cap", time.Duration(got)*time.Second)
	}
	if got := num(scim["tokenExpiryTimestamp"]) - now; got != int64(365*day/time.Second) {
		t.Errorf("MS_SCIM expiry asked 400d, got %v, want the 365d cap", time.Duration(got)*time.Second)
	}
	if got := num(one["tokenExpiryTimestamp"]) - now; got != int64(7*day/time.Second) {
		t.Errorf("OneTouch default expiry = %v, want 7d", time.Duration(got)*time.Second)
	}
	for _, info := range []map[string]any{scim, one} {
		if _, ok := info["refreshToken"]; ok {
			t.Errorf("%v: a recreate-only token got a refresh token", info["tokenName"])
		}
	}
	// The list never shows a value.
	_, out, _ := c.do("GET", "/V4/AccessToken", map[string]string{"Authtoken": sess}, nil)
	raw, _ := json.Marshal(out)
	for _, info := range []map[string]any{all, scim, one} {
		for _, k := range []string{"accessToken", "refreshToken"} {
			if v, _ := info[k].(string); v != "" && bytes.Contains(raw, []byte(v)) {
				t.Errorf("the list shows %s of %v", k, info["tokenName"])
			}
		}
	}
	if toks, _ := out["tokens"].([]any); len(toks) != 3 {
		t.Errorf("list = %d tokens, want 3", len(toks))
	}
	// Refusals.
	tests := []struct {
		name string
		body map[string]any
		want int
		code int64 // inside a 200 body
	}{
		{"duplicate name", map[string]any{"tokenName": "a"}, 200, 1001},
		{"CUSTOM without apiEndpoints", map[string]any{"tokenName": "c", "tokenType": 3}, 400, 0},
		{"float timestamp", map[string]any{"tokenName": "f", "renewableUntilTimestamp": 1.5e9 + 0.5}, 400, 0},
		{"past timestamp", map[string]any{"tokenName": "p", "renewableUntilTimestamp": now - 1}, 400, 0},
		{"unknown field", map[string]any{"tokenName": "u", "renewableUntil": now + 60}, 400, 0},
		{"unknown type", map[string]any{"tokenName": "t", "tokenType": 9}, 400, 0},
		{"no name", map[string]any{"tokenType": 2}, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, out, _ := c.do("POST", "/V4/AccessToken", map[string]string{"Authtoken": sess}, tt.body)
			errObj, _ := out["error"].(map[string]any)
			if st != tt.want || (tt.code != 0 && num(errObj["errorCode"]) != tt.code) {
				t.Errorf("create(%v) = %d %v, want %d code %d", tt.body, st, out, tt.want, tt.code)
			}
		})
	}
	c.create(sess, map[string]any{"tokenName": "fourth"})
	st, out, _ := c.do("POST", "/V4/AccessToken", map[string]string{"Authtoken": sess}, map[string]any{"tokenName": "fifth"})
	if errObj, _ := out["error"].(map[string]any); st != 200 || num(errObj["errorCode"]) == 0 {
		t.Errorf("create past MaxTokens = %d %v, want an error in a 200 body", st, out)
	}
	if s := c.srv.Stats(); s.Creates != 4 || s.Live != 4 {
		t.Errorf("Stats() = %+v, want 4 creates, 4 live", s)
	}
}

func TestRenewChainAndReplay(t *testing.T) {
	clk := &clock{t: time.Unix(1767225600, 0)}
	c := newClient(t, commvaulttest.Options{Now: clk.Now, AccessLifetime: 10 * time.Second, RefreshLifetime: time.Minute, RenewableLifetime: 5 * time.Minute})
	sess := c.login()
	info := c.create(sess, map[string]any{"tokenName": "chain"})
	renew := func(access, refresh any, hdr map[string]string) (int, map[string]any) {
		st, out, _ := c.do("POST", "/V4/AccessToken/Renew", hdr, map[string]any{"accessToken": access, "refreshToken": refresh})
		return st, out
	}
	a0, r0 := info["accessToken"], info["refreshToken"]
	clk.Add(5 * time.Second)
	st, p1 := renew(a0, r0, nil)
	if st != 200 || p1["accessToken"] == a0 || p1["refreshToken"] == r0 || num(p1["accessTokenId"]) != num(info["accessTokenId"]) {
		t.Fatalf("renew = %d %v, want a new pair for the same id", st, p1)
	}
	if num(p1["tokenExpiryTimestamp"]) != clk.Now().Unix()+10 || num(p1["renewableUntilTimestamp"]) != num(info["renewableUntilTimestamp"]) {
		t.Errorf("renew times = %v, want expiry now+10s and the same renewableUntil", p1)
	}
	if !c.srv.Valid(p1["accessToken"].(string)) || !c.srv.Valid(a0.(string)) {
		t.Errorf("Valid: new %v, previous %v; want both until the previous expires", c.srv.Valid(p1["accessToken"].(string)), c.srv.Valid(a0.(string)))
	}
	clk.Add(5 * time.Second)
	if c.srv.Valid(a0.(string)) {
		t.Errorf("Valid(previous access token) after its expiry = true")
	}
	if st, _ := renew(p1["accessToken"], p1["refreshToken"], map[string]string{"Authorization": "Bearer wrong"}); st != 401 {
		t.Errorf("renew with a bearer header for another token = %d, want 401", st)
	}
	if st, _ := renew(p1["accessToken"], "nope", nil); st != 404 {
		t.Errorf("renew with an unknown refresh token = %d, want 404", st)
	}
	if st, _ := renew("nope", p1["refreshToken"], nil); st != 400 {
		t.Errorf("renew with a mismatched pair = %d, want 400", st)
	}
	if s := c.srv.Stats(); s.Replays != 0 || s.Live != 1 {
		t.Fatalf("Stats() = %+v before the replay, want no replay", s)
	}
	// The replay of the first pair deletes the token and everything issued for it.
	if st, _ := renew(a0, r0, nil); st != 401 {
		t.Errorf("renew with the old pair = %d, want 401", st)
	}
	if s := c.srv.Stats(); s.Replays != 1 || s.ChainDeletions != 1 || s.Live != 0 || s.Renews != 1 {
		t.Errorf("Stats() = %+v, want 1 replay, 1 chain deletion, 0 live", s)
	}
	if c.srv.Valid(p1["accessToken"].(string)) {
		t.Errorf("Valid(current access token) after the chain deletion = true")
	}
	if st, _ := renew(p1["accessToken"], p1["refreshToken"], nil); st != 404 {
		t.Errorf("renew of a deleted chain = %d, want 404", st)
	}
}

func TestRenewLimits(t *testing.T) {
	tests := []struct {
		name string
		opts commvaulttest.Options
		wait time.Duration
		want string
	}{
		{"renewable until passed", commvaulttest.Options{RenewableLifetime: time.Minute}, time.Minute, "renewable until"},
		{"refresh token expired", commvaulttest.Options{RefreshLifetime: time.Minute}, time.Minute, "Refresh token has expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1767225600, 0)}
			tt.opts.Now = clk.Now
			c := newClient(t, tt.opts)
			info := c.create(c.login(), map[string]any{"tokenName": "x", "tokenType": 3, "apiEndpoints": []string{"/client"}})
			clk.Add(tt.wait)
			st, out, _ := c.do("POST", "/V4/AccessToken/Renew", nil, map[string]any{"accessToken": info["accessToken"], "refreshToken": info["refreshToken"]})
			if msg, _ := out["errorMessage"].(string); st != 400 || !strings.Contains(msg, tt.want) {
				t.Errorf("renew = %d %v, want 400 %q", st, out, tt.want)
			}
		})
	}
	c := newClient(t, commvaulttest.Options{RenewRequiresBearer: true})
	info := c.create(c.login(), map[string]any{"tokenName": "b"})
	body := map[string]any{"accessToken": info["accessToken"], "refreshToken": info["refreshToken"]}
	if st, _, _ := c.do("POST", "/V4/AccessToken/Renew", nil, body); st != 401 {
		t.Errorf("renew without a header when a bearer is required = %d, want 401", st)
	}
	if st, _, _ := c.do("POST", "/V4/AccessToken/Renew", map[string]string{"Authorization": "Bearer " + info["accessToken"].(string)}, body); st != 200 {
		t.Errorf("renew with the bearer = %d, want 200", st)
	}
}

func TestWhoAmIScope(t *testing.T) {
	c := newClient(t, commvaulttest.Options{})
	sess := c.login()
	all := c.create(sess, map[string]any{"tokenName": "a"})
	custom := c.create(sess, map[string]any{"tokenName": "c", "tokenType": 3, "apiEndpoints": []string{"/client"}})
	scim := c.create(sess, map[string]any{"tokenName": "s", "tokenType": 1})
	tests := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"session", map[string]string{"Authtoken": sess}, 200},
		{"ALL, Authtoken: Bearer", map[string]string{"Authtoken": "Bearer " + all["accessToken"].(string)}, 200},
		{"ALL, Authorization: Bearer", map[string]string{"Authorization": "Bearer " + all["accessToken"].(string)}, 200},
		{"CUSTOM out of scope", map[string]string{"Authtoken": "Bearer " + custom["accessToken"].(string)}, 403},
		{"MS_SCIM out of scope", map[string]string{"Authtoken": "Bearer " + scim["accessToken"].(string)}, 403},
		{"unknown token", map[string]string{"Authtoken": "Bearer 1234"}, 401},
		{"a refresh token is no access token", map[string]string{"Authtoken": "Bearer " + all["refreshToken"].(string)}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if st, out, _ := c.do("GET", "/v2/WhoAmI", tt.hdr, nil); st != tt.want {
				t.Errorf("GET /v2/WhoAmI = %d %v, want %d", st, out, tt.want)
			}
		})
	}
}

func TestFaultInjection(t *testing.T) {
	c := newClient(t, commvaulttest.Options{})
	sess := c.login()
	auth := map[string]string{"Authtoken": sess}
	c.srv.FailNext(429, 2)
	st, _, h := c.do("GET", "/V4/AccessToken", auth, nil)
	if st != 429 || h.Get("Retry-After") != "1" {
		t.Errorf("first request after FailNext(429) = %d Retry-After %q", st, h.Get("Retry-After"))
	}
	c.login() // logins are not counted by FailNext
	if st, _, _ := c.do("POST", "/V4/AccessToken", auth, map[string]any{"tokenName": "x"}); st != 429 {
		t.Errorf("second request = %d, want 429", st)
	}
	if s := c.srv.Stats(); s.Creates != 0 {
		t.Errorf("a failed request acted: Creates = %d", s.Creates)
	}
	c.srv.MalformedNext(1)
	st, out, _ := c.do("POST", "/V4/AccessToken", auth, map[string]any{"tokenName": "x"})
	if st != 200 || out != nil {
		t.Errorf("malformed answer = %d %v, want 200 with an unparseable body", st, out)
	}
	if s := c.srv.Stats(); s.Creates != 1 {
		t.Errorf("Creates = %d, want 1 (a malformed answer follows the act)", s.Creates)
	}
	c.srv.SetFaults(commvaulttest.Faults{DropRate: 1})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", c.srv.URL()+"/V4/AccessToken", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authtoken", sess)
	if resp, err := c.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("dropped request answered %d", resp.StatusCode)
	}
	c.srv.SetFaults(commvaulttest.Faults{ErrorRate: 0.5, RateLimitRate: 0.2, Seed: 7})
	codes := map[int]int{}
	for range 200 {
		st, _, _ := c.do("GET", "/V4/AccessToken", auth, nil)
		codes[st]++
	}
	if codes[200] < 40 || codes[429] < 10 || codes[500]+codes[503] < 60 {
		t.Errorf("answers under faults = %v, want a mix near 30%% 200, 20%% 429, 50%% 5xx", codes)
	}
	if n := c.srv.Stats().Requests; n < 200 {
		t.Errorf("Requests = %d", n)
	}
}

func TestSeedAndTokens(t *testing.T) {
	c := newClient(t, commvaulttest.Options{})
	iss, err := c.srv.Seed(commvaulttest.DefaultUser, "by-hand", "CUSTOM")
	if err != nil {
		t.Fatal(err)
	}
	if !c.srv.Valid(iss.AccessToken) || iss.RefreshToken == "" {
		t.Errorf("Seed() = %+v, want a valid pair", iss.TokenInfo)
	}
	if _, err := c.srv.Seed(commvaulttest.DefaultUser, "by-hand", "ALL"); err == nil {
		t.Errorf("Seed() with a taken name: error = nil")
	}
	toks := c.srv.Tokens()
	if len(toks) != 1 || toks[0].Name != "by-hand" || toks[0].Type != "CUSTOM" || toks[0].ID != iss.ID {
		t.Errorf("Tokens() = %+v", toks)
	}
	st, _, _ := c.do("DELETE", "/V4/AccessToken/"+iss.ID, map[string]string{"Authtoken": c.login()}, nil)
	if st != 200 || c.srv.Valid(iss.AccessToken) || len(c.srv.Tokens()) != 0 {
		t.Errorf("DELETE = %d; Valid after = %v", st, c.srv.Valid(iss.AccessToken))
	}
	if _, err := strconv.Atoi(iss.ID); err != nil {
		t.Errorf("ID %q is not an integer", iss.ID)
	}
}
