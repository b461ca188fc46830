// Package store keeps tokend's state in Redis: one hash per token (its current, previous and pending
// vendor-side tokens, the intent of a rotation under way, failure bookkeeping), a sorted set of next-action
// times that the scheduler reads with one ZRANGEBYSCORE, and per-token leases with a fencing counter.
//
// Every key of one token carries the token name as a hash tag, so the Lua scripts that touch a token's hash
// and lease work on Redis Cluster. Secrets (token values, refresh tokens) are sealed with AES-256-GCM under
// the state key, with the token name as associated data; nothing else in Redis is secret.
//
// Writes to a token's state go through Lua scripts that compare the caller's fencing token with the hash's
// counter: an instance whose lease lapsed and was taken over can no longer write.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/providers"
)

// Errors the engine acts on.
var (
	// ErrLeaseHeld means another instance (or another worker of this one) holds the token's lease.
	ErrLeaseHeld = errors.New("lease held by another instance")
	// ErrFenced means the caller's lease was taken over: its write was refused.
	ErrFenced = errors.New("fencing token is stale: lease was taken over")
	// ErrNoPending means a promote found no pending token.
	ErrNoPending = errors.New("no pending token to promote")
	// ErrPreviousLive means a promote would overwrite a previous token that is not yet revoked.
	ErrPreviousLive = errors.New("previous token not yet revoked")
)

// Store is the Redis state of one tokend deployment. It is safe for concurrent use.
type Store struct {
	rdb      redis.UniversalClient
	prefix   string
	sealer   *Sealer
	instance string // this instance's id
	owner    string // instance id + "/" + a per-process nonce: the value of the leases this process holds
	leaseTTL time.Duration
	wait     *waiter // nil: never wait for replicas (a reader)
}

// Options configure a Store.
type Options struct {
	Prefix   string        // key prefix, default "tokend"
	Instance string        // this instance's id (leases name it)
	LeaseTTL time.Duration // how long a lease lives unless extended; default 30s
	// Wait says how intents, pending tokens and promotes wait for replicas (see WaitOptions); the zero
	// value detects replicas and waits for one when there is one.
	Wait WaitOptions
	// Logger gets a warning when such a write reached no replica in time; nil discards.
	Logger *slog.Logger
}

// New returns a Store on rdb. key is the 32-byte state key.
func New(rdb redis.UniversalClient, key []byte, opts Options) (*Store, error) {
	sealer, err := NewSealer(key)
	if err != nil {
		return nil, err
	}
	if opts.Prefix == "" {
		opts.Prefix = "tokend"
	}
	if opts.Instance == "" {
		return nil, errors.New("store: instance id is empty")
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 30 * time.Second
	}
	nonce := make([]byte, 6)
	_, _ = rand.Read(nonce)
	return &Store{
		rdb: rdb, prefix: opts.Prefix, sealer: sealer, instance: opts.Instance,
		owner: opts.Instance + "/" + hex.EncodeToString(nonce), leaseTTL: opts.LeaseTTL,
		wait: newWaiter(opts.Wait, opts.Logger),
	}, nil
}

// NewReader returns a Store that reads state without the state key: secrets stay sealed (their Tokens
// carry empty secrets), and it can request rotations but not take leases. tokend status, plan and rotate
// use it, so they need no access to the key.
func NewReader(rdb redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = "tokend"
	}
	return &Store{rdb: rdb, prefix: prefix, instance: "reader", owner: "reader/" + "-", leaseTTL: time.Second}
}

// Client returns the Redis client.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Instance returns this instance's id.
func (s *Store) Instance() string { return s.instance }

// LeaseTTL returns how long a lease lives unless extended.
func (s *Store) LeaseTTL() time.Duration { return s.leaseTTL }

func (s *Store) stateKey(name string) string { return s.prefix + ":{" + name + "}:state" }
func (s *Store) leaseKey(name string) string { return s.prefix + ":{" + name + "}:lease" }
func (s *Store) dueKey() string              { return s.prefix + ":due" }

