package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestValidateTenMistakes(t *testing.T) {
	c, err := Load("testdata/mistakes.yaml")
	if err != nil {
		t.Fatalf("Load(mistakes.yaml) error: %v", err)
	}
	got := lines(c.Validate(acceptAll))
	wantPrefixes := []string{
		`listen: "localhost" is not host:port`,
		`log.level: "verbose" is not one of debug, info, warn, error`,
		`redis.url: scheme "http" is not one of redis, rediss, unix`,
		`defaults.jitter: must be from 0% to 50%, not 60%`,
		`defaults.poll: `,
		`providers[0] (vcd-prod).url: plain http:// is refused except to loopback hosts`,
		`providers[1] (Astra).name: "Astra" must match [a-z0-9-]+`,
		`tokens[0] (a).provider: no provider is named "nope" (configured: vcd-prod, Astra)`,
		`tokens[1] (b).deliver[0].file.path: must be absolute`,
		`tokens[2] (c).deliver[0].exec.command[0]: must be an absolute path`,
	}
	if len(got) != len(wantPrefixes) {
		t.Fatalf("Validate(mistakes.yaml) gave %d problems, want %d:\n%s", len(got), len(wantPrefixes), strings.Join(got, "\n"))
	}
	for i, w := range wantPrefixes {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("problem %d = %q, want it to start %q", i, got[i], w)
		}
	}
}

