package rotation

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/store"
)

// Poll asks the vendor what it says about the token now and records the difference (expiry moved, token
// deleted or revoked elsewhere, rotation asked for), then does whatever step is due, so that a token
// deleted behind tokend's back is recreated at once and this instance's sinks converge. A token another
// instance is working on is skipped.
func (e *Engine) Poll(ctx context.Context, name string) error {
	t, ok := e.Tokens()[name]
	if !ok {
		return nil
	}
	lease, st, err := e.store.Acquire(ctx, name)
	if errors.Is(err, store.ErrLeaseHeld) {
		return nil
	}
	if err != nil {
		return err
	}
	perr := e.inspect(ctx, t, lease, st)
	_ = lease.Release(context.WithoutCancel(ctx))
	e.Work(ctx, name)
	return perr
}

func (e *Engine) inspect(ctx context.Context, t *Token, lease *store.Lease, st *store.State) error {
	cur := st.Current
	if cur == nil || st.Intent != nil || st.Pending != nil {
		return nil
	}
	start := e.now()
	status, err := t.Provider.Inspect(providers.WithOperation(ctx, "inspect"), *cur)
	r := &run{e: e, t: t, lease: lease, st: st, ctx: ctx}
	if err != nil {
		r.observe("inspect", start, err)
		return fmt.Errorf("inspecting %s: %w", t.Config.Name, err)
	}
	c := new(store.Change)
	changed := false
	switch {
	case status.Gone && !st.Gone:
		e.log.Warn("token was deleted or revoked at the vendor behind tokend's back; recreating", "token", t.Config.Name)
		r.observe("inspect", start, errGone)
		c.SetGone(true)
		changed = true
	case !status.Gone:
		r.observe("inspect", start, nil)
		updated := *cur
		if !status.ExpiresAt.IsZero() && !status.ExpiresAt.Equal(cur.ExpiresAt) {
			updated.ExpiresAt, changed = status.ExpiresAt, true
		}
		if !status.RenewableUntil.IsZero() && !status.RenewableUntil.Equal(cur.RenewableUntil) {
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
	if changed {
		return lease.Apply(ctx, c)
	}
	return nil
}

// errGone labels the inspect metric of a token found deleted at the vendor.
var errGone = &providers.APIError{Op: "inspect", Status: 404, Message: "token gone", Class: providers.NotFound}
