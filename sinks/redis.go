package sinks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/config"
)

// redisSink SETs the formatted token under a key, for consumers on other hosts. The key has no expiry: it
// always holds the current generation.
type redisSink struct {
	key    string
	format string
	client redis.UniversalClient
	own    bool   // client was built from the sink's url: Close closes it
	addr   string // own client's address, for String
}

func newRedis(c config.RedisSink, state redis.UniversalClient) (*redisSink, error) {
	if c.Key == "" {
		return nil, errors.New("key: must be set")
	}
	switch c.Format {
	case "", "raw", "json":
	default:
		return nil, fmt.Errorf("format %q: must be raw or json", c.Format)
	}
	r := &redisSink{key: c.Key, format: c.Format}
	if c.URL == "" {
		if c.PasswordFile.IsSet() {
			return nil, errors.New("password_file: needs url (the state Redis has its own password)")
		}
		if state == nil {
			return nil, errors.New("url: no state Redis to use; set url")
		}
		r.client = state
		return r, nil
	}
	opts, err := redis.ParseURL(c.URL)
	if err != nil {
		if red, ok := redactPassword(c.URL); ok {
			// Parse errors quote the URL: report the error of the URL with its password masked instead.
			if _, rerr := redis.ParseURL(red); rerr != nil {
				err = rerr
			} else {
				err = errors.New("invalid password in the url")
			}
		}
		return nil, fmt.Errorf("url: %w", err)
	}
	if c.PasswordFile.IsSet() {
		pw, err := c.PasswordFile.Read()
		if err != nil {
			return nil, fmt.Errorf("password_file: %w", err)
		}
		opts.Password = pw.Reveal()
	}
	r.client, r.own, r.addr = redis.NewClient(opts), true, opts.Addr
	return r, nil
}

// redactPassword returns rawURL with the password of its userinfo (scheme://user:password@host) replaced by
// "xxxxx", and whether it had one. It works on the text, so it also handles a URL that does not parse.
func redactPassword(rawURL string) (string, bool) {
	i := strings.Index(rawURL, "://")
	if i < 0 {
		return rawURL, false
	}
	start := i + len("://")
	auth := rawURL[start:]
	if j := strings.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	at := strings.LastIndex(auth, "@")
	if at < 0 {
		return rawURL, false
	}
	user, _, ok := strings.Cut(auth[:at], ":")
	if !ok {
		return rawURL, false
	}
	return rawURL[:start] + user + ":xxxxx" + rawURL[start+at:], true
}

func (r *redisSink) String() string {
	if r.own {
		return "redis:" + r.key + "@" + r.addr
	}
	return "redis:" + r.key
}

func (r *redisSink) Close() error {
	if r.own {
		return r.client.Close()
	}
	return nil
}

func (r *redisSink) Deliver(ctx context.Context, d Delivery) error {
	v, err := Format(d, r.format, "")
	if err != nil {
		return redact(fmt.Errorf("setting %s: %w", r.String(), err), d.Secret.Reveal())
	}
	if err := r.client.Set(ctx, r.key, v, 0).Err(); err != nil {
		return redact(fmt.Errorf("setting %s: %w", r.String(), err), d.Secret.Reveal())
	}
	return nil
}
