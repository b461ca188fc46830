package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/store/storetest"
)

// backends runs fn against miniredis and, when one answers, the real Redis (TOKEND_TEST_REDIS_URL, or
// 127.0.0.1:6379). Under CI the real Redis must answer.
func backends(t *testing.T, fn func(t *testing.T, rdb redis.UniversalClient, prefix string)) {
	t.Run("miniredis", func(t *testing.T) {
		m := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { rdb.Close() })
		fn(t, rdb, "tokend")
	})
	t.Run("redis", func(t *testing.T) {
		rdb := storetest.RealRedis(t)
		prefix := "tokendtest-" + randHex(4)
		t.Cleanup(func() {
			ctx := context.Background()
			keys, _ := rdb.Keys(ctx, prefix+":*").Result()
			if len(keys) > 0 {
				rdb.Del(ctx, keys...)
			}
		})
		fn(t, rdb, prefix)
	})
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func testKey() []byte { return []byte("0123456789abcdef0123456789abcdef") }

func newStore(t *testing.T, rdb redis.UniversalClient, prefix, instance string) *Store {
	t.Helper()
	s, err := New(rdb, testKey(), Options{Prefix: prefix, Instance: instance, LeaseTTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tok(id, secret, refresh string, exp time.Time) *providers.Token {
	return &providers.Token{
		ID: id, Name: "tokend-x-g1", Secret: providers.NewSecret(secret), Refresh: providers.NewSecret(refresh),
		IssuedAt: exp.Add(-time.Hour), ExpiresAt: exp, CreatedAt: exp.Add(-time.Hour),
		Attrs: map[string]string{"session": "s-1"},
	}
}

func TestSealer(t *testing.T) {
	k, err := NewSealer(testKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := k.Seal("a", providers.NewSecret("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hunter2") {
		t.Fatalf("sealed value contains the plain text")
	}
	got, err := k.Open("a", sealed)
	if err != nil || got.Reveal() != "hunter2" {
		t.Fatalf("Open() = %q, %v; want hunter2", got.Reveal(), err)
	}
	if _, err := k.Open("b", sealed); !errors.Is(err, ErrUnseal) {
		t.Errorf("Open() under another token name = %v, want ErrUnseal", err)
	}
	other, _ := NewSealer([]byte("ffffffffffffffffffffffffffffffff"))
	if _, err := other.Open("a", sealed); !errors.Is(err, ErrUnseal) {
		t.Errorf("Open() with another key = %v, want ErrUnseal", err)
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Errorf("NewSealer(5 bytes) = nil error, want one")
	}
}

func TestLeaseAndFence(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		a := newStore(t, rdb, prefix, "host-a")
		b := newStore(t, rdb, prefix, "host-b")

		la, st, err := a.Acquire(ctx, "tok")
		if err != nil {
			t.Fatalf("Acquire() = %v", err)
		}
		if st.Current != nil || st.Generation != 0 {
			t.Fatalf("fresh state = %+v, want empty", st)
		}
		if _, _, err := b.Acquire(ctx, "tok"); !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("second instance Acquire() = %v, want ErrLeaseHeld", err)
		}
		if _, _, err := a.Acquire(ctx, "tok"); !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("same process Acquire() = %v, want ErrLeaseHeld", err)
		}
		if err := la.Apply(ctx, new(Change).SetPending(tok("id-1", "s1", "r1", time.Now().Add(time.Hour)))); err != nil {
			t.Fatalf("Apply() = %v", err)
		}

		// The same instance restarted (a new process) takes the lease over; the old holder is fenced out.
		a2 := newStore(t, rdb, prefix, "host-a")
		la2, st2, err := a2.Acquire(ctx, "tok")
		if err != nil {
			t.Fatalf("restarted instance Acquire() = %v", err)
		}
		if la2.Fence <= la.Fence {
			t.Fatalf("fence after takeover = %d, want > %d", la2.Fence, la.Fence)
		}
		if st2.Pending == nil || st2.Pending.Secret.Reveal() != "s1" {
			t.Fatalf("pending after takeover = %+v, want s1", st2.Pending)
		}
		if err := la.Apply(ctx, new(Change).SetFailure("x", 1, time.Time{}, false)); !errors.Is(err, ErrFenced) {
			t.Errorf("stale Apply() = %v, want ErrFenced", err)
		}
		if err := la.Promote(ctx, 1, true, time.Now(), time.Now()); !errors.Is(err, ErrFenced) {
			t.Errorf("stale Promote() = %v, want ErrFenced", err)
		}
		if err := la.Extend(ctx); !errors.Is(err, ErrFenced) {
			t.Errorf("stale Extend() = %v, want ErrFenced", err)
		}
		if err := la2.Extend(ctx); err != nil {
			t.Errorf("Extend() = %v", err)
		}
		if err := la2.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Acquire(ctx, "tok"); err != nil {
			t.Errorf("Acquire() after release = %v", err)
		}
	})
}

func TestPromote(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "host-a")
		now := time.Now().Truncate(time.Millisecond)
		l, _, err := s.Acquire(ctx, "tok")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Promote(ctx, 1, true, now, now); !errors.Is(err, ErrNoPending) {
			t.Fatalf("Promote() with nothing pending = %v, want ErrNoPending", err)
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(l.Apply(ctx, new(Change).SetPending(tok("id-1", "s1", "", now.Add(time.Hour))).
			SetIntent(&Intent{Op: "create", Generation: 1}).SetFailure("boom", 2, now, true)))
		must(l.Promote(ctx, 1, true, now.Add(time.Minute), now))
		st, err := s.Get(ctx, "tok")
		must(err)
		if st.Current == nil || st.Current.ID != "id-1" || st.Generation != 1 || st.Previous != nil || st.Pending != nil ||
			st.Intent != nil || st.Failures != 0 || st.Failed || st.LastError != "" || st.Delivered["host-a"] != 1 {
			t.Fatalf("after first promote: %+v", st)
		}

		must(l.Apply(ctx, new(Change).SetPending(tok("id-2", "s2", "", now.Add(2*time.Hour)))))
		must(l.Promote(ctx, 2, true, now.Add(time.Minute), now))
		st, _ = s.Get(ctx, "tok")
		if st.Current.ID != "id-2" || st.Previous == nil || st.Previous.ID != "id-1" || !st.PrevRevokeAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("after second promote: cur=%v prev=%v revoke=%v", st.Current, st.Previous, st.PrevRevokeAt)
		}
		if st.Previous.Secret.Reveal() != "s1" || st.Current.Attrs["session"] != "s-1" {
			t.Fatalf("token round trip lost data")
		}

		// A third generation may not overwrite a previous token that is still waiting for its revoke.
		must(l.Apply(ctx, new(Change).SetPending(tok("id-3", "s3", "", now.Add(3*time.Hour)))))
		if err := l.Promote(ctx, 3, true, now, now); !errors.Is(err, ErrPreviousLive) {
			t.Fatalf("Promote() over a live previous = %v, want ErrPreviousLive", err)
		}
		// A renew keeps the id: nothing becomes previous.
		must(l.Promote(ctx, 3, false, now, now))
		st, _ = s.Get(ctx, "tok")
		if st.Current.ID != "id-3" || st.Previous.ID != "id-1" {
			t.Fatalf("after renew promote: cur=%v prev=%v", st.Current.ID, st.Previous.ID)
		}
	})
}

