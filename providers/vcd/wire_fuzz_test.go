package vcd

import (
	"testing"
	"time"
)

// Seed corpora are realistic VCD bodies (constructed from the API reference, as in shared/api/vcd.md), plus
// the shapes that broke decoders elsewhere: nulls, wrong types, truncation.

var tokenSeeds = []string{
	`{"id":"urn:vcloud:token:3f1c2a4e-1111-2222-3333-444455556666","name":"tokend-vcd-proxy-g3","token":"cHJveHktdG9rZW4tdmFsdWU","expirationTimeUtc":"2030-06-01T12:00:00.000Z","requireRotation":null,"owner":{"name":"alice","id":"urn:vcloud:user:1"},"org":{"name":"acme","id":"urn:vcloud:org:2"},"type":"PROXY"}`,
	`{"id":"urn:vcloud:token:3f1c2a4e-1111-2222-3333-444455556666","name":"rotation","token":null,"expirationTimeUtc":null,"requireRotation":true,"tokenRotation":"ALWAYS","type":"REFRESH","username":"alice","userId":"urn:vcloud:user:1","orgName":"acme"}`,
	`{"id":"urn:vcloud:token:x","name":"n","expirationTimeUtc":"2030-06-01T12:00:00+02:00"}`,
	`{"id":"urn:vcloud:token:x","name":"n","expirationTimeUtc":"2030-06-01T12:00:00"}`,
	`{"id":"urn:vcloud:token:x","expirationTimeUtc":"yesterday"}`,
	`{"id":"../../sessions","name":"n"}`,
	`{"id":5}`, `null`, `[]`, `{"id":"urn:vcloud:token:x","requireRotation":"yes"}`, `{"id":"urn:vcloud:tok`,
}

func FuzzDecodeToken(f *testing.F) {
	for _, s := range tokenSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tk, err := decodeToken(b)
		if err == nil && !tokenIDRe.MatchString(tk.ID) {
			t.Errorf("decodeToken accepted id %q", tk.ID)
		}
	})
}

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"resultTotal":2,"pageCount":1,"page":1,"pageSize":128,"associations":null,"values":[` + tokenSeeds[0] + `,` + tokenSeeds[1] + `]}`))
	f.Add([]byte(`{"resultTotal":300,"page":2,"pageSize":128,"values":[]}`))
	f.Add([]byte(`{"resultTotal":-1,"values":null}`))
	f.Add([]byte(`{"values":[{"id":null}]}`))
	f.Add([]byte(`{"resultTotal":1e99}`))
	f.Add([]byte(`{"resultTot`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePage(b)
		if err == nil && p.ResultTotal < 0 {
			t.Errorf("decodePage accepted resultTotal %d", p.ResultTotal)
		}
	})
}

func FuzzDecodeGrant(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE5MDAwMDAwMDB9.c2ln","token_type":"Bearer","expires_in":1800,"refresh_token":"bmV3LXJlZnJlc2g"}`,
		`{"access_token":"eyJ.a.b","token_type":"Bearer","expires_in":"1800"}`,
		`{"access_token":"eyJ.a.b","token_type":"bearer","expires_in":1799.5,"refresh_token":""}`,
		`{"access_token":"eyJ.a.b","token_type":"MAC","expires_in":60}`,
		`{"access_token":"","expires_in":60}`, `{"access_token":"x","expires_in":-5}`, `{"access_token":"x","expires_in":1e300}`,
		`{"minorErrorCode":"invalid_grant","message":"Invalid refresh token"}`, `{"access_tok`, `0`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := decodeGrant(b)
		if err == nil && (g.AccessToken == "" || g.ExpiresIn <= 0) {
			t.Errorf("decodeGrant accepted %+v", g)
		}
	})
}

