// Package rotation is tokend's rotation engine: the state machine of DESIGN.md section 2, made crash-safe
// in Redis. One call of Engine.Work does the token's next due step under its lease: create or bootstrap
// the first token, renew or recreate, carry on a rotation a crash interrupted, deliver, or revoke the
// previous token. The order is fixed: persist the vendor's answer before anything else, verify, deliver to
// every sink, promote in one fenced script, and revoke the old token only after its grace period.
package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/scheduler"
	"github.com/tokend/tokend/sinks"
	"github.com/tokend/tokend/store"
)

// Token is one managed token as the engine runs it: its config, resolved policy, provider and sinks.
type Token struct {
	Config   config.Token
	Policy   config.Resolved
	Provider providers.Provider
	Sinks    []sinks.Sink
	// ProviderName and Type label metrics and logs.
	ProviderName string
	// Clock translates the vendor's clock to ours for planning (clock.go); nil when the two agree or the
	// vendor states no time on its own clock.
	Clock VendorClock
}

// Observer receives what the engine did, for metrics. Implementations must be safe for concurrent use.
type Observer interface {
	// Operation records one renew, recreate, verify, deliver or revoke with its result ("success" or the
	// error class) and duration.
	Operation(token, provider, op, result string, d time.Duration)
	// Delivery records one delivery to one sink.
	Delivery(token, sink, result string)
	// Changed tells that a token's state changed (its snapshot is in the engine's view).
	Changed(name string)
}

type nopObserver struct{}

func (nopObserver) Operation(string, string, string, string, time.Duration) {}
func (nopObserver) Delivery(string, string, string)                         {}
func (nopObserver) Changed(string)                                          {}

// Engine runs rotations. It is safe for concurrent use; Work calls for different tokens run in parallel.
type Engine struct {
	store    *store.Store
	log      *slog.Logger
	now      func() time.Time
	observer Observer

	tokens atomic.Pointer[map[string]*Token]

	mu   sync.RWMutex
	view map[string]Snapshot

	sinkMu    sync.Mutex
	sinkLocks map[string]*sync.Mutex // serialises deliveries of one token in this process
	delivered map[string]int64       // newest generation this process delivered, per token

	activeMu  sync.Mutex
	active    map[string]*activity // this process's Work and Poll calls under way, per token
	activeSeq uint64               // stamps of those calls
}

// ownLeaseRecheck is how soon a token whose lease this process itself holds (its poll, or a Work call
// started by another instance's announcement) is offered to the loop again.
const ownLeaseRecheck = 100 * time.Millisecond

// Options configure an Engine.
type Options struct {
	Logger   *slog.Logger
	Now      func() time.Time
	Observer Observer
}

