package providertest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// call makes one request to srv and returns status, headers and body.
func call(t *testing.T, srv *httptest.Server, method, path, contentType, bearer, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestHandlerStrictness(t *testing.T) {
	f := NewFake(FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true})
	srv := httptest.NewServer(NewHandler(f))
	t.Cleanup(srv.Close)

	status, _, body := call(t, srv, "POST", "/tokens", "application/json", "", `{"name":"tokend-a-g1"}`)
	if status != http.StatusCreated {
		t.Fatalf("POST /tokens = %d %s, want 201", status, body)
	}
	var tok struct{ ID, Secret, Refresh string }
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.ID == "" || tok.Secret == "" || tok.Refresh == "" {
		t.Fatalf("POST /tokens body = %s, want id, secret and refresh", body)
	}

	tests := []struct {
		name, method, path, ctype, bearer, body string
		want                                    int
		wantIn                                  string
	}{
		{"create needs JSON", "POST", "/tokens", "text/plain", "", `{"name":"x"}`, 415, ""},
		{"create refuses unknown fields", "POST", "/tokens", "application/json", "", `{"name":"x","ttl":5}`, 400, ""},
		{"create needs a name", "POST", "/tokens", "application/json", "", `{}`, 400, ""},
		{"wrong method", "PUT", "/tokens/" + tok.ID, "", "", "", 405, ""},
		{"unknown path", "GET", "/nope", "", "", "", 404, ""},
		{"unknown id", "GET", "/tokens/tok-999", "", "", "", 404, "not_found"},
		{"renew without credential", "POST", "/tokens/" + tok.ID + "/renew", "", "", "", 401, ""},
		{"renew with a wrong credential", "POST", "/tokens/" + tok.ID + "/renew", "", "x", "", 401, "invalid_grant"},
		{"renew of an unknown id", "POST", "/tokens/tok-999/renew", "", tok.Refresh, "", 404, ""},
		{"verify without credential", "GET", "/verify", "", "", "", 401, ""},
		{"verify with a wrong secret", "GET", "/verify", "", "x", "", 401, ""},
		{"verify with the secret", "GET", "/verify", "", tok.Secret, "", 200, `"ok":true`},
		{"orphans need a name", "GET", "/orphans", "", "", "", 400, ""},
		{"orphans need an RFC 3339 since", "GET", "/orphans?name=a&since=yesterday", "", "", "", 400, ""},
		{"orphans by name", "GET", "/orphans?name=tokend-a-g1&keep=tok-7", "", "", "", 200, tok.ID},
		{"orphans never kept ids", "GET", "/orphans?name=tokend-a-g1&keep=tok-7," + tok.ID, "", "", "", 200, `"tokens":[]`},
		{"bootstrap with a wrong secret", "POST", "/bootstrap", "", "x", "", 401, ""},
		{"fail needs a status", "POST", "/control/fail?status=200", "", "", "", 400, ""},
		{"fail needs a positive n", "POST", "/control/fail?status=503&n=0", "", "", "", 400, ""},
		{"malformed needs a positive n", "POST", "/control/malformed?n=x", "", "", "", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := call(t, srv, tt.method, tt.path, tt.ctype, tt.bearer, tt.body)
			if status != tt.want || !strings.Contains(body, tt.wantIn) {
				t.Errorf("%s %s = %d %s, want %d containing %q", tt.method, tt.path, status, body, tt.want, tt.wantIn)
			}
			if strings.Contains(body, tok.Secret) || strings.Contains(body, tok.Refresh) {
				t.Errorf("%s %s answered a secret; secrets are one-time", tt.method, tt.path)
			}
		})
	}

	t.Run("get answers no secret", func(t *testing.T) {
		status, _, body := call(t, srv, "GET", "/tokens/"+tok.ID, "", "", "")
		if status != 200 || strings.Contains(body, tok.Secret) || strings.Contains(body, `"secret"`) {
			t.Errorf("GET /tokens/{id} = %d %s, want 200 without a secret", status, body)
		}
	})

	t.Run("a renew rotates and a replay is counted", func(t *testing.T) {
		status, _, body := call(t, srv, "POST", "/tokens/"+tok.ID+"/renew", "", tok.Refresh, "")
		if status != 200 {
			t.Fatalf("renew = %d %s", status, body)
		}
		status, _, body = call(t, srv, "POST", "/tokens/"+tok.ID+"/renew", "", tok.Refresh, "")
		if status != 401 || !strings.Contains(body, "invalid_grant") || f.Stats().Replays != 1 {
			t.Errorf("replayed renew = %d %s, Replays %d; want 401 invalid_grant, 1", status, body, f.Stats().Replays)
		}
		if status, _, _ := call(t, srv, "DELETE", "/tokens/"+tok.ID, "", "", ""); status != 404 {
			t.Errorf("DELETE of the token a replay killed = %d, want 404", status)
		}
	})

	t.Run("faults", func(t *testing.T) {
		if status, _, _ := call(t, srv, "POST", "/control/fail?op=create&status=429&n=1", "", "", ""); status != 204 {
			t.Fatalf("control/fail = %d", status)
		}
		status, hdr, _ := call(t, srv, "POST", "/tokens", "application/json", "", `{"name":"b"}`)
		if status != 429 || hdr.Get("Retry-After") != "1" {
			t.Errorf("create after fail 429 = %d Retry-After %q, want 429 and 1", status, hdr.Get("Retry-After"))
		}
		live := f.Stats().Live
		call(t, srv, "POST", "/control/malformed?op=create", "", "", "")
		status, _, body := call(t, srv, "POST", "/tokens", "application/json", "", `{"name":"b"}`)
		if status != 200 || json.Valid([]byte(body)) {
			t.Errorf("create after malformed = %d %q, want 200 with an unparseable body", status, body)
		}
		if f.Stats().Live != live+1 {
			t.Errorf("a malformed create answer did not act at the vendor")
		}
	})

	t.Run("renew on a kind that does not renew", func(t *testing.T) {
		g := NewFake(FakeOptions{})
		s := httptest.NewServer(NewHandler(g))
		t.Cleanup(s.Close)
		_, _, body := call(t, s, "POST", "/tokens", "application/json", "", `{"name":"a"}`)
		var tk struct{ ID string }
		_ = json.Unmarshal([]byte(body), &tk)
		status, _, body := call(t, s, "POST", "/tokens/"+tk.ID+"/renew", "", "anything", "")
		if status != 400 || !strings.Contains(body, "not_renewable") {
			t.Errorf("renew = %d %s, want 400 not_renewable", status, body)
		}
	})
}
