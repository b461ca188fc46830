package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend/cmd/tokend/tokendtest"
	"github.com/tokend/tokend/daemon"
	"github.com/tokend/tokend/providers/providertest"
)

// The systemd tests run the real binary as systemd would: NOTIFY_SOCKET names a unixgram socket the test
// reads, WATCHDOG_USEC asks for watchdog pings. They check the notify protocol tokend speaks (READY=1,
// WATCHDOG=1, RELOADING=1/READY=1, STOPPING=1, STATUS=) and that a wedged scheduler stops the pings.

// watchdog is the watchdog interval the tests give tokend: pings are expected every quarter of it and
// systemd's advice is to ping at least every half of it.
const watchdog = 4 * time.Second

type notification struct {
	at  time.Time
	msg string
}

// notifySocket is the test's end of NOTIFY_SOCKET: it records every datagram tokend sends.
type notifySocket struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []notification
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// A short directory: a socket path must fit in 108 bytes, and t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "tokend-sd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &notifySocket{path: filepath.Join(dir, "notify.sock")}
	n.conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := n.conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, notification{at: time.Now(), msg: string(buf[:k])})
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { n.conn.Close(); <-done })
	return n
}

// env is what tokend needs to talk to this socket with the watchdog on.
func (n *notifySocket) env() []string {
	return []string{"NOTIFY_SOCKET=" + n.path, fmt.Sprintf("WATCHDOG_USEC=%d", watchdog.Microseconds()), "WATCHDOG_PID="}
}

func (n *notifySocket) all() []notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]notification(nil), n.msgs...)
}

// count returns how many notifications have been received so far (a mark for find).
func (n *notifySocket) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.msgs)
}

// has reports whether msg has the line "KEY=VALUE" (or, for a bare "KEY=", any value).
func has(msg, line string) bool {
	for _, l := range strings.Split(msg, "\n") {
		if l == line || (strings.HasSuffix(line, "=") && strings.HasPrefix(l, line)) {
			return true
		}
	}
	return false
}