// New returns an engine over st managing tokens.
func New(st *store.Store, tokens map[string]*Token, opts Options) *Engine {
	e := &Engine{store: st, log: opts.Logger, now: opts.Now, observer: opts.Observer, view: map[string]Snapshot{},
		active: map[string]*activity{}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.observer == nil {
		e.observer = nopObserver{}
	}
	e.SetTokens(tokens)
	return e
}

// SetTokens swaps the managed tokens (a reload). Work in flight finishes with the token it started with;
// snapshots of tokens no longer managed are dropped.
func (e *Engine) SetTokens(tokens map[string]*Token) {
	e.tokens.Store(&tokens)
	e.mu.Lock()
	for name := range e.view {
		if _, ok := tokens[name]; !ok {
			delete(e.view, name)
		}
	}
	e.mu.Unlock()
}

// Tokens returns the managed tokens.
func (e *Engine) Tokens() map[string]*Token { return *e.tokens.Load() }

// Owns reports whether name is managed by this engine.
func (e *Engine) Owns(name string) bool { _, ok := e.Tokens()[name]; return ok }

// Store returns the engine's store.
func (e *Engine) Store() *store.Store { return e.store }

func caps(t *Token) scheduler.Caps {
	_, ok := t.Provider.(providers.Renewer)
	return scheduler.Caps{CanRenew: ok}
}

// LoadAll reads every managed token's state, fills the view and (re)schedules each token from its state.
// It is the start-up step (and a reload's): after it, every token has a next action in the due index.
//
// It goes 1,000 tokens at a time (store.LoadEach): read, decide, view, and one pipelined write of the
// batch's next actions, so that a start of 100,000 tokens holds the live view plus a few batches of
// decrypted state, and the reads of the next batches and their decoding overlap this batch's writes. Each
// token is still read, then planned, then scheduled. The first error ends it: a state that does not decode
// (the error names the token) or Redis failing; the batches before it are already scheduled, as a later
// LoadAll would schedule them again.
func (e *Engine) LoadAll(ctx context.Context) error {
	toks := e.Tokens()
	names := make([]string, 0, len(toks))
	for n := range toks {
		names = append(names, n)
	}
	planned := make([]store.Planned, 0, 1000)
	return e.store.LoadEach(ctx, names, func(states []*store.State) error {
		now := e.now()
		planned = planned[:0]
		for _, st := range states {
			t := toks[st.Name]
			plan := scheduler.Next(now, t.planned(st), t.Policy, caps(t), e.store.Instance())
			st.NextAction, st.NextAt = string(plan.Action), plan.At
			e.setView(t, st)
			planned = append(planned, store.Planned{Name: st.Name, Action: string(plan.Action), At: plan.At})
		}
		return e.store.ScheduleMany(ctx, planned)
	})
}

// Work does the token's next due step under its lease, then schedules the step after it. It returns a
// time before which the token should not be offered again when another instance holds its lease.
func (e *Engine) Work(ctx context.Context, name string) time.Time {
	t, ok := e.Tokens()[name]
	if !ok {
		return time.Time{}
	}
	mark, others, leave := e.enter(name)
	defer leave()
	lease, st, err := e.store.Acquire(ctx, name)
	if errors.Is(err, store.ErrLeaseHeld) {
		if others > 0 || e.localSince(name, mark) {
			// This process may hold the lease itself (its poll, which does the due step when it has
			// inspected the token, and may have let go of it since). A retry that step schedules must not
			// wait half a lease TTL, which is meant for another instance's work: look again soon.
			return e.now().Add(ownLeaseRecheck)
		}
		return e.now().Add(e.store.LeaseTTL() / 2)
	}
	if err != nil {
		e.log.Error("acquiring lease", "token", name, "err", err)
		return e.now().Add(5 * time.Second)
	}
	return e.stepLeased(ctx, t, lease, st)
}

// stepLeased is Work once the lease is held (Work, or a Poll that found something to do, took it and read
// st under it): the due step, then the next action scheduled and the lease given up.
func (e *Engine) stepLeased(ctx context.Context, t *Token, lease *store.Lease, st *store.State) time.Time {
	name := t.Config.Name
	ctx, stop := e.keepLease(ctx, lease)
	r := &run{e: e, t: t, lease: lease, st: st, ctx: ctx}
	r.step()
	stop()
	// Schedule from what Redis now holds, whatever the step managed to write: as the promote that ended
	// the step left it (a renewal's usual end, one round trip saved), or read again.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	st, err := lease.Promoted(), error(nil)
	if st == nil {
		st, err = e.store.Get(bg, name)
	}
	if err != nil {
		_ = lease.Release(bg)
		e.log.Error("reading state", "token", name, "err", err)
		return e.now().Add(5 * time.Second)
	}
	plan := scheduler.Next(e.now(), t.planned(st), t.Policy, caps(t), e.store.Instance())
	// The next action and the lease's release go in one round trip.
	if err := lease.ScheduleAndRelease(bg, string(plan.Action), plan.At); err != nil {
		_ = lease.Release(bg)
		e.log.Error("scheduling", "token", name, "err", err)
	}
	st.NextAction, st.NextAt = string(plan.Action), plan.At
	e.setView(t, st)
	return time.Time{}
}

// keepLease extends the lease while work runs; the returned context ends when the lease is lost.
func (e *Engine) keepLease(ctx context.Context, l *store.Lease) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(e.store.LeaseTTL() / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if err := l.Extend(ctx); errors.Is(err, store.ErrFenced) {
					e.log.Warn("lease lost mid-work; stopping", "token", l.Name)
					cancel()
					return
				}
			}
		}
	}()
	return ctx, func() { close(done); cancel() }
}

