package scheduler

import (
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/store"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func pol(mod func(*config.Resolved)) config.Resolved {
	p := config.Resolved{
		RenewBefore: config.Window{IsShare: true, Share: 0.33}, RecreateBefore: 72 * time.Hour,
		MaxAge: 30 * 24 * time.Hour, Jitter: 0, RevokeAfter: 15 * time.Minute,
		RetryMin: 30 * time.Second, RetryMax: 30 * time.Minute,
	}
	if mod != nil {
		mod(&p)
	}
	return p
}

func TestDueAt(t *testing.T) {
	hourToken := &providers.Token{IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), CreatedAt: t0}
	tests := []struct {
		name string
		now  time.Time
		tok  *providers.Token
		pol  config.Resolved
		want time.Time
	}{
		{"share of lifetime", t0, hourToken, pol(nil), t0.Add(time.Hour - time.Duration(0.33*float64(time.Hour)))},
		{"duration window", t0, hourToken, pol(func(p *config.Resolved) { p.RenewBefore = config.Window{Dur: 10 * time.Minute} }), t0.Add(50 * time.Minute)},
		{"window as long as the lifetime falls back to the emergency line", t0, hourToken,
			pol(func(p *config.Resolved) { p.RenewBefore = config.Window{Dur: 2 * time.Hour} }), t0.Add(3 * time.Minute)},
		{"emergency: under 1/20 of the lifetime left acts now", t0.Add(58 * time.Minute), hourToken,
			pol(func(p *config.Resolved) { p.RenewBefore = config.Window{Dur: time.Minute} }), t0.Add(58 * time.Minute)},
		{"not yet an emergency", t0.Add(56 * time.Minute), hourToken,
			pol(func(p *config.Resolved) { p.RenewBefore = config.Window{Dur: time.Minute} }), t0.Add(59 * time.Minute)},
		{"no expiry: created_at + max_age", t0, &providers.Token{CreatedAt: t0, IssuedAt: t0.Add(time.Hour)},
			pol(func(p *config.Resolved) { p.MaxAge = 7 * 24 * time.Hour }), t0.Add(7 * 24 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DueAt(tt.now, "tok", tt.tok, tt.pol); !got.Equal(tt.want) {
				t.Errorf("DueAt() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJitterOnlyMovesEarlierAndIsStable(t *testing.T) {
	tok := &providers.Token{IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	p := pol(func(p *config.Resolved) { p.Jitter = 0.5; p.RenewBefore = config.Window{Dur: 20 * time.Minute} })
	seen := map[time.Time]bool{}
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		due := DueAt(t0, name, tok, p)
		if due.After(t0.Add(40*time.Minute)) || !due.After(t0.Add(30*time.Minute)) {
			t.Errorf("DueAt(%s) = %v, want in (30m, 40m]", name, due.Sub(t0))
		}
		if again := DueAt(t0, name, tok, p); !again.Equal(due) {
			t.Errorf("DueAt(%s) not stable: %v then %v", name, due, again)
		}
		seen[due] = true
	}
	if len(seen) < 4 {
		t.Errorf("jitter spread 6 tokens over %d times, want at least 4", len(seen))
	}
	if j := Jitter("x"); j < 0 || j >= 1 {
		t.Errorf("Jitter() = %v, want [0,1)", j)
	}
}

func TestNext(t *testing.T) {
	cur := &providers.Token{ID: "a", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), CreatedAt: t0}
	p := pol(func(p *config.Resolved) { p.RenewBefore = config.Window{Dur: 10 * time.Minute} })
	renewable := Caps{CanRenew: true}
	tests := []struct {
		name string
		now  time.Time
		st   store.State
		caps Caps
		want Plan
	}{
		{"nothing yet: create now", t0, store.State{}, renewable, Plan{Create, t0}},
		{"intent under way: resume", t0, store.State{Current: cur, Intent: &store.Intent{Op: "renew"}}, renewable, Plan{Resume, t0}},
		{"resume waits for backoff", t0, store.State{Current: cur, Pending: cur, RetryAt: t0.Add(time.Minute)}, renewable, Plan{Resume, t0.Add(time.Minute)}},
		{"renewable: renew at due", t0, store.State{Current: cur, Generation: 1, Delivered: map[string]int64{"me": 1}}, renewable, Plan{Renew, t0.Add(50 * time.Minute)}},
		{"not renewable: recreate at due", t0, store.State{Current: cur, Generation: 1, Delivered: map[string]int64{"me": 1}}, Caps{}, Plan{Recreate, t0.Add(50 * time.Minute)}},
		{"renew stopped moving expiry: recreate", t0, store.State{Current: cur, RenewStuck: true, Generation: 1, Delivered: map[string]int64{"me": 1}}, renewable, Plan{Recreate, t0.Add(50 * time.Minute)}},
		{"renewable-until near: recreate before it", t0, store.State{Generation: 1, Delivered: map[string]int64{"me": 1}, Current: &providers.Token{
			IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), RenewableUntil: t0.Add(73 * time.Hour)}}, renewable, Plan{Renew, t0.Add(50 * time.Minute)}},
		{"renewable-until inside recreate_before: recreate now", t0, store.State{Generation: 1, Delivered: map[string]int64{"me": 1}, Current: &providers.Token{
			IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), RenewableUntil: t0.Add(71 * time.Hour)}}, renewable, Plan{Recreate, t0.Add(-time.Hour)}},
		{"a renew retried past the recreate line recreates", t0, store.State{Generation: 1, Delivered: map[string]int64{"me": 1},
			RetryAt: t0.Add(72 * time.Hour), Current: &providers.Token{IssuedAt: t0, ExpiresAt: t0.Add(100 * time.Hour), RenewableUntil: t0.Add(73 * time.Hour)}},
			renewable, Plan{Recreate, t0.Add(72 * time.Hour)}},
		{"gone at the vendor: recreate now", t0, store.State{Current: cur, Gone: true, Generation: 1, Delivered: map[string]int64{"me": 1}}, renewable, Plan{Recreate, t0}},
		{"forced rotation bypasses backoff", t0, store.State{Current: cur, ForceRotate: true, ForceNow: true, RetryAt: t0.Add(time.Hour), Generation: 1, Delivered: map[string]int64{"me": 1}}, renewable, Plan{Renew, t0}},
		{"soft rotation request waits for backoff", t0, store.State{Current: cur, ForceRotate: true, RetryAt: t0.Add(time.Hour), Generation: 1, Delivered: map[string]int64{"me": 1}}, renewable, Plan{Renew, t0.Add(time.Hour)}},
		{"failure backoff delays rotation", t0.Add(55 * time.Minute), store.State{Current: cur, RetryAt: t0.Add(56 * time.Minute), Generation: 1, Delivered: map[string]int64{"me": 1}}, renewable, Plan{Renew, t0.Add(56 * time.Minute)}},
		{"previous revoked at its deadline", t0, store.State{Current: cur, Previous: cur, PrevRevokeAt: t0.Add(15 * time.Minute), Generation: 1, Delivered: map[string]int64{"me": 1}}, renewable, Plan{Revoke, t0.Add(15 * time.Minute)}},
		{"sinks behind: deliver now", t0, store.State{Current: cur, Generation: 2, Delivered: map[string]int64{"me": 1, "other": 2}}, renewable, Plan{Deliver, t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st
			st.Name = "tok"
			if got := Next(tt.now, &st, p, tt.caps, "me"); got.Action != tt.want.Action || !got.At.Equal(tt.want.At) {
				t.Errorf("Next() = {%s %v}, want {%s %v}", got.Action, got.At.Sub(t0), tt.want.Action, tt.want.At.Sub(t0))
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	lo := func() float64 { return 0 }
	hi := func() float64 { return 0.999999 }
	tests := []struct {
		name                          string
		attempt                       int
		untilExpiry, retryAfter, want time.Duration
		r                             func() float64
	}{
		{"first attempt waits min at least", 1, 0, 0, 30 * time.Second, lo},
		{"grows exponentially", 4, 0, 0, 4 * time.Minute, hi},
		{"capped at max", 30, 0, 0, 30 * time.Minute, hi},
		{"three attempts fit before expiry", 30, 30 * time.Minute, 0, 10 * time.Minute, hi},
		{"short expiry goes below min", 1, 30 * time.Second, 0, 10 * time.Second, lo},
		{"Retry-After honoured", 1, 0, 5 * time.Minute, 5 * time.Minute, lo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Backoff(tt.attempt, 30*time.Second, 30*time.Minute, tt.untilExpiry, tt.retryAfter, tt.r)
			if d := got - tt.want; d < -10*time.Millisecond || d > 10*time.Millisecond {
				t.Errorf("Backoff() = %v, want %v", got, tt.want)
			}
		})
	}
}
