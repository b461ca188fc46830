package daemon

import (
	"context"
	"time"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/vcd"
)

// Vendor clocks.
//
// Some vendors state a token's times as absolute timestamps on their own clock (Commvault's
// tokenExpiryTimestamp, Huawei's expiration_time, VCD's expirationTimeUtc), others as lifetimes tokend adds
// to its own clock (VCD's expires_in). When a vendor's clock is ahead of ours by s, a token it says expires
// at T stops working at our T−s: planning the renewal on T would leave the sinks holding a dead token for up
// to s. So every time a vendor states on its own clock is translated onto ours at the boundary, before the
// engine stores or plans with it: s earlier when the vendor is ahead by minSkew or more, unchanged otherwise.
// A vendor behind our clock really gives its tokens longer than its times say, but the measured skew is only
// good to about a second, so tokend never moves a time later: it plans early instead. Times tokend hands back
// to the provider are translated back, so that a provider's own checks compare the vendor's times with the
// vendor's times. The skew is measured from the Date header of the vendor's answers (metrics.ClockSkew).

// minSkew is the skew below which the Date header's resolution (one second) and the round trip make a
// reading noise: smaller skews are not acted on.
const minSkew = 2 * time.Second

// skewMeter tells how far a provider's clock is ahead of ours; *metrics.Metrics is one.
type skewMeter interface {
	ClockSkew(provider string) (time.Duration, bool)
}

// timeFields is a set of a token's times.
type timeFields uint8

const (
	expiresAt timeFields = 1 << iota
	renewableUntil
	issuedAt
	createdAt
)

// vendorClockFields returns which times of a token of kind a provider of type typ takes from the vendor's
// absolute timestamps (../shared/api/*.md). Times a provider takes from our clock (the moment an answer
// arrived, or that moment plus a lifetime) are not in the set.
func vendorClockFields(typ, kind string) timeFields {
	switch typ {
	case "commvault":
		// tokenExpiryTimestamp, renewableUntilTimestamp and refreshTokenExpiryTimestamp, in epoch seconds;
		// IssuedAt is when the answer arrived.
		return expiresAt | renewableUntil
	case "huawei-idc":
		// creation_time and expiration_time, in epoch milliseconds.
		return expiresAt | issuedAt | createdAt
	case "vcd":
		// A proxy token's expirationTimeUtc. An access token expires expires_in after its grant answered, on
		// our clock, and an API token has no time of the vendor's.
		if kind == vcd.KindProxyToken {
			return expiresAt
		}
	case "astra":
		// metadata.creationTimestamp, the base of max_age: Astra tokens never expire.
		return issuedAt | createdAt
	}
	return 0
}

// vendorClock translates one provider's times between its clock and ours.
type vendorClock struct {
	provider string
	fields   timeFields
	meter    skewMeter
}

// skew returns how far the vendor's clock is ahead of ours as measured now (negative: behind), 0 when it is
// unknown or within minSkew of ours.
func (c vendorClock) skew() time.Duration {
	s, ok := c.meter.ClockSkew(c.provider)
	if !ok || s.Abs() < minSkew {
		return 0
	}
	return s
}

// ahead returns how much earlier on our clock the vendor's times fall: the skew when the vendor is ahead,
// 0 when it is behind (never move a time later).
func ahead(skew time.Duration) time.Duration { return max(skew, 0) }

// move shifts the non-zero times of t in c.fields by d.
func (c vendorClock) move(t providers.Token, d time.Duration) providers.Token {
	if d == 0 {
		return t
	}
	for _, f := range []struct {
		bit timeFields
		at  *time.Time
	}{{expiresAt, &t.ExpiresAt}, {renewableUntil, &t.RenewableUntil}, {issuedAt, &t.IssuedAt}, {createdAt, &t.CreatedAt}} {
		if c.fields&f.bit != 0 && !f.at.IsZero() {
			*f.at = f.at.Add(d)
		}
	}
	return t
}

// ours translates a token the provider returned onto our clock, for a vendor ahead by d.
func (c vendorClock) ours(t providers.Token, d time.Duration) providers.Token { return c.move(t, -d) }

// theirs translates a token tokend holds back to the times the vendor stated, for a vendor ahead by d.
func (c vendorClock) theirs(t providers.Token, d time.Duration) providers.Token { return c.move(t, d) }

// request translates a CreateRequest for the provider: its current token back to the vendor's times, and
// StartedAt onto the vendor's clock, by the skew either way (Orphans compares it with the vendor's creation
// times, with a slack far wider than the skew's error; a vendor behind us must not hide tokend's own
// leftovers).
func (c vendorClock) request(req providers.CreateRequest, skew time.Duration) providers.CreateRequest {
	if req.Current != nil {
		cur := c.theirs(*req.Current, ahead(skew))
		req.Current = &cur
	}
	if c.fields&createdAt != 0 && !req.StartedAt.IsZero() {
		req.StartedAt = req.StartedAt.Add(skew)
	}
	return req
}

