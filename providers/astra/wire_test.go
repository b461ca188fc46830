package astra

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// Realistic bodies, built from api/astra.md (constructed, not vendor output).
const (
	seedToken = `{"type":"application/astra-token","version":"1.0","id":"6f1c2b9e-2d3a-4c1e-9a77-1b2c3d4e5f60",
"name":"rotation-2024-06-01","userID":"0b8e6d0a-5c1f-4a52-8f7e-2a9d3c4b5e61",
"metadata":{"labels":[{"name":"managed-by","value":"rotator"}],"creationTimestamp":"2024-06-01T10:00:00.123456Z",
"modificationTimestamp":"2024-06-01T10:00:00.123456Z","createdBy":"0b8e6d0a-5c1f-4a52-8f7e-2a9d3c4b5e61",
"modifiedBy":"0b8e6d0a-5c1f-4a52-8f7e-2a9d3c4b5e61"}}`
	seedCreated = `{"type":"application/astra-token","version":"1.0","id":"6f1c2b9e-2d3a-4c1e-9a77-1b2c3d4e5f60",
"name":"tokend-backup-g2","userID":"0b8e6d0a-5c1f-4a52-8f7e-2a9d3c4b5e61","token":"QSBKV1QgVG9rZW4gd291bGQgZ28gaGVyZS4=",
"metadata":{"labels":[{"name":"managed-by","value":"tokend"}],"creationTimestamp":"2024-06-01T10:00:00,5Z"}}`
	seedList = `{"type":"application/astra-tokens","version":"1.0","items":[` + seedToken + `],
"metadata":{"continue":"YWZ0ZXI6MQ==","count":12}}`
	seedListArrays = `{"items":[["6f1c2b9e-2d3a-4c1e-9a77-1b2c3d4e5f60","Snapshot Script"],["0b8e6d0a-5c1f-4a52-8f7e-2a9d3c4b5e61","x"]],"metadata":{}}`
	seedProblem    = `{"type":"https://astra.netapp.io/problems/4","title":"Invalid bearer token",
"detail":"The bearer token provided is invalid, revoked, or doesn't exist.","status":"401",
"correlationID":"5f2d6b8a-1c3e-4a5f-9b7d-2e4c6a8b0d1f"}`
	seedProblemParams = `{"type":"https://astra.netapp.io/problems/5","title":"Invalid query parameters","detail":"x",
"status":400,"invalidParams":[{"name":"limit","reason":"must be a positive integer"}]}`
)

func TestDecodeToken(t *testing.T) {
	w, err := decodeToken([]byte(seedToken))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2024, 6, 1, 10, 0, 0, 123456000, time.UTC)
	if w.ID != "6f1c2b9e-2d3a-4c1e-9a77-1b2c3d4e5f60" || !w.created().Equal(want) || w.label("managed-by") != "rotator" || w.Token != "" {
		t.Errorf("decodeToken() = %+v", w)
	}
	for _, bad := range []string{`{}`, `{"id":"x","type":"application/astra-user"}`, `[]`, `{"id":`, `null`} {
		if _, err := decodeToken([]byte(bad)); err == nil {
			t.Errorf("decodeToken(%s) = nil error", bad)
		}
	}
	if _, err := decodeCreated([]byte(seedToken)); err == nil {
		t.Errorf("decodeCreated(no token value) = nil error")
	}
	c, err := decodeCreated([]byte(seedCreated))
	if err != nil || c.Token == "" || !c.created().Equal(time.Date(2024, 6, 1, 10, 0, 0, 500000000, time.UTC)) {
		t.Errorf("decodeCreated() = %+v, %v", c, err)
	}
}

func TestDecodeList(t *testing.T) {
	l, err := decodeList([]byte(seedList), nil)
	if err != nil || len(l.Items) != 1 || l.Continue != "YWZ0ZXI6MQ==" {
		t.Errorf("decodeList() = %+v, %v", l, err)
	}
	l, err = decodeList([]byte(seedListArrays), []string{"id", "name"})
	if err != nil || len(l.Items) != 2 || l.Items[0].Name != "Snapshot Script" || l.Continue != "" {
		t.Errorf("decodeList(arrays) = %+v, %v", l, err)
	}
	if _, err := decodeList([]byte(seedListArrays), nil); err == nil {
		t.Errorf("decodeList(arrays, no include) = nil error")
	}
	for _, bad := range []string{`{}`, `{"items":[{}]}`, `{"items":[1]}`, `{"items":{}}`, `nope`} {
		if _, err := decodeList([]byte(bad), nil); err == nil {
			t.Errorf("decodeList(%s) = nil error", bad)
		}
	}
}

