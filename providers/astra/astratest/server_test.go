package astratest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// raw is one HTTP exchange with the fake.
type raw struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, s *Server, method, path, bearer, body string, hdr map[string]string) raw {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != "" {
		req.Header.Set("Content-Type", mediaToken)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return raw{resp.StatusCode, resp.Header, string(b)}
}

func tokensPath(s *Server) string {
	return "/accounts/" + s.AccountID() + "/core/v1/users/" + s.UserID() + "/tokens"
}

const createBody = `{"type":"application/astra-token","version":"1.0","name":"tokend-x-g1","metadata":{"labels":[{"name":"managed-by","value":"tokend"}]}}`

// problemOf checks r is a problem body with Astra's string status and returns its type suffix.
func problemOf(t *testing.T, r raw) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("problem Content-Type = %q", ct)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(r.body), &p); err != nil {
		t.Fatalf("problem body %q: %v", r.body, err)
	}
	if st, ok := p["status"].(string); !ok || st != strconv.Itoa(r.status) {
		t.Errorf("problem status = %#v, want the string %q", p["status"], strconv.Itoa(r.status))
	}
	typ, _ := p["type"].(string)
	return strings.TrimPrefix(typ, problemURI)
}

func TestStrictness(t *testing.T) {
	const other = "11111111-2222-4333-8444-555555555555"
	s := New(Options{Users: []string{DefaultUserID, other}})
	defer s.Close()
	secret := s.IssueBootstrap()
	_, otherSecret := s.IssueToken(other, "theirs")
	p := tokensPath(s)

	for _, tt := range []struct {
		name, method, path, bearer, body string
		hdr                              map[string]string
		status                           int
		problem                          string // type suffix; "" for none checked
	}{
		{"missing bearer", "GET", p, "", "", nil, 401, "3"},
		{"basic auth instead of bearer", "GET", p, "", "", map[string]string{"Authorization": "Basic eDp5"}, 401, "3"},
		{"unknown bearer", "GET", p, "bm9wZQ==", "", nil, 401, "4"},
		{"another user's tokens", "GET", p, otherSecret, "", nil, 403, "11"},
		{"unknown account", "GET", "/accounts/00000000-0000-0000-0000-000000000000/core/v1/users/" + DefaultUserID + "/tokens", secret, "", nil, 404, "2"},
		{"unknown user", "GET", "/accounts/" + DefaultAccountID + "/core/v1/users/00000000-0000-0000-0000-000000000000/tokens", secret, "", nil, 404, "2"},
		{"unknown token", "GET", p + "/00000000-0000-0000-0000-000000000000", secret, "", nil, 404, "1"},
		{"delete unknown token", "DELETE", p + "/00000000-0000-0000-0000-000000000000", secret, "", nil, 404, "1"},
		{"wrong path", "GET", "/accounts/" + DefaultAccountID + "/core/v1/tokens", secret, "", nil, 404, "2"},
		{"wrong method", "PATCH", p, secret, "", nil, 405, ""},
		{"post with application/json", "POST", p, secret, createBody, map[string]string{"Content-Type": "application/json"}, 415, ""},
		{"accept xml", "GET", p, secret, "", map[string]string{"Accept": "application/xml"}, 406, ""},
		{"not json", "POST", p, secret, "{", nil, 400, "7"},
		{"extra field", "POST", p, secret, `{"type":"application/astra-token","version":"1.0","name":"a","expiresAt":"x"}`, nil, 400, "8"},
		{"wrong version", "POST", p, secret, `{"type":"application/astra-token","version":"1.1","name":"a"}`, nil, 400, "8"},
		{"name with markup", "POST", p, secret, `{"type":"application/astra-token","version":"1.0","name":"<script>"}`, nil, 400, "9"},
		{"name of 64", "POST", p, secret, `{"type":"application/astra-token","version":"1.0","name":"` + strings.Repeat("a", 64) + `"}`, nil, 400, "9"},
		{"bad limit", "GET", p + "?limit=0", secret, "", nil, 400, "5"},
		{"bad cursor", "GET", p + "?continue=bm9wZQ==", secret, "", nil, 400, "5"},
		{"unknown query", "GET", p + "?sort=name", secret, "", nil, 400, "6"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, tt.method, tt.path, tt.bearer, tt.body, tt.hdr)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tt.status, r.body)
			}
			if got := problemOf(t, r); tt.problem != "" && got != tt.problem {
				t.Errorf("problem type = %q, want problems/%s", got, tt.problem)
			}
		})
	}
	if st := s.Stats(); st.Creates != 0 || st.Live != 2 || st.Unauthorized != 3 {
		t.Errorf("Stats() = %+v after refused requests, want nothing created, 3 unauthorized", st)
	}
}

