package huaweiidc

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/providers/huaweiidc/huaweiidctest"
)

// rawCall sends one request to the fake, signed by this package's signer, and returns status and body.
func rawCall(t *testing.T, srv *huaweiidctest.Server, now time.Time, method, path, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	signRequest(req, []byte(body), srv.AccessKey(), srv.SecretKey(), now)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestFakeStrictness shows the fake holds the vendor's rules: exact paths and methods, no request bodies,
// JSON content type, the secret only in the 201 create answer, the per-tenant cap, 404 for unknown ids.
func TestFakeStrictness(t *testing.T) {
	clk := newClock()
	srv := huaweiidctest.New(huaweiidctest.Options{Now: clk.Now})
	defer srv.Close()
	tokens := "/v1/identity-stores/" + srv.IdentityStoreID() + "/tenant/" + srv.TenantID() + "/bearer-token"

	code, body := rawCall(t, srv, clk.Now(), http.MethodPost, tokens, "application/json", "")
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	var created struct {
		TokenID        string `json:"token_id"`
		Token          string `json:"token"`
		CreationTime   int64  `json:"creation_time"`
		ExpirationTime int64  `json:"expiration_time"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.Token == "" || created.TokenID == "" {
		t.Fatalf("create answer %s: %v", body, err)
	}
	if created.CreationTime != clk.Now().UnixMilli() || created.ExpirationTime%1000 != 0 {
		t.Errorf("times %d, %d: want creation in ms, expiration on a whole second", created.CreationTime, created.ExpirationTime)
	}

	// One-time secret: no later answer carries it.
	code, body = rawCall(t, srv, clk.Now(), http.MethodGet, tokens, "", "")
	if code != 200 || strings.Contains(body, created.Token) || strings.Contains(body, `"token":`) || !strings.Contains(body, created.TokenID) {
		t.Errorf("list: %d %s, want the token listed without its value", code, body)
	}
	code, body = rawCall(t, srv, clk.Now(), http.MethodGet, "/v1/identity-stores/"+srv.IdentityStoreID()+"/provision-tenant", "", "")
	if code != 200 || strings.Contains(body, created.Token) || !strings.Contains(body, srv.TenantID()) {
		t.Errorf("provision-tenant: %d %s", code, body)
	}

	refusals := []struct {
		name                   string
		method, path, ct, body string
		wantStatus             int
		wantCode               string
	}{
		{"create with a body", http.MethodPost, tokens, "application/json", `{"x":1}`, 400, "IdentityCenter.400"},
		{"create with a form content type", http.MethodPost, tokens, "application/x-www-form-urlencoded", "", 400, "IdentityCenter.400"},
		{"PUT is not an API", http.MethodPut, tokens, "", "", 404, "APIGW.0101"},
		{"GET one token is not an API", http.MethodGet, tokens + "/" + created.TokenID, "", "", 404, "APIGW.0101"},
		{"trailing slash is another path", http.MethodGet, tokens + "/", "", "", 404, "APIGW.0101"},
		{"unknown identity store", http.MethodGet, "/v1/identity-stores/d-0/tenant/" + srv.TenantID() + "/bearer-token", "", "", 404, "IdentityCenter.404"},
		{"unknown tenant", http.MethodGet, "/v1/identity-stores/" + srv.IdentityStoreID() + "/tenant/nope/bearer-token", "", "", 404, "IdentityCenter.404"},
		{"delete an unknown token", http.MethodDelete, tokens + "/00000000-0000-4000-8000-000000000000", "", "", 404, "IdentityCenter.404"},
	}
	for _, tt := range refusals {
		code, body := rawCall(t, srv, clk.Now(), tt.method, tt.path, tt.ct, tt.body)
		if code != tt.wantStatus || !strings.Contains(body, `"error_code":"`+tt.wantCode+`"`) {
			t.Errorf("%s: %d %s, want %d %s", tt.name, code, body, tt.wantStatus, tt.wantCode)
		}
	}

	// The cap: a second create works, a third is refused and counted; an expired token still counts.
	if code, body := rawCall(t, srv, clk.Now(), http.MethodPost, tokens, "application/json", ""); code != 201 {
		t.Fatalf("second create: %d %s", code, body)
	}
	clk.Advance(366 * 24 * time.Hour)
	code, body = rawCall(t, srv, clk.Now(), http.MethodPost, tokens, "application/json", "")
	if code != 400 || !strings.Contains(body, "IdentityCenter.1003") || !strings.Contains(body, "upper limit (2)") {
		t.Errorf("third create: %d %s, want the cap refusal", code, body)
	}
	if srv.Valid(created.Token) {
		t.Errorf("Valid() = true for an expired token")
	}
	// Delete makes room; deleting again is 404.
	if code, body := rawCall(t, srv, clk.Now(), http.MethodDelete, tokens+"/"+created.TokenID, "", ""); code != 200 || body != "" {
		t.Errorf("delete: %d %q, want 200 with an empty body", code, body)
	}
	if code, _ := rawCall(t, srv, clk.Now(), http.MethodDelete, tokens+"/"+created.TokenID, "", ""); code != 404 {
		t.Errorf("second delete: %d, want 404", code)
	}
	if code, body := rawCall(t, srv, clk.Now(), http.MethodPost, tokens, "", ""); code != 201 {
		t.Errorf("create after delete (no Content-Type): %d %s", code, body)
	}
	st := srv.Stats()
	if st.Creates != 3 || st.Revokes != 1 || st.CapRefusals != 1 || st.Live != 2 || st.BadSignatures != 0 {
		t.Errorf("Stats() = %+v, want 3 creates, 1 revoke, 1 cap refusal, 2 live", st)
	}
}
