package rotation

import (
	"time"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/store"
)

// VendorClock is what tokend knows of a vendor's clock (the daemon measures it from the Date headers of the
// vendor's answers). Some vendors state a token's times on their own clock; when that clock is ahead of ours
// by s, a token it says expires at T dies at our T−s. The engine stores and reports the vendor's times as the
// vendor states them (DESIGN.md section 11) and plans on them translated onto our clock.
type VendorClock interface {
	// OnOurs returns t with the times the vendor states on its own clock moved onto ours. A time is never
	// moved later: a vendor behind ours gives its tokens longer than its times say, and tokend plans early.
	OnOurs(t providers.Token) providers.Token
	// Theirs returns our time at as the vendor's clock reads it, for a request that compares it with the
	// vendor's own times (the orphan search by creation time).
	Theirs(at time.Time) time.Time
}

// planned is st as the scheduler must see it: the current token's vendor times on our clock. st is not
// changed.
func (t *Token) planned(st *store.State) *store.State {
	if t.Clock == nil || st.Current == nil {
		return st
	}
	cp, cur := *st, t.Clock.OnOurs(*st.Current)
	cp.Current = &cur
	return &cp
}

// vendorTime is at on the vendor's clock.
func (t *Token) vendorTime(at time.Time) time.Time {
	if t.Clock == nil || at.IsZero() {
		return at
	}
	return t.Clock.Theirs(at)
}
