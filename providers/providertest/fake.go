package providertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tokend/tokend/providers"
)

// FakeOptions configure a Fake. The zero value is a vendor whose tokens never expire, cannot be renewed and
// have no cap.
type FakeOptions struct {
	// Now is the vendor's clock; nil means time.Now.
	Now func() time.Time
	// Lifetime is how long a secret lives after it is issued (created or renewed); 0 means it never expires.
	Lifetime time.Duration
	// Renewable makes tokens renewable in place: Provider returns a value implementing providers.Renewer.
	Renewable bool
	// RenewableFor sets renewable-until to creation + RenewableFor; renewing after it fails with a
	// not-renewable error. 0 means no limit.
	RenewableFor time.Duration
	// RotatingRefresh makes every renew issue a new refresh credential. Presenting a refresh credential that
	// was already replaced is a replay: it is counted in Stats.Replays and kills the token (the vendor deletes
	// it, as Commvault deletes the chain).
	RotatingRefresh bool
	// RenewNoMove makes renews succeed without moving expiry (a new secret with the old expiry).
	RenewNoMove bool
	// InvalidateOnRenew makes a renew end the old secret at once. By default the old secret keeps working
	// until its own expiry, as VCD's and Commvault's renewed access tokens do.
	InvalidateOnRenew bool
	// Cap is the most vendor-side tokens that may exist at once (expired ones count until revoked); a create
	// beyond it fails with a permanent 409 "cap_reached". 0 means no cap.
	Cap int
}

// Ops a Fake knows, for FailNext, LoseNext and Hook. The empty op matches every op.
const (
	OpCreate    = "create"
	OpRenew     = "renew"
	OpRevoke    = "revoke"
	OpInspect   = "inspect"
	OpVerify    = "verify"
	OpOrphans   = "orphans"
	OpBootstrap = "bootstrap"
)

// ErrAnswerLost is the cause of the error a call gets after LoseNext: the vendor acted, the answer was lost.
var ErrAnswerLost = errors.New("reading answer: connection reset by peer")

// Fake is a configurable in-memory vendor and provider, for the rotation engine's unit tests. The vendor
// side keeps tokens with one-time secrets (only the Create, Renew and Bootstrap return values carry them),
// expiry, renewable-until, refresh credentials (rotating or not) and a cap; the test side injects faults
// (FailNext, LoseNext, Hook) and observes (Valid, Stats, Tokens).
//
// *Fake implements providers.Provider, Verifier, OrphanFinder and Bootstrapper, but not Renewer: use
// Provider, which adds Renew exactly when FakeOptions.Renewable is set. A Fake is safe for concurrent use.
// Every error it returns wraps a *providers.APIError, ctx.Err(), providers.Lost(ErrAnswerLost) or a Hook's
// error, and none contains a secret.
type Fake struct {
	opts FakeOptions
	now  func() time.Time

	mu       sync.Mutex
	nextID   int
	tokens   map[string]*fakeToken // by id
	bySecret map[string]string     // live secret -> id
	retired  map[string]retired    // secrets replaced by a renew that still work until their expiry
	faults   map[string][]fault    // by op; "" for any op
	hooks    map[string]func() error
	stats    FakeStats
}

type fakeToken struct {
	id, name       string
	secret         string
	refresh        string
	spent          map[string]bool // refresh credentials replaced by a renew (a rotating vendor's replays)
	createdAt      time.Time
	issuedAt       time.Time
	expiresAt      time.Time
	renewableUntil time.Time
}

type fault struct {
	err  error // nil: lose the answer (act, then return providers.Lost)
	left int
}

// FakeStats counts what happened at the vendor.
type FakeStats struct {
	Creates      int // successful Create calls (IssueBootstrap does not count)
	Renews       int // successful renews
	Revokes      int // revokes that deleted a token (a revoke of a gone token does not count)
	Replays      int // replaced refresh credentials presented again
	Inspects     int // Inspect calls that reached the vendor
	Verifies     int // Verify calls that reached the vendor
	Live         int // vendor-side tokens that exist now, expired or not
	Expired      int // of Live, those whose secret has expired
	Requests     int // calls that reached the vendor (after hooks and context checks), failed or not
	Failures     int // calls answered with an injected failure or lost answer
	NotRenewable int // renews refused as not renewable (past renewable-until or expired)
}