// base is a valid config that each case of TestValidate breaks in one place.
func base(t *testing.T) *Config {
	t.Helper()
	c, err := Parse([]byte(`
state_key_file: /run/key
providers:
  - name: vcd
    type: vcd
    url: https://vcd.example.com
  - name: astra
    type: astra
    url: https://astra.example.com
tokens:
  - name: a
    provider: vcd
    kind: api_token
    deliver:
      - file: {path: /run/a}
  - name: b
    provider: astra
    kind: api_token
    deliver:
      - exec: {command: [/bin/true]}
`), "")
	if err != nil {
		t.Fatalf("Parse(base) error: %v", err)
	}
	if err := c.Validate(acceptAll); err != nil {
		t.Fatalf("Validate(base) = %v, want nil", err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

func dur(s string) *Duration {
	d, err := ParseDuration(s)
	if err != nil {
		panic(err)
	}
	x := Duration(d)
	return &x
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string // the single problem's start; "" when the change is valid
	}{
		{"listen all interfaces", func(c *Config) { c.Listen = ":9464" }, ""},
		{"listen ipv6", func(c *Config) { c.Listen = "[::1]:9464" }, ""},
		{"listen no port", func(c *Config) { c.Listen = "127.0.0.1" }, "listen: "},
		{"listen port 0", func(c *Config) { c.Listen = "127.0.0.1:0" }, "listen: "},
		{"listen port name", func(c *Config) { c.Listen = "127.0.0.1:http" }, "listen: "},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, `log.format: "xml" is not one of auto, text, json`},
		{"metrics per_token", func(c *Config) { c.Metrics.PerToken = "yes" }, `metrics.per_token: "yes" is not one of auto, true, false`},
		{"web config relative", func(c *Config) { c.WebConfigFile = "web.yaml" }, "web_config_file: must be an absolute path"},
		{"web config absolute", func(c *Config) { c.WebConfigFile = "/etc/tokend/web.yaml" }, ""},

		{"redis none", func(c *Config) { c.Redis.URL = "" }, "redis: set one of url, sentinel, cluster"},
		{"redis two", func(c *Config) { c.Redis.Cluster = &Cluster{Addrs: []string{"a:1"}} }, "redis: sets url and cluster; set exactly one"},
		{"redis rediss", func(c *Config) { c.Redis.URL = "rediss://redis.example.com:6380/1" }, ""},
		{"redis unix", func(c *Config) { c.Redis.URL = "unix:///run/redis/redis.sock" }, ""},
		{"redis unix relative", func(c *Config) { c.Redis.URL = "unix:redis.sock" }, "redis.url: must name an absolute socket path"},
		{"redis password in url", func(c *Config) { c.Redis.URL = "redis://:hunter2@127.0.0.1:6379" }, "redis.url: must not hold a password; use password_file"},
		{"redis no host", func(c *Config) { c.Redis.URL = "redis:///0" }, "redis.url: must name a host"},
		{"sentinel ok", func(c *Config) {
			c.Redis.URL, c.Redis.Sentinel = "", &Sentinel{Master: "m", Addrs: []string{"10.0.0.1:26379"}}
		}, ""},
		{"sentinel no master", func(c *Config) {
			c.Redis.URL, c.Redis.Sentinel = "", &Sentinel{Addrs: []string{"10.0.0.1:26379"}}
		}, "redis.sentinel.master: required"},
		{"sentinel no addrs", func(c *Config) {
			c.Redis.URL, c.Redis.Sentinel = "", &Sentinel{Master: "m"}
		}, "redis.sentinel.addrs: required"},
		{"sentinel bad addr", func(c *Config) {
			c.Redis.URL, c.Redis.Sentinel = "", &Sentinel{Master: "m", Addrs: []string{"10.0.0.1:26379", "10.0.0.2"}}
		}, "redis.sentinel.addrs[1]: "},
		{"cluster no addrs", func(c *Config) { c.Redis.URL, c.Redis.Cluster = "", &Cluster{} }, "redis.cluster.addrs: required"},
		{"key prefix empty", func(c *Config) { c.Redis.KeyPrefix = "" }, "redis.key_prefix: must not be empty"},
		{"key prefix space", func(c *Config) { c.Redis.KeyPrefix = "tok end" }, "redis.key_prefix: "},
		{"key prefix brace", func(c *Config) { c.Redis.KeyPrefix = "{tokend}" }, "redis.key_prefix: "},
		{"redis password relative", func(c *Config) { c.Redis.PasswordFile = "pw" }, "redis.password_file: must be an absolute path or env:NAME"},
		{"redis tls ca relative", func(c *Config) { c.Redis.TLS = &TLS{CAFile: "ca.pem"} }, "redis.tls.ca_file: must be an absolute path"},

		{"state key missing", func(c *Config) { c.StateKeyFile = "" }, "state_key_file: required"},
		{"state key env", func(c *Config) { c.StateKeyFile = "env:TOKEND_KEY" }, ""},
		{"state key bad env", func(c *Config) { c.StateKeyFile = "env:1KEY" }, "state_key_file: env: must be followed by a valid environment variable name"},
		{"state key empty env", func(c *Config) { c.StateKeyFile = "env:" }, "state_key_file: env: must be followed"},

		{"renew_before 0%", func(c *Config) { c.Defaults.RenewBefore = &Window{IsShare: true} }, "defaults.renew_before: a share must be above 0% and below 100%, not 0%"},
		{"renew_before 100%", func(c *Config) { c.Defaults.RenewBefore = &Window{IsShare: true, Share: 1} }, "defaults.renew_before: a share must be above 0%"},
		{"renew_before 0s", func(c *Config) { c.Defaults.RenewBefore = &Window{} }, "defaults.renew_before: must be longer than 0"},
		{"renew_before 99%", func(c *Config) { c.Defaults.RenewBefore = &Window{IsShare: true, Share: 0.99} }, ""},
		{"jitter 50%", func(c *Config) { c.Defaults.Jitter = ptr(Share(0.5)) }, ""},
		{"jitter 51% on token", func(c *Config) { c.Tokens[1].Jitter = ptr(Share(0.51)) }, "tokens[1] (b).jitter: must be from 0% to 50%"},
		{"max_age 0", func(c *Config) { c.Providers[1].MaxAge = dur("0s") }, "providers[1] (astra).max_age: must be longer than 0"},
		{"recreate_before 0", func(c *Config) { c.Defaults.RecreateBefore = dur("0s") }, ""},
		{"recreate_before negative", func(c *Config) { c.Defaults.RecreateBefore = ptr(Duration(-1)) }, "defaults.recreate_before: must not be negative"},
		{"revoke_after negative", func(c *Config) { c.Tokens[0].RevokeAfter = ptr(Duration(-1)) }, "tokens[0] (a).revoke_after: must not be negative"},
		{"poll cron", func(c *Config) { c.Defaults.Poll = ptr("*/10 * * * *") }, ""},
		{"poll descriptor", func(c *Config) { c.Defaults.Poll = ptr("@daily") }, ""},
		{"poll bad", func(c *Config) { c.Defaults.Poll = ptr("@every ten") }, "defaults.poll: "},
		{"poll six fields", func(c *Config) { c.Defaults.Poll = ptr("0 */10 * * * *") }, "defaults.poll: "},
		{"poll TZ without spec", func(c *Config) { c.Providers[0].Poll = ptr("TZ=UTC") }, "providers[0] (vcd).poll: "},
		{"poll TZ", func(c *Config) { c.Providers[0].Poll = ptr("CRON_TZ=UTC 0 3 * * *") }, ""},
		{"retry min 0", func(c *Config) { c.Defaults.Retry = &Retry{Max: *dur("1m")} }, "defaults.retry.min: must be longer than 0"},
		{"retry no max", func(c *Config) { c.Defaults.Retry = &Retry{Min: *dur("1m")} }, "defaults.retry.max: required"},
		{"retry min above max", func(c *Config) { c.Defaults.Retry = &Retry{Min: *dur("1h"), Max: *dur("1m")} }, "defaults.retry.min: 1h0m0s must not exceed retry.max (1m0s)"},
		{"retry equal", func(c *Config) { c.Defaults.Retry = &Retry{Min: *dur("1m"), Max: *dur("1m")} }, ""},

		{"provider name missing", func(c *Config) { c.Providers[1].Name, c.Tokens[1].Provider = "", "vcd" }, "providers[1].name: required"},
		{"provider name duplicate", func(c *Config) { c.Providers[1].Name, c.Tokens[1].Provider = "vcd", "vcd" }, `providers[1] (vcd).name: "vcd" is already used by providers[0] (vcd)`},
		{"provider type unknown", func(c *Config) { c.Providers[0].Type = "vmware" }, `providers[0] (vcd).type: unknown provider type "vmware" (known: astra, commvault, huawei-idc, vcd)`},
		{"provider type missing", func(c *Config) { c.Providers[0].Type = "" }, `providers[0] (vcd).type: required: one of astra, commvault, huawei-idc, vcd`},
		{"provider url missing", func(c *Config) { c.Providers[0].URL = "" }, "providers[0] (vcd).url: required"},
		{"provider url relative", func(c *Config) { c.Providers[0].URL = "vcd.example.com" }, "providers[0] (vcd).url: must be an absolute URL"},
		{"provider url ftp", func(c *Config) { c.Providers[0].URL = "ftp://vcd.example.com" }, `providers[0] (vcd).url: scheme "ftp" is not https`},
		{"provider http 127.0.0.2", func(c *Config) { c.Providers[0].URL = "http://127.0.0.2:8080/api" }, ""},
		{"provider http ::1", func(c *Config) { c.Providers[0].URL = "http://[::1]:8080" }, ""},
		{"provider http localhost", func(c *Config) { c.Providers[0].URL = "http://LOCALHOST:8080" }, ""},
		{"provider http 10.0.0.1", func(c *Config) { c.Providers[0].URL = "http://10.0.0.1" }, "providers[0] (vcd).url: plain http:// is refused"},
		{"provider http localhost.evil", func(c *Config) { c.Providers[0].URL = "http://localhost.evil.com" }, "providers[0] (vcd).url: plain http:// is refused"},
		{"provider http 128.0.0.1", func(c *Config) { c.Providers[0].URL = "http://128.0.0.1" }, "providers[0] (vcd).url: plain http:// is refused"},
		{"provider url port", func(c *Config) { c.Providers[0].URL = "https://vcd.example.com:99999" }, "providers[0] (vcd).url: has a port that is not a number from 1 to 65535"},
		{"provider url bad escape", func(c *Config) { c.Providers[0].URL = "https://vcd.example.com/%zz" }, "providers[0] (vcd).url: is not a valid URL"},
		{"provider url password", func(c *Config) { c.Providers[0].URL = "https://u:hunter2@vcd.example.com" }, "providers[0] (vcd).url: must not hold a password"},
		{"scim url http", func(c *Config) { c.Providers[0].SCIMURL = "http://scim.example.com" }, "providers[0] (vcd).scim_url: plain http:// is refused"},
		{"ca file relative", func(c *Config) { c.Providers[0].CAFile = "ca.pem" }, "providers[0] (vcd).ca_file: must be an absolute path"},
		{"rate limit rps 0", func(c *Config) { c.Providers[0].RateLimit = &RateLimit{Burst: 1, Concurrency: 1} }, "providers[0] (vcd).rate_limit.rps: must be greater than 0"},
		{"rate limit burst 0", func(c *Config) { c.Providers[0].RateLimit = &RateLimit{RPS: 1, Concurrency: 1} }, "providers[0] (vcd).rate_limit.burst: must be greater than 0"},
		{"rate limit concurrency -1", func(c *Config) { c.Providers[0].RateLimit = &RateLimit{RPS: 1, Burst: 1, Concurrency: -1} }, "providers[0] (vcd).rate_limit.concurrency: must be greater than 0"},
		{"provider timeout 0", func(c *Config) { c.Providers[0].Timeout = dur("0s") }, "providers[0] (vcd).timeout: must be longer than 0"},
		{"provider password relative", func(c *Config) { c.Providers[0].PasswordFile = "pw" }, "providers[0] (vcd).password_file: must be an absolute path or env:NAME"},
		{"provider secret key env", func(c *Config) { c.Providers[0].SecretKeyFile = "env:HW_SK" }, ""},
		{"provider access key bad env", func(c *Config) { c.Providers[0].AccessKeyFile = "env:HW-AK" }, "providers[0] (vcd).access_key_file: env: must be followed"},

		{"token name missing", func(c *Config) { c.Tokens[1].Name = "" }, "tokens[1].name: required"},
		{"token name bad", func(c *Config) { c.Tokens[1].Name = "b_1" }, `tokens[1] (b_1).name: "b_1" must match [a-z0-9-]+`},
		{"token name duplicate", func(c *Config) { c.Tokens[1].Name = "a" }, `tokens[1] (a).name: "a" is already used by tokens[0] (a)`},
		{"token same name as provider", func(c *Config) { c.Tokens[1].Name = "vcd" }, ""},
		{"token provider missing", func(c *Config) { c.Tokens[1].Provider = "" }, "tokens[1] (b).provider: required"},
		{"token kind missing", func(c *Config) { c.Tokens[1].Kind = "" }, "tokens[1] (b).kind: required"},
		{"token bootstrap relative", func(c *Config) { c.Tokens[1].BootstrapFile = "token.txt" }, "tokens[1] (b).bootstrap_file: must be an absolute path or env:NAME"},
		{"token lifetime 0", func(c *Config) { c.Tokens[1].Lifetime = dur("0s") }, "tokens[1] (b).lifetime: must be longer than 0"},
		{"token renewable_for 0", func(c *Config) { c.Tokens[1].RenewableFor = dur("0s") }, "tokens[1] (b).renewable_for: must be longer than 0"},
		{"token no deliver", func(c *Config) { c.Tokens[1].Deliver = nil }, "tokens[1] (b).deliver: required: at least one sink"},

		{"sink empty", func(c *Config) { c.Tokens[0].Deliver[0] = Sink{} }, "tokens[0] (a).deliver[0]: set one of file, redis, exec"},
		{"sink two", func(c *Config) { c.Tokens[0].Deliver[0].Redis = &RedisSink{Key: "k"} }, "tokens[0] (a).deliver[0]: sets file and redis; a sink is exactly one of"},
		{"file path missing", func(c *Config) { c.Tokens[0].Deliver[0].File.Path = "" }, "tokens[0] (a).deliver[0].file.path: required"},
		{"file path unclean", func(c *Config) { c.Tokens[0].Deliver[0].File.Path = "/run/../etc/a" }, "tokens[0] (a).deliver[0].file.path: must be clean (/etc/a)"},
		{"file path trailing slash", func(c *Config) { c.Tokens[0].Deliver[0].File.Path = "/run/a/" }, "tokens[0] (a).deliver[0].file.path: must be clean"},
		{"file mode 0640", func(c *Config) { c.Tokens[0].Deliver[0].File.Mode = "0640" }, ""},
		{"file mode 0o640", func(c *Config) { c.Tokens[0].Deliver[0].File.Mode = "0o640" }, ""},
		{"file mode 1777", func(c *Config) { c.Tokens[0].Deliver[0].File.Mode = "1777" }, "tokens[0] (a).deliver[0].file.mode: "},
		{"file mode 0800", func(c *Config) { c.Tokens[0].Deliver[0].File.Mode = "0800" }, "tokens[0] (a).deliver[0].file.mode: "},
		{"file mode rw", func(c *Config) { c.Tokens[0].Deliver[0].File.Mode = "rw-r-----" }, "tokens[0] (a).deliver[0].file.mode: "},
		{"file format", func(c *Config) { c.Tokens[0].Deliver[0].File.Format = "yaml" }, `tokens[0] (a).deliver[0].file.format: "yaml" is not one of raw, json, env`},
		{"file var without env", func(c *Config) { c.Tokens[0].Deliver[0].File.Var = "X" }, "tokens[0] (a).deliver[0].file.var: only applies with format: env"},
		{"file var bad", func(c *Config) {
			f := c.Tokens[0].Deliver[0].File
			f.Format, f.Var = "env", "MY-TOKEN"
		}, `tokens[0] (a).deliver[0].file.var: "MY-TOKEN" is not a valid environment variable name`},
		{"file env default var", func(c *Config) { c.Tokens[0].Deliver[0].File.Format = "env" }, ""},
		{"file owner blank", func(c *Config) { c.Tokens[0].Deliver[0].File.Owner = " " }, "tokens[0] (a).deliver[0].file.owner: "},
		{"file group spaced", func(c *Config) { c.Tokens[0].Deliver[0].File.Group = "a b" }, "tokens[0] (a).deliver[0].file.group: "},
		{"redis sink no key", func(c *Config) { c.Tokens[0].Deliver[0] = Sink{Redis: &RedisSink{}} }, "tokens[0] (a).deliver[0].redis.key: required"},
		{"redis sink bad url", func(c *Config) { c.Tokens[0].Deliver[0] = Sink{Redis: &RedisSink{Key: "k", URL: "https://x"}} }, "tokens[0] (a).deliver[0].redis.url: "},
		{"redis sink format env", func(c *Config) { c.Tokens[0].Deliver[0] = Sink{Redis: &RedisSink{Key: "k", Format: "env"}} }, `tokens[0] (a).deliver[0].redis.format: "env" is not one of raw, json`},
		{"redis sink password", func(c *Config) {
			c.Tokens[0].Deliver[0] = Sink{Redis: &RedisSink{Key: "k", PasswordFile: "x"}}
		}, "tokens[0] (a).deliver[0].redis.password_file: must be an absolute path or env:NAME"},
		{"exec no command", func(c *Config) { c.Tokens[1].Deliver[0].Exec.Command = nil }, "tokens[1] (b).deliver[0].exec.command: required"},
		{"exec empty program", func(c *Config) { c.Tokens[1].Deliver[0].Exec.Command = []string{""} }, "tokens[1] (b).deliver[0].exec.command: required"},
		{"exec timeout 0", func(c *Config) { c.Tokens[1].Deliver[0].Exec.Timeout = dur("0s") }, "tokens[1] (b).deliver[0].exec.timeout: must be longer than 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base(t)
			tt.change(c)
			got := lines(c.Validate(acceptAll))
			if tt.want == "" {
				if got != nil {
					t.Errorf("Validate() = %q, want no problem", got)
				}
				return
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("Validate() = %q, want one problem starting %q", got, tt.want)
			}
		})
	}
}

