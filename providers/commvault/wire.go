package commvault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The wire shapes of shared/api/commvault.md. Every decoder takes the raw body and returns a value or an
// error; none may panic on any input (each has a fuzz target).

// num is an integer the vendor may send as a JSON number (integral or not) or a numeric string.
type num int64

func (n *num) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*n = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
		if len(b) == 0 {
			*n = 0
			return nil
		}
	}
	if v, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*n = num(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || f > math.MaxInt64/2 || f < math.MinInt64/2 {
		return errors.New("not an integer") // the value is not quoted: it might be anything
	}
	*n = num(f)
	return nil
}

// tokenType is a token scope as the list and renew answers carry it: a name or cvpysdk's integer.
type tokenType string

func (t *tokenType) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*t = ""
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("tokenType: %w", err)
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	switch {
	case err == nil:
		switch n {
		case 0, 2:
			*t = typeALL
		case 1:
			*t = typeMSSCIM
		case 3:
			*t = typeCUSTOM
		case 4:
			*t = typeOneTouch
		case 5:
			*t = typeHyperscale
		default:
			*t = tokenType(strconv.Itoa(n)) // a scope newer than this code
		}
	case len(b) == 0 || b[0] != '"':
		return fmt.Errorf("tokenType: not a name or a number")
	case s == "DEFAULT":
		*t = typeALL
	default:
		*t = tokenType(s)
	}
	return nil
}

// vendorError is an error the vendor reported: {"errorMessage", "errorCode"}, flat or under "error".
type vendorError struct {
	Code    int64
	Message string
}

func (e vendorError) failed() bool { return e.Code != 0 }

// errorField reads an "error" member, which is an object {"errorMessage", "errorCode"} or, in some answers,
// a bare string.
type errorField struct{ vendorError }

