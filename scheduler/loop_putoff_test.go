package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"
)

// A token that Work put off (its lease was busy) and that is still due must be offered again when the
// put-off ends, not when the loop next happens to wake (MaxSleep, or another token's due time): the
// engine puts a token off for 100 ms when this process's own poll holds its lease, and a longer sleep
// lets the token's retry wait for the next poll. Seen end to end (cmd/tokend/vendors_e2e_test.go).
func TestLoopOffersAPutOffTokenWhenThePutOffEnds(t *testing.T) {
	idx := &memIndex{due: map[string]time.Time{}}
	var mu sync.Mutex
	var calls []time.Time
	l := &Loop{
		Index: idx,
		Owns:  func(string) bool { return true },
		Work: func(_ context.Context, name string) time.Time {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, time.Now())
			if len(calls) == 1 {
				return time.Now().Add(100 * time.Millisecond) // lease busy: still due, look again soon
			}
			idx.set(name, time.Now().Add(time.Hour))
			return time.Time{}
		},
		MaxSleep: time.Hour, // only due times, put-offs and Wake may wake it
	}
	idx.set("tok", time.Now().Add(-time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitUntil(t, "the put-off token offered again", func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if gap := calls[1].Sub(calls[0]); gap < 100*time.Millisecond {
		t.Errorf("put off for 100ms, offered again after %v", gap)
	}
}
