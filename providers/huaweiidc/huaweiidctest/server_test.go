package huaweiidctest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// sdkVector is an entry of ../testdata/sdk_sign_vectors.json, made with the vendor's Go SDK signer.
type sdkVector struct {
	Name     string `json:"name"`
	Method   string `json:"method"`
	Endpoint string `json:"endpoint"`
	Path     string `json:"path"`
	Query    []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"query"`
	Headers       map[string]string `json:"headers"`
	Body          string            `json:"body"`
	AK            string            `json:"ak"`
	SK            string            `json:"sk"`
	XSdkDate      string            `json:"x_sdk_date"`
	Authorization string            `json:"authorization"`
}

func loadVectors(t *testing.T) []sdkVector {
	t.Helper()
	b, err := os.ReadFile("../testdata/sdk_sign_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []sdkVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

// request rebuilds the request the SDK signed, as the server sees it.
func (v sdkVector) request(t *testing.T) *http.Request {
	t.Helper()
	u, err := url.Parse(v.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = v.Path
	q := url.Values{}
	for _, kv := range v.Query {
		q.Add(kv.Key, kv.Value)
	}
	u.RawQuery = q.Encode()
	r, err := http.NewRequest(v.Method, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, val := range v.Headers {
		if strings.EqualFold(k, "Host") {
			r.Host = val
		} else {
			r.Header.Set(k, val)
		}
	}
	r.Header.Set("X-Sdk-Date", v.XSdkDate)
	r.Header.Set("Authorization", v.Authorization)
	return r
}

func vectorServer(t *testing.T, v sdkVector, skew time.Duration) *Server {
	t.Helper()
	at, err := time.Parse(sdkDateLayout, v.XSdkDate)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{AccessKey: v.AK, SecretKey: v.SK, Now: func() time.Time { return at.Add(skew) }})
	t.Cleanup(s.Close)
	return s
}

// TestGatewayAcceptsSDKSignatures pins the fake's own signature check to the vendor SDK's signer.
func TestGatewayAcceptsSDKSignatures(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			s := vectorServer(t, v, 14*time.Minute)
			if msg := s.checkSignature(v.request(t), []byte(v.Body)); msg != "" {
				t.Errorf("checkSignature(SDK-signed request) = %q, want accepted", msg)
			}
		})
	}
}

func TestGatewayRejectsBadSignatures(t *testing.T) {
	v := loadVectors(t)[0]
	tests := []struct {
		name   string
		skew   time.Duration
		change func(r *http.Request) []byte
		want   string
	}{
		{"other path", 0, func(r *http.Request) []byte { r.URL.Path += "x"; return nil }, "verify aksk signature fail"},
		{"other method", 0, func(r *http.Request) []byte { r.Method = http.MethodDelete; return nil }, "verify aksk signature fail"},
		{"other host", 0, func(r *http.Request) []byte { r.Host = "evil.example.com"; return nil }, "verify aksk signature fail"},
		{"body added", 0, func(*http.Request) []byte { return []byte("{}") }, "verify aksk signature fail"},
		{"tampered signature", 0, func(r *http.Request) []byte {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-1]+"0")
			if a[len(a)-1] == '0' {
				r.Header.Set("Authorization", a[:len(a)-1]+"1")
			}
			return nil
		}, "verify aksk signature fail"},
		{"unknown access key", 0, func(r *http.Request) []byte {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), v.AK, "OTHERAK", 1))
			return nil
		}, "access key does not exist"},
		{"host not signed", 0, func(r *http.Request) []byte {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "host;", "", 1))
			return nil
		}, "SignedHeaders must be sorted and include host and x-sdk-date"},
		{"no Authorization", 0, func(r *http.Request) []byte { r.Header.Del("Authorization"); return nil }, "Authorization header is missing or not SDK-HMAC-SHA256"},
		{"bearer instead of a signature", 0, func(r *http.Request) []byte { r.Header.Set("Authorization", "Bearer x"); return nil }, "Authorization header is missing or not SDK-HMAC-SHA256"},
		{"no X-Sdk-Date", 0, func(r *http.Request) []byte { r.Header.Del("X-Sdk-Date"); return nil }, "X-Sdk-Date is missing or malformed"},
		{"date 16 minutes old", 16 * time.Minute, func(*http.Request) []byte { return nil }, "signature expired"},
		{"date 16 minutes ahead", -16 * time.Minute, func(*http.Request) []byte { return nil }, "signature expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := vectorServer(t, v, tt.skew)
			r := v.request(t)
			body := tt.change(r)
			if got := s.checkSignature(r, body); got != tt.want {
				t.Errorf("checkSignature() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUnsignedRequestRefused shows the gateway's answer on the wire: 401 with the vendor's error shape,
// counted, and nothing done.
func TestUnsignedRequestRefused(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, s.URL()+"/v1/identity-stores/"+s.IdentityStoreID()+"/tenant/"+s.TenantID()+"/bearer-token", nil)
		req.Header.Set("X-Sdk-Date", time.Now().UTC().Format(sdkDateLayout))
		req.Header.Set("Authorization", "SDK-HMAC-SHA256 Access="+s.AccessKey()+", SignedHeaders=host;x-sdk-date, Signature=00")
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 401 || err != nil || body["error_code"] != "APIGW.0301" ||
			body["error_msg"] != "Incorrect IAM authentication information: verify aksk signature fail" || body["request_id"] == "" {
			t.Errorf("%s with a bad signature = %d %v, want 401 APIGW.0301", method, resp.StatusCode, body)
		}
	}
	if st := s.Stats(); st.BadSignatures != 2 || st.Creates != 0 || st.Live != 0 || st.Requests != 2 {
		t.Errorf("Stats() = %+v, want 2 bad signatures and nothing created", st)
	}
}

func get(t *testing.T, s *Server, path string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestSCIMBearer(t *testing.T) {
	now := time.Date(2025, 8, 4, 0, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }, Lifetime: 10 * time.Second, Tenants: []string{"t1", "t2"}})
	defer s.Close()
	info, secret, err := s.IssueToken("t1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "eyJraWQiOi") || strings.Count(secret, ".") != 2 {
		t.Errorf("secret %q does not look like the vendor's JWT", secret)
	}
	if info.ExpiresAt.Sub(info.CreatedAt) != 10*time.Second || info.Name != "" {
		t.Errorf("TokenInfo = %+v, want a 10 s lifetime", info)
	}
	path := "/t1/scim/v2/ServiceProviderConfig"
	tests := []struct {
		name, path, auth string
		want             int
	}{
		{"valid", path, "Bearer " + secret, 200},
		{"other tenant", "/t2/scim/v2/ServiceProviderConfig", "Bearer " + secret, 401},
		{"no Bearer prefix", path, secret, 401},
		{"unknown token", path, "Bearer eyJraWQiOi.x.y", 401},
		{"no header", path, "", 401},
	}
	for _, tt := range tests {
		code, hdr, body := get(t, s, tt.path, map[string]string{"Authorization": tt.auth})
		if code != tt.want {
			t.Errorf("%s: status %d, want %d (%s)", tt.name, code, tt.want, body)
		}
		if !strings.HasPrefix(hdr.Get("Content-Type"), "application/scim+json") {
			t.Errorf("%s: Content-Type %q", tt.name, hdr.Get("Content-Type"))
		}
		if strings.Contains(body, secret) {
			t.Errorf("%s: answer echoes the token", tt.name)
		}
	}
	if !s.Valid(secret) {
		t.Errorf("Valid() = false for a live token")
	}
	now = now.Add(10 * time.Second)
	if s.Valid(secret) {
		t.Errorf("Valid() = true at expiry")
	}
	if code, _, _ := get(t, s, path, map[string]string{"Authorization": "Bearer " + secret}); code != 401 {
		t.Errorf("expired token: status %d, want 401", code)
	}
	// Expired tokens still exist and count toward the cap until deleted.
	if _, _, err := s.IssueToken("t1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.IssueToken("t1"); err == nil {
		t.Errorf("IssueToken() on a tenant holding an expired and a live token = nil error, want the cap")
	}
	if !s.RemoveToken(info.ID) || s.RemoveToken(info.ID) {
		t.Errorf("RemoveToken() did not report existence")
	}
	get(t, s, path, map[string]string{"Authorization": "Bearer " + secret})
	if st := s.Stats(); st.StaleBearers != 2 || st.UnknownBearers != 1 || st.Live != 1 {
		t.Errorf("Stats() = %+v, want 2 stale and 1 unknown bearer, 1 live", st)
	}
}

func TestInjectedFaults(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	path := "/v1/identity-stores/x/provision-tenant"
	s.FailNext(429, 2)
	for range 2 {
		code, hdr, body := get(t, s, path, nil)
		if code != 429 || hdr.Get("Retry-After") != "1" || !strings.Contains(body, "APIG.0308") {
			t.Errorf("FailNext(429): %d %q %s", code, hdr.Get("Retry-After"), body)
		}
	}
	if code, _, body := get(t, s, "/nope", nil); code != 404 || !strings.Contains(body, "APIGW.0101") {
		t.Errorf("unknown path after faults: %d %s", code, body)
	}
	s.MalformedNext(1)
	_, secret, _ := s.IssueToken(s.TenantID())
	code, _, body := get(t, s, "/"+s.TenantID()+"/scim/v2/ServiceProviderConfig", map[string]string{"Authorization": "Bearer " + secret})
	if code != 200 || json.Valid([]byte(body)) {
		t.Errorf("MalformedNext: %d %q, want 200 with an unparseable body", code, body)
	}
	code, _, body = get(t, s, "/"+s.TenantID()+"/scim/v2/ServiceProviderConfig", map[string]string{"Authorization": "Bearer " + secret})
	if code != 200 || !json.Valid([]byte(body)) {
		t.Errorf("after MalformedNext(1): %d %q", code, body)
	}
	s.SetFaults(Faults{ErrorRate: 1, Seed: 1})
	if code, _, _ := get(t, s, "/nope", nil); code != 503 {
		t.Errorf("ErrorRate 1: status %d, want 503", code)
	}
	s.SetFaults(Faults{DropRate: 1, Seed: 1})
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/nope", nil)
	if _, err := s.Client().Do(req); err == nil {
		t.Errorf("DropRate 1: request answered, want a dropped connection")
	}
	s.SetFaults(Faults{Delay: 50 * time.Millisecond})
	start := time.Now()
	get(t, s, "/nope", nil)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("Delay: answered after %v", d)
	}
	s.SetFaults(Faults{RateLimitRate: 0.5, Seed: 7})
	n429 := 0
	for range 200 {
		if code, _, _ := get(t, s, "/nope", nil); code == 429 {
			n429++
		}
	}
	if n429 < 60 || n429 > 140 {
		t.Errorf("RateLimitRate 0.5: %d of 200 were 429", n429)
	}
	if st := s.Stats(); st.Requests < 200 {
		t.Errorf("Stats().Requests = %d", st.Requests)
	}
}