// FakeToken is a vendor-side token as Tokens reports it, without its secrets.
type FakeToken struct {
	ID             string
	Name           string
	CreatedAt      time.Time
	IssuedAt       time.Time
	ExpiresAt      time.Time // zero: never
	RenewableUntil time.Time // zero: none
}

// NewFake returns an empty fake vendor.
func NewFake(opts FakeOptions) *Fake {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Fake{
		opts:     opts,
		now:      now,
		tokens:   map[string]*fakeToken{},
		bySecret: map[string]string{},
		retired:  map[string]retired{},
		faults:   map[string][]fault{},
		hooks:    map[string]func() error{},
	}
}

// Options returns the options f was built with.
func (f *Fake) Options() FakeOptions { return f.opts }

// Provider returns f as a providers.Provider whose dynamic type implements providers.Renewer exactly when
// FakeOptions.Renewable is set (and Verifier, OrphanFinder, Bootstrapper always).
func (f *Fake) Provider() providers.Provider {
	if f.opts.Renewable {
		return &RenewingFake{f}
	}
	return f
}

// RenewingFake is a Fake that implements providers.Renewer. Fake.Provider returns one when the fake is
// renewable; build one directly only to test a Renewer on a non-renewable fake (Renew then fails with
// not-renewable).
type RenewingFake struct{ *Fake }

// Renew renews t in place: a new secret, expiry moved by Lifetime (unless RenewNoMove), the same id and, when
// RotatingRefresh is set, a new refresh credential.
func (r *RenewingFake) Renew(ctx context.Context, t providers.Token) (providers.Token, error) {
	return r.renew(ctx, t.ID, t.Refresh.Reveal())
}

// FailNext makes the next n calls of op (OpCreate, ...; "" for any op) return err without acting. Faults
// queue up in the order given.
func (f *Fake) FailNext(op string, err error, n int) {
	if err == nil {
		err = StatusError(op, http.StatusInternalServerError)
	}
	f.addFault(op, fault{err: err, left: n})
}

// LoseNext makes the next n calls of op ("" for any op) act at the vendor and then return
// providers.Lost(ErrAnswerLost), as when the answer is dropped or unreadable: a lost create leaves a token
// whose secret nobody has, a lost renew has already rotated the refresh credential.
func (f *Fake) LoseNext(op string, n int) { f.addFault(op, fault{left: n}) }

func (f *Fake) addFault(op string, ft fault) {
	if ft.left <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[op] = append(f.faults[op], ft)
}

// Hook sets fn to be called at the start of every call of op ("" for every op), before the context check
// and the vendor: a test can block there or fail the call at a precise moment (a non-nil error is returned
// as is). fn runs without f's lock held. A nil fn removes the hook.
func (f *Fake) Hook(op string, fn func() error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fn == nil {
		delete(f.hooks, op)
		return
	}
	f.hooks[op] = fn
}

// StatusError returns the *providers.APIError a vendor answering status to op would give (classified with
// providers.ClassForStatus; 429 carries a RetryAfter of one second), for FailNext.
func StatusError(op string, status int) *providers.APIError {
	if op == "" {
		op = "request"
	}
	e := &providers.APIError{Op: "fake " + op, Status: status, Class: providers.ClassForStatus(status)}
	if status == http.StatusTooManyRequests {
		e.RetryAfter = time.Second
	}
	return e
}

// Valid reports whether the vendor would accept secret as a consumer credential now (issued, not replaced by
// a renew, not revoked, not expired).
func (f *Fake) Valid(secret string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checkSecret(secret, f.now()) == nil
}

// retired is a secret a renew replaced, still valid until its own expiry while its token exists.
type retired struct {
	id    string
	until time.Time
}

// Stats returns the vendor's counters.
func (f *Fake) Stats() FakeStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	s.Live = len(f.tokens)
	now := f.now()
	for _, tk := range f.tokens {
		if f.expired(tk, now) {
			s.Expired++
		}
	}
	return s
}

