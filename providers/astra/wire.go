package astra

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Wire types and decoders for the Astra token API (api/astra.md §3). Every decode of a vendor body goes
// through one of the decode* functions below; each has a fuzz target in wire_test.go.

const (
	tokenType    = "application/astra-token"
	tokenVersion = "1.0"
	// mediaToken is the resource media type sent as Content-Type and Accept on token requests.
	mediaToken = "application/astra-token+json"
	// maxNameLen is the longest token name Astra accepts.
	maxNameLen = 63
	// labelManagedBy and labelVendorName are the labels tokend puts on the tokens it creates, so an
	// operator sees them and crash recovery finds them even if the name were ever changed by a PUT.
	labelManagedBy  = "managed-by"
	labelVendorName = "tokend-vendor-name"
)

type wireLabel struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type wireMetadata struct {
	Labels                []wireLabel `json:"labels,omitempty"`
	CreationTimestamp     string      `json:"creationTimestamp,omitempty"`
	ModificationTimestamp string      `json:"modificationTimestamp,omitempty"`
	CreatedBy             string      `json:"createdBy,omitempty"`
	ModifiedBy            string      `json:"modifiedBy,omitempty"`
}

// wireToken is the token resource (§3.1). Token is set only in a create answer.
type wireToken struct {
	Type     string       `json:"type"`
	Version  string       `json:"version"`
	ID       string       `json:"id"`
	Name     string       `json:"name"`
	UserID   string       `json:"userID"`
	Metadata wireMetadata `json:"metadata"`
	Token    string       `json:"token,omitempty"`
}

