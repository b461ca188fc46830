package providers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Class sorts a failure into what the scheduler does about it. Errors are classified once, here.
type Class int

const (
	// Transient failures (5xx, timeouts, connection errors) are retried with backoff.
	Transient Class = iota
	// RateLimited failures (429) are retried no sooner than RetryAfter.
	RateLimited
	// Unauthorized failures (401, 403, invalid_grant) are not retried blindly: they need a person or a new
	// credential, and they alert.
	Unauthorized
	// Permanent failures (other 4xx, malformed answers that will not change) are retried slowly and alert.
	Permanent
	// NotRenewable means the token cannot be renewed any more; the scheduler recreates it.
	NotRenewable
	// NotFound means the vendor does not know the token (deleted or revoked elsewhere).
	NotFound
	// Ambiguous means the request may have been acted on but its answer was lost (timeout after sending,
	// dropped connection, unreadable body). A renew that ends like this falls back to recreate.
	Ambiguous
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case RateLimited:
		return "rate_limited"
	case Unauthorized:
		return "unauthorized"
	case Permanent:
		return "permanent"
	case NotRenewable:
		return "not_renewable"
	case NotFound:
		return "not_found"
	case Ambiguous:
		return "ambiguous"
	}
	return "unknown"
}

// APIError is a failure reported by a vendor API. Message is the vendor's own text, trimmed and free of
// secrets (providers must never copy a request body or credential into it).
type APIError struct {
	Op         string        // "POST /V4/AccessToken/Renew"
	Status     int           // HTTP status; 0 when the vendor signalled an error inside a 2xx body
	Code       string        // vendor error code (minorErrorCode, errorCode, RFC 7807 type), if any
	Message    string        // vendor message, if any
	RetryAfter time.Duration // from Retry-After, when the vendor sent one
	Class      Class         // how the scheduler treats it; set by the provider, see Classify
}

func (e *APIError) Error() string {
	s := e.Op + ": "
	if e.Status != 0 {
		s += fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	} else {
		s += "error"
	}
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ClassForStatus is the default classification of an HTTP status code.
func ClassForStatus(status int) Class {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return Unauthorized
	case status == http.StatusNotFound || status == http.StatusGone:
		return NotFound
	case status == http.StatusTooManyRequests:
		return RateLimited
	case status == http.StatusRequestTimeout || status >= 500:
		return Transient
	case status >= 400:
		return Permanent
	}
	return Transient
}

// ClassOf returns how err should be treated. Errors that are not *APIError are classified by what they are:
// context cancellation and network errors are transient, everything else permanent. An error wrapped with
// Lost is Ambiguous.
func ClassOf(err error) Class {
	var lost *lostError
	if errors.As(err, &lost) {
		return Ambiguous
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Class
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) {
		return Transient
	}
	return Permanent
}

// RetryAfterOf returns the vendor's Retry-After for err, or 0.
func RetryAfterOf(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}

// IsUnauthorized reports whether err means the credential was refused.
func IsUnauthorized(err error) bool { return ClassOf(err) == Unauthorized }

// IsNotFound reports whether err means the vendor does not know the token.
func IsNotFound(err error) bool { return ClassOf(err) == NotFound }

// IsNotRenewable reports whether err means the token must be recreated instead.
func IsNotRenewable(err error) bool { return ClassOf(err) == NotRenewable }

// IsRetryable reports whether the same call may succeed later without a person acting.
func IsRetryable(err error) bool {
	switch ClassOf(err) {
	case Transient, RateLimited, Ambiguous:
		return true
	}
	return false
}

// IsAmbiguous reports whether the vendor may have acted although no answer arrived.
func IsAmbiguous(err error) bool { return ClassOf(err) == Ambiguous }

type lostError struct{ err error }

func (e *lostError) Error() string { return "answer lost: " + e.err.Error() }
func (e *lostError) Unwrap() error { return e.err }

// Lost marks err as a request whose answer was lost after it was sent: the vendor may have acted on it.
// Providers wrap transport errors of non-idempotent calls (create, renew) with it.
func Lost(err error) error {
	if err == nil {
		return nil
	}
	return &lostError{err: err}
}
