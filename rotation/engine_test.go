package rotation

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/sinks"
	"github.com/tokend/tokend/store"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// flakySink fails while fail > 0, then records what it got.
type flakySink struct {
	mu   sync.Mutex
	fail int
	got  []string
}

func (s *flakySink) Deliver(_ context.Context, d sinks.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return errors.New("disk full")
	}
	s.got = append(s.got, d.Secret.Reveal())
	return nil
}
func (s *flakySink) String() string { return "flaky" }
func (s *flakySink) Close() error   { return nil }
func (s *flakySink) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) == 0 {
		return ""
	}
	return s.got[len(s.got)-1]
}

type harness struct {
	t     *testing.T
	clock *clock
	fake  *providertest.Fake
	rdb   *redis.Client
	eng   *Engine
	tok   *Token
	sink  *flakySink
	dir   string
}

func policy() config.Resolved {
	return config.Resolved{
		RenewBefore: config.Window{Dur: 10 * time.Minute}, RecreateBefore: 2 * time.Hour, MaxAge: 24 * time.Hour,
		RevokeAfter: 15 * time.Minute, RetryMin: time.Second, RetryMax: time.Minute,
	}
}

func newHarness(t *testing.T, fo providertest.FakeOptions, extraSinks ...config.Sink) *harness {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	fo.Now = c.Now
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	h := &harness{t: t, clock: c, fake: providertest.NewFake(fo), rdb: rdb, sink: &flakySink{}, dir: t.TempDir()}
	h.tok = &Token{Config: config.Token{Name: "tok", Kind: "api_token"}, Policy: policy(), Provider: h.fake.Provider(),
		ProviderName: "fake", Sinks: []sinks.Sink{h.sink}}
	for _, sc := range extraSinks {
		s, err := sinks.New(sc, rdb)
		if err != nil {
			t.Fatal(err)
		}
		h.tok.Sinks = append(h.tok.Sinks, s)
	}
	h.eng = h.engine("host-a")
	return h
}

