package huaweiidc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Wire types and decoders of the Identity Store bearer-token API (api/huawei-idc.md §4, §6). Each decoder
// takes the raw body and either returns a fully checked value or an error; no input panics (fuzzed).

// msTime is an epoch-millisecond JSON number. It is decoded through json.Number so that a value around
// 1.7e12 keeps its exact milliseconds (the vendor SDK's float32 loses about a minute).
type msTime struct {
	t   time.Time
	set bool
}

func (m *msTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("time is not a number")
	}
	ms, err := n.Int64()
	if err != nil {
		f, ferr := n.Float64()
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > maxMillis {
			return fmt.Errorf("time %s out of range", n)
		}
		ms = int64(f)
	}
	if ms < 0 || ms > maxMillis {
		return fmt.Errorf("time %d out of range", ms)
	}
	m.t, m.set = time.UnixMilli(ms).UTC(), true
	return nil
}

// maxMillis is the year 9999 in epoch milliseconds; anything later is garbage.
const maxMillis = 253402300799999

type wireToken struct {
	TokenID        string `json:"token_id"`
	Token          string `json:"token"` // only in the create answer
	CreationTime   msTime `json:"creation_time"`
	ExpirationTime msTime `json:"expiration_time"`
}

// listedToken is one bearer token as the list call reports it (no secret).
type listedToken struct {
	ID        string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// createdToken is the create answer: the only place the secret appears.
type createdToken struct {
	listedToken
	Secret string
}

// decodeList reads the list answer {"bearer_tokens": [...]}.
func decodeList(b []byte) ([]listedToken, error) {
	var w struct {
		BearerTokens *[]wireToken `json:"bearer_tokens"`
	}
	if err := strictJSON(b, &w); err != nil {
		return nil, err
	}
	if w.BearerTokens == nil {
		return nil, errors.New("no bearer_tokens in answer")
	}
	out := make([]listedToken, 0, len(*w.BearerTokens))
	seen := map[string]bool{}
	for i, t := range *w.BearerTokens {
		lt, err := t.listed()
		if err != nil {
			return nil, fmt.Errorf("bearer_tokens[%d]: %w", i, err)
		}
		if seen[lt.ID] {
			return nil, fmt.Errorf("bearer_tokens[%d]: duplicate token_id", i)
		}
		seen[lt.ID] = true
		out = append(out, lt)
	}
	return out, nil
}

// decodeCreate reads the create answer; the token value must be present. Errors never quote the body.
func decodeCreate(b []byte) (createdToken, error) {
	var w wireToken
	if err := strictJSON(b, &w); err != nil {
		return createdToken{}, errors.New("answer is not a bearer token object")
	}
	lt, err := w.listed()
	if err != nil {
		return createdToken{}, err
	}
	if strings.TrimSpace(w.Token) == "" {
		return createdToken{}, errors.New("answer has no token value")
	}
	return createdToken{listedToken: lt, Secret: w.Token}, nil
}

func (t wireToken) listed() (listedToken, error) {
	if t.TokenID == "" {
		return listedToken{}, errors.New("missing token_id")
	}
	if len(t.TokenID) > 128 || strings.ContainsAny(t.TokenID, "/?#% \t\r\n") {
		return listedToken{}, errors.New("token_id is not a plain id")
	}
	if !t.CreationTime.set {
		return listedToken{}, errors.New("missing creation_time")
	}
	if !t.ExpirationTime.set {
		return listedToken{}, errors.New("missing expiration_time")
	}
	return listedToken{ID: t.TokenID, CreatedAt: t.CreationTime.t, ExpiresAt: t.ExpirationTime.t}, nil
}

// vendorError is the error body of the Identity Center and API Gateway
// ({"error_code", "error_msg", "request_id", "encoded_authorization_message"}) or of the SCIM endpoint
// (RFC 7644 {"detail", "status", "scimType"}).
type vendorError struct {
	Code      string
	Message   string
	RequestID string
}

// decodeError reads an error body. Any body is accepted; what cannot be read gives an empty vendorError.
func decodeError(b []byte) vendorError {
	var w struct {
		ErrorCode string `json:"error_code"`
		ErrorMsg  string `json:"error_msg"`
		RequestID string `json:"request_id"`
		// SCIM (RFC 7644 §3.12)
		Detail   string `json:"detail"`
		ScimType string `json:"scimType"`
		// Some gateways answer {"code": ..., "message": ...}
		AltCode any    `json:"code"`
		AltMsg  string `json:"message"`
	}
	if json.Unmarshal(b, &w) != nil {
		return vendorError{}
	}
	e := vendorError{Code: w.ErrorCode, Message: w.ErrorMsg, RequestID: w.RequestID}
	if e.Code == "" {
		if s, ok := w.AltCode.(string); ok {
			e.Code = s
		}
		if e.Code == "" {
			e.Code = w.ScimType
		}
	}
	if e.Message == "" {
		e.Message = w.AltMsg
	}
	if e.Message == "" {
		e.Message = w.Detail
	}
	e.Code = clean(e.Code, 64)
	e.Message = clean(e.Message, 240)
	e.RequestID = clean(e.RequestID, 64)
	return e
}

// codeSuffix returns the numeric part of "IdentityCenter.1006" / "IIC.1006" ("1006"); the prefix differs
// between the international and the EU sites.
func codeSuffix(code string) string {
	i := strings.LastIndexByte(code, '.')
	if i < 0 {
		return ""
	}
	return code[i+1:]
}

// strictJSON decodes one JSON value and refuses trailing data, so a truncated or concatenated body is an error.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// clean makes vendor text safe for an error string: printable, one line, at most n bytes.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

// decodeTenants reads the provisioning-tenant list {"provisioning_tenants": [{"tenant_id", ...}]}.
func decodeTenants(b []byte) ([]string, error) {
	var w struct {
		Tenants *[]struct {
			TenantID     string `json:"tenant_id"`
			ScimEndpoint string `json:"scim_endpoint"`
			CreationTime msTime `json:"creation_time"`
		} `json:"provisioning_tenants"`
	}
	if err := strictJSON(b, &w); err != nil {
		return nil, err
	}
	if w.Tenants == nil {
		return nil, errors.New("no provisioning_tenants in answer")
	}
	ids := make([]string, 0, len(*w.Tenants))
	for i, t := range *w.Tenants {
		if t.TenantID == "" {
			return nil, fmt.Errorf("provisioning_tenants[%d]: missing tenant_id", i)
		}
		ids = append(ids, t.TenantID)
	}
	return ids, nil
}
