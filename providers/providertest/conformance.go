// Package providertest holds what providers are tested with: Run, the conformance suite every vendor provider
// (against its vendor fake) must pass; Fake, a configurable in-memory provider for the rotation engine's unit
// tests; and NewHandler, which serves a Fake as a small JSON API over HTTP (package httpprov is its client), so
// the real binary can be tested end to end against a vendor living in the test process.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/providers"
)

// Fixture is one provider under test together with its vendor fake. Run asks for a fresh Fixture in every
// subtest (newFixture receives the subtest's t, so it can register cleanups there).
type Fixture struct {
	// Provider is the provider under test, talking to a fresh vendor fake.
	Provider providers.Provider
	// Current is the token tokend starts from for bootstrap kinds (read from bootstrap_file and turned into a
	// Token), nil when the first token comes from Create. When set, the suite passes it as req.Current to
	// Create and as current to Revoke, and checks that it stays valid.
	Current *providers.Token
	// Valid reports whether the vendor would accept secret as a consumer credential right now.
	Valid func(secret providers.Secret) bool
	// FailNext makes the next n vendor requests answer status (429 with Retry-After). Nil skips the fault
	// subtests.
	FailNext func(status, n int)
	// MalformedNext makes the next n vendor answers have unparseable 200 bodies. Nil skips those subtests.
	MalformedNext func(n int)
	// Renewable says the kind renews in place: Provider implements providers.Renewer exactly when it is true.
	Renewable bool
}

// opTimeout bounds every provider call the suite makes, so a hung provider fails the test instead of
// hanging it.
const opTimeout = 10 * time.Second

// promptly is how long a call with an already cancelled context may take.
const promptly = 2 * time.Second

// minSecretLen is the shortest secret the leak check looks for: shorter values would match by accident.
const minSecretLen = 6

// leaks collects every secret issued and every error returned during a Run, across subtests.
type leaks struct {
	mu      sync.Mutex
	secrets map[string]string // value -> what it is ("secret of tokend-conformance-g1")
	errs    []string          // "Create: <error text>"
	tokens  []providers.Token // every token seen, to check ids, names and attrs
}

func (l *leaks) token(what string, tok providers.Token) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.secrets == nil {
		l.secrets = map[string]string{}
	}
	if v := tok.Secret.Reveal(); len(v) >= minSecretLen {
		l.secrets[v] = "secret of " + what
	}
	if v := tok.Refresh.Reveal(); len(v) >= minSecretLen {
		l.secrets[v] = "refresh credential of " + what
	}
	l.tokens = append(l.tokens, tok)
}

func (l *leaks) err(op string, err error) {
	if err == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, op+": "+err.Error())
}

// check reports every error text, token id, name or attribute that contains a secret. The report masks the
// value itself.
func (l *leaks) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	mask := func(s string) string {
		for v := range l.secrets {
			s = strings.ReplaceAll(s, v, "<secret>")
		}
		return s
	}
	found := func(s string) (string, bool) {
		for v, what := range l.secrets {
			if strings.Contains(s, v) {
				return what, true
			}
		}
		return "", false
	}
	for _, e := range l.errs {
		if what, ok := found(e); ok {
			t.Errorf("error contains the %s: %s", what, mask(e))
		}
	}
	for _, tok := range l.tokens {
		if what, ok := found(tok.ID); ok {
			t.Errorf("Token.ID contains the %s", what)
		}
		if what, ok := found(tok.Name); ok {
			t.Errorf("Token.Name contains the %s", what)
		}
		for k, v := range tok.Attrs {
			if what, ok := found(k + "=" + v); ok {
				t.Errorf("Token.Attrs[%q] contains the %s (Attrs are stored in clear)", k, what)
			}
		}
	}
	if len(l.errs) == 0 {
		t.Errorf("no error was returned during the suite, so the leak check proved nothing")
	}
}

