package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend/cmd/tokend/tokendtest"
	"github.com/tokend/tokend/daemon"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/store/storetest"
)

// The end-to-end tests run the real binary, built with the test provider and failpoints, against
// providertest's HTTP fake and the real Redis (TOKEND_TEST_REDIS_URL or 127.0.0.1:6379).

type env struct {
	t       *testing.T
	dir     string
	config  string
	listen  string
	sink    string
	fake    *providertest.Fake
	redis   string
	invalid atomic.Int64 // sink samples the vendor did not accept
	mu      sync.Mutex
	seen    map[string]bool // every secret the sink held
}

func newEnv(t *testing.T, kind string, fo providertest.FakeOptions) *env {
	t.Helper()
	rdb := storetest.RealRedis(t)
	e := &env{t: t, dir: t.TempDir(), listen: tokendtest.FreeAddr(t), fake: providertest.NewFake(fo), redis: rdb.Options().Addr}
	srv := httptest.NewServer(providertest.NewHandler(e.fake))
	t.Cleanup(srv.Close)
	e.sink = filepath.Join(e.dir, "out", "tok.token")
	if err := os.MkdirAll(filepath.Dir(e.sink), 0o700); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(e.dir, "state-key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	prefix := "tokende2e-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + fmt.Sprint(time.Now().UnixNano())
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+":*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	e.config = filepath.Join(e.dir, "tokend.yaml")
	cfg := fmt.Sprintf(`listen: %s
instance_id: e2e
log: {level: debug, format: json}
redis: {url: "redis://%s/0", key_prefix: %s}
state_key_file: %s
defaults:
  renew_before: 50%%
  jitter: 0%%
  max_age: 3s
  revoke_after: 1s
  poll: "@every 1s"
  retry: {min: 100ms, max: 1s}
providers:
  - name: vendor
    type: fake
    url: %s
tokens:
  - name: tok
    provider: vendor
    kind: %s
    deliver:
      - file: {path: %s}
`, e.listen, e.redis, prefix, key, srv.URL, kind, e.sink)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// start runs the binary; extra is added to its environment.
func (e *env) start(extra ...string) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(tokendtest.Binary(e.t), "run", "--config", e.config)
	cmd.Env = append(os.Environ(), extra...)
	log, err := os.OpenFile(filepath.Join(e.dir, "tokend.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		log.Close()
	})
	return cmd
}

func (e *env) logTail() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "tokend.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// sample checks every 50 ms until ctx ends that the sink, once written, holds a token the vendor accepts.
func (e *env) sample(ctx context.Context) {
	go func() {
		for ctx.Err() == nil {
			if b, err := os.ReadFile(e.sink); err == nil {
				if !e.fake.Valid(string(b)) {
					e.invalid.Add(1)
				}
				e.mu.Lock()
				if e.seen == nil {
					e.seen = map[string]bool{}
				}
				e.seen[string(b)] = true
				e.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
}

func (e *env) rows() (daemon.Rows, error) {
	var rows daemon.Rows
	resp, err := http.Get("http://" + e.listen + "/api/v1/tokens")
	if err != nil {
		return rows, err
	}
	defer resp.Body.Close()
	return rows, json.NewDecoder(resp.Body).Decode(&rows)
}

// waitFor polls cond until it holds or the deadline passes.
func (e *env) waitFor(what string, d time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s; log tail:\n%s", what, e.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) generation() int64 {
	rows, err := e.rows()
	if err != nil || len(rows.Tokens) != 1 {
		return -1
	}
	return rows.Tokens[0].Generation
}

func TestKillNineAtEveryStepResumes(t *testing.T) {
	steps := []string{"after-intent", "after-vendor", "after-pending", "after-verify", "after-deliver", "after-promote"}
	for _, kind := range []string{"recreate", "renewable"} {
		for _, step := range steps {
			t.Run(kind+"/"+step, func(t *testing.T) {
				fo := providertest.FakeOptions{}
				if kind == "renewable" {
					fo = providertest.FakeOptions{Lifetime: 4 * time.Second, Renewable: true, RotatingRefresh: true}
				}
				e := newEnv(t, kind, fo)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				e.sample(ctx)

				first := e.start()
				e.waitFor("generation 1", 15*time.Second, func() bool { return e.generation() >= 1 })
				_ = first.Process.Signal(syscall.SIGTERM)
				if err := first.Wait(); err != nil {
					t.Fatalf("tokend after SIGTERM: %v\n%s", err, e.logTail())
				}

				// The next rotation dies at step, by SIGKILL from inside (a real kill -9).
				once := filepath.Join(e.dir, "failpoint-once")
				victim := e.start("TOKEND_FAILPOINT="+step, "TOKEND_FAILPOINT_ONCE_FILE="+once)
				err := victim.Wait()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("tokend was not killed at %s: %v\n%s", step, err, e.logTail())
				}

				// Restarted at once, it finishes the rotation and carries on.
				e.start()
				e.waitFor("generation 3", 30*time.Second, func() bool { return e.generation() >= 3 })
				e.waitFor("no leaked vendor-side token", 10*time.Second, func() bool { return e.fake.Stats().Live == 1 })
				if n := e.invalid.Load(); n != 0 {
					t.Errorf("%d sink samples held a token the vendor did not accept", n)
				}
				if s := e.fake.Stats(); s.Replays != 0 {
					t.Errorf("replayed refresh credentials: %d", s.Replays)
				}
				e.checkNoSecretShown()
			})
		}
	}
}

// checkNoSecretShown asserts that no secret the sink ever held appears in tokend's log, the HTTP API,
// `tokend status --json`, `tokend status` or `tokend plan`.
func (e *env) checkNoSecretShown() {
	e.t.Helper()
	outputs := map[string]string{"log": e.logTail()}
	if b, err := os.ReadFile(filepath.Join(e.dir, "tokend.log")); err == nil {
		outputs["log"] = string(b)
	}
	if resp, err := http.Get("http://" + e.listen + "/api/v1/tokens"); err == nil {
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		resp.Body.Close()
		outputs["/api/v1/tokens"] = b.String()
	}
	for _, args := range [][]string{{"status", "--json"}, {"status"}, {"plan"}} {
		out, err := exec.Command(tokendtest.Binary(e.t), append(args, "--config", e.config)...).CombinedOutput()
		if err != nil {
			e.t.Fatalf("tokend %v: %v\n%s", args, err, out)
		}
		outputs["tokend "+strings.Join(args, " ")] = string(out)
	}
	if !strings.Contains(outputs["tokend status"], "tok") {
		e.t.Fatalf("tokend status shows no token:\n%s", outputs["tokend status"])
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) < 2 {
		e.t.Fatalf("the sink held %d distinct secrets, want at least 2", len(e.seen))
	}
	for secret := range e.seen {
		for where, text := range outputs {
			if strings.Contains(text, secret) {
				e.t.Errorf("a delivered secret appears in %s", where)
			}
		}
	}
}