// TestValidateNeverQuotesSecrets puts secret-looking values where references belong and checks that no
// message repeats them.
func TestValidateNeverQuotesSecrets(t *testing.T) {
	const secret = "hunter2-S3cr3t"
	c := base(t)
	c.StateKeyFile = secret
	c.Redis.PasswordFile = secret
	c.Redis.URL = "redis://admin:" + secret + "@127.0.0.1:6379/0"
	c.Providers[0].PasswordFile = "env:" + secret + "!"
	c.Providers[0].URL = "https://svc:" + secret + "@vcd.example.com"
	c.Providers[1].URL = "https://svc:" + secret + "%zz@astra.example.com" // unparsable userinfo
	c.Tokens[0].BootstrapFile = SecretRef(secret)
	err := c.Validate(acceptAll)
	if got := len(lines(err)); got != 7 {
		t.Errorf("Validate() gave %d problems, want 7:\n%v", got, err)
	}
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("Validate() error holds the secret:\n%v", err)
	}
}

func TestValidateVendorChecks(t *testing.T) {
	c := base(t)
	c.Tokens = append(c.Tokens, Token{Name: "a2", Provider: "vcd", Kind: "api_token", Index: 2,
		Deliver: []Sink{{File: &FileSink{Path: "/run/a2"}}}})
	var calls []string
	vendors := map[string]VendorCheck{
		"vcd": func(p Provider, tokens []Token) []error {
			var names []string
			for _, t := range tokens {
				names = append(names, t.Name)
			}
			calls = append(calls, p.Name+":"+strings.Join(names, ","))
			return []error{nil, errors.New(tokens[1].Path() + ".kind: not a vcd kind")}
		},
		"astra": func(p Provider, tokens []Token) []error {
			calls = append(calls, p.Name+":"+tokens[0].Name)
			return nil
		},
	}
	got := lines(c.Validate(vendors))
	want := []string{"tokens[2] (a2).kind: not a vcd kind"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Validate() = %q, want %q", got, want)
	}
	if wantCalls := []string{"vcd:a,a2", "astra:b"}; !reflect.DeepEqual(calls, wantCalls) {
		t.Errorf("vendor checks called as %q, want %q", calls, wantCalls)
	}

	// A provider of an unknown type is reported and its check (there is none) is not run.
	c.Providers[1].Type = "netapp"
	calls = nil
	got = lines(c.Validate(vendors))
	want = []string{
		`providers[1] (astra).type: unknown provider type "netapp" (known: astra, vcd)`,
		"tokens[2] (a2).kind: not a vcd kind",
	}
	if !reflect.DeepEqual(got, want) || len(calls) != 1 {
		t.Errorf("Validate() = %q with calls %q, want %q and only the vcd check", got, calls, want)
	}
}