// h is the state of one subtest: its fixture and the run-wide leak collector.
type h struct {
	t     *testing.T
	fx    Fixture
	leaks *leaks
	n     int // vendor names handed out
}

func newH(t *testing.T, l *leaks, newFixture func(t *testing.T) Fixture) *h {
	t.Helper()
	fx := newFixture(t)
	if fx.Provider == nil {
		t.Fatal("Fixture.Provider is nil")
	}
	if fx.Valid == nil {
		t.Fatal("Fixture.Valid is nil")
	}
	if fx.Current != nil {
		l.token("the bootstrap token", *fx.Current)
	}
	return &h{t: t, fx: fx, leaks: l}
}

func (x *h) ctx() context.Context {
	ctx, cancel := context.WithTimeout(x.t.Context(), opTimeout)
	x.t.Cleanup(cancel)
	return ctx
}

// request returns a CreateRequest with a fresh vendor name, the fixture's Current and its id in Keep.
func (x *h) request() providers.CreateRequest {
	x.n++
	req := providers.CreateRequest{
		VendorName: fmt.Sprintf("tokend-conformance-g%d", x.n),
		Current:    x.fx.Current,
		StartedAt:  time.Now(),
	}
	if x.fx.Current != nil {
		req.Keep = []string{x.fx.Current.ID}
	}
	return req
}

func (x *h) current() providers.Token {
	if x.fx.Current != nil {
		return *x.fx.Current
	}
	return providers.Token{}
}

func (x *h) create(req providers.CreateRequest) (providers.Token, error) {
	tok, err := x.fx.Provider.Create(x.ctx(), req)
	x.leaks.err("Create", err)
	if err == nil {
		x.leaks.token(req.VendorName, tok)
	}
	return tok, err
}

// mustCreate creates a token and stops the subtest when that fails.
func (x *h) mustCreate() providers.Token {
	x.t.Helper()
	tok, err := x.create(x.request())
	if err != nil {
		x.t.Fatalf("Create() error = %v", err)
	}
	if tok.Secret.IsZero() {
		x.t.Fatalf("Create() returned an empty Secret")
	}
	return tok
}

func (x *h) renewer() (providers.Renewer, bool) {
	rn, ok := x.fx.Provider.(providers.Renewer)
	return rn, ok && x.fx.Renewable
}

func (x *h) renew(ctx context.Context, tok providers.Token) (providers.Token, error) {
	rn, ok := x.fx.Provider.(providers.Renewer)
	if !ok {
		x.t.Fatal("Provider does not implement providers.Renewer")
	}
	out, err := rn.Renew(ctx, tok)
	x.leaks.err("Renew", err)
	if err == nil {
		x.leaks.token("renewed "+tok.Name, out)
	}
	return out, err
}

func (x *h) inspect(ctx context.Context, tok providers.Token) (providers.Status, error) {
	st, err := x.fx.Provider.Inspect(ctx, tok)
	x.leaks.err("Inspect", err)
	return st, err
}

func (x *h) revoke(ctx context.Context, tok providers.Token) error {
	err := x.fx.Provider.Revoke(ctx, tok, x.current())
	x.leaks.err("Revoke", err)
	return err
}

func (x *h) verify(ctx context.Context, tok providers.Token) error {
	v, ok := x.fx.Provider.(providers.Verifier)
	if !ok {
		x.t.Fatal("Provider does not implement providers.Verifier")
	}
	err := v.Verify(ctx, tok)
	x.leaks.err("Verify", err)
	return err
}

func (x *h) orphans(ctx context.Context, req providers.CreateRequest) ([]providers.Token, error) {
	o, ok := x.fx.Provider.(providers.OrphanFinder)
	if !ok {
		x.t.Fatal("Provider does not implement providers.OrphanFinder")
	}
	found, err := o.Orphans(ctx, req)
	x.leaks.err("Orphans", err)
	for _, tok := range found {
		x.leaks.token("orphan", tok)
	}
	return found, err
}

