package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/store"
)

// checker samples the cluster every 250 ms until stopped:
//   - every sink of every instance: once written, the vendor must accept what it holds (a bad sample
//     otherwise; a sink that disappears is also one);
//   - every token's state in Redis: a generation promoted before its predecessor was due is a double
//     rotation (and so is a jump of more than one generation between two samples);
//   - every vendor-side token: one that no state holds (current, pending, previous) for longer than
//     leakAfter is a leak, counted once per token.
//
// Replays and chain deletions come from the fakes' counters.
type checker struct {
	c         *cluster
	leakAfter time.Duration

	mu          sync.Mutex
	samples     int
	bad         int
	badDetail   []string
	written     map[string]bool // sink path -> written once
	gens        map[string]genSeen
	doubles     int
	doubleInfo  []string
	promotions  int
	unheldSince map[string]time.Time // provider/id -> first sample that found nobody holding it
	leaked      map[string]bool
	redisErrors int

	cancel context.CancelFunc
	done   chan struct{}
}

// genSeen is the last sample of one token's state.
type genSeen struct {
	gen int64
	due time.Time // when the token of gen was due for rotation (zero: unknown)
}

func (c *cluster) startChecker(leakAfter time.Duration) *checker {
	ctx, cancel := context.WithCancel(context.Background())
	k := &checker{c: c, leakAfter: leakAfter, written: map[string]bool{}, gens: map[string]genSeen{},
		unheldSince: map[string]time.Time{}, leaked: map[string]bool{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		r, closeFn := c.reader()
		defer closeFn()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			k.sample(ctx, r)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	c.t.Cleanup(k.stop)
	return k
}

func (k *checker) stop() {
	k.cancel()
	<-k.done
}

// due is when tok becomes due for rotation under the cluster's timing (renew_before 50%, max_age,
// recreate_before), the earliest of the rules that apply; zero when unknown.
func (k *checker) due(tok *providers.Token) time.Time {
	if tok == nil {
		return time.Time{}
	}
	var cands []time.Time
	if !tok.ExpiresAt.IsZero() && !tok.IssuedAt.IsZero() {
		cands = append(cands, tok.IssuedAt.Add(tok.ExpiresAt.Sub(tok.IssuedAt)/2))
	}
	if !tok.CreatedAt.IsZero() {
		cands = append(cands, tok.CreatedAt.Add(k.c.timing.MaxAge))
	}
	if !tok.RenewableUntil.IsZero() {
		cands = append(cands, tok.RenewableUntil.Add(-k.c.timing.RecreateBefore))
	}
	var d time.Time
	for _, c := range cands {
		if d.IsZero() || c.Before(d) {
			d = c
		}
	}
	return d
}

// onOurClock returns tok with the times its vendor states on its own clock moved onto ours, when the
// fakes' clocks are ahead (tokend stores the vendor's times as stated and plans on them so translated):
// Commvault's expiry and renewable-until, Huawei's expiry, issue and creation times, a VCD proxy token's
// expiry and Astra's creation time (../shared/api/*.md). A VCD access token's expiry is our clock's.
func (k *checker) onOurClock(spec tokenSpec, tok *providers.Token) *providers.Token {
	d := k.c.timing.Skew
	if tok == nil || d <= 0 {
		return tok
	}
	t := *tok
	move := func(at *time.Time) {
		if !at.IsZero() {
			*at = at.Add(-d)
		}
	}
	switch {
	case spec.provider == "commvault":
		move(&t.ExpiresAt)
		move(&t.RenewableUntil)
	case spec.provider == "huawei":
		move(&t.ExpiresAt)
		move(&t.IssuedAt)
		move(&t.CreatedAt)
	case spec.provider == "vcd" && spec.kind == "proxy_token":
		move(&t.ExpiresAt)
	case spec.provider == "astra":
		move(&t.IssuedAt)
		move(&t.CreatedAt)
	}
	return &t
}

func (k *checker) sample(ctx context.Context, r *store.Store) {
	now := time.Now()
	// Sinks.
	for _, in := range k.c.instances {
		for _, tok := range k.c.vendors.tokens {
			path := filepath.Join(in.sinks, tok.name)
			b, err := os.ReadFile(path)
			k.mu.Lock()
			switch {
			case err == nil:
				k.samples++
				k.written[path] = true
				if !k.c.vendors.valid(tok.provider, strings.TrimSpace(string(b))) {
					k.bad++
					if len(k.badDetail) < 20 {
						k.badDetail = append(k.badDetail, fmt.Sprintf("%s %s at %s", in.id, tok.name, now.Format("15:04:05.000")))
					}
				}
			case k.written[path]:
				k.samples++
				k.bad++
				if len(k.badDetail) < 20 {
					k.badDetail = append(k.badDetail, fmt.Sprintf("%s %s unreadable: %v", in.id, tok.name, err))
				}
			}
			k.mu.Unlock()
		}
	}
	// State: generations and what tokend holds. Skipped while Redis is down.
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	states, err := r.Load(lctx, k.c.names())
	cancel()
	if err != nil {
		k.mu.Lock()
		k.redisErrors++
		k.mu.Unlock()
		return
	}
	live := k.c.vendors.liveIDs() // after Load: a token created between the two is not yet held (grace covers it)
	held := map[string]bool{}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, spec := range k.c.vendors.tokens {
		st := states[spec.name]
		if st == nil {
			continue
		}
		for _, tok := range []*providers.Token{st.Current, st.Pending, st.Previous} {
			if tok == nil {
				continue
			}
			held[spec.provider+"/"+tok.ID] = true
			for _, v := range tok.Attrs { // e.g. the API token behind a VCD access token
				held[spec.provider+"/"+v] = true
			}
		}
		prev, seen := k.gens[spec.name]
		if seen && st.Generation > prev.gen {
			k.promotions += int(st.Generation - prev.gen)
			early := prev.gen >= 1 && !prev.due.IsZero() && now.Add(time.Second).Before(prev.due)
			if st.Generation-prev.gen > 1 || early {
				k.doubles++
				if len(k.doubleInfo) < 20 {
					k.doubleInfo = append(k.doubleInfo, fmt.Sprintf("%s: generation %d -> %d at %s, gen %d was due at %s",
						spec.name, prev.gen, st.Generation, now.Format("15:04:05.000"), prev.gen, prev.due.Format("15:04:05.000")))
				}
			}
		}
		if !seen || st.Generation != prev.gen || prev.due.IsZero() {
			k.gens[spec.name] = genSeen{gen: st.Generation, due: k.due(k.onOurClock(spec, st.Current))}
		}
	}
	exists := map[string]bool{}
	for provider, ids := range live {
		for _, id := range ids {
			key := provider + "/" + id
			exists[key] = true
			if held[key] {
				delete(k.unheldSince, key)
				continue
			}
			since, ok := k.unheldSince[key]
			if !ok {
				k.unheldSince[key] = now
				continue
			}
			if now.Sub(since) > k.leakAfter && !k.leaked[key] {
				k.leaked[key] = true
			}
		}
	}
	for key := range k.unheldSince {
		if !exists[key] { // revoked since: no leak
			delete(k.unheldSince, key)
		}
	}
}

// unheld lists the vendor-side tokens nobody holds now (from the last sample).
func (k *checker) unheld() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for key := range k.unheldSince {
		out = append(out, key)
	}
	sort.Strings(out)
	return out
}

// report are the checker's figures.
type report struct {
	Samples, Bad, Doubles, Promotions, Leaks, RedisErrors int
	BadDetail, DoubleDetail, LeakDetail                   []string
}

func (k *checker) report() report {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := report{Samples: k.samples, Bad: k.bad, Doubles: k.doubles, Promotions: k.promotions, Leaks: len(k.leaked),
		RedisErrors: k.redisErrors, BadDetail: k.badDetail, DoubleDetail: k.doubleInfo}
	for key := range k.leaked {
		r.LeakDetail = append(r.LeakDetail, key)
	}
	sort.Strings(r.LeakDetail)
	return r
}

// finish waits until no vendor-side token is unheld (the leak check's end state), stops the checker, and
// fails the test on any bad sample, leak, double rotation, replay or chain deletion. It logs the figures
// on one FIGURES line.
func (k *checker) finish(scenario string, extra string) report {
	t := k.c.t
	t.Helper()
	// The tokens nobody holds now must come to be held or revoked before they count as leaks; tokens
	// created after this point (rotations go on) are left to the next run.
	deadline := time.Now().Add(k.leakAfter + 10*time.Second)
	pending := k.unheld()
	for len(pending) > 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		now := map[string]bool{}
		for _, key := range k.unheld() {
			now[key] = true
		}
		k.mu.Lock()
		var still []string
		for _, key := range pending {
			if now[key] && !k.leaked[key] {
				still = append(still, key)
			}
		}
		k.mu.Unlock()
		pending = still
	}
	k.stop()
	r := k.report()
	for _, key := range pending { // still unheld at the deadline
		r.Leaks++
		r.LeakDetail = append(r.LeakDetail, key+" (at the end)")
	}
	st := k.c.vendors.stats()
	t.Logf("FIGURES %s: %s sink samples=%d bad=%d promotions=%d double-rotations=%d leaks=%d replays=%d chain-deletions=%d vendor creates=%d renews=%d revokes=%d requests=%d live=%d",
		scenario, extra, r.Samples, r.Bad, r.Promotions, r.Doubles, r.Leaks, st.Replays, st.ChainDeletions,
		st.Creates, st.Renews, st.Revokes, st.Requests, st.Live)
	dump := false
	if r.Bad != 0 {
		t.Errorf("%d sink samples held a token the vendor did not accept: %v", r.Bad, r.BadDetail)
		dump = true
	}
	if r.Leaks != 0 {
		for _, key := range r.LeakDetail {
			t.Logf("leaked: %s", k.c.vendors.describe(strings.TrimSuffix(key, " (at the end)")))
		}
		t.Errorf("%d vendor-side tokens leaked (held by no state past %v): %v", r.Leaks, k.leakAfter, r.LeakDetail)
		dump = true
	}
	if r.Doubles != 0 {
		t.Errorf("%d double rotations: %v", r.Doubles, r.DoubleDetail)
		dump = true
	}
	if st.Replays != 0 || st.ChainDeletions != 0 {
		t.Errorf("replays=%d chain deletions=%d, want 0", st.Replays, st.ChainDeletions)
		dump = true
	}
	k.mu.Lock()
	for _, in := range k.c.instances {
		for _, tok := range k.c.vendors.tokens {
			if p := filepath.Join(in.sinks, tok.name); !k.written[p] {
				t.Errorf("%s: sink %s was never written", in.id, tok.name)
				dump = true
			}
		}
	}
	k.mu.Unlock()
	if dump {
		for _, in := range k.c.instances {
			keep := filepath.Join(os.TempDir(), "tokend-reliability-"+scenario+"-"+in.id+".log")
			if b, err := os.ReadFile(filepath.Join(in.dir, "tokend.log")); err == nil && os.WriteFile(keep, b, 0o600) == nil {
				t.Logf("whole log of %s kept in %s", in.id, keep)
			}
			t.Logf("log tail of %s:\n%s", in.id, in.logTail())
		}
	}
	return r
}
