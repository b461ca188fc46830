package httpprov

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/tokend/tokend/providers"
)

// wireToken is a token as the vendor sends it.
type wireToken struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	Secret         string     `json:"secret"`
	Refresh        string     `json:"refresh"`
	CreatedAt      time.Time  `json:"created_at"`
	IssuedAt       time.Time  `json:"issued_at"`
	ExpiresAt      *time.Time `json:"expires_at"`
	RenewableUntil *time.Time `json:"renewable_until"`
}

func (w wireToken) token() providers.Token {
	return providers.Token{
		ID:             w.ID,
		Name:           w.Name,
		Secret:         providers.NewSecret(w.Secret),
		Refresh:        providers.NewSecret(w.Refresh),
		IssuedAt:       w.IssuedAt,
		ExpiresAt:      timeOf(w.ExpiresAt),
		RenewableUntil: timeOf(w.RenewableUntil),
		CreatedAt:      w.CreatedAt,
	}
}

// wireError is the vendor's error body.
type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// decodeToken decodes one token; it must have an id.
func decodeToken(body []byte) (wireToken, error) {
	var w wireToken
	if err := json.Unmarshal(body, &w); err != nil {
		return wireToken{}, errors.New("not a token object") // json errors may quote the body
	}
	if w.ID == "" {
		return wireToken{}, errors.New("token without id")
	}
	return w, nil
}

// decodeOrphans decodes {"tokens": [...]}; every token must have an id.
func decodeOrphans(body []byte) ([]wireToken, error) {
	var w struct {
		Tokens *[]wireToken `json:"tokens"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, errors.New("not a token list")
	}
	if w.Tokens == nil {
		return nil, errors.New("no tokens field")
	}
	for _, t := range *w.Tokens {
		if t.ID == "" {
			return nil, errors.New("token without id")
		}
	}
	return *w.Tokens, nil
}

// decodeError decodes {"code", "message"}.
func decodeError(body []byte) (wireError, error) {
	var w wireError
	if err := json.Unmarshal(body, &w); err != nil {
		return wireError{}, errors.New("not an error object")
	}
	return w, nil
}