// op is one provider call the fault, malformed and cancel subtests make on a token created beforehand.
type op struct {
	name string
	// applies reports whether the provider has this operation at all.
	applies func(x *h) bool
	// parses reports whether the call must read an answer body (so a malformed answer must be an error).
	parses bool
	call   func(x *h, ctx context.Context, tok providers.Token) error
}

var ops = []op{
	{
		name: "create", parses: true,
		applies: func(*h) bool { return true },
		call: func(x *h, ctx context.Context, _ providers.Token) error {
			req := x.request()
			tok, err := x.fx.Provider.Create(ctx, req)
			x.leaks.err("Create", err)
			if err == nil {
				x.leaks.token(req.VendorName, tok)
			}
			return err
		},
	},
	{
		name: "inspect", parses: true,
		applies: func(*h) bool { return true },
		call: func(x *h, ctx context.Context, tok providers.Token) error {
			_, err := x.inspect(ctx, tok)
			return err
		},
	},
	{
		name: "renew", parses: true,
		applies: func(x *h) bool { _, ok := x.renewer(); return ok },
		call: func(x *h, ctx context.Context, tok providers.Token) error {
			_, err := x.renew(ctx, tok)
			return err
		},
	},
	{
		name:    "verify",
		applies: func(x *h) bool { _, ok := x.fx.Provider.(providers.Verifier); return ok },
		call: func(x *h, ctx context.Context, tok providers.Token) error {
			return x.verify(ctx, tok)
		},
	},
	{
		name:    "revoke",
		applies: func(*h) bool { return true },
		call: func(x *h, ctx context.Context, tok providers.Token) error {
			return x.revoke(ctx, tok)
		},
	},
}

// Run is the conformance suite: every vendor provider, against its vendor fake, must pass it. It checks
// create (a valid secret, times that inspect reports too, a new secret each time), renew (only and exactly
// when Fixture.Renewable; same id, expiry never earlier, a rotated refresh credential never handed back),
// verify, revoke (secret invalid, idempotent, inspect says gone), orphans, error classes for 401/403/429/503,
// malformed answers, cancelled contexts, and that no issued secret or refresh credential (nor the bootstrap
// token's) appears in any error string returned during the suite. newFixture is called once per subtest.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture) {
	t.Helper()
	l := &leaks{}
	fresh := func(t *testing.T) *h { t.Helper(); return newH(t, l, newFixture) }

	t.Run("create", func(t *testing.T) { testCreate(t, fresh) })
	t.Run("renew", func(t *testing.T) { testRenew(t, fresh) })
	t.Run("verify", func(t *testing.T) { testVerify(t, fresh) })
	t.Run("revoke", func(t *testing.T) { testRevoke(t, fresh) })
	t.Run("orphans", func(t *testing.T) { testOrphans(t, fresh) })
	t.Run("errors", func(t *testing.T) { testFaults(t, fresh) })
	t.Run("malformed answers", func(t *testing.T) { testMalformed(t, fresh) })
	t.Run("cancelled context", func(t *testing.T) { testCancel(t, fresh) })
	t.Run("no error returned during the suite contains a secret", func(t *testing.T) { l.check(t) })
}

