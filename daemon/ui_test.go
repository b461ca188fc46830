package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/providers/astra/astratest"
	"github.com/tokend/tokend/rotation"
	"github.com/tokend/tokend/store"
)

var uiNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// uiSnapshots is one token of every kind of urgency, given in name order as the engine gives them.
func uiSnapshots() []rotation.Snapshot {
	return []rotation.Snapshot{
		{Name: "a-never", Provider: "astra", Kind: "api_token", State: rotation.StateCurrent, CreatedAt: uiNow.Add(-time.Hour), NextAction: "recreate", NextAt: uiNow.Add(24 * time.Hour)},
		{Name: "b-later", Provider: "vcd", Kind: "access_token", State: rotation.StateCurrent, ExpiresAt: uiNow.Add(3 * time.Hour), NextAction: "renew", NextAt: uiNow.Add(time.Hour), LastSuccess: uiNow.Add(-time.Minute)},
		{Name: "c-soon", Provider: "commvault", Kind: "access_token", State: rotation.StateCurrent, ExpiresAt: uiNow.Add(20 * time.Minute), RenewableUntil: uiNow.Add(48 * time.Hour), NextAction: "renew", NextAt: uiNow.Add(-2 * time.Second)},
		{Name: "d-retrying", Provider: "huawei", Kind: "scim_token", State: rotation.StateRotating, ExpiresAt: uiNow.Add(5 * time.Hour), ConsecutiveFailures: 2, LastError: "creating: 503 <b>busy</b>", NextAction: "recreate", NextAt: uiNow.Add(30 * time.Second)},
		{Name: "e-failed", Provider: "vcd", Kind: "api_token", State: rotation.StateFailed, ConsecutiveFailures: 7, LastError: `creating token: POST /tokens: 401 unauthorized <script>alert("x")</script>`},
		{Name: "f-expired", Provider: "astra", Kind: "api_token", State: rotation.StateExpired, ExpiresAt: uiNow.Add(-10 * time.Minute), ConsecutiveFailures: 1, LastError: "renewing: timeout"},
	}
}

func TestSortByUrgency(t *testing.T) {
	snaps := uiSnapshots()
	sortByUrgency(snaps)
	var got []string
	for _, s := range snaps {
		got = append(got, s.Name)
	}
	// Needs a person (expired before failed: its expiry is the earliest, the failed one has none), then
	// failing and retrying, then soonest expiry, never-expiring last.
	want := []string{"f-expired", "e-failed", "d-retrying", "c-soon", "b-later", "a-never"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("sortByUrgency() = %v, want %v", got, want)
	}
}

func testUI(snaps []rotation.Snapshot, hist map[string][]store.Event, histErr error) http.Handler {
	u := &statusUI{
		snapshots: func() []rotation.Snapshot { return snaps },
		history: func(_ context.Context, name string) ([]store.Event, error) {
			return hist[name], histErr
		},
		header: func() uiHeader {
			return uiHeader{Instance: "host-a", Version: "1.2.3", RedisUp: false, ReloadOK: false, ReloadAt: uiNow.Add(-90 * time.Second), Now: uiNow}
		},
		runbook: "https://runbook.example/docs/runbook.md",
	}
	mux := http.NewServeMux()
	u.register(mux)
	return mux
}

func get(t *testing.T, h http.Handler, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Result(), rec.Body.String()
}

var rowRE = regexp.MustCompile(`(?s)<tr role="row" class="row-[a-z]+" data-token="([^"]+)" data-state="([^"]+)">(.*?)</tr>`)

