package httpprov_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/providers/providertest/httpprov"
)

// dropping is a vendor that reads each request and then drops the connection without answering.
func dropping(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDroppedAnswers(t *testing.T) {
	srv := dropping(t)
	p := httpprov.New(srv.URL, true, providers.Options{HTTP: srv.Client()})
	tok := providers.Token{ID: "tok-1", Secret: providers.NewSecret("s3cr3t-value"), Refresh: providers.NewSecret("r3fr3sh-value")}

	_, err := p.Create(t.Context(), providers.CreateRequest{VendorName: "a"})
	if !providers.IsAmbiguous(err) {
		t.Errorf("Create() with a dropped answer error = %v, want ambiguous (the vendor may have acted)", err)
	}
	_, err = p.(providers.Renewer).Renew(t.Context(), tok)
	if !providers.IsAmbiguous(err) {
		t.Errorf("Renew() with a dropped answer error = %v, want ambiguous", err)
	}
	_, err = p.Inspect(t.Context(), tok)
	if err == nil || providers.IsAmbiguous(err) || !providers.IsRetryable(err) {
		t.Errorf("Inspect() with a dropped answer error = %v, want retryable, not ambiguous", err)
	}
	err = p.Revoke(t.Context(), tok, providers.Token{})
	if err == nil || providers.IsAmbiguous(err) || !providers.IsRetryable(err) {
		t.Errorf("Revoke() with a dropped answer error = %v, want retryable, not ambiguous", err)
	}
	err = p.(providers.Verifier).Verify(t.Context(), tok)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("Verify() with a dropped answer error = %v, want an error without the secret", err)
	}
}

