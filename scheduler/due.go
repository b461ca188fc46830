// Package scheduler decides when tokend acts on each token and runs the loop that acts on time.
//
// The decisions are pure functions of now, the token's stored state and its resolved policy (Next, DueAt,
// Backoff), so they are tested without clocks or sleeps. The Loop sleeps until the earliest due time in the
// shared due index, wakes early when asked (tokend rotate, another instance's change), and hands due tokens
// to a bounded pool of workers. Polls of each provider's list/get endpoints run on cron schedules.
package scheduler

import (
	"hash/fnv"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/store"
)

// Action is what tokend does next for a token.
type Action string

// The actions, in the order they win a tie.
const (
	None     Action = ""
	Resume   Action = "resume"   // a rotation is under way (intent or pending): carry it on
	Create   Action = "create"   // no token yet: bootstrap it or create the first one
	Deliver  Action = "deliver"  // this instance's sinks are behind the current generation
	Revoke   Action = "revoke"   // the previous token's grace period is over
	Renew    Action = "renew"    // extend the current token in place
	Recreate Action = "recreate" // replace the current token with a new one
)

// Caps are what the token's provider can do.
type Caps struct {
	CanRenew bool // the provider implements providers.Renewer for this kind
}

// Plan is the next action for a token and when it is due.
type Plan struct {
	Action Action
	At     time.Time
}

// Jitter returns the token's fixed jitter fraction in [0, 1), derived from its name so that tokens issued
// together spread out the same way on every instance and every restart.
func Jitter(name string) float64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return float64(h.Sum64()>>11) / float64(1<<53)
}

// Lifetime returns how long t was issued for, or 0 when it does not expire or its issue time is unknown.
func Lifetime(t *providers.Token) time.Duration {
	if t.ExpiresAt.IsZero() {
		return 0
	}
	issued := t.IssuedAt
	if issued.IsZero() {
		issued = t.CreatedAt
	}
	if issued.IsZero() || !t.ExpiresAt.After(issued) {
		return 0
	}
	return t.ExpiresAt.Sub(issued)
}

// DueAt returns when the current token t of the named token should be rotated (DESIGN.md section 11):
// expires_at − renew_before − j for a token with a vendor expiry (renew_before as a share is taken of the
// lifetime), and created_at + max_age − j for one without. j ∈ [0, jitter × window) only moves the action
// earlier. When less than 1/20 of the lifetime is left, the token is due now.
func DueAt(now time.Time, name string, t *providers.Token, pol config.Resolved) time.Time {
	if t.ExpiresAt.IsZero() {
		base := t.CreatedAt
		if base.IsZero() {
			base = t.IssuedAt
		}
		if base.IsZero() {
			base = now
		}
		j := time.Duration(Jitter(name) * pol.Jitter * float64(pol.MaxAge))
		return base.Add(pol.MaxAge - j)
	}
	life := Lifetime(t)
	window := pol.RenewBefore.Of(life)
	if !pol.RenewBefore.IsShare && life > 0 && window >= life {
		// A window as long as the lifetime would rotate at once, forever: act at the emergency line instead.
		window = life - life/20
	}
	j := time.Duration(Jitter(name) * pol.Jitter * float64(window))
	due := t.ExpiresAt.Add(-window - j)
	if life > 0 && t.ExpiresAt.Sub(now) < life/20 && due.After(now) {
		due = now
	}
	return due
}

// Next returns the token's next action. st is the stored state, instance this instance's id.
func Next(now time.Time, st *store.State, pol config.Resolved, caps Caps, instance string) Plan {
	retry := func(at time.Time) time.Time {
		if st.RetryAt.After(at) {
			return st.RetryAt
		}
		return at
	}
	if st.Intent != nil || st.Pending != nil {
		return Plan{Resume, retry(now)}
	}
	if st.Current == nil {
		return Plan{Create, retry(now)}
	}
	best := Plan{}
	consider := func(a Action, at time.Time) {
		if best.Action == None || at.Before(best.At) {
			best = Plan{a, at}
		}
	}
	if st.Generation > st.Delivered[instance] {
		consider(Deliver, retry(now))
	}
	if st.Previous != nil {
		consider(Revoke, retry(st.PrevRevokeAt))
	}
	op, at := rotation(now, st, pol, caps)
	if !st.ForceNow {
		at = retry(at) // tokend rotate --now bypasses backoff
	}
	consider(op, at)
	return best
}

// rotation returns whether the current token is renewed or recreated next, and when.
func rotation(now time.Time, st *store.State, pol config.Resolved, caps Caps) (Action, time.Time) {
	cur := st.Current
	due := DueAt(now, st.Name, cur, pol)
	if st.Gone || st.ForceRotate {
		due = now
	}
	// A retry after a failure happens no sooner than RetryAt: decide renew or recreate for that moment,
	// not for the due time it was put off from (a renew pushed past the recreate line must recreate).
	if !st.ForceNow && st.RetryAt.After(due) {
		due = st.RetryAt
	}
	renewable := caps.CanRenew && !st.RenewStuck && !st.Gone && !cur.ExpiresAt.IsZero()
	if !renewable {
		return Recreate, due
	}
	if !cur.RenewableUntil.IsZero() {
		// Recreate while the token still works: once renewable-until is near, a renew buys nothing.
		recreateAt := cur.RenewableUntil.Add(-pol.RecreateBefore)
		if !due.Before(recreateAt) {
			return Recreate, recreateAt
		}
	}
	return Renew, due
}

// Backoff returns how long to wait before attempt number attempt (1 for the first retry): exponential
// from min, capped at max, with full jitter (r returns a uniform value in [0, 1)), never so long that
// fewer than three attempts fit before the token expires (untilExpiry; ≤ 0 when unknown or past), and
// never shorter than the vendor's Retry-After.
func Backoff(attempt int, min, max, untilExpiry, retryAfter time.Duration, r func() float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	ceiling := max
	if attempt < 63 && min<<(attempt-1) > 0 && min<<(attempt-1) < max {
		ceiling = min << (attempt - 1)
	}
	if untilExpiry > 0 && ceiling > untilExpiry/3 {
		ceiling = untilExpiry / 3
	}
	lo := min
	if lo > ceiling {
		lo = ceiling
	}
	d := lo + time.Duration(r()*float64(ceiling-lo))
	if retryAfter > d {
		d = retryAfter
	}
	return d
}