func testCreate(t *testing.T, fresh func(*testing.T) *h) {
	t.Run("returns a valid secret with an id and its times", func(t *testing.T) {
		x := fresh(t)
		tok := x.mustCreate()
		if tok.ID == "" {
			t.Errorf("Create() ID is empty; Revoke needs it")
		}
		if !x.fx.Valid(tok.Secret) {
			t.Errorf("Valid(Create().Secret) = false, want true")
		}
		if tok.IssuedAt.IsZero() {
			t.Errorf("Create() IssuedAt is zero")
		}
		if !tok.ExpiresAt.IsZero() && !tok.ExpiresAt.After(tok.IssuedAt) {
			t.Errorf("Create() ExpiresAt = %v, not after IssuedAt %v", tok.ExpiresAt, tok.IssuedAt)
		}
		if !tok.RenewableUntil.IsZero() && !x.fx.Renewable {
			t.Errorf("Create() RenewableUntil = %v on a kind that does not renew", tok.RenewableUntil)
		}
		if x.fx.Current != nil && !x.fx.Valid(x.fx.Current.Secret) {
			t.Errorf("Valid(Current.Secret) = false after Create, want true: create must not spend the current token")
		}
	})

	t.Run("inspect reports the times of a new token", func(t *testing.T) {
		x := fresh(t)
		tok := x.mustCreate()
		st, err := x.inspect(x.ctx(), tok)
		if err != nil {
			t.Fatalf("Inspect() error = %v", err)
		}
		if st.Gone {
			t.Fatalf("Inspect() Gone = true for a token just created")
		}
		switch {
		case tok.ExpiresAt.IsZero() && !st.ExpiresAt.IsZero():
			t.Errorf("Inspect() ExpiresAt = %v, but Create() said the token never expires", st.ExpiresAt)
		case !tok.ExpiresAt.IsZero() && st.ExpiresAt.IsZero():
			t.Errorf("Inspect() ExpiresAt is zero, but Create() said it expires at %v", tok.ExpiresAt)
		case !tok.ExpiresAt.IsZero() && st.ExpiresAt.Before(tok.IssuedAt.Add(-time.Minute)):
			t.Errorf("Inspect() ExpiresAt = %v, before the token was issued (%v)", st.ExpiresAt, tok.IssuedAt)
		}
		if !tok.RenewableUntil.IsZero() && !st.RenewableUntil.IsZero() &&
			st.RenewableUntil.Before(tok.IssuedAt.Add(-time.Minute)) {
			t.Errorf("Inspect() RenewableUntil = %v, before the token was issued (%v)", st.RenewableUntil, tok.IssuedAt)
		}
	})

	t.Run("a second create gives a different secret and id", func(t *testing.T) {
		x := fresh(t)
		a := x.mustCreate()
		req := x.request()
		req.Keep = append(req.Keep, a.ID)
		b, err := x.create(req)
		if err != nil {
			t.Fatalf("second Create() error = %v", err)
		}
		if b.Secret.Reveal() == a.Secret.Reveal() {
			t.Errorf("second Create() returned the same secret as the first")
		}
		if b.ID == a.ID {
			t.Errorf("second Create() ID = %q, same as the first", b.ID)
		}
		if !x.fx.Valid(b.Secret) {
			t.Errorf("Valid(second Create().Secret) = false, want true")
		}
	})
}

