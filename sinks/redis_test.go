package sinks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/config"
)

func newRedisT(t *testing.T, c config.RedisSink, state redis.UniversalClient) Sink {
	t.Helper()
	s, err := New(config.Sink{Redis: &c}, state)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRedisStateClient(t *testing.T) {
	mr := miniredis.RunT(t)
	state := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = state.Close() })
	tests := []struct {
		format, golden string
	}{
		{"", "format_raw.golden"},
		{"raw", "format_raw.golden"},
		{"json", "format_json.golden"},
	}
	for _, tt := range tests {
		t.Run("format "+tt.format, func(t *testing.T) {
			s := newRedisT(t, config.RedisSink{Key: "secrets:x", Format: tt.format}, state)
			if got := s.String(); got != "redis:secrets:x" {
				t.Errorf("String() = %q, want redis:secrets:x", got)
			}
			for range 2 {
				if err := s.Deliver(context.Background(), testDelivery()); err != nil {
					t.Fatalf("Deliver() error = %v", err)
				}
			}
			want, _ := os.ReadFile(filepath.Join("testdata", tt.golden))
			if got, _ := mr.Get("secrets:x"); got != string(want) {
				t.Errorf("secrets:x = %q, want %q", got, want)
			}
			if ttl := mr.TTL("secrets:x"); ttl != 0 {
				t.Errorf("TTL = %v, want none", ttl)
			}
			// Close must leave the shared state client alone.
			if err := s.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			if err := state.Ping(context.Background()).Err(); err != nil {
				t.Fatalf("state client after Close() = %v, want still open", err)
			}
		})
	}
}

func TestRedisOwnURL(t *testing.T) {
	mr := miniredis.RunT(t)
	mr.RequireAuth("hunter2-redis-pw")
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("hunter2-redis-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newRedisT(t, config.RedisSink{Key: "k", URL: "redis://" + mr.Addr() + "/0", PasswordFile: config.SecretRef(pwFile)}, nil)
	if got, want := s.String(), "redis:k@"+mr.Addr(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if err := s.Deliver(context.Background(), testDelivery()); err != nil {
		t.Fatalf("Deliver() error = %v", err)
	}
	if got, _ := mr.Get("k"); got != testSecret {
		t.Errorf("k = %q, want the token", got)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	err := s.Deliver(context.Background(), testDelivery())
	if !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("Deliver() after Close() = %v, want the client closed", err)
	}
	noSecret(t, err, testSecret)
}

func TestRedisDeliverErrors(t *testing.T) {
	t.Run("wrong password", func(t *testing.T) {
		mr := miniredis.RunT(t)
		mr.RequireAuth("right")
		pwFile := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(pwFile, []byte("wrong"), 0o600); err != nil {
			t.Fatal(err)
		}
		s := newRedisT(t, config.RedisSink{Key: "k", URL: "redis://" + mr.Addr(), PasswordFile: config.SecretRef(pwFile)}, nil)
		err := s.Deliver(context.Background(), testDelivery())
		if err == nil || !strings.Contains(err.Error(), "setting redis:k@") {
			t.Fatalf("Deliver() error = %v, want an auth failure naming the sink", err)
		}
		noSecret(t, err, testSecret)
		noSecret(t, err, "wrong")
	})
	t.Run("server down", func(t *testing.T) {
		mr := miniredis.RunT(t)
		state := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
		t.Cleanup(func() { _ = state.Close() })
		mr.Close()
		err := newRedisT(t, config.RedisSink{Key: "k"}, state).Deliver(context.Background(), testDelivery())
		if err == nil {
			t.Fatal("Deliver() error = nil, want a connection error")
		}
		noSecret(t, err, testSecret)
	})
	t.Run("cancelled ctx", func(t *testing.T) {
		mr := miniredis.RunT(t)
		state := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = state.Close() })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := newRedisT(t, config.RedisSink{Key: "k"}, state).Deliver(ctx, testDelivery())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Deliver() error = %v, want context.Canceled", err)
		}
		if mr.Exists("k") {
			t.Error("key written despite a cancelled ctx")
		}
	})
}

func TestRedisNewErrors(t *testing.T) {
	mr := miniredis.RunT(t)
	state := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = state.Close() })
	tests := []struct {
		name  string
		c     config.RedisSink
		state redis.UniversalClient
		want  string
	}{
		{"no key", config.RedisSink{}, state, "key: must be set"},
		{"env format", config.RedisSink{Key: "k", Format: "env"}, state, `format "env"`},
		{"no state no url", config.RedisSink{Key: "k"}, nil, "url:"},
		{"password without url", config.RedisSink{Key: "k", PasswordFile: "/pw"}, state, "password_file: needs url"},
		{"bad url", config.RedisSink{Key: "k", URL: "http://:inline-pw-xyz@host:6379"}, nil, "url:"},
		{"bad db", config.RedisSink{Key: "k", URL: "redis://:inline-pw-xyz@host:6379/notanumber"}, nil, "url: redis: invalid database number"},
		{"bad port", config.RedisSink{Key: "k", URL: "redis://u:inline-pw-xyz@host:bad/0"}, nil, `"redis://u:xxxxx@host:bad/0": invalid port`},
		{"bad password", config.RedisSink{Key: "k", URL: "redis://u:inline-pw-xyz %@host/0"}, nil, "url: invalid password"},
		{"missing password file", config.RedisSink{Key: "k", URL: "redis://" + mr.Addr(), PasswordFile: "/nonexistent/pw"}, nil, "password_file:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(config.Sink{Redis: &tt.c}, tt.state)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() error = %v, want one containing %q", err, tt.want)
			}
			noSecret(t, err, "inline-pw-xyz")
		})
	}
}
