package reliability

import (
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/scheduler"
	"github.com/tokend/tokend/store"
)

// TestOverdueRenewPastRecreateLineRecreates is the regression test of a double rotation the vendor-faults
// scenario found (commvault-all, generation 4 -> 6 in 11 ms: a renew, then at once a recreate). A renew
// was planned because its due time came before renewable_until - recreate_before, failures pushed the
// attempt past that line, and the retry still renewed; the renewed token was then past the line and was
// recreated at once. DESIGN.md section 2: renew only while renewable_until - now > recreate_before; so an
// attempt made after the line must recreate.
func TestOverdueRenewPastRecreateLineRecreates(t *testing.T) {
	enabled(t)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	pol := config.Resolved{
		RenewBefore: config.Window{IsShare: true, Share: 0.5}, RecreateBefore: 6 * time.Second,
		MaxAge: 10 * time.Second, RevokeAfter: 2 * time.Second, RetryMin: 200 * time.Millisecond, RetryMax: 2 * time.Second,
	}
	cur := &providers.Token{ID: "4", IssuedAt: t0, ExpiresAt: t0.Add(18 * time.Second), CreatedAt: t0.Add(-25 * time.Second),
		RenewableUntil: t0.Add(15500 * time.Millisecond)} // renew due at t0+9s (50%); recreate line at t0+9.5s
	now := t0.Add(11 * time.Second) // the retry, after the line
	st := &store.State{Name: "commvault-all", Generation: 4, Current: cur, Failures: 3, RetryAt: now,
		Delivered: map[string]int64{"rel-0": 4}}
	plan := scheduler.Next(now, st, pol, scheduler.Caps{CanRenew: true}, "rel-0")
	if plan.Action != scheduler.Recreate {
		t.Errorf("at %v, %v after the recreate line, the plan is %s at %v; want recreate (a renew now is followed by a recreate at once)",
			now.Sub(t0), now.Sub(cur.RenewableUntil.Add(-pol.RecreateBefore)), plan.Action, plan.At.Sub(t0))
	}
}
