package prometheus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokend/tokend/cmd/tokend/tokendtest"
	"github.com/tokend/tokend/daemon"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/store/storetest"
)

// TestEndToEnd runs the real tokend binary (with the test provider) against three providertest HTTP fakes
// and the real Redis, scraped every second by a real Prometheus that loads configs/prometheus/alerts.yaml.
// It shows that a scrape passes promtool check metrics; that after rotations every dashboard query and every
// rule expression evaluates in Prometheus without error (and the dashboard's queries return data); that each
// token's expiry series equals the expiry its fake vendor holds (and is absent for a token that never
// expires); that a token driven into failure (401 on create) turns the failure metrics and the
// TokendRotationFailing and TokendTokenFailed expressions true for that token alone (and Prometheus' own
// evaluation of the loaded rule makes the alert pending); and that log.level and log.format are honoured
// (format auto gives JSON when stderr is not a terminal) and changed by a reload.
//
// It needs promtool and prometheus on PATH (Debian's prometheus package; scripts/checks/20-prometheus.sh
// installs it) and a Redis (storetest.RealRedis). Without them it skips, except under CI=true, where it fails.
func TestEndToEnd(t *testing.T) {
	promtool, prom := tools(t)
	rdb := storetest.RealRedis(t)
	bin := tokendtest.Binary(t)
	dir := t.TempDir()

	// Three vendors: one renews in place, one only recreates (and will be made to fail), one issues tokens
	// that never expire (rotated by max_age).
	renewing := providertest.NewFake(providertest.FakeOptions{Lifetime: 12 * time.Second, Renewable: true,
		RenewableFor: 10 * time.Minute, RotatingRefresh: true})
	recreating := providertest.NewFake(providertest.FakeOptions{Lifetime: 12 * time.Second})
	forever := providertest.NewFake(providertest.FakeOptions{})
	fakes := map[string]*providertest.Fake{"renewing": renewing, "recreating": recreating, "forever": forever}
	urls := map[string]string{}
	for name, f := range fakes {
		srv := httptest.NewServer(providertest.NewHandler(f))
		t.Cleanup(srv.Close)
		urls[name] = srv.URL
	}

	key := filepath.Join(dir, "state-key")
	writeFile(t, key, "0123456789abcdef0123456789abcdef")
	prefix := fmt.Sprintf("tokendprom-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+":*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	listen := tokendtest.FreeAddr(t)
	configPath := filepath.Join(dir, "tokend.yaml")
	config := func(level, format string) string {
		return fmt.Sprintf(`listen: %s
instance_id: prom-e2e
log: {level: %s, format: %s}
redis: {url: "redis://%s/0", key_prefix: %s}
state_key_file: %s
defaults:
  renew_before: 50%%
  recreate_before: 1m
  jitter: 0%%
  max_age: 6s
  revoke_after: 3s
  poll: "@every 1s"
  retry: {min: 100ms, max: 1s}
providers:
  - {name: vendor-r, type: fake, url: %s}
  - {name: vendor-c, type: fake, url: %s}
  - {name: vendor-n, type: fake, url: %s}
tokens:
  - name: renewing
    provider: vendor-r
    kind: renewable
    deliver: [{file: {path: %s}}]
  - name: recreating
    provider: vendor-c
    kind: recreate
    deliver: [{file: {path: %s}}]
  - name: forever
    provider: vendor-n
    kind: recreate
    deliver: [{file: {path: %s}}]
`, listen, level, format, rdb.Options().Addr, prefix, key, urls["renewing"], urls["recreating"], urls["forever"],
			filepath.Join(dir, "renewing.token"), filepath.Join(dir, "recreating.token"), filepath.Join(dir, "forever.token"))
	}
	writeFile(t, configPath, config("debug", "auto")) // auto: JSON, as stderr is not a terminal

	logPath := filepath.Join(dir, "tokend.log")
	tokend := start(t, logPath, bin, "run", "--config", configPath)
	tokendURL := "http://" + listen
	waitFor(t, "tokend ready", 20*time.Second, logPath, func() bool {
		return httpStatus(tokendURL+"/readyz") == http.StatusOK
	})

	began := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	phase("tokend ready")

	// promtool check metrics on a scrape of the real binary.
	scrape := get(t, tokendURL+"/metrics")
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(scrape)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}

	// A real Prometheus scraping tokend every second and evaluating the rules every second.
	promAddr := tokendtest.FreeAddr(t)
	rulesPath, err := filepath.Abs(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	promConfig := filepath.Join(dir, "prometheus.yml")
	writeFile(t, promConfig, fmt.Sprintf(`global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: tokend
    static_configs: [{targets: [%q]}]
`, rulesPath, listen))
	promLog := filepath.Join(dir, "prometheus.log")
	start(t, promLog, prom, "--config.file="+promConfig, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	api := &promAPI{t: t, base: "http://" + promAddr, log: promLog}
	waitFor(t, "Prometheus ready", 20*time.Second, promLog, func() bool {
		return httpStatus(api.base+"/-/ready") == http.StatusOK
	})
	waitFor(t, "Prometheus scraping tokend", 20*time.Second, promLog, func() bool {
		r, err := api.query(`up{job="tokend"} == 1`)
		return err == nil && len(r) == 1
	})

	phase("Prometheus scraping")

	// Wait for rotations: every token at generation 2 or more, seen by Prometheus too.
	waitFor(t, "a rotation of every token", 30*time.Second, logPath, func() bool {
		rows, err := tokenRows(tokendURL)
		if err != nil || len(rows.Tokens) != 3 {
			return false
		}
		for _, r := range rows.Tokens {
			if r.Generation < 2 {
				return false
			}
		}
		res, err := api.query(`count(sum by (token) (tokend_rotations_total{operation=~"renew|recreate", result="success"}) >= 1)`)
		return err == nil && len(res) == 1 && res[0].Value == 3
	})

	// Each token's expiry series equals the expiry its vendor holds for the current token. Prometheus lags
	// tokend by up to a scrape, and a rotation may happen in between: poll until they agree.
	var mismatch string
	waitFor(t, "expiry series equal to the vendors' expiries", 15*time.Second, logPath, func() bool {
		mismatch = expiryMismatch(api, fakes)
		return mismatch == ""
	}, &mismatch)

	phase("rotated; expiries agree")

	// Reload with log.level warn and log.format text: from then on, no debug or info line, and text.
	writeFile(t, configPath, config("warn", "text"))
	before := reloadTime(t, tokendURL)
	if err := tokend.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload", 10*time.Second, logPath, func() bool { return reloadTime(t, tokendURL) > before })
	reloadedAt := fileSize(t, logPath)

	// Every dashboard query and every rule expression evaluates; TokendRotationFailing is quiet.
	rules := loadRules(t)
	failingExpr := alertExpr(t, rules, "TokendRotationFailing")
	failedExpr := alertExpr(t, rules, "TokendTokenFailed")
	evaluateAll(t, api, rules, false)
	if r, err := api.query(failingExpr); err != nil || len(r) != 0 {
		t.Fatalf("TokendRotationFailing before any failure = %v, %v; want no series", r, err)
	}

	phase("reloaded; everything evaluated")

	// Drive recreating into failure: its vendor answers 401 to every create.
	post(t, urls["recreating"]+"/control/fail?op=create&status=401&n=1000", http.StatusNoContent)
	post(t, tokendURL+"/api/v1/tokens/recreating/rotate?now=true", http.StatusAccepted)
	for _, c := range []struct{ what, expr string }{
		{"3 consecutive failures", `tokend_token_consecutive_failures{token="recreating"} >= 3`},
		{"state failed", `tokend_token_state{token="recreating", state="failed"} == 1`},
		{"unauthorized recreates", `tokend_rotations_total{token="recreating", operation="recreate", result="unauthorized"} > 0`},
		{"401 answers from vendor-c", `sum(tokend_provider_requests_total{provider="vendor-c", code="401"}) > 0`},
		{"TokendRotationFailing for recreating", failingExpr},
		{"TokendTokenFailed for recreating", failedExpr},
	} {
		var got string
		waitFor(t, c.what, 20*time.Second, logPath, func() bool {
			r, err := api.query(c.expr)
			got = fmt.Sprintf("%v, %v", r, err)
			return err == nil && len(r) >= 1
		}, &got)
	}
	for _, expr := range []string{failingExpr, failedExpr} {
		r, err := api.query(expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r {
			if s.Metric["token"] != "recreating" {
				t.Errorf("%s fires for %v, want only token recreating", expr, s.Metric)
			}
		}
	}
	// Prometheus evaluates the loaded rule itself: the alert is pending (its for: is 10m).
	waitFor(t, "TokendRotationFailing pending in Prometheus", 10*time.Second, promLog, func() bool {
		return api.alertActive("TokendRotationFailing", "recreating")
	})

	phase("failure seen")

	// Now that failure series exist too, evaluate everything again and require the dashboard's data.
	evaluateAll(t, api, rules, true)
	phase("evaluated again with data")

	// Logs: JSON throughout; debug lines before the reload, none below warn after it, and the failures'
	// warnings after it.
	checkLogs(t, logPath, reloadedAt)

	// Stop tokend by PID and check it exits cleanly (Prometheus is stopped by PID when the test ends).
	if err := tokend.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tokend.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("tokend after SIGTERM: %v\n%s", err, tail(logPath))
		}
	case <-time.After(15 * time.Second):
		t.Errorf("tokend did not stop within 15s of SIGTERM")
	}
}

// tools returns the paths of promtool and prometheus, skipping the test when either is missing (failing it
// under CI=true).
func tools(t *testing.T) (promtool, prom string) {
	t.Helper()
	var missing []string
	for _, name := range []string{"promtool", "prometheus"} {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
		}
		if name == "promtool" {
			promtool = p
		} else {
			prom = p
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("%s not on PATH (apt-get install prometheus, or bash scripts/checks/20-prometheus.sh --install-only)", strings.Join(missing, " and "))
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return promtool, prom
}

// start runs a process with its output in logPath, and stops it by PID when the test ends.
func start(t *testing.T, logPath, name string, args ...string) *exec.Cmd {
	t.Helper()
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		log.Close()
	})
	return cmd
}

