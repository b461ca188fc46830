package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Schedule records name's next action time in the due index (and in its hash, for status).
func (s *Store) Schedule(ctx context.Context, name, action string, at time.Time) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, s.dueKey(), redis.Z{Score: float64(at.UnixMilli()), Member: name})
		p.HSet(ctx, s.stateKey(name), fNextAction, action, fNextAt, at.UnixMilli())
		return nil
	})
	if err != nil {
		return fmt.Errorf("scheduling %s: %w", name, err)
	}
	return nil
}

// Planned is one token's next action, for ScheduleMany.
type Planned struct {
	Name   string
	Action string
	At     time.Time
}

// ScheduleMany records the next action of many tokens, pipelined 1,000 to a round trip (start-up and
// reload schedule every token at once).
func (s *Store) ScheduleMany(ctx context.Context, items []Planned) error {
	const batch = 1000
	for i := 0; i < len(items); i += batch {
		chunk := items[i:min(i+batch, len(items))]
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			zs := make([]redis.Z, len(chunk))
			for j, it := range chunk {
				zs[j] = redis.Z{Score: float64(it.At.UnixMilli()), Member: it.Name}
				p.HSet(ctx, s.stateKey(it.Name), fNextAction, it.Action, fNextAt, it.At.UnixMilli())
			}
			p.ZAdd(ctx, s.dueKey(), zs...)
			return nil
		})
		if err != nil {
			return fmt.Errorf("scheduling %d tokens: %w", len(items), err)
		}
	}
	return nil
}

// ScheduleAndRelease records the token's next action and gives its lease up, in one round trip (the end
// of every Work call).
func (l *Lease) ScheduleAndRelease(ctx context.Context, action string, at time.Time) error {
	s := l.s
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, s.dueKey(), redis.Z{Score: float64(at.UnixMilli()), Member: l.Name})
		p.HSet(ctx, s.stateKey(l.Name), fNextAction, action, fNextAt, at.UnixMilli())
		// EVAL, not EVALSHA: a pipeline cannot fall back when the script cache is empty.
		releaseScript.Eval(ctx, p, []string{s.leaseKey(l.Name)}, s.owner)
		return nil
	})
	if err != nil {
		return fmt.Errorf("scheduling %s: %w", l.Name, err)
	}
	return nil
}

// Unschedule removes names from the due index (tokens removed from the config).
func (s *Store) Unschedule(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	members := make([]any, len(names))
	for i, n := range names {
		members[i] = n
	}
	return s.rdb.ZRem(ctx, s.dueKey(), members...).Err()
}

// DueItem is one entry of the due index.
type DueItem struct {
	Name string
	At   time.Time
}

// Due returns the tokens whose next action is at or before now, earliest first, at most limit.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]DueItem, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.dueKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("reading due tokens: %w", err)
	}
	out := make([]DueItem, 0, len(zs))
	for _, z := range zs {
		if n, ok := z.Member.(string); ok {
			out = append(out, DueItem{Name: n, At: time.UnixMilli(int64(z.Score))})
		}
	}
	return out, nil
}

// DueTimes returns the due index as a map (for start-up and tests).
func (s *Store) DueTimes(ctx context.Context) (map[string]time.Time, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.dueKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("reading due index: %w", err)
	}
	out := make(map[string]time.Time, len(zs))
	for _, z := range zs {
		if n, ok := z.Member.(string); ok {
			out[n] = time.UnixMilli(int64(z.Score))
		}
	}
	return out, nil
}

// RequestRotation asks for name to be rotated at the next opportunity, or, with bypassBackoff, at once
// even while a failure's backoff runs. It needs no lease: it sets a flag the lease holder reads, and
// moves the token to the front of the due index.
func (s *Store) RequestRotation(ctx context.Context, name string, now time.Time, bypassBackoff bool) error {
	v := "soft"
	if bypassBackoff {
		v = "now"
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.stateKey(name), fForce, v)
		p.ZAdd(ctx, s.dueKey(), redis.Z{Score: float64(now.UnixMilli()), Member: name})
		return nil
	})
	if err != nil {
		return fmt.Errorf("requesting rotation of %s: %w", name, err)
	}
	return s.Publish(ctx, name)
}

// MarkDelivered records that this instance's sinks hold generation gen of name. Only this instance writes
// its own field, so no lease is needed.
func (s *Store) MarkDelivered(ctx context.Context, name string, gen int64) error {
	return s.rdb.HSet(ctx, s.stateKey(name), fDelivered+s.instance, gen).Err()
}

// Publish tells other instances that name changed.
func (s *Store) Publish(ctx context.Context, name string) error {
	return s.rdb.Publish(ctx, s.EventsChannel(), name).Err()
}

// Subscribe returns a subscription to token-change announcements; the payload is the token name.
func (s *Store) Subscribe(ctx context.Context) *redis.PubSub {
	return s.rdb.Subscribe(ctx, s.EventsChannel())
}

// NextAfter returns the earliest next-action time later than now in the due index, or false when none.
func (s *Store) NextAfter(ctx context.Context, now time.Time) (time.Time, bool, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.dueKey(), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now.UnixMilli(), 10), Max: "+inf", Count: 1,
	}).Result()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reading due index: %w", err)
	}
	if len(zs) == 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(int64(zs[0].Score)), true, nil
}