func (e *errorField) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s != "" {
			e.Code, e.Message = -1, s
		}
		return nil
	}
	var v struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorCode    num    `json:"errorCode"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	e.Code, e.Message = int64(v.ErrorCode), v.ErrorMessage
	return nil
}

// envelope holds the error members every answer may carry.
type envelope struct {
	Error        *errorField `json:"error"`
	ErrorMessage string      `json:"errorMessage"`
	ErrorCode    num         `json:"errorCode"`
}

// failure returns the error the body reports, if any (a non-zero errorCode, flat or nested).
func (e envelope) failure() vendorError {
	if e.ErrorCode != 0 {
		return vendorError{Code: int64(e.ErrorCode), Message: e.ErrorMessage}
	}
	if e.Error != nil && e.Error.failed() {
		return e.Error.vendorError
	}
	return vendorError{}
}

// record is one access token as create, renew and list describe it.
type record struct {
	envelope
	AccessTokenID  num        `json:"accessTokenId"`
	TokenName      string     `json:"tokenName"`
	UserID         num        `json:"userId"`
	TokenType      *tokenType `json:"tokenType"`
	AccessToken    string     `json:"accessToken"`
	RefreshToken   string     `json:"refreshToken"`
	TokenExpiry    num        `json:"tokenExpiryTimestamp"`
	RefreshExpiry  num        `json:"refreshTokenExpiryTimestamp"`
	RenewableUntil num        `json:"renewableUntilTimestamp"`
	CreatedTime    num        `json:"createdTime"`
}

// errMalformed marks a body that is not what the vendor documents.
var errMalformed = errors.New("malformed answer")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, a...))
}

func unmarshal(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		// The json error text quotes at most a type name or offset, never the body.
		return malformed("%v", err)
	}
	return nil
}

// decodeError reads the error a failed answer carries; an unreadable body gives the zero vendorError.
func decodeError(body []byte) vendorError {
	var e envelope
	if json.Unmarshal(body, &e) != nil {
		return vendorError{}
	}
	if f := e.failure(); f.failed() {
		return f
	}
	if e.ErrorMessage != "" {
		return vendorError{Message: e.ErrorMessage}
	}
	if e.Error != nil {
		return e.Error.vendorError
	}
	return vendorError{}
}

// loginAnswer is POST /Login's 200 body (customer-managed and SaaS shapes).
type loginAnswer struct {
	envelope
	Token   string `json:"token"`
	ErrList []struct {
		ErrLogMessage string `json:"errLogMessage"`
		ErrorCode     num    `json:"errorCode"`
	} `json:"errList"`
	IsAccountLocked   bool `json:"isAccountLocked"`
	RemainingLockTime num  `json:"remainingLockTime"`
	Data              *struct {
		AuthToken string `json:"authToken"`
	} `json:"data"`
}

// decodeLogin returns the session token ("QSDK ..."), or the refusal the body reports (ok false), or an
// error for an unreadable body.
func decodeLogin(body []byte) (token string, refusal vendorError, err error) {
	var a loginAnswer
	if err := unmarshal(body, &a); err != nil {
		return "", vendorError{}, err
	}
	if len(a.ErrList) > 0 {
		e := a.ErrList[0]
		msg := e.ErrLogMessage
		if msg == "" {
			msg = "login refused"
		}
		code := int64(e.ErrorCode)
		if code == 0 {
			code = -1
		}
		return "", vendorError{Code: code, Message: msg}, nil
	}
	if f := a.failure(); f.failed() {
		return "", f, nil
	}
	if a.IsAccountLocked {
		return "", vendorError{Code: -1, Message: fmt.Sprintf("account locked for %d s", a.RemainingLockTime)}, nil
	}
	tok := strings.TrimSpace(a.Token)
	if tok == "" && a.Data != nil {
		tok = strings.TrimSpace(a.Data.AuthToken)
	}
	if tok == "" {
		return "", vendorError{}, malformed("no token in the login answer")
	}
	if !strings.HasPrefix(tok, "QSDK ") {
		tok = "QSDK " + tok
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", vendorError{}, malformed("session token is not a header value")
	}
	return tok, vendorError{}, nil
}

// listAnswer is GET /V4/AccessToken's 200 body.
type listAnswer struct {
	envelope
	Tokens []record `json:"tokens"`
}

// decodeList returns the listed tokens, or the error the body reports.
func decodeList(body []byte) ([]record, vendorError, error) {
	var a listAnswer
	if err := unmarshal(body, &a); err != nil {
		return nil, vendorError{}, err
	}
	if f := a.failure(); f.failed() {
		return nil, f, nil
	}
	if a.Tokens == nil && !bytes.Contains(body, []byte(`"tokens"`)) {
		// An answer without the member is not a list; a user without tokens gets [] or null.
		return nil, vendorError{}, malformed("no tokens member in the list answer")
	}
	for _, r := range a.Tokens {
		if r.AccessTokenID <= 0 {
			return nil, vendorError{}, malformed("listed token without accessTokenId")
		}
	}
	return a.Tokens, vendorError{}, nil
}

// createAnswer is POST /V4/AccessToken's 200 body.
type createAnswer struct {
	envelope
	TokenInfo *record `json:"tokenInfo"`
}

// decodeCreate returns the created token (with its one-time values), or the error the body reports.
func decodeCreate(body []byte) (record, vendorError, error) {
	var a createAnswer
	if err := unmarshal(body, &a); err != nil {
		return record{}, vendorError{}, err
	}
	if f := a.failure(); f.failed() {
		return record{}, f, nil
	}
	if a.TokenInfo == nil {
		return record{}, vendorError{}, malformed("no tokenInfo in the create answer")
	}
	if f := a.TokenInfo.failure(); f.failed() {
		return record{}, f, nil
	}
	r := *a.TokenInfo
	if r.AccessTokenID <= 0 || r.AccessToken == "" {
		return record{}, vendorError{}, malformed("create answer without accessTokenId or accessToken")
	}
	return r, vendorError{}, nil
}

// decodeRenew returns the renewed token (flat, not under tokenInfo), or the error the body reports.
func decodeRenew(body []byte) (record, vendorError, error) {
	var r record
	if err := unmarshal(body, &r); err != nil {
		return record{}, vendorError{}, err
	}
	if f := r.failure(); f.failed() {
		return record{}, f, nil
	}
	if r.AccessToken == "" || r.RefreshToken == "" {
		return record{}, vendorError{}, malformed("renew answer without accessToken or refreshToken")
	}
	return r, vendorError{}, nil
}

// decodeDelete returns the error DELETE's body reports; an empty body is success.
func decodeDelete(body []byte) (vendorError, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return vendorError{}, nil
	}
	var e envelope
	if err := unmarshal(body, &e); err != nil {
		return vendorError{}, err
	}
	return e.failure(), nil
}

// decodeWhoAmI checks that GET /v2/WhoAmI answered a JSON object, and returns the error it reports, if any.
func decodeWhoAmI(body []byte) (vendorError, error) {
	var e envelope
	if err := unmarshal(body, &e); err != nil {
		return vendorError{}, err
	}
	return e.failure(), nil
}
