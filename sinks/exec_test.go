package sinks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
)

// shSink is an exec sink running script through /bin/sh (the sink itself never uses a shell: the test picks
// sh as its program). $1 is out, a file in a temp dir.
func shSink(t *testing.T, script string, timeout time.Duration) (*execSink, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	c := config.ExecSink{Command: []string{"/bin/sh", "-c", script, "sh", out}}
	if timeout > 0 {
		d := config.Duration(timeout)
		c.Timeout = &d
	}
	s, err := New(config.Sink{Exec: &c}, nil)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return s.(*execSink), out
}

func TestExecStdin(t *testing.T) {
	s, out := shSink(t, `cat > "$1"`, 0)
	if err := s.Deliver(context.Background(), testDelivery()); err != nil {
		t.Fatalf("Deliver() error = %v", err)
	}
	if got, _ := os.ReadFile(out); string(got) != testSecret {
		t.Errorf("stdin = %q, want the token's bytes exactly", got)
	}
}

func TestExecEnv(t *testing.T) {
	t.Setenv("TOKEND_TEST_INHERITED", "from-daemon")
	t.Setenv("TOKEND_GENERATION", "stale") // the daemon's own value must not win
	tests := []struct {
		name string
		d    func() Delivery
		want map[string]string
	}{
		{"with expiry", testDelivery, map[string]string{
			"TOKEND_TOKEN_NAME": "backup-api", "TOKEND_EXPIRES_AT": "2025-03-31T11:00:00Z", "TOKEND_GENERATION": "7",
			"TOKEND_PROVIDER": "commvault-prod", "TOKEND_KIND": "access_token", "TOKEND_TEST_INHERITED": "from-daemon",
		}},
		{"no expiry", func() Delivery { d := testDelivery(); d.ExpiresAt = time.Time{}; return d }, map[string]string{
			"TOKEND_EXPIRES_AT": "",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The command line and environment as the kernel sees them, NUL-separated.
			s, out := shSink(t, `cat /proc/$$/environ > "$1"; printf '\001' >> "$1"; cat /proc/$$/cmdline >> "$1"; cat >/dev/null`, 0)
			if err := s.Deliver(context.Background(), tt.d()); err != nil {
				t.Fatalf("Deliver() error = %v", err)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			environ, cmdline, _ := strings.Cut(string(b), "\001")
			if strings.Contains(environ, testSecret) || strings.Contains(cmdline, testSecret) {
				t.Fatal("the token is in the command's environment or argv")
			}
			got := map[string]string{}
			for kv := range strings.SplitSeq(environ, "\x00") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					if _, dup := got[k]; dup {
						t.Errorf("%s set twice", k)
					}
					got[k] = v
				}
			}
			for k, want := range tt.want {
				if v, ok := got[k]; !ok || v != want {
					t.Errorf("env %s = %q (set %v), want %q", k, v, ok, want)
				}
			}
		})
	}
}

func TestExecNonZeroExitScrubsStderr(t *testing.T) {
	s, _ := shSink(t, `t=$(cat); echo "starting" >&2; echo "rejected token $t (twice: $t)" >&2; exit 3`, 0)
	err := s.Deliver(context.Background(), testDelivery())
	if err == nil {
		t.Fatal("Deliver() error = nil, want exit code 3")
	}
	noSecret(t, err, testSecret)
	want := `running /bin/sh: exit code 3; stderr: "starting\nrejected token <secret> (twice: <secret>)"`
	if err.Error() != want {
		t.Errorf("Deliver() error = %q, want %q", err, want)
	}
}

func TestExecLongStderr(t *testing.T) {
	// 10 KiB of stderr with the secret everywhere; the error keeps the last lines, at most 1 KiB.
	s, _ := shSink(t, `t=$(cat); i=0; while [ $i -lt 150 ]; do echo "line $i: $t"; i=$((i+1)); done >&2; echo "last line" >&2; exit 1`, 0)
	err := s.Deliver(context.Background(), testDelivery())
	if err == nil {
		t.Fatal("Deliver() error = nil, want exit code 1")
	}
	noSecret(t, err, testSecret)
	_, quoted, ok := strings.Cut(err.Error(), "; stderr: ")
	if !ok {
		t.Fatalf("Deliver() error = %q, want a stderr tail", err)
	}
	tail, uerr := strconv.Unquote(quoted)
	if uerr != nil {
		t.Fatalf("stderr tail %s does not unquote: %v", quoted, uerr)
	}
	if len(tail) > maxStderr || len(tail) < maxStderr/2 {
		t.Errorf("stderr tail is %d bytes, want at most %d and not much less", len(tail), maxStderr)
	}
	if !strings.HasSuffix(tail, "line 149: <secret>\nlast line") || !strings.HasPrefix(tail, "line ") {
		t.Errorf("stderr tail = %q, want whole last lines", tail)
	}
}

