package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokend/tokend/config"
)

const (
	// DefaultExecTimeout bounds a command run by an exec sink when timeout: is not set.
	DefaultExecTimeout = 30 * time.Second
	// maxStderr bounds the stderr an exec sink quotes in its error.
	maxStderr = 1024
	// pipeGrace is how long Wait waits for stderr to close after the command exited or was killed (a
	// daemonised grandchild may hold it open forever).
	pipeGrace = 2 * time.Second
)

// errExecTimeout is the cause of an exec sink's own timeout, to tell it apart from the caller's ctx.
var errExecTimeout = errors.New("exec sink timeout")

// execSink runs a command with the token's bytes (no trailing newline) on its standard input. The command
// runs in its own process group, which is killed as a whole on timeout or when ctx is done. Its stdout goes
// to /dev/null; the tail of its stderr is quoted in the error when it fails, with the secret scrubbed.
type execSink struct {
	argv    []string
	timeout time.Duration
	grace   time.Duration // cmd.WaitDelay
}

func newExec(c config.ExecSink) (*execSink, error) {
	if len(c.Command) == 0 || c.Command[0] == "" {
		return nil, errors.New("command: must name a program")
	}
	e := &execSink{argv: append([]string(nil), c.Command...), timeout: DefaultExecTimeout, grace: pipeGrace}
	if c.Timeout != nil {
		if c.Timeout.D() <= 0 {
			return nil, errors.New("timeout: must be positive")
		}
		e.timeout = c.Timeout.D()
	}
	return e, nil
}

func (e *execSink) String() string { return "exec:" + e.argv[0] }

func (e *execSink) Close() error { return nil }

func (e *execSink) Deliver(ctx context.Context, d Delivery) error {
	return redact(e.deliver(ctx, d), d.Secret.Reveal())
}

func (e *execSink) deliver(ctx context.Context, d Delivery) error {
	secret := d.Secret.Reveal()
	tctx, cancel := context.WithTimeoutCause(ctx, e.timeout, errExecTimeout)
	defer cancel()

	cmd := exec.CommandContext(tctx, e.argv[0], e.argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The negative pid is the process group: helpers the command started die with it.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = e.grace
	cmd.Stdin = strings.NewReader(secret)
	stderr := &tailBuffer{max: 4*maxStderr + 2*len(secret)}
	cmd.Stderr = stderr
	expires := ""
	if !d.ExpiresAt.IsZero() {
		expires = d.ExpiresAt.UTC().Format(time.RFC3339)
	}
	cmd.Env = append(os.Environ(),
		"TOKEND_TOKEN_NAME="+d.Name,
		"TOKEND_EXPIRES_AT="+expires,
		"TOKEND_GENERATION="+strconv.FormatInt(d.Generation, 10),
		"TOKEND_PROVIDER="+d.Provider,
		"TOKEND_KIND="+d.Kind,
	)

	err := cmd.Run()
	if err == nil || (errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success()) {
		// A zero exit whose stderr was left open by a background child is still a delivery.
		return nil
	}
	tail := stderr.tail(secret)
	if tail != "" {
		tail = fmt.Sprintf("; stderr: %q", tail)
	}
	switch {
	case errors.Is(context.Cause(tctx), errExecTimeout):
		return fmt.Errorf("running %s: timed out after %s, process group killed: %w%s",
			e.argv[0], e.timeout, context.DeadlineExceeded, tail)
	case ctx.Err() != nil:
		return fmt.Errorf("running %s: %w%s", e.argv[0], ctx.Err(), tail)
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if code := exitErr.ExitCode(); code >= 0 {
			return fmt.Errorf("running %s: exit code %d%s", e.argv[0], code, tail)
		}
		return fmt.Errorf("running %s: %s%s", e.argv[0], exitErr, tail) // killed by a signal
	}
	return fmt.Errorf("running %s: %w%s", e.argv[0], err, tail)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max       int
	buf       []byte
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	return len(p), nil
}

// tail returns the last lines written, at most maxStderr bytes, with the secret scrubbed and surrounding blank
// space trimmed. The buffer holds 4*maxStderr+2*len(secret) bytes, so enough text remains where scrubbing
// shortened it.
func (t *tailBuffer) tail(secret string) string {
	s := scrub(t.buf, secret, t.truncated)
	cut := t.truncated
	s = strings.TrimSpace(s)
	if len(s) > maxStderr {
		s, cut = s[len(s)-maxStderr:], true
	}
	if cut {
		// Start at a line boundary when there is one.
		if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
			s = s[i+1:]
		}
	}
	return strings.ToValidUTF8(s, "")
}

// scrub returns b with each run of bytes that belong to an occurrence of secret (overlapping ones included)
// replaced by "<secret>". When headCut is set, b is the tail of a longer text, and a piece of a secret that
// the cut left at its start (a suffix of secret that b begins with) is scrubbed too.
func scrub(b []byte, secret string, headCut bool) string {
	if secret == "" {
		return string(b)
	}
	sec := []byte(secret)
	mask := make([]bool, len(b))
	if headCut {
		for j := 1; j < len(sec); j++ { // longest piece first
			if bytes.HasPrefix(b, sec[j:]) {
				for i := range len(sec) - j {
					mask[i] = true
				}
				break
			}
		}
	}
	for i := 0; i < len(b); {
		k := bytes.Index(b[i:], sec)
		if k < 0 {
			break
		}
		for m := i + k; m < i+k+len(sec); m++ {
			mask[m] = true
		}
		i += k + 1
	}
	var out strings.Builder
	for i := 0; i < len(b); {
		if !mask[i] {
			out.WriteByte(b[i])
			i++
			continue
		}
		out.WriteString("<secret>")
		for i < len(b) && mask[i] {
			i++
		}
	}
	return out.String()
}
