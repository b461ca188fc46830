package vcd

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Wire types of the VCD CloudAPI and OAuth endpoints. Each decoder is small, lenient about fields it does
// not need (fields appear and vanish between API versions), strict about the ones it relies on, and never
// panics: they are fuzzed in wire_fuzz_test.go.

// ref is a VCD entity reference.
type ref struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

// wireSession is the Session resource (login answer, sessions/current).
type wireSession struct {
	ID                        string `json:"id"`
	User                      ref    `json:"user"`
	Org                       ref    `json:"org"`
	SessionIdleTimeoutMinutes int    `json:"sessionIdleTimeoutMinutes"`
}

// wireToken is the Token resource. Token carries the secret only in the answer to POST /tokens.
type wireToken struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	Token             string `json:"token"`
	ExpirationTimeUTC string `json:"expirationTimeUtc"`
	RequireRotation   *bool  `json:"requireRotation"`
	Type              string `json:"type"`
	Owner             *ref   `json:"owner"`

	expires time.Time // parsed ExpirationTimeUTC; zero when absent
}

// wirePage is the CloudAPI page envelope of a token list.
type wirePage struct {
	ResultTotal int         `json:"resultTotal"`
	PageCount   int         `json:"pageCount"`
	Page        int         `json:"page"`
	PageSize    int         `json:"pageSize"`
	Values      []wireToken `json:"values"`
}

// wireGrant is the answer of the OAuth token endpoint.
type wireGrant struct {
	AccessToken  string  `json:"access_token"`
	TokenType    string  `json:"token_type"`
	ExpiresIn    seconds `json:"expires_in"`
	RefreshToken string  `json:"refresh_token"`
}

// wireClient is the answer of the OAuth register endpoint.
type wireClient struct {
	ClientName string `json:"client_name"`
	ClientID   string `json:"client_id"`
}

// wireError is the CloudAPI error body; the OAuth endpoints may answer in RFC 6749 form instead.
type wireError struct {
	MinorErrorCode   string `json:"minorErrorCode"`
	Message          string `json:"message"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// seconds decodes a JSON number or a numeric string of whole seconds.
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	str := strings.Trim(string(b), `"`)
	if str == "null" || str == "" {
		*s = 0
		return nil
	}
	f, err := strconv.ParseFloat(str, 64)
	if err != nil || f < 0 || f > 1e9 {
		return fmt.Errorf("invalid expires_in %q", truncate(str, 32))
	}
	*s = seconds(f)
	return nil
}

// Ids from the vendor go into request paths; refuse anything that could change the path.
var (
	clientIDRe = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)
	tokenIDRe  = regexp.MustCompile(`^urn:vcloud:[a-z]+:[A-Za-z0-9._~-]{1,128}$`)
	sessionRe  = regexp.MustCompile(`^[A-Za-z0-9:._~-]{1,200}$`)
)

func decodeSession(b []byte) (wireSession, error) {
	var s wireSession
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decoding session: %w", err)
	}
	if !sessionRe.MatchString(s.ID) {
		return s, errors.New("decoding session: missing or invalid id")
	}
	return s, nil
}

func decodeToken(b []byte) (wireToken, error) {
	var t wireToken
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("decoding token: %w", err)
	}
	return t, checkToken(&t)
}

func checkToken(t *wireToken) error {
	if !tokenIDRe.MatchString(t.ID) {
		return errors.New("decoding token: missing or invalid id")
	}
	if t.ExpirationTimeUTC != "" {
		at, err := parseTime(t.ExpirationTimeUTC)
		if err != nil {
			return fmt.Errorf("decoding token %s: %w", t.ID, err)
		}
		t.expires = at
	}
	return nil
}

func decodePage(b []byte) (wirePage, error) {
	var p wirePage
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("decoding token page: %w", err)
	}
	if p.ResultTotal < 0 || p.Page < 0 || p.PageSize < 0 || p.PageCount < 0 {
		return p, errors.New("decoding token page: negative counts")
	}
	for i := range p.Values {
		if err := checkToken(&p.Values[i]); err != nil {
			return p, err
		}
	}
	return p, nil
}

func decodeGrant(b []byte) (wireGrant, error) {
	var g wireGrant
	if err := json.Unmarshal(b, &g); err != nil {
		return g, fmt.Errorf("decoding token grant: %w", err)
	}
	if g.AccessToken == "" {
		return g, errors.New("decoding token grant: no access_token")
	}
	if g.ExpiresIn <= 0 {
		return g, errors.New("decoding token grant: no expires_in")
	}
	if g.TokenType != "" && !strings.EqualFold(g.TokenType, "bearer") {
		return g, fmt.Errorf("decoding token grant: token_type %q is not Bearer", truncate(g.TokenType, 32))
	}
	return g, nil
}

func decodeClient(b []byte) (wireClient, error) {
	var c wireClient
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("decoding client registration: %w", err)
	}
	if !clientIDRe.MatchString(c.ClientID) {
		return c, errors.New("decoding client registration: missing or invalid client_id")
	}
	return c, nil
}

// decodeError reads an error body; a body that is not one gives empty code and message.
func decodeError(b []byte) (code, msg string) {
	var e wireError
	if json.Unmarshal(b, &e) != nil {
		return "", ""
	}
	code, msg = e.MinorErrorCode, e.Message
	if code == "" {
		code = e.Error
	}
	if msg == "" {
		msg = e.ErrorDescription
	}
	return truncate(clean(code), 64), truncate(clean(msg), 200)
}

// parseTime reads an ISO-8601 UTC time with optional fractional seconds and optional zone (UTC if none).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q", truncate(s, 40))
}

// nextPageLink returns the target of the rel="nextPage" entry of Link header values, or "".
func nextPageLink(values []string) string {
	for _, v := range values {
		for _, entry := range splitLink(v) {
			entry = strings.TrimSpace(entry)
			if !strings.HasPrefix(entry, "<") {
				continue
			}
			end := strings.IndexByte(entry, '>')
			if end < 0 {
				continue
			}
			target := entry[1:end]
			for _, param := range strings.Split(entry[end+1:], ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(param), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "rel") && strings.EqualFold(strings.Trim(strings.TrimSpace(v), `"`), "nextPage") {
					return target
				}
			}
		}
	}
	return ""
}

// splitLink splits a Link header value at the commas that are outside <...>.
func splitLink(v string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '<':
			depth++
		case '>':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				out = append(out, v[start:i])
				start = i + 1
			}
		}
	}
	return append(out, v[start:])
}

// clean drops control characters from vendor text before it goes into an error.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