func testRenew(t *testing.T, fresh func(*testing.T) *h) {
	t.Run("provider implements Renewer exactly when the kind is renewable", func(t *testing.T) {
		x := fresh(t)
		_, ok := x.fx.Provider.(providers.Renewer)
		if ok != x.fx.Renewable {
			t.Fatalf("Provider (%T) implements providers.Renewer = %v, want %v (Fixture.Renewable)", x.fx.Provider, ok, x.fx.Renewable)
		}
	})
	if _, ok := fresh(t).renewer(); !ok {
		return
	}

	t.Run("gives a valid secret, keeps the id and never moves expiry back", func(t *testing.T) {
		x := fresh(t)
		tok := x.mustCreate()
		got, err := x.renew(x.ctx(), tok)
		if err != nil {
			t.Fatalf("Renew() error = %v", err)
		}
		checkRenewed(t, x, tok, got)
	})

	t.Run("renewing the renewed token works and never hands back a rotated refresh credential", func(t *testing.T) {
		x := fresh(t)
		t0 := x.mustCreate()
		t1, err := x.renew(x.ctx(), t0)
		if err != nil {
			t.Fatalf("first Renew() error = %v", err)
		}
		checkRenewed(t, x, t0, t1)
		// A provider that presented t0's refresh credential again (or kept it inside and used it) gets
		// refused here by a vendor that rotates: the second renew must work from t1 alone.
		t2, err := x.renew(x.ctx(), t1)
		if err != nil {
			t.Fatalf("second Renew() error = %v (did the provider replay the first refresh credential?)", err)
		}
		checkRenewed(t, x, t1, t2)
		if t1.Refresh.Reveal() != t0.Refresh.Reveal() {
			// The vendor rotates: every renew gives a refresh credential never seen before.
			if r := t2.Refresh.Reveal(); r == t1.Refresh.Reveal() || r == t0.Refresh.Reveal() {
				t.Errorf("second Renew() Refresh is one handed out before; the vendor rotates it on every renew")
			}
		}
	})

	t.Run("does not spend the current token", func(t *testing.T) {
		x := fresh(t)
		if x.fx.Current == nil {
			t.Skip("no bootstrap token in this fixture")
		}
		tok := x.mustCreate()
		if _, err := x.renew(x.ctx(), tok); err != nil {
			t.Fatalf("Renew() error = %v", err)
		}
		if !x.fx.Valid(x.fx.Current.Secret) {
			t.Errorf("Valid(Current.Secret) = false after renewing another token")
		}
	})
}

func checkRenewed(t *testing.T, x *h, before, after providers.Token) {
	t.Helper()
	if after.ID != before.ID {
		t.Errorf("Renew() ID = %q, want %q (a renew keeps the id)", after.ID, before.ID)
	}
	if after.Secret.IsZero() {
		t.Errorf("Renew() returned an empty Secret")
	} else if !x.fx.Valid(after.Secret) {
		t.Errorf("Valid(Renew().Secret) = false, want true")
	}
	if !before.ExpiresAt.IsZero() {
		if after.ExpiresAt.IsZero() {
			t.Errorf("Renew() ExpiresAt is zero, was %v", before.ExpiresAt)
		} else if after.ExpiresAt.Before(before.ExpiresAt) {
			t.Errorf("Renew() ExpiresAt = %v, earlier than before the renew (%v)", after.ExpiresAt, before.ExpiresAt)
		}
	}
	if after.IssuedAt.Before(before.IssuedAt) {
		t.Errorf("Renew() IssuedAt = %v, earlier than before the renew (%v)", after.IssuedAt, before.IssuedAt)
	}
	if !before.CreatedAt.IsZero() && !after.CreatedAt.Equal(before.CreatedAt) {
		t.Errorf("Renew() CreatedAt = %v, want %v (a renew does not change it)", after.CreatedAt, before.CreatedAt)
	}
	if !before.Refresh.IsZero() && after.Refresh.IsZero() {
		t.Errorf("Renew() dropped the refresh credential")
	}
}

func testVerify(t *testing.T, fresh func(*testing.T) *h) {
	if _, ok := fresh(t).fx.Provider.(providers.Verifier); !ok {
		t.Skip("provider does not implement providers.Verifier")
	}
	t.Run("accepts a fresh token", func(t *testing.T) {
		x := fresh(t)
		tok := x.mustCreate()
		if err := x.verify(x.ctx(), tok); err != nil {
			t.Errorf("Verify(new token) error = %v, want nil", err)
		}
	})
	t.Run("rejects a revoked token as unauthorized", func(t *testing.T) {
		x := fresh(t)
		tok := x.mustCreate()
		if err := x.revoke(x.ctx(), tok); err != nil {
			t.Fatalf("Revoke() error = %v", err)
		}
		err := x.verify(x.ctx(), tok)
		if err == nil {
			t.Fatalf("Verify(revoked token) = nil, want an error")
		}
		if !providers.IsUnauthorized(err) {
			t.Errorf("Verify(revoked token) class = %v, want unauthorized (err: %v)", providers.ClassOf(err), err)
		}
	})
}

