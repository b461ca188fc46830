package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/store"
)

// RedisBench holds redis-benchmark's requests per second for the commands a rotation uses, measured with as
// many clients as the bench has scheduler workers.
type RedisBench struct {
	Clients  int                `json:"clients"`
	Requests int                `json:"requests"`
	RPS      map[string]float64 `json:"rps"`      // by test name below
	Commands map[string]string  `json:"commands"` // the redis-benchmark arguments of each test
}

// Ceiling is the rotation rate Redis alone would allow for a rotation's measured round trips.
type Ceiling struct {
	RotationsPerSec float64 `json:"rotations_per_sec"`
	Share           float64 `json:"share"` // measured full-speed rate ÷ RotationsPerSec
}

// The update script's shape (fence check, then HSET): what four of a rotation's five scripts do.
const rbScript = `if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1`

func redisBenchmark(ctx context.Context, rdb *redis.Client, o opts, prefix string, log io.Writer) (*RedisBench, error) {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return nil, errors.New("redis-benchmark is not installed (Debian: apt-get install redis-tools), or pass -no-redis-benchmark")
	}
	opt, _ := redis.ParseURL(o.redisURL)
	host, port, err := net.SplitHostPort(opt.Addr)
	if err != nil {
		return nil, err
	}
	// A token hash as the store writes it (sealed current token, fence, generation, next action).
	st, err := store.New(rdb, stateKey, store.Options{Prefix: prefix, Instance: instance})
	if err != nil {
		return nil, err
	}
	l, _, err := st.Acquire(ctx, "t")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tok := &providers.Token{ID: "tok-1", Name: "tokend-bench-000001-g1",
		Secret:   providers.NewSecret("fake-secret-0123456789abcdef0123456789abcdef01234567"),
		Refresh:  providers.NewSecret("fake-refresh-0123456789abcdef0123456789abcdef0123456"),
		IssuedAt: now, ExpiresAt: now.Add(lifetime), CreatedAt: now, Attrs: map[string]string{"vendor": "fake"}}
	if err := l.Apply(ctx, new(store.Change).SetCurrent(tok, 1).SetNext("renew", now.Add(time.Hour)).SetLastSuccess(now)); err != nil {
		return nil, err
	}
	_ = l.Release(ctx)
	stateKey := prefix + ":{t}:state"
	fence, err := rdb.HGet(ctx, stateKey, "fence").Result()
	if err != nil {
		return nil, err
	}
	sha, err := rdb.ScriptLoad(ctx, rbScript).Result()
	if err != nil {
		return nil, err
	}
	due, events := prefix+":due", prefix+":events"
	tests := []struct{ name, args string }{
		{"SET", "-t set"},
		{"GET", "-t get"},
		{"EVALSHA", fmt.Sprintf("EVALSHA %s 1 %s %s next_action renew", sha, stateKey, fence)},
		{"HGETALL", "HGETALL " + stateKey},
		{"ZADD", fmt.Sprintf("-r 100000 ZADD %s __rand_int__ bench-__rand_int__", due)},
		{"ZADD+HSET pipeline", fmt.Sprintf("-r 100000 -P 2 ZADD %s __rand_int__ bench-__rand_int__", due)},
		{"ZRANGEBYSCORE", fmt.Sprintf("ZRANGEBYSCORE %s -inf +inf WITHSCORES LIMIT 0 1", due)},
		{"PUBLISH", "PUBLISH " + events + " bench-000001"},
	}
	rb := &RedisBench{Clients: o.workers, Requests: o.rbRequests, RPS: map[string]float64{}, Commands: map[string]string{}}
	for _, t := range tests {
		args := []string{"-h", host, "-p", port, "-c", strconv.Itoa(o.workers), "-n", strconv.Itoa(o.rbRequests), "--csv"}
		if opt.Password != "" {
			args = append(args, "-a", opt.Password)
		}
		if opt.DB != 0 {
			args = append(args, "--dbnum", strconv.Itoa(opt.DB))
		}
		args = append(args, strings.Fields(t.args)...)
		out, err := exec.CommandContext(ctx, bin, args...).Output()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		rps, err := csvRPS(out)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		if t.name == "ZADD+HSET pipeline" {
			rps /= 2 // -P 2 counts commands; a pipeline of two is one round trip
		}
		rb.RPS[t.name] = rps
		rb.Commands[t.name] = "redis-benchmark -c " + strconv.Itoa(o.workers) + " -n " + strconv.Itoa(o.rbRequests) + " " +
			strings.ReplaceAll(strings.ReplaceAll(t.args, sha, "<sha>"), prefix, "<prefix>")
		fmt.Fprintf(log, "redis-benchmark %s: %.0f/s\n", t.name, rps)
	}
	return rb, nil
}

// csvRPS reads the first figure of redis-benchmark --csv: "test","rps",...
func csvRPS(out []byte) (float64, error) {
	rows, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		return 0, err
	}
	for _, row := range rows {
		if len(row) >= 2 && row[0] != "test" {
			return strconv.ParseFloat(row[1], 64)
		}
	}
	return 0, fmt.Errorf("no figure in %q", out)
}

// rateOf maps a round-trip kind the hook saw to the redis-benchmark figure that stands for it.
func (rb *RedisBench) rateOf(kind string) float64 {
	switch {
	case kind == "evalsha" || kind == "eval":
		return rb.RPS["EVALSHA"]
	case kind == "hgetall":
		return rb.RPS["HGETALL"]
	case kind == "publish":
		return rb.RPS["PUBLISH"]
	case kind == "zrangebyscore":
		return rb.RPS["ZRANGEBYSCORE"]
	case kind == "zadd":
		return rb.RPS["ZADD"]
	case strings.HasPrefix(kind, "pipeline("):
		return rb.RPS["ZADD+HSET pipeline"]
	}
	return rb.RPS["GET"]
}

// ceiling is the rotation rate at which Redis, answering each of a rotation's round trips at the rate
// redis-benchmark measured for that kind of command, would be the only limit.
func (rb *RedisBench) ceiling(r Result) Ceiling {
	var secs float64
	for kind, perRot := range r.RTTByKind {
		if rate := rb.rateOf(kind); rate > 0 {
			secs += perRot / rate
		}
	}
	if secs == 0 {
		return Ceiling{}
	}
	c := Ceiling{RotationsPerSec: 1 / secs}
	c.Share = r.FullPerSec / c.RotationsPerSec
	return c
}