func TestNoSecretInRedis(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "host-a")
		l, _, err := s.Acquire(ctx, "tok")
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{"secret-value-" + randHex(8), "refresh-value-" + randHex(8)}
		if err := l.Apply(ctx, new(Change).SetPending(tok("id-1", secrets[0], secrets[1], time.Now().Add(time.Hour)))); err != nil {
			t.Fatal(err)
		}
		if err := l.Promote(ctx, 1, true, time.Now(), time.Now()); err != nil {
			t.Fatal(err)
		}
		keys, err := rdb.Keys(ctx, prefix+":*").Result()
		if err != nil || len(keys) == 0 {
			t.Fatalf("keys = %v, %v", keys, err)
		}
		for _, k := range keys {
			typ, err := rdb.Type(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			var dump string
			h := map[string]string{}
			switch typ {
			case "string":
				dump, _ = rdb.Get(ctx, k).Result()
			case "hash":
				h, _ = rdb.HGetAll(ctx, k).Result()
			case "zset":
				m, _ := rdb.ZRange(ctx, k, 0, -1).Result()
				dump = strings.Join(m, " ")
			default:
				t.Fatalf("key %s has unexpected type %s", k, typ)
			}
			for _, sec := range secrets {
				if strings.Contains(dump, sec) {
					t.Errorf("key %s holds a secret in clear", k)
				}
				for f, v := range h {
					if strings.Contains(v, sec) {
						t.Errorf("key %s field %s holds a secret in clear", k, f)
					}
				}
			}
		}
	})
}

