package vcdtest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const accept = "application/json;version=39.0"

type client struct {
	t   *testing.T
	srv *Server
}

func newClient(t *testing.T, opts Options) client {
	t.Helper()
	s := New(opts)
	t.Cleanup(s.Close)
	return client{t: t, srv: s}
}

// do sends a request and returns status, headers and body.
func (c client) do(method, path string, hdr map[string]string, body string) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.srv.URL()+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, b
}

func (c client) login(user, org, pass string) string {
	c.t.Helper()
	path := "/cloudapi/1.0.0/sessions"
	if strings.EqualFold(org, "system") {
		path += "/provider"
	}
	st, h, _ := c.do("POST", path, map[string]string{"Accept": accept,
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+"@"+org+":"+pass))}, "")
	if st != 200 || h.Get("X-VMWARE-VCLOUD-ACCESS-TOKEN") == "" {
		c.t.Fatalf("login %s@%s = %d", user, org, st)
	}
	return h.Get("X-VMWARE-VCLOUD-ACCESS-TOKEN")
}

func (c client) grant(org string, form url.Values) (int, map[string]any) {
	c.t.Helper()
	path := "/oauth/tenant/" + org + "/token"
	if strings.EqualFold(org, "system") {
		path = "/oauth/provider/token"
	}
	st, _, b := c.do("POST", path, map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}, form.Encode())
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return st, m
}

func (c client) register(org, jwt, name string) (int, string) {
	c.t.Helper()
	st, _, b := c.do("POST", "/oauth/tenant/"+org+"/register", map[string]string{"Authorization": "Bearer " + jwt, "Content-Type": "application/json"}, `{"client_name":"`+name+`"}`)
	var m struct {
		ClientID string `json:"client_id"`
	}
	_ = json.Unmarshal(b, &m)
	return st, m.ClientID
}

func bearer(jwt string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + jwt, "Accept": accept, "Content-Type": "application/json"}
}

func TestInitialTokenIsOneTime(t *testing.T) {
	c := newClient(t, Options{})
	jwt := c.login("alice", "acme", "alice-password")
	st, id := c.register("acme", jwt, "tokend-x-g1")
	if st != 200 || id == "" {
		t.Fatalf("register = %d %q", st, id)
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {jwt}, "client_id": {id}}
	st, m := c.grant("acme", form)
	refresh, _ := m["refresh_token"].(string)
	if st != 200 || refresh == "" || !c.srv.Valid(refresh) {
		t.Fatalf("initial grant = %d %v", st, st == 200)
	}
	st, m = c.grant("acme", form)
	if st != 400 || m["minorErrorCode"] != "invalid_grant" || m["refresh_token"] != nil {
		t.Errorf("second initial grant = %d %v, want 400 invalid_grant without a token", st, m["minorErrorCode"])
	}
	// The token resource never shows the API token.
	_, _, b := c.do("GET", "/cloudapi/1.0.0/tokens/urn:vcloud:token:"+id, bearer(jwt), "")
	if strings.Contains(string(b), refresh) || !strings.Contains(string(b), `"type":"REFRESH"`) {
		t.Errorf("GET token = %s, want a REFRESH record without the secret", b)
	}
}

func TestRotatingRefreshReplayIsCounted(t *testing.T) {
	c := newClient(t, Options{RequireRotation: true})
	r0 := c.srv.IssueBootstrap()
	st, m := c.grant("acme", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r0}})
	r1, _ := m["refresh_token"].(string)
	if st != 200 || r1 == "" || r1 == r0 {
		t.Fatalf("grant = %d, rotated %v", st, r1 != r0)
	}
	if c.srv.Valid(r0) || !c.srv.Valid(r1) {
		t.Errorf("Valid(old) = %v, Valid(new) = %v", c.srv.Valid(r0), c.srv.Valid(r1))
	}
	st, m = c.grant("acme", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r0}})
	if st != 400 || m["minorErrorCode"] != "invalid_grant" {
		t.Errorf("replay = %d %v, want 400 invalid_grant", st, m)
	}
	if s := c.srv.Stats(); s.Replays != 1 || s.Renews != 1 {
		t.Errorf("Stats() = %+v, want 1 replay, 1 renew", s)
	}
	st, _ = c.grant("acme", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"never-issued"}})
	if st != 400 || c.srv.Stats().Replays != 1 {
		t.Errorf("unknown refresh = %d, replays %d; want 400 and no replay counted", st, c.srv.Stats().Replays)
	}
	// The wrong org in the path is refused too.
	if st, _ := c.grant("other", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r1}}); st != 400 {
		t.Errorf("grant at the wrong org = %d, want 400", st)
	}
}

