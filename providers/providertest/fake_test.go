package providertest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/providers"
)

// clock is a settable clock for the Fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func create(t *testing.T, f *Fake, name string) providers.Token {
	t.Helper()
	tok, err := f.Create(t.Context(), providers.CreateRequest{VendorName: name})
	if err != nil {
		t.Fatalf("Create(%s) error = %v", name, err)
	}
	return tok
}

func renewer(t *testing.T, f *Fake) providers.Renewer {
	t.Helper()
	r, ok := f.Provider().(providers.Renewer)
	if !ok {
		t.Fatalf("Provider() of a renewable fake is not a Renewer")
	}
	return r
}

func TestFakeProviderRenewsOnlyWhenRenewable(t *testing.T) {
	for _, renewable := range []bool{false, true} {
		p := NewFake(FakeOptions{Renewable: renewable}).Provider()
		if _, ok := p.(providers.Renewer); ok != renewable {
			t.Errorf("Provider() with Renewable=%v implements Renewer = %v", renewable, ok)
		}
		for name, ok := range map[string]bool{
			"Verifier":     is[providers.Verifier](p),
			"OrphanFinder": is[providers.OrphanFinder](p),
			"Bootstrapper": is[providers.Bootstrapper](p),
		} {
			if !ok {
				t.Errorf("Provider() with Renewable=%v does not implement %s", renewable, name)
			}
		}
	}
}

func is[T any](v any) bool { _, ok := v.(T); return ok }

func TestFakeInvalidateOnRenew(t *testing.T) {
	f := NewFake(FakeOptions{Lifetime: time.Hour, Renewable: true, InvalidateOnRenew: true})
	t0 := create(t, f, "a")
	if _, err := renewer(t, f).Renew(t.Context(), t0); err != nil {
		t.Fatal(err)
	}
	if f.Valid(t0.Secret.Reveal()) {
		t.Errorf("Valid(secret before renew) = true, want false with InvalidateOnRenew")
	}
}

func TestFakeRotatingRefreshReplayKillsToken(t *testing.T) {
	f := NewFake(FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true})
	r := renewer(t, f)
	t0 := create(t, f, "a")
	t1, err := r.Renew(t.Context(), t0)
	if err != nil {
		t.Fatalf("Renew() error = %v", err)
	}
	if t1.Refresh.Reveal() == t0.Refresh.Reveal() {
		t.Fatalf("Renew() kept the refresh credential; RotatingRefresh must rotate it")
	}
	if !f.Valid(t0.Secret.Reveal()) {
		t.Errorf("Valid(secret before renew) = false, want true until its own expiry")
	}
	_, err = r.Renew(t.Context(), t0) // the old pair again
	if !providers.IsUnauthorized(err) {
		t.Fatalf("Renew(replayed refresh) error = %v, want unauthorized", err)
	}
	st := f.Stats()
	if st.Replays != 1 || st.Live != 0 {
		t.Errorf("Stats() after a replay = %+v, want Replays 1 and Live 0 (the token is killed)", st)
	}
	if f.Valid(t1.Secret.Reveal()) {
		t.Errorf("Valid(latest secret) = true after a replay killed the token")
	}
}

func TestFakeStaticRefreshMayBePresentedAgain(t *testing.T) {
	f := NewFake(FakeOptions{Lifetime: time.Hour, Renewable: true})
	r := renewer(t, f)
	t0 := create(t, f, "a")
	for i := range 3 {
		t1, err := r.Renew(t.Context(), t0)
		if err != nil {
			t.Fatalf("Renew() #%d with the same refresh error = %v", i, err)
		}
		if t1.Refresh.Reveal() != t0.Refresh.Reveal() {
			t.Fatalf("Renew() changed a non-rotating refresh credential")
		}
	}
	if st := f.Stats(); st.Replays != 0 || st.Renews != 3 {
		t.Errorf("Stats() = %+v, want Replays 0, Renews 3", st)
	}
	_, err := r.Renew(t.Context(), providers.Token{ID: t0.ID, Refresh: providers.NewSecret("wrong")})
	if !providers.IsUnauthorized(err) {
		t.Errorf("Renew(wrong refresh) error = %v, want unauthorized", err)
	}
	if f.Stats().Replays != 0 {
		t.Errorf("a wrong refresh credential counted as a replay")
	}
}

