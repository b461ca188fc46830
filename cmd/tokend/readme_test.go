package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The README cannot rot: every shell command in it runs here as written (the test command is the one
// CI itself runs), and every `tokend ...` command it mentions names a real subcommand and real flags.

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shellCommands returns the commands of the README's ```sh blocks, comments removed.
func shellCommands(text string) []string {
	var cmds []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in:
			if i := strings.Index(line, "#"); i >= 0 {
				line = line[:i]
			}
			if line = strings.TrimSpace(line); line != "" {
				cmds = append(cmds, line)
			}
		}
	}
	return cmds
}

func TestReadmeStartsWithTheTwoCommands(t *testing.T) {
	text := readme(t)
	cmds := shellCommands(text)
	if len(cmds) < 2 || cmds[0] != "go run ./cmd/tokend demo" || cmds[1] != "./scripts/check" {
		t.Fatalf("README's first commands = %q, want the demo, then ./scripts/check", cmds)
	}
	if !strings.HasPrefix(strings.TrimSpace(strings.SplitN(text, "```sh", 2)[1]), "go run ./cmd/tokend demo") {
		t.Fatalf("the README does not open with the demo command")
	}
	ci, err := os.ReadFile(filepath.Join("..", "..", ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "exec ./scripts/check") {
		t.Fatalf(".ci/run does not run the README's test command:\n%s", ci)
	}
}

func TestReadmeShellCommandsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo")
	}
	for _, c := range shellCommands(readme(t)) {
		switch c {
		case "./scripts/check":
			// CI runs it (this test runs inside it); make sure it is there and executable.
			fi, err := os.Stat(filepath.Join("..", "..", "scripts", "check"))
			if err != nil || fi.Mode()&0o111 == 0 {
				t.Errorf("%s is not an executable file: %v", c, err)
			}
		case "go run ./cmd/tokend demo":
			runDemoAsWritten(t, c)
		default:
			t.Errorf("README command %q has no test: add one here", c)
		}
	}
}

// runDemoAsWritten runs the demo exactly as the README says, from the module root, waits for it to show
// a rotation, then presses Ctrl-C (SIGINT to its process group) and expects a clean exit.
func runDemoAsWritten(t *testing.T, command string) {
	t.Helper()
	args := strings.Fields(command)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(out.String(), "recreated") || !strings.Contains(out.String(), "renewed") {
		select {
		case err := <-done:
			t.Fatalf("%s ended before showing rotations: %v\n%s", command, err, out.String())
		case <-deadline:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Fatalf("%s showed no renewal and recreation within 3 minutes:\n%s", command, out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case err := <-done:
		// `go run` itself gets the terminal's SIGINT too and exits 1 whatever the program did, so the
		// demo's own word is what counts: its closing summary, with nothing left at the vendors.
		text := out.String()
		if !strings.Contains(text, "demo over") || !strings.Contains(text, " 0 stray") {
			t.Fatalf("%s after Ctrl-C (%v): no clean closing summary:\n%s", command, err, text)
		}
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("%s did not stop within 30 s of Ctrl-C", command)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestReadmeTokendCommandsExist checks every `tokend SUB [--flag]` the README shows against the CLI.
func TestReadmeTokendCommandsExist(t *testing.T) {
	re := regexp.MustCompile("`tokend ([a-z]+)([^`]*)`")
	matches := re.FindAllStringSubmatch(readme(t), -1)
	if len(matches) < 6 {
		t.Fatalf("found %d tokend commands in the README, want the CLI table", len(matches))
	}
	for _, m := range matches {
		sub, rest := m[1], m[2]
		var stdout, stderr bytes.Buffer
		code := run([]string{sub, "-h"}, &stdout, &stderr)
		help := stdout.String() + stderr.String()
		if strings.Contains(help, "unknown command") {
			t.Errorf("README mentions `tokend %s`, which is not a command", sub)
			continue
		}
		if sub == "version" {
			if code != exitOK {
				t.Errorf("tokend version = %d", code)
			}
			continue
		}
		for _, flagName := range regexp.MustCompile(`--([a-z-]+)`).FindAllStringSubmatch(rest, -1) {
			if !strings.Contains(help, "-"+flagName[1]) {
				t.Errorf("README shows `tokend %s --%s`, but tokend %s has no such flag:\n%s", sub, flagName[1], sub, help)
			}
		}
	}
}
