package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// acceptAll is a vendor table whose checks accept everything.
var acceptAll = map[string]VendorCheck{
	"vcd":        func(Provider, []Token) []error { return nil },
	"astra":      func(Provider, []Token) []error { return nil },
	"commvault":  func(Provider, []Token) []error { return nil },
	"huawei-idc": func(Provider, []Token) []error { return nil },
}

// lines splits a joined error into its messages.
func lines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestParseUnknownKeys(t *testing.T) {
	_, err := Load("testdata/unknown.yaml")
	if err == nil {
		t.Fatal("Load(unknown.yaml) = nil error, want unknown keys")
	}
	want := []string{
		"lisen: unknown key (line 2)",
		"log.colour: unknown key (line 5)",
		"redis.sentinel.adrs: unknown key (line 8)",
		"defaults.retry.maks: unknown key (line 12)",
		"providers[0] (vcd).passwd_file: unknown key (line 17)",
		"providers[0] (vcd).rate_limit.concurency: unknown key (line 18)",
		"tokens[1] (huawei-scim).deliver[0].file.pth: unknown key (line 30)",
		"tokens[1] (huawei-scim).deliver[1].exec.timout: unknown key (line 31)",
		"tokens[2].nmae: unknown key (line 33)",
	}
	if got := lines(err); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(unknown.yaml) errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseBadValues(t *testing.T) {
	_, err := Load("testdata/badvalues.yaml")
	// Each entry: the start of a message and the line it must end with.
	want := []struct{ prefix, line string }{
		{`listen: must be a string, not a list`, "line 1"},
		{`log: must be a mapping, not "info"`, "line 2"},
		{`defaults.renew_before: invalid window "33"`, "line 5"},
		{`defaults.recreate_before: invalid duration "3 days"`, "line 6"},
		{`defaults.jitter: invalid share "10"`, "line 7"},
		{`defaults.max_age: invalid duration "120%"`, "line 8"},
		{`defaults.revoke_after: negative duration "-5m"`, "line 9"},
		{`defaults.retry.max: invalid duration "forever"`, "line 10"},
		{`providers[0] (p).rate_limit.rps: must be a number, not "fast"`, "line 15"},
		{`providers[0] (p).rate_limit.burst: must be an integer, not "1.5"`, "line 15"},
		{`providers[0] (p).timeout: must be a single value, not a mapping`, "line 16"},
		{`tokens[0] (t).jitter: invalid share "200%"`, "line 21"},
		{`tokens[0] (t).deliver: must be a list, not a mapping`, "line 22"},
		{`tokens[0] (t).name: duplicate key (first set on line 18)`, "line 23"},
	}
	got := lines(err)
	if len(got) != len(want) {
		t.Fatalf("Load(badvalues.yaml) gave %d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w.prefix) || !strings.HasSuffix(got[i], "("+w.line+")") {
			t.Errorf("error %d = %q, want %q ... (%s)", i, got[i], w.prefix, w.line)
		}
	}
}

func TestParseDocumentShape(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "config is empty"},
		{"comments only", "# nothing\n\n", "config is empty"},
		{"null", "~\n", "config is empty"},
		{"scalar", "hello\n", `config must be a mapping of keys at the top level, not "hello" (line 1)`},
		{"list", "- a\n- b\n", "config must be a mapping of keys at the top level, not a list (line 1)"},
		{"two documents", "listen: :1\n---\nlisten: :2\n", "config holds more than one YAML document (line 2)"},
		{"syntax", "listen: [\n", "parsing YAML: yaml: line 1:"},
		{"tab indent", "log:\n\tlevel: info\n", "parsing YAML: yaml: line 2:"},
		{"non-scalar key", "? [a]\n: b\n", "(top level): keys must be plain names, not a list (line 1)"},
		{"self merge", "log: &l\n  <<: *l\n", "log: merge key includes the mapping itself (line 1)"},
		{"alias to self", "tokens: &t [*t]\n", `tokens[0]: must be a mapping, not a list (line 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.data), "x.yaml")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v, %v; want error starting %q", tt.data, c, err, tt.want)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte("state_key_file: /run/key\n"), "/etc/tokend/tokend.yaml")
	if err != nil {
		t.Fatalf("Parse() error: %v", err)
	}
	host, _ := os.Hostname()
	want := Config{
		Listen:       "127.0.0.1:9464",
		InstanceID:   host,
		Log:          Log{Level: "info", Format: "auto"},
		Metrics:      Metrics{PerToken: "auto"},
		Redis:        Redis{URL: "redis://127.0.0.1:6379/0", KeyPrefix: "tokend"},
		StateKeyFile: "/run/key",
		Path:         "/etc/tokend/tokend.yaml",
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("Parse() = %+v, want %+v", *c, want)
	}

	// A sentinel or cluster config gets no default URL; explicit values are kept.
	c, err = Parse([]byte("instance_id: me\nlisten: :1\nredis: {cluster: {addrs: [\"a:1\"]}, key_prefix: k}\n"), "")
	if err != nil {
		t.Fatalf("Parse() error: %v", err)
	}
	if c.Redis.URL != "" || c.Redis.KeyPrefix != "k" || c.InstanceID != "me" || c.Listen != ":1" {
		t.Errorf("Parse() = %+v, want cluster without url, key_prefix k, instance_id me, listen :1", *c)
	}
}

func TestParseFull(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatalf("Load(full.yaml) error: %v", err)
	}
	if err := c.Validate(acceptAll); err != nil {
		t.Fatalf("Validate(full.yaml):\n%v", err)
	}
	d := func(s string) *Duration { v, _ := ParseDuration(s); x := Duration(v); return &x }
	tok := c.Tokens[0]
	if tok.Index != 0 || c.Tokens[1].Index != 1 || c.Providers[1].Index != 1 {
		t.Errorf("indexes = %d %d %d, want 0 1 1", tok.Index, c.Tokens[1].Index, c.Providers[1].Index)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "[::1]:9464"},
		{"metrics.per_token (boolean in YAML)", c.Metrics.PerToken, "true"},
		{"sentinel", *c.Redis.Sentinel, Sentinel{Master: "mymaster", Addrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"}, PasswordFile: "env:SENTINEL_PASSWORD", DB: 2}},
		{"tls", *c.Redis.TLS, TLS{CAFile: "/etc/tokend/ca/redis.pem"}},
		{"defaults.recreate_before", *c.Defaults.RecreateBefore, *d("36h")},
		{"defaults.renew_before", *c.Defaults.RenewBefore, Window{IsShare: true, Share: 0.40}},
		{"rate_limit", *c.Providers[0].RateLimit, RateLimit{RPS: 0.5, Burst: 1, Concurrency: 1}},
		{"api_version (number in YAML)", c.Providers[0].APIVersion, "38.1"},
		{"provider renew_before", *c.Providers[0].RenewBefore, Window{Dur: 2 * time.Hour}},
		{"token jitter", *tok.Jitter, Share(0)},
		{"token retry", *tok.Retry, Retry{Min: *d("1s"), Max: *d("2s")}},
		{"renewable_for", *tok.RenewableFor, *d("2160h")},
		{"file sink", *tok.Deliver[0].File, FileSink{Path: "/run/t1.env", Mode: "0640", Owner: "0", Group: "backup", Format: "env", Var: "T1_TOKEN"}},
		{"redis sink", *tok.Deliver[1].Redis, RedisSink{Key: "secrets:t1", URL: "unix:///run/redis.sock", PasswordFile: "env:SINK_PW", Format: "json"}},
		{"exec sink", *tok.Deliver[2].Exec, ExecSink{Command: []string{"/usr/bin/logger", "-t", "tokend"}, Timeout: d("5s")}},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
}

func TestParseMerge(t *testing.T) {
	c, err := Load("testdata/merge.yaml")
	if err != nil {
		t.Fatalf("Load(merge.yaml) error: %v", err)
	}
	if err := c.Validate(acceptAll); err != nil {
		t.Fatalf("Validate(merge.yaml):\n%v", err)
	}
	b := c.Providers[1]
	if b.Name != "vcd-b" || b.Type != "vcd" || b.URL != "https://vcd-b.example.com" || b.RenewBefore == nil || b.RenewBefore.Dur != time.Hour {
		t.Errorf("merged provider = %+v, want vcd-b, type vcd, its own url, renew_before 1h from the anchor", b)
	}
	want := FileSink{Path: "/run/b.token", Mode: "0640", Owner: "nobody", Format: "raw"}
	if got := *c.Tokens[1].Deliver[0].File; got != want {
		t.Errorf("merged sink = %+v, want %+v", got, want)
	}
	if got := *c.Tokens[0].Deliver[0].File; got.Path != "/run/a.json" || got.Format != "json" {
		t.Errorf("anchored sink = %+v, changed by the merge", got)
	}
}

// TestParseForms covers every written form of durations, shares and windows, through YAML.
func TestParseForms(t *testing.T) {
	tests := []struct {
		key, value string
		want       any // Duration, Share or Window; nil when the value must be refused
	}{
		{"max_age", "90s", Duration(90 * time.Second)},
		{"max_age", "15m", Duration(15 * time.Minute)},
		{"max_age", "6h", Duration(6 * time.Hour)},
		{"max_age", "30d", Duration(30 * 24 * time.Hour)},
		{"max_age", "1d12h", Duration(36 * time.Hour)},
		{"max_age", "1h30m", Duration(90 * time.Minute)},
		{"max_age", "0s", Duration(0)},
		{"max_age", "1.5h", Duration(90 * time.Minute)},
		{"max_age", `"7d"`, Duration(7 * 24 * time.Hour)},
		{"max_age", "106751d", Duration(106751 * 24 * time.Hour)},
		{"max_age", "106752d", nil},
		{"max_age", "300000d", nil},
		{"max_age", "106751d24h", nil},
		{"renew_before", "300000d", nil},
		{"max_age", "30", nil},
		{"max_age", "30 d", nil},
		{"max_age", "1.5d", nil},
		{"max_age", "-1h", nil},
		{"max_age", "d", nil},
		{"max_age", "33%", nil},
		{"max_age", "[1h]", nil},
		{"jitter", "10%", Share(0.10)},
		{"jitter", "0%", Share(0)},
		{"jitter", "12.5%", Share(0.125)},
		{"jitter", "100%", Share(1)},
		{"jitter", "0.1", nil},
		{"jitter", "101%", nil},
		{"jitter", "-1%", nil},
		{"jitter", `"%"`, nil},
		{"jitter", "10h", nil},
		{"renew_before", "33%", Window{IsShare: true, Share: 0.33}},
		{"renew_before", "6h", Window{Dur: 6 * time.Hour}},
		{"renew_before", "30d", Window{Dur: 30 * 24 * time.Hour}},
		{"renew_before", "5m", Window{Dur: 5 * time.Minute}},
		{"renew_before", "33", nil},
		{"renew_before", "soon", nil},
		{"renew_before", "150%", nil},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c, err := Parse([]byte("defaults:\n  "+tt.key+": "+tt.value+"\n"), "")
			if tt.want == nil {
				if err == nil || !strings.HasPrefix(err.Error(), "defaults."+tt.key+": ") || !strings.HasSuffix(err.Error(), "(line 2)") {
					t.Errorf("Parse(%s: %s) error = %v, want defaults.%s: ... (line 2)", tt.key, tt.value, err, tt.key)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%s: %s) error: %v", tt.key, tt.value, err)
			}
			var got any
			switch tt.key {
			case "max_age":
				got = *c.Defaults.MaxAge
			case "jitter":
				got = *c.Defaults.Jitter
			case "renew_before":
				got = *c.Defaults.RenewBefore
			}
			if got != tt.want {
				t.Errorf("Parse(%s: %s) = %v, want %v", tt.key, tt.value, got, tt.want)
			}
		})
	}
}

func TestParseNullKeepsUnset(t *testing.T) {
	c, err := Parse([]byte("log:\nredis:\ndefaults:\n  renew_before:\n  retry: ~\nproviders:\ntokens: []\n"), "")
	if err != nil {
		t.Fatalf("Parse() error: %v", err)
	}
	if c.Defaults.RenewBefore != nil || c.Defaults.Retry != nil || c.Log.Level != "info" || c.Redis.URL == "" {
		t.Errorf("Parse() with empty values = %+v, want them unset and defaults filled", *c)
	}
}

func TestParseTooManyProblems(t *testing.T) {
	var b strings.Builder
	for i := range 300 {
		b.WriteString("k")
		b.WriteString(strings.Repeat("x", i+1))
		b.WriteString(": 1\n")
	}
	_, err := Parse([]byte(b.String()), "")
	got := lines(err)
	if len(got) != maxDecodeErrors+1 || !strings.HasPrefix(got[maxDecodeErrors], "too many problems") {
		t.Errorf("Parse(300 unknown keys) gave %d lines, last %q; want %d and a 'too many problems' line", len(got), got[len(got)-1], maxDecodeErrors+1)
	}
}

func TestParseAliasExpansionBounded(t *testing.T) {
	// Each level merges the previous one ten times: 10^6 mappings if expanded naively.
	var b strings.Builder
	b.WriteString("tokens:\n- &a0 {name: a}\n")
	for i := 1; i <= 6; i++ {
		b.WriteString("- &a" + strconv.Itoa(i) + " {<<: [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + strconv.Itoa(i-1))
		}
		b.WriteString("]}\n")
	}
	start := time.Now()
	_, err := Parse([]byte(b.String()), "")
	if err == nil || !strings.Contains(err.Error(), "config too complex") {
		t.Errorf("Parse(alias bomb) error = %v, want 'config too complex'", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Parse(alias bomb) took %v", d)
	}
}

// TestParseManyTokens checks that the alias budget does not count the nodes the file writes itself: a
// config of 30,000 tokens (about 450,000 nodes) parses. Before, the budget ran out at about 22,000 tokens.
func TestParseManyTokens(t *testing.T) {
	const n = 30_000
	c, err := Parse(bigConfig(n), "")
	if err != nil {
		t.Fatalf("Parse() of %d tokens: %.300v", n, err)
	}
	if len(c.Tokens) != n || c.Tokens[n-1].Name != fmt.Sprintf("token-%06d", n-1) {
		t.Fatalf("Parse() gave %d tokens, the last %q", len(c.Tokens), c.Tokens[len(c.Tokens)-1].Name)
	}
}

// moduleRoot finds the directory holding go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func loadAndValidate(t *testing.T, path string) *Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	if err := c.Validate(acceptAll); err != nil {
		t.Fatalf("Validate(%s):\n%v", path, err)
	}
	return c
}

func TestExampleConfig(t *testing.T) {
	c := loadAndValidate(t, filepath.Join(moduleRoot(t), "configs", "tokend.example.yaml"))
	if len(c.Providers) != 4 || len(c.Tokens) != 6 {
		t.Errorf("example has %d providers and %d tokens, want 4 and 6", len(c.Providers), len(c.Tokens))
	}
	r := c.Resolve(c.Tokens[0]) // vcd-automation: renew_before 5m on the token, the rest from defaults
	if r.RenewBefore != (Window{Dur: 5 * time.Minute}) || r.Poll != "@every 10m" || r.RetryMax != 30*time.Minute {
		t.Errorf("Resolve(vcd-automation) = %+v", r)
	}
}

func TestSpecExampleConfig(t *testing.T) {
	spec := filepath.Join(moduleRoot(t), "..", "shared", "spec", "tokend.example.yaml")
	if _, err := os.Stat(spec); err != nil {
		t.Skipf("spec example not present: %v", err)
	}
	loadAndValidate(t, spec)
}

// TestExampleCoversSpec checks that configs/tokend.example.yaml sets every key of the spec's example to
// the same value (it may add keys).
func TestExampleCoversSpec(t *testing.T) {
	root := moduleRoot(t)
	spec := filepath.Join(root, "..", "shared", "spec", "tokend.example.yaml")
	if _, err := os.Stat(spec); err != nil {
		t.Skipf("spec example not present: %v", err)
	}
	want, got := flatten(t, spec), flatten(t, filepath.Join(root, "configs", "tokend.example.yaml"))
	if len(want) < 50 {
		t.Fatalf("spec example flattened to only %d keys", len(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("example lacks %s (spec: %q)", k, v)
		} else if g != v {
			t.Errorf("example %s = %q, spec says %q", k, g, v)
		}
	}
}

// flatten maps every scalar of a YAML file to its key path; list items are named by their name key.
func flatten(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(n *yaml.Node, p string)
	walk = func(n *yaml.Node, p string) {
		switch n.Kind {
		case yaml.DocumentNode:
			walk(n.Content[0], p)
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], joinKey(p, n.Content[i].Value))
			}
		case yaml.SequenceNode:
			for i, e := range n.Content {
				label := mappingName(e)
				if label == "" {
					label = "#" + strconv.Itoa(i)
				}
				walk(e, p+"["+label+"]")
			}
		default:
			out[p] = n.Value
		}
	}
	walk(&doc, "")
	return out
}

func TestParseScalarsIntoStrings(t *testing.T) {
	// YAML reads 0640 as a number and 39.0 as a float; string keys take the text as written.
	c, err := Parse([]byte(`
providers: [{name: p, api_version: 39.0}]
tokens:
  - name: t
    deliver: [{file: {path: /run/t, mode: 0640}}, {file: {path: /run/u, mode: 0o600}}]
`), "")
	if err != nil {
		t.Fatalf("Parse() error: %v", err)
	}
	if got := c.Providers[0].APIVersion; got != "39.0" {
		t.Errorf("api_version = %q, want 39.0", got)
	}
	for i, want := range []fs.FileMode{0o640, 0o600} {
		if m, err := c.Tokens[0].Deliver[i].File.FileMode(); m != want || err != nil {
			t.Errorf("deliver[%d] mode = %v, %v; want %v", i, m, err, want)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.HasPrefix(err.Error(), "reading config: ") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want reading config: ... wrapping fs.ErrNotExist", err)
	}
}