// run is one Work call: the token, its lease and the state read under it.
type run struct {
	e     *Engine
	t     *Token
	lease *store.Lease
	st    *store.State
	ctx   context.Context
}

func (r *run) name() string { return r.t.Config.Name }

func (r *run) step() {
	now := r.e.now()
	plan := scheduler.Next(now, r.t.planned(r.st), r.t.Policy, caps(r.t), r.e.store.Instance())
	if plan.At.After(now) {
		return // woken early, or another instance already did the work
	}
	switch plan.Action {
	case scheduler.Resume:
		r.resume()
	case scheduler.Create:
		r.first()
	case scheduler.Deliver:
		r.deliverCurrent()
	case scheduler.Revoke:
		r.revokePrevious()
	case scheduler.Renew, scheduler.Recreate:
		r.rotate(string(plan.Action))
	}
}

// persistCtx is for writes that must finish once the vendor has answered, whatever shutdown does.
func (r *run) persistCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.ctx), 30*time.Second)
}

func (r *run) apply(c *store.Change) error {
	ctx, cancel := r.persistCtx()
	defer cancel()
	return r.lease.Apply(ctx, c)
}

func (r *run) vendorName(gen int64) string { return fmt.Sprintf("tokend-%s-g%d", r.name(), gen) }

func (r *run) keep() []string {
	var ids []string
	for _, t := range []*providers.Token{r.st.Current, r.st.Previous, r.st.Pending} {
		if t != nil && t.ID != "" {
			ids = append(ids, t.ID)
		}
	}
	return ids
}

// first brings a token with no state to life: from its bootstrap file, or by creating one.
func (r *run) first() {
	if !r.t.Config.BootstrapFile.IsSet() {
		r.rotate("create")
		return
	}
	secret, err := r.t.Config.BootstrapFile.Read()
	if err != nil {
		r.fail("bootstrap", fmt.Errorf("reading bootstrap_file: %w", err), nil)
		return
	}
	tok := providers.Token{Secret: secret, IssuedAt: r.e.now(), CreatedAt: r.e.now()}
	if b, ok := r.t.Provider.(providers.Bootstrapper); ok {
		start := r.e.now()
		tok, err = b.Bootstrap(r.ctx, secret)
		r.observe("bootstrap", start, err)
		if err != nil {
			r.fail("bootstrap", fmt.Errorf("bootstrapping: %w", err), nil)
			return
		}
	}
	in := &store.Intent{Op: "bootstrap", Generation: 1, StartedAt: r.e.now()}
	if err := r.apply(new(store.Change).SetIntent(in).SetPending(&tok)); err != nil {
		r.e.log.Error("persisting bootstrap token", "token", r.name(), "err", err)
		return
	}
	r.st.Intent, r.st.Pending = in, &tok
	r.finish()
}