func (h *harness) engine(instance string) *Engine {
	st, err := store.New(h.rdb, []byte("0123456789abcdef0123456789abcdef"), store.Options{Instance: instance, LeaseTTL: 10 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	return New(st, map[string]*Token{"tok": h.tok}, Options{Now: h.clock.Now})
}

func (h *harness) state() *store.State {
	h.t.Helper()
	st, err := h.eng.store.Get(context.Background(), "tok")
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

// runUntilIdle works the token until its next action is in the future (at most 20 steps).
func (h *harness) runUntilIdle() {
	h.t.Helper()
	for range 20 {
		h.eng.Work(context.Background(), "tok")
		s, _ := h.eng.Snapshot("tok")
		if s.NextAt.After(h.clock.Now()) {
			return
		}
	}
	h.t.Fatalf("token still due after 20 steps: %+v", h.state())
}

// advanceToNext moves the clock to the token's next action and runs it.
func (h *harness) advanceToNext() Snapshot {
	h.t.Helper()
	s, _ := h.eng.Snapshot("tok")
	h.clock.Advance(s.NextAt.Sub(h.clock.Now()))
	h.runUntilIdle()
	s, _ = h.eng.Snapshot("tok")
	return s
}

// checkSinkValid asserts every sink holds the current secret and the vendor accepts it.
func (h *harness) checkSinkValid() {
	h.t.Helper()
	got := h.sink.last()
	if !h.fake.Valid(got) {
		h.t.Fatalf("the sink holds a secret the vendor does not accept")
	}
	if cur := h.state().Current; cur == nil || cur.Secret.Reveal() != got {
		h.t.Fatalf("the sink does not hold the current secret")
	}
}

func TestLifecycleRenewThenRecreateThenRevoke(t *testing.T) {
	script := filepath.Join(t.TempDir(), "hook.sh")
	execOut := filepath.Join(t.TempDir(), "exec.out")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncat > "+execOut+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour, Renewable: true, RenewableFor: 5 * time.Hour},
		config.Sink{File: &config.FileSink{Path: filepath.Join(dir, "tok.token")}},
		config.Sink{Redis: &config.RedisSink{Key: "secrets:tok"}},
		config.Sink{Exec: &config.ExecSink{Command: []string{script}}},
	)
	h.runUntilIdle()
	st := h.state()
	if st.Generation != 1 || st.Current == nil || h.fake.Stats().Creates != 1 {
		t.Fatalf("after first run: gen=%d creates=%d", st.Generation, h.fake.Stats().Creates)
	}
	h.checkSinkValid()
	firstID := st.Current.ID

	// Renewed in place before expiry, ten minutes ahead.
	s := h.advanceToNext()
	if h.fake.Stats().Renews != 1 || s.Generation != 2 || h.state().Current.ID != firstID || h.state().Previous != nil {
		t.Fatalf("after due time: renews=%d gen=%d", h.fake.Stats().Renews, s.Generation)
	}
	if got := h.clock.Now(); !got.Equal(h.state().Current.IssuedAt) || got.Sub(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)) != 50*time.Minute {
		t.Fatalf("renewed at %v, want 50m after creation", got)
	}
	h.checkSinkValid()
	for _, f := range []string{filepath.Join(dir, "tok.token"), execOut} {
		b, err := os.ReadFile(f)
		if err != nil || string(b) != h.sink.last() {
			t.Fatalf("%s does not hold the current token (%v)", f, err)
		}
	}
	if v, _ := h.rdb.Get(context.Background(), "secrets:tok").Result(); v != h.sink.last() {
		t.Fatalf("redis sink does not hold the current token")
	}

	// Renew until renewable-until (5h) minus recreate_before (2h) is near: then recreate.
	for i := 0; i < 6 && h.fake.Stats().Creates == 1; i++ {
		h.advanceToNext()
		h.checkSinkValid()
	}
	st = h.state()
	if h.fake.Stats().Creates != 2 || st.Current.ID == firstID || st.Previous == nil || st.Previous.ID != firstID {
		t.Fatalf("expected a recreate: creates=%d cur=%s prev=%v", h.fake.Stats().Creates, st.Current.ID, st.Previous)
	}
	if !h.fake.Valid(st.Previous.Secret.Reveal()) {
		t.Fatalf("previous token revoked before its grace period")
	}
	if want := st.LastSuccess.Add(15 * time.Minute); !st.PrevRevokeAt.Equal(want) {
		t.Fatalf("revoke deadline = %v, want promotion + revoke_after = %v", st.PrevRevokeAt, want)
	}
	prevSecret := st.Previous.Secret.Reveal()
	s = h.advanceToNext()
	if h.fake.Valid(prevSecret) || h.state().Previous != nil || h.fake.Stats().Revokes != 1 {
		t.Fatalf("previous not revoked at its deadline: revokes=%d", h.fake.Stats().Revokes)
	}
	if s.State != StateCurrent {
		t.Fatalf("state = %s, want current", s.State)
	}
}

func TestRenewThatDoesNotMoveExpiryRecreates(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour, Renewable: true, RenewNoMove: true})
	h.runUntilIdle()
	h.advanceToNext() // renew: expiry unchanged
	if !h.state().RenewStuck {
		t.Fatalf("renew that did not move expiry was not noticed")
	}
	if s, _ := h.eng.Snapshot("tok"); s.NextAction != "recreate" {
		t.Fatalf("next action = %s, want recreate", s.NextAction)
	}
	h.advanceToNext()
	if h.fake.Stats().Creates != 2 || h.state().RenewStuck {
		t.Fatalf("creates = %d, want 2 and renew_stuck cleared", h.fake.Stats().Creates)
	}
	h.checkSinkValid()
}

func TestFailedDeliveryKeepsOldTokenAndRetries(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour})
	h.runUntilIdle()
	old := h.sink.last()
	h.sink.fail = 2
	h.advanceToNext() // recreate: vendor made it, delivery fails
	st := h.state()
	if st.Pending == nil || st.Generation != 1 || st.Failures == 0 || !h.fake.Valid(old) {
		t.Fatalf("after failed delivery: pending=%v gen=%d failures=%d", st.Pending != nil, st.Generation, st.Failures)
	}
	h.advanceToNext() // second failure
	h.advanceToNext() // delivered, promoted
	st = h.state()
	if st.Generation != 2 || st.Pending != nil || h.fake.Stats().Creates != 2 || !h.fake.Valid(old) {
		t.Fatalf("after retries: gen=%d creates=%d (one create for all attempts)", st.Generation, h.fake.Stats().Creates)
	}
	h.checkSinkValid()
}