func TestFakeRenewTimes(t *testing.T) {
	tests := []struct {
		name        string
		opts        FakeOptions
		advance     time.Duration
		wantErr     func(error) bool
		wantExpires func(created time.Time, renewed time.Time) time.Time
	}{
		{
			name:        "moves expiry by the lifetime",
			opts:        FakeOptions{Lifetime: time.Hour, Renewable: true},
			advance:     30 * time.Minute,
			wantExpires: func(_, renewed time.Time) time.Time { return renewed.Add(time.Hour) },
		},
		{
			name:        "RenewNoMove keeps expiry",
			opts:        FakeOptions{Lifetime: time.Hour, Renewable: true, RenewNoMove: true},
			advance:     30 * time.Minute,
			wantExpires: func(created, _ time.Time) time.Time { return created.Add(time.Hour) },
		},
		{
			name:    "past renewable-until is not renewable",
			opts:    FakeOptions{Lifetime: time.Hour, Renewable: true, RenewableFor: 20 * time.Minute},
			advance: 30 * time.Minute,
			wantErr: providers.IsNotRenewable,
		},
		{
			name:    "an expired token is not renewable",
			opts:    FakeOptions{Lifetime: time.Hour, Renewable: true},
			advance: 2 * time.Hour,
			wantErr: providers.IsNotRenewable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			tt.opts.Now = c.Now
			f := NewFake(tt.opts)
			tok := create(t, f, "a")
			created := c.Now()
			if tt.opts.RenewableFor > 0 && !tok.RenewableUntil.Equal(created.Add(tt.opts.RenewableFor)) {
				t.Errorf("Create() RenewableUntil = %v, want %v", tok.RenewableUntil, created.Add(tt.opts.RenewableFor))
			}
			c.Advance(tt.advance)
			got, err := renewer(t, f).Renew(t.Context(), tok)
			if tt.wantErr != nil {
				if !tt.wantErr(err) {
					t.Fatalf("Renew() error = %v (class %v)", err, providers.ClassOf(err))
				}
				if f.Stats().NotRenewable != 1 {
					t.Errorf("Stats().NotRenewable = %d, want 1", f.Stats().NotRenewable)
				}
				return
			}
			if err != nil {
				t.Fatalf("Renew() error = %v", err)
			}
			if want := tt.wantExpires(created, c.Now()); !got.ExpiresAt.Equal(want) {
				t.Errorf("Renew() ExpiresAt = %v, want %v", got.ExpiresAt, want)
			}
			if !got.IssuedAt.Equal(c.Now()) || !got.CreatedAt.Equal(created) {
				t.Errorf("Renew() IssuedAt, CreatedAt = %v, %v, want %v, %v", got.IssuedAt, got.CreatedAt, c.Now(), created)
			}
			if !f.Valid(got.Secret.Reveal()) {
				t.Errorf("Valid(renewed secret) = false")
			}
		})
	}
}

func TestFakeNotRenewableRenew(t *testing.T) {
	f := NewFake(FakeOptions{Lifetime: time.Hour})
	tok := create(t, f, "a")
	_, err := (&RenewingFake{f}).Renew(t.Context(), tok)
	if !providers.IsNotRenewable(err) {
		t.Errorf("Renew() on a non-renewable fake error = %v, want not renewable", err)
	}
}

func TestFakeExpiry(t *testing.T) {
	c := newClock()
	f := NewFake(FakeOptions{Now: c.Now, Lifetime: time.Minute})
	tok := create(t, f, "a")
	if !tok.ExpiresAt.Equal(c.Now().Add(time.Minute)) {
		t.Errorf("Create() ExpiresAt = %v, want now + 1m", tok.ExpiresAt)
	}
	c.Advance(time.Minute)
	if f.Valid(tok.Secret.Reveal()) {
		t.Errorf("Valid(expired secret) = true")
	}
	if err := f.Verify(t.Context(), tok); !providers.IsUnauthorized(err) {
		t.Errorf("Verify(expired) error = %v, want unauthorized", err)
	}
	if st := f.Stats(); st.Live != 1 || st.Expired != 1 {
		t.Errorf("Stats() = %+v, want Live 1, Expired 1 (expired tokens exist until revoked)", st)
	}
	if st, err := f.Inspect(t.Context(), tok); err != nil || st.Gone {
		t.Errorf("Inspect(expired) = %+v, %v, want it to exist", st, err)
	}

	never := NewFake(FakeOptions{Now: c.Now})
	tok = create(t, never, "b")
	c.Advance(100 * 365 * 24 * time.Hour)
	if !tok.ExpiresAt.IsZero() || !never.Valid(tok.Secret.Reveal()) {
		t.Errorf("Lifetime 0: ExpiresAt = %v, Valid after 100 years = %v; want zero and true",
			tok.ExpiresAt, never.Valid(tok.Secret.Reveal()))
	}
}