// rotate renews or recreates the current token (op "renew", "recreate", or "create" for the first one).
func (r *run) rotate(op string) {
	gen := r.st.Generation + 1
	in := &store.Intent{Op: op, Generation: gen, VendorName: r.vendorName(gen), StartedAt: r.e.now(), Keep: r.keep()}
	if err := r.apply(new(store.Change).SetIntent(in).ClearForce()); err != nil {
		r.e.log.Error("recording intent", "token", r.name(), "err", err)
		return
	}
	r.st.Intent = in
	failpoint("after-intent", r.name())

	start := r.e.now()
	var tok providers.Token
	var err error
	if op == "renew" {
		tok, err = r.t.Provider.(providers.Renewer).Renew(r.ctx, *r.st.Current)
	} else {
		tok, err = r.t.Provider.Create(r.ctx, providers.CreateRequest{
			VendorName: in.VendorName, Current: r.usableCurrent(), Keep: in.Keep, StartedAt: r.t.vendorTime(in.StartedAt),
		})
	}
	if err != nil {
		r.observe(op, start, err)
		keep := in
		if !providers.IsAmbiguous(err) {
			keep = nil // the vendor said no: nothing was made
		}
		r.fail(op, fmt.Errorf("%s: %w", verb(op), err), keep)
		return
	}
	failpoint("after-vendor", r.name())
	// The vendor has answered: persist before anything else, on a context shutdown cannot cancel.
	if err := r.apply(new(store.Change).SetPending(&tok)); err != nil {
		r.observe(op, start, err)
		r.e.log.Error("persisting new token: its secret is lost; it will be revoked on the next attempt",
			"token", r.name(), "op", op, "err", err)
		return
	}
	r.observe(op, start, nil)
	r.st.Pending = &tok
	failpoint("after-pending", r.name())
	r.finish()
}

// usableCurrent is the token a create may authenticate with: the current one, or, when the vendor no
// longer knows it (deleted behind tokend's back), the previous one while it still waits for revocation.
// Vendors that authenticate with the managed token itself (Astra) can then still recreate.
func (r *run) usableCurrent() *providers.Token {
	if r.st.Gone && r.st.Previous != nil {
		return r.st.Previous
	}
	return r.st.Current
}

func verb(op string) string {
	switch op {
	case "renew":
		return "renewing"
	case "bootstrap":
		return "bootstrapping"
	case "revoke":
		return "revoking previous token"
	case "deliver":
		return "delivering"
	case "verify":
		return "verifying new token"
	}
	return "creating token"
}

// resume carries on a rotation that an earlier run (or a crashed process) left behind.
func (r *run) resume() {
	if r.st.Pending != nil {
		if r.st.Intent == nil {
			r.st.Intent = &store.Intent{Op: "recreate", Generation: r.st.Generation + 1}
		}
		r.finish()
		return
	}
	in := r.st.Intent
	switch in.Op {
	case "renew":
		// The renew's answer may have been lost: its refresh credential may be spent, and a rotating one
		// must never be presented again. Recreate instead.
		r.e.log.Warn("renew was interrupted; recreating instead of presenting the refresh credential again", "token", r.name())
		r.rotate(r.recreateOp())
	case "bootstrap":
		if err := r.apply(new(store.Change).SetIntent(nil)); err == nil {
			r.first()
		}
	default:
		if !r.revokeOrphans(in) {
			return
		}
		if err := r.apply(new(store.Change).SetIntent(nil)); err != nil {
			return
		}
		r.st.Intent = nil
		r.rotate(in.Op)
	}
}

func (r *run) recreateOp() string {
	if r.st.Current == nil {
		return "create"
	}
	return "recreate"
}

// revokeOrphans revokes vendor-side tokens that an interrupted create may have made and whose secrets
// tokend never stored. It reports whether the rotation may go on.
func (r *run) revokeOrphans(in *store.Intent) bool {
	f, ok := r.t.Provider.(providers.OrphanFinder)
	if !ok {
		if in.Lost {
			r.e.log.Warn("an interrupted create may have left a vendor-side token tokend cannot find; check the vendor",
				"token", r.name(), "vendor_name", in.VendorName)
		}
		return true
	}
	req := providers.CreateRequest{VendorName: in.VendorName, Current: r.st.Current, Keep: r.keep(), StartedAt: r.t.vendorTime(in.StartedAt)}
	orphans, err := f.Orphans(r.ctx, req)
	if err != nil {
		r.fail("revoke", fmt.Errorf("finding tokens left by an interrupted create: %w", err), in)
		return false
	}
	cur := providers.Token{}
	if r.st.Current != nil {
		cur = *r.st.Current
	}
	for _, o := range orphans {
		start := r.e.now()
		err := r.t.Provider.Revoke(r.ctx, o, cur)
		r.observe("revoke", start, err)
		if err != nil {
			r.fail("revoke", fmt.Errorf("revoking token %s left by an interrupted create: %w", o.ID, err), in)
			return false
		}
		r.e.log.Info("revoked a token an interrupted create left behind", "token", r.name(), "vendor_id", o.ID)
	}
	return true
}