func TestAPITokenSessionCannotManageTokens(t *testing.T) {
	c := newClient(t, Options{})
	r := c.srv.IssueBootstrap()
	_, m := c.grant("acme", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r}})
	jwt, _ := m["access_token"].(string)
	pw := c.login("alice", "acme", "alice-password")
	_, other := c.register("acme", pw, "other")
	tests := []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/cloudapi/1.0.0/tokens", `{"name":"p","type":"PROXY"}`, 403},
		{"GET", "/cloudapi/1.0.0/tokens", "", 403},
		{"GET", "/cloudapi/1.0.0/tokens/urn:vcloud:token:" + other, "", 403},
		{"DELETE", "/cloudapi/1.0.0/tokens/urn:vcloud:token:" + other, "", 403},
		{"POST", "/oauth/tenant/acme/register", `{"client_name":"x"}`, 403},
		{"GET", "/cloudapi/1.0.0/sessions/current", "", 200},
	}
	for _, tt := range tests {
		if st, _, b := c.do(tt.method, tt.path, bearer(jwt), tt.body); st != tt.want {
			t.Errorf("%s %s with an API-token session = %d %s, want %d", tt.method, tt.path, st, b, tt.want)
		}
	}
	if st, _ := c.grant("acme", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {jwt}, "client_id": {other}}); st != 403 {
		t.Errorf("jwt-bearer grant with an API-token session = %d, want 403", st)
	}
}

func TestStrictness(t *testing.T) {
	c := newClient(t, Options{MaxTokensPerUser: 1})
	jwt := c.login("alice", "acme", "alice-password")
	noVersion := map[string]string{"Authorization": "Bearer " + jwt, "Accept": "application/json"}
	tests := []struct {
		name         string
		method, path string
		hdr          map[string]string
		body         string
		want         int
	}{
		{"no version in Accept", "GET", "/cloudapi/1.0.0/sessions/current", noVersion, "", 406},
		{"unsupported version", "GET", "/cloudapi/1.0.0/sessions/current", map[string]string{"Authorization": "Bearer " + jwt, "Accept": "application/json;version=99.0"}, "", 406},
		{"no bearer", "GET", "/cloudapi/1.0.0/sessions/current", map[string]string{"Accept": accept}, "", 401},
		{"forged bearer", "GET", "/cloudapi/1.0.0/sessions/current", bearer(jwt + "x"), "", 401},
		{"wrong method", "PUT", "/cloudapi/1.0.0/tokens", bearer(jwt), "{}", 405},
		{"unknown path", "GET", "/cloudapi/1.0.0/tokenz", bearer(jwt), "", 404},
		{"unknown token", "GET", "/cloudapi/1.0.0/tokens/urn:vcloud:token:nope", bearer(jwt), "", 404},
		{"delete unknown token", "DELETE", "/cloudapi/1.0.0/tokens/urn:vcloud:token:nope", bearer(jwt), "", 404},
		{"grant as JSON", "POST", "/oauth/tenant/acme/token", map[string]string{"Content-Type": "application/json"}, `{"grant_type":"refresh_token"}`, 415},
		{"proxy token as form", "POST", "/cloudapi/1.0.0/tokens", map[string]string{"Authorization": "Bearer " + jwt, "Accept": accept, "Content-Type": "application/x-www-form-urlencoded"}, "name=x&type=PROXY", 415},
		{"REFRESH via POST tokens", "POST", "/cloudapi/1.0.0/tokens", bearer(jwt), `{"name":"x","type":"REFRESH"}`, 400},
		{"bad filter", "GET", "/cloudapi/1.0.0/tokens?filter=secret%3D%3Dx", bearer(jwt), "", 400},
		{"page size over 128", "GET", "/cloudapi/1.0.0/tokens?pageSize=129", bearer(jwt), "", 400},
		{"first proxy token", "POST", "/cloudapi/1.0.0/tokens", bearer(jwt), `{"name":"p1","type":"PROXY"}`, 200},
		{"cap reached", "POST", "/cloudapi/1.0.0/tokens", bearer(jwt), `{"name":"p2","type":"PROXY"}`, 400},
		{"session of another user", "GET", "/cloudapi/1.0.0/sessions/urn:vcloud:session:nope/token", bearer(jwt), "", 404},
		{"password session has no token", "GET", "/cloudapi/1.0.0/sessions/current", bearer(jwt), "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if st, _, b := c.do(tt.method, tt.path, tt.hdr, tt.body); st != tt.want {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, st, b, tt.want)
			}
		})
	}
	// A tenant user cannot use the provider login and a System user cannot use the tenant login.
	basic := func(s string) map[string]string {
		return map[string]string{"Accept": accept, "Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(s))}
	}
	if st, _, _ := c.do("POST", "/cloudapi/1.0.0/sessions/provider", basic("alice@acme:alice-password"), ""); st != 401 {
		t.Errorf("tenant login at /sessions/provider = %d, want 401", st)
	}
	if st, _, _ := c.do("POST", "/cloudapi/1.0.0/sessions", basic("administrator@System:admin-password"), ""); st != 401 {
		t.Errorf("System login at /sessions = %d, want 401", st)
	}
	c.login("administrator", "System", "admin-password")
}