// label returns the value of the label called name, or "".
func (w wireToken) label(name string) string {
	for _, l := range w.Metadata.Labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// created returns metadata.creationTimestamp, or the zero time when it is absent or unreadable.
func (w wireToken) created() time.Time {
	t, err := parseTime(w.Metadata.CreationTimestamp)
	if err != nil {
		return time.Time{}
	}
	return t
}

// createBody is the POST body. Astra's request schemas have additionalProperties: false, so this carries
// exactly type, version, name and metadata.labels, nothing else.
type createBody struct {
	Type     string `json:"type"`
	Version  string `json:"version"`
	Name     string `json:"name"`
	Metadata struct {
		Labels []wireLabel `json:"labels"`
	} `json:"metadata"`
}

// decodeToken reads a stored token resource (GET answer). It requires an id and refuses a resource of
// another type.
func decodeToken(b []byte) (wireToken, error) {
	var w wireToken
	if err := json.Unmarshal(b, &w); err != nil {
		return wireToken{}, fmt.Errorf("decoding token: %w", err)
	}
	if err := w.check(); err != nil {
		return wireToken{}, err
	}
	return w, nil
}

// decodeCreated reads a create answer, which must carry the id and the one-time secret.
func decodeCreated(b []byte) (wireToken, error) {
	w, err := decodeToken(b)
	if err != nil {
		return wireToken{}, err
	}
	if w.Token == "" {
		return wireToken{}, errors.New("decoding created token: no token value in the answer")
	}
	return w, nil
}

func (w wireToken) check() error {
	if w.ID == "" {
		return errors.New("decoding token: no id")
	}
	if w.Type != "" && w.Type != tokenType {
		return fmt.Errorf("decoding token: resource type %q, want %q", truncate(w.Type, 64), tokenType)
	}
	return nil
}

// tokenList is one page of a token list (§3.3).
type tokenList struct {
	Items    []wireToken
	Continue string
}

// decodeList reads one page of GET .../tokens. Items are objects, or, when the request had include=,
// arrays of values in the order of include; both are read. Extra top-level keys are tolerated.
func decodeList(b []byte, include []string) (tokenList, error) {
	var env struct {
		Items    []json.RawMessage `json:"items"`
		Metadata *struct {
			Continue string `json:"continue"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return tokenList{}, fmt.Errorf("decoding token list: %w", err)
	}
	if env.Items == nil {
		return tokenList{}, errors.New("decoding token list: no items")
	}
	var l tokenList
	if env.Metadata != nil {
		l.Continue = env.Metadata.Continue
	}
	for i, raw := range env.Items {
		raw = bytes.TrimSpace(raw)
		var w wireToken
		var err error
		switch {
		case len(raw) > 0 && raw[0] == '[':
			w, err = decodeListArray(raw, include)
		default:
			err = json.Unmarshal(raw, &w)
			if err == nil {
				err = w.check()
			}
		}
		if err != nil {
			return tokenList{}, fmt.Errorf("decoding token list: item %d: %w", i, err)
		}
		l.Items = append(l.Items, w)
	}
	return l, nil
}

// decodeListArray reads an include= item: values in the order of include.
func decodeListArray(raw []byte, include []string) (wireToken, error) {
	var vals []json.RawMessage
	if err := json.Unmarshal(raw, &vals); err != nil {
		return wireToken{}, err
	}
	if len(include) == 0 || len(vals) != len(include) {
		return wireToken{}, fmt.Errorf("array item with %d values, asked for %d fields", len(vals), len(include))
	}
	var w wireToken
	for i, field := range include {
		var dst any
		switch field {
		case "id":
			dst = &w.ID
		case "name":
			dst = &w.Name
		case "userID":
			dst = &w.UserID
		case "type":
			dst = &w.Type
		case "version":
			dst = &w.Version
		case "metadata":
			dst = &w.Metadata
		default:
			continue
		}
		if err := json.Unmarshal(vals[i], dst); err != nil {
			return wireToken{}, fmt.Errorf("field %s: %w", field, err)
		}
	}
	return w, w.check()
}

// problem is an RFC 7807 problem detail (§3.7). status is a string in Astra's schema; a number is accepted.
type problem struct {
	Type   string
	Title  string
	Detail string
	Status int
}

// decodeProblem reads a problem body. ok is false when b is not one (a proxy's HTML page, garbage).
func decodeProblem(b []byte) (p problem, ok bool) {
	var w struct {
		Type   string          `json:"type"`
		Title  string          `json:"title"`
		Detail string          `json:"detail"`
		Status json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return problem{}, false
	}
	if w.Type == "" && w.Title == "" && w.Detail == "" {
		return problem{}, false
	}
	p = problem{Type: w.Type, Title: w.Title, Detail: w.Detail}
	s := strings.Trim(strings.TrimSpace(string(w.Status)), `"`)
	if n, err := strconv.Atoi(s); err == nil && n >= 100 && n <= 999 {
		p.Status = n
	}
	return p, true
}

// code returns the problem number ("4" for ".../problems/4"), or the whole type when it is not an Astra
// problem URI.
func (p problem) code() string {
	if i := strings.LastIndex(p.Type, "/problems/"); i >= 0 {
		return "problems/" + p.Type[i+len("/problems/"):]
	}
	return p.Type
}

// parseTime reads an Astra time (§6.6): UTC, ending in Z, seconds with an optional fraction of 1-9 digits
// separated by '.' or ','.
func parseTime(s string) (time.Time, error) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[len(s)-1] != 'Z' {
		return time.Time{}, fmt.Errorf("invalid Astra time %q", truncate(s, 40))
	}
	if len(s) > 20 && s[19] == ',' {
		s = s[:19] + "." + s[20:]
	}
	if len(s) > 20 && (s[19] != '.' || len(s) > 30 || len(s) == 21) {
		return time.Time{}, fmt.Errorf("invalid Astra time %q", truncate(s, 40))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid Astra time %q", truncate(s, 40))
	}
	return t.UTC(), nil
}

// formatTime writes t as Astra does: UTC, microseconds, Z.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// selfID returns the token id a bearer secret names about itself, if it says. Astra's spec describes the
// value as "a base64-encoded system-generated API token" whose example decodes to "A JWT Token would go
// here.", so the secret is read as a JWT, verbatim or base64-decoded, and its jti (or tokenID) claim is
// the token's id. The signature is not checked: the claim is only used to pick one of the tokens that the
// vendor has just listed for this very bearer, never to trust the bearer.
func selfID(secret string) (string, bool) {
	if id, ok := jwtID(secret); ok {
		return id, true
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(secret); err == nil {
			if id, ok := jwtID(string(b)); ok {
				return id, true
			}
		}
	}
	return "", false
}

func jwtID(s string) (string, bool) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 {
		return "", false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", false
	}
	var c struct {
		JTI     string `json:"jti"`
		TokenID string `json:"tokenID"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return "", false
	}
	id := c.JTI
	if id == "" {
		id = c.TokenID
	}
	if id == "" || len(id) > 128 {
		return "", false
	}
	return id, true
}

// truncate shortens vendor text for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
