package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/rotation"
	"github.com/tokend/tokend/sinks"
	"github.com/tokend/tokend/store"
)

// slotHook records every script call and MULTI block whose keys do not share one hash tag: on Redis
// Cluster such a call fails with CROSSSLOT.
type slotHook struct {
	mu      sync.Mutex
	scripts map[string]int // script calls by first key's tag
	txs     int
	bad     []string
}

func (h *slotHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *slotHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.check([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (h *slotHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.check(cmds)
		return next(ctx, cmds)
	}
}

// hashTag is what Redis Cluster hashes of key: the text between the first { and the next }, when not
// empty, else the whole key.
func hashTag(key string) string {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			return key[s+1 : s+1+e]
		}
	}
	return key
}

func (h *slotHook) check(cmds []redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(cmds) > 0 && cmds[0].Name() == "multi" {
		h.txs++
		var keys []string
		for _, c := range cmds[1:] {
			if n := c.Name(); n != "exec" && len(c.Args()) > 1 {
				keys = append(keys, fmt.Sprint(c.Args()[1]))
			}
		}
		h.sameTag("MULTI", keys)
	}
	for _, c := range cmds {
		switch c.Name() {
		case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
			args := c.Args()
			var n int
			_, _ = fmt.Sscan(fmt.Sprint(args[2]), &n)
			keys := make([]string, 0, n)
			for _, k := range args[3 : 3+n] {
				keys = append(keys, fmt.Sprint(k))
			}
			if len(keys) > 0 {
				h.scripts[hashTag(keys[0])]++
			}
			h.sameTag(c.Name(), keys)
		}
	}
}

func (h *slotHook) sameTag(what string, keys []string) {
	for _, k := range keys {
		if hashTag(k) != hashTag(keys[0]) || hashTag(k) == k && len(keys) > 1 {
			h.bad = append(h.bad, fmt.Sprintf("%s over %v", what, keys))
			return
		}
	}
}

type memSink struct {
	mu   sync.Mutex
	last string
}

func (s *memSink) Deliver(_ context.Context, d sinks.Delivery) error {
	s.mu.Lock()
	s.last = d.Secret.Reveal()
	s.mu.Unlock()
	return nil
}
func (s *memSink) String() string { return "memory" }
func (s *memSink) Close() error   { return nil }

// TestEveryScriptTouchesOneSlot runs every step of the rotation engine (create, renew, recreate after
// renewable-until, revoke, a requested rotation) and checks that each Lua script and MULTI block it sends
// names keys of a single hash tag, the token's own.
func TestEveryScriptTouchesOneSlot(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	hook := &slotHook{scripts: map[string]int{}}
	rdb.AddHook(hook)

	renewing := providertest.NewFake(providertest.FakeOptions{Now: clock, Lifetime: time.Hour, Renewable: true,
		RenewableFor: 3 * time.Hour, RotatingRefresh: true})
	recreating := providertest.NewFake(providertest.FakeOptions{Now: clock})
	pol := config.Resolved{RenewBefore: config.Window{Dur: 10 * time.Minute}, RecreateBefore: time.Hour,
		MaxAge: 2 * time.Hour, RevokeAfter: 15 * time.Minute, RetryMin: time.Second, RetryMax: time.Minute}
	tokens := map[string]*rotation.Token{
		"alpha": {Config: config.Token{Name: "alpha", Kind: "access_token"}, Policy: pol, Provider: renewing.Provider(),
			ProviderName: "renewing", Sinks: []sinks.Sink{&memSink{}}},
		"beta": {Config: config.Token{Name: "beta", Kind: "api_token"}, Policy: pol, Provider: recreating.Provider(),
			ProviderName: "recreating", Sinks: []sinks.Sink{&memSink{}}},
	}
	st, err := store.New(rdb, []byte("0123456789abcdef0123456789abcdef"), store.Options{Instance: "a", LeaseTTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	eng := rotation.New(st, tokens, rotation.Options{Now: clock})
	ctx := context.Background()
	if err := eng.LoadAll(ctx); err != nil {
		t.Fatal(err)
	}
	for step := 0; step < 40; step++ {
		if step == 20 {
			if err := st.RequestRotation(ctx, "beta", clock(), true); err != nil {
				t.Fatal(err)
			}
		}
		due, err := st.Due(ctx, clock(), 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range due {
			eng.Work(ctx, d.Name)
		}
		next, ok, err := st.NextAfter(ctx, clock())
		if err != nil || !ok {
			t.Fatalf("NextAfter() = %v, %v", ok, err)
		}
		mu.Lock()
		now = next
		mu.Unlock()
	}
	rs, cs := renewing.Stats(), recreating.Stats()
	if rs.Creates < 2 || rs.Renews < 2 || rs.Revokes < 1 || cs.Creates < 3 || cs.Revokes < 2 || rs.Replays != 0 {
		t.Fatalf("the run did not cover every step: renewing %+v, recreating %+v", rs, cs)
	}
	if hook.scripts["alpha"] == 0 || hook.scripts["beta"] == 0 {
		t.Fatalf("no script seen for a token: %v", hook.scripts)
	}
	if len(hook.bad) > 0 {
		t.Fatalf("calls over more than one hash slot:\n%s", strings.Join(hook.bad, "\n"))
	}
}

func TestHashTag(t *testing.T) {
	tests := []struct{ key, want string }{
		{"tokend:{alpha}:state", "alpha"},
		{"tokend:{alpha}:lease", "alpha"},
		{"tokend:due", "tokend:due"},
		{"tokend:{}:x", "tokend:{}:x"},
		{"a{b}{c}", "b"},
	}
	for _, tt := range tests {
		if got := hashTag(tt.key); got != tt.want {
			t.Errorf("hashTag(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	h := &slotHook{scripts: map[string]int{}}
	h.sameTag("eval", []string{"tokend:{a}:state", "tokend:{b}:lease"})
	h.sameTag("eval", []string{"tokend:{a}:state", "tokend:due"})
	h.sameTag("eval", []string{"tokend:{a}:state", "tokend:{a}:lease"})
	if len(h.bad) != 2 {
		t.Fatalf("sameTag flagged %v, want the first two calls", h.bad)
	}
}
