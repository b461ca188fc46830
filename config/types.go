// Package config is tokend's configuration: the YAML schema of spec/tokend.example.yaml, strict loading
// (an unknown key is an error with its path and line), defaults, per-provider and per-token overrides, and
// validation that reports every problem at once, each with its key path.
package config

import "time"

// Config is one tokend configuration file.
type Config struct {
	Listen        string     `yaml:"listen"`
	WebConfigFile string     `yaml:"web_config_file"`
	InstanceID    string     `yaml:"instance_id"`
	Log           Log        `yaml:"log"`
	Metrics       Metrics    `yaml:"metrics"`
	Redis         Redis      `yaml:"redis"`
	StateKeyFile  SecretRef  `yaml:"state_key_file"`
	Defaults      Policy     `yaml:"defaults"`
	Providers     []Provider `yaml:"providers"`
	Tokens        []Token    `yaml:"tokens"`

	// Path is the file the config was loaded from ("" when parsed from bytes).
	Path string `yaml:"-"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // auto | text | json
}

// Metrics configures what /metrics exports.
type Metrics struct {
	// PerToken says whether every token has its own tokend_token_* series: auto (on up to
	// AutoPerTokenMax tokens), true or false. Off, only the tokens that need attention keep theirs, and the
	// tokend_tokens* aggregates give the overview (metrics.(*Metrics).SetPerToken).
	PerToken string `yaml:"per_token"`
}

// Redis configures the state store. Exactly one of URL, Sentinel and Cluster is used.
type Redis struct {
	URL          string    `yaml:"url"`
	Sentinel     *Sentinel `yaml:"sentinel"`
	Cluster      *Cluster  `yaml:"cluster"`
	PasswordFile SecretRef `yaml:"password_file"`
	Username     string    `yaml:"username"`
	TLS          *TLS      `yaml:"tls"`
	KeyPrefix    string    `yaml:"key_prefix"`
}

// Sentinel names a Redis Sentinel deployment.
type Sentinel struct {
	Master       string    `yaml:"master"`
	Addrs        []string  `yaml:"addrs"`
	PasswordFile SecretRef `yaml:"password_file"` // the Sentinels' own password
	DB           int       `yaml:"db"`
}

// Cluster names a Redis Cluster.
type Cluster struct {
	Addrs []string `yaml:"addrs"`
}

// TLS configures TLS to Redis when the address form cannot say it (sentinel, cluster).
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Policy is the set of rotation settings that defaults, providers and tokens may each set; the nearest one
// wins (token, then provider, then defaults, then built-in defaults). A nil field is unset.
type Policy struct {
	RenewBefore    *Window   `yaml:"renew_before"`
	RecreateBefore *Duration `yaml:"recreate_before"`
	MaxAge         *Duration `yaml:"max_age"`
	Jitter         *Share    `yaml:"jitter"`
	RevokeAfter    *Duration `yaml:"revoke_after"`
	Poll           *string   `yaml:"poll"`
	Retry          *Retry    `yaml:"retry"`
}

// Retry bounds the backoff between failed attempts.
type Retry struct {
	Min Duration `yaml:"min"`
	Max Duration `yaml:"max"`
}

// RateLimit bounds the requests tokend sends to one provider.
type RateLimit struct {
	RPS         float64 `yaml:"rps"`
	Burst       int     `yaml:"burst"`
	Concurrency int     `yaml:"concurrency"`
}

// Provider is one vendor account. Vendor-specific keys are checked by the vendor's own validation hook.
type Provider struct {
	Name      string     `yaml:"name"`
	Type      string     `yaml:"type"` // vcd | astra | commvault | huawei-idc
	URL       string     `yaml:"url"`
	CAFile    string     `yaml:"ca_file"`
	RateLimit *RateLimit `yaml:"rate_limit"`
	Timeout   *Duration  `yaml:"timeout"` // one HTTP request; default 30s

	// vcd, commvault
	Username     string    `yaml:"username"`
	PasswordFile SecretRef `yaml:"password_file"`
	// vcd
	Org        string `yaml:"org"`
	APIVersion string `yaml:"api_version"`
	// astra
	AccountID string `yaml:"account_id"`
	UserID    string `yaml:"user_id"`
	// huawei-idc
	SCIMURL         string    `yaml:"scim_url"`
	IdentityStoreID string    `yaml:"identity_store_id"`
	AccessKeyFile   SecretRef `yaml:"access_key_file"`
	SecretKeyFile   SecretRef `yaml:"secret_key_file"`

	Policy `yaml:",inline"`

	// Index is the provider's position in the file, for error paths.
	Index int `yaml:"-"`
}

// Token is one managed token.
type Token struct {
	Name     string `yaml:"name"`
	Provider string `yaml:"provider"`
	Kind     string `yaml:"kind"`

	BootstrapFile SecretRef `yaml:"bootstrap_file"`
	// commvault
	TokenType    string    `yaml:"token_type"`
	RenewableFor *Duration `yaml:"renewable_for"`
	APIEndpoints []string  `yaml:"api_endpoints"` // CUSTOM tokens
	// any vendor whose create call takes a lifetime
	Lifetime *Duration `yaml:"lifetime"`
	// huawei-idc
	TenantID string `yaml:"tenant_id"`

	Deliver []Sink `yaml:"deliver"`

	Policy `yaml:",inline"`

	// Index is the token's position in the file, for error paths.
	Index int `yaml:"-"`
}

// Sink is one delivery target; exactly one field is set.
type Sink struct {
	File  *FileSink  `yaml:"file"`
	Redis *RedisSink `yaml:"redis"`
	Exec  *ExecSink  `yaml:"exec"`
}

// FileSink writes the token to a file atomically.
type FileSink struct {
	Path   string `yaml:"path"`
	Mode   string `yaml:"mode"`   // octal, default "0600"
	Owner  string `yaml:"owner"`  // user name or uid; default: unchanged
	Group  string `yaml:"group"`  // group name or gid; default: unchanged
	Format string `yaml:"format"` // raw (default) | json | env
	Var    string `yaml:"var"`    // env format: the variable name, default TOKEN
}

// RedisSink SETs the token under Key on the state Redis, or on URL when given.
type RedisSink struct {
	Key          string    `yaml:"key"`
	URL          string    `yaml:"url"`
	PasswordFile SecretRef `yaml:"password_file"`
	Format       string    `yaml:"format"` // raw (default) | json
}

// ExecSink runs Command with the token on stdin.
type ExecSink struct {
	Command []string  `yaml:"command"`
	Timeout *Duration `yaml:"timeout"` // default 30s
}

// Resolved is a token's policy with every default applied.
type Resolved struct {
	RenewBefore    Window
	RecreateBefore time.Duration
	MaxAge         time.Duration
	Jitter         float64 // share of the window, 0..1
	RevokeAfter    time.Duration
	Poll           string
	RetryMin       time.Duration
	RetryMax       time.Duration
}

// AutoPerTokenMax is the most tokens for which metrics.per_token: auto keeps per-token series on. At
// 10,000 tokens a scrape takes about 0.1 s; at 100,000, about 2 s and 370 MiB (docs/benchmarks.md).
const AutoPerTokenMax = 10_000

// PerTokenMetrics resolves metrics.per_token for this config's number of tokens.
func (c *Config) PerTokenMetrics() bool {
	switch c.Metrics.PerToken {
	case "true":
		return true
	case "false":
		return false
	}
	return len(c.Tokens) <= AutoPerTokenMax
}