// finish verifies, delivers and promotes the pending token.
func (r *run) finish() {
	pend, in := r.st.Pending, r.st.Intent
	if v, ok := r.t.Provider.(providers.Verifier); ok {
		start := r.e.now()
		err := v.Verify(r.ctx, *pend)
		r.observe("verify", start, err)
		if err != nil {
			r.verifyFailed(err)
			return
		}
	}
	failpoint("after-verify", r.name())
	if err := r.deliver(pend, in.Generation); err != nil {
		r.fail("deliver", err, in)
		return
	}
	failpoint("after-deliver", r.name())

	cur := r.st.Current
	keepPrev := cur != nil && cur.ID != pend.ID
	if keepPrev && r.st.Previous != nil {
		// A rotation came before the last one's grace period ended: the token two generations back goes now.
		if !r.revokePrevious() {
			return
		}
	}
	now := r.e.now()
	ctx, cancel := r.persistCtx()
	defer cancel()
	if err := r.lease.Promote(ctx, in.Generation, keepPrev, now.Add(r.t.Policy.RevokeAfter), now); err != nil {
		r.e.log.Error("promoting", "token", r.name(), "err", err)
		return
	}
	failpoint("after-promote", r.name())
	if pend.ExpiresAt.IsZero() {
		r.e.log.Info("rotated", "token", r.name(), "op", in.Op, "generation", in.Generation)
	} else {
		r.e.log.Info("rotated", "token", r.name(), "op", in.Op, "generation", in.Generation, "expires_at", pend.ExpiresAt)
	}
	if in.Op == "renew" && cur != nil && !pend.ExpiresAt.After(cur.ExpiresAt) {
		r.e.log.Warn("renew did not move expiry; recreating next time", "token", r.name())
		_ = r.lease.Apply(ctx, new(store.Change).SetRenewStuck(true))
	}
}

// verifyFailed handles a new token the vendor does not accept: a refused one is dropped (and revoked, as
// nobody holds it), anything else is retried.
func (r *run) verifyFailed(err error) {
	pend, in := r.st.Pending, r.st.Intent
	err = fmt.Errorf("verifying new token: %w", err)
	switch providers.ClassOf(err) {
	case providers.Unauthorized, providers.Permanent, providers.NotFound:
		if r.st.Current == nil || pend.ID != r.st.Current.ID {
			cur := providers.Token{}
			if r.st.Current != nil {
				cur = *r.st.Current
			}
			if rerr := r.t.Provider.Revoke(r.ctx, *pend, cur); rerr != nil {
				r.fail("verify", fmt.Errorf("%w; revoking it: %w", err, rerr), in)
				return
			}
		}
		if aerr := r.apply(new(store.Change).SetPending(nil).SetIntent(nil)); aerr != nil {
			return
		}
		r.st.Pending, r.st.Intent = nil, nil
		r.fail("verify", err, nil)
	default:
		r.fail("verify", err, in)
	}
}

// deliver hands tok to every sink of this instance. All must succeed.
func (r *run) deliver(tok *providers.Token, gen int64) error {
	// Deliveries of one token are serialised in this process, and a generation older than one already
	// delivered here is never written over it (Converge and Work may both deliver).
	mu := r.e.sinkLock(r.name())
	mu.Lock()
	defer mu.Unlock()
	if gen < r.e.deliveredHere(r.name()) {
		return nil
	}
	d := sinks.Delivery{
		Name: r.name(), Provider: r.t.ProviderName, Kind: r.t.Config.Kind, Secret: tok.Secret,
		IssuedAt: tok.IssuedAt, ExpiresAt: tok.ExpiresAt, Generation: gen,
	}
	start := r.e.now()
	var errs []error
	for _, s := range r.t.Sinks {
		err := s.Deliver(r.ctx, d)
		result := "success"
		if err != nil {
			result = "failure"
			errs = append(errs, fmt.Errorf("delivering to %s: %w", s, err))
		}
		r.e.observer.Delivery(r.name(), s.String(), result)
	}
	err := errors.Join(errs...)
	r.observe("deliver", start, err)
	if err == nil {
		r.e.setDeliveredHere(r.name(), gen)
	}
	return err
}