func TestFakeCap(t *testing.T) {
	f := NewFake(FakeOptions{Cap: 2})
	a := create(t, f, "a")
	create(t, f, "b")
	_, err := f.Create(t.Context(), providers.CreateRequest{VendorName: "c"})
	var ae *providers.APIError
	if !errors.As(err, &ae) || ae.Code != "cap_reached" || providers.ClassOf(err) != providers.Permanent {
		t.Fatalf("Create() at the cap error = %v, want a permanent cap_reached APIError", err)
	}
	if st := f.Stats(); st.Creates != 2 || st.Live != 2 {
		t.Errorf("Stats() = %+v, want Creates 2, Live 2", st)
	}
	if err := f.Revoke(t.Context(), a, providers.Token{}); err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	create(t, f, "c")
}

func TestFakeFaults(t *testing.T) {
	f := NewFake(FakeOptions{})
	tok := create(t, f, "a")
	boom := StatusError(OpRevoke, 503)
	f.FailNext(OpRevoke, boom, 2)
	if _, err := f.Inspect(t.Context(), tok); err != nil {
		t.Fatalf("Inspect() error = %v; a revoke fault must not hit inspect", err)
	}
	for i := range 2 {
		if err := f.Revoke(t.Context(), tok, providers.Token{}); !errors.Is(err, boom) {
			t.Fatalf("Revoke() #%d error = %v, want the injected one", i, err)
		}
	}
	if !f.Valid(tok.Secret.Reveal()) {
		t.Errorf("a failed revoke acted: the secret is no longer valid")
	}
	if err := f.Revoke(t.Context(), tok, providers.Token{}); err != nil {
		t.Fatalf("third Revoke() error = %v, want nil after 2 faults", err)
	}

	f.FailNext("", StatusError("", 429), 1)
	_, err := f.Create(t.Context(), providers.CreateRequest{VendorName: "b"})
	if providers.ClassOf(err) != providers.RateLimited || providers.RetryAfterOf(err) != time.Second {
		t.Errorf("Create() after an any-op 429 = %v, want rate limited with RetryAfter 1s", err)
	}
	if st := f.Stats(); st.Failures != 3 || st.Creates != 1 {
		t.Errorf("Stats() = %+v, want Failures 3, Creates 1", st)
	}
}

func TestFakeLostCreateLeavesAnOrphan(t *testing.T) {
	f := NewFake(FakeOptions{})
	f.LoseNext(OpCreate, 1)
	req := providers.CreateRequest{VendorName: "tokend-x-g2", StartedAt: time.Now()}
	_, err := f.Create(t.Context(), req)
	if !providers.IsAmbiguous(err) || !errors.Is(err, ErrAnswerLost) {
		t.Fatalf("Create() with a lost answer error = %v, want ambiguous", err)
	}
	if st := f.Stats(); st.Creates != 1 || st.Live != 1 {
		t.Fatalf("Stats() = %+v: a lost create still acts at the vendor", st)
	}
	create(t, f, "tokend-other-g1")
	orphans, err := f.Orphans(t.Context(), req)
	if err != nil || len(orphans) != 1 || orphans[0].Name != req.VendorName {
		t.Fatalf("Orphans() = %+v, %v, want the one lost token", orphans, err)
	}
	if !orphans[0].Secret.IsZero() || !orphans[0].Refresh.IsZero() {
		t.Errorf("Orphans() returned a secret; secrets are one-time")
	}
	req.Keep = []string{orphans[0].ID}
	if orphans, _ := f.Orphans(t.Context(), req); len(orphans) != 0 {
		t.Errorf("Orphans() with the id kept = %+v, want none", orphans)
	}
}

func TestFakeLostRenewRotatedTheRefresh(t *testing.T) {
	f := NewFake(FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true})
	r := renewer(t, f)
	tok := create(t, f, "a")
	f.LoseNext(OpRenew, 1)
	if _, err := r.Renew(t.Context(), tok); !providers.IsAmbiguous(err) {
		t.Fatalf("Renew() with a lost answer error = %v, want ambiguous", err)
	}
	// Presenting the pair again is what tokend must never do: the vendor counts it and kills the token.
	if _, err := r.Renew(t.Context(), tok); !providers.IsUnauthorized(err) {
		t.Fatalf("Renew() after a lost renew error = %v, want unauthorized", err)
	}
	if st := f.Stats(); st.Replays != 1 || st.Live != 0 {
		t.Errorf("Stats() = %+v, want Replays 1, Live 0", st)
	}
}