// field returns the value of KEY= in msg.
func field(msg, key string) string {
	for _, l := range strings.Split(msg, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	return ""
}

// waitLine waits for a notification at index >= from that has line, and returns its index.
func (n *notifySocket) waitLine(e *env, from int, line string, d time.Duration) int {
	e.t.Helper()
	idx := -1
	e.waitFor("notification "+line, d, func() bool {
		for i, m := range n.all() {
			if i >= from && has(m.msg, line) {
				idx = i
				return true
			}
		}
		return false
	})
	return idx
}

// pings returns the times of the WATCHDOG=1 notifications received.
func (n *notifySocket) pings() []time.Time {
	var ts []time.Time
	for _, m := range n.all() {
		if has(m.msg, "WATCHDOG=1") {
			ts = append(ts, m.at)
		}
	}
	return ts
}

// rewrite replaces old with new in the file at path; old must be there.
func rewrite(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// policyAge returns how long after the token was issued its next action is due, from the daemon's API
// and, when the config file is valid, from `tokend status --json` (which reads Redis): both must agree.
func (e *env) policyAge(withStatus bool) (time.Duration, error) {
	rows, err := e.rows()
	if err != nil {
		return 0, err
	}
	if len(rows.Tokens) != 1 || rows.Tokens[0].NextActionAt == nil || rows.Tokens[0].IssuedAt == nil {
		return 0, fmt.Errorf("API rows without a next action: %+v", rows)
	}
	r := rows.Tokens[0]
	api := r.NextActionAt.Sub(*r.IssuedAt)
	if r.NextAction != "recreate" {
		return 0, fmt.Errorf("next action %q, want recreate", r.NextAction)
	}
	if !withStatus {
		return api, nil
	}
	out, err := exec.Command(tokendtest.Binary(e.t), "status", "--json", "--config", e.config).Output()
	if err != nil {
		return 0, fmt.Errorf("tokend status --json: %v", err)
	}
	var st daemon.Rows
	if err := json.Unmarshal(out, &st); err != nil || len(st.Tokens) != 1 || st.Tokens[0].NextActionAt == nil {
		return 0, fmt.Errorf("tokend status --json: %v: %s", err, out)
	}
	if s := st.Tokens[0].NextActionAt.Sub(*r.IssuedAt); s != api {
		return 0, fmt.Errorf("API says next action at issued+%s, tokend status says issued+%s", api, s)
	}
	return api, nil
}

func (e *env) metric(name string) string {
	resp, err := http.Get("http://" + e.listen + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

func TestSystemdNotifyProtocol(t *testing.T) {
	e := newEnv(t, "recreate", providertest.FakeOptions{})
	rewrite(t, e.config, "  max_age: 3s\n", "  max_age: 1h\n")
	sd := listenNotify(t)
	cmd := e.start(sd.env()...)

	// READY=1 once Redis answered and the state is loaded, with a one-line STATUS=.
	ready := sd.waitLine(e, 0, "READY=1", 20*time.Second)
	if status := field(sd.all()[ready].msg, "STATUS"); !strings.HasPrefix(status, "1 tokens, 0 failing") {
		t.Errorf("STATUS= with READY=1 is %q, want a summary starting with \"1 tokens, 0 failing\"", status)
	}
	e.waitFor("generation 1", 15*time.Second, func() bool { return e.generation() >= 1 })
	e.waitFor("the first policy (max_age 1h) in force", 10*time.Second, func() bool {
		age, err := e.policyAge(true)
		return err == nil && age == time.Hour
	})

	// WATCHDOG=1 comes every WatchdogSec/4 or so: never faster than WatchdogSec/8 (it is rate-limited), and
	// always before systemd's deadline, WatchdogSec. (The aim is WatchdogSec/4; a loaded CI machine may
	// delay a ping, and only the deadline is the contract, so that is what is asserted.)
	e.waitFor("six watchdog pings", 5*watchdog, func() bool { return len(sd.pings()) >= 6 })
	pings := sd.pings()
	for i := 1; i < len(pings); i++ {
		gap := pings[i].Sub(pings[i-1])
		if gap < watchdog/8 || gap >= watchdog {
			t.Errorf("watchdog ping %d came %s after the previous one, want between %s and %s", i, gap, watchdog/8, watchdog)
		}
	}

	// SIGHUP with a changed policy: RELOADING=1 (with MONOTONIC_USEC=), then READY=1, and the new policy
	// in the API and in tokend status.
	rewrite(t, e.config, "  max_age: 1h\n", "  max_age: 3h\n")
	mark := sd.count()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloading := sd.waitLine(e, mark, "RELOADING=1", 10*time.Second)
	if !has(sd.all()[reloading].msg, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC=: %q", sd.all()[reloading].msg)
	}
	ready = sd.waitLine(e, reloading+1, "READY=1", 10*time.Second)
	if status := field(sd.all()[ready].msg, "STATUS"); strings.Contains(status, "reload failed") {
		t.Errorf("STATUS= after a good reload is %q", status)
	}
	e.waitFor("the new policy (max_age 3h) in force", 10*time.Second, func() bool {
		age, err := e.policyAge(true)
		return err == nil && age == 3*time.Hour
	})
	if v := e.metric("tokend_config_last_reload_successful"); v != "1" {
		t.Errorf("tokend_config_last_reload_successful = %q after a good reload, want 1", v)
	}

	// A broken config: RELOADING=1, then READY=1 with STATUS= saying the old config stays, and nothing of
	// the new file applied (its max_age would move the next action).
	rewrite(t, e.config, "  max_age: 3h\n", "  max_age: 5h\nnot_a_key: true\n")
	mark = sd.count()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloading = sd.waitLine(e, mark, "RELOADING=1", 10*time.Second)
	ready = sd.waitLine(e, reloading+1, "READY=1", 10*time.Second)
	if status := field(sd.all()[ready].msg, "STATUS"); !strings.HasPrefix(status, "reload failed, previous config in force") {
		t.Errorf("STATUS= after a failed reload is %q, want it to say the previous config stays", status)
	}
	e.waitFor("tokend_config_last_reload_successful 0", 5*time.Second, func() bool {
		return e.metric("tokend_config_last_reload_successful") == "0"
	})
	if age, err := e.policyAge(false); err != nil || age != 3*time.Hour {
		t.Errorf("after a failed reload the next action is at issued+%s (%v), want the previous config's 3h", age, err)
	}
	if n := len(sd.pings()); n == 0 {
		t.Fatal("no watchdog pings at all")
	}

	// SIGTERM: STOPPING=1, and a clean exit.
	mark = sd.count()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sd.waitLine(e, mark, "STOPPING=1", 10*time.Second)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tokend after SIGTERM: %v\n%s", err, e.logTail())
	}
}

func TestSystemdNoReadyWithoutRedis(t *testing.T) {
	e := newEnv(t, "recreate", providertest.FakeOptions{})
	closed := tokendtest.FreeAddr(t) // nothing listens there once freePort returns
	rewrite(t, e.config, "redis://"+e.redis+"/0", "redis://"+closed+"/0")
	sd := listenNotify(t)
	cmd := e.start(sd.env()...)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("tokend exited 0 without a Redis")
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("tokend still runs without a Redis after 30s\n%s", e.logTail())
	}
	for _, m := range sd.all() {
		if has(m.msg, "READY=1") {
			t.Errorf("READY=1 sent without a Redis: %q", m.msg)
		}
	}
}

func TestSystemdWatchdogStopsWhenSchedulerWedges(t *testing.T) {
	e := newEnv(t, "recreate", providertest.FakeOptions{})
	rewrite(t, e.config, "  max_age: 3s\n", "  max_age: 1h\n")
	sd := listenNotify(t)
	// The loop ticks at least every WatchdogSec/4; after 6 ticks it blocks for good.
	cmd := e.start(append(sd.env(), "TOKEND_WEDGE_AFTER_TICKS=6")...)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // a wedged tokend does not stop on SIGTERM; systemd would SIGABRT it
			_ = cmd.Wait()
		}
	})
	sd.waitLine(e, 0, "READY=1", 20*time.Second)
	e.waitFor("the wedge", 6*watchdog, func() bool { return strings.Contains(e.logTail(), "scheduler loop wedged") })
	wedged := time.Now()
	if n := len(sd.pings()); n < 2 {
		t.Fatalf("%d watchdog pings before the wedge, want at least 2", n)
	}

	// For longer than WatchdogSec, when systemd would kill it, no ping comes (a datagram sent just before
	// the wedge may still be in flight for a moment), while the process itself (its HTTP server) is alive.
	for end := wedged.Add(watchdog + watchdog/2); time.Now().Before(end); {
		resp, err := http.Get("http://" + e.listen + "/healthz")
		if err != nil {
			t.Fatalf("tokend's HTTP server is gone: %v", err)
		}
		resp.Body.Close()
		time.Sleep(200 * time.Millisecond) // sampling the health endpoint, not waiting for a condition
	}
	for _, p := range sd.pings() {
		if p.After(wedged.Add(watchdog / 8)) {
			t.Errorf("a watchdog ping %s after the scheduler wedged", p.Sub(wedged).Round(time.Millisecond))
		}
	}
}