func TestDecodeProblem(t *testing.T) {
	for _, tt := range []struct {
		body   string
		ok     bool
		status int
		code   string
	}{
		{seedProblem, true, 401, "problems/4"},       // status as a string, as Astra sends it
		{seedProblemParams, true, 400, "problems/5"}, // status as a number, tolerated
		{`{"type":"about:blank","title":"x","status":"abc"}`, true, 0, "about:blank"},
		{`<html>502 Bad Gateway</html>`, false, 0, ""},
		{`{"status":"401"}`, false, 0, ""},
	} {
		p, ok := decodeProblem([]byte(tt.body))
		if ok != tt.ok || p.Status != tt.status || (ok && p.code() != tt.code) {
			t.Errorf("decodeProblem(%.30s) = %+v, %v; want status %d code %q ok %v", tt.body, p, ok, tt.status, tt.code, tt.ok)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2022-10-06T20:58:16.305662Z", time.Date(2022, 10, 6, 20, 58, 16, 305662000, time.UTC), true},
		{"2022-10-06T20:58:16,305662Z", time.Date(2022, 10, 6, 20, 58, 16, 305662000, time.UTC), true},
		{"2022-10-06T20:58:16Z", time.Date(2022, 10, 6, 20, 58, 16, 0, time.UTC), true},
		{"2022-10-06T20:58:16.123456789Z", time.Date(2022, 10, 6, 20, 58, 16, 123456789, time.UTC), true},
		{"2022-10-06T20:58:16.1234567890Z", time.Time{}, false},
		{"2022-10-06T20:58:16.Z", time.Time{}, false},
		{"2022-10-06T20:58:16+02:00", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, err := parseTime(tt.in)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if s := formatTime(time.Date(2024, 6, 1, 10, 0, 0, 5000, time.FixedZone("x", 3600))); s != "2024-06-01T09:00:00.000005Z" {
		t.Errorf("formatTime() = %s", s)
	}
}

func jwtOf(claims string) string {
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + e.EncodeToString([]byte(claims)) + ".c2ln"
}

func TestSelfID(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{"verbatim jwt", jwtOf(`{"jti":"abc"}`), "abc"},
		{"base64 of a jwt", base64.StdEncoding.EncodeToString([]byte(jwtOf(`{"tokenID":"def"}`))), "def"},
		{"spec example", "QSBKV1QgVG9rZW4gd291bGQgZ28gaGVyZS4=", ""},
		{"jwt without an id", jwtOf(`{"sub":"u"}`), ""},
		{"garbage", "a.b.c", ""},
	} {
		if got, ok := selfID(tt.in); got != tt.want || ok != (tt.want != "") {
			t.Errorf("selfID(%s) = %q, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
}

func FuzzDecodeToken(f *testing.F) {
	for _, s := range []string{seedToken, seedCreated, `{}`, `{"id":1}`, `{"metadata":{"labels":[{"name":1}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if w, err := decodeToken(b); err == nil {
			_ = w.created()
			_ = w.label(labelVendorName)
			if w.ID == "" {
				t.Errorf("decodeToken accepted a token without id")
			}
		}
		if w, err := decodeCreated(b); err == nil && w.Token == "" {
			t.Errorf("decodeCreated accepted an answer without a secret")
		}
	})
}

func FuzzDecodeList(f *testing.F) {
	for _, s := range []string{seedList, seedListArrays, `{"items":[]}`, `{"items":[[]],"metadata":null}`} {
		f.Add([]byte(s), "id,name")
		f.Add([]byte(s), "")
	}
	f.Fuzz(func(t *testing.T, b []byte, include string) {
		var inc []string
		if include != "" {
			inc = strings.Split(include, ",")
		}
		if l, err := decodeList(b, inc); err == nil {
			for _, w := range l.Items {
				if w.ID == "" {
					t.Errorf("decodeList accepted an item without id")
				}
			}
		}
	})
}

func FuzzDecodeProblem(f *testing.F) {
	for _, s := range []string{seedProblem, seedProblemParams, `{"status":"4O1"}`, `{"type":"/problems/"}`, `<html>`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, ok := decodeProblem(b); ok {
			_ = p.code()
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2022-10-06T20:58:16.305662Z", "2022-10-06T20:58:16,3Z", "2022-10-06T20:58:16Z", "Z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if tm, err := parseTime(s); err == nil && tm.Location() != time.UTC {
			t.Errorf("parseTime(%q) not UTC", s)
		}
	})
}

func FuzzSelfID(f *testing.F) {
	for _, s := range []string{jwtOf(`{"jti":"abc"}`), base64.StdEncoding.EncodeToString([]byte(jwtOf(`{"jti":"x"}`))),
		"QSBKV1QgVG9rZW4gd291bGQgZ28gaGVyZS4=", "..", "a.b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if id, ok := selfID(s); ok && (id == "" || len(id) > 128) {
			t.Errorf("selfID(%q) = %q", s, id)
		}
	})
}
