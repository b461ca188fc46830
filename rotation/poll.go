package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/scheduler"
	"github.com/tokend/tokend/store"
)

// Poll asks the vendor what it says about the token now and records the difference (expiry moved, token
// deleted or revoked elsewhere, rotation asked for), then, under the lease it already holds, does whatever
// step is due, so that a token deleted behind tokend's back is recreated at once and this instance's sinks
// converge. A token the vendor reports unchanged and that is not due costs two round trips (take the
// lease with the state, give it up): every token is polled on every provider poll, and a full Work
// (another acquire, re-read and schedule) for each was most of the CPU of a poll pass. A token another
// instance is working on is skipped.
func (e *Engine) Poll(ctx context.Context, name string) error {
	t, ok := e.Tokens()[name]
	if !ok {
		return nil
	}
	_, _, leave := e.enter(name)
	defer leave()
	lease, st, err := e.store.Acquire(ctx, name)
	if errors.Is(err, store.ErrLeaseHeld) {
		return nil
	}
	if err != nil {
		return err
	}
	changed, perr := e.inspect(ctx, t, lease, st)
	now := e.now()
	plan := scheduler.Next(now, t.planned(st), t.Policy, caps(t), e.store.Instance())
	if changed || !plan.At.After(now) {
		// The inspect (vendor calls, the rate limiter) may have used much of the lease's TTL: renew it before
		// the step, which keeps it renewed from then on, or leave the token to whoever holds it now.
		if err := lease.Extend(ctx); err != nil {
			return errors.Join(perr, fmt.Errorf("polling %s: %w", name, err))
		}
		e.stepLeased(ctx, t, lease, st)
		return perr
	}
	// Nothing to do: give the lease up. The due index already holds this plan unless something outside a
	// step moved it; then the same round trip puts it back.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if st.NextAction == string(plan.Action) && st.NextAt.UnixMilli() == plan.At.UnixMilli() {
		err = lease.Release(bg)
	} else {
		err = lease.ScheduleAndRelease(bg, string(plan.Action), plan.At)
	}
	if err != nil {
		e.log.Error("releasing lease after poll", "token", name, "err", err)
	}
	st.NextAction, st.NextAt = string(plan.Action), plan.At
	e.setView(t, st)
	return perr
}

// inspect asks the vendor about the current token and records what changed, in Redis and in st. It
// reports whether it changed anything.
func (e *Engine) inspect(ctx context.Context, t *Token, lease *store.Lease, st *store.State) (bool, error) {
	cur := st.Current
	if cur == nil || st.Intent != nil || st.Pending != nil {
		return false, nil
	}
	start := e.now()
	status, err := t.Provider.Inspect(providers.WithOperation(ctx, "inspect"), *cur)
	r := &run{e: e, t: t, lease: lease, st: st, ctx: ctx}
	if err != nil {
		r.observe("inspect", start, err)
		return false, fmt.Errorf("inspecting %s: %w", t.Config.Name, err)
	}
	c := new(store.Change)
	changed := false
	updated := *cur
	switch {
	case status.Gone && !st.Gone:
		e.log.Warn("token was deleted or revoked at the vendor behind tokend's back; recreating", "token", t.Config.Name)
		r.observe("inspect", start, errGone)
		c.SetGone(true)
		changed = true
	case !status.Gone:
		r.observe("inspect", start, nil)
		// The store keeps times in milliseconds: a vendor time with more precision is not a change.
		if !status.ExpiresAt.IsZero() && status.ExpiresAt.UnixMilli() != cur.ExpiresAt.UnixMilli() {
			updated.ExpiresAt, changed = status.ExpiresAt, true
		}
		if !status.RenewableUntil.IsZero() && status.RenewableUntil.UnixMilli() != cur.RenewableUntil.UnixMilli() {
			updated.RenewableUntil, changed = status.RenewableUntil, true
		}
		if changed {
			c.SetCurrent(&updated, st.Generation)
		}
		if status.RotateNow && !st.ForceRotate {
			c.RequestSoftRotation()
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	if err := lease.Apply(ctx, c); err != nil {
		return false, err
	}
	// The step that follows decides from st: make it what Redis now holds.
	switch {
	case status.Gone:
		st.Gone = true
	default:
		st.Current = &updated
		st.ForceRotate = st.ForceRotate || status.RotateNow
	}
	return true, nil
}

// errGone labels the inspect metric of a token found deleted at the vendor.
var errGone = &providers.APIError{Op: "inspect", Status: 404, Message: "token gone", Class: providers.NotFound}

// activity is this process's Work and Poll calls of one token: how many are under way, and the stamp of
// the latest to start.
type activity struct {
	n    int
	last uint64
}

// enter records a Work or Poll call of name starting in this process. It returns the call's stamp, how
// many others were under way, and leave, to call when the call ends.
func (e *Engine) enter(name string) (mark uint64, others int, leave func()) {
	e.activeMu.Lock()
	defer e.activeMu.Unlock()
	a := e.active[name]
	if a == nil {
		a = &activity{}
		e.active[name] = a
	}
	e.activeSeq++
	others, a.n, a.last = a.n, a.n+1, e.activeSeq
	return a.last, others, func() {
		e.activeMu.Lock()
		defer e.activeMu.Unlock()
		if a.n--; a.n <= 0 {
			delete(e.active, name)
		}
	}
}

// localSince reports whether another Work or Poll call of name is under way in this process, or started
// after the call stamped mark (which must still be under way).
func (e *Engine) localSince(name string, mark uint64) bool {
	e.activeMu.Lock()
	defer e.activeMu.Unlock()
	a := e.active[name]
	return a != nil && (a.n > 1 || a.last != mark)
}