func TestFakeHookBlocksAtAPreciseMoment(t *testing.T) {
	f := NewFake(FakeOptions{})
	entered, release := make(chan struct{}), make(chan struct{})
	f.Hook(OpCreate, func() error { close(entered); <-release; return nil })
	done := make(chan error, 1)
	go func() {
		_, err := f.Create(context.Background(), providers.CreateRequest{VendorName: "a"})
		done <- err
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the hook was not called")
	}
	if st := f.Stats(); st.Creates != 0 || st.Live != 0 {
		t.Errorf("Stats() while the hook blocks = %+v, want nothing created yet", st)
	}
	if got := f.Tokens(); len(got) != 0 {
		t.Errorf("Tokens() while the hook blocks = %+v, want none", got)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	if st := f.Stats(); st.Creates != 1 {
		t.Errorf("Stats().Creates = %d after release, want 1", st.Creates)
	}

	stop := errors.New("stop here")
	f.Hook(OpCreate, func() error { return stop })
	if _, err := f.Create(t.Context(), providers.CreateRequest{VendorName: "b"}); !errors.Is(err, stop) {
		t.Errorf("Create() with a failing hook error = %v, want the hook's", err)
	}
	f.Hook(OpCreate, nil)
	create(t, f, "c")
}

func TestFakeHookThenCancel(t *testing.T) {
	f := NewFake(FakeOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	f.Hook("", func() error { cancel(); return nil }) // the caller gives up while the call is on its way
	_, err := f.Create(ctx, providers.CreateRequest{VendorName: "a"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Create() error = %v, want context.Canceled", err)
	}
	if f.Stats().Live != 0 {
		t.Errorf("a cancelled Create acted")
	}
}

func TestFakeBootstrap(t *testing.T) {
	f := NewFake(FakeOptions{Lifetime: time.Hour, Renewable: true})
	secret := f.IssueBootstrap()
	tok, err := f.Bootstrap(t.Context(), providers.NewSecret(secret))
	if err != nil {
		t.Fatalf("Bootstrap() error = %v", err)
	}
	if tok.ID == "" || tok.Secret.Reveal() != secret || tok.Refresh.IsZero() || tok.ExpiresAt.IsZero() {
		t.Errorf("Bootstrap() = %+v, want the token with id, the secret, a refresh credential and expiry", tok)
	}
	if st := f.Stats(); st.Creates != 0 || st.Live != 1 {
		t.Errorf("Stats() = %+v, want Creates 0 (a person made it), Live 1", st)
	}
	if _, err := renewer(t, f).Renew(t.Context(), tok); err != nil {
		t.Errorf("Renew(bootstrapped) error = %v", err)
	}
	if _, err := f.Bootstrap(t.Context(), providers.NewSecret("nope")); !providers.IsUnauthorized(err) {
		t.Errorf("Bootstrap(unknown) error = %v, want unauthorized", err)
	}
}

func TestFakeTokensAndOperatorActions(t *testing.T) {
	c := newClock()
	f := NewFake(FakeOptions{Now: c.Now, Lifetime: time.Hour})
	a := create(t, f, "a")
	c.Advance(time.Second)
	b := create(t, f, "b")
	got := f.Tokens()
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID || got[0].Name != "a" {
		t.Fatalf("Tokens() = %+v, want a then b", got)
	}
	if !f.Expire(a.ID) || f.Valid(a.Secret.Reveal()) {
		t.Errorf("Expire(a) did not make a's secret invalid")
	}
	if !f.Delete(b.ID) || f.Delete(b.ID) {
		t.Errorf("Delete(b) twice = want true then false")
	}
	if st, err := f.Inspect(t.Context(), b); err != nil || !st.Gone {
		t.Errorf("Inspect(deleted) = %+v, %v, want Gone", st, err)
	}
	if st := f.Stats(); st.Revokes != 0 || st.Live != 1 {
		t.Errorf("Stats() = %+v, want Revokes 0 (deleted behind tokend's back), Live 1", st)
	}
}

func TestFakeConcurrentUse(t *testing.T) {
	f := NewFake(FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true})
	r := renewer(t, f)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			tok, err := f.Create(t.Context(), providers.CreateRequest{VendorName: "c"})
			if err != nil {
				errs <- err
				return
			}
			if tok, err = r.Renew(t.Context(), tok); err != nil {
				errs <- err
				return
			}
			if i%2 == 0 {
				if err := f.Revoke(t.Context(), tok, providers.Token{}); err != nil {
					errs <- err
				}
			}
			_ = f.Valid(tok.Secret.Reveal())
			_ = f.Tokens()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent call error = %v", err)
	}
	if st := f.Stats(); st.Creates != 32 || st.Renews != 32 || st.Revokes != 16 || st.Live != 16 || st.Replays != 0 {
		t.Errorf("Stats() = %+v, want Creates 32, Renews 32, Revokes 16, Live 16, Replays 0", st)
	}
}