// EventsChannel is the pub/sub channel on which instances announce a token's new generation.
func (s *Store) EventsChannel() string { return s.prefix + ":events" }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// PersistenceWarning returns a sentence when Redis keeps nothing on disk (no AOF, no RDB snapshots), or "" when
// it persists or will not say (managed services often refuse CONFIG GET).
func (s *Store) PersistenceWarning(ctx context.Context) string {
	aof, err := s.rdb.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		return ""
	}
	save, err := s.rdb.ConfigGet(ctx, "save").Result()
	if err != nil {
		return ""
	}
	if aof["appendonly"] == "no" && strings.TrimSpace(save["save"]) == "" {
		return "Redis persistence is off (appendonly no, no save points): a Redis restart loses every token's state; enable AOF (appendonly yes)"
	}
	if aof["appendonly"] == "no" {
		return "Redis AOF is off: a crash can lose the last rotations since the last snapshot; enable appendonly yes"
	}
	return ""
}

// Get reads one token's state. A token never seen is a zero State with no error.
func (s *Store) Get(ctx context.Context, name string) (*State, error) {
	h, err := s.rdb.HGetAll(ctx, s.stateKey(name)).Result()
	if err != nil {
		return nil, fmt.Errorf("reading state of %s: %w", name, err)
	}
	return s.decodeState(name, h)
}

// Lease is this process's hold on one token. Its Fence goes with every write.
type Lease struct {
	s     *Store
	Name  string
	Fence int64

	writes   int    // state writes through this lease (Apply, Promote)
	promoted *State // the state Promote left, as of write number promotedAt
	promAt   int
}

var acquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  if cur == ARGV[1] then return false end
  if string.sub(cur, 1, #ARGV[3]) ~= ARGV[3] then return false end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local f = redis.call('HINCRBY', KEYS[2], 'fence', 1)
return {f, redis.call('HGETALL', KEYS[2])}
`)

// Acquire takes the token's lease and returns it with the token's state read under it, in one round trip.
// A lease held by this instance's earlier process (same instance id, another process: it died) is taken
// over; a lease held by another instance or by this process gives ErrLeaseHeld.
func (s *Store) Acquire(ctx context.Context, name string) (*Lease, *State, error) {
	res, err := acquireScript.Run(ctx, s.rdb, []string{s.leaseKey(name), s.stateKey(name)},
		s.owner, s.leaseTTL.Milliseconds(), s.instance+"/").Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil, ErrLeaseHeld
	}
	if err != nil {
		return nil, nil, fmt.Errorf("acquiring lease of %s: %w", name, err)
	}
	arr, ok := res.([]any)
	if !ok || len(arr) != 2 {
		return nil, nil, fmt.Errorf("acquiring lease of %s: unexpected reply", name)
	}
	fence, _ := arr[0].(int64)
	st, err := s.decodeState(name, flatHash(arr[1]))
	if err != nil {
		// Release so another attempt (after the operator fixed the key) is not blocked for a TTL.
		_ = (&Lease{s: s, Name: name, Fence: fence}).Release(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	return &Lease{s: s, Name: name, Fence: fence}, st, nil
}

// flatHash turns a script's HGETALL reply (field, value, field, value...) into a map.
func flatHash(reply any) map[string]string {
	flat, _ := reply.([]any)
	h := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		h[k] = v
	}
	return h
}

var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// Extend renews the lease for another TTL. It returns ErrFenced when the lease is no longer this process's.
func (l *Lease) Extend(ctx context.Context) error {
	n, err := extendScript.Run(ctx, l.s.rdb, []string{l.s.leaseKey(l.Name)}, l.s.owner, l.s.leaseTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("extending lease of %s: %w", l.Name, err)
	}
	if n == 0 {
		return ErrFenced
	}
	return nil
}

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Release gives the lease up if this process still holds it.
func (l *Lease) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.s.rdb, []string{l.s.leaseKey(l.Name)}, l.s.owner).Err(); err != nil {
		return fmt.Errorf("releasing lease of %s: %w", l.Name, err)
	}
	return nil
}

var updateScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 3, 2 + 2 * n)) end
if #ARGV > 2 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 3 + 2 * n)) end
return 1
`)