// Tokens returns the vendor-side tokens that exist, oldest first, without their secrets.
func (f *Fake) Tokens() []FakeToken {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FakeToken, 0, len(f.tokens))
	for _, tk := range f.tokens {
		out = append(out, FakeToken{ID: tk.id, Name: tk.name, CreatedAt: tk.createdAt, IssuedAt: tk.issuedAt,
			ExpiresAt: tk.expiresAt, RenewableUntil: tk.renewableUntil})
	}
	slices.SortFunc(out, func(a, b FakeToken) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return idOrder(a.ID) - idOrder(b.ID)
	})
	return out
}

func idOrder(id string) int {
	n, _ := strconv.Atoi(id[len("tok-"):])
	return n
}

// IssueBootstrap mints a token the way a person would in the vendor's UI (named "manual", not counted in
// Creates, cap ignored) and returns its secret, for a bootstrap_file. Bootstrap turns it into a Token.
func (f *Fake) IssueBootstrap() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mint("manual").secret
}

// Expire makes the token with id expire now (as if its lifetime ran out early), so tests need not move the
// clock. It reports whether the token exists.
func (f *Fake) Expire(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	tk, ok := f.tokens[id]
	if ok {
		tk.expiresAt = f.now()
	}
	return ok
}

// Delete deletes the token with id behind tokend's back (as an operator in the vendor's UI would), without
// counting a revoke. It reports whether the token existed.
func (f *Fake) Delete(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.tokens[id]
	f.remove(id)
	return ok
}

// Inspect reports the token's expiry and renewable-until, or Gone when it does not exist.
func (f *Fake) Inspect(ctx context.Context, t providers.Token) (providers.Status, error) {
	tok, ok, err := f.lookup(ctx, t.ID)
	if err != nil {
		return providers.Status{}, fmt.Errorf("inspecting token %s: %w", t.ID, err)
	}
	if !ok {
		return providers.Status{Gone: true}, nil
	}
	return providers.Status{ExpiresAt: tok.ExpiresAt, RenewableUntil: tok.RenewableUntil}, nil
}

// lookup is the vendor's read of token id (without secrets); ok is false when it does not exist.
func (f *Fake) lookup(ctx context.Context, id string) (tok providers.Token, ok bool, err error) {
	err = f.call(ctx, OpInspect, func(time.Time) error {
		f.stats.Inspects++
		var tk *fakeToken
		if tk, ok = f.tokens[id]; ok {
			tok = tk.token(false)
		}
		return nil
	})
	return tok, ok, err
}

// Create makes a token named req.VendorName with a new secret (and a refresh credential when renewable).
// At the cap it fails with a permanent 409 "cap_reached" and makes nothing; it never revokes anything.
func (f *Fake) Create(ctx context.Context, req providers.CreateRequest) (providers.Token, error) {
	var out providers.Token
	err := f.call(ctx, OpCreate, func(time.Time) error {
		if f.opts.Cap > 0 && len(f.tokens) >= f.opts.Cap {
			return &providers.APIError{Op: "fake create", Status: http.StatusConflict, Code: "cap_reached",
				Message: fmt.Sprintf("at most %d tokens", f.opts.Cap), Class: providers.Permanent}
		}
		f.stats.Creates++
		out = f.mint(req.VendorName).token(true)
		return nil
	})
	if err != nil {
		return providers.Token{}, fmt.Errorf("creating token: %w", err)
	}
	return out, nil
}

// Revoke deletes t; a token that does not exist counts as done.
func (f *Fake) Revoke(ctx context.Context, t providers.Token, _ providers.Token) error {
	if _, err := f.revoke(ctx, t.ID); err != nil {
		return fmt.Errorf("revoking token %s: %w", t.ID, err)
	}
	return nil
}

// revoke is the vendor's delete of token id; existed is false when there was nothing to delete.
func (f *Fake) revoke(ctx context.Context, id string) (existed bool, err error) {
	err = f.call(ctx, OpRevoke, func(time.Time) error {
		if _, existed = f.tokens[id]; existed {
			f.stats.Revokes++
			f.remove(id)
		}
		return nil
	})
	return existed, err
}

