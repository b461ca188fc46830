// Package sinks delivers a token's consumer credential to the programs that use it: a file written
// atomically, a Redis key, or a command that reads the token on its standard input (DESIGN.md §5, §11).
//
// Only Delivery.Secret is secret. No sink puts it into an error: every error a sink returns is checked for the
// secret and, should one ever contain it, its text is redacted.
package sinks

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
)

// Delivery is what a sink writes: the consumer credential and its metadata. Only Secret is secret.
type Delivery struct {
	Name, Provider, Kind string
	Secret               providers.Secret
	IssuedAt, ExpiresAt  time.Time // zero -> null / empty
	Generation           int64
}

// A Sink delivers a token to its consumers. Deliver is idempotent (delivering the same generation twice is
// harmless), safe for concurrent use with different tokens, honours ctx, and never puts the secret in an error.
type Sink interface {
	Deliver(ctx context.Context, d Delivery) error
	String() string // "file:/var/lib/x.token", "redis:secrets:x", "exec:/usr/local/bin/reload" — no secret
	Close() error
}

// New builds a sink from config. state is the state Redis, used by redis sinks without their own url; it may
// be nil when no such sink is configured. Errors name the offending key (mode, owner, format, ...) so the
// caller can prefix its path; they never contain a secret.
func New(s config.Sink, state redis.UniversalClient) (Sink, error) {
	n := 0
	for _, set := range []bool{s.File != nil, s.Redis != nil, s.Exec != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("exactly one of file, redis and exec must be set")
	}
	switch {
	case s.File != nil:
		return newFile(*s.File)
	case s.Redis != nil:
		return newRedis(*s.Redis, state)
	default:
		return newExec(*s.Exec)
	}
}

// redact returns err unchanged unless its text contains secret; then it returns an error whose text has every
// occurrence replaced by "<secret>". The redacted error still answers errors.Is like err (so callers can tell
// context.DeadlineExceeded apart) but not errors.As, which would hand the original text back.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), secret, "<secret>"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }
