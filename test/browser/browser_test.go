package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend/cmd/tokend/tokendtest"
	"github.com/tokend/tokend/daemon"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/store/storetest"
)

// chromium finds the browser: $TOKEND_CHROMIUM, else Debian's chromium on PATH. Without one the test is
// skipped, except under CI (CI set, as storetest does for Redis) or TOKEND_BROWSER_REQUIRED=1, where it
// fails: scripts/check installs chromium (scripts/checks/40-browser.sh --install-only) before go test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("TOKEND_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" || os.Getenv("TOKEND_BROWSER_REQUIRED") == "1" {
		t.Fatal("chromium not found (apt-get install chromium, or bash scripts/checks/40-browser.sh --install-only)")
	}
	t.Skip("chromium not found: the status page browser test needs Debian's chromium package")
	return ""
}

// browse runs headless chromium with args and the page URL, and returns its standard output. The browser
// runs in its own process group, with a throwaway profile and home, and the whole group is killed when it
// is done, so no helper process outlives the test.
func browse(t *testing.T, bin, dir string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	profile, err := os.MkdirTemp(dir, "chromium-profile-")
	if err != nil {
		t.Fatal(err)
	}
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profile,
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1",
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+profile, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers (zygote, GPU, network) left behind
	}
	if err != nil {
		tail := stderr.String()
		if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		t.Fatalf("chromium %v: %v\n%s", args, err, tail)
	}
	return stdout.Bytes()
}

// A token of the test deployment and the state the page must show for it.
type token struct {
	name, provider, kind string
	want                 string
}

var tokens = []token{
	{"backup-sync", "vendor", "recreate", "current"},
	{"provisioning", "renewing", "renewable", "current"},
	{"ci-pipeline", "vendor", "recreate", "current"},
	{"scim-locked-out", "locked-out", "recreate", "failed"},
}

var rowRE = regexp.MustCompile(`(?s)<tr[^>]*\bdata-token="([^"]+)"[^>]*\bdata-state="([^"]+)"[^>]*>(.*?)</tr>`)

