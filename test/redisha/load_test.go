package redisha

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/rotation"
	"github.com/tokend/tokend/scheduler"
	"github.com/tokend/tokend/sinks"
	"github.com/tokend/tokend/store"
)

// recSink is one token's sink: it keeps what it was given, by generation.
type recSink struct {
	mu        sync.Mutex
	gen       int64
	secret    string
	byGen     map[int64]string
	conflicts []int64     // generations delivered twice with different secrets: a write Redis lost
	newGenAt  []time.Time // when each new generation arrived
}

func (s *recSink) Deliver(_ context.Context, d sinks.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := d.Secret.Reveal()
	if old, ok := s.byGen[d.Generation]; ok && old != sec {
		s.conflicts = append(s.conflicts, d.Generation)
	}
	if _, ok := s.byGen[d.Generation]; !ok {
		s.newGenAt = append(s.newGenAt, time.Now())
	}
	s.byGen[d.Generation] = sec
	s.gen, s.secret = d.Generation, sec
	return nil
}
func (s *recSink) String() string { return "memory" }
func (s *recSink) Close() error   { return nil }

func (s *recSink) last() (int64, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen, s.secret
}

// deliveries returns when new generations arrived.
func (s *recSink) deliveries() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.newGenAt)
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

// load is tokend's rotation engine and scheduler loop, in process, rotating many tokens every few
// seconds on one Redis deployment: half renewed in place with a rotating refresh credential (a replay
// would show in the fake's Stats), half recreated with a new vendor-side token each time (a leak would show
// in the fake's Tokens).
type load struct {
	t          *testing.T
	rdb        redis.UniversalClient
	st         *store.Store
	eng        *rotation.Engine
	renewing   *providertest.Fake
	recreating *providertest.Fake
	tokens     map[string]*rotation.Token
	sinks      map[string]*recSink
	names      []string
	logs       *syncBuffer
	stop       context.CancelFunc
	done       chan struct{}
}

const stateKey = "0123456789abcdef0123456789abcdef"

// Rotation timing: a renewed token lives 20s and is renewed when 85% of that is left (every 1.3-3s with
// jitter); a recreated token has no expiry and is recreated every 2.1-3s; previous tokens are revoked
// 1s after their replacement was promoted.
func busyPolicy(renewing bool) config.Resolved {
	p := config.Resolved{RecreateBefore: time.Second, MaxAge: 3 * time.Second, Jitter: 0.3,
		RevokeAfter: time.Second, RetryMin: 200 * time.Millisecond, RetryMax: time.Second}
	if renewing {
		p.RenewBefore = config.Window{IsShare: true, Share: 0.85}
		p.Jitter = 0.1
	}
	return p
}

// quietPolicy rotates nothing for a while, so the state can be checked at rest.
func quietPolicy(renewing bool) config.Resolved {
	p := busyPolicy(renewing)
	p.MaxAge, p.Jitter = time.Hour, 0
	p.RenewBefore = config.Window{IsShare: true, Share: 0.1}
	return p
}