func TestIndexListsTokensByUrgency(t *testing.T) {
	resp, body := get(t, testUI(uiSnapshots(), nil, nil), "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	rows := rowRE.FindAllStringSubmatch(body, -1)
	var order []string
	cells := map[string]string{}
	for _, r := range rows {
		order = append(order, r[1]+"="+r[2])
		cells[r[1]] = r[3]
		if !strings.Contains(r[3], `<span class="state state-`+r[2]+`">`+r[2]+`</span>`) {
			t.Errorf("row %s does not say its state %q in text:\n%s", r[1], r[2], r[3])
		}
	}
	want := "f-expired=expired e-failed=failed d-retrying=rotating c-soon=current b-later=current a-never=current"
	if got := strings.Join(order, " "); got != want {
		t.Fatalf("rows = %s, want %s", got, want)
	}
	checks := []struct{ row, want string }{
		{"c-soon", `<time datetime="2026-03-01T12:20:00Z" title="2026-03-01 12:20:00 UTC">in 20m 0s</time>`},
		{"c-soon", `<time datetime="2026-03-03T12:00:00Z" title="2026-03-03 12:00:00 UTC">in 2d 0h</time>`},
		{"c-soon", `renew <time datetime="2026-03-01T11:59:58Z" title="2026-03-01 11:59:58 UTC">2s ago</time>`},
		{"a-never", `data-label="Expires"><span class="none">never</span>`},
		{"a-never", `data-label="Last success"><span class="none">never</span>`},
		{"b-later", `data-label="Last success"><time datetime="2026-03-01T11:59:00Z" title="2026-03-01 11:59:00 UTC">1m 0s ago</time>`},
		{"f-expired", `10m 0s ago`},
		{"e-failed", `href="https://runbook.example/docs/runbook.md#tokendtokenfailed">runbook</a>`},
		{"f-expired", `href="https://runbook.example/docs/runbook.md#tokendtokenexpired">runbook</a>`},
		{"d-retrying", `runbook.md#tokendrotationfailing">runbook</a>`},
		{"e-failed", `class="num bad">7</td>`},
		{"e-failed", `401 unauthorized &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`},
		{"d-retrying", `creating: 503 &lt;b&gt;busy&lt;/b&gt;`},
		{"e-failed", `<a href="/tokens/e-failed">e-failed</a>`},
	}
	for _, c := range checks {
		if !strings.Contains(cells[c.row], c.want) {
			t.Errorf("row %s lacks %s:\n%s", c.row, c.want, cells[c.row])
		}
	}
	if strings.Contains(cells["c-soon"], "runbook") {
		t.Errorf("a healthy row links to the runbook:\n%s", cells["c-soon"])
	}
	if strings.Contains(body, "<script>") {
		t.Error("an error text reached the page unescaped")
	}
	for _, want := range []string{
		"instance <b>host-a</b>", `Redis <b class="bad">down</b>`, `<b class="bad">reload failed</b> <time datetime="2026-03-01T11:58:30Z"`,
		"version <b>1.2.3</b>", `<a href="/metrics">`, `<a href="/api/v1/tokens">`, `<a href="https://runbook.example/docs/runbook.md">runbook</a>`,
		"6 tokens: 1 failed, 1 expired, 1 rotating, 3 current.", "<title>(2 need attention) tokend</title>",
		`<link rel="stylesheet" href="/ui/tokend.css">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("page refreshes itself without ?refresh")
	}
	if regexp.MustCompile(`(?i)<script|src="https?:|href="https?://[^"]*\.css`).MatchString(body) {
		t.Error("page uses JavaScript or an external asset")
	}
}

func TestRefresh(t *testing.T) {
	for _, tt := range []struct {
		query string
		want  int
	}{{"", 0}, {"?refresh=30", 30}, {"?refresh=1", 5}, {"?refresh=99999", 3600}, {"?refresh=abc", 0}, {"?refresh=-4", 0}} {
		t.Run(tt.query, func(t *testing.T) {
			_, body := get(t, testUI(uiSnapshots(), nil, nil), "/"+tt.query)
			meta := fmt.Sprintf(`<meta http-equiv="refresh" content="%d">`, tt.want)
			if got := strings.Contains(body, meta); got != (tt.want > 0) || strings.Contains(body, "http-equiv") != (tt.want > 0) {
				t.Errorf("GET /%s: has %s = %v, want %v", tt.query, meta, got, tt.want > 0)
			}
		})
	}
	_, body := get(t, testUI(uiSnapshots(), nil, nil), "/tokens/c-soon?refresh=10")
	if !strings.Contains(body, `<meta http-equiv="refresh" content="10">`) || !strings.Contains(body, `<a href="/tokens/c-soon?refresh=60">1 min</a>`) {
		t.Errorf("token page ignores ?refresh or links elsewhere:\n%s", body)
	}
}

func TestTokenPageShowsHistory(t *testing.T) {
	hist := map[string][]store.Event{"e-failed": {
		{Time: uiNow.Add(-time.Minute), Operation: "create", Result: "unauthorized", DurationMS: 12, Instance: "host-a", Error: "creating token: 401 <i>no</i>"},
		{Time: uiNow.Add(-time.Hour), Operation: "deliver", Result: "success", DurationMS: 1500, Instance: "host-b"},
	}}
	resp, body := get(t, testUI(uiSnapshots(), hist, nil), "/tokens/e-failed")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /tokens/e-failed = %d, want 200", resp.StatusCode)
	}
	for _, want := range []string{
		`<h2 id="about">e-failed <span class="state state-failed">failed</span>`,
		"The last 2 operations on e-failed, newest first",
		`<tr role="row" data-operation="create" data-result="unauthorized">`,
		`<span class="result result-bad">unauthorized</span>`, "creating token: 401 &lt;i&gt;no&lt;/i&gt;", "12 ms",
		`<tr role="row" data-operation="deliver" data-result="success">`, `<span class="result result-ok">success</span>`, "1.5 s", "host-b",
		`<time datetime="2026-03-01T11:00:00Z" title="2026-03-01 11:00:00 UTC">1h 0m ago</time>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("token page lacks %s", want)
		}
	}
	if i, j := strings.Index(body, `data-operation="create"`), strings.Index(body, `data-operation="deliver"`); i > j {
		t.Error("history is not newest first")
	}

	_, body = get(t, testUI(uiSnapshots(), nil, nil), "/tokens/a-never")
	if !strings.Contains(body, "No operations recorded yet.") {
		t.Error("a token without history does not say so")
	}
	_, body = get(t, testUI(uiSnapshots(), nil, errors.New("dial tcp: refused")), "/tokens/a-never")
	if !strings.Contains(body, "History unavailable: could not read it from Redis") {
		t.Error("a history read error is not shown")
	}
	resp, body = get(t, testUI(uiSnapshots(), nil, nil), "/tokens/nope")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "No token named “nope”") {
		t.Errorf("GET /tokens/nope = %d, want 404 with a sentence", resp.StatusCode)
	}
	resp, _ = get(t, testUI(uiSnapshots(), nil, nil), "/nothing-here")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing-here = %d, want 404 (only / is the page)", resp.StatusCode)
	}
	resp, body = get(t, testUI(uiSnapshots(), nil, nil), "/ui/tokend.css")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(body, "@media (max-width:") {
		t.Errorf("GET /ui/tokend.css = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestRelTime(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "now"}, {400 * time.Millisecond, "now"}, {-999 * time.Millisecond, "now"},
		{12 * time.Second, "in 12s"}, {-12 * time.Second, "12s ago"}, {4*time.Minute + 10*time.Second, "in 4m 10s"},
		{2*time.Hour + 5*time.Minute + 59*time.Second, "in 2h 6m"}, {-(3*24*time.Hour + 4*time.Hour), "3d 4h ago"},
		{1500 * time.Millisecond, "in 2s"}, {23*time.Hour + 59*time.Minute + 40*time.Second, "in 1d 0h"}, {59*time.Minute + 59*time.Second + 600*time.Millisecond, "in 1h 0m"},
	} {
		if got := relTime(uiNow, uiNow.Add(tt.d)); got != tt.want {
			t.Errorf("relTime(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// fakeHistoryStore records what the recorder writes.
type fakeHistoryStore struct {
	mu      sync.Mutex
	written map[string][]store.Event
	errs    map[string]string
	asked   []string
	fail    error
}

func (f *fakeHistoryStore) AppendHistory(_ context.Context, evs map[string][]store.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	for n, e := range evs {
		f.written[n] = append(f.written[n], e...)
	}
	return nil
}

func (f *fakeHistoryStore) LastErrors(_ context.Context, names []string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, names...)
	return f.errs, nil
}

func (f *fakeHistoryStore) Instance() string { return "host-a" }

type countingObserver struct {
	mu                          sync.Mutex
	ops, deliveries, changes    int
	lastOp, lastResult, changed string
}

func (c *countingObserver) Operation(_, _, op, result string, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops++
	c.lastOp, c.lastResult = op, result
}
func (c *countingObserver) Delivery(string, string, string) {
	c.mu.Lock()
	c.deliveries++
	c.mu.Unlock()
}
func (c *countingObserver) Changed(n string) { c.mu.Lock(); c.changes++; c.changed = n; c.mu.Unlock() }

func TestHistoryRecordsOperationsWhenTheTokenChanged(t *testing.T) {
	st := &fakeHistoryStore{written: map[string][]store.Event{}, errs: map[string]string{"bad": "creating: 401 unauthorized"}}
	next := &countingObserver{}
	h := newHistory(st, next, slogDiscard())
	h.now = func() time.Time { return uiNow }
	stop := h.start()

	h.Operation("bad", "vcd", "create", "unauthorized", 20*time.Millisecond)
	h.Operation("good", "vcd", "inspect", "success", time.Millisecond) // a quiet poll: not recorded
	h.Operation("good", "vcd", "renew", "success", 3*time.Millisecond)
	h.Delivery("good", "file", "success")
	h.Operation("good", "vcd", "inspect", "not_found", time.Millisecond)
	h.Operation("later", "vcd", "revoke", "success", time.Millisecond) // its Work has not ended: kept back
	h.Changed("bad")
	h.Changed("good")
	h.Changed("quiet") // nothing pending: no write, no wake-up needed
	stop()

	if next.ops != 5 || next.deliveries != 1 || next.changes != 3 || next.lastOp != "revoke" {
		t.Errorf("forwarded ops=%d deliveries=%d changes=%d last=%s, want 5, 1, 3, revoke", next.ops, next.deliveries, next.changes, next.lastOp)
	}
	want := map[string][]store.Event{
		"bad": {{Time: uiNow, Operation: "create", Result: "unauthorized", DurationMS: 20, Instance: "host-a", Error: "creating: 401 unauthorized"}},
		"good": {
			{Time: uiNow, Operation: "renew", Result: "success", DurationMS: 3, Instance: "host-a"},
			{Time: uiNow, Operation: "inspect", Result: "not_found", DurationMS: 1, Instance: "host-a", Error: "the vendor no longer knows this token (deleted or revoked behind tokend's back)"},
		},
	}
	if got, w := fmt.Sprint(st.written), fmt.Sprint(want); got != w {
		t.Errorf("written =\n%s\nwant\n%s", got, w)
	}
	if strings.Join(st.asked, ",") != "bad" {
		t.Errorf("LastErrors asked for %v, want only bad (an inspect failure has no state text)", st.asked)
	}
	// Operations of a Work that never ends are bounded.
	for range 3 * pendingPerToken {
		h.Operation("stuck", "vcd", "renew", "transient", 0)
	}
	if n := len(h.pending["stuck"]); n != pendingPerToken {
		t.Errorf("pending for one token = %d, want the bound %d", n, pendingPerToken)
	}
}

func TestHistoryDropsWhenTheQueueIsFull(t *testing.T) {
	st := &fakeHistoryStore{written: map[string][]store.Event{}}
	h := newHistory(st, &countingObserver{}, slogDiscard())
	// No writer runs: the queue fills up and then drops.
	for i := range historyQueue/pendingPerToken + 10 {
		name := fmt.Sprintf("t%d", i)
		for range pendingPerToken {
			h.Operation(name, "p", "renew", "success", 0)
		}
		h.Changed(name)
	}
	if h.queued > historyQueue || h.dropped == 0 {
		t.Fatalf("queued=%d dropped=%d, want at most %d queued and some dropped", h.queued, h.dropped, historyQueue)
	}
	h.flush()
	if h.queued != 0 || h.dropped != 0 || len(h.ready) != 0 {
		t.Errorf("after flush queued=%d dropped=%d ready=%d, want all zero", h.queued, h.dropped, len(h.ready))
	}
}

// TestStatusPageOfARunningDaemon runs the daemon on miniredis and an Astra fake, with basic auth, and reads
// the page and the token's history through HTTP.
func TestStatusPageOfARunningDaemon(t *testing.T) {
	m := miniredis.RunT(t)
	fake := astratest.New(astratest.Options{})
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	bootstrap := fake.IssueBootstrap()
	_ = os.WriteFile(filepath.Join(dir, "key"), []byte("0123456789abcdef0123456789abcdef"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "bootstrap"), []byte(bootstrap), 0o600)
	// password "status-page-test", bcrypt cost 4
	web := "basic_auth_users:\n  oncall: $2a$04$i6OFR9Mh/flwjSXA2U/CH.EEd7.GbO5aaDps6k60jo9Shvk1IfLf2\n"
	_ = os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(web), 0o600)
	path := filepath.Join(dir, "tokend.yaml")
	writeConfig(t, path, m.Addr(), fake.URL(), dir, "7d")
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "web_config_file: %s\n", filepath.Join(dir, "web.yaml"))
	f.Close()
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{ConfigPath: path, Listener: ln, Notify: func(string) {}, BuildInfo: buildInfoForTest})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	fetch := func(p string, auth bool) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+p, nil)
		if auth {
			req.SetBasicAuth("oncall", "status-page-test")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(15 * time.Second)
	var body string
	for {
		code, b := fetch("/tokens/astra-backup", true)
		body = b
		if code == http.StatusOK && strings.Contains(b, `data-operation="deliver" data-result="success"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the token page never showed a delivery; last answer %d:\n%s", code, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(body, `<span class="state state-current">current</span>`) {
		t.Errorf("token page does not read current:\n%s", body)
	}
	code, index := fetch("/", true)
	if code != http.StatusOK || !strings.Contains(index, `data-token="astra-backup" data-state="current"`) ||
		!strings.Contains(index, "instance <b>test</b>") || !strings.Contains(index, "version <b>9.9.9-test</b>") ||
		!strings.Contains(index, `Redis <b class="ok">up</b>`) {
		t.Errorf("GET / = %d:\n%s", code, index)
	}
	// The page is behind the same basic auth as the other endpoints.
	for _, p := range []string{"/", "/tokens/astra-backup", "/ui/tokend.css"} {
		if code, _ := fetch(p, false); code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials = %d, want 401", p, code)
		}
	}
	// Never a secret: neither the bootstrap token nor the one tokend delivered.
	delivered, _ := os.ReadFile(filepath.Join(dir, "out.token"))
	for _, secret := range []string{bootstrap, string(delivered)} {
		if len(secret) < 8 {
			t.Fatalf("secret %q too short to search for", secret)
		}
		if strings.Contains(index, secret) || strings.Contains(body, secret) {
			t.Error("a secret appears on the status page")
		}
	}
	// The history is in Redis, under the token's hash tag.
	if n, _ := m.List("tokend:{astra-backup}:log"); len(n) == 0 {
		t.Error("no history list at tokend:{astra-backup}:log")
	}
}

