package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/config"
)

// NewRedis returns the client for the state store: standalone from the URL, Sentinel, or Cluster.
func NewRedis(c config.Redis) (redis.UniversalClient, error) {
	var password, sentinelPassword string
	if c.PasswordFile.IsSet() {
		s, err := c.PasswordFile.Read()
		if err != nil {
			return nil, fmt.Errorf("redis.password_file: %w", err)
		}
		password = s.Reveal()
	}
	var tlsConf *tls.Config
	if c.TLS != nil {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLS.InsecureSkipVerify} //nolint:gosec // operator's explicit choice
		if c.TLS.CAFile != "" {
			pem, err := os.ReadFile(c.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("redis.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("redis.tls.ca_file: no PEM certificate in %s", c.TLS.CAFile)
			}
			tlsConf.RootCAs = pool
		}
	}
	switch {
	case c.Sentinel != nil:
		if c.Sentinel.PasswordFile.IsSet() {
			s, err := c.Sentinel.PasswordFile.Read()
			if err != nil {
				return nil, fmt.Errorf("redis.sentinel.password_file: %w", err)
			}
			sentinelPassword = s.Reveal()
		}
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: c.Sentinel.Master, SentinelAddrs: c.Sentinel.Addrs, SentinelPassword: sentinelPassword,
			Username: c.Username, Password: password, DB: c.Sentinel.DB, TLSConfig: tlsConf,
		}), nil
	case c.Cluster != nil:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: c.Cluster.Addrs, Username: c.Username, Password: password, TLSConfig: tlsConf,
			// go-redis re-reads the slot map on MOVED, and otherwise only this often (default 60s): after
			// a master dies and its replica is promoted, nothing answers MOVED for the dead master's slots,
			// so without a short interval those tokens would wait up to a minute (test/redisha).
			ClusterStateReloadInterval: 2 * time.Second,
		}), nil
	}
	opt, err := redis.ParseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	if password != "" {
		opt.Password = password
	}
	if c.Username != "" {
		opt.Username = c.Username
	}
	if tlsConf != nil {
		opt.TLSConfig = tlsConf
	}
	return redis.NewClient(opt), nil
}
