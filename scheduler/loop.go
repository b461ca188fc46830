package scheduler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tokend/tokend/store"
)

// DueIndex is the part of the store the loop reads.
type DueIndex interface {
	Due(ctx context.Context, now time.Time, limit int) ([]store.DueItem, error)
	NextAfter(ctx context.Context, now time.Time) (time.Time, bool, error)
}

// Loop runs due work on time. Create it with its fields set, then call Run once.
type Loop struct {
	Index DueIndex
	// Work handles one due token on a worker goroutine. It returns the earliest time the loop should offer
	// the token again when the due index will not say (another instance holds its lease); zero otherwise.
	Work func(ctx context.Context, name string) (notBefore time.Time)
	// Owns reports whether this instance manages name (the due index is shared with other instances).
	Owns     func(name string) bool
	Workers  int           // concurrent Work calls; default 16
	MaxSleep time.Duration // the longest the loop sleeps without looking at the index; default 5s
	Now      func() time.Time
	Logger   *slog.Logger
	// Tick is called once per loop iteration, from the loop goroutine itself (the systemd watchdog ping:
	// a wedged loop stops pinging).
	Tick func()
	// Lag observes how late each token was handed to a worker.
	Lag func(time.Duration)

	once     sync.Once
	wake     chan struct{}
	mu       sync.Mutex
	inFlight map[string]bool
	notUntil map[string]time.Time
	// finished holds the tokens whose Work ended since the current read of the due index was sent: their
	// entries in its reply may predate the schedule that Work wrote.
	finished map[string]bool
}

func (l *Loop) init() {
	l.once.Do(func() {
		l.wake = make(chan struct{}, 1)
		l.inFlight = map[string]bool{}
		l.notUntil = map[string]time.Time{}
		l.finished = map[string]bool{}
		if l.Workers <= 0 {
			l.Workers = 16
		}
		if l.MaxSleep <= 0 {
			l.MaxSleep = 5 * time.Second
		}
		if l.Now == nil {
			l.Now = time.Now
		}
		if l.Logger == nil {
			l.Logger = slog.New(slog.DiscardHandler)
		}
	})
}

// Wake makes the loop look at the due index now. It never blocks.
func (l *Loop) Wake() {
	l.init()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Busy reports how many tokens are being worked on.
func (l *Loop) Busy() int {
	l.init()
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.inFlight)
}

// How much of the due index one read asks for. A read asks for what it can hand out (free worker slots)
// plus what it will skip (tokens in flight here, tokens put off, and the entries of the last read that
// this instance does not manage) plus readMargin; a full reply that left a worker idle is read again,
// twice as far, up to maxRead. Asking for maxRead every time made each iteration under a backlog a
// 1,016-entry reply for the few slots that had freed up (docs/benchmarks.md, "Rotation rate").
const (
	readMargin = 16
	maxRead    = 1000 // plus Workers
)

// Run loops until ctx ends, then waits for the workers it started and returns.
func (l *Loop) Run(ctx context.Context) {
	l.init()
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, l.Workers)
	timer := time.NewTimer(0)
	defer timer.Stop()
	foreign := 0 // entries of the last read that this instance does not manage
	for {
		if l.Tick != nil {
			l.Tick()
		}
		now := l.Now()
		// leftBehind: a due token of ours waits for a worker; the worker finishing wakes the loop.
		leftBehind := len(sem) == l.Workers
		limit := l.Workers - len(sem) + l.skipping() + foreign + readMargin
		for !leftBehind {
			limit = min(limit, maxRead+l.Workers)
			l.mu.Lock()
			clear(l.finished)
			l.mu.Unlock()
			items, err := l.Index.Due(ctx, now, limit)
			if err != nil {
				if ctx.Err() == nil {
					l.Logger.Warn("reading due index", "err", err)
				}
				break
			}
			foreign = 0
			for _, it := range items {
				if !l.Owns(it.Name) {
					foreign++
					continue
				}
				if !l.claim(it.Name, now) {
					continue
				}
				select {
				case sem <- struct{}{}:
				default:
					l.release(it.Name, time.Time{})
					leftBehind = true
				}
				if leftBehind {
					break
				}
				if l.Lag != nil {
					l.Lag(now.Sub(it.At))
				}
				wg.Add(1)
				go func(name string) {
					defer wg.Done()
					notBefore := l.Work(context.WithoutCancel(ctx), name)
					l.release(name, notBefore)
					<-sem
					l.Wake()
				}(it.Name)
			}
			// A full reply with a worker still idle may hide due tokens of ours behind entries this
			// instance cannot start (another instance's, a dead one's, in flight, put off): read further.
			if len(items) < limit || limit >= maxRead+l.Workers {
				break
			}
			limit *= 2
		}
		sleep := l.MaxSleep // with a token left behind, a worker finishing wakes the loop
		if !leftBehind {
			// Every due entry was seen: the ones not started are in flight, put off, or another
			// instance's. Sleep until the next future entry, or until a put-off ends.
			if next, ok, err := l.Index.NextAfter(ctx, now); err == nil && ok {
				if d := next.Sub(l.Now()); d < sleep {
					sleep = max(d, 0)
				}
			}
			if until, ok := l.putOffUntil(now); ok {
				if d := until.Sub(l.Now()); d < sleep {
					sleep = max(d, 0)
				}
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(sleep)
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		case <-timer.C:
		}
	}
}

// skipping returns how many due entries a read will meet that the loop does not hand out: tokens in
// flight and tokens put off.
func (l *Loop) skipping() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.inFlight) + len(l.notUntil)
}

// claim marks name in flight unless it already is, was put off, or finished after the reply naming it
// was read (a token handed out again for a stale entry costs a whole Work; the finishing worker wakes the
// loop, and the next read sees the token's new schedule).
func (l *Loop) claim(name string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight[name] || l.finished[name] || now.Before(l.notUntil[name]) {
		return false
	}
	delete(l.notUntil, name)
	l.inFlight[name] = true
	return true
}

// putOffUntil returns the earliest end of a put-off that is still running at now.
func (l *Loop) putOffUntil(now time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for name, until := range l.notUntil {
		if !until.After(now) {
			delete(l.notUntil, name) // over: claim would drop it too
			continue
		}
		if first.IsZero() || until.Before(first) {
			first = until
		}
	}
	return first, !first.IsZero()
}

func (l *Loop) release(name string, notBefore time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.inFlight, name)
	l.finished[name] = true
	if !notBefore.IsZero() {
		l.notUntil[name] = notBefore
	}
}
