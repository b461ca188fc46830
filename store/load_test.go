package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// loadNames is 2,500 tokens: three batches, the last one short. Tokens from 2,000 on have no state yet.
func loadNames(t *testing.T, s *Store) []string {
	t.Helper()
	names := seed(t, s, 2000)
	for i := 2000; i < 2500; i++ {
		names = append(names, fmt.Sprintf("never-seen-%d", i))
	}
	return names
}

func TestLoadEachBatchesInOrder(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "host-a")
		names := loadNames(t, s)
		var got []string
		var sizes []int
		err := s.LoadEach(ctx, names, func(states []*State) error {
			sizes = append(sizes, len(states))
			for _, st := range states {
				got = append(got, st.Name)
				seen := st.Current != nil
				if want := !strings.HasPrefix(st.Name, "never-seen-"); seen != want {
					t.Fatalf("state of %s: current token loaded = %v, want %v", st.Name, seen, want)
				}
				if seen && st.Current.Secret.Reveal() == "" {
					t.Fatalf("state of %s: the secret was not decrypted", st.Name)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// One call per batch of 1,000, never the whole set at once: the caller holds a batch, not every state.
		if want := []int{1000, 1000, 500}; !slices.Equal(sizes, want) {
			t.Errorf("LoadEach() batch sizes = %v, want %v", sizes, want)
		}
		if len(got) != len(names) {
			t.Fatalf("LoadEach() gave %d states, want %d", len(got), len(names))
		}
		for i := range names {
			if got[i] != names[i] {
				t.Fatalf("LoadEach() state %d is %s, want %s (the order of names)", i, got[i], names[i])
			}
		}
		all, err := s.Load(ctx, names)
		if err != nil || len(all) != len(names) {
			t.Fatalf("Load() = %d states, %v; want %d", len(all), err, len(names))
		}
	})
}

// A state that does not decode ends the load with an error naming that token (the first one, in the order
// of names, when several fail), and no batch from that one on reaches fn.
func TestLoadEachStopsAtTheFirstBadToken(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "host-a")
		names := loadNames(t, s)
		// token-1500's current token sealed for another name: it does not open. token-1700's is not JSON.
		moved, err := s.encodeToken("token-1", benchToken(1, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		rdb.HSet(ctx, s.stateKey("token-1500"), fCur, moved)
		rdb.HSet(ctx, s.stateKey("token-1700"), fCur, "{not json")
		var calls int
		err = s.LoadEach(ctx, names, func(states []*State) error {
			calls++
			return nil
		})
		if !errors.Is(err, ErrUnseal) || !strings.Contains(err.Error(), "token-1500") {
			t.Errorf("LoadEach() = %v, want ErrUnseal naming token-1500", err)
		}
		if calls != 1 {
			t.Errorf("LoadEach() called fn %d times, want 1 (the batch before the bad token)", calls)
		}
		if _, err := s.Load(ctx, names); !errors.Is(err, ErrUnseal) || !strings.Contains(err.Error(), "token-1500") {
			t.Errorf("Load() = %v, want ErrUnseal naming token-1500", err)
		}
	})
}

func TestLoadEachStops(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix, "host-a")
		names := loadNames(t, s)
		t.Run("fn error", func(t *testing.T) {
			stop := errors.New("stop")
			var calls int
			err := s.LoadEach(context.Background(), names, func([]*State) error { calls++; return stop })
			if !errors.Is(err, stop) || calls != 1 {
				t.Errorf("LoadEach() = %v after %d calls, want %v after 1", err, calls, stop)
			}
		})
		t.Run("ctx ends", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var calls int
			err := s.LoadEach(ctx, names, func([]*State) error { calls++; cancel(); return nil })
			if !errors.Is(err, context.Canceled) || calls != 1 {
				t.Errorf("LoadEach() = %v after %d calls, want context.Canceled after 1", err, calls)
			}
		})
		t.Run("no names", func(t *testing.T) {
			err := s.LoadEach(context.Background(), nil, func([]*State) error { t.Error("fn called"); return nil })
			if err != nil {
				t.Errorf("LoadEach(nil) = %v", err)
			}
		})
	})
}
