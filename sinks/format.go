package sinks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultEnvVar is the variable the env format writes when var: is not set.
const DefaultEnvVar = "TOKEN"

// Format renders d as "raw" (the token's bytes, no trailing newline; "" means raw), "json" (one object
// {"name","provider","kind","token","issued_at","expires_at","generation"} with RFC 3339 UTC times or null,
// no trailing newline), or "env" (one line VAR=value\n, VAR from envVar, default TOKEN; the value is written
// verbatim). A token the env format cannot hold on one line, an invalid variable name and an unknown format
// are errors, which never contain the token.
func Format(d Delivery, format, envVar string) ([]byte, error) {
	tok := d.Secret.Reveal()
	switch format {
	case "", "raw":
		return []byte(tok), nil
	case "json":
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		err := enc.Encode(jsonDelivery{
			Name:       d.Name,
			Provider:   d.Provider,
			Kind:       d.Kind,
			Token:      tok,
			IssuedAt:   rfc3339(d.IssuedAt),
			ExpiresAt:  rfc3339(d.ExpiresAt),
			Generation: d.Generation,
		})
		if err != nil {
			// Only an invalid time can fail here; its text holds no token.
			return nil, fmt.Errorf("formatting json: %w", err)
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
	case "env":
		if envVar == "" {
			envVar = DefaultEnvVar
		}
		if err := checkEnvVar(envVar); err != nil {
			return nil, err
		}
		if strings.ContainsAny(tok, "\n\r\x00") {
			return nil, errors.New("formatting env: the token contains a line break or NUL byte, which one env line cannot hold")
		}
		return []byte(envVar + "=" + tok + "\n"), nil
	default:
		return nil, fmt.Errorf("format %q: must be raw, json or env", format)
	}
}

type jsonDelivery struct {
	Name       string  `json:"name"`
	Provider   string  `json:"provider"`
	Kind       string  `json:"kind"`
	Token      string  `json:"token"`
	IssuedAt   *string `json:"issued_at"`
	ExpiresAt  *string `json:"expires_at"`
	Generation int64   `json:"generation"`
}

func rfc3339(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

// checkEnvVar accepts a portable shell variable name: [A-Za-z_][A-Za-z0-9_]*.
func checkEnvVar(name string) error {
	for i, c := range name {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return fmt.Errorf("var %q: must be a variable name ([A-Za-z_][A-Za-z0-9_]*)", name)
		}
	}
	if name == "" {
		return errors.New("var: must not be empty")
	}
	return nil
}
