package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// HistoryLen is how many events a token's history keeps; older ones are trimmed away.
const HistoryLen = 50

// historyTTL bounds how long a history outlives its last event, so the log of a token removed from the
// config does not stay in Redis for ever. It is long enough for a token rotated once a year.
const historyTTL = 400 * 24 * time.Hour

// An Event is one entry of a token's history: one operation tokend did on it, with its result. It holds
// no secret: Error is the failure as the token's state records it, already scrubbed.
type Event struct {
	Time       time.Time `json:"time"`
	Operation  string    `json:"operation"`          // create, renew, recreate, verify, deliver, revoke, bootstrap
	Result     string    `json:"result"`             // "success" or the error class
	DurationMS int64     `json:"duration_ms"`        // how long the operation took
	Error      string    `json:"error,omitempty"`    // the failure, when Result is not "success"
	Instance   string    `json:"instance,omitempty"` // the instance that did it
}

// Succeeded reports whether the event records a success.
func (e Event) Succeeded() bool { return e.Result == "success" }

// historyKey is the token's log; it shares the token's hash tag, so it lives in the token's slot.
func (s *Store) historyKey(name string) string { return s.prefix + ":{" + name + "}:log" }

// AppendHistory adds events to their tokens' histories and trims each to HistoryLen, in one pipelined
// round trip. Within a token, events are given oldest first. Histories are best effort: callers log a
// failure and go on.
func (s *Store) AppendHistory(ctx context.Context, events map[string][]Event) error {
	if len(events) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for name, evs := range events {
			if len(evs) == 0 {
				continue
			}
			if len(evs) > HistoryLen {
				evs = evs[len(evs)-HistoryLen:]
			}
			vals := make([]any, 0, len(evs))
			for _, e := range evs {
				b, err := json.Marshal(e)
				if err != nil {
					return fmt.Errorf("encoding history of %s: %w", name, err)
				}
				vals = append(vals, b)
			}
			key := s.historyKey(name)
			p.LPush(ctx, key, vals...) // LPUSH a b c leaves c first: newest first
			p.LTrim(ctx, key, 0, HistoryLen-1)
			p.PExpire(ctx, key, historyTTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("appending history: %w", err)
	}
	return nil
}

// History returns up to n of the token's most recent events, newest first (n ≤ 0 or above HistoryLen means
// HistoryLen). A token without history gives an empty slice; an entry that does not decode is skipped.
func (s *Store) History(ctx context.Context, name string, n int) ([]Event, error) {
	if n <= 0 || n > HistoryLen {
		n = HistoryLen
	}
	raw, err := s.rdb.LRange(ctx, s.historyKey(name), 0, int64(n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("reading history of %s: %w", name, err)
	}
	out := make([]Event, 0, len(raw))
	for _, r := range raw {
		var e Event
		if json.Unmarshal([]byte(r), &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// LastErrors reads the last recorded failure of each named token (the scrubbed text status shows), in one
// pipelined round trip. Tokens without one are absent from the map.
func (s *Store) LastErrors(ctx context.Context, names []string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	if len(names) == 0 {
		return out, nil
	}
	cmds := make([]*redis.StringCmd, len(names))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.HGet(ctx, s.stateKey(n), fLastError)
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("reading last errors: %w", err)
	}
	for i, n := range names {
		if v, err := cmds[i].Result(); err == nil && v != "" {
			out[n] = v
		}
	}
	return out, nil
}
