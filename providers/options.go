package providers

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Options are what the daemon hands every vendor account it builds.
type Options struct {
	// HTTP is the client for every vendor request. The daemon builds it per provider with the provider's CA,
	// timeout, rate limit and request metrics; tests may pass an httptest server's client.
	HTTP *http.Client
	// Logger receives the provider's logs (never a secret). Nil means discard.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Clock returns o.Now, or time.Now when it is nil.
func (o Options) Clock() func() time.Time {
	if o.Now == nil {
		return time.Now
	}
	return o.Now
}

type opKey struct{}

// WithOperation labels the requests made with ctx with a rotation operation (login, list, inspect, create,
// renew, verify, revoke), so the shared HTTP transport can count them per operation.
func WithOperation(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, opKey{}, op)
}

// OperationFrom returns the operation set by WithOperation, or "other".
func OperationFrom(ctx context.Context) string {
	if op, ok := ctx.Value(opKey{}).(string); ok {
		return op
	}
	return "other"
}
