package config

import (
	"io/fs"
	"reflect"
	"testing"
	"time"
)

func TestResolvePrecedence(t *testing.T) {
	c, err := Parse([]byte(`
state_key_file: /run/key
defaults:
  renew_before: 40%
  max_age: 14d
  poll: "@every 5m"
providers:
  - name: p
    type: vcd
    url: https://p.example.com
    renew_before: 2h
    jitter: 20%
    retry: {min: 1m, max: 2h}
  - name: bare
    type: vcd
    url: https://bare.example.com
tokens:
  - name: token-wins
    provider: p
    kind: k
    renew_before: 10m
    recreate_before: 0s
    revoke_after: 1h
    retry: {min: 5s, max: 10s}
    deliver: [{file: {path: /run/a}}]
  - name: provider-wins
    provider: p
    kind: k
    deliver: [{file: {path: /run/b}}]
  - name: defaults-win
    provider: bare
    kind: k
    deliver: [{file: {path: /run/c}}]
  - name: orphan
    provider: missing
    kind: k
    deliver: [{file: {path: /run/d}}]
`), "")
	if err != nil {
		t.Fatalf("Parse() error: %v", err)
	}
	const day = 24 * time.Hour
	fromDefaults := Resolved{
		RenewBefore: Window{IsShare: true, Share: 0.40}, RecreateBefore: 72 * time.Hour, MaxAge: 14 * day,
		Jitter: 0.10, RevokeAfter: 15 * time.Minute, Poll: "@every 5m", RetryMin: 30 * time.Second, RetryMax: 30 * time.Minute,
	}
	tests := []struct {
		token int
		want  Resolved
	}{
		{0, Resolved{
			RenewBefore: Window{Dur: 10 * time.Minute}, RecreateBefore: 0, MaxAge: 14 * day, Jitter: 0.20,
			RevokeAfter: time.Hour, Poll: "@every 5m", RetryMin: 5 * time.Second, RetryMax: 10 * time.Second,
		}},
		{1, Resolved{
			RenewBefore: Window{Dur: 2 * time.Hour}, RecreateBefore: 72 * time.Hour, MaxAge: 14 * day, Jitter: 0.20,
			RevokeAfter: 15 * time.Minute, Poll: "@every 5m", RetryMin: time.Minute, RetryMax: 2 * time.Hour,
		}},
		{2, fromDefaults},
		{3, fromDefaults}, // no such provider: defaults still apply
	}
	for _, tt := range tests {
		tok := c.Tokens[tt.token]
		t.Run(tok.Name, func(t *testing.T) {
			if got := c.Resolve(tok); got != tt.want {
				t.Errorf("Resolve(%s) =\n%+v\nwant\n%+v", tok.Name, got, tt.want)
			}
		})
	}
	if got, want := c.ResolveProvider(c.Providers[0]).RenewBefore, (Window{Dur: 2 * time.Hour}); got != want {
		t.Errorf("ResolveProvider(p).RenewBefore = %v, want %v", got, want)
	}

	var empty Config
	want := Resolved{
		RenewBefore: Window{IsShare: true, Share: 0.33}, RecreateBefore: 72 * time.Hour, MaxAge: 30 * day,
		Jitter: 0.10, RevokeAfter: 15 * time.Minute, Poll: "@every 10m", RetryMin: 30 * time.Second, RetryMax: 30 * time.Minute,
	}
	if got := empty.Resolve(Token{Name: "x"}); got != want || Builtins() != want {
		t.Errorf("Resolve() with nothing set = %+v, Builtins() = %+v; want %+v", got, Builtins(), want)
	}
}

func TestProviderForAndTokensOf(t *testing.T) {
	c := base(t)
	if p := c.ProviderFor(c.Tokens[1]); p == nil || p != &c.Providers[1] {
		t.Errorf("ProviderFor(b) = %v, want a pointer to providers[1]", p)
	}
	if p := c.ProviderFor(Token{Provider: "nope"}); p != nil {
		t.Errorf("ProviderFor(nope) = %v, want nil", p)
	}
	var names []string
	for _, tok := range c.TokensOf(c.Providers[0]) {
		names = append(names, tok.Name)
	}
	if !reflect.DeepEqual(names, []string{"a"}) {
		t.Errorf("TokensOf(vcd) = %q, want [a]", names)
	}
	if got := c.TokensOf(Provider{Name: "none"}); got != nil {
		t.Errorf("TokensOf(none) = %v, want nil", got)
	}
}

func TestPaths(t *testing.T) {
	tests := []struct{ got, want string }{
		{Provider{Name: "astra", Index: 1}.Path(), "providers[1] (astra)"},
		{Provider{Index: 3}.Path(), "providers[3]"},
		{Token{Name: "huawei-scim", Index: 2}.Path(), "tokens[2] (huawei-scim)"},
		{Token{Index: 0}.Path(), "tokens[0]"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("Path() = %q, want %q", tt.got, tt.want)
		}
	}
}

func TestFileMode(t *testing.T) {
	tests := []struct {
		mode    string
		want    fs.FileMode
		wantErr bool
	}{
		{"", 0o600, false},
		{"0640", 0o640, false},
		{"640", 0o640, false},
		{"0o400", 0o400, false},
		{"0777", 0o777, false},
		{"01777", 0, true},
		{"0999", 0, true},
		{"-1", 0, true},
	}
	for _, tt := range tests {
		got, err := FileSink{Mode: tt.mode}.FileMode()
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("FileMode(%q) = %v, %v; want %v, error %v", tt.mode, got, err, tt.want, tt.wantErr)
		}
	}
}
