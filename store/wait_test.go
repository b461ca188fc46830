package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/store/storetest"
)

func TestOnlineReplicas(t *testing.T) {
	tests := []struct {
		name string
		info string
		want int
	}{
		{"standalone", "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n", 0},
		{"one online", "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n" +
			"slave0:ip=127.0.0.1,port=17001,state=online,offset=1234,lag=0\r\nmaster_repl_offset:1234\r\n", 1},
		{"one syncing", "role:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=17001,state=wait_bgsave,offset=0,lag=0\r\n", 0},
		{"two, one online", "role:master\r\nslave0:ip=a,port=1,state=online,offset=1,lag=0\r\n" +
			"slave1:ip=b,port=2,state=send_bulk,offset=0,lag=0\r\nslave_read_only:1\r\n", 1},
		{"replica itself", "role:slave\r\nmaster_host:127.0.0.1\r\nslave_read_repl_offset:10\r\nslave_priority:100\r\nconnected_slaves:0\r\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := onlineReplicas(tt.info); got != tt.want {
				t.Errorf("onlineReplicas() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestChangeDurable(t *testing.T) {
	p := tok("id-1", "s3cret", "r3fresh", time.Now().Add(time.Hour))
	tests := []struct {
		name string
		c    *Change
		want bool
	}{
		{"empty", new(Change), false},
		{"intent", new(Change).SetIntent(&Intent{Op: "create", Generation: 1}), true},
		{"pending", new(Change).SetPending(p), true},
		{"intent and pending", new(Change).SetIntent(&Intent{Op: "bootstrap"}).SetPending(p), true},
		{"clearing intent", new(Change).SetIntent(nil), false},
		{"dropping pending", new(Change).SetPending(nil).SetIntent(nil), false},
		{"failure", new(Change).SetFailure("boom", 1, time.Now(), false), false},
		{"delivered", new(Change).SetDelivered("a", 3), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.durable(); got != tt.want {
				t.Errorf("durable() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPromoteRetried(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		s := newStore(t, rdb, prefix, "a")
		l, _, err := s.Acquire(ctx, "tok")
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := l.Apply(ctx, new(Change).SetIntent(&Intent{Op: "create", Generation: 1}).SetPending(tok("id-1", "s1", "", now.Add(time.Hour)))); err != nil {
			t.Fatal(err)
		}
		if err := l.Promote(ctx, 1, true, now, now); err != nil {
			t.Fatalf("Promote() = %v", err)
		}
		// The same promote again, as after a failover that lost its answer: done already, not an error.
		if err := l.Promote(ctx, 1, true, now, now); err != nil {
			t.Fatalf("Promote() sent again = %v, want nil", err)
		}
		if err := l.Promote(ctx, 2, true, now, now); !errors.Is(err, ErrNoPending) {
			t.Fatalf("Promote() of another generation with nothing pending = %v, want ErrNoPending", err)
		}
		st, err := s.Get(ctx, "tok")
		if err != nil {
			t.Fatal(err)
		}
		if st.Generation != 1 || st.Current == nil || st.Current.ID != "id-1" || st.Pending != nil || st.Intent != nil {
			t.Fatalf("state after promotes = gen %d cur %v pend %v intent %v", st.Generation, st.Current, st.Pending, st.Intent)
		}
	})
}

// TestWaitStandalone runs the durable writes on the integration Redis, which has no replica: detected, the
// writes do not wait; told to wait for a replica that does not exist, they wait Timeout, are kept, and are
// counted and logged as unacknowledged.
func TestWaitStandalone(t *testing.T) {
	rdb := storetest.RealRedis(t)
	prefix := "tokendtest-" + randHex(4)
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+":*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	if n := onlineReplicas(rdb.Info(context.Background(), "replication").Val()); n != 0 {
		t.Skipf("the integration Redis has %d replicas; this test wants none", n)
	}
	ctx := context.Background()
	secret := "s3cret-" + randHex(8)
	write := func(t *testing.T, s *Store, name string) {
		t.Helper()
		l, _, err := s.Acquire(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(ctx)
		now := time.Now()
		in := &Intent{Op: "create", Generation: 1, VendorName: "tokend-" + name + "-g1"}
		if err := l.Apply(ctx, new(Change).SetIntent(in)); err != nil {
			t.Fatalf("Apply(intent) = %v", err)
		}
		if err := l.Apply(ctx, new(Change).SetPending(tok("id-1", secret, "", now.Add(time.Hour)))); err != nil {
			t.Fatalf("Apply(pending) = %v", err)
		}
		if err := l.Apply(ctx, new(Change).SetFailure("not durable", 1, now, false)); err != nil {
			t.Fatalf("Apply(failure) = %v", err)
		}
		if err := l.Promote(ctx, 1, true, now, now); err != nil {
			t.Fatalf("Promote() = %v", err)
		}
		st, err := s.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Current == nil || st.Current.Secret.Reveal() != secret || st.Generation != 1 {
			t.Fatalf("state after writes: gen %d, current %v", st.Generation, st.Current)
		}
	}

	t.Run("detected", func(t *testing.T) {
		s, err := New(rdb, testKey(), Options{Prefix: prefix, Instance: "a"})
		if err != nil {
			t.Fatal(err)
		}
		write(t, s, "detected")
		if got, want := s.WaitStats(), (WaitStats{Unchecked: 3}); got != want {
			t.Errorf("WaitStats() = %+v, want %+v", got, want)
		}
	})
	t.Run("forced", func(t *testing.T) {
		var logs bytes.Buffer
		s, err := New(rdb, testKey(), Options{Prefix: prefix, Instance: "a",
			Wait: WaitOptions{Replicas: 1, Timeout: 20 * time.Millisecond}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		write(t, s, "forced")
		if got, want := s.WaitStats(), (WaitStats{Unacked: 3}); got != want {
			t.Errorf("WaitStats() = %+v, want %+v", got, want)
		}
		if took := time.Since(start); took < 3*20*time.Millisecond {
			t.Errorf("three waited writes took %v, want at least 3 × the 20ms WAIT timeout", took)
		}
		if n := strings.Count(logs.String(), "reached no replica in time"); n != 3 {
			t.Errorf("%d warnings, want 3:\n%s", n, logs.String())
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a warning holds the secret:\n%s", logs.String())
		}
	})
	t.Run("info refused", func(t *testing.T) {
		// The ACL docs/operations.md suggests (+@all -@dangerous) refuses INFO: no waiting, one warning.
		user, pw := "tokendtest-"+randHex(4), randHex(12)
		if err := rdb.Do(ctx, "ACL", "SETUSER", user, "on", ">"+pw, "~*", "&*", "+@all", "-@dangerous").Err(); err != nil {
			t.Skipf("cannot create an ACL user: %v", err)
		}
		t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", user) })
		opt := *rdb.Options()
		opt.Username, opt.Password = user, pw
		limited := redis.NewClient(&opt)
		t.Cleanup(func() { limited.Close() })
		var logs bytes.Buffer
		s, err := New(limited, testKey(), Options{Prefix: prefix, Instance: "a", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			Wait: WaitOptions{RecheckEvery: time.Nanosecond}})
		if err != nil {
			t.Fatal(err)
		}
		write(t, s, "refused")
		if got, want := s.WaitStats(), (WaitStats{Unchecked: 3}); got != want {
			t.Errorf("WaitStats() = %+v, want %+v", got, want)
		}
		if n := strings.Count(logs.String(), "allow INFO"); n != 1 {
			t.Errorf("%d warnings about INFO, want 1:\n%s", n, logs.String())
		}
	})
	t.Run("never", func(t *testing.T) {
		s, err := New(rdb, testKey(), Options{Prefix: prefix, Instance: "a", Wait: WaitOptions{Replicas: -1}})
		if err != nil {
			t.Fatal(err)
		}
		write(t, s, "never")
		if got := s.WaitStats(); got != (WaitStats{}) {
			t.Errorf("WaitStats() = %+v, want zero", got)
		}
	})
}