func TestProxyTokenShownOnceAndExpires(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newClient(t, Options{Now: func() time.Time { return now }, ProxyTokenLifetime: 5 * time.Second, AccessTokenLifetime: time.Hour})
	jwt := c.login("alice", "acme", "alice-password")
	st, _, b := c.do("POST", "/cloudapi/1.0.0/tokens", bearer(jwt), `{"name":"p","type":"PROXY"}`)
	var tk struct{ ID, Token, ExpirationTimeUtc string }
	if err := json.Unmarshal(b, &tk); st != 200 || err != nil || tk.Token == "" || tk.ExpirationTimeUtc != "2030-01-01T00:00:05.000Z" {
		t.Fatalf("POST tokens = %d %s", st, b)
	}
	_, _, b = c.do("GET", "/cloudapi/1.0.0/tokens/"+tk.ID, bearer(jwt), "")
	if strings.Contains(string(b), tk.Token) {
		t.Errorf("GET shows the proxy token value again")
	}
	_, _, b = c.do("GET", "/cloudapi/1.0.0/tokens", bearer(jwt), "")
	if strings.Contains(string(b), tk.Token) {
		t.Errorf("list shows the proxy token value")
	}
	if !c.srv.Valid(tk.Token) {
		t.Fatal("Valid(new proxy token) = false")
	}
	now = now.Add(5 * time.Second)
	if c.srv.Valid(tk.Token) {
		t.Error("Valid(expired proxy token) = true")
	}
	if st, _, _ := c.do("DELETE", "/cloudapi/1.0.0/tokens/"+tk.ID, bearer(jwt), ""); st != 204 {
		t.Errorf("DELETE = %d, want 204", st)
	}
	if s := c.srv.Stats(); s.Creates != 1 || s.Revokes != 1 || s.Live != 0 {
		t.Errorf("Stats() = %+v", s)
	}
}

