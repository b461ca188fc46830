package rotation

import (
	"testing"
	"time"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/providertest"
)

// aheadClock is a vendor clock ahead of ours by d, for every time of a token.
type aheadClock time.Duration

func (d aheadClock) OnOurs(t providers.Token) providers.Token {
	t.ExpiresAt = t.ExpiresAt.Add(-time.Duration(d))
	return t
}
func (d aheadClock) Theirs(at time.Time) time.Time { return at.Add(time.Duration(d)) }

// TestPlansOnOurClockReportsTheVendors: with the vendor's clock five minutes ahead, the renewal is planned
// five minutes earlier than the vendor's expiry alone says, and what tokend stores and reports is the
// vendor's expiry as stated (DESIGN.md section 11).
func TestPlansOnOurClockReportsTheVendors(t *testing.T) {
	const skew = 5 * time.Minute
	plan := func(c VendorClock) Snapshot {
		h := newHarness(t, providertest.FakeOptions{Lifetime: 2 * time.Hour, Renewable: true})
		h.tok.Clock = c
		h.runUntilIdle()
		s, _ := h.eng.Snapshot("tok")
		if st := h.state(); !st.Current.ExpiresAt.Equal(s.ExpiresAt) {
			t.Fatalf("stored expiry %v, reported %v: want the same", st.Current.ExpiresAt, s.ExpiresAt)
		}
		return s
	}
	plain, skewed := plan(nil), plan(aheadClock(skew))
	if !skewed.ExpiresAt.Equal(plain.ExpiresAt) {
		t.Errorf("reported expiry with the vendor ahead = %v, want the vendor's %v", skewed.ExpiresAt, plain.ExpiresAt)
	}
	if got := plain.NextAt.Sub(skewed.NextAt); got != skew {
		t.Errorf("renewal planned %v earlier with the vendor %v ahead, want %v (plain %v, skewed %v)",
			got, skew, skew, plain.NextAt, skewed.NextAt)
	}
}
