package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestHistoryKeepsTheNewestFirstAndIsBounded(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "a")
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		ev := func(i int) Event {
			return Event{Time: t0.Add(time.Duration(i) * time.Second), Operation: fmt.Sprintf("op%d", i), Result: "success", DurationMS: int64(i)}
		}
		// Two batches, the first one larger than the bound on its own.
		var first []Event
		for i := range HistoryLen + 5 {
			first = append(first, ev(i))
		}
		if err := s.AppendHistory(ctx, map[string][]Event{"tok": first, "other": {ev(1000)}}); err != nil {
			t.Fatalf("AppendHistory() = %v", err)
		}
		if err := s.AppendHistory(ctx, map[string][]Event{"tok": {ev(HistoryLen + 5), ev(HistoryLen + 6)}}); err != nil {
			t.Fatalf("AppendHistory() = %v", err)
		}
		got, err := s.History(ctx, "tok", 0)
		if err != nil {
			t.Fatalf("History() = %v", err)
		}
		if len(got) != HistoryLen {
			t.Fatalf("History() has %d events, want %d", len(got), HistoryLen)
		}
		for i, e := range got {
			want := ev(HistoryLen + 6 - i)
			if !e.Time.Equal(want.Time) || e.Operation != want.Operation || e.DurationMS != want.DurationMS {
				t.Fatalf("History()[%d] = %+v, want %+v", i, e, want)
			}
		}
		if n, _ := rdb.LLen(ctx, prefix+":{tok}:log").Result(); n != HistoryLen {
			t.Errorf("LLEN %s:{tok}:log = %d, want %d", prefix, n, HistoryLen)
		}
		if ttl, _ := rdb.PTTL(ctx, prefix+":{tok}:log").Result(); ttl <= 0 || ttl > historyTTL {
			t.Errorf("PTTL of the log = %v, want in (0, %v]", ttl, historyTTL)
		}
		if got, _ := s.History(ctx, "tok", 3); len(got) != 3 || got[0].Operation != ev(HistoryLen+6).Operation {
			t.Errorf("History(3) = %+v, want the 3 newest", got)
		}
		if got, _ := s.History(ctx, "other", 0); len(got) != 1 || got[0].Operation != "op1000" {
			t.Errorf("History(other) = %+v, want its one event", got)
		}
		if got, err := s.History(ctx, "never", 0); err != nil || len(got) != 0 {
			t.Errorf("History(never) = %v, %v, want empty", got, err)
		}
		// A reader without the state key reads the same history.
		if got, err := NewReader(rdb, prefix).History(ctx, "other", 0); err != nil || len(got) != 1 {
			t.Errorf("reader History(other) = %v, %v, want one event", got, err)
		}
	})
}

func TestHistorySkipsEntriesThatDoNotDecode(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "a")
		if err := s.AppendHistory(ctx, map[string][]Event{"tok": {{Operation: "renew", Result: "success"}}}); err != nil {
			t.Fatal(err)
		}
		rdb.LPush(ctx, prefix+":{tok}:log", "{not json")
		got, err := s.History(ctx, "tok", 0)
		if err != nil || len(got) != 1 || got[0].Operation != "renew" {
			t.Fatalf("History() = %+v, %v, want the one good event", got, err)
		}
	})
}

func TestLastErrorsReadsTheScrubbedFailure(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "a")
		l, _, err := s.Acquire(ctx, "bad")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Apply(ctx, new(Change).SetFailure("creating: 401 unauthorized", 1, time.Now(), true)); err != nil {
			t.Fatal(err)
		}
		got, err := s.LastErrors(ctx, []string{"bad", "good"})
		if err != nil {
			t.Fatalf("LastErrors() = %v", err)
		}
		if len(got) != 1 || got["bad"] != "creating: 401 unauthorized" {
			t.Errorf("LastErrors() = %v, want only bad's error", got)
		}
	})
}
