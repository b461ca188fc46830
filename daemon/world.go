package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/rotation"
	"github.com/tokend/tokend/sinks"
)

// world is everything built from one config: swapped whole on reload, never in part.
type world struct {
	cfg      *config.Config
	tokens   map[string]*rotation.Token
	accounts map[string]account
	byProv   map[string][]string // provider name -> its token names
	sinks    []sinks.Sink
}

func (w *world) close() {
	for _, s := range w.sinks {
		_ = s.Close()
	}
}

// Validate checks cfg statically and with every vendor's hook.
func Validate(cfg *config.Config) error { return cfg.Validate(VendorChecks()) }

// LoadConfig reads and validates the config at path.
func LoadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := Validate(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// build makes providers, sinks and the engine's token table from cfg. Secrets are read here, so a
// credential file that cannot be read fails the build (and a reload keeps the old world).
func build(cfg *config.Config, rdb redis.UniversalClient, m *metrics.Metrics, logger *slog.Logger) (*world, error) {
	w := &world{cfg: cfg, tokens: map[string]*rotation.Token{}, accounts: map[string]account{}, byProv: map[string][]string{}}
	var errs []error
	for _, p := range cfg.Providers {
		client, err := httpClient(p, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		acct, err := newAccount(p, providers.Options{HTTP: client, Logger: logger.With("provider", p.Name)})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Path(), err))
			continue
		}
		w.accounts[p.Name] = acct
	}
	for _, t := range cfg.Tokens {
		acct, ok := w.accounts[t.Provider]
		if !ok {
			continue // its provider failed above
		}
		prov, err := acct.Token(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Path(), err))
			continue
		}
		rt := &rotation.Token{Config: t, Policy: cfg.Resolve(t), Provider: prov, ProviderName: t.Provider}
		if m != nil { // the skew is measured by the metrics transport
			rt.Clock = newVendorClock(t.Provider, cfg.ProviderFor(t).Type, t.Kind, m)
		}
		for i, sc := range t.Deliver {
			s, err := sinks.New(sc, rdb)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.deliver[%d]: %w", t.Path(), i, err))
				continue
			}
			rt.Sinks = append(rt.Sinks, s)
			w.sinks = append(w.sinks, s)
		}
		w.tokens[t.Name] = rt
		w.byProv[t.Provider] = append(w.byProv[t.Provider], t.Name)
	}
	if err := errors.Join(errs...); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// httpClient is the client for one provider: its CA, its timeout, and request metrics.
func httpClient(p config.Provider, m *metrics.Metrics) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if p.CAFile != "" {
		pem, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", p.Path(), err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: no PEM certificate in %s", p.Path(), p.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	timeout := 30 * time.Second
	if p.Timeout != nil {
		timeout = p.Timeout.D()
	}
	// Keep enough idle connections for the provider's concurrency: the default (2 per host) makes a burst
	// of rotations open a new connection, and a TLS handshake, for most requests.
	tr.MaxIdleConnsPerHost = 16
	if p.RateLimit != nil && p.RateLimit.Concurrency > tr.MaxIdleConnsPerHost {
		tr.MaxIdleConnsPerHost = p.RateLimit.Concurrency
	}
	// The metrics transport is inside the limiter: a request's duration, and the round trip a clock-skew
	// reading is centred on, start when the request is sent, not when it began to wait for its turn.
	var rt http.RoundTripper = tr
	if m != nil {
		rt = m.Transport(p.Name, rt)
	}
	if p.RateLimit != nil {
		rt = newLimiter(*p.RateLimit, rt)
	}
	return &http.Client{Transport: rt, Timeout: timeout}, nil
}

// CheckOnline authenticates to every provider of cfg (tokend check --online).
func CheckOnline(ctx context.Context, cfg *config.Config) error {
	w, err := build(cfg, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer w.close()
	var errs []error
	for _, p := range cfg.Providers {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := w.accounts[p.Name].Check(cctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Path(), err))
		}
		cancel()
	}
	return errors.Join(errs...)
}