func TestLostCreateAnswerRevokesTheOrphan(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour})
	h.runUntilIdle()
	h.fake.LoseNext(providertest.OpCreate, 1)
	h.advanceToNext() // the vendor made a token; tokend never saw its secret
	if in := h.state().Intent; in == nil || !in.Lost {
		t.Fatalf("intent after lost answer = %+v, want Lost", in)
	}
	h.advanceToNext() // resume: revoke the orphan, create again
	st := h.state()
	if st.Generation != 2 || h.fake.Stats().Creates != 3 {
		t.Fatalf("gen=%d creates=%d, want 2 and 3", st.Generation, h.fake.Stats().Creates)
	}
	for _, tk := range h.fake.Tokens() {
		if tk.ID != st.Current.ID && (st.Previous == nil || tk.ID != st.Previous.ID) {
			t.Errorf("vendor-side token %s is held by nobody: leaked", tk.ID)
		}
	}
	h.checkSinkValid()
}

func TestLostRenewRecreatesWithoutReplay(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true})
	h.runUntilIdle()
	h.fake.LoseNext(providertest.OpRenew, 1)
	h.advanceToNext()
	h.runUntilIdle()
	h.advanceToNext()
	if s := h.fake.Stats(); s.Replays != 0 || s.Creates != 2 {
		t.Fatalf("replays=%d creates=%d, want 0 and 2", s.Replays, s.Creates)
	}
	h.checkSinkValid()
}

func TestTransientFirstFailureIsNotFailed(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour})
	h.fake.FailNext(providertest.OpCreate, providertest.StatusError("create", 503), 1)
	h.eng.Work(context.Background(), "tok")
	if s, _ := h.eng.Snapshot("tok"); s.State != StateRotating || s.ConsecutiveFailures != 1 {
		t.Fatalf("snapshot after a 503 on the first create = %+v, want rotating with 1 failure", s)
	}
}

func TestUnauthorizedFailsAndAlerts(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour})
	h.fake.FailNext(providertest.OpCreate, providertest.StatusError("create", 401), 1)
	h.eng.Work(context.Background(), "tok")
	s, _ := h.eng.Snapshot("tok")
	if s.State != StateFailed || s.ConsecutiveFailures != 1 || !strings.Contains(s.LastError, "401") {
		t.Fatalf("snapshot = %+v, want failed with a 401", s)
	}
	if wait := s.NextAt.Sub(h.clock.Now()); wait < time.Minute {
		t.Fatalf("retry in %v, want no sooner than retry.max", wait)
	}
	h.advanceToNext()
	if s, _ := h.eng.Snapshot("tok"); s.State != StateCurrent || s.ConsecutiveFailures != 0 {
		t.Fatalf("after recovery = %+v", s)
	}
}

func TestTwoEnginesRotateOncePerDueTime(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour, Renewable: true})
	other := h.engine("host-b")
	h.runUntilIdle()
	for round := range 5 {
		s, _ := h.eng.Snapshot("tok")
		h.clock.Advance(s.NextAt.Sub(h.clock.Now()))
		var wg sync.WaitGroup
		for _, e := range []*Engine{h.eng, other, h.eng, other} {
			wg.Add(1)
			go func() { defer wg.Done(); e.Work(context.Background(), "tok") }()
		}
		wg.Wait()
		h.runUntilIdle()
		_, _ = other.Announced(context.Background(), "tok") // brings host-b's view and sinks up to date
		other.Work(context.Background(), "tok")
		if got := h.fake.Stats().Renews; got != round+1 {
			t.Fatalf("round %d: renews = %d, want %d", round, got, round+1)
		}
	}
}

func TestNoSecretInSnapshotsOrErrors(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true})
	h.runUntilIdle()
	cur := h.state().Current
	// A provider that breaks its contract and quotes the credential in an error is scrubbed.
	h.fake.FailNext(providertest.OpRenew, &providers.APIError{Op: "renew", Status: 500, Class: providers.Transient,
		Message: "bad token " + cur.Secret.Reveal() + " refresh " + cur.Refresh.Reveal()}, 1)
	s, _ := h.eng.Snapshot("tok")
	h.clock.Advance(s.NextAt.Sub(h.clock.Now()))
	h.eng.Work(context.Background(), "tok")
	dump := fmt.Sprintf("%+v %#v", h.eng.Snapshots(), h.eng.Snapshots())
	for _, s := range []string{cur.Secret.Reveal(), cur.Refresh.Reveal()} {
		if strings.Contains(dump, s) {
			t.Fatalf("a secret appears in the snapshots: %s", dump)
		}
	}
	if !strings.Contains(dump, "<secret>") {
		t.Fatalf("the failure was not recorded: %s", dump)
	}
}

// currentRecorder wraps a provider and records the Current of every create request.
type currentRecorder struct {
	providers.Provider
	mu   sync.Mutex
	seen []string
}

