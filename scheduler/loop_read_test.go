package scheduler

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// sortedIndex is an in-memory due index that answers as the store does (earliest first, at most limit)
// and records how it was read.
type sortedIndex struct {
	mu        sync.Mutex
	due       map[string]time.Time
	limits    []int // the limit of every Due call
	returned  int   // entries returned by Due calls
	nextAfter int   // NextAfter calls
}

func newSortedIndex() *sortedIndex { return &sortedIndex{due: map[string]time.Time{}} }

func (s *sortedIndex) set(name string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.due[name] = at
}

func (s *sortedIndex) Due(_ context.Context, now time.Time, limit int) ([]store.DueItem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = append(s.limits, limit)
	var out []store.DueItem
	for n, at := range s.due {
		if !at.After(now) {
			out = append(out, store.DueItem{Name: n, At: at})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Name < out[j].Name
	})
	out = out[:min(len(out), limit)]
	s.returned += len(out)
	return out, nil
}

func (s *sortedIndex) NextAfter(_ context.Context, now time.Time) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextAfter++
	var best time.Time
	for _, at := range s.due {
		if at.After(now) && (best.IsZero() || at.Before(best)) {
			best = at
		}
	}
	return best, !best.IsZero(), nil
}

func (s *sortedIndex) reads() (limits []int, nextAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.limits...), s.nextAfter
}

func runLoop(t *testing.T, l *Loop) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// Under a backlog the loop asks the due index only for what it can hand out, not for 1,016 entries each
// time a worker frees up, does not look for the next future entry while due tokens wait for a worker (a
// finishing worker wakes it), and does not hand a token out again for an entry read before its worker
// rescheduled it.
func TestLoopAsksOnlyForWhatItCanHandOut(t *testing.T) {
	const workers, tokens = 4, 200
	idx := newSortedIndex()
	now := time.Now()
	for i := range tokens {
		idx.set(fmt.Sprintf("tok-%03d", i), now.Add(-time.Hour+time.Duration(i)*time.Millisecond))
	}
	gate := make(chan struct{})
	var openGate sync.Once
	var ticks atomic.Int64
	var mu sync.Mutex
	worked := map[string]int{}
	l := &Loop{
		Index: idx,
		Owns:  func(string) bool { return true },
		Work: func(_ context.Context, name string) time.Time {
			<-gate
			idx.set(name, time.Now().Add(time.Hour)) // the engine schedules the next action
			mu.Lock()
			defer mu.Unlock()
			worked[name]++
			return time.Time{}
		},
		Tick:     func() { ticks.Add(1) },
		Workers:  workers,
		MaxSleep: time.Hour, // only due times and Wake may wake it
	}
	runLoop(t, l)
	t.Cleanup(func() { openGate.Do(func() { close(gate) }) }) // before runLoop's: Run waits for its workers

	waitUntil(t, "every worker busy", func() bool { return l.Busy() == workers })
	for i := range int64(3) {
		n := ticks.Load()
		l.Wake()
		waitUntil(t, fmt.Sprintf("iteration after wake %d", i+1), func() bool { return ticks.Load() > n })
	}
	limits, nextAfter := idx.reads()
	if len(limits) != 1 || nextAfter != 0 {
		t.Errorf("with every worker busy and due tokens waiting: %d reads of the due index (limits %v) and %d NextAfter calls, want 1 and 0",
			len(limits), limits, nextAfter)
	}

	openGate.Do(func() { close(gate) })
	waitUntil(t, "every due token worked", func() bool { mu.Lock(); defer mu.Unlock(); return len(worked) == tokens })
	mu.Lock()
	for name, n := range worked {
		if n != 1 {
			// A reply read before the token's worker rescheduled it still lists it as due.
			t.Errorf("%s worked %d times, want once", name, n)
		}
	}
	mu.Unlock()
	limits, _ = idx.reads()
	// At most: every slot free, every slot's token still in flight, and the margin; doubled once if a
	// worker finished between counting and reading.
	bound := 2 * (2*workers + readMargin)
	for i, n := range limits {
		if n > bound {
			t.Fatalf("read %d of the due index asked for %d entries, want at most %d (all reads: %v)", i, n, bound, limits)
		}
	}
}

// Entries this instance cannot start (another instance's tokens, a dead instance's that stay due, tokens
// put off because their lease is held) do not hide this instance's own due token behind them, up to
// maxRead of them: the loop reads further until it finds it, in a few iterations and without waiting for
// MaxSleep. (Beyond maxRead such entries still hide it, as before: the due index is read from its start.)
func TestLoopFindsItsDueTokenBehindEntriesItCannotStart(t *testing.T) {
	const workers, foreign, putOff = 4, 300, 40
	idx := newSortedIndex()
	now := time.Now()
	for i := range foreign {
		idx.set(fmt.Sprintf("other-%03d", i), now.Add(-2*time.Hour+time.Duration(i)*time.Millisecond))
	}
	for i := range putOff {
		idx.set(fmt.Sprintf("held-%03d", i), now.Add(-time.Hour+time.Duration(i)*time.Millisecond))
	}
	idx.set("mine", now.Add(-time.Second))
	var ticks atomic.Int64
	var minedAt atomic.Int64 // the iteration in which "mine" was handed out
	l := &Loop{
		Index: idx,
		Owns:  func(name string) bool { return name == "mine" || name[:4] == "held" },
		Work: func(_ context.Context, name string) time.Time {
			if name != "mine" {
				return time.Now().Add(time.Hour) // another instance holds the lease: put off, still due
			}
			minedAt.Store(ticks.Load())
			idx.set(name, time.Now().Add(time.Hour))
			return time.Time{}
		},
		Tick:     func() { ticks.Add(1) },
		Workers:  workers,
		MaxSleep: time.Hour, // only due times, put-offs and Wake may wake it
	}
	runLoop(t, l)

	waitUntil(t, "the token behind the others' entries worked", func() bool { return minedAt.Load() > 0 })
	// Each iteration hands out a free worker to each put-off token it meets: at most one iteration per
	// put-off token, as workers come back one at a time.
	if n, most := minedAt.Load(), int64(putOff+10); n > most {
		t.Errorf("own due token handed out in iteration %d, want by iteration %d", n, most)
	}
	limits, _ := idx.reads()
	for i, n := range limits {
		if n > maxRead+workers {
			t.Fatalf("read %d asked for %d entries, more than the %d cap", i, n, maxRead+workers)
		}
	}
}
