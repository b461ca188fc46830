package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tokend/tokend/providers"
)

// State is everything tokend keeps about one token, as read from its hash. Secrets inside the tokens are
// decrypted; the zero State is a token tokend has never touched.
type State struct {
	Name       string
	Fence      int64 // the fencing counter; bumped by every lease acquisition
	Generation int64 // generation of Current; 0 before the first

	Current  *providers.Token
	Previous *providers.Token // superseded, revoked at PrevRevokeAt
	Pending  *providers.Token // made by the vendor, persisted, not yet delivered and promoted
	Intent   *Intent          // a rotation under way

	PrevRevokeAt time.Time

	Failed      bool   // a failure that needs a person (unauthorized, permanent)
	Failures    int    // consecutive failed attempts
	LastError   string // the last failure, free of secrets
	LastSuccess time.Time
	RetryAt     time.Time // earliest next attempt after a failure
	RenewStuck  bool      // a renew did not move expiry: recreate next time
	Gone        bool      // the vendor no longer knows Current: recreate now
	ForceRotate bool      // someone asked for a rotation (tokend rotate)
	ForceNow    bool      // ... bypassing backoff (tokend rotate --now)

	NextAction string
	NextAt     time.Time

	// Delivered maps instance ids to the generation that instance's sinks hold.
	Delivered map[string]int64
}

// Intent records a rotation between the decision and the promote, so a crash can be resumed.
type Intent struct {
	Op         string    `json:"op"` // renew | recreate | create
	Generation int64     `json:"gen"`
	VendorName string    `json:"vendor_name"`
	StartedAt  time.Time `json:"started_at"`
	Keep       []string  `json:"keep,omitempty"`
	// Lost is set when the vendor call's answer was lost: for a create, a vendor-side token may exist whose
	// secret tokend never saw; for a renew, the refresh credential may be spent.
	Lost bool `json:"lost,omitempty"`
}

// record is a token as stored: secrets sealed, times in Unix milliseconds (0 = none).
type record struct {
	ID             string            `json:"id,omitempty"`
	Name           string            `json:"name,omitempty"`
	Secret         string            `json:"secret,omitempty"`
	Refresh        string            `json:"refresh,omitempty"`
	IssuedAt       int64             `json:"issued,omitempty"`
	ExpiresAt      int64             `json:"expires,omitempty"`
	RenewableUntil int64             `json:"renewable_until,omitempty"`
	CreatedAt      int64             `json:"created,omitempty"`
	Attrs          map[string]string `json:"attrs,omitempty"`
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

func (s *Store) encodeToken(name string, t *providers.Token) (string, error) {
	sec, err := s.sealer.Seal(name, t.Secret)
	if err != nil {
		return "", err
	}
	ref, err := s.sealer.Seal(name, t.Refresh)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(record{
		ID: t.ID, Name: t.Name, Secret: sec, Refresh: ref,
		IssuedAt: ms(t.IssuedAt), ExpiresAt: ms(t.ExpiresAt), RenewableUntil: ms(t.RenewableUntil),
		CreatedAt: ms(t.CreatedAt), Attrs: t.Attrs,
	})
	return string(b), err
}

func (s *Store) decodeToken(name, v string) (*providers.Token, error) {
	if v == "" {
		return nil, nil
	}
	var r record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil, fmt.Errorf("decoding stored token: %w", err)
	}
	if s.sealer == nil { // a reader: secrets stay sealed
		return &providers.Token{ID: r.ID, Name: r.Name, IssuedAt: fromMS(r.IssuedAt), ExpiresAt: fromMS(r.ExpiresAt),
			RenewableUntil: fromMS(r.RenewableUntil), CreatedAt: fromMS(r.CreatedAt), Attrs: r.Attrs}, nil
	}
	sec, err := s.sealer.Open(name, r.Secret)
	if err != nil {
		return nil, err
	}
	ref, err := s.sealer.Open(name, r.Refresh)
	if err != nil {
		return nil, err
	}
	return &providers.Token{
		ID: r.ID, Name: r.Name, Secret: sec, Refresh: ref,
		IssuedAt: fromMS(r.IssuedAt), ExpiresAt: fromMS(r.ExpiresAt), RenewableUntil: fromMS(r.RenewableUntil),
		CreatedAt: fromMS(r.CreatedAt), Attrs: r.Attrs,
	}, nil
}

// Hash field names.
const (
	fFence       = "fence"
	fGen         = "gen"
	fCur         = "cur"
	fPrev        = "prev"
	fPend        = "pend"
	fIntent      = "intent"
	fPrevRevoke  = "prev_revoke_at"
	fFailed      = "failed"
	fFailures    = "failures"
	fLastError   = "last_error"
	fLastSuccess = "last_success"
	fRetryAt     = "retry_at"
	fRenewStuck  = "renew_stuck"
	fGone        = "gone"
	fForce       = "force"
	fNextAction  = "next_action"
	fNextAt      = "next_at"
	fDelivered   = "dlv:" // + instance id
)

func (s *Store) decodeState(name string, h map[string]string) (*State, error) {
	st := &State{Name: name, Delivered: map[string]int64{}}
	i64 := func(k string) int64 { v, _ := strconv.ParseInt(h[k], 10, 64); return v }
	st.Fence = i64(fFence)
	st.Generation = i64(fGen)
	var err error
	if st.Current, err = s.decodeToken(name, h[fCur]); err != nil {
		return nil, fmt.Errorf("reading %s current token: %w", name, err)
	}
	if st.Previous, err = s.decodeToken(name, h[fPrev]); err != nil {
		return nil, fmt.Errorf("reading %s previous token: %w", name, err)
	}
	if st.Pending, err = s.decodeToken(name, h[fPend]); err != nil {
		return nil, fmt.Errorf("reading %s pending token: %w", name, err)
	}
	if v := h[fIntent]; v != "" {
		st.Intent = new(Intent)
		if err := json.Unmarshal([]byte(v), st.Intent); err != nil {
			return nil, fmt.Errorf("reading %s intent: %w", name, err)
		}
	}
	st.PrevRevokeAt = fromMS(i64(fPrevRevoke))
	st.Failed = h[fFailed] == "1"
	st.Failures = int(i64(fFailures))
	st.LastError = h[fLastError]
	st.LastSuccess = fromMS(i64(fLastSuccess))
	st.RetryAt = fromMS(i64(fRetryAt))
	st.RenewStuck = h[fRenewStuck] == "1"
	st.Gone = h[fGone] == "1"
	st.ForceRotate = h[fForce] != ""
	st.ForceNow = h[fForce] == "now"
	st.NextAction = h[fNextAction]
	st.NextAt = fromMS(i64(fNextAt))
	for k, v := range h {
		if id, ok := cutPrefix(k, fDelivered); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			st.Delivered[id] = n
		}
	}
	return st, nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}