var buildInfoForTest = metrics.BuildInfo{Version: "9.9.9-test"}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestRunbookAnchorsExist keeps the page's runbook links pointing at sections of docs/runbook.md (GitHub
// anchors are the lowercased headings).
func TestRunbookAnchorsExist(t *testing.T) {
	b, err := os.ReadFile("../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			headings["#"+strings.ToLower(strings.TrimSpace(h))] = true
		}
	}
	for _, s := range uiSnapshots() {
		if a := runbookAnchor(s); a != "" && !headings[a] {
			t.Errorf("runbookAnchor(%s) = %s: no such section in docs/runbook.md", s.Name, a)
		}
	}
}

func manySnapshots(n int) []rotation.Snapshot {
	snaps := make([]rotation.Snapshot, n)
	for i := range snaps {
		snaps[i] = rotation.Snapshot{
			Name: fmt.Sprintf("token-%06d", i), Provider: "vcd", Kind: "access_token", State: rotation.StateCurrent,
			ExpiresAt: uiNow.Add(time.Duration(n-i) * time.Minute), NextAction: "renew", NextAt: uiNow.Add(time.Duration(n-i) * 30 * time.Second),
			LastSuccess: uiNow.Add(-time.Hour),
		}
	}
	snaps[n/2].State, snaps[n/2].ConsecutiveFailures, snaps[n/2].LastError = rotation.StateFailed, 3, "creating token: 401"
	return snaps
}