// onOurClock wraps p, a provider of type typ for tokens of kind, so that the times it returns are on our
// clock (see above), using meter's skew of provider. A provider none of whose times are the vendor's is
// returned as it is. The wrapper has exactly the optional abilities of p (Renewer, Verifier, Bootstrapper,
// OrphanFinder), since the engine finds them by type assertion.
func onOurClock(p providers.Provider, provider, typ, kind string, meter skewMeter) providers.Provider {
	fields := vendorClockFields(typ, kind)
	if fields == 0 || meter == nil {
		return p
	}
	s := &skewed{inner: p, clock: vendorClock{provider: provider, fields: fields, meter: meter}}
	var abilities int
	if _, ok := p.(providers.Renewer); ok {
		abilities |= 1
	}
	if _, ok := p.(providers.Verifier); ok {
		abilities |= 2
	}
	if _, ok := p.(providers.Bootstrapper); ok {
		abilities |= 4
	}
	if _, ok := p.(providers.OrphanFinder); ok {
		abilities |= 8
	}
	return withAbilities[abilities](s)
}

// withAbilities[set] narrows a *skewed to the abilities in set (1 Renewer, 2 Verifier, 4 Bootstrapper,
// 8 OrphanFinder).
var withAbilities = [16]func(s *skewed) providers.Provider{
	func(s *skewed) providers.Provider { return struct{ providers.Provider }{s} },
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Renewer
		}{s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Verifier
		}{s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Renewer
			providers.Verifier
		}{s, s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Bootstrapper
		}{s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Renewer
			providers.Bootstrapper
		}{s, s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Verifier
			providers.Bootstrapper
		}{s, s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Renewer
			providers.Verifier
			providers.Bootstrapper
		}{s, s, s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.OrphanFinder
		}{s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Renewer
			providers.OrphanFinder
		}{s, s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Verifier
			providers.OrphanFinder
		}{s, s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Renewer
			providers.Verifier
			providers.OrphanFinder
		}{s, s, s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Bootstrapper
			providers.OrphanFinder
		}{s, s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Renewer
			providers.Bootstrapper
			providers.OrphanFinder
		}{s, s, s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Verifier
			providers.Bootstrapper
			providers.OrphanFinder
		}{s, s, s, s}
	},
	func(s *skewed) providers.Provider {
		return struct {
			providers.Provider
			providers.Renewer
			providers.Verifier
			providers.Bootstrapper
			providers.OrphanFinder
		}{s, s, s, s, s}
	},
}

// skewed is a provider whose vendor times are translated onto our clock. It has every optional method;
// onOurClock hides the ones its inner provider lacks, and only those it has are ever called.
type skewed struct {
	inner providers.Provider
	clock vendorClock
}

func (s *skewed) Inspect(ctx context.Context, t providers.Token) (providers.Status, error) {
	d := ahead(s.clock.skew())
	st, err := s.inner.Inspect(ctx, s.clock.theirs(t, d))
	if s.clock.fields&expiresAt != 0 && !st.ExpiresAt.IsZero() {
		st.ExpiresAt = st.ExpiresAt.Add(-d)
	}
	if s.clock.fields&renewableUntil != 0 && !st.RenewableUntil.IsZero() {
		st.RenewableUntil = st.RenewableUntil.Add(-d)
	}
	return st, err
}

func (s *skewed) Create(ctx context.Context, req providers.CreateRequest) (providers.Token, error) {
	skew := s.clock.skew()
	t, err := s.inner.Create(ctx, s.clock.request(req, skew))
	// The create answer's own Date is the latest reading: a vendor first met here is translated at once.
	return s.clock.ours(t, ahead(s.clock.skew())), err
}

func (s *skewed) Revoke(ctx context.Context, t providers.Token, current providers.Token) error {
	d := ahead(s.clock.skew())
	return s.inner.Revoke(ctx, s.clock.theirs(t, d), s.clock.theirs(current, d))
}

func (s *skewed) Renew(ctx context.Context, t providers.Token) (providers.Token, error) {
	n, err := s.inner.(providers.Renewer).Renew(ctx, s.clock.theirs(t, ahead(s.clock.skew())))
	return s.clock.ours(n, ahead(s.clock.skew())), err
}

func (s *skewed) Verify(ctx context.Context, t providers.Token) error {
	return s.inner.(providers.Verifier).Verify(ctx, s.clock.theirs(t, ahead(s.clock.skew())))
}

func (s *skewed) Bootstrap(ctx context.Context, secret providers.Secret) (providers.Token, error) {
	t, err := s.inner.(providers.Bootstrapper).Bootstrap(ctx, secret)
	return s.clock.ours(t, ahead(s.clock.skew())), err
}

func (s *skewed) Orphans(ctx context.Context, req providers.CreateRequest) ([]providers.Token, error) {
	out, err := s.inner.(providers.OrphanFinder).Orphans(ctx, s.clock.request(req, s.clock.skew()))
	d := ahead(s.clock.skew())
	for i := range out {
		out[i] = s.clock.ours(out[i], d)
	}
	return out, err
}
