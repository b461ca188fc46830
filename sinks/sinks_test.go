package sinks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
)

// testSecret is long and distinctive so that a leak of any part of it is easy to spot.
const testSecret = "tkn-S3CRET-7f1c9a0b2e4d6f8a1c3e5b7d9f0a2c4e"

func testDelivery() Delivery {
	return Delivery{
		Name:       "backup-api",
		Provider:   "commvault-prod",
		Kind:       "access_token",
		Secret:     providers.NewSecret(testSecret),
		IssuedAt:   time.Date(2025, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600)),
		ExpiresAt:  time.Date(2025, 3, 31, 11, 0, 0, 0, time.UTC),
		Generation: 7,
	}
}

// noSecret fails the test when err's text, in any of fmt's verbs, contains secret.
func noSecret(t *testing.T, err error, secret string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		if strings.Contains(s, secret) {
			t.Fatalf("error contains the secret: %s", s)
		}
	}
}

func TestNewExactlyOne(t *testing.T) {
	tests := []struct {
		name string
		s    config.Sink
	}{
		{"none", config.Sink{}},
		{"two", config.Sink{File: &config.FileSink{Path: "/tmp/x"}, Exec: &config.ExecSink{Command: []string{"true"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.s, nil); err == nil || !strings.Contains(err.Error(), "exactly one") {
				t.Fatalf("New() error = %v, want exactly one", err)
			}
		})
	}
}

func TestNewStrings(t *testing.T) {
	tests := []struct {
		s    config.Sink
		want string
	}{
		{config.Sink{File: &config.FileSink{Path: "/var/lib/x.token"}}, "file:/var/lib/x.token"},
		{config.Sink{Exec: &config.ExecSink{Command: []string{"/usr/local/bin/reload", "--now"}}}, "exec:/usr/local/bin/reload"},
	}
	for _, tt := range tests {
		s, err := New(tt.s, nil)
		if err != nil {
			t.Fatalf("New() error = %v", err)
		}
		if got := s.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	}
}

type codeError struct{ code int }

func (e *codeError) Error() string { return fmt.Sprintf("code %d: echo %s", e.code, testSecret) }

func TestRedact(t *testing.T) {
	orig := fmt.Errorf("doing: %w: %w", &codeError{3}, context.DeadlineExceeded)
	err := redact(orig, testSecret)
	noSecret(t, err, testSecret)
	if want := "doing: code 3: echo <secret>: context deadline exceeded"; err.Error() != want {
		t.Errorf("redact() = %q, want %q", err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("errors.Is(redact(), DeadlineExceeded) = false, want true")
	}
	var ce *codeError
	if errors.As(err, &ce) {
		t.Error("errors.As reaches the unredacted error")
	}
	clean := fmt.Errorf("opening: %w", fs.ErrNotExist)
	if got := redact(clean, testSecret); got != clean {
		t.Errorf("redact(clean) = %v, want the same error", got)
	}
	if redact(nil, testSecret) != nil || redact(orig, "") != orig {
		t.Error("redact(nil) or redact(err, \"\") changed its input")
	}
}
