package config

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// Built-in policy values, used when neither the token, its provider nor defaults set a key.
const (
	BuiltinRenewBeforeShare = 0.33
	BuiltinRecreateBefore   = 72 * time.Hour
	BuiltinMaxAge           = 30 * 24 * time.Hour
	BuiltinJitter           = 0.10
	BuiltinRevokeAfter      = 15 * time.Minute
	BuiltinPoll             = "@every 10m"
	BuiltinRetryMin         = 30 * time.Second
	BuiltinRetryMax         = 30 * time.Minute
)

// DefaultFileMode is the mode of a file sink that does not set one.
const DefaultFileMode fs.FileMode = 0o600

// Builtins returns the built-in policy: what a token gets when no level of the config sets anything.
func Builtins() Resolved {
	return Resolved{
		RenewBefore:    Window{IsShare: true, Share: BuiltinRenewBeforeShare},
		RecreateBefore: BuiltinRecreateBefore,
		MaxAge:         BuiltinMaxAge,
		Jitter:         BuiltinJitter,
		RevokeAfter:    BuiltinRevokeAfter,
		Poll:           BuiltinPoll,
		RetryMin:       BuiltinRetryMin,
		RetryMax:       BuiltinRetryMax,
	}
}

// Path is the provider's key path in error messages: "providers[1] (astra)", or "providers[1]" when the
// provider has no name.
func (p Provider) Path() string {
	if p.Name == "" {
		return fmt.Sprintf("providers[%d]", p.Index)
	}
	return fmt.Sprintf("providers[%d] (%s)", p.Index, p.Name)
}

// Path is the token's key path in error messages: "tokens[2] (huawei-scim)", or "tokens[2]" when the
// token has no name.
func (t Token) Path() string {
	if t.Name == "" {
		return fmt.Sprintf("tokens[%d]", t.Index)
	}
	return fmt.Sprintf("tokens[%d] (%s)", t.Index, t.Name)
}

// ProviderFor returns the provider t names, pointing into c.Providers, or nil when there is none.
func (c *Config) ProviderFor(t Token) *Provider {
	for i := range c.Providers {
		if c.Providers[i].Name == t.Provider {
			return &c.Providers[i]
		}
	}
	return nil
}

// TokensOf returns copies of the tokens that name p as their provider, in file order.
func (c *Config) TokensOf(p Provider) []Token {
	var out []Token
	for _, t := range c.Tokens {
		if t.Provider == p.Name {
			out = append(out, t)
		}
	}
	return out
}

// Resolve returns t's policy: each key from the token if it sets it, else from its provider, else from
// defaults, else the built-in value (see Builtins). retry is taken whole from the nearest level that sets
// it. Resolve does not validate; call it on a config that passed Validate.
func (c *Config) Resolve(t Token) Resolved {
	levels := []*Policy{&t.Policy}
	if p := c.ProviderFor(t); p != nil {
		levels = append(levels, &p.Policy)
	}
	return resolve3(append(levels, &c.Defaults))
}

// ResolveProvider returns p's policy without any token's overrides: p's own keys, else defaults, else
// built-ins. It answers provider-wide questions such as how often to poll.
func (c *Config) ResolveProvider(p Provider) Resolved {
	return resolve3([]*Policy{&p.Policy, &c.Defaults})
}

func resolve3(levels []*Policy) Resolved {
	r := Builtins()
	// Walk from the farthest level to the nearest, so nearer levels overwrite.
	for i := len(levels) - 1; i >= 0; i-- {
		p := levels[i]
		if p.RenewBefore != nil {
			r.RenewBefore = *p.RenewBefore
		}
		if p.RecreateBefore != nil {
			r.RecreateBefore = p.RecreateBefore.D()
		}
		if p.MaxAge != nil {
			r.MaxAge = p.MaxAge.D()
		}
		if p.Jitter != nil {
			r.Jitter = float64(*p.Jitter)
		}
		if p.RevokeAfter != nil {
			r.RevokeAfter = p.RevokeAfter.D()
		}
		if p.Poll != nil {
			r.Poll = *p.Poll
		}
		if p.Retry != nil {
			r.RetryMin, r.RetryMax = p.Retry.Min.D(), p.Retry.Max.D()
		}
	}
	return r
}

// FileMode returns the sink's file mode: Mode read as octal, or DefaultFileMode when Mode is empty.
func (f FileSink) FileMode() (fs.FileMode, error) {
	if f.Mode == "" {
		return DefaultFileMode, nil
	}
	m, err := strconv.ParseUint(strings.TrimPrefix(f.Mode, "0o"), 8, 32)
	if err != nil {
		return 0, fmt.Errorf("mode %q is not an octal number such as 0640", f.Mode)
	}
	if m > 0o777 {
		return 0, fmt.Errorf("mode %q has bits above 0777", f.Mode)
	}
	return fs.FileMode(m), nil
}
