package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/cmd/tokend/tokendtest"
	"github.com/tokend/tokend/daemon"
	"github.com/tokend/tokend/rotation"
)

func TestDemoBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"demo", "--listen", addr, "--duration", "1s"}, &stdout, &stderr); code != exitFailure {
		t.Fatalf("demo on a busy port: exit %d, want %d; stderr:\n%s", code, exitFailure, stderr.String())
	}
	msg := stderr.String()
	if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, addr) || !strings.Contains(msg, "--listen") || !strings.Contains(msg, "in use") {
		t.Errorf("stderr = %q, want one line naming %s, \"in use\" and --listen", msg, addr)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}
}

func TestDemoUsage(t *testing.T) {
	for _, args := range [][]string{{"demo", "extra"}, {"demo", "--duration", "-1s"}, {"demo", "--nope"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitUsage {
			t.Errorf("run(%q) = %d, want %d; stderr: %s", args, code, exitUsage, stderr.String())
		}
	}
}

// demoRun is one run of the built binary's demo, watched through its API and metrics.
type demoRun struct {
	addr string
	cmd  *exec.Cmd
	out  *lockedBuffer

	// seen while the demo ran
	rows       daemon.Rows
	metrics    string
	maxGen     map[string]int64
	bad        []string // states that must never show: failed, expired
	sinksOK    bool
	sinksError string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func get(url string) ([]byte, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// look reads /api/v1/tokens and /metrics once and notes what it saw.
func (r *demoRun) look() {
	body, err := get("http://" + r.addr + "/api/v1/tokens")
	if err != nil {
		return // not up yet, or already gone
	}
	var rows daemon.Rows
	if err := json.Unmarshal(body, &rows); err != nil {
		r.bad = append(r.bad, "unreadable /api/v1/tokens: "+err.Error())
		return
	}
	r.rows = rows
	for _, row := range rows.Tokens {
		r.maxGen[row.Name] = max(r.maxGen[row.Name], row.Generation)
		if row.State == rotation.StateFailed || row.State == rotation.StateExpired {
			r.bad = append(r.bad, fmt.Sprintf("%s: state %s (%s)", row.Name, row.State, row.LastError))
		}
	}
	if m, err := get("http://" + r.addr + "/metrics"); err == nil {
		r.metrics = string(m)
	}
	if !r.sinksOK && len(rows.Tokens) > 0 {
		r.checkSinks(rows)
	}
}

// checkSinks reads every token's file once all have rotated: each must hold a token.
func (r *demoRun) checkSinks(rows daemon.Rows) {
	for _, row := range rows.Tokens {
		if row.Generation < 2 {
			return
		}
	}
	m := regexp.MustCompile(`(?m)^  tokens +(\S+)/ `).FindStringSubmatch(r.out.String())
	if m == nil {
		r.sinksError = "the demo did not print its tokens directory"
		r.sinksOK = true
		return
	}
	r.sinksOK = true
	for _, row := range rows.Tokens {
		b, err := os.ReadFile(filepath.Join(m[1], row.Name))
		if err != nil || len(b) < 16 {
			r.sinksError += fmt.Sprintf("%s: sink holds %d bytes (%v); ", row.Name, len(b), err)
		}
	}
}

var sampleRE = regexp.MustCompile(`^(\w+)\{([^}]*)\} (\S+)$`)
var labelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// samples returns the samples of metric name as label maps with their values.
func samples(text, name string) []map[string]string {
	var out []map[string]string
	for _, line := range strings.Split(text, "\n") {
		m := sampleRE.FindStringSubmatch(line)
		if m == nil || m[1] != name {
			continue
		}
		labels := map[string]string{"__value__": m[3]}
		for _, l := range labelRE.FindAllStringSubmatch(m[2], -1) {
			labels[l[1]] = l[2]
		}
		out = append(out, labels)
	}
	return out
}

// TestDemoBinary runs the built binary's `demo --duration 40s` and checks from its API and metrics that
// every kind was renewed or recreated, every superseded token revoked, and nothing failed.
func TestDemoBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for 40 seconds")
	}
	bin := tokendtest.Build(t, t.TempDir(), "") // as shipped: the demo needs no test provider
	addr := tokendtest.FreeAddr(t)
	r := &demoRun{addr: addr, out: &lockedBuffer{}, maxGen: map[string]int64{}}
	r.cmd = exec.Command(bin, "demo", "--duration", "40s", "--listen", addr)
	var stderr bytes.Buffer
	r.cmd.Stdout, r.cmd.Stderr = r.out, &stderr
	start := time.Now()
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- r.cmd.Wait() }()
	deadline := time.After(75 * time.Second)
	var waitErr error
watch:
	for {
		select {
		case waitErr = <-exited:
			break watch
		case <-deadline:
			_ = r.cmd.Process.Kill()
			<-exited
			t.Fatalf("demo --duration 40s still running after 75 s; output:\n%s", r.out.String())
		case <-time.After(500 * time.Millisecond):
			r.look()
		}
	}
	output := r.out.String()
	if waitErr != nil {
		t.Fatalf("demo exited with %v; stderr:\n%s\nstdout:\n%s", waitErr, stderr.String(), output)
	}
	if took := time.Since(start); took < 39*time.Second {
		t.Errorf("demo --duration 40s ended after %v", took)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing (logs go to the log file)", stderr.String())
	}

	if len(r.rows.Tokens) != 8 {
		t.Fatalf("saw %d tokens in /api/v1/tokens, want 8; output:\n%s", len(r.rows.Tokens), output)
	}
	for _, row := range r.rows.Tokens {
		if r.maxGen[row.Name] < 2 {
			t.Errorf("%s (%s %s): generation %d, want it renewed or recreated at least once", row.Name, row.Provider, row.Kind, r.maxGen[row.Name])
		}
	}
	for _, b := range r.bad {
		t.Error(b)
	}
	if r.sinksError != "" || !r.sinksOK {
		t.Errorf("sinks: %s (checked: %v)", r.sinksError, r.sinksOK)
	}

	// From the last scrape: every token that was recreated had its superseded token revoked, and no
	// operation of any token failed.
	count := map[string]float64{} // token/operation/result
	for _, s := range samples(r.metrics, "tokend_rotations_total") {
		v, err := strconv.ParseFloat(s["__value__"], 64)
		if err != nil {
			t.Fatalf("metric value %q: %v", s["__value__"], err)
		}
		count[s["token"]+"/"+s["operation"]+"/"+s["result"]] += v
		if s["result"] != "success" && v > 0 {
			t.Errorf("tokend_rotations_total%v = %v, want no failures", s, v)
		}
	}
	if len(count) == 0 {
		t.Fatalf("no tokend_rotations_total in the last scrape:\n%s", r.metrics)
	}
	for _, row := range r.rows.Tokens {
		renewed, recreated := count[row.Name+"/renew/success"], count[row.Name+"/recreate/success"]
		if renewed+recreated == 0 {
			t.Errorf("%s: no successful renew or recreate in metrics", row.Name)
		}
		if recreated > 0 && count[row.Name+"/revoke/success"] == 0 {
			t.Errorf("%s: recreated %v times, never revoked a superseded token", row.Name, recreated)
		}
	}
	// The demo's own look at the vendors when it ended: nothing superseded is left behind.
	m := regexp.MustCompile(`at the vendors: (\d+) live tokens: (\d+) current, (\d+) superseded in their grace period, (\d+) stray`).FindStringSubmatch(output)
	if m == nil {
		t.Fatalf("no vendor audit in the output:\n%s", output)
	}
	if m[4] != "0" {
		t.Errorf("vendor audit: %s", m[0])
	}
	if !strings.Contains(output, "revoked previous") || !strings.Contains(output, "renewed") || !strings.Contains(output, "recreated") {
		t.Errorf("output does not show renewals, recreations and revocations as they happen:\n%s", output)
	}
}