func TestSessionLifetimeAndDeleteEndsSessions(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newClient(t, Options{Now: func() time.Time { return now }, AccessTokenLifetime: 3 * time.Second})
	r := c.srv.IssueBootstrap()
	_, m := c.grant("acme", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r}})
	jwt, _ := m["access_token"].(string)
	if m["expires_in"] != float64(3) || !c.srv.Valid(jwt) {
		t.Fatalf("grant expires_in = %v, valid %v", m["expires_in"], c.srv.Valid(jwt))
	}
	// The session's token record is reachable from the session.
	_, _, b := c.do("GET", "/cloudapi/1.0.0/sessions/current", bearer(jwt), "")
	var sess struct{ ID string }
	_ = json.Unmarshal(b, &sess)
	if st, _, b := c.do("GET", "/cloudapi/1.0.0/sessions/"+sess.ID+"/token", bearer(jwt), ""); st != 200 || !strings.Contains(string(b), `"requireRotation":false`) {
		t.Errorf("GET sessions/{id}/token = %d %s", st, b)
	}
	now = now.Add(3 * time.Second)
	if c.srv.Valid(jwt) {
		t.Error("Valid(JWT) = true after its lifetime")
	}
	if st, _, _ := c.do("GET", "/cloudapi/1.0.0/sessions/current", bearer(jwt), ""); st != 401 {
		t.Errorf("expired JWT = %d, want 401", st)
	}
	_, m = c.grant("acme", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r}})
	jwt, _ = m["access_token"].(string)
	id := c.srv.Tokens()[0].ID
	if !c.srv.DeleteToken(id) || c.srv.Valid(jwt) || c.srv.Valid(r) {
		t.Errorf("deleting the API token left its session or value valid")
	}
}

func TestFaults(t *testing.T) {
	c := newClient(t, Options{})
	c.srv.FailNext(429, 2)
	for range 2 {
		st, h, b := c.do("GET", "/api/versions", nil, "")
		if st != 429 || h.Get("Retry-After") != "1" || !strings.Contains(string(b), "minorErrorCode") {
			t.Errorf("FailNext(429) answer = %d %q %s", st, h.Get("Retry-After"), b)
		}
	}
	if st, _, _ := c.do("GET", "/api/versions", nil, ""); st != 200 {
		t.Errorf("third request = %d, want 200", st)
	}
	r := c.srv.IssueBootstrap()
	c.srv.MalformedNext(1)
	st, _, b := c.do("POST", "/oauth/tenant/acme/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r}}.Encode())
	if st != 200 || json.Valid(b) {
		t.Errorf("MalformedNext answer = %d valid JSON %v", st, json.Valid(b))
	}
	if c.srv.Stats().Renews != 1 {
		t.Errorf("the malformed grant was not acted on")
	}
	c.srv.SetFaults(Faults{DropRate: 1, Seed: 1})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", c.srv.URL()+"/api/versions", nil)
	if resp, err := c.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("DropRate 1: got an answer %d", resp.StatusCode)
	}
	c.srv.SetFaults(Faults{ErrorRate: 0.5, Seed: 7})
	fails := 0
	for range 200 {
		if st, _, _ := c.do("GET", "/api/versions", nil, ""); st == 503 {
			fails++
		}
	}
	if fails < 60 || fails > 140 {
		t.Errorf("ErrorRate 0.5 failed %d of 200", fails)
	}
}

func TestFilterAndPaging(t *testing.T) {
	c := newClient(t, Options{})
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		if _, _, err := c.srv.IssueAPIToken("alice", "acme", n); err != nil {
			t.Fatal(err)
		}
	}
	jwt := c.login("alice", "acme", "alice-password")
	st, h, b := c.do("GET", "/cloudapi/1.0.0/tokens?pageSize=2&filter="+url.QueryEscape("(name==a,name==c,name==e);type==REFRESH"), bearer(jwt), "")
	var p struct {
		ResultTotal, PageCount int
		Values                 []struct{ Name string }
	}
	_ = json.Unmarshal(b, &p)
	if st != 200 || p.ResultTotal != 3 || p.PageCount != 2 || len(p.Values) != 2 || p.Values[0].Name != "a" {
		t.Fatalf("filtered page = %d %s", st, b)
	}
	if !strings.Contains(h.Get("Link"), `rel="nextPage"`) || !strings.Contains(h.Get("Link"), "page=2") {
		t.Errorf("Link = %q, want a nextPage to page 2", h.Get("Link"))
	}
	if _, _, err := c.srv.IssueAPIToken("bob", "acme", "x"); err == nil {
		t.Error("IssueAPIToken for an unknown user succeeded")
	}
}
