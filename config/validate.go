package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/robfig/cron/v3"
)

// A VendorCheck validates the vendor-specific keys of one provider and of the tokens that use it (kind,
// tenant_id, token_type, ...). It returns every problem, each error's message starting with its key path
// (p.Path() or t.Path() followed by ".key"). It runs only on providers whose type it is registered for and
// must not touch the network or read secret files.
type VendorCheck func(p Provider, tokens []Token) []error

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9-]+$`)
	envVarRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// problems collects validation errors, each "path: message".
type problems []error

func (ps *problems) add(path, format string, args ...any) {
	*ps = append(*ps, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// Validate checks the whole config and returns every problem at once, joined with errors.Join so that
// each is one line starting with its key path ("tokens[2] (huawei-scim).deliver[0].file.path: must be
// absolute"). vendors maps each known provider type to its check; a provider whose type is not a key of
// vendors is an error, and each known one is handed to its check with its tokens. Validate reads no file
// and no environment variable; messages never contain the value of a secret reference.
func (c *Config) Validate(vendors map[string]VendorCheck) error {
	var ps problems

	if err := checkHostPort(c.Listen); err != nil {
		ps.add("listen", "%v", err)
	}
	if c.WebConfigFile != "" && !filepath.IsAbs(c.WebConfigFile) {
		ps.add("web_config_file", "must be an absolute path")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		ps.add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "text", "json":
	default:
		ps.add("log.format", "%q is not one of auto, text, json", c.Log.Format)
	}
	switch c.Metrics.PerToken {
	case "auto", "true", "false":
	default:
		ps.add("metrics.per_token", "%q is not one of auto, true, false", c.Metrics.PerToken)
	}
	c.validateRedis(&ps)
	if !c.StateKeyFile.IsSet() {
		ps.add("state_key_file", "required: 32 bytes (raw or base64) that encrypt the secrets kept in Redis")
	} else {
		checkSecretRef(&ps, "state_key_file", c.StateKeyFile)
	}
	validatePolicy(&ps, "defaults", c.Defaults)

	providerAt := map[string]string{}
	for _, p := range c.Providers {
		validateProvider(&ps, p, vendors, providerAt)
	}
	tokenAt := map[string]string{}
	for _, t := range c.Tokens {
		c.validateToken(&ps, t, tokenAt)
	}
	// One file holds one token: a second sink on the same path would overwrite it at every rotation.
	fileAt := map[string]string{}
	for _, t := range c.Tokens {
		for i, d := range t.Deliver {
			if d.File == nil || d.File.Path == "" {
				continue
			}
			path := fmt.Sprintf("%s.deliver[%d].file.path", t.Path(), i)
			clean := filepath.Clean(d.File.Path)
			if first, ok := fileAt[clean]; ok {
				ps.add(path, "%s is already the file of %s: each file sink needs its own file", d.File.Path, first)
				continue
			}
			fileAt[clean] = path
		}
	}

	for _, p := range c.Providers {
		check := vendors[p.Type]
		if check == nil {
			continue
		}
		for _, err := range check(p, c.TokensOf(p)) {
			if err != nil {
				ps = append(ps, err)
			}
		}
	}
	return errors.Join(ps...)
}

func (c *Config) validateRedis(ps *problems) {
	r := c.Redis
	var set []string
	if r.URL != "" {
		set = append(set, "url")
	}
	if r.Sentinel != nil {
		set = append(set, "sentinel")
	}
	if r.Cluster != nil {
		set = append(set, "cluster")
	}
	if len(set) != 1 {
		if len(set) == 0 {
			ps.add("redis", "set one of url, sentinel, cluster")
		} else {
			ps.add("redis", "sets %s; set exactly one of url, sentinel, cluster", strings.Join(set, " and "))
		}
	}
	if r.URL != "" {
		if msg := checkRedisURL(r.URL); msg != "" {
			ps.add("redis.url", "%s", msg)
		}
	}
	if s := r.Sentinel; s != nil {
		if strings.TrimSpace(s.Master) == "" {
			ps.add("redis.sentinel.master", "required: the name of the monitored master")
		}
		checkAddrs(ps, "redis.sentinel.addrs", s.Addrs)
		if s.PasswordFile.IsSet() {
			checkSecretRef(ps, "redis.sentinel.password_file", s.PasswordFile)
		}
		if s.DB < 0 {
			ps.add("redis.sentinel.db", "must not be negative")
		}
	}
	if cl := r.Cluster; cl != nil {
		checkAddrs(ps, "redis.cluster.addrs", cl.Addrs)
	}
	if r.PasswordFile.IsSet() {
		checkSecretRef(ps, "redis.password_file", r.PasswordFile)
	}
	if r.TLS != nil && r.TLS.CAFile != "" && !filepath.IsAbs(r.TLS.CAFile) {
		ps.add("redis.tls.ca_file", "must be an absolute path")
	}
	switch {
	case r.KeyPrefix == "":
		ps.add("redis.key_prefix", "must not be empty")
	case strings.ContainsFunc(r.KeyPrefix, func(r rune) bool {
		return unicode.IsSpace(r) || r == '{' || r == '}' || !unicode.IsPrint(r)
	}):
		ps.add("redis.key_prefix", "%q must not contain spaces or braces", r.KeyPrefix)
	}
}

func checkAddrs(ps *problems, path string, addrs []string) {
	if len(addrs) == 0 {
		ps.add(path, "required: at least one host:port")
	}
	for i, a := range addrs {
		if err := checkHostPort(a); err != nil {
			ps.add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}

// checkHostPort accepts "host:port" and ":port" with a numeric port from 1 to 65535.
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q: the port must be a number from 1 to 65535", s)
	}
	return nil
}

// parseURL parses s without ever quoting it or a piece of it back: a URL may carry a password by mistake.
func parseURL(s string) (*url.URL, string) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, "is not a valid URL"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return nil, "must not hold a password; use password_file"
		}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return nil, "has a port that is not a number from 1 to 65535"
		}
	}
	return u, ""
}

func checkRedisURL(s string) string {
	u, msg := parseURL(s)
	if msg != "" {
		return msg
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return "must name a host, as in redis://127.0.0.1:6379/0"
		}
	case "unix":
		if !filepath.IsAbs(u.Path) {
			return "must name an absolute socket path, as in unix:///run/redis/redis.sock"
		}
	default:
		return fmt.Sprintf("scheme %q is not one of redis, rediss, unix", u.Scheme)
	}
	return ""
}

// checkVendorURL applies the provider URL rules: absolute, https, plain http only to a loopback host.
func checkVendorURL(s string) string {
	u, msg := parseURL(s)
	if msg != "" {
		return msg
	}
	if !u.IsAbs() || u.Host == "" {
		return "must be an absolute URL such as https://vendor.example.com"
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "plain http:// is refused except to loopback hosts (127.0.0.0/8, ::1, localhost); use https://"
		}
	default:
		return fmt.Sprintf("scheme %q is not https", u.Scheme)
	}
	return ""
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkSecretRef checks the form of a set secret reference without reading it. The value is never quoted:
// a password pasted where its file belongs must not reach a log.
func checkSecretRef(ps *problems, path string, r SecretRef) {
	s := string(r)
	if name, ok := strings.CutPrefix(s, "env:"); ok {
		if !envVarRE.MatchString(name) {
			ps.add(path, "env: must be followed by a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
		}
		return
	}
	if !filepath.IsAbs(s) {
		ps.add(path, "must be an absolute path or env:NAME")
	}
}

func checkPositive(ps *problems, path string, d *Duration) {
	if d != nil && d.D() <= 0 {
		ps.add(path, "must be longer than 0")
	}
}

func checkNonNegative(ps *problems, path string, d *Duration) {
	if d != nil && d.D() < 0 {
		ps.add(path, "must not be negative")
	}
}

// validatePolicy checks the policy keys set at one level (defaults, a provider, a token).
func validatePolicy(ps *problems, path string, p Policy) {
	if w := p.RenewBefore; w != nil {
		if w.IsShare {
			if !(w.Share > 0 && w.Share < 1) {
				ps.add(joinKey(path, "renew_before"), "a share must be above 0%% and below 100%%, not %s", w)
			}
		} else if w.Dur <= 0 {
			ps.add(joinKey(path, "renew_before"), "must be longer than 0")
		}
	}
	checkNonNegative(ps, joinKey(path, "recreate_before"), p.RecreateBefore)
	checkPositive(ps, joinKey(path, "max_age"), p.MaxAge)
	if j := p.Jitter; j != nil && !(*j >= 0 && *j <= 0.5) {
		ps.add(joinKey(path, "jitter"), "must be from 0%% to 50%%, not %s", Window{IsShare: true, Share: float64(*j)})
	}
	checkNonNegative(ps, joinKey(path, "revoke_after"), p.RevokeAfter)
	if p.Poll != nil {
		if err := checkPoll(*p.Poll); err != nil {
			ps.add(joinKey(path, "poll"), "%v (use a cron spec such as \"*/10 * * * *\" or \"@every 10m\")", err)
		}
	}
	if r := p.Retry; r != nil {
		switch {
		case r.Min <= 0:
			ps.add(joinKey(path, "retry.min"), "must be longer than 0")
		case r.Max == 0:
			ps.add(joinKey(path, "retry.max"), "required: retry is set whole, as {min: 30s, max: 30m}")
		case r.Min > r.Max:
			ps.add(joinKey(path, "retry.min"), "%s must not exceed retry.max (%s)", r.Min.D(), r.Max.D())
		}
	}
}

// checkPoll parses a cron spec as the scheduler will. robfig/cron v3.0.1 panics on some malformed
// "TZ=" prefixes; that is an invalid spec, not a crash.
func checkPoll(spec string) (err error) {
	defer func() {
		if recover() != nil {
			err = fmt.Errorf("invalid cron spec %q", spec)
		}
	}()
	_, err = cron.ParseStandard(spec)
	return err
}

func validateProvider(ps *problems, p Provider, vendors map[string]VendorCheck, seen map[string]string) {
	path := p.Path()
	key := func(k string) string { return joinKey(path, k) }

	checkName(ps, key("name"), p.Name, seen, path)
	known := make([]string, 0, len(vendors))
	for k := range vendors {
		known = append(known, k)
	}
	slices.Sort(known)
	knownList := strings.Join(known, ", ")
	if knownList == "" {
		knownList = "none"
	}
	switch _, ok := vendors[p.Type]; {
	case p.Type == "":
		ps.add(key("type"), "required: one of %s", knownList)
	case !ok:
		ps.add(key("type"), "unknown provider type %q (known: %s)", p.Type, knownList)
	}
	if p.URL == "" {
		ps.add(key("url"), "required")
	} else if msg := checkVendorURL(p.URL); msg != "" {
		ps.add(key("url"), "%s", msg)
	}
	if p.SCIMURL != "" {
		if msg := checkVendorURL(p.SCIMURL); msg != "" {
			ps.add(key("scim_url"), "%s", msg)
		}
	}
	if p.CAFile != "" && !filepath.IsAbs(p.CAFile) {
		ps.add(key("ca_file"), "must be an absolute path")
	}
	if rl := p.RateLimit; rl != nil {
		if !(rl.RPS > 0) || rl.RPS > 1e9 {
			ps.add(key("rate_limit.rps"), "must be greater than 0")
		}
		if rl.Burst <= 0 {
			ps.add(key("rate_limit.burst"), "must be greater than 0")
		}
		if rl.Concurrency <= 0 {
			ps.add(key("rate_limit.concurrency"), "must be greater than 0")
		}
	}
	checkPositive(ps, key("timeout"), p.Timeout)
	for _, s := range []struct {
		k string
		r SecretRef
	}{{"password_file", p.PasswordFile}, {"access_key_file", p.AccessKeyFile}, {"secret_key_file", p.SecretKeyFile}} {
		if s.r.IsSet() {
			checkSecretRef(ps, key(s.k), s.r)
		}
	}
	validatePolicy(ps, path, p.Policy)
}

// checkName checks a provider or token name: required, [a-z0-9-]+, unique in seen (name -> owner path).
func checkName(ps *problems, path, name string, seen map[string]string, owner string) {
	switch {
	case name == "":
		ps.add(path, "required")
	case !nameRE.MatchString(name):
		ps.add(path, "%q must match [a-z0-9-]+", name)
	default:
		if first, dup := seen[name]; dup {
			ps.add(path, "%q is already used by %s", name, first)
			return
		}
		seen[name] = owner
	}
}

func (c *Config) validateToken(ps *problems, t Token, seen map[string]string) {
	path := t.Path()
	key := func(k string) string { return joinKey(path, k) }

	checkName(ps, key("name"), t.Name, seen, path)
	if t.Provider == "" {
		ps.add(key("provider"), "required")
	} else if c.ProviderFor(t) == nil {
		names := make([]string, 0, len(c.Providers))
		for _, p := range c.Providers {
			names = append(names, p.Name)
		}
		ps.add(key("provider"), "no provider is named %q (configured: %s)", t.Provider, strings.Join(names, ", "))
	}
	if strings.TrimSpace(t.Kind) == "" {
		ps.add(key("kind"), "required")
	}
	if t.BootstrapFile.IsSet() {
		checkSecretRef(ps, key("bootstrap_file"), t.BootstrapFile)
	}
	checkPositive(ps, key("renewable_for"), t.RenewableFor)
	checkPositive(ps, key("lifetime"), t.Lifetime)
	if len(t.Deliver) == 0 {
		ps.add(key("deliver"), "required: at least one sink (file, redis or exec)")
	}
	for i, s := range t.Deliver {
		validateSink(ps, fmt.Sprintf("%s.deliver[%d]", path, i), s)
	}
	validatePolicy(ps, path, t.Policy)
}

func validateSink(ps *problems, path string, s Sink) {
	var set []string
	if s.File != nil {
		set = append(set, "file")
	}
	if s.Redis != nil {
		set = append(set, "redis")
	}
	if s.Exec != nil {
		set = append(set, "exec")
	}
	switch len(set) {
	case 0:
		ps.add(path, "set one of file, redis, exec")
	case 1:
	default:
		ps.add(path, "sets %s; a sink is exactly one of file, redis, exec", strings.Join(set, " and "))
	}

	if f := s.File; f != nil {
		p := path + ".file"
		switch {
		case f.Path == "":
			ps.add(p+".path", "required")
		case !filepath.IsAbs(f.Path):
			ps.add(p+".path", "must be absolute")
		case filepath.Clean(f.Path) != f.Path:
			ps.add(p+".path", "must be clean (%s)", filepath.Clean(f.Path))
		}
		if _, err := f.FileMode(); err != nil {
			ps.add(p+".mode", "%v", err)
		}
		switch f.Format {
		case "", "raw", "json", "env":
		default:
			ps.add(p+".format", "%q is not one of raw, json, env", f.Format)
		}
		if f.Var != "" {
			if f.Format != "env" {
				ps.add(p+".var", "only applies with format: env")
			} else if !envVarRE.MatchString(f.Var) {
				ps.add(p+".var", "%q is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)", f.Var)
			}
		}
		checkOwner(ps, p+".owner", f.Owner)
		checkOwner(ps, p+".group", f.Group)
	}
	if r := s.Redis; r != nil {
		p := path + ".redis"
		if strings.TrimSpace(r.Key) == "" {
			ps.add(p+".key", "required")
		}
		if r.URL != "" {
			if msg := checkRedisURL(r.URL); msg != "" {
				ps.add(p+".url", "%s", msg)
			}
		}
		if r.PasswordFile.IsSet() {
			checkSecretRef(ps, p+".password_file", r.PasswordFile)
		}
		switch r.Format {
		case "", "raw", "json":
		default:
			ps.add(p+".format", "%q is not one of raw, json", r.Format)
		}
	}
	if e := s.Exec; e != nil {
		p := path + ".exec"
		switch {
		case len(e.Command) == 0 || e.Command[0] == "":
			ps.add(p+".command", "required: the program and its arguments, as [\"/usr/local/bin/reload\"]")
		case !filepath.IsAbs(e.Command[0]):
			ps.add(p+".command[0]", "must be an absolute path")
		}
		checkPositive(ps, p+".timeout", e.Timeout)
	}
}

// checkOwner checks a file sink's owner or group: unset, or a user/group name or id without spaces.
func checkOwner(ps *problems, path, v string) {
	if v != "" && (strings.TrimSpace(v) == "" || strings.ContainsFunc(v, unicode.IsSpace)) {
		ps.add(path, "must be a name or numeric id without spaces")
	}
}
