package huaweiidc

import (
	"strings"
	"testing"
	"time"
)

// Realistic bodies: the vendor's documented examples (api/huawei-idc.md §4, §6 and the list seed).
const (
	docList    = `{ "bearer_tokens" : [ { "creation_time" : 1754277891140, "expiration_time" : 1785813891000, "token_id" : "5bd76fe3-48cc-4e4b-a235-a4e6xxxx" }, { "creation_time" : 1754278569276, "expiration_time" : 1785814569000, "token_id" : "715ad873-3b32-48a3-a08f-50fxxxxxx7" } ] }`
	docCreate  = `{"token_id": "715ad873-3b32-48a3-a08f-50fxxxxxx7", "token": "eyJraWQiOiJleGFtcGxlIn0.eyJ0aWQiOiJ4In0.c2ln", "creation_time": 1754278569275, "expiration_time": 1785814569000}`
	docErr400  = `{"error_code": "IdentityCenter.400", "error_msg": "Bad Request: invalid tenant_id", "request_id": "0b5c6c1e9f7a4b2d8e3f"}`
	docErr403  = `{"error_code": "IdentityCenter.1000", "error_msg": "Forbidden", "request_id": "abc", "encoded_authorization_message": "ZW5jcnlwdGVk"}`
	docErrAPIG = `{"error_msg":"Incorrect IAM authentication information: verify aksk signature fail","error_code":"APIGW.0301","request_id":"a1b2"}`
	docErrSCIM = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"Authorization failure","status":"401"}`
	docTenants = `{"provisioning_tenants":[{"creation_time":1754277000000,"scim_endpoint":"https://scim.ap-southeast-1.myhuaweicloud.com/8f2c/scim/v2/","tenant_id":"8f2c"}]}`
)

func TestDecodeList(t *testing.T) {
	got, err := decodeList([]byte(docList))
	if err != nil {
		t.Fatalf("decodeList(doc example) error = %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("decodeList() = %d tokens, want 2", len(got))
	}
	// Exact milliseconds (the SDK's float32 would be ~42 s off here).
	if want := time.UnixMilli(1754278569276).UTC(); !got[1].CreatedAt.Equal(want) || got[1].CreatedAt.Nanosecond() != 276_000_000 {
		t.Errorf("CreatedAt = %v, want %v", got[1].CreatedAt, want)
	}
	if want := time.UnixMilli(1785813891000); !got[0].ExpiresAt.Equal(want) || got[0].ID != "5bd76fe3-48cc-4e4b-a235-a4e6xxxx" {
		t.Errorf("token[0] = %+v", got[0])
	}
	if got, err := decodeList([]byte(`{"bearer_tokens":[]}`)); err != nil || len(got) != 0 {
		t.Errorf("decodeList(empty) = %v, %v", got, err)
	}
	if got, err := decodeList([]byte(`{"bearer_tokens":[{"token_id":"a","creation_time":1754278569275.0,"expiration_time":"1785814569000"}]}`)); err != nil ||
		got[0].CreatedAt.UnixMilli() != 1754278569275 || got[0].ExpiresAt.UnixMilli() != 1785814569000 {
		t.Errorf("decodeList(float and string numbers) = %v, %v", got, err)
	}
	bad := map[string]string{
		"truncated":       docList[:len(docList)/2],
		"no list":         `{}`,
		"null list":       `{"bearer_tokens":null}`,
		"not an object":   `[]`,
		"html":            `<html>502</html>`,
		"missing id":      `{"bearer_tokens":[{"creation_time":1,"expiration_time":2}]}`,
		"id with a slash": `{"bearer_tokens":[{"token_id":"../x","creation_time":1,"expiration_time":2}]}`,
		"missing expiry":  `{"bearer_tokens":[{"token_id":"a","creation_time":1}]}`,
		"negative time":   `{"bearer_tokens":[{"token_id":"a","creation_time":-1,"expiration_time":2}]}`,
		"huge time":       `{"bearer_tokens":[{"token_id":"a","creation_time":1e300,"expiration_time":2}]}`,
		"time is text":    `{"bearer_tokens":[{"token_id":"a","creation_time":"soon","expiration_time":2}]}`,
		"duplicate ids":   `{"bearer_tokens":[{"token_id":"a","creation_time":1,"expiration_time":2},{"token_id":"a","creation_time":1,"expiration_time":2}]}`,
		"trailing data":   docList + `{}`,
		"trailing brace":  docList + `}`,
	}
	for name, body := range bad {
		if got, err := decodeList([]byte(body)); err == nil {
			t.Errorf("decodeList(%s) = %v, want an error", name, got)
		}
	}
}

func TestDecodeCreate(t *testing.T) {
	got, err := decodeCreate([]byte(docCreate))
	if err != nil {
		t.Fatalf("decodeCreate(doc example) error = %v", err)
	}
	if got.ID != "715ad873-3b32-48a3-a08f-50fxxxxxx7" || !strings.HasPrefix(got.Secret, "eyJraWQi") ||
		got.CreatedAt.UnixMilli() != 1754278569275 || got.ExpiresAt.UnixMilli() != 1785814569000 {
		t.Errorf("decodeCreate() = %+v", got)
	}
	for name, body := range map[string]string{
		"truncated":          docCreate[:len(docCreate)-20],
		"no token":           `{"token_id":"a","creation_time":1,"expiration_time":2}`,
		"token not a string": `{"token_id":"a","token":5,"creation_time":1,"expiration_time":2}`,
		"empty":              ``,
	} {
		_, err := decodeCreate([]byte(body))
		if err == nil {
			t.Errorf("decodeCreate(%s) = nil error", name)
			continue
		}
		if strings.Contains(err.Error(), "eyJ") {
			t.Errorf("decodeCreate(%s) error quotes the body: %v", name, err)
		}
	}
}

func TestDecodeError(t *testing.T) {
	tests := []struct {
		body string
		want vendorError
	}{
		{docErr400, vendorError{Code: "IdentityCenter.400", Message: "Bad Request: invalid tenant_id", RequestID: "0b5c6c1e9f7a4b2d8e3f"}},
		{docErr403, vendorError{Code: "IdentityCenter.1000", Message: "Forbidden", RequestID: "abc"}},
		{docErrAPIG, vendorError{Code: "APIGW.0301", Message: "Incorrect IAM authentication information: verify aksk signature fail", RequestID: "a1b2"}},
		{docErrSCIM, vendorError{Message: "Authorization failure"}},
		{`{"code":"APIG.0308","message":"throttled"}`, vendorError{Code: "APIG.0308", Message: "throttled"}},
		{`<html>bad gateway</html>`, vendorError{}},
		{``, vendorError{}},
		{`{"error_msg":"line1\nline2` + strings.Repeat("x", 500) + `"}`, vendorError{Message: "line1 line2" + strings.Repeat("x", 229) + "…"}},
	}
	for _, tt := range tests {
		if got := decodeError([]byte(tt.body)); got != tt.want {
			t.Errorf("decodeError(%.40q) = %+v, want %+v", tt.body, got, tt.want)
		}
	}
	for code, want := range map[string]string{"IdentityCenter.1006": "1006", "IIC.1006": "1006", "APIG.0308": "0308", "x": ""} {
		if got := codeSuffix(code); got != want {
			t.Errorf("codeSuffix(%q) = %q, want %q", code, got, want)
		}
	}
}

func TestDecodeTenants(t *testing.T) {
	got, err := decodeTenants([]byte(docTenants))
	if err != nil || len(got) != 1 || got[0] != "8f2c" {
		t.Errorf("decodeTenants() = %v, %v", got, err)
	}
	for _, body := range []string{`{}`, `{"provisioning_tenants":[{}]}`, docTenants[:30]} {
		if _, err := decodeTenants([]byte(body)); err == nil {
			t.Errorf("decodeTenants(%q) = nil error", body)
		}
	}
}

// The fuzz targets: no input may panic, and what decodes must be usable.

func FuzzDecodeList(f *testing.F) {
	for _, s := range []string{docList, `{"bearer_tokens":[]}`, docList[:40], `{"bearer_tokens":[{"token_id":"a","creation_time":1.5e12,"expiration_time":"2"}]}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		toks, err := decodeList(b)
		if err != nil {
			return
		}
		for _, tk := range toks {
			if tk.ID == "" || checkID(tk.ID) != nil && strings.ContainsAny(tk.ID, "/?#") {
				t.Fatalf("decodeList accepted id %q", tk.ID)
			}
		}
	})
}

func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{docCreate, docCreate[:50], `{"token":""}`, `{"token_id":"a","token":"b","creation_time":0,"expiration_time":0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ct, err := decodeCreate(b)
		if err == nil && (ct.Secret == "" || ct.ID == "") {
			t.Fatalf("decodeCreate accepted an answer without id or token")
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	for _, s := range []string{docErr400, docErr403, docErrAPIG, docErrSCIM, `{"code":5}`, `<html>`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e := decodeError(b)
		if len(e.Message) > 240+len("…") || strings.ContainsAny(e.Message+e.Code, "\n\r") {
			t.Fatalf("decodeError gave unsafe text %+v", e)
		}
	})
}

func FuzzDecodeTenants(f *testing.F) {
	for _, s := range []string{docTenants, `{"provisioning_tenants":[]}`, docTenants[:20]} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = decodeTenants(b) })
}