func TestDueIndex(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "host-a")
		now := time.Now()
		for i, n := range []string{"c", "a", "b"} {
			if err := s.Schedule(ctx, n, "renew", now.Add(time.Duration(i-1)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		items, err := s.Due(ctx, now, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range items {
			got = append(got, it.Name)
		}
		if strings.Join(got, ",") != "c,a" {
			t.Errorf("Due() = %v, want [c a]", got)
		}
		if err := s.RequestRotation(ctx, "b", now, true); err != nil {
			t.Fatal(err)
		}
		st, _ := s.Get(ctx, "b")
		if !st.ForceRotate || !st.ForceNow || st.NextAction != "renew" {
			t.Errorf("after RequestRotation: force=%v next=%q", st.ForceRotate, st.NextAction)
		}
		items, _ = s.Due(ctx, now, 10)
		if len(items) != 3 {
			t.Errorf("Due() after RequestRotation = %v, want 3 names", items)
		}
		if err := s.Unschedule(ctx, "a", "b", "c"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Due(ctx, now.Add(time.Hour), 10); len(got) != 0 {
			t.Errorf("Due() after Unschedule = %v, want none", got)
		}
	})
}

func TestLoad(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "host-a")
		l, _, _ := s.Acquire(ctx, "x")
		_ = l.Apply(ctx, new(Change).SetCurrent(tok("id", "v", "", time.Now().Add(time.Hour)), 4))
		all, err := s.Load(ctx, []string{"x", "never-seen"})
		if err != nil {
			t.Fatal(err)
		}
		if all["x"].Generation != 4 || all["x"].Current.Secret.Reveal() != "v" {
			t.Errorf("Load()[x] = %+v", all["x"])
		}
		if all["never-seen"] == nil || all["never-seen"].Current != nil {
			t.Errorf("Load()[never-seen] = %+v, want empty state", all["never-seen"])
		}
		// A key that does not open is an error, not a silent empty token.
		wrong, _ := New(rdb, []byte("ffffffffffffffffffffffffffffffff"), Options{Prefix: prefix, Instance: "h"})
		if _, err := wrong.Load(ctx, []string{"x"}); !errors.Is(err, ErrUnseal) {
			t.Errorf("Load() with the wrong key = %v, want ErrUnseal", err)
		}
	})
}

func TestScheduleManyAndScheduleAndRelease(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "host-a")
		now := time.Now().Truncate(time.Millisecond)
		var items []Planned
		for i := range 2500 {
			items = append(items, Planned{Name: fmt.Sprintf("t%d", i), Action: "renew", At: now.Add(time.Duration(i) * time.Second)})
		}
		if err := s.ScheduleMany(ctx, items); err != nil {
			t.Fatal(err)
		}
		due, err := s.DueTimes(ctx)
		if err != nil || len(due) != 2500 || !due["t2499"].Equal(now.Add(2499*time.Second)) {
			t.Fatalf("DueTimes() = %d entries (t2499 at %v), %v; want 2500", len(due), due["t2499"], err)
		}
		l, _, err := s.Acquire(ctx, "t7")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.ScheduleAndRelease(ctx, "recreate", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		st, _ := s.Get(ctx, "t7")
		if st.NextAction != "recreate" || !st.NextAt.Equal(now.Add(time.Hour)) {
			t.Fatalf("after ScheduleAndRelease: next = %s at %v", st.NextAction, st.NextAt)
		}
		if _, _, err := newStore(t, rdb, prefix, "host-b").Acquire(ctx, "t7"); err != nil {
			t.Fatalf("lease not released: %v", err)
		}
	})
}

func TestPromoteAnnounces(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "host-a")
		sub := s.Subscribe(ctx)
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
			t.Fatal(err)
		}
		l, _, _ := s.Acquire(ctx, "tok")
		_ = l.Apply(ctx, new(Change).SetPending(tok("id-1", "s1", "", time.Now().Add(time.Hour))))
		if err := l.Promote(ctx, 1, true, time.Now(), time.Now()); err != nil {
			t.Fatal(err)
		}
		select {
		case msg := <-sub.Channel():
			if msg.Payload != "tok" {
				t.Fatalf("announcement = %q, want tok", msg.Payload)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("promote announced nothing")
		}
	})
}

// TestPromotedIsWhatRedisHolds checks the state Promote hands back (which Work schedules from instead of
// reading it again): equal to a fresh read, and withdrawn by any later write through the lease.
func TestPromotedIsWhatRedisHolds(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "host-a")
		now := time.Now().Truncate(time.Millisecond)
		l, _, err := s.Acquire(ctx, "tok")
		if err != nil {
			t.Fatal(err)
		}
		if l.Promoted() != nil {
			t.Fatal("Promoted() before any promote is not nil")
		}
		if err := l.Apply(ctx, new(Change).SetPending(tok("id-1", "s1", "", now.Add(time.Hour)))); err != nil {
			t.Fatal(err)
		}
		if err := l.Promote(ctx, 1, true, now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
		got := l.Promoted()
		want, err := s.Get(ctx, "tok")
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Promoted() = %+v, want what Get reads: %+v", got, want)
		}
		if got.Current.Secret.Reveal() != "s1" || got.Generation != 1 {
			t.Fatalf("Promoted() current = %+v gen %d", got.Current, got.Generation)
		}
		if err := l.Apply(ctx, new(Change).SetFailure("later", 1, now, false)); err != nil {
			t.Fatal(err)
		}
		if l.Promoted() != nil {
			t.Fatal("Promoted() after a later write through the lease is not nil: it would be stale")
		}
	})
}
