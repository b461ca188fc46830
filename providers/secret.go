package providers

import (
	"encoding/json"
	"log/slog"
)

// Secret holds a credential value. It prints as "<secret>" in fmt, slog, JSON and YAML, so a Secret that
// reaches a log line, an error or an HTTP response by mistake shows nothing. Reveal is called only where the
// value must go on the wire, into the encrypted store, or into a sink. The zero Secret is empty.
type Secret struct{ v string }

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the value. Call it only to put the value on the wire, in the store or in a sink.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return "<secret>" }

// GoString implements fmt.GoStringer, so %#v does not print the value either.
func (s Secret) GoString() string { return "<secret>" }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue("<secret>") }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal("<secret>") }

// MarshalText implements encoding.TextMarshaler (YAML and others use it).
func (s Secret) MarshalText() ([]byte, error) { return []byte("<secret>"), nil }