func testRevoke(t *testing.T, fresh func(*testing.T) *h) {
	x := fresh(t)
	tok := x.mustCreate()
	t.Run("makes the secret invalid", func(t *testing.T) {
		if err := x.revoke(x.ctx(), tok); err != nil {
			t.Fatalf("Revoke() error = %v", err)
		}
		if x.fx.Valid(tok.Secret) {
			t.Errorf("Valid(revoked secret) = true, want false")
		}
	})
	t.Run("revoking again returns nil", func(t *testing.T) {
		if err := x.revoke(x.ctx(), tok); err != nil {
			t.Errorf("second Revoke() error = %v, want nil (already gone counts as done)", err)
		}
	})
	t.Run("inspect after revoke reports gone", func(t *testing.T) {
		st, err := x.inspect(x.ctx(), tok)
		if err != nil {
			t.Fatalf("Inspect(revoked) error = %v, want nil", err)
		}
		if !st.Gone {
			t.Errorf("Inspect(revoked) = %+v, want Gone", st)
		}
	})
	t.Run("leaves the current token valid", func(t *testing.T) {
		if x.fx.Current == nil {
			t.Skip("no bootstrap token in this fixture")
		}
		if !x.fx.Valid(x.fx.Current.Secret) {
			t.Errorf("Valid(Current.Secret) = false after revoking another token")
		}
	})
	t.Run("leaves other tokens valid", func(t *testing.T) {
		y := fresh(t)
		a, b := y.mustCreate(), y.mustCreate()
		if err := y.revoke(y.ctx(), a); err != nil {
			t.Fatalf("Revoke() error = %v", err)
		}
		if !y.fx.Valid(b.Secret) {
			t.Errorf("Valid(other token) = false after revoking one token")
		}
	})
}

func testOrphans(t *testing.T, fresh func(*testing.T) *h) {
	if _, ok := fresh(t).fx.Provider.(providers.OrphanFinder); !ok {
		t.Skip("provider does not implement providers.OrphanFinder")
	}
	t.Run("finds a token made by the request and never a kept one", func(t *testing.T) {
		x := fresh(t)
		req := x.request()
		req.StartedAt = time.Now().Add(-time.Second)
		tok, err := x.create(req)
		if err != nil {
			t.Fatalf("Create() error = %v", err)
		}
		// A vendor fake on its own clock may date the token before our StartedAt; the request must still
		// find it, as it would with a StartedAt taken on the vendor's clock.
		if !tok.CreatedAt.IsZero() && tok.CreatedAt.Before(req.StartedAt) {
			req.StartedAt = tok.CreatedAt.Add(-time.Second)
		}
		ids := func(ts []providers.Token) []string {
			var out []string
			for _, tk := range ts {
				out = append(out, tk.ID)
			}
			return out
		}
		found, err := x.orphans(x.ctx(), req)
		if err != nil {
			t.Fatalf("Orphans() error = %v", err)
		}
		got := ids(found)
		if !slices.Contains(got, tok.ID) {
			t.Errorf("Orphans() = %q, want it to contain the unkept token %q", got, tok.ID)
		}
		for _, k := range req.Keep {
			if slices.Contains(got, k) {
				t.Errorf("Orphans() = %q contains kept id %q", got, k)
			}
		}
		req.Keep = append(req.Keep, tok.ID)
		found, err = x.orphans(x.ctx(), req)
		if err != nil {
			t.Fatalf("Orphans() with the token kept: error = %v", err)
		}
		for _, k := range req.Keep {
			if slices.Contains(ids(found), k) {
				t.Errorf("Orphans() = %q contains kept id %q", ids(found), k)
			}
		}
	})
}