// Converge brings this instance's sinks up to the token's current generation without taking its lease:
// the instance that rotated it may still hold the lease while it finishes, and these sinks are this
// instance's alone (the per-instance delivered mark needs no lease either). The daemon calls it when
// another instance announces a change, so hosts with their own files follow within moments.
func (e *Engine) Converge(ctx context.Context, name string) error {
	t, ok := e.Tokens()[name]
	if !ok {
		return nil
	}
	st, err := e.store.Get(ctx, name)
	if err != nil {
		return err
	}
	return e.converge(ctx, t, st)
}

// Announced is what an instance does when a token's change is announced (by another instance, by this
// one's own promote, or by `tokend rotate`): one read of the state refreshes the view and brings this
// instance's sinks up to the current generation (as Converge), and due says whether a step is due now, for
// the caller to Work. An announcement of a promote this process made itself thus costs that one read.
func (e *Engine) Announced(ctx context.Context, name string) (due bool, err error) {
	t, ok := e.Tokens()[name]
	if !ok {
		return false, nil
	}
	st, err := e.store.Get(ctx, name)
	if err != nil {
		return false, err
	}
	e.setView(t, st)
	if err := e.converge(ctx, t, st); err != nil {
		return true, err // the delivery is still due: Work retries it under the lease, with backoff
	}
	now := e.now()
	return !scheduler.Next(now, t.planned(st), t.Policy, caps(t), e.store.Instance()).At.After(now), nil
}

// converge delivers st's current generation to this instance's sinks unless they have it, and records
// that in st.
func (e *Engine) converge(ctx context.Context, t *Token, st *store.State) error {
	name, me := t.Config.Name, e.store.Instance()
	if st.Current == nil || st.Generation <= st.Delivered[me] || st.Generation <= e.deliveredHere(name) {
		return nil
	}
	r := &run{e: e, t: t, st: st, ctx: ctx}
	if err := r.deliver(st.Current, st.Generation); err != nil {
		return fmt.Errorf("delivering %s generation %d: %w", name, st.Generation, err)
	}
	if err := e.store.MarkDelivered(ctx, name, st.Generation); err != nil {
		return err
	}
	if st.Delivered == nil {
		st.Delivered = map[string]int64{}
	}
	st.Delivered[me] = st.Generation
	return nil
}

func (e *Engine) sinkLock(name string) *sync.Mutex {
	e.sinkMu.Lock()
	defer e.sinkMu.Unlock()
	if e.sinkLocks == nil {
		e.sinkLocks = map[string]*sync.Mutex{}
		e.delivered = map[string]int64{}
	}
	mu, ok := e.sinkLocks[name]
	if !ok {
		mu = new(sync.Mutex)
		e.sinkLocks[name] = mu
	}
	return mu
}

// deliveredHere is the newest generation this process delivered to name's sinks.
func (e *Engine) deliveredHere(name string) int64 {
	e.sinkMu.Lock()
	defer e.sinkMu.Unlock()
	return e.delivered[name]
}

func (e *Engine) setDeliveredHere(name string, gen int64) {
	e.sinkMu.Lock()
	defer e.sinkMu.Unlock()
	if gen > e.delivered[name] {
		e.delivered[name] = gen
	}
}

// deliverCurrent brings this instance's sinks up to the current generation (another instance rotated).
func (r *run) deliverCurrent() {
	if err := r.deliver(r.st.Current, r.st.Generation); err != nil {
		r.fail("deliver", err, nil)
		return
	}
	if err := r.apply(new(store.Change).SetDelivered(r.e.store.Instance(), r.st.Generation)); err != nil {
		r.e.log.Error("recording delivery", "token", r.name(), "err", err)
	}
}