// Verify succeeds when t.Secret is valid now; otherwise it fails with 401 unauthorized.
func (f *Fake) Verify(ctx context.Context, t providers.Token) error {
	if err := f.verify(ctx, t.Secret.Reveal()); err != nil {
		return fmt.Errorf("verifying token %s: %w", t.ID, err)
	}
	return nil
}

// verify is the vendor's check of a consumer secret.
func (f *Fake) verify(ctx context.Context, secret string) error {
	return f.call(ctx, OpVerify, func(now time.Time) error {
		f.stats.Verifies++
		return f.checkSecret(secret, now)
	})
}

// Orphans returns the tokens named req.VendorName whose ids are not in req.Keep (without secrets).
func (f *Fake) Orphans(ctx context.Context, req providers.CreateRequest) ([]providers.Token, error) {
	var out []providers.Token
	err := f.call(ctx, OpOrphans, func(time.Time) error {
		for _, tk := range f.tokens {
			if req.VendorName != "" && tk.name == req.VendorName && !slices.Contains(req.Keep, tk.id) {
				out = append(out, tk.token(false))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finding orphans of %s: %w", req.VendorName, err)
	}
	slices.SortFunc(out, func(a, b providers.Token) int { return idOrder(a.ID) - idOrder(b.ID) })
	return out, nil
}

// Bootstrap looks up the token whose secret is secret (see IssueBootstrap) and returns it with its id, times
// and refresh credential. An unknown or expired secret fails with 401 unauthorized.
func (f *Fake) Bootstrap(ctx context.Context, secret providers.Secret) (providers.Token, error) {
	var out providers.Token
	err := f.call(ctx, OpBootstrap, func(now time.Time) error {
		if err := f.checkSecret(secret.Reveal(), now); err != nil {
			return err
		}
		out = f.tokens[f.bySecret[secret.Reveal()]].token(true)
		return nil
	})
	if err != nil {
		return providers.Token{}, fmt.Errorf("bootstrapping token: %w", err)
	}
	return out, nil
}

// renew is the vendor's renew of token id presenting refresh.
func (f *Fake) renew(ctx context.Context, id, refresh string) (providers.Token, error) {
	var out providers.Token
	err := f.call(ctx, OpRenew, func(now time.Time) error {
		op := "fake renew"
		tk, ok := f.tokens[id]
		switch {
		case !f.opts.Renewable:
			f.stats.NotRenewable++
			return &providers.APIError{Op: op, Status: http.StatusBadRequest, Code: "not_renewable",
				Message: "tokens of this kind cannot be renewed", Class: providers.NotRenewable}
		case !ok:
			return &providers.APIError{Op: op, Status: http.StatusNotFound, Message: "no such token",
				Class: providers.NotFound}
		case refresh == "" || (refresh != tk.refresh && !tk.spent[refresh]):
			return &providers.APIError{Op: op, Status: http.StatusUnauthorized, Code: "invalid_grant",
				Message: "refresh credential refused", Class: providers.Unauthorized}
		case tk.spent[refresh]:
			// A replayed refresh credential: the vendor kills the whole token.
			f.stats.Replays++
			f.remove(id)
			return &providers.APIError{Op: op, Status: http.StatusUnauthorized, Code: "invalid_grant",
				Message: "refresh credential replayed; token deleted", Class: providers.Unauthorized}
		case !tk.renewableUntil.IsZero() && !now.Before(tk.renewableUntil):
			f.stats.NotRenewable++
			return &providers.APIError{Op: op, Status: http.StatusBadRequest, Code: "not_renewable",
				Message: "token cannot be renewed any more", Class: providers.NotRenewable}
		case f.expired(tk, now):
			f.stats.NotRenewable++
			return &providers.APIError{Op: op, Status: http.StatusBadRequest, Code: "not_renewable",
				Message: "token expired", Class: providers.NotRenewable}
		}
		f.stats.Renews++
		delete(f.bySecret, tk.secret)
		if !f.opts.InvalidateOnRenew {
			f.retired[tk.secret] = retired{id: tk.id, until: tk.expiresAt}
		}
		tk.secret = randomValue("fake-secret-")
		f.bySecret[tk.secret] = tk.id
		tk.issuedAt = now
		if f.opts.Lifetime > 0 && !f.opts.RenewNoMove {
			tk.expiresAt = now.Add(f.opts.Lifetime)
		}
		if f.opts.RotatingRefresh {
			tk.spent[tk.refresh] = true
			tk.refresh = randomValue("fake-refresh-")
		}
		out = tk.token(true)
		return nil
	})
	if err != nil {
		return providers.Token{}, fmt.Errorf("renewing token %s: %w", id, err)
	}
	return out, nil
}

// call runs one vendor operation: the hooks, the context check, injected faults, then act under f's lock.
func (f *Fake) call(ctx context.Context, op string, act func(now time.Time) error) error {
	f.mu.Lock()
	hooks := []func() error{f.hooks[op], f.hooks[""]}
	f.mu.Unlock()
	for _, h := range hooks {
		if h == nil {
			continue
		}
		if err := h(); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Requests++
	ft, ok := f.takeFault(op)
	if ok && ft.err != nil {
		f.stats.Failures++
		return ft.err
	}
	err := act(f.now())
	if ok {
		f.stats.Failures++
		return providers.Lost(ErrAnswerLost)
	}
	return err
}

// takeFault consumes the next fault for op, looking at op's queue first, then the any-op queue.
func (f *Fake) takeFault(op string) (fault, bool) {
	for _, key := range []string{op, ""} {
		q := f.faults[key]
		if len(q) == 0 {
			continue
		}
		ft := q[0]
		q[0].left--
		if q[0].left <= 0 {
			q = q[1:]
		}
		f.faults[key] = q
		return ft, true
	}
	return fault{}, false
}

// mint makes a vendor-side token; f.mu is held.
func (f *Fake) mint(name string) *fakeToken {
	now := f.now()
	f.nextID++
	tk := &fakeToken{
		id:        "tok-" + strconv.Itoa(f.nextID),
		name:      name,
		secret:    randomValue("fake-secret-"),
		spent:     map[string]bool{},
		createdAt: now,
		issuedAt:  now,
	}
	if f.opts.Lifetime > 0 {
		tk.expiresAt = now.Add(f.opts.Lifetime)
	}
	if f.opts.Renewable {
		tk.refresh = randomValue("fake-refresh-")
		if f.opts.RenewableFor > 0 {
			tk.renewableUntil = now.Add(f.opts.RenewableFor)
		}
	}
	f.tokens[tk.id] = tk
	f.bySecret[tk.secret] = tk.id
	return tk
}

// remove deletes token id and its secret; f.mu is held.
func (f *Fake) remove(id string) {
	if tk, ok := f.tokens[id]; ok {
		delete(f.bySecret, tk.secret)
		delete(f.tokens, id)
	}
}

func (f *Fake) expired(tk *fakeToken, now time.Time) bool {
	return tk == nil || (!tk.expiresAt.IsZero() && !now.Before(tk.expiresAt))
}

// checkSecret fails with 401 unless secret is valid now; f.mu is held.
func (f *Fake) checkSecret(secret string, now time.Time) error {
	id, ok := f.bySecret[secret]
	if r, old := f.retired[secret]; !ok && old && f.tokens[r.id] != nil && (r.until.IsZero() || now.Before(r.until)) {
		return nil
	}
	if !ok || f.expired(f.tokens[id], now) {
		return &providers.APIError{Op: "fake verify", Status: http.StatusUnauthorized, Message: "invalid or expired token",
			Class: providers.Unauthorized}
	}
	return nil
}

// token returns tk as a providers.Token, with its secrets when withSecrets.
func (tk *fakeToken) token(withSecrets bool) providers.Token {
	t := providers.Token{
		ID:             tk.id,
		Name:           tk.name,
		IssuedAt:       tk.issuedAt,
		ExpiresAt:      tk.expiresAt,
		RenewableUntil: tk.renewableUntil,
		CreatedAt:      tk.createdAt,
		Attrs:          map[string]string{"vendor": "fake"},
	}
	if withSecrets {
		t.Secret = providers.NewSecret(tk.secret)
		t.Refresh = providers.NewSecret(tk.refresh)
	}
	return t
}

func randomValue(prefix string) string {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand.Read never fails on supported platforms
	}
	return prefix + hex.EncodeToString(b)
}
