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
}

func (l *Loop) init() {
	l.once.Do(func() {
		l.wake = make(chan struct{}, 1)
		l.inFlight = map[string]bool{}
		l.notUntil = map[string]time.Time{}
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

// Run loops until ctx ends, then waits for the workers it started and returns.
func (l *Loop) Run(ctx context.Context) {
	l.init()
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, l.Workers)
	const batch = 1000
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if l.Tick != nil {
			l.Tick()
		}
		now := l.Now()
		items, err := l.Index.Due(ctx, now, batch+l.Workers)
		if err != nil && ctx.Err() == nil {
			l.Logger.Warn("reading due index", "err", err)
		}
		full := false
		for _, it := range items {
			if !l.Owns(it.Name) || !l.claim(it.Name, now) {
				continue
			}
			select {
			case sem <- struct{}{}:
			default:
				l.release(it.Name, time.Time{})
				full = true
			}
			if full {
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
		sleep := l.MaxSleep
		// Sleep until the next future entry: entries already due are in flight, put off, or another
		// instance's, and a worker finishing wakes the loop.
		if next, ok, err := l.Index.NextAfter(ctx, now); err == nil && ok && !full {
			if d := next.Sub(l.Now()); d < sleep {
				sleep = max(d, 0)
			}
		}
		// A due token that was put off is offered again when its put-off ends.
		if until, ok := l.putOffUntil(now); ok && !full {
			if d := until.Sub(l.Now()); d < sleep {
				sleep = max(d, 0)
			}
		}
		if full {
			sleep = l.MaxSleep // a worker finishing wakes the loop
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

// claim marks name in flight unless it already is or was put off.
func (l *Loop) claim(name string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight[name] || now.Before(l.notUntil[name]) {
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
	if !notBefore.IsZero() {
		l.notUntil[name] = notBefore
	}
}
