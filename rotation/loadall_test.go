package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/store"
)

// pipelineLog records the first command of every pipeline: "hgetall" for a batch read, "hset" for a batch of
// next actions written by ScheduleMany.
type pipelineLog struct {
	mu    sync.Mutex
	kinds []string
}

func (l *pipelineLog) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (l *pipelineLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (l *pipelineLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 {
			l.mu.Lock()
			l.kinds = append(l.kinds, cmds[0].Name())
			l.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

// loadAllEngine is an engine over n tokens with no state yet, on miniredis, with every pipeline logged.
func loadAllEngine(t *testing.T, rdb *redis.Client, key string, n int) *Engine {
	t.Helper()
	st, err := store.New(rdb, []byte(key), store.Options{Prefix: "tokend", Instance: "host-a"})
	if err != nil {
		t.Fatal(err)
	}
	fake := providertest.NewFake(providertest.FakeOptions{Lifetime: 24 * time.Hour, Renewable: true})
	tokens := make(map[string]*Token, n)
	for i := range n {
		name := fmt.Sprintf("token-%d", i)
		tokens[name] = &Token{Config: config.Token{Name: name, Kind: "api_token"}, Policy: policy(),
			Provider: fake.Provider(), ProviderName: "fake"}
	}
	return New(st, tokens, Options{})
}

// LoadAll goes batch by batch: the first batch's next actions are written while later batches are still
// to be read, so a start holds a few batches of decrypted state, not every token's. Every token ends up
// scheduled and in the view.
func TestLoadAllSchedulesBatchByBatch(t *testing.T) {
	const n = 8000 // eight batches: more than the reads LoadEach may run ahead of the writes
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	log := &pipelineLog{}
	rdb.AddHook(log)
	e := loadAllEngine(t, rdb, "0123456789abcdef0123456789abcdef", n)
	if err := e.LoadAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rdb.ZCard(context.Background(), "tokend:due").Val(); got != n {
		t.Errorf("due index holds %d tokens after LoadAll, want %d", got, n)
	}
	snaps := e.Snapshots()
	if len(snaps) != n {
		t.Fatalf("view holds %d tokens after LoadAll, want %d", len(snaps), n)
	}
	for _, s := range snaps {
		if s.NextAction != "create" || s.NextAt.IsZero() {
			t.Fatalf("%s after LoadAll: next %q at %v, want a create", s.Name, s.NextAction, s.NextAt)
		}
	}
	firstWrite, lastRead := -1, -1
	for i, k := range log.kinds {
		switch k {
		case "hgetall":
			lastRead = i
		case "hset":
			if firstWrite < 0 {
				firstWrite = i
			}
		}
	}
	if firstWrite < 0 || lastRead < 0 || firstWrite > lastRead {
		t.Errorf("pipelines %v: want the first batch scheduled before the last one is read", log.kinds)
	}
}

// A token whose state does not decode fails the start (daemon.Run exits, a reload logs it), and the error
// names it.
func TestLoadAllNamesTheTokenThatDoesNotDecode(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	// token-1234's state written under another state key.
	other, err := store.New(rdb, []byte("ffffffffffffffffffffffffffffffff"), store.Options{Prefix: "tokend", Instance: "host-b"})
	if err != nil {
		t.Fatal(err)
	}
	l, _, err := other.Acquire(ctx, "token-1234")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cur := &providers.Token{ID: "id-1", Secret: providers.NewSecret("s1"), IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	if err := l.Apply(ctx, new(store.Change).SetCurrent(cur, 1)); err != nil {
		t.Fatal(err)
	}
	e := loadAllEngine(t, rdb, "0123456789abcdef0123456789abcdef", 3000)
	err = e.LoadAll(ctx)
	if !errors.Is(err, store.ErrUnseal) || !strings.Contains(err.Error(), "token-1234") {
		t.Errorf("LoadAll() = %v, want ErrUnseal naming token-1234", err)
	}
}