func TestValidateZeroConfig(t *testing.T) {
	var c Config
	got := lines(c.Validate(nil))
	want := []string{
		`listen: "" is not host:port`,
		`log.level: "" is not one of debug, info, warn, error`,
		`log.format: "" is not one of auto, text, json`,
		`metrics.per_token: "" is not one of auto, true, false`,
		"redis: set one of url, sentinel, cluster",
		"redis.key_prefix: must not be empty",
		"state_key_file: required: 32 bytes (raw or base64) that encrypt the secrets kept in Redis",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Config{}.Validate() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestValidateOneFilePerSink(t *testing.T) {
	c := base(t)
	c.Tokens[1].Deliver = []Sink{{File: &FileSink{Path: "/run/./a"}}}
	err := c.Validate(acceptAll)
	if err == nil || !strings.Contains(err.Error(), "tokens[1] (b).deliver[0].file.path: /run/./a is already the file of tokens[0] (a)") {
		t.Fatalf("Validate() = %v, want the second token's file path refused", err)
	}
}

func TestPerTokenMetrics(t *testing.T) {
	tokens := func(n int) []Token { return make([]Token, n) }
	tests := []struct {
		setting string
		tokens  int
		want    bool
	}{
		{"auto", 0, true},
		{"auto", AutoPerTokenMax, true},
		{"auto", AutoPerTokenMax + 1, false},
		{"true", AutoPerTokenMax + 1, true},
		{"false", 1, false},
	}
	for _, tt := range tests {
		c := Config{Metrics: Metrics{PerToken: tt.setting}, Tokens: tokens(tt.tokens)}
		if got := c.PerTokenMetrics(); got != tt.want {
			t.Errorf("per_token %s with %d tokens: PerTokenMetrics() = %v, want %v", tt.setting, tt.tokens, got, tt.want)
		}
	}
}