func (c *currentRecorder) Create(ctx context.Context, req providers.CreateRequest) (providers.Token, error) {
	c.mu.Lock()
	id := ""
	if req.Current != nil {
		id = req.Current.ID
	}
	c.seen = append(c.seen, id)
	c.mu.Unlock()
	return c.Provider.Create(ctx, req)
}

func TestGoneCurrentRecreatesWithThePreviousToken(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour})
	rec := &currentRecorder{Provider: h.fake.Provider()}
	h.tok.Provider = rec
	h.runUntilIdle()
	h.advanceToNext() // recreate: generation 2, generation 1 waits for revocation
	st := h.state()
	if st.Previous == nil {
		t.Fatal("no previous token after a recreate")
	}
	prevID, curID := st.Previous.ID, st.Current.ID
	h.fake.Delete(curID) // deleted in the vendor's UI
	if err := h.eng.Poll(context.Background(), "tok"); err != nil {
		t.Fatal(err)
	}
	h.runUntilIdle()
	if got := rec.seen[len(rec.seen)-1]; got != prevID {
		t.Fatalf("create after the current token was deleted authenticated with %q, want the previous token %q", got, prevID)
	}
	if st := h.state(); st.Gone || st.Generation != 3 {
		t.Fatalf("after recreate: gone=%v gen=%d, want recreated as generation 3", st.Gone, st.Generation)
	}
	h.checkSinkValid()
}

func TestConvergeDeliversWithoutTheLease(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour})
	other := h.engine("host-b")
	otherSink := &flakySink{}
	other.SetTokens(map[string]*Token{"tok": {Config: h.tok.Config, Policy: h.tok.Policy, Provider: h.tok.Provider,
		ProviderName: "fake", Sinks: []sinks.Sink{otherSink}}})
	h.runUntilIdle()
	// host-a holds the lease (as while it finishes a rotation); host-b still brings its own sinks up.
	lease, _, err := h.eng.store.Acquire(context.Background(), "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(context.Background())
	if err := other.Converge(context.Background(), "tok"); err != nil {
		t.Fatal(err)
	}
	if got := otherSink.last(); got == "" || got != h.sink.last() || !h.fake.Valid(got) {
		t.Fatalf("host-b's sink holds %q, want the current token", got)
	}
	if st := h.state(); st.Delivered["host-b"] != st.Generation {
		t.Fatalf("host-b's delivered generation = %d, want %d", st.Delivered["host-b"], st.Generation)
	}
	// Nothing new: no second delivery.
	if err := other.Converge(context.Background(), "tok"); err != nil || len(otherSink.got) != 1 {
		t.Fatalf("second Converge delivered again (%d deliveries, %v)", len(otherSink.got), err)
	}
}

// TestAnnouncedStepsOnlyWhenDue: an announcement of a promote already delivered here asks for no step; one
// of another instance's promote delivers this instance's sinks and asks for none either; a rotation
// request asks for one.
func TestAnnouncedStepsOnlyWhenDue(t *testing.T) {
	h := newHarness(t, providertest.FakeOptions{Lifetime: time.Hour, Renewable: true})
	h.runUntilIdle()
	ctx := context.Background()
	if due, err := h.eng.Announced(ctx, "tok"); err != nil || due {
		t.Fatalf("Announced() of its own promote = %v, %v; want no step due", due, err)
	}

	otherSink := &flakySink{}
	otherTok := *h.tok
	otherTok.Sinks = []sinks.Sink{otherSink}
	st, err := store.New(h.rdb, []byte("0123456789abcdef0123456789abcdef"), store.Options{Instance: "host-b"})
	if err != nil {
		t.Fatal(err)
	}
	other := New(st, map[string]*Token{"tok": &otherTok}, Options{Now: h.clock.Now})
	if due, err := other.Announced(ctx, "tok"); err != nil || due {
		t.Fatalf("Announced() on another instance = %v, %v; want its sinks delivered and no step due", due, err)
	}
	if got := otherSink.last(); got == "" || got != h.state().Current.Secret.Reveal() {
		t.Fatal("the other instance's sink does not hold the current token after the announcement")
	}

	if err := h.eng.store.RequestRotation(ctx, "tok", h.clock.Now(), false); err != nil {
		t.Fatal(err)
	}
	if due, err := h.eng.Announced(ctx, "tok"); err != nil || !due {
		t.Fatalf("Announced() after a rotation request = %v, %v; want a step due", due, err)
	}
}