// Apply writes c to the token's state atomically, if the lease's fence is still current.
func (l *Lease) Apply(ctx context.Context, c *Change) error {
	args := []any{l.Fence, 0}
	n := 0
	for _, f := range c.order {
		v := c.set[f]
		if v.token != nil {
			enc, err := l.s.encodeToken(l.Name, v.token)
			if err != nil {
				return err
			}
			v.s = enc
		}
		args = append(args, f, v.s)
		n++
	}
	args[1] = n
	for _, f := range c.del {
		args = append(args, f)
	}
	l.writes++
	ok, err := l.s.runDurable(ctx, updateScript, c.durable(), "apply", []string{l.s.stateKey(l.Name)}, args...).Int()
	if err != nil {
		return fmt.Errorf("writing state of %s: %w", l.Name, err)
	}
	if ok == 0 {
		return ErrFenced
	}
	return nil
}

var promoteScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
local pend = redis.call('HGET', KEYS[1], 'pend')
if not pend then
  if redis.call('HGET', KEYS[1], 'gen') == ARGV[2] then return 1 end
  return -1
end
if ARGV[6] == '1' then
  if redis.call('HEXISTS', KEYS[1], 'prev') == 1 then return -2 end
  local cur = redis.call('HGET', KEYS[1], 'cur')
  if cur then redis.call('HSET', KEYS[1], 'prev', cur, 'prev_revoke_at', ARGV[3]) end
