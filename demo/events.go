package demo

import (
	"fmt"
	"time"

	"github.com/tokend/tokend/rotation"
)

// What kinds of change Changes reports.
const (
	Created   = "created"          // the token's first generation (created, or taken from its bootstrap file)
	Renewed   = "renewed"          // extended in place: same vendor-side token, new expiry
	Recreated = "recreated"        // replaced by a new vendor-side token; the old one waits for revocation
	Revoked   = "revoked previous" // the superseded token was revoked at the vendor
	Failed    = "attempt failed"   // one attempt failed; tokend retries with backoff
	Alarm     = "needs attention"  // the token entered state failed or expired
)

// An Event is one change of one token seen between two looks at the daemon's status.
type Event struct {
	At         time.Time
	Token      string
	What       string // one of the constants above
	Generation int64  // the token's generation after the change; for Revoked, the revoked token's
	Detail     string // the last error (Failed) or the new state (Alarm); never a secret
}

// String is the event as one line: "15:04:05  vcd-proxy-token  recreated  (generation 3)".
func (e Event) String() string {
	s := fmt.Sprintf("%s  %-20s %-17s", e.At.Format(time.TimeOnly), e.Token, e.What)
	switch e.What {
	case Failed, Alarm:
		s += " " + e.Detail
	default:
		s += fmt.Sprintf(" (generation %d)", e.Generation)
	}
	return s
}

// Changes returns what happened between two snapshot lists of the same daemon (before may be empty),
// in token order. It is a pure function: the demo calls it about once a second, and changes that
// happened in between are each reported once (two renewals in one interval read as one).
func Changes(before, after []rotation.Snapshot, now time.Time) []Event {
	prev := make(map[string]rotation.Snapshot, len(before))
	for _, s := range before {
		prev[s.Name] = s
	}
	var out []Event
	for _, a := range after {
		b := prev[a.Name]
		ev := func(what, detail string) {
			out = append(out, Event{At: now, Token: a.Name, What: what, Generation: a.Generation, Detail: detail})
		}
		if !b.PrevRevokeAt.IsZero() && !b.PrevRevokeAt.Equal(a.PrevRevokeAt) {
			// The previous token b waited to revoke was superseded by b's own generation.
			out = append(out, Event{At: now, Token: a.Name, What: Revoked, Generation: b.Generation - 1})
		}
		switch {
		case a.Generation > 0 && b.Generation == 0:
			ev(Created, "")
		case a.Generation > b.Generation:
			replaced := !a.PrevRevokeAt.IsZero() && !a.PrevRevokeAt.Equal(b.PrevRevokeAt) || !a.CreatedAt.Equal(b.CreatedAt)
			if replaced {
				ev(Recreated, "")
			} else {
				ev(Renewed, "")
			}
		}
		if a.ConsecutiveFailures > b.ConsecutiveFailures {
			ev(Failed, a.LastError)
		}
		if a.State != b.State && (a.State == rotation.StateFailed || a.State == rotation.StateExpired) {
			ev(Alarm, "state "+a.State)
		}
	}
	return out
}
