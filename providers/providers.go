// Package providers is the contract every vendor meets: the token a provider hands back, the interfaces the
// rotation engine calls, and the typed errors it sorts failures with. It holds no vendor code.
//
// A provider value manages one configured token on one vendor account (the daemon builds one per token from
// the vendor's account, so tokens of one account share its session). Methods make exactly one attempt (the
// scheduler owns retries), honour ctx, are safe for concurrent use, and never put a secret into an error.
package providers

import (
	"context"
	"time"
)

// Token is one vendor-side credential as tokend knows it. Times are the vendor's; a zero time means the vendor
// gives none (a token that never expires has a zero ExpiresAt).
type Token struct {
	ID     string // vendor-side id (the id a revoke takes)
	Name   string // vendor-side name, "tokend-<token name>-g<generation>" where the vendor takes a name
	Secret Secret // the credential consumers use; the only value delivered to sinks
	// Refresh is a credential kept inside tokend to renew or re-mint Secret (Commvault's refresh token, the
	// VCD API token behind an access token). It is never delivered. A rotating refresh credential is used by
	// one holder at a time and never presented twice.
	Refresh Secret

	IssuedAt       time.Time // when Secret was issued
	ExpiresAt      time.Time // when Secret stops working; zero: never
	RenewableUntil time.Time // after this, renewing is refused and the token must be recreated; zero: none
	CreatedAt      time.Time // when the vendor-side token was created (a renew does not change it)

	// Attrs carries non-secret vendor data the provider needs again later (a session id, a user id). It is
	// stored in Redis in clear text: never put a credential in it.
	Attrs map[string]string
}

// Status is what the vendor says about a token now.
type Status struct {
	// Gone is true when the vendor no longer knows the token (deleted or revoked behind tokend's back).
	Gone           bool
	ExpiresAt      time.Time // zero: never, or the vendor did not say
	RenewableUntil time.Time // zero: none
	// RotateNow is true when the vendor asks for a new credential before the usual time.
	RotateNow bool
}

// CreateRequest asks a provider for a new vendor-side token.
type CreateRequest struct {
	// VendorName is the name the new token carries where the vendor takes one: "tokend-<name>-g<generation>".
	VendorName string
	// Current is the token in use, if any: providers that authenticate with the managed token itself (Astra)
	// use it, and providers that must make room (Huawei's cap) never revoke it.
	Current *Token
	// Keep lists the ids of every vendor-side token tokend holds for this name (current, previous, pending).
	Keep []string
	// StartedAt is when tokend decided to create; Orphans uses it to tell its own leftovers apart.
	StartedAt time.Time
}

// Provider manages one configured token.
type Provider interface {
	// Inspect reports what the vendor says about t now. A token the vendor no longer knows is
	// Status{Gone: true} with a nil error.
	Inspect(ctx context.Context, t Token) (Status, error)
	// Create makes a new vendor-side token. The returned Token carries the secret, which the vendor shows
	// only once: the caller persists it before doing anything else.
	Create(ctx context.Context, req CreateRequest) (Token, error)
	// Revoke deletes t at the vendor. current is the token now in use (providers that authenticate with the
	// managed token use it). A token that is already gone counts as done: nil.
	Revoke(ctx context.Context, t Token, current Token) error
}

// A Renewer can extend a token in place. Providers that cannot, do not implement it. Renew returns the
// token with its new secret and times; the id stays the same. When the vendor rotates the refresh credential,
// the returned Refresh replaces the old one, which must never be presented again. A renew whose answer was
// lost returns an error for which IsAmbiguous is true; a token that cannot be renewed any more returns one
// for which IsNotRenewable is true.
type Renewer interface {
	Renew(ctx context.Context, t Token) (Token, error)
}

// A Verifier checks a new token with one cheap authenticated call before it is delivered.
type Verifier interface {
	Verify(ctx context.Context, t Token) error
}

// A Bootstrapper turns the first credential, read from the token's bootstrap_file, into a Token (looking up
// its id and times at the vendor, or exchanging it for a first access token). Providers without one take the
// bootstrap value as the secret itself, created now.
type Bootstrapper interface {
	Bootstrap(ctx context.Context, secret Secret) (Token, error)
}

// An OrphanFinder finds vendor-side tokens that an interrupted Create with req may have made, whose secret
// was never persisted: tokend revokes them on start. It must return only tokens tokend made (by req.VendorName,
// or for vendors without names by creation time after req.StartedAt) and never one whose id is in req.Keep.
type OrphanFinder interface {
	Orphans(ctx context.Context, req CreateRequest) ([]Token, error)
}

// A Checker authenticates to the vendor with the configured login (tokend check --online).
type Checker interface {
	Check(ctx context.Context) error
}