func TestRenewRules(t *testing.T) {
	t.Run("a kind that does not renew says not renewable", func(t *testing.T) {
		f := providertest.NewFake(providertest.FakeOptions{Lifetime: time.Hour})
		srv := httptest.NewServer(providertest.NewHandler(f))
		t.Cleanup(srv.Close)
		p := httpprov.New(srv.URL, true, providers.Options{HTTP: srv.Client()})
		tok, err := p.Create(t.Context(), providers.CreateRequest{VendorName: "a"})
		if err != nil {
			t.Fatal(err)
		}
		tok.Refresh = providers.NewSecret("anything")
		if _, err := p.(providers.Renewer).Renew(t.Context(), tok); !providers.IsNotRenewable(err) {
			t.Errorf("Renew() error = %v (class %v), want not renewable", err, providers.ClassOf(err))
		}
	})

	t.Run("past renewable-until says not renewable", func(t *testing.T) {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var shift atomic.Int64 // read by the vendor's goroutines
		clock := func() time.Time { return now.Add(time.Duration(shift.Load())) }
		f := providertest.NewFake(providertest.FakeOptions{Now: clock, Lifetime: time.Hour, Renewable: true, RenewableFor: time.Minute})
		srv := httptest.NewServer(providertest.NewHandler(f))
		t.Cleanup(srv.Close)
		p := httpprov.New(srv.URL, true, providers.Options{HTTP: srv.Client()})
		tok, err := p.Create(t.Context(), providers.CreateRequest{VendorName: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if !tok.RenewableUntil.Equal(now.Add(time.Minute)) || !tok.ExpiresAt.Equal(now.Add(time.Hour)) {
			t.Errorf("Create() times = expires %v, renewable until %v", tok.ExpiresAt, tok.RenewableUntil)
		}
		shift.Store(int64(2 * time.Minute))
		if _, err := p.(providers.Renewer).Renew(t.Context(), tok); !providers.IsNotRenewable(err) {
			t.Errorf("Renew() error = %v, want not renewable", err)
		}
	})

	t.Run("a replayed refresh is refused, counted and kills the token", func(t *testing.T) {
		v := newVendor(t, providertest.FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true})
		r := v.prov.(providers.Renewer)
		t0, err := v.prov.Create(t.Context(), providers.CreateRequest{VendorName: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Renew(t.Context(), t0); err != nil {
			t.Fatal(err)
		}
		_, err = r.Renew(t.Context(), t0)
		if !providers.IsUnauthorized(err) || v.fake.Stats().Replays != 1 {
			t.Errorf("Renew(replayed) error = %v, Replays = %d; want unauthorized, 1", err, v.fake.Stats().Replays)
		}
		if st, err := v.prov.Inspect(t.Context(), t0); err != nil || !st.Gone {
			t.Errorf("Inspect() after a replay = %+v, %v, want gone", st, err)
		}
	})

	t.Run("a lost renew answer is ambiguous and has rotated the refresh", func(t *testing.T) {
		v := newVendor(t, providertest.FakeOptions{Lifetime: time.Hour, Renewable: true, RotatingRefresh: true})
		t0, err := v.prov.Create(t.Context(), providers.CreateRequest{VendorName: "a"})
		if err != nil {
			t.Fatal(err)
		}
		v.control(t, "/control/malformed?op=renew&n=1")
		_, err = v.prov.(providers.Renewer).Renew(t.Context(), t0)
		if !providers.IsAmbiguous(err) {
			t.Errorf("Renew() with an unreadable answer error = %v, want ambiguous", err)
		}
		if v.fake.Stats().Renews != 1 {
			t.Errorf("Stats().Renews = %d, want 1: the vendor acted", v.fake.Stats().Renews)
		}
	})
}

func TestErrors(t *testing.T) {
	v := newVendor(t, providertest.FakeOptions{})
	tok, err := v.prov.Create(t.Context(), providers.CreateRequest{VendorName: "a"})
	if err != nil {
		t.Fatal(err)
	}
	v.control(t, "/control/fail?op=inspect&status=429&n=1")
	_, err = v.prov.Inspect(t.Context(), tok)
	var ae *providers.APIError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter != time.Second || ae.Op != "GET /tokens/"+tok.ID {
		t.Fatalf("Inspect() error = %#v, want a 429 APIError on GET /tokens/{id} with RetryAfter 1s", err)
	}
	if want := "inspecting token: GET /tokens/" + tok.ID + ": 429 Too Many Requests"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Inspect() error = %q, want it to start with %q", err, want)
	}
	v.control(t, "/control/fail?op=create&status=500&n=1")
	_, err = v.prov.Create(t.Context(), providers.CreateRequest{VendorName: "b"})
	if providers.IsAmbiguous(err) || !providers.IsRetryable(err) {
		t.Errorf("Create() answered 500 error = %v, want retryable and not ambiguous (an answer came)", err)
	}
	v.control(t, "/control/fail?op=create&status=400&n=1")
	_, err = v.prov.Create(t.Context(), providers.CreateRequest{VendorName: "b"})
	if providers.ClassOf(err) != providers.Permanent {
		t.Errorf("Create() answered 400 class = %v, want permanent", providers.ClassOf(err))
	}
}

func TestBootstrapAndOrphans(t *testing.T) {
	v := newVendor(t, providertest.FakeOptions{Lifetime: time.Hour, Renewable: true})
	secret := v.fake.IssueBootstrap()
	cur, err := v.prov.(providers.Bootstrapper).Bootstrap(t.Context(), providers.NewSecret(secret))
	if err != nil {
		t.Fatalf("Bootstrap() error = %v", err)
	}
	if cur.ID == "" || cur.Secret.Reveal() != secret || cur.Refresh.IsZero() || cur.ExpiresAt.IsZero() {
		t.Errorf("Bootstrap() = %+v, want id, the secret, a refresh credential and expiry", cur)
	}
	v.control(t, "/control/malformed?op=create&n=1")
	req := providers.CreateRequest{VendorName: "tokend-a-g2", Keep: []string{cur.ID}, StartedAt: time.Now()}
	if _, err := v.prov.Create(t.Context(), req); !providers.IsAmbiguous(err) {
		t.Fatalf("Create() with an unreadable answer error = %v, want ambiguous", err)
	}
	orphans, err := v.prov.(providers.OrphanFinder).Orphans(t.Context(), req)
	if err != nil || len(orphans) != 1 || orphans[0].Name != req.VendorName || !orphans[0].Secret.IsZero() {
		t.Fatalf("Orphans() = %+v, %v, want the one token of the lost create, without a secret", orphans, err)
	}
	if err := v.prov.Revoke(t.Context(), orphans[0], cur); err != nil {
		t.Fatalf("Revoke(orphan) error = %v", err)
	}
	if st := v.fake.Stats(); st.Live != 1 || st.Revokes != 1 {
		t.Errorf("Stats() = %+v, want only the bootstrap token left", st)
	}
}
