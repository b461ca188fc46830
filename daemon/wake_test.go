package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/tokend/tokend/providers/vcd/vcdtest"
)

// A poll that does a step reschedules the token behind the scheduler loop's back; the loop must be woken
// to see the new due time. Here a poll finds the token deleted at the vendor and recreates it, which
// makes the deleted token's revocation due revoke_after (300 ms) later. Without a wake-up the loop sleeps
// on (up to 5 s, or until the next poll) and the revocation waits with it; end to end
// (vendors_e2e_test.go) the same delay let a token expire in its sink after a failed rotation.
func TestPollWakesTheLoop(t *testing.T) {
	m := miniredis.RunT(t)
	m.SetTime(time.Now())
	fake := vcdtest.New(vcdtest.Options{})
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte("alice-password"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tokend.yaml")
	cfg := fmt.Sprintf(`listen: %s
instance_id: test
redis: {url: "redis://%s/0"}
state_key_file: %s/key
defaults:
  poll: "@every 1h"
  revoke_after: 300ms
providers:
  - name: vcd
    type: vcd
    url: %s
    org: acme
    username: alice
    password_file: %s/password
tokens:
  - name: proxy
    provider: vcd
    kind: proxy_token
    deliver:
      - file: {path: %s/out.token}
`, ln.Addr(), m.Addr(), dir, fake.URL(), dir, dir)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(c, Options{ConfigPath: path, Notify: func(string) {}, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}()

	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				s, _ := d.engine.Snapshot("proxy")
				t.Fatalf("%s did not happen within %v: %+v", what, within, s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the first token", 10*time.Second, func() bool {
		s, _ := d.engine.Snapshot("proxy")
		return s.Generation == 1
	})
	time.Sleep(50 * time.Millisecond) // let the loop go back to sleep (its next due entry is an hour away)

	toks := fake.Tokens()
	if len(toks) != 1 || !fake.DeleteToken(toks[0].ID) {
		t.Fatalf("the vendor holds %d tokens, want tokend's first", len(toks))
	}
	d.poll("vcd", []string{"proxy"}) // sees it gone and recreates it: generation 2
	if s, _ := d.engine.Snapshot("proxy"); s.Generation != 2 || s.PrevRevokeAt.IsZero() {
		t.Fatalf("after the poll: %+v, want generation 2 with the deleted token waiting for revocation", s)
	}
	// Due in 300 ms; the loop's own sleep would end only 5 s after its last look.
	waitFor("the revocation of the deleted token", 2*time.Second, func() bool {
		s, _ := d.engine.Snapshot("proxy")
		return s.PrevRevokeAt.IsZero()
	})
}
