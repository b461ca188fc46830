package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers/astra/astratest"
)

func writeConfig(t *testing.T, path, redisAddr, astraURL, dir, maxAge string) {
	t.Helper()
	cfg := fmt.Sprintf(`listen: 127.0.0.1:19464
instance_id: test
redis: {url: "redis://%s/0"}
state_key_file: %s/key
providers:
  - name: astra
    type: astra
    url: %s
    account_id: %s
    user_id: %s
tokens:
  - name: astra-backup
    provider: astra
    kind: api_token
    bootstrap_file: %s/bootstrap
    max_age: %s
    deliver:
      - file: {path: %s/out.token}
`, redisAddr, dir, astraURL, astratest.DefaultAccountID, astratest.DefaultUserID, dir, maxAge, dir)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReloadSwapsOnlyAValidConfig(t *testing.T) {
	m := miniredis.RunT(t)
	fake := astratest.New(astratest.Options{})
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "key"), []byte("0123456789abcdef0123456789abcdef"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "bootstrap"), []byte(fake.IssueBootstrap()), 0o600)
	path := filepath.Join(dir, "tokend.yaml")
	writeConfig(t, path, m.Addr(), fake.URL(), dir, "7d")
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	reg := prometheus.NewRegistry()
	d, err := New(cfg, Options{ConfigPath: path, Registry: reg, Notify: func(s string) { notes = append(notes, s) }})
	if err != nil {
		t.Fatal(err)
	}
	maxAge := func() time.Duration { return d.Engine().Tokens()["astra-backup"].Policy.MaxAge }
	if maxAge() != 7*24*time.Hour {
		t.Fatalf("max_age = %v, want 7d", maxAge())
	}

	writeConfig(t, path, m.Addr(), fake.URL(), dir, "3d")
	if err := d.Reload(); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	if maxAge() != 3*24*time.Hour {
		t.Fatalf("after reload max_age = %v, want 3d", maxAge())
	}
	if v := testutil.ToFloat64(gauge(t, reg, "tokend_config_last_reload_successful")); v != 1 {
		t.Fatalf("tokend_config_last_reload_successful = %v, want 1", v)
	}

	if err := os.WriteFile(path, []byte("listen: [\nnot yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err == nil {
		t.Fatalf("Reload() of a broken config = nil, want an error")
	}
	if maxAge() != 3*24*time.Hour {
		t.Fatalf("a failed reload changed the policy: max_age = %v", maxAge())
	}
	if v := testutil.ToFloat64(gauge(t, reg, "tokend_config_last_reload_successful")); v != 0 {
		t.Fatalf("tokend_config_last_reload_successful = %v, want 0 after a failed reload", v)
	}
	last := notes[len(notes)-1]
	if !strings.Contains(last, "READY=1") || !strings.Contains(last, "reload failed") {
		t.Fatalf("last notification = %q, want READY=1 with a STATUS saying the reload failed", last)
	}
	if !strings.HasPrefix(notes[len(notes)-2], "RELOADING=1") {
		t.Fatalf("notification before = %q, want RELOADING=1", notes[len(notes)-2])
	}
}

// gauge returns the collector of one metric family from reg, as a Collector testutil can read.
func gauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name && len(mf.GetMetric()) > 0 {
				ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, "", nil, nil), prometheus.GaugeValue, mf.GetMetric()[0].GetGauge().GetValue())
			}
		}
	})
}

type collectorFunc func(ch chan<- prometheus.Metric)

func (f collectorFunc) Describe(chan<- *prometheus.Desc)    {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

func TestSameRedisComparesValuesNotPointers(t *testing.T) {
	load := func(redis string) *config.Config {
		t.Helper()
		c, err := config.Parse([]byte("state_key_file: /run/key\nredis:\n"+redis), "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"same cluster", "  cluster: {addrs: [\"127.0.0.1:7000\"]}\n", "  cluster: {addrs: [\"127.0.0.1:7000\"]}\n", true},
		{"same url with tls", "  url: rediss://127.0.0.1:6380/0\n  tls: {ca_file: /etc/ca.pem}\n", "  url: rediss://127.0.0.1:6380/0\n  tls: {ca_file: /etc/ca.pem}\n", true},
		{"same sentinel", "  sentinel: {master: m, addrs: [\"127.0.0.1:26379\"]}\n", "  sentinel: {master: m, addrs: [\"127.0.0.1:26379\"]}\n", true},
		{"cluster changed", "  cluster: {addrs: [\"127.0.0.1:7000\"]}\n", "  cluster: {addrs: [\"127.0.0.1:7001\"]}\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameRedis(load(tt.a), load(tt.b)); got != tt.want {
				t.Errorf("sameRedis() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPerTokenMetricsFollowTheConfig(t *testing.T) {
	m := miniredis.RunT(t)
	fake := astratest.New(astratest.Options{})
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "key"), []byte("0123456789abcdef0123456789abcdef"), 0o600)
	path := filepath.Join(dir, "tokend.yaml")
	write := func(perToken string) {
		writeConfig(t, path, m.Addr(), fake.URL(), dir, "7d")
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := fmt.Fprintf(f, "metrics: {per_token: %s}\n", perToken); err != nil {
			t.Fatal(err)
		}
	}
	write("false")
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	d, err := New(cfg, Options{ConfigPath: path, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(gauge(t, reg, "tokend_metrics_per_token")); v != 0 {
		t.Fatalf("tokend_metrics_per_token = %v with per_token: false, want 0", v)
	}
	write("auto") // one token: on
	if err := d.Reload(); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	if v := testutil.ToFloat64(gauge(t, reg, "tokend_metrics_per_token")); v != 1 {
		t.Fatalf("tokend_metrics_per_token = %v after a reload to per_token: auto with one token, want 1", v)
	}
}
