package httpprov

import "testing"

var tokenSeeds = []string{
	`{"id":"tok-1","name":"tokend-a-g1","secret":"fake-secret-0a1b","refresh":"fake-refresh-2c3d","created_at":"2026-03-01T12:00:00Z","issued_at":"2026-03-01T12:00:00Z","expires_at":"2026-03-01T13:00:00Z","renewable_until":null}`,
	`{"id":"tok-2","name":"manual","created_at":"2026-03-01T12:00:00.123456789Z","issued_at":"2026-03-01T12:00:00Z","expires_at":null,"renewable_until":null}`,
	`{"id": "tok-`,
	`{"id":"","secret":"x"}`,
	`{"id":"tok-3","expires_at":"yesterday"}`,
	`[]`, `null`, ``, `{"id":7}`,
}

func FuzzDecodeToken(f *testing.F) {
	for _, s := range tokenSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeToken(b)
		if err == nil && w.ID == "" {
			t.Errorf("decodeToken(%q) accepted a token without id", b)
		}
		_ = w.token()
	})
}

func FuzzDecodeOrphans(f *testing.F) {
	f.Add([]byte(`{"tokens":[]}`))
	f.Add([]byte(`{"tokens":[` + tokenSeeds[1] + `]}`))
	f.Add([]byte(`{"tokens":[{"id":""}]}`))
	f.Add([]byte(`{"tokens":null}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"tokens":[{"id":"tok-1"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ws, err := decodeOrphans(b)
		for _, w := range ws {
			if err == nil && w.ID == "" {
				t.Errorf("decodeOrphans(%q) accepted a token without id", b)
			}
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	f.Add([]byte(`{"code":"invalid_grant","message":"refresh credential refused"}`))
	f.Add([]byte(`{"code":"not_renewable","message":"token cannot be renewed any more"}`))
	f.Add([]byte(`<html>502 Bad Gateway</html>`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeError(b)
		e := apiError("GET /x", 400, nil, b)
		if len(e.Message) > maxMessage {
			t.Errorf("apiError message is %d bytes, want at most %d", len(e.Message), maxMessage)
		}
	})
}

func TestDecodeTokenTimes(t *testing.T) {
	w, err := decodeToken([]byte(tokenSeeds[0]))
	if err != nil {
		t.Fatalf("decodeToken() error = %v", err)
	}
	tok := w.token()
	if tok.ID != "tok-1" || tok.Secret.Reveal() != "fake-secret-0a1b" || tok.ExpiresAt.Sub(tok.IssuedAt).Hours() != 1 ||
		!tok.RenewableUntil.IsZero() {
		t.Errorf("decodeToken() = %+v", tok)
	}
	if _, err := decodeToken([]byte(tokenSeeds[2])); err == nil {
		t.Errorf("decodeToken(truncated) error = nil")
	}
}