// waitFor polls cond every 100 ms until it holds, failing the test with the log's tail (and *detail, when
// given) after d.
func waitFor(t *testing.T, what string, d time.Duration, logPath string, cond func() bool, detail ...*string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			extra := ""
			if len(detail) > 0 {
				extra = "\nlast: " + *detail[0]
			}
			t.Fatalf("timed out after %s waiting for %s%s\nlog tail (%s):\n%s", d, what, extra, logPath, tail(logPath))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

var client = &http.Client{Timeout: 5 * time.Second}

func httpStatus(u string) int {
	resp, err := client.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func get(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return b
}

func post(t *testing.T, u string, want int) {
	t.Helper()
	resp, err := client.Post(u, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d %s, want %d", u, resp.StatusCode, b, want)
	}
}

func tokenRows(base string) (daemon.Rows, error) {
	var rows daemon.Rows
	resp, err := client.Get(base + "/api/v1/tokens")
	if err != nil {
		return rows, err
	}
	defer resp.Body.Close()
	return rows, json.NewDecoder(resp.Body).Decode(&rows)
}

// reloadTime reads tokend_config_last_reload_success_timestamp_seconds from tokend's own /metrics.
func reloadTime(t *testing.T, base string) float64 {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(get(t, base+"/metrics")))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "tokend_config_last_reload_success_timestamp_seconds "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatal("no tokend_config_last_reload_success_timestamp_seconds in /metrics")
	return 0
}

// promAPI queries Prometheus' HTTP API.
type promAPI struct {
	t    *testing.T
	base string
	log  string
}

type sample struct {
	Metric map[string]string
	Value  float64
}

func (s sample) String() string { return fmt.Sprintf("%v=%g", s.Metric, s.Value) }

type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// result is the data of a query.
type result struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

func (r apiResponse) result() (result, error) {
	var res result
	err := json.Unmarshal(r.Data, &res)
	return res, err
}

func (p *promAPI) call(path string, params url.Values) (apiResponse, error) {
	var r apiResponse
	var resp *http.Response
	var err error
	if params == nil {
		resp, err = client.Get(p.base + path)
	} else {
		resp, err = client.PostForm(p.base+path, params)
	}
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, fmt.Errorf("%s: %d: %w", path, resp.StatusCode, err)
	}
	if r.Status != "success" {
		return r, fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	return r, nil
}

// query evaluates expr at now and returns its samples (a scalar is one sample without labels).
func (p *promAPI) query(expr string) ([]sample, error) {
	resp, err := p.call("/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return nil, err
	}
	r, err := resp.result()
	if err != nil {
		return nil, err
	}
	switch r.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(r.Result, &vec); err != nil {
			return nil, err
		}
		out := make([]sample, 0, len(vec))
		for _, v := range vec {
			f, err := strconv.ParseFloat(v.Value[1].(string), 64)
			if err != nil {
				return nil, err
			}
			out = append(out, sample{Metric: v.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(r.Result, &v); err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(v[1].(string), 64)
		return []sample{{Value: f}}, err
	}
	return nil, fmt.Errorf("result type %q", r.ResultType)
}

// queryRange evaluates expr over the last 30 s, as a dashboard's graph does, and returns how many series
// it gave.
func (p *promAPI) queryRange(expr string) (int, error) {
	now := time.Now()
	resp, err := p.call("/api/v1/query_range", url.Values{
		"query": {expr},
		"start": {strconv.FormatInt(now.Add(-30*time.Second).Unix(), 10)},
		"end":   {strconv.FormatInt(now.Unix(), 10)},
		"step":  {"1"},
	})
	if err != nil {
		return 0, err
	}
	r, err := resp.result()
	if err != nil {
		return 0, err
	}
	var m []json.RawMessage
	if err := json.Unmarshal(r.Result, &m); err != nil {
		return 0, err
	}
	return len(m), nil
}

// alertActive reports whether Prometheus has alertname pending or firing for token.
func (p *promAPI) alertActive(alertname, token string) bool {
	resp, err := client.Get(p.base + "/api/v1/alerts")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil {
		return false
	}
	for _, a := range r.Data.Alerts {
		if a.Labels["alertname"] == alertname && a.Labels["token"] == token && (a.State == "pending" || a.State == "firing") {
			return true
		}
	}
	return false
}

// expiryMismatch compares Prometheus' tokend_token_expiry_timestamp_seconds of each token with the latest
// expiry among the vendor-side tokens tokend made for it (tokend-<name>-g<generation>), and returns what
// differs ("" when all agree). A fake whose tokens never expire must have no series.
func expiryMismatch(api *promAPI, fakes map[string]*providertest.Fake) string {
	res, err := api.query(`tokend_token_expiry_timestamp_seconds{job="tokend"}`)
	if err != nil {
		return err.Error()
	}
	got := map[string]float64{}
	for _, s := range res {
		got[s.Metric["token"]] = s.Value
	}
	var diffs []string
	for name, f := range fakes {
		var want time.Time
		for _, tk := range f.Tokens() {
			if strings.HasPrefix(tk.Name, "tokend-"+name+"-g") && tk.ExpiresAt.After(want) {
				want = tk.ExpiresAt
			}
		}
		v, ok := got[name]
		switch {
		case want.IsZero() && ok:
			diffs = append(diffs, fmt.Sprintf("%s: series %g, want none (never expires)", name, v))
		case want.IsZero():
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: no series, want %s", name, want))
		case math.Abs(v-float64(want.UnixNano())/1e9) > 1e-3:
			diffs = append(diffs, fmt.Sprintf("%s: series %.3f, vendor %.3f", name, v, float64(want.UnixNano())/1e9))
		}
		delete(got, name)
	}
	for name := range got {
		diffs = append(diffs, "series for unknown token "+name)
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "; ")
}

// Dashboard queries that may rightly be empty in this test, by what they contain.
var mayBeEmpty = []string{
	`code="429"`,        // the fakes never rate-limit
	`code=~"5..|error"`, // nor fail with 5xx or drop connections
	`ALERTS{`,           // no alert fires within the test (their for: is minutes)
	`previous_revoke_`,  // an old token waits for revocation only 3 s after each rotation
}

// evaluateAll evaluates every dashboard query (instant, and over a range for graphs) and every rule
// expression, failing on any error. With requireData, every dashboard query must also return data unless
// it is one of mayBeEmpty, and every tokend metric the files name must exist in Prometheus.
func evaluateAll(t *testing.T, api *promAPI, rules []rule, requireData bool) {
	t.Helper()
	d := loadDashboard(t)
	var exprs []string
	for _, p := range queryPanels(d) {
		for _, tg := range p.Targets {
			expr := substitute(tg.Expr)
			exprs = append(exprs, expr)
			res, err := api.query(expr)
			if err != nil {
				t.Errorf("panel %q %s: %s: %v", p.Title, tg.RefID, expr, err)
				continue
			}
			if !tg.Instant {
				if _, err := api.queryRange(expr); err != nil {
					t.Errorf("panel %q %s over a range: %s: %v", p.Title, tg.RefID, expr, err)
				}
			}
			if requireData && len(res) == 0 && !slices.ContainsFunc(mayBeEmpty, func(s string) bool { return strings.Contains(expr, s) }) {
				t.Errorf("panel %q %s returns no data: %s", p.Title, tg.RefID, expr)
			}
		}
	}
	// Template variables: label_values(selector, label) must find values.
	lv := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := lv.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: definition %q is not label_values(selector, label)", v.Name, v.Definition)
			continue
		}
		expr := fmt.Sprintf("count by (%s) (%s)", m[2], substitute(m[1]))
		if res, err := api.query(expr); err != nil || len(res) == 0 {
			t.Errorf("variable %s: %s = %v, %v; want values", v.Name, expr, res, err)
		}
	}
	for _, r := range rules {
		exprs = append(exprs, r.Expr)
		if _, err := api.query(r.Expr); err != nil {
			t.Errorf("rule %s%s: %v", r.Alert, r.Record, err)
		}
	}
	if !requireData {
		return
	}
	// A metric name misspelled in a query evaluates fine to nothing: every tokend metric and recording rule
	// the files name must exist in Prometheus.
	names := map[string]bool{}
	r, err := api.call("/api/v1/label/__name__/values", nil)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	if err := json.Unmarshal(r.Data, &all); err != nil {
		t.Fatalf("label values: %v", err)
	}
	for _, n := range all {
		names[n] = true
	}
	metric := regexp.MustCompile(`\b(?:tokend[_:]|process_)[a-z0-9_:]+`)
	for _, e := range exprs {
		for _, n := range metric.FindAllString(e, -1) {
			if !names[n] {
				t.Errorf("%s is named in a query but Prometheus has no such series: %s", n, e)
			}
		}
	}
}

// substitute replaces the dashboard's variables as Grafana would with "All" selected and a 1 s scrape.
func substitute(expr string) string {
	return strings.NewReplacer(`$__rate_interval`, "1m", `$job`, "tokend", `$provider`, ".*").Replace(expr)
}

func alertExpr(t *testing.T, rules []rule, name string) string {
	t.Helper()
	for _, r := range rules {
		if r.Alert == name {
			return r.Expr
		}
	}
	t.Fatalf("no alert %s", name)
	return ""
}

// checkLogs checks tokend's log around the reload that changed log.level from debug to warn and log.format
// from auto (JSON off a terminal) to text: before it, JSON records including debug and info ones; after it,
// only warnings and errors (the failures' warnings among them), switching to text once and for good.
func checkLogs(t *testing.T, path string, reloadedAt int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	textLevel := regexp.MustCompile(`^time=\S+ level=(\w+) msg=`)
	type counts struct{ json, text map[string]int }
	scan := func(part []byte) (counts, []string) {
		c := counts{json: map[string]int{}, text: map[string]int{}}
		var formats []string
		for _, line := range bytes.Split(bytes.TrimSpace(part), []byte("\n")) {
			var rec struct {
				Level string `json:"level"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Level != "" {
				c.json[rec.Level]++
				formats = append(formats, "json")
			} else if m := textLevel.FindSubmatch(line); m != nil {
				c.text[string(m[1])]++
				formats = append(formats, "text")
			} else {
				t.Errorf("log line is neither a JSON nor a text record: %q", line)
			}
		}
		return c, slices.Compact(formats)
	}
	before, bf := scan(b[:reloadedAt])
	after, af := scan(b[reloadedAt:])
	if !slices.Equal(bf, []string{"json"}) || before.json["DEBUG"] == 0 || before.json["INFO"] == 0 {
		t.Errorf("before the reload (level debug, format auto): formats %v, levels %v; want JSON with DEBUG and INFO", bf, before.json)
	}
	if len(af) == 0 || af[len(af)-1] != "text" || len(af) > 2 || (len(af) == 2 && af[0] != "json") {
		t.Errorf("after the reload to format text: formats %v, want text (after at most a few JSON lines)", af)
	}
	for _, c := range []map[string]int{after.json, after.text} {
		if c["DEBUG"]+c["INFO"] != 0 {
			t.Errorf("after the reload to level warn: levels %v (JSON) and %v (text), want WARN and ERROR only", after.json, after.text)
		}
	}
	if after.text["WARN"] == 0 {
		t.Errorf("after the reload: no WARN line in text (levels %v); the failures' warnings are missing", after.text)
	}
}