func testFaults(t *testing.T, fresh func(*testing.T) *h) {
	if fresh(t).fx.FailNext == nil {
		t.Skip("Fixture.FailNext is nil")
	}
	tests := []struct {
		status int
		want   string
		// n is how many requests fail: 2 for refusals, so a provider that logs in again after a 401 on its
		// session sees the login refused too.
		n     int
		check func(error) bool
	}{
		{401, "unauthorized", 2, providers.IsUnauthorized},
		{403, "unauthorized", 2, providers.IsUnauthorized},
		{503, "retryable", 1, providers.IsRetryable},
		{429, "rate limited", 1, func(err error) bool { return providers.ClassOf(err) == providers.RateLimited }},
	}
	for _, o := range ops {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s answered %d is %s", o.name, tt.status, tt.want), func(t *testing.T) {
				x := fresh(t)
				if !o.applies(x) {
					t.Skipf("provider has no %s", o.name)
				}
				var tok providers.Token
				if o.name != "create" {
					tok = x.mustCreate()
				}
				x.fx.FailNext(tt.status, tt.n)
				err := o.call(x, x.ctx(), tok)
				if err == nil {
					t.Fatalf("%s with the vendor answering %d: error = nil", o.name, tt.status)
				}
				if !tt.check(err) {
					t.Errorf("%s with the vendor answering %d: class = %v, want %s (err: %v)",
						o.name, tt.status, providers.ClassOf(err), tt.want, err)
				}
				if tt.status == 429 && providers.RetryAfterOf(err) <= 0 {
					t.Errorf("%s with the vendor answering 429 and Retry-After: RetryAfterOf = %v, want > 0",
						o.name, providers.RetryAfterOf(err))
				}
				if tt.status == 503 {
					// The vendor did not act; the provider must not be left broken by the failure.
					if err := o.call(x, x.ctx(), tok); err != nil {
						t.Errorf("%s after a 503 was answered: error = %v, want nil", o.name, err)
					}
				}
			})
		}
	}
}

func testMalformed(t *testing.T, fresh func(*testing.T) *h) {
	if fresh(t).fx.MalformedNext == nil {
		t.Skip("Fixture.MalformedNext is nil")
	}
	for _, o := range ops {
		name := o.name + " answer is an error, not a panic"
		if !o.parses {
			name = o.name + " answer does not panic"
		}
		t.Run(name, func(t *testing.T) {
			x := fresh(t)
			if !o.applies(x) {
				t.Skipf("provider has no %s", o.name)
			}
			var tok providers.Token
			if o.name != "create" {
				tok = x.mustCreate()
			}
			x.fx.MalformedNext(1)
			err := o.call(x, x.ctx(), tok)
			if o.parses && err == nil {
				t.Errorf("%s with an unparseable 200 answer: error = nil, want an error", o.name)
			}
			if o.name == "create" {
				if _, err := x.create(x.request()); err != nil {
					t.Errorf("Create() after a malformed answer: error = %v, want nil", err)
				}
			}
		})
	}
}

func testCancel(t *testing.T, fresh func(*testing.T) *h) {
	for _, o := range append(ops, op{
		name:    "orphans",
		applies: func(x *h) bool { _, ok := x.fx.Provider.(providers.OrphanFinder); return ok },
		call: func(x *h, ctx context.Context, _ providers.Token) error {
			_, err := x.orphans(ctx, x.request())
			return err
		},
	}) {
		t.Run(o.name+" returns the context's error promptly", func(t *testing.T) {
			x := fresh(t)
			if !o.applies(x) {
				t.Skipf("provider has no %s", o.name)
			}
			var tok providers.Token
			if o.name != "create" {
				tok = x.mustCreate()
			}
			ctx, cancel := context.WithCancel(x.ctx())
			cancel()
			start := time.Now()
			err := o.call(x, ctx, tok)
			if d := time.Since(start); d > promptly {
				t.Errorf("%s with a cancelled context took %v, want under %v", o.name, d, promptly)
			}
			if err == nil {
				t.Fatalf("%s with a cancelled context: error = nil", o.name)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: error = %v, want one wrapping context.Canceled", o.name, err)
			}
		})
	}
}