func TestIndexShowsTheMostUrgentOfManyTokens(t *testing.T) {
	n := maxRows + 500
	_, body := get(t, testUI(manySnapshots(n), nil, nil), "/")
	rows := rowRE.FindAllStringSubmatch(body, -1)
	if len(rows) != maxRows {
		t.Fatalf("page has %d rows, want the bound %d", len(rows), maxRows)
	}
	if rows[0][1] != fmt.Sprintf("token-%06d", n/2) || rows[1][1] != fmt.Sprintf("token-%06d", n-1) {
		t.Errorf("first rows = %s, %s; want the failed token, then the one expiring soonest", rows[0][1], rows[1][1])
	}
	if want := fmt.Sprintf("%d tokens: 1 failed, %d current. Showing the %d most urgent", n, n-1, maxRows); !strings.Contains(body, want) {
		t.Errorf("page does not say %q", want)
	}
}

func BenchmarkIndex1000(b *testing.B) {
	h := testUI(manySnapshots(1000), nil, nil)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		b.SetBytes(int64(rec.Body.Len()))
	}
}

// BenchmarkHistoryObserve is what the recorder adds to a rotation's path: one operation and the change that
// hands it to the writer (the Redis write happens on the writer goroutine).
func BenchmarkHistoryObserve(b *testing.B) {
	h := newHistory(discardHistory{}, &countingObserver{}, slogDiscard())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Operation("tok", "vcd", "renew", "success", time.Millisecond)
		h.Changed("tok")
		if i%1000 == 0 {
			h.flush()
		}
	}
}

type discardHistory struct{}

func (discardHistory) AppendHistory(context.Context, map[string][]store.Event) error { return nil }
func (discardHistory) LastErrors(context.Context, []string) (map[string]string, error) {
	return nil, nil
}
func (discardHistory) Instance() string { return "host-a" }