end
redis.call('HSET', KEYS[1], 'cur', pend, 'gen', ARGV[2], 'last_success', ARGV[4], 'failures', '0', ARGV[5], ARGV[2])
redis.call('HDEL', KEYS[1], 'pend', 'intent', 'failed', 'last_error', 'retry_at', 'renew_stuck', 'gone', 'force')
redis.call('PUBLISH', ARGV[7], ARGV[8])
return {1, redis.call('HGETALL', KEYS[1])}
`)

// Promote makes the pending token current in one script: the current token becomes previous (with its
// revoke deadline) when keepPrevious is true, the generation becomes gen, failure bookkeeping and the intent
// are cleared, this instance is recorded as having delivered gen, and other instances are told (in the same
// round trip) so they bring their own sinks up to date. It refuses with ErrFenced when the
// lease was taken over, ErrNoPending when nothing is pending, and ErrPreviousLive when keepPrevious would
// overwrite a previous token that was not yet revoked. A promote sent again after its answer was lost
// (a failover) finds gen already current and succeeds. Intents, pending tokens and promotes wait for a
// replica when the master has one (see WaitOptions). The script answers with the state it left, which
// Promoted gives back, so that the caller need not read it again.
func (l *Lease) Promote(ctx context.Context, gen int64, keepPrevious bool, revokeAt, now time.Time) error {
	keep := "0"
	if keepPrevious {
		keep = "1"
	}
	l.writes++
	res, err := l.s.runDurable(ctx, promoteScript, true, "promote", []string{l.s.stateKey(l.Name)},
		l.Fence, strconv.FormatInt(gen, 10), ms(revokeAt), ms(now), fDelivered+l.s.instance, keep,
		l.s.EventsChannel(), l.Name).Result()
	if err != nil {
		return fmt.Errorf("promoting %s: %w", l.Name, err)
	}
	n, _ := res.(int64)
	if arr, ok := res.([]any); ok && len(arr) == 2 {
		n, _ = arr[0].(int64)
		if st, err := l.s.decodeState(l.Name, flatHash(arr[1])); err == nil {
			l.promoted, l.promAt = st, l.writes
		}
	}
	switch n {
	case 0:
		return ErrFenced
	case -1:
		return ErrNoPending
	case -2:
		return ErrPreviousLive
	}
	return nil
}

// Promoted returns the state the last Promote through this lease left in Redis, or nil when there was none
// or another write through the lease followed it. Writes that do not go through the lease (another
// instance's delivery record) may have come since; they are read at the next load.
func (l *Lease) Promoted() *State {
	if l.promoted == nil || l.promAt != l.writes {
		return nil
	}
	return l.promoted
}

// Change is a set of field writes applied together by Lease.Apply. The zero Change is empty.
type Change struct {
	set   map[string]value
	order []string
	del   []string
}

type value struct {
	s     string
	token *providers.Token
}

func (c *Change) put(f string, v value) *Change {
	if c.set == nil {
		c.set = map[string]value{}
	}
	if _, ok := c.set[f]; !ok {
		c.order = append(c.order, f)
	}
	c.set[f] = v
	return c
}

func (c *Change) str(f, v string) *Change { return c.put(f, value{s: v}) }

func (c *Change) timeField(f string, t time.Time) *Change {
	if t.IsZero() {
		return c.Del(f)
	}
	return c.str(f, strconv.FormatInt(ms(t), 10))
}

func (c *Change) flag(f string, on bool) *Change {
	if on {
		return c.str(f, "1")
	}
	return c.Del(f)
}

// Del removes fields.
func (c *Change) Del(fields ...string) *Change { c.del = append(c.del, fields...); return c }

// SetIntent records (or, with nil, clears) the rotation under way.
func (c *Change) SetIntent(i *Intent) *Change {
	if i == nil {
		return c.Del(fIntent)
	}
	b, _ := json.Marshal(i)
	return c.str(fIntent, string(b))
}

// SetPending stores (or, with nil, drops) the pending token.
func (c *Change) SetPending(t *providers.Token) *Change {
	if t == nil {
		return c.Del(fPend)
	}
	return c.put(fPend, value{token: t})
}

// SetCurrent stores the current token (used by bootstrap and by refreshes of its times).
func (c *Change) SetCurrent(t *providers.Token, gen int64) *Change {
	c.put(fCur, value{token: t})
	return c.str(fGen, strconv.FormatInt(gen, 10))
}

// DropPrevious forgets the previous token (after it was revoked).
func (c *Change) DropPrevious() *Change { return c.Del(fPrev, fPrevRevoke) }

// SetFailure records a failed attempt.
func (c *Change) SetFailure(msg string, failures int, retryAt time.Time, needsPerson bool) *Change {
	c.str(fLastError, msg)
	c.str(fFailures, strconv.Itoa(failures))
	c.timeField(fRetryAt, retryAt)
	return c.flag(fFailed, needsPerson)
}

// ClearFailure forgets failure bookkeeping after a success.
func (c *Change) ClearFailure() *Change { return c.Del(fLastError, fFailures, fRetryAt, fFailed) }

// SetRenewStuck marks that renewing no longer moves expiry.
func (c *Change) SetRenewStuck(on bool) *Change { return c.flag(fRenewStuck, on) }

// SetGone marks that the vendor no longer knows the current token.
func (c *Change) SetGone(on bool) *Change { return c.flag(fGone, on) }

// ClearForce forgets a rotation request.
func (c *Change) ClearForce() *Change { return c.Del(fForce) }

// SetLastSuccess records when the last operation succeeded.
func (c *Change) SetLastSuccess(t time.Time) *Change { return c.timeField(fLastSuccess, t) }

// SetNext records the next action and its time.
func (c *Change) SetNext(action string, at time.Time) *Change {
	c.str(fNextAction, action)
	return c.timeField(fNextAt, at)
}

// SetDelivered records the generation this instance's sinks hold.
func (c *Change) SetDelivered(instance string, gen int64) *Change {
	return c.str(fDelivered+instance, strconv.FormatInt(gen, 10))
}

// RequestSoftRotation asks for a rotation at the next opportunity (the vendor asked for one).
func (c *Change) RequestSoftRotation() *Change { return c.str(fForce, "soft") }
