package rotation

import (
	"context"
	"testing"
	"time"

	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/store/storetest"
)

// A poll of a token the vendor reports unchanged and that is not due takes the lease (with the state)
// and gives it up: two round trips, no write, no Work. Vendor times finer than the store's milliseconds
// are no change (the harness clock is moved off a whole millisecond so the vendor's expiry is).
func TestPollOfUnchangedTokenOnlyTakesAndGivesUpTheLease(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour, Renewable: true})
	h.clock.Advance(1234567 * time.Nanosecond)
	h.runUntilIdle()
	before := h.state()
	hook := &storetest.RoundTrips{}
	h.rdb.AddHook(hook)
	if err := h.eng.Poll(context.Background(), "tok"); err != nil {
		t.Fatalf("Poll() = %v", err)
	}
	if n := hook.RTT.Load(); n != 2 {
		t.Errorf("Poll() of an unchanged token that is not due: %d round trips, want 2 (acquire, release)", n)
	}
	after := h.state()
	if after.Generation != before.Generation || !after.Current.ExpiresAt.Equal(before.Current.ExpiresAt) ||
		!after.NextAt.Equal(before.NextAt) || after.NextAction != before.NextAction {
		t.Errorf("Poll() of an unchanged token changed its state: %+v, was %+v", after, before)
	}
	if s, _ := h.eng.Snapshot("tok"); s.State != StateCurrent || !s.NextAt.Equal(before.NextAt) {
		t.Errorf("after Poll() the view says %s, next at %v; want current, %v", s.State, s.NextAt, before.NextAt)
	}
}

// A poll that finds the token due does the step under the lease it took for the inspect: one
// acquisition (the fence counts them), not a release and a second acquire.
func TestPollDoesTheDueStepUnderTheLeaseItHolds(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour, Renewable: true})
	h.runUntilIdle()
	s, _ := h.eng.Snapshot("tok")
	h.clock.Advance(s.NextAt.Sub(h.clock.Now())) // the renew is due
	before := h.state()
	if err := h.eng.Poll(context.Background(), "tok"); err != nil {
		t.Fatalf("Poll() = %v", err)
	}
	after := h.state()
	if after.Generation != before.Generation+1 || h.fake.Stats().Renews != 1 {
		t.Fatalf("Poll() of a due token: generation %d → %d, %d renews; want the renew done", before.Generation,
			after.Generation, h.fake.Stats().Renews)
	}
	if n := after.Fence - before.Fence; n != 1 {
		t.Errorf("Poll() of a due token took the lease %d times, want once", n)
	}
	if !after.NextAt.After(h.clock.Now()) {
		t.Errorf("after the poll's step the next action is at %v, not after now (%v)", after.NextAt, h.clock.Now())
	}
	h.checkSinkValid()
}

// A poll that learns a new expiry from the vendor reschedules the token from it, in the same lease.
func TestPollReschedulesFromAnExpiryTheVendorMoved(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour})
	h.runUntilIdle()
	before := h.state()
	h.fake.Expire(before.Current.ID) // the vendor now says it expires now: the emergency rule makes it due
	if err := h.eng.Poll(context.Background(), "tok"); err != nil {
		t.Fatalf("Poll() = %v", err)
	}
	after := h.state()
	if after.Generation != before.Generation+1 || h.fake.Stats().Creates != 2 {
		t.Fatalf("Poll() after the vendor moved the expiry to now: generation %d → %d, %d creates; want a recreate",
			before.Generation, after.Generation, h.fake.Stats().Creates)
	}
	if n := after.Fence - before.Fence; n != 1 {
		t.Errorf("Poll() took the lease %d times, want once", n)
	}
	h.checkSinkValid()
}