// TestStatusPageInChromium runs the real binary against providertest's HTTP fakes and the real Redis, with
// one vendor refusing tokend's credentials (401 on every create), and reads the status page the way a
// person on call would: in a browser.
func TestStatusPageInChromium(t *testing.T) {
	browser := chromium(t)
	rdb := storetest.RealRedis(t)
	dir := t.TempDir()
	began := time.Now()
	bin := tokendtest.Binary(t)
	t.Logf("built tokend in %v", time.Since(began).Round(time.Millisecond))

	healthy := providertest.NewFake(providertest.FakeOptions{})
	renewing := providertest.NewFake(providertest.FakeOptions{Lifetime: 2 * time.Hour, Renewable: true, RotatingRefresh: true})
	locked := providertest.NewFake(providertest.FakeOptions{})
	urls := map[string]string{}
	for name, f := range map[string]*providertest.Fake{"vendor": healthy, "renewing": renewing, "locked-out": locked} {
		srv := httptest.NewServer(providertest.NewHandler(f))
		t.Cleanup(srv.Close)
		urls[name] = srv.URL
	}
	// The locked-out vendor refuses every create, through its control endpoint: a failure that needs a person.
	resp, err := http.Post(urls["locked-out"]+"/control/fail?op=create&status=401&n=100000", "", nil)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /control/fail = %v, %v", resp, err)
	}
	resp.Body.Close()

	key := filepath.Join(dir, "state-key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("tokendbrowser%d", time.Now().UnixNano())
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+":*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	listen := tokendtest.FreeAddr(t)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `listen: %s
instance_id: browser-e2e
log: {level: debug, format: json}
redis: {url: "redis://%s/0", key_prefix: %s}
state_key_file: %s
defaults:
  renew_before: 50%%
  jitter: 0%%
  max_age: 30d
  revoke_after: 1m
  poll: "@every 1h"
  retry: {min: 200ms, max: 1s}
providers:
`, listen, rdb.Options().Addr, prefix, key)
	for _, p := range []string{"vendor", "renewing", "locked-out"} {
		fmt.Fprintf(&cfg, "  - {name: %s, type: fake, url: %q}\n", p, urls[p])
	}
	cfg.WriteString("tokens:\n")
	sinks := map[string]string{}
	for _, tk := range tokens {
		sinks[tk.name] = filepath.Join(dir, "out", tk.name+".token")
		fmt.Fprintf(&cfg, "  - name: %s\n    provider: %s\n    kind: %s\n    deliver:\n      - file: {path: %s}\n", tk.name, tk.provider, tk.kind, sinks[tk.name])
	}
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o700); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "tokend.yaml")
	if err := os.WriteFile(config, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	logPath := filepath.Join(dir, "tokend.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "run", "--config", config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	logTail := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return string(b)
	}
	base := "http://" + listen

	// Wait until tokend knows what the page must show: the healthy tokens current and delivered, the
	// locked-out one failed, and its failure in its history.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; tokend log tail:\n%s", what, logTail())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("every token in its expected state", func() bool {
		resp, err := http.Get(base + "/api/v1/tokens")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var rows daemon.Rows
		if json.NewDecoder(resp.Body).Decode(&rows) != nil || len(rows.Tokens) != len(tokens) {
			return false
		}
		got := map[string]daemon.Row{}
		for _, r := range rows.Tokens {
			got[r.Name] = r
		}
		for _, tk := range tokens {
			r := got[tk.name]
			if r.State != tk.want || (tk.want == "current" && r.LastSuccessAt == nil) {
				return false
			}
		}
		return true
	})
	waitFor("the locked-out token's failure in its history", func() bool {
		resp, err := http.Get(base + "/tokens/scim-locked-out")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return bytes.Contains(b, []byte(`data-operation="create" data-result="unauthorized"`))
	})
	t.Logf("tokend showed every state %v after start", time.Since(started).Round(time.Millisecond))
	secrets := map[string]string{}
	for _, tk := range tokens {
		if tk.want != "current" {
			continue
		}
		b, err := os.ReadFile(sinks[tk.name])
		if err != nil || len(b) < 8 {
			t.Fatalf("sink of %s: %q, %v; want a delivered token", tk.name, b, err)
		}
		secrets[tk.name] = string(b)
	}

	// The page, as the browser built it.
	browsing := time.Now()
	dom := string(browse(t, browser, dir, "--dump-dom", base+"/"))
	if !strings.Contains(dom, "<table") || !strings.Contains(dom, "instance <b>browser-e2e</b>") {
		t.Fatalf("the browser did not get the status page:\n%s", dom)
	}
	rows := rowRE.FindAllStringSubmatch(dom, -1)
	if len(rows) != len(tokens) {
		t.Fatalf("the page lists %d tokens, want %d:\n%s", len(rows), len(tokens), dom)
	}
	listed := map[string]string{}
	for _, r := range rows {
		listed[r[1]] = r[2]
		if !regexp.MustCompile(`<span class="state state-` + r[2] + `">` + r[2] + `</span>`).MatchString(r[3]) {
			t.Errorf("row %s does not say its state %q in text:\n%s", r[1], r[2], r[3])
		}
	}
	for _, tk := range tokens {
		if listed[tk.name] != tk.want {
			t.Errorf("the page shows %s as %q, want %q", tk.name, listed[tk.name], tk.want)
		}
	}
	if first := rows[0]; first[1] != "scim-locked-out" || !strings.Contains(first[3], ">failed</span>") ||
		!strings.Contains(first[3], "401") {
		t.Errorf("first row = %s (%s), want scim-locked-out reading failed with its 401:\n%s", first[1], first[2], first[3])
	}
	tokenDOM := string(browse(t, browser, dir, "--dump-dom", base+"/tokens/scim-locked-out"))
	if !regexp.MustCompile(`data-operation="create" data-result="unauthorized">.*?401`).MatchString(strings.ReplaceAll(tokenDOM, "\n", " ")) {
		t.Errorf("the token page does not show the refused create with its error:\n%s", tokenDOM)
	}
	for name, s := range secrets {
		if strings.Contains(dom, s) || strings.Contains(tokenDOM, s) {
			t.Errorf("the secret of %s appears in the page", name)
		}
	}

	// Screenshots, kept as artifacts: the page on a 320 px wide phone and on a desktop.
	shots := []struct {
		file string
		w, h int
	}{{"status-320.png", 320, 800}, {"status-1280.png", 1280, 800}}
	for _, s := range shots {
		path := filepath.Join(dir, s.file)
		browse(t, browser, dir, "--screenshot="+path, fmt.Sprintf("--window-size=%d,%d", s.w, s.h), base+"/")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("screenshot %s: %v", s.file, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("screenshot %s is not a PNG: %v", s.file, err)
		}
		if got := img.Bounds().Dx(); got != s.w {
			t.Errorf("screenshot %s is %d px wide, want %d", s.file, got, s.w)
		}
		if dst := os.Getenv("TOKEND_ARTIFACTS"); dst != "" {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, s.file), b, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot kept at %s", filepath.Join(dst, s.file))
		}
	}
	t.Logf("browser part took %v", time.Since(browsing).Round(time.Millisecond))
	names := make([]string, 0, len(listed))
	for n := range listed {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("page lists %v; first %s", names, rows[0][1])
}