func startLoad(t *testing.T, rdb redis.UniversalClient, perKind int) *load {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l := &load{
		t: t, rdb: rdb, logs: logs, done: make(chan struct{}),
		renewing:   providertest.NewFake(providertest.FakeOptions{Lifetime: 20 * time.Second, Renewable: true, RotatingRefresh: true}),
		recreating: providertest.NewFake(providertest.FakeOptions{}),
		tokens:     map[string]*rotation.Token{}, sinks: map[string]*recSink{},
	}
	for i := range perKind {
		for _, kind := range []string{"renew", "recreate"} {
			name := fmt.Sprintf("%s-%03d", kind, i)
			fake, k := l.recreating, "api_token"
			if kind == "renew" {
				fake, k = l.renewing, "access_token"
			}
			s := &recSink{byGen: map[int64]string{}}
			l.sinks[name] = s
			l.names = append(l.names, name)
			l.tokens[name] = &rotation.Token{Config: config.Token{Name: name, Kind: k}, Policy: busyPolicy(kind == "renew"),
				Provider: fake.Provider(), ProviderName: kind, Sinks: []sinks.Sink{s}}
		}
	}
	sort.Strings(l.names)
	st, err := store.New(rdb, []byte(stateKey), store.Options{Instance: "ha", LeaseTTL: 5 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	l.st = st
	l.eng = rotation.New(st, l.tokens, rotation.Options{Logger: log})
	waitFor(t, 10*time.Second, "loading state", func() error { return l.eng.LoadAll(context.Background()) })
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	loop := &scheduler.Loop{Index: st, Work: l.eng.Work, Owns: l.eng.Owns, Workers: 16, MaxSleep: 500 * time.Millisecond, Logger: log}
	go func() { loop.Run(ctx); close(l.done) }()
	t.Cleanup(l.halt)
	return l
}

// halt stops the loop and waits for the work under way.
func (l *load) halt() {
	l.stop()
	<-l.done
}

// fakeOf returns the vendor of name.
func (l *load) fakeOf(name string) *providertest.Fake {
	if strings.HasPrefix(name, "renew") {
		return l.renewing
	}
	return l.recreating
}

// rotatedSince returns the tokens that got no new generation after since.
func (l *load) notRotatedSince(since time.Time, names []string) []string {
	var out []string
	for _, n := range names {
		d := l.sinks[n].deliveries()
		if len(d) == 0 || !d[len(d)-1].After(since) {
			out = append(out, n)
		}
	}
	return out
}

// waitRotated waits until every name got a new generation after since.
func (l *load) waitRotated(d time.Duration, since time.Time, names []string) {
	l.t.Helper()
	waitFor(l.t, d, "every token rotated", func() error {
		if left := l.notRotatedSince(since, names); len(left) > 0 {
			return fmt.Errorf("%d tokens not rotated yet, e.g. %s", len(left), left[0])
		}
		return nil
	})
}

// rotationFigures returns how many new generations were delivered in [from, to), when the first one
// after from came among names, and when every one of names had one after from.
func (l *load) rotationFigures(from, to time.Time, names []string) (during int, first, all time.Time) {
	for _, n := range l.names {
		for _, at := range l.sinks[n].deliveries() {
			if !at.Before(from) && at.Before(to) {
				during++
			}
		}
	}
	for _, n := range names {
		for _, at := range l.sinks[n].deliveries() {
			if at.After(from) {
				if first.IsZero() || at.Before(first) {
					first = at
				}
				if at.After(all) {
					all = at
				}
				break
			}
		}
	}
	return during, first, all
}

// probeWritable writes key every 20ms from now until a write succeeds, and returns when that was.
func (l *load) probeWritable(key string, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err = l.rdb.Set(ctx, key, "1", time.Minute).Err()
		cancel()
		if err == nil {
			return time.Now(), nil
		}
		<-tick.C
	}
	return time.Time{}, fmt.Errorf("%s not writable %v after the kill: %w", key, limit, err)
}

// settle switches every token to a policy that rotates nothing for a while, waits until every token is at
// rest (current, nothing pending, previous revoked, its sink holding the current secret, which the vendor
// accepts), then stops the loop.
func (l *load) settle(d time.Duration) {
	l.t.Helper()
	quiet := map[string]*rotation.Token{}
	for n, tk := range l.tokens {
		c := *tk
		c.Policy = quietPolicy(strings.HasPrefix(n, "renew"))
		quiet[n] = &c
	}
	l.eng.SetTokens(quiet)
	// Reschedule from the new policy, as a reload does.
	waitFor(l.t, 10*time.Second, "rescheduling", func() error { return l.eng.LoadAll(context.Background()) })
	waitFor(l.t, d, "every token at rest", func() error {
		var bad []string
		for _, n := range l.names {
			if msg := l.atRest(n); msg != "" {
				bad = append(bad, n+": "+msg)
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("%d tokens not at rest, e.g. %s", len(bad), bad[0])
		}
		return nil
	})
	l.halt()
}

// atRest returns what keeps name from being at rest, or "".
func (l *load) atRest(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := l.st.Get(ctx, name)
	switch {
	case err != nil:
		return err.Error()
	case st.Current == nil:
		return "no current token"
	case st.Intent != nil || st.Pending != nil:
		return "rotation under way"
	case st.Previous != nil:
		return "previous token not revoked yet"
	case st.Failed:
		return "failed: " + st.LastError
	}
	gen, sec := l.sinks[name].last()
	switch {
	case sec != st.Current.Secret.Reveal() || gen != st.Generation:
		return fmt.Sprintf("sink holds generation %d, Redis %d", gen, st.Generation)
	case !l.fakeOf(name).Valid(sec):
		return "the vendor refuses the sink's secret"
	}
	return ""
}

// verify checks the state at rest: no refresh credential replayed, no vendor-side token but the current
// ones, no generation delivered twice with different secrets, and no secret in the logs. It returns the
// number of tokens lost (0 when every check passed).
func (l *load) verify() int {
	l.t.Helper()
	lost := 0
	for _, f := range []*providertest.Fake{l.renewing, l.recreating} {
		if r := f.Stats().Replays; r != 0 {
			l.t.Errorf("%d refresh credentials replayed", r)
		}
	}
	current := map[string]bool{}
	for _, n := range l.names {
		if msg := l.atRest(n); msg != "" {
			l.t.Errorf("%s: %s", n, msg)
			lost++
			continue
		}
		st, _ := l.st.Get(context.Background(), n)
		current[st.Current.ID] = true
		if c := l.sinks[n].conflicts; len(c) > 0 {
			l.t.Errorf("%s: generations %v delivered twice with different secrets (a write was lost)", n, c)
			lost++
		}
	}
	for _, f := range []*providertest.Fake{l.renewing, l.recreating} {
		for _, tk := range f.Tokens() {
			if !current[tk.ID] {
				l.t.Errorf("vendor-side token %s (%s) leaked: no token's current one", tk.ID, tk.Name)
			}
		}
	}
	logs := l.logs.String()
	for _, s := range l.sinks {
		for _, sec := range s.byGen {
			if strings.Contains(logs, sec) {
				l.t.Fatalf("a secret is in the logs")
			}
		}
	}
	return lost
}

// report logs the figures of one failover.
func (l *load) report(kind string, killed, writable time.Time, affected []string) {
	l.t.Helper()
	during, first, all := l.rotationFigures(killed, writable, affected)
	var before int
	for _, n := range l.names {
		for _, at := range l.sinks[n].deliveries() {
			if at.Before(killed) && at.After(killed.Add(-3*time.Second)) {
				before++
			}
		}
	}
	ws := l.st.WaitStats()
	warnings := strings.Count(l.logs.String(), "reached no replica in time")
	l.t.Logf("FIGURES %s: tokens=%d, rotations/s before the kill=%.1f, rotations during the failover (kill → writable)=%d, "+
		"Redis writable again after %.2fs, first rotation of an affected token after %.2fs, every affected token (%d) rotated after %.2fs, "+
		"WAIT acked=%d unacked=%d unchecked=%d (warnings %d)",
		kind, len(l.names), float64(before)/3, during, writable.Sub(killed).Seconds(), first.Sub(killed).Seconds(),
		len(affected), all.Sub(killed).Seconds(), ws.Acked, ws.Unacked, ws.Unchecked, warnings)
}