// TestOneTimeSecret: the value is in the create answer and nowhere else, and it works until deleted.
func TestOneTimeSecret(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	boot := s.IssueBootstrap()
	p := tokensPath(s)
	r := do(t, s, "POST", p, boot, createBody, map[string]string{"Accept": mediaToken})
	if r.status != 201 || r.header.Get("Content-Type") != mediaToken || !strings.HasSuffix(r.header.Get("Location"), "/tokens/"+jsonField(t, r.body, "id")) {
		t.Fatalf("create = %d %v %s", r.status, r.header, r.body)
	}
	secret, id := jsonField(t, r.body, "token"), jsonField(t, r.body, "id")
	if secret == "" || !s.Valid(secret) {
		t.Fatalf("created secret %q not valid", secret)
	}
	for _, path := range []string{p, p + "/" + id, p + "?include=id,name"} {
		g := do(t, s, "GET", path, secret, "", nil)
		if g.status != 200 || strings.Contains(g.body, secret) || strings.Contains(g.body, `"token"`) {
			t.Errorf("GET %s = %d, holds the secret: %v", path, g.status, strings.Contains(g.body, secret))
		}
	}
	if g := do(t, s, "GET", p+"/"+id, secret, "", nil); g.header.Get("Etag") == "" || g.header.Get("Content-Type") != "application/json" {
		t.Errorf("GET without Accept: headers %v", g.header)
	}
	if g := do(t, s, "PUT", p+"/"+id, secret, `{"type":"application/astra-token","version":"1.0","name":"retiring"}`, nil); g.status != 204 {
		t.Errorf("PUT = %d %s", g.status, g.body)
	}
	if d := do(t, s, "DELETE", p+"/"+id, boot, "", nil); d.status != 204 {
		t.Fatalf("DELETE = %d", d.status)
	}
	if s.Valid(secret) {
		t.Errorf("deleted token's secret still valid")
	}
	if g := do(t, s, "GET", p, secret, "", nil); g.status != 401 || problemOf(t, g) != "4" {
		t.Errorf("deleted bearer: %d %s", g.status, g.body)
	}
	if st := s.Stats(); st.Creates != 1 || st.Revokes != 1 || st.Live != 1 {
		t.Errorf("Stats() = %+v", st)
	}
}

func jsonField(t *testing.T, body, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	v, _ := m[key].(string)
	return v
}

func TestPaging(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	boot := s.IssueBootstrap()
	for range 6 {
		s.IssueToken(s.UserID(), "t")
	}
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		q := url.Values{"limit": {"3"}, "count": {"true"}}
		if cursor != "" {
			q.Set("continue", cursor)
		}
		r := do(t, s, "GET", tokensPath(s)+"?"+q.Encode(), boot, "", nil)
		var page struct {
			Items    []struct{ ID string }
			Metadata struct {
				Continue string
				Count    int
			}
		}
		if err := json.Unmarshal([]byte(r.body), &page); err != nil || r.status != 200 {
			t.Fatalf("list = %d %s", r.status, r.body)
		}
		if page.Metadata.Count != 7 || len(page.Items) > 3 {
			t.Errorf("page = %d items, count %d", len(page.Items), page.Metadata.Count)
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if cursor = page.Metadata.Continue; cursor == "" {
			break
		}
	}
	if len(ids) != 7 {
		t.Errorf("listed %d tokens over pages, want 7", len(ids))
	}
	r := do(t, s, "GET", tokensPath(s)+"?filter="+url.QueryEscape("name eq 'ui-token-1'"), boot, "", nil)
	if !strings.Contains(r.body, "ui-token-1") || strings.Count(r.body, `"id"`) != 1 {
		t.Errorf("filtered list = %s", r.body)
	}
}

func TestFaultsAndOutOfBand(t *testing.T) {
	var now = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }, OpaqueSecrets: true})
	defer s.Close()
	boot := s.IssueBootstrap()
	p := tokensPath(s)

	s.FailNext(429, 2)
	for range 2 {
		if r := do(t, s, "GET", p, boot, "", nil); r.status != 429 || r.header.Get("Retry-After") != "1" {
			t.Errorf("FailNext(429): %d Retry-After %q", r.status, r.header.Get("Retry-After"))
		}
	}
	if r := do(t, s, "GET", p, boot, "", nil); r.status != 200 {
		t.Errorf("after FailNext ran out: %d", r.status)
	}
	s.FailNext(503, 1)
	if r := do(t, s, "POST", p, boot, createBody, nil); r.status != 503 || s.Stats().Creates != 0 {
		t.Errorf("FailNext(503) on create: %d, creates %d (must not act)", r.status, s.Stats().Creates)
	}
	s.MalformedNext(1)
	r := do(t, s, "POST", p, boot, createBody, nil)
	if r.status != 200 || json.Valid([]byte(r.body)) || s.Stats().Creates != 1 {
		t.Errorf("MalformedNext on create: %d valid json %v creates %d (must act, answer garbage)", r.status, json.Valid([]byte(r.body)), s.Stats().Creates)
	}

	ti := s.Tokens()
	if len(ti) != 2 || !ti[0].CreatedAt.Equal(now) || !ti[0].ExpiresAt.IsZero() {
		t.Fatalf("Tokens() = %+v", ti)
	}
	if !s.DeleteToken(ti[1].ID) || s.DeleteToken(ti[1].ID) || s.Stats().OutOfBandDeletes != 1 {
		t.Errorf("DeleteToken: stats %+v", s.Stats())
	}
	s.DisableUser(s.UserID(), true)
	if s.Valid(boot) || len(s.Tokens()) != 1 {
		t.Errorf("DisableUser: valid %v tokens %d, want refused but kept", s.Valid(boot), len(s.Tokens()))
	}
	s.DisableUser(s.UserID(), false)
	if !s.Valid(boot) {
		t.Errorf("re-enabled user's token not valid")
	}

	// Seeded faults are reproducible.
	seq := func() []int {
		s.SetFaults(Faults{ErrorRate: 0.3, RateLimitRate: 0.3, Seed: 7})
		var out []int
		for range 10 {
			out = append(out, do(t, s, "GET", p, boot, "", nil).status)
		}
		s.SetFaults(Faults{})
		return out
	}
	a, b := seq(), seq()
	if !slices.Equal(a, b) {
		t.Errorf("seeded faults differ: %v vs %v", a, b)
	}
	if !slices.Contains(a, 200) || !slices.ContainsFunc(a, func(c int) bool { return c != 200 }) {
		t.Errorf("seeded faults = %v, want a mix", a)
	}

	s.SetFaults(Faults{DropRate: 1})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL()+p, nil)
	req.Header.Set("Authorization", "Bearer "+boot)
	if resp, err := s.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("DropRate 1: got an answer %d", resp.StatusCode)
	}
}