func FuzzDecodeSession(f *testing.F) {
	for _, s := range []string{
		`{"id":"urn:vcloud:session:0b1c2d3e-aaaa-bbbb-cccc-ddddeeeeffff","site":{"name":"s","id":"urn:vcloud:site:1"},"user":{"name":"alice","id":"urn:vcloud:user:1"},"org":{"name":"acme","id":"urn:vcloud:org:2"},"operatingOrg":{"name":"acme","id":"urn:vcloud:org:2"},"location":"2@1","roles":["Organization Administrator"],"roleRefs":[{"name":"Organization Administrator","id":"urn:vcloud:role:3"}],"sessionIdleTimeoutMinutes":30}`,
		`{"id":"urn:vcloud:session:x","sessionIdleTimeoutMinutes":"30"}`, `{"id":"a/../b"}`, `{}`, `{"id":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = decodeSession(b) })
}

func FuzzDecodeClient(f *testing.F) {
	for _, s := range []string{
		`{"client_name":"tokend-vcd-api-g2","client_id":"3f1c2a4e-1111-2222-3333-444455556666","grant_types":["urn:ietf:params:oauth:grant-type:jwt-bearer","refresh_token"],"token_endpoint_auth_method":"none"}`,
		`{"client_id":"../tokens"}`, `{"client_id":""}`, `{"client_id":7}`, `{"client_`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeClient(b)
		if err == nil && !clientIDRe.MatchString(c.ClientID) {
			t.Errorf("decodeClient accepted client_id %q", c.ClientID)
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	for _, s := range []string{
		`{"minorErrorCode":"BAD_REQUEST","message":"[ 1c2d ] Bad request","stackTrace":"com.vmware.vcloud.api.presentation.service.BadRequestException: ..."}`,
		`{"error":"invalid_grant","error_description":"Invalid refresh token"}`,
		`{"minorErrorCode":null,"message":["x"]}`, "<html>\x00\x1b[31m</html>", ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		code, msg := decodeError(b)
		if len([]rune(code)) > 65 || len([]rune(msg)) > 201 {
			t.Errorf("decodeError returned unbounded text (%d, %d runes)", len(code), len(msg))
		}
	})
}

func FuzzNextPageLink(f *testing.F) {
	for _, s := range []string{
		`<https://vcd.example.com/cloudapi/1.0.0/tokens?page=2&pageSize=25>;rel="nextPage";type="application/json;version=39.0"`,
		`<https://h/cloudapi/1.0.0/tokens>;rel="up";type="application/json", <https://h/cloudapi/1.0.0/tokens?page=3>;rel="nextPage"`,
		`<https://h/a,b>;rel=nextPage`, `<<>>;rel="nextPage"`, `<unterminated;rel="nextPage"`, `;;;,,,`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) { _ = nextPageLink([]string{v}) })
}

func FuzzJWTExpiry(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE5MDAwMDAwMDAsInN1YiI6ImFsaWNlIn0.c2lnbmF0dXJl")
	f.Add("a.b.c")
	f.Add("a.eyJleHAiOiJzb29uIn0.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, s string) { _ = jwtExpiry(s) })
}

func TestWireSeeds(t *testing.T) {
	tk, err := decodeToken([]byte(tokenSeeds[0]))
	if err != nil || tk.Token == "" || !tk.expires.Equal(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)) || tk.Type != "PROXY" {
		t.Errorf("decodeToken(proxy) = %+v, %v", tk, err)
	}
	tk, err = decodeToken([]byte(tokenSeeds[1]))
	if err != nil || !tk.expires.IsZero() || tk.RequireRotation == nil || !*tk.RequireRotation {
		t.Errorf("decodeToken(refresh) = %+v, %v", tk, err)
	}
	for _, bad := range []string{tokenSeeds[4], tokenSeeds[5], tokenSeeds[6], tokenSeeds[10]} {
		if _, err := decodeToken([]byte(bad)); err == nil {
			t.Errorf("decodeToken(%s) = nil error", bad)
		}
	}
	g, err := decodeGrant([]byte(`{"access_token":"eyJ.a.b","token_type":"Bearer","expires_in":"1800"}`))
	if err != nil || g.ExpiresIn != 1800 || g.RefreshToken != "" {
		t.Errorf("decodeGrant(string expires_in) = %+v, %v", g, err)
	}
	for _, bad := range []string{`{"access_token":"x","token_type":"MAC","expires_in":60}`, `{"access_token":"x"}`, `{"expires_in":60}`} {
		if _, err := decodeGrant([]byte(bad)); err == nil {
			t.Errorf("decodeGrant(%s) = nil error", bad)
		}
	}
	if _, err := decodeClient([]byte(`{"client_id":"../tokens"}`)); err == nil {
		t.Error("decodeClient accepted a path in client_id")
	}
	links := []struct{ in, want string }{
		{`<https://h/cloudapi/1.0.0/tokens>;rel="up", <https://h/cloudapi/1.0.0/tokens?page=3&x=a,b>;rel="nextPage";type="application/json"`, "https://h/cloudapi/1.0.0/tokens?page=3&x=a,b"},
		{`<https://h/t?page=2>; rel=nextpage`, "https://h/t?page=2"},
		{`<https://h/t>;rel="lastPage"`, ""},
	}
	for _, l := range links {
		if got := nextPageLink([]string{l.in}); got != l.want {
			t.Errorf("nextPageLink(%q) = %q, want %q", l.in, got, l.want)
		}
	}
	if got := jwtExpiry("x.eyJleHAiOjE5MDAwMDAwMDB9.y"); !got.Equal(time.Unix(1900000000, 0)) {
		t.Errorf("jwtExpiry() = %v", got)
	}
	if code, msg := decodeError([]byte(`{"error":"invalid_grant","error_description":"bad\nline"}`)); code != "invalid_grant" || msg != "bad line" {
		t.Errorf("decodeError(oauth) = %q, %q", code, msg)
	}
}
