package rotation

import (
	"sort"
	"time"

	"github.com/tokend/tokend/store"
)

// Token states as status, the API and metrics show them.
const (
	StateCurrent  = "current"
	StateRotating = "rotating"
	StateFailed   = "failed"
	StateExpired  = "expired"
)

// States lists every state, in the order metrics export them.
var States = []string{StateCurrent, StateRotating, StateFailed, StateExpired}

// Snapshot is what status, the API and metrics know of one token. It holds no secret. Zero times mean
// unknown or none.
type Snapshot struct {
	Name                string
	Provider            string
	Kind                string
	State               string
	Generation          int64
	IssuedAt            time.Time
	ExpiresAt           time.Time
	RenewableUntil      time.Time
	CreatedAt           time.Time
	NextAction          string
	NextAt              time.Time
	ConsecutiveFailures int
	LastError           string
	LastSuccess         time.Time
	PrevRevokeAt        time.Time // zero when no previous token waits for revocation
}

// StateOf derives the display state of a stored token at now.
func StateOf(st *store.State, now time.Time) string {
	switch {
	case st.Failed:
		return StateFailed
	case st.Current != nil && !st.Current.ExpiresAt.IsZero() && !now.Before(st.Current.ExpiresAt):
		return StateExpired
	case st.Intent != nil || st.Pending != nil || st.Current == nil:
		// A transient failure (even of the first create) is retried: rotating, not failed. Failed is for
		// what needs a person (st.Failed) or a token that ran out.
		return StateRotating
	}
	return StateCurrent
}

func (e *Engine) setView(t *Token, st *store.State) {
	s := SnapshotOf(t.Config.Name, t.ProviderName, t.Config.Kind, st, e.now())
	e.mu.Lock()
	e.view[s.Name] = s
	e.mu.Unlock()
	e.observer.Changed(s.Name)
}

// SnapshotOf builds the snapshot of a stored token at now.
func SnapshotOf(name, provider, kind string, st *store.State, now time.Time) Snapshot {
	s := Snapshot{
		Name: name, Provider: provider, Kind: kind,
		State: StateOf(st, now), Generation: st.Generation,
		NextAction: st.NextAction, NextAt: st.NextAt,
		ConsecutiveFailures: st.Failures, LastError: st.LastError, LastSuccess: st.LastSuccess,
	}
	if c := st.Current; c != nil {
		s.IssuedAt, s.ExpiresAt, s.RenewableUntil, s.CreatedAt = c.IssuedAt, c.ExpiresAt, c.RenewableUntil, c.CreatedAt
	}
	if st.Previous != nil {
		s.PrevRevokeAt = st.PrevRevokeAt
	}
	return s
}

// Snapshots returns every managed token's snapshot, sorted by name. The state is re-derived at the
// engine's now, so a token that expired since its last change shows as expired.
func (e *Engine) Snapshots() []Snapshot {
	now := e.now()
	e.mu.RLock()
	out := make([]Snapshot, 0, len(e.view))
	for _, s := range e.view {
		if s.State == StateCurrent && !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
			s.State = StateExpired
		}
		out = append(out, s)
	}
	e.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Snapshot returns one token's snapshot.
func (e *Engine) Snapshot(name string) (Snapshot, bool) {
	for _, s := range e.Snapshots() {
		if s.Name == name {
			return s, true
		}
	}
	return Snapshot{}, false
}