// TestTailNoFragment cuts the stderr buffer at every offset through a secret: no piece of it may survive.
func TestTailNoFragment(t *testing.T) {
	secret := strings.Repeat("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 3)
	max := 4*maxStderr + 2*len(secret)
	tests := []struct {
		name string
		// body returns what follows the first secret, so that the whole is max+k bytes long.
		body func(k int) string
		want string
	}{
		{"long line then last lines", func(k int) string {
			last := "\n" + secret + "\nend"
			return strings.Repeat("x", max+k-len(secret)-len(last)) + last
		}, "<secret>\nend"},
		{"one line of secrets", func(k int) string {
			// Scrubbing shrinks this below 1 KiB, so neither the length cut nor a line break hides a fragment.
			m := (max - len(secret) - 4) / (len(secret) + 1)
			pad := max - len(secret) - m*(len(secret)+1) - 4
			return strings.Repeat(" "+secret, m) + strings.Repeat(" ", pad+k) + " end"
		}, " end"},
	}
	for _, tt := range tests {
		for k := 1; k <= len(secret); k++ { // k: bytes of the first secret the buffer drops
			tb := &tailBuffer{max: max}
			fmt.Fprint(tb, secret+tt.body(k))
			if !tb.truncated || !strings.HasPrefix(string(tb.buf), secret[k:]) {
				t.Fatalf("%s k %d: buffer starts %q, want it cut %d bytes into the secret", tt.name, k, tb.buf[:10], k)
			}
			got := tb.tail(secret)
			for i := 0; i+4 <= len(secret); i++ {
				if strings.Contains(got, secret[i:i+4]) {
					t.Fatalf("%s k %d: tail keeps the fragment %q of the secret: %q", tt.name, k, secret[i:i+4], got)
				}
			}
			if !strings.HasSuffix(got, tt.want) || !strings.Contains(got, "<secret>") || len(got) > maxStderr {
				t.Fatalf("%s k %d: tail = %q (%d bytes), want at most %d with <secret> ending with %q", tt.name, k, got, len(got), maxStderr, tt.want)
			}
		}
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	// The command starts a grandchild that would outlive it, then hangs. Both must die at the timeout.
	s, out := shSink(t, `sleep 300 & echo $! > "$1"; echo "waiting" >&2; sleep 300`, 300*time.Millisecond)
	start := time.Now()
	err := s.Deliver(context.Background(), testDelivery())
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Deliver() took %v, want about the 300ms timeout", elapsed)
	}
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("Deliver() error = %v, want a timeout", err)
	}
	if !strings.Contains(err.Error(), `stderr: "waiting"`) {
		t.Errorf("Deliver() error = %v, want the stderr tail", err)
	}
	noSecret(t, err, testSecret)
	b, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
	if perr != nil {
		t.Fatal(perr)
	}
	waitDead(t, pid)
}

// waitDead polls until pid is gone or a zombie (its parent, perhaps not an init that reaps, was killed).
func waitDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return // gone
		}
		if _, after, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(after, "Z") {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL) // the grandchild this test started
			t.Fatalf("grandchild %d still running after the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestExecCallerContext(t *testing.T) {
	s, _ := shSink(t, `sleep 300`, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := s.Deliver(ctx, testDelivery())
	if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timed out after") {
		t.Fatalf("Deliver() error = %v, want the caller's deadline", err)
	}

	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := s.Deliver(cctx, testDelivery()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver(cancelled) error = %v, want context.Canceled", err)
	}
}

func TestExecStdinNotRead(t *testing.T) {
	// A command that ignores a large token on stdin still succeeds (EPIPE on our side is not its failure).
	s, _ := shSink(t, `exit 0`, 0)
	d := testDelivery()
	d.Secret = providers.NewSecret(strings.Repeat(testSecret, 1<<15))
	if err := s.Deliver(context.Background(), d); err != nil {
		t.Fatalf("Deliver() error = %v", err)
	}
}

func TestExecBackgroundChildHoldsStderr(t *testing.T) {
	// Exit 0 with a daemonised child still holding stderr: a delivery, once the grace period is over.
	s, out := shSink(t, `cat >/dev/null; sleep 300 >&2 & echo $! > "$1"; exit 0`, 0)
	s.grace = 100 * time.Millisecond
	err := s.Deliver(context.Background(), testDelivery())
	if b, rerr := os.ReadFile(out); rerr == nil {
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL) // the sleep this test started
		}
	}
	if err != nil {
		t.Fatalf("Deliver() error = %v, want nil", err)
	}
}

func TestExecStartFailure(t *testing.T) {
	s, err := New(config.Sink{Exec: &config.ExecSink{Command: []string{"/nonexistent/reload"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Deliver(context.Background(), testDelivery())
	if err == nil || !strings.HasPrefix(err.Error(), "running /nonexistent/reload: ") {
		t.Fatalf("Deliver() error = %v, want one naming the command", err)
	}
	noSecret(t, err, testSecret)
}

func TestExecNewErrors(t *testing.T) {
	zero := config.Duration(0)
	tests := []struct {
		name string
		c    config.ExecSink
		want string
	}{
		{"no command", config.ExecSink{}, "command:"},
		{"empty program", config.ExecSink{Command: []string{""}}, "command:"},
		{"zero timeout", config.ExecSink{Command: []string{"true"}, Timeout: &zero}, "timeout:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(config.Sink{Exec: &tt.c}, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	s, _ := New(config.Sink{Exec: &config.ExecSink{Command: []string{"true"}}}, nil)
	if got := s.(*execSink).timeout; got != DefaultExecTimeout {
		t.Errorf("default timeout = %v, want %v", got, DefaultExecTimeout)
	}
}

func TestScrub(t *testing.T) {
	tests := []struct {
		name, in, secret string
		headCut          bool
		want             string
	}{
		{"none", "plain text", "abab", false, "plain text"},
		{"two", "x abab y abab", "abab", false, "x <secret> y <secret>"},
		{"overlapping", "xababab!", "abab", false, "x<secret>!"},
		{"adjacent", "ababababz", "abab", false, "<secret>z"},
		{"head piece when cut", "ab rest", "xyab", true, "<secret> rest"},
		{"head piece kept when not cut", "ab rest", "xyab", false, "ab rest"},
		{"empty secret", "text", "", true, "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrub([]byte(tt.in), tt.secret, tt.headCut); got != tt.want {
				t.Errorf("scrub(%q, %q) = %q, want %q", tt.in, tt.secret, got, tt.want)
			}
		})
	}
}