// revokePrevious revokes the previous token and forgets it. It reports success.
func (r *run) revokePrevious() bool {
	prev := r.st.Previous
	cur := providers.Token{}
	if r.st.Current != nil {
		cur = *r.st.Current
	}
	start := r.e.now()
	err := r.t.Provider.Revoke(r.ctx, *prev, cur)
	r.observe("revoke", start, err)
	if err != nil {
		r.fail("revoke", fmt.Errorf("revoking previous token: %w", err), r.st.Intent)
		return false
	}
	if err := r.apply(new(store.Change).DropPrevious()); err != nil {
		return false
	}
	r.st.Previous = nil
	r.e.log.Info("revoked previous token", "token", r.name())
	return true
}

// fail records a failed step: the error class decides what comes next. in is the intent to keep (nil
// clears it): kept while a pending token waits or a vendor-side leftover may need revoking.
func (r *run) fail(op string, err error, in *store.Intent) {
	class := providers.ClassOf(err)
	c := new(store.Change)
	toRecreate := false
	switch {
	case op == "renew" && (class == providers.NotRenewable || class == providers.Unauthorized || class == providers.Ambiguous):
		// Renewing is over for this token (or its refresh credential may be spent): recreate, through the
		// provider's own login where it has one.
		c.SetRenewStuck(true)
		in = nil
		toRecreate = true
	case in != nil && class == providers.Ambiguous:
		in.Lost = true
	}
	c.SetIntent(in)
	if in == nil {
		r.st.Intent = nil
	}

	failures := r.st.Failures + 1
	untilExpiry := time.Duration(0)
	if cur := r.t.planned(r.st).Current; cur != nil && !cur.ExpiresAt.IsZero() {
		untilExpiry = cur.ExpiresAt.Sub(r.e.now()) // on our clock
	}
	wait := scheduler.Backoff(failures, r.t.Policy.RetryMin, r.t.Policy.RetryMax, untilExpiry, providers.RetryAfterOf(err), rand.Float64)
	needsPerson := class == providers.Unauthorized || class == providers.Permanent
	// A renew that is over goes straight to recreate; every other failure, renews included, backs off.
	if toRecreate {
		wait = 0 // go straight to recreate
		needsPerson = false
	} else if needsPerson {
		// No blind retries of a refused credential: try again slowly, and alert meanwhile; but never so
		// slowly that fewer than three attempts fit before the current token expires.
		slow := r.t.Policy.RetryMax
		if untilExpiry > 0 {
			slow = min(slow, untilExpiry/3)
		}
		wait = max(wait, slow)
	}
	msg := r.scrub(err.Error())
	c.SetFailure(msg, failures, r.e.now().Add(wait), needsPerson)
	if aerr := r.apply(c); aerr != nil {
		r.e.log.Error("recording failure", "token", r.name(), "err", aerr)
	}
	r.e.log.Warn("step failed", "token", r.name(), "op", op, "attempt", failures, "class", class.String(),
		"retry_in", wait.Round(time.Millisecond), "err", msg)
}

// scrub removes any secret tokend holds for this token from msg: a last line of defence for errors
// built by code that should not have put one there.
func (r *run) scrub(msg string) string {
	for _, t := range []*providers.Token{r.st.Current, r.st.Previous, r.st.Pending} {
		if t == nil {
			continue
		}
		for _, s := range []providers.Secret{t.Secret, t.Refresh} {
			if len(s.Reveal()) >= 4 {
				msg = strings.ReplaceAll(msg, s.Reveal(), "<secret>")
			}
		}
	}
	return msg
}

func (r *run) observe(op string, start time.Time, err error) {
	result := "success"
	if err != nil {
		result = providers.ClassOf(err).String()
	}
	r.e.observer.Operation(r.name(), r.t.ProviderName, op, result, r.e.now().Sub(start))
}
