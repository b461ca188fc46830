package daemon

import (
	"time"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/vcd"
	"github.com/tokend/tokend/rotation"
)

// Vendor clocks.
//
// Some vendors state a token's times as absolute timestamps on their own clock (Commvault's
// tokenExpiryTimestamp, Huawei's expiration_time, VCD's expirationTimeUtc), others as lifetimes tokend adds
// to its own clock (VCD's expires_in). When a vendor's clock is ahead of ours by s, a token it says expires
// at T stops working at our T−s: planning the renewal on T would leave the sinks holding a dead token for up
// to s. tokend stores and reports the vendor's times as the vendor states them (DESIGN.md section 11), and the
// engine plans on them translated onto our clock by the skew measured now (rotation.VendorClock): s earlier
// when the vendor is ahead by minSkew or more, unchanged otherwise. A vendor behind our clock really gives its
// tokens longer than its times say, but the measured skew is only good to about a second, so tokend never
// moves a time later: it plans early instead. Because the stored times are never translated, a skew that
// changes (a restart before the first reading, a corrected clock) only moves the plan, never the token. The
// skew is measured from the Date header of the vendor's answers (metrics.ClockSkew).

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

// vendorClock is one provider's rotation.VendorClock: the fields its vendor states on its own clock, and
// the skew meter measures.
type vendorClock struct {
	provider string
	fields   timeFields
	meter    skewMeter
}

// newVendorClock returns the clock of provider, of type typ, for tokens of kind; nil when none of the
// token's times is the vendor's (or nothing measures the skew).
func newVendorClock(provider, typ, kind string, meter skewMeter) rotation.VendorClock {
	fields := vendorClockFields(typ, kind)
	if fields == 0 || meter == nil {
		return nil
	}
	return vendorClock{provider: provider, fields: fields, meter: meter}
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

// OnOurs moves the vendor's times in t earlier by the skew when the vendor is ahead; never later.
func (c vendorClock) OnOurs(t providers.Token) providers.Token {
	d := max(c.skew(), 0)
	if d == 0 {
		return t
	}
	for _, f := range []struct {
		bit timeFields
		at  *time.Time
	}{{expiresAt, &t.ExpiresAt}, {renewableUntil, &t.RenewableUntil}, {issuedAt, &t.IssuedAt}, {createdAt, &t.CreatedAt}} {
		if c.fields&f.bit != 0 && !f.at.IsZero() {
			*f.at = f.at.Add(-d)
		}
	}
	return t
}

// Theirs is at on the vendor's clock, by the skew either way: the orphan search compares it with the
// vendor's creation times (with a slack far wider than the skew's error), and a vendor behind us must not
// hide tokend's own leftovers.
func (c vendorClock) Theirs(at time.Time) time.Time {
	if c.fields&createdAt == 0 {
		return at
	}
	return at.Add(c.skew())
}
