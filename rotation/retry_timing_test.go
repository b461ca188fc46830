package rotation

import (
	"context"
	"testing"
	"time"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/providertest"
)

// blockingInspect holds Inspect until release is closed, so a test can act while a poll holds the lease.
type blockingInspect struct {
	providers.Provider
	inside  chan struct{}
	release chan struct{}
}

func (b *blockingInspect) Inspect(ctx context.Context, t providers.Token) (providers.Status, error) {
	b.inside <- struct{}{}
	<-b.release
	return b.Provider.Inspect(ctx, t)
}

// A due step that meets this process's own poll holding the lease must be put off only briefly: the
// poll's own step may fail and schedule a retry in 100 ms, and a put-off of half a lease TTL (meant
// for another instance's work) would hold that retry back past the token's expiry. Seen end to end
// (vendors_e2e_test.go): a Commvault OneTouch token whose due time fell on a poll tick expired in the
// sink after one 500.
func TestWorkDuringOwnPollIsPutOffBriefly(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour})
	h.runUntilIdle()
	b := &blockingInspect{Provider: h.tok.Provider, inside: make(chan struct{}), release: make(chan struct{})}
	h.tok.Provider = b

	done := make(chan error, 1)
	go func() { done <- h.eng.Poll(context.Background(), "tok") }()
	<-b.inside // the poll holds the lease now
	notBefore := h.eng.Work(context.Background(), "tok")
	close(b.release)
	if err := <-done; err != nil {
		t.Fatalf("Poll() = %v", err)
	}
	if wait := notBefore.Sub(h.clock.Now()); wait <= 0 || wait > time.Second {
		t.Errorf("Work() during this process's own poll put the token off for %v, want a short recheck (0 < wait ≤ 1s; lease TTL %v)",
			wait, h.eng.store.LeaseTTL())
	}

	// Another holder (another instance) still puts the token off for half a lease TTL.
	other := h.engine("host-b")
	lease, _, err := other.store.Acquire(context.Background(), "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lease.Release(context.Background()) }()
	if wait := h.eng.Work(context.Background(), "tok").Sub(h.clock.Now()); wait != h.eng.store.LeaseTTL()/2 {
		t.Errorf("Work() while another instance holds the lease put the token off for %v, want %v", wait, h.eng.store.LeaseTTL()/2)
	}
}

// A renew that fails for a reason that does not end renewing (5xx, 429, 404) is retried with backoff
// and no sooner than Retry-After, like every other step, not at once: an immediate retry ignores the
// vendor's 429 and hammers a failing vendor. Seen end to end (vendors_e2e_test.go): two renews 3 ms apart
// after two 500s.
func TestFailedRenewBacksOff(t *testing.T) {
	rateLimited := providertest.StatusError("renew", 429)
	rateLimited.RetryAfter = 30 * time.Second
	for _, tt := range []struct {
		name     string
		err      error
		minDelay time.Duration
	}{
		{"503", providertest.StatusError("renew", 503), policy().RetryMin},
		{"429 with Retry-After", rateLimited, 30 * time.Second},
		{"404", providertest.StatusError("renew", 404), policy().RetryMin},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour, Renewable: true})
			h.runUntilIdle()
			s, _ := h.eng.Snapshot("tok")
			h.clock.Advance(s.NextAt.Sub(h.clock.Now()))
			h.fake.FailNext(providertest.OpRenew, tt.err, 1)
			h.eng.Work(context.Background(), "tok")
			s, _ = h.eng.Snapshot("tok")
			if s.ConsecutiveFailures != 1 {
				t.Fatalf("after a failed renew: %d failures, want 1", s.ConsecutiveFailures)
			}
			if wait := s.NextAt.Sub(h.clock.Now()); wait < tt.minDelay {
				t.Errorf("after a %s on renew the next action (%s) is in %v, want at least %v", tt.name, s.NextAction, wait, tt.minDelay)
			}
			if s.NextAction != "renew" {
				t.Errorf("after a %s on renew the next action is %q, want renew again", tt.name, s.NextAction)
			}
		})
	}
}

// A refused step (401, 403, other 4xx) is retried slowly, at retry.max, but never so slowly that fewer
// than three attempts fit before the current token expires (DESIGN.md section 2): waiting longer than the
// token lives lets it expire while the vendor may answer the next attempt. Seen end to end
// (vendors_e2e_test.go): two 404s on a Huawei create, each followed by retry.max, outlived the token.
func TestRefusedStepRetriesBeforeExpiry(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour})
	h.tok.Policy.RetryMax = 2 * time.Hour
	h.runUntilIdle()
	s, _ := h.eng.Snapshot("tok")
	h.clock.Advance(s.NextAt.Sub(h.clock.Now())) // recreate due: 10 minutes before expiry
	h.fake.FailNext(providertest.OpCreate, providertest.StatusError("create", 403), 1)
	h.eng.Work(context.Background(), "tok")
	s, _ = h.eng.Snapshot("tok")
	if s.State != StateFailed {
		t.Errorf("after a 403: state %s, want failed (it needs a person)", s.State)
	}
	untilExpiry := s.ExpiresAt.Sub(h.clock.Now())
	if wait := s.NextAt.Sub(h.clock.Now()); wait <= 0 || wait > untilExpiry/3 {
		t.Errorf("after a 403 with %v left the next attempt is in %v, want within a third of that", untilExpiry, wait)
	}
}

// The check behind TestWorkDuringOwnPollIsPutOffBriefly must also hold when this process's poll let go
// of the lease between the Acquire that found it held and the check (seen end to end: the poll's own
// step ended a few milliseconds after the loop's Acquire, and the token was put off for 15 s).
func TestLocalLeaseHolderSeenAfterItLeft(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{})
	mark, others, leave := h.eng.enter("tok") // the loop's Work starts
	if others != 0 || h.eng.localSince("tok", mark) {
		t.Fatalf("enter() = others %d, localSince %v, want nothing else under way", others, h.eng.localSince("tok", mark))
	}
	_, _, leavePoll := h.eng.enter("tok") // a poll starts (and takes the lease before the Work's Acquire)
	leavePoll()                           // and ends before the Work looks
	if !h.eng.localSince("tok", mark) {
		t.Errorf("localSince() = false after a poll started and ended during the Work, want true")
	}
	leave()
	mark, _, leave = h.eng.enter("tok")
	if h.eng.localSince("tok", mark) {
		t.Errorf("localSince() = true for a Work with nothing else under way since it started")
	}
	leave()
	if n := len(h.eng.active); n != 0 {
		t.Errorf("%d tokens still recorded as worked on after every call ended", n)
	}
}
