package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tokend/tokend/providers"
)

// Duration is a time.Duration written as Go writes it ("90s", "6h") or with a day suffix ("30d", "1d12h").
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ParseDuration reads a duration with an optional leading day count: "30d", "1d12h", "90s".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use 90s, 15m, 6h, 30d)", s)
	}
	return days + d, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Share is a fraction of a whole written as a percentage ("10%"), between 0 and 1.
type Share float64

// ParseShare reads "33%" as 0.33.
func ParseShare(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if !strings.HasSuffix(s, "%") {
		return 0, fmt.Errorf("invalid share %q (use a percentage such as 10%%)", s)
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || f < 0 || f > 100 {
		return 0, fmt.Errorf("invalid share %q (use a percentage from 0%% to 100%%)", s)
	}
	return f / 100, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Share) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseShare(n.Value)
	if err != nil {
		return err
	}
	*s = Share(v)
	return nil
}

// Window is how long before expiry tokend acts: a fixed duration, or a share of the token's lifetime.
// Exactly one of Share and Dur is meaningful: Share when IsShare.
type Window struct {
	IsShare bool
	Share   float64
	Dur     time.Duration
}

// Of returns the window for a token whose lifetime is lifetime.
func (w Window) Of(lifetime time.Duration) time.Duration {
	if w.IsShare {
		return time.Duration(float64(lifetime) * w.Share)
	}
	return w.Dur
}

func (w Window) String() string {
	if w.IsShare {
		return strconv.FormatFloat(w.Share*100, 'f', -1, 64) + "%"
	}
	return w.Dur.String()
}

// ParseWindow reads "33%" or "6h".
func ParseWindow(s string) (Window, error) {
	if strings.HasSuffix(strings.TrimSpace(s), "%") {
		f, err := ParseShare(s)
		return Window{IsShare: true, Share: f}, err
	}
	d, err := ParseDuration(s)
	if err != nil {
		return Window{}, fmt.Errorf("invalid window %q (use a duration such as 6h or a share such as 33%%)", s)
	}
	return Window{Dur: d}, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (w *Window) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseWindow(n.Value)
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// SecretRef names where a secret is read from: a file path (a trailing newline is ignored) or env:NAME.
// The zero SecretRef is unset.
type SecretRef string

// IsSet reports whether the reference names anything.
func (r SecretRef) IsSet() bool { return r != "" }

// Read returns the secret. Errors name the reference, never the value.
func (r SecretRef) Read() (providers.Secret, error) {
	b, err := r.ReadBytes()
	return providers.NewSecret(string(b)), err
}

// ReadBytes returns the secret's bytes.
func (r SecretRef) ReadBytes() ([]byte, error) {
	s := string(r)
	if name, ok := strings.CutPrefix(s, "env:"); ok {
		v, ok := os.LookupEnv(name)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", name)
		}
		if v == "" {
			return nil, fmt.Errorf("environment variable %s is empty", name)
		}
		return []byte(v), nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return nil, fmt.Errorf("reading secret file: %w", err)
	}
	b = []byte(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", s)
	}
	return b, nil
}
