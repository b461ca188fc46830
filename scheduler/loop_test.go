package scheduler

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend/store"
)

// memIndex is an in-memory due index.
type memIndex struct {
	mu  sync.Mutex
	due map[string]time.Time
}

func (m *memIndex) set(name string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.due[name] = at
}

func (m *memIndex) Due(_ context.Context, now time.Time, limit int) ([]store.DueItem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.DueItem
	for n, at := range m.due {
		if !at.After(now) && len(out) < limit {
			out = append(out, store.DueItem{Name: n, At: at})
		}
	}
	return out, nil
}

func (m *memIndex) NextAfter(_ context.Context, now time.Time) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best time.Time
	for _, at := range m.due {
		if at.After(now) && (best.IsZero() || at.Before(best)) {
			best = at
		}
	}
	return best, !best.IsZero(), nil
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoopWorksDueTokensOnceAndOnTime(t *testing.T) {
	idx := &memIndex{due: map[string]time.Time{}}
	var mu sync.Mutex
	worked := map[string]int{}
	release := make(chan struct{})
	var ticks atomic.Int64
	l := &Loop{
		Index: idx,
		Owns:  func(name string) bool { return name != "not-mine" },
		Work: func(_ context.Context, name string) time.Time {
			mu.Lock()
			worked[name]++
			mu.Unlock()
			if name == "slow" {
				<-release
			}
			idx.set(name, time.Now().Add(time.Hour)) // what the engine does: schedule the next action
			return time.Time{}
		},
		Tick:     func() { ticks.Add(1) },
		MaxSleep: time.Hour, // only due times and Wake may wake it
		Workers:  4,
	}
	count := func(n string) int { mu.Lock(); defer mu.Unlock(); return worked[n] }
	now := time.Now()
	idx.set("a", now.Add(-time.Second))
	idx.set("slow", now.Add(-time.Second))
	idx.set("not-mine", now.Add(-time.Second))
	idx.set("later", now.Add(300*time.Millisecond))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()

	waitUntil(t, "due tokens worked", func() bool { return count("a") == 1 && count("slow") == 1 })
	waitUntil(t, "the token due later worked at its time", func() bool { return count("later") == 1 })
	if time.Since(now) < 250*time.Millisecond {
		t.Fatalf("token due in 300ms worked after %v", time.Since(now))
	}
	// "slow" is still in flight and still due: it must not be handed out twice.
	l.Wake()
	l.Wake()
	waitUntil(t, "ticks after wakes", func() bool { return ticks.Load() >= 3 })
	if n := count("slow"); n != 1 {
		t.Fatalf("in-flight token worked %d times, want 1", n)
	}
	if n := count("not-mine"); n != 0 {
		t.Fatalf("another instance's token worked %d times", n)
	}
	// A rotation request: the token becomes due now and Wake brings it forward.
	idx.set("a", time.Now())
	l.Wake()
	waitUntil(t, "requested token worked", func() bool { return count("a") == 2 })

	cancel()
	select {
	case <-done:
		t.Fatal("Run returned while a worker was still busy")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
