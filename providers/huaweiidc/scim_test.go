package huaweiidc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/huaweiidc/huaweiidctest"
)

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	tok := e.mustCreate(providers.CreateRequest{VendorName: "tokend-huawei-scim-g1"})

	infos := e.srv.Tokens()
	if len(infos) != 1 || infos[0].ID != tok.ID {
		t.Fatalf("fake tokens = %+v, want just %s", infos, tok.ID)
	}
	// Millisecond timestamps survive exactly; expiry is creation truncated to seconds + 365 days.
	created := e.clk.Now().Truncate(time.Millisecond)
	if !tok.CreatedAt.Equal(created) || !tok.IssuedAt.Equal(created) {
		t.Errorf("CreatedAt, IssuedAt = %v, %v, want %v", tok.CreatedAt, tok.IssuedAt, created)
	}
	if want := created.Truncate(time.Second).Add(365 * 24 * time.Hour); !tok.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", tok.ExpiresAt, want)
	}
	if !tok.RenewableUntil.IsZero() || !tok.Refresh.IsZero() {
		t.Errorf("RenewableUntil, Refresh set on a kind that cannot renew")
	}
	if tok.Attrs[attrTenant] != e.srv.TenantID() {
		t.Errorf("Attrs = %v, want tenant_id", tok.Attrs)
	}
	if _, ok := any(e.tok).(providers.Renewer); ok {
		t.Errorf("SCIMToken implements Renewer; Huawei tokens cannot be renewed")
	}
	if !e.srv.Valid(tok.Secret.Reveal()) {
		t.Fatalf("fake says the new secret is not valid")
	}

	st, err := e.tok.Inspect(e.ctx(), tok)
	if err != nil || st.Gone || !st.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Fatalf("Inspect() = %+v, %v, want ExpiresAt %v", st, err, tok.ExpiresAt)
	}
	if err := e.tok.Verify(e.ctx(), tok); err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	if err := e.tok.Revoke(e.ctx(), tok, providers.Token{}); err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	if e.srv.Valid(tok.Secret.Reveal()) {
		t.Errorf("secret still valid after Revoke")
	}
	if err := e.tok.Revoke(e.ctx(), tok, providers.Token{}); err != nil {
		t.Errorf("second Revoke() error = %v, want nil (404 = done)", err)
	}
	if st, err := e.tok.Inspect(e.ctx(), tok); err != nil || !st.Gone {
		t.Errorf("Inspect(revoked) = %+v, %v, want Gone", st, err)
	}
	err = e.tok.Verify(e.ctx(), tok)
	if !providers.IsUnauthorized(err) {
		t.Errorf("Verify(revoked) = %v (class %v), want unauthorized", err, providers.ClassOf(err))
	}
	if s := e.srv.Stats(); s.Creates != 1 || s.Revokes != 1 || s.Live != 0 || s.StaleBearers != 1 {
		t.Errorf("Stats() = %+v, want 1 create, 1 revoke, 0 live, 1 stale bearer", s)
	}
}

func TestVerifyChecksTheTenantAndExpiry(t *testing.T) {
	e := newEnv(t, withFake(func(o *huaweiidctest.Options) { o.Lifetime = 30 * time.Second }))
	tok := e.mustCreate(providers.CreateRequest{})
	if err := e.tok.Verify(e.ctx(), tok); err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	other := tok
	other.Attrs = map[string]string{attrTenant: "some-other-tenant"}
	if err := e.tok.Verify(e.ctx(), other); !providers.IsUnauthorized(err) {
		t.Errorf("Verify() at another tenant = %v, want unauthorized", err)
	}
	e.clk.Advance(31 * time.Second)
	if err := e.tok.Verify(e.ctx(), tok); !providers.IsUnauthorized(err) {
		t.Errorf("Verify(expired) = %v, want unauthorized", err)
	}
	// Expired but not deleted: still listed, with its expiry.
	st, err := e.tok.Inspect(e.ctx(), tok)
	if err != nil || st.Gone || !st.ExpiresAt.Before(e.clk.Now()) {
		t.Errorf("Inspect(expired) = %+v, %v, want listed with a past expiry", st, err)
	}
	if err := e.tok.Verify(e.ctx(), providers.Token{}); err == nil {
		t.Errorf("Verify(no secret) = nil, want an error")
	}
}

func TestInspectTokenDeletedBehindTokendsBack(t *testing.T) {
	e := newEnv(t)
	tok := e.mustCreate(providers.CreateRequest{})
	if !e.srv.RemoveToken(tok.ID) {
		t.Fatal("RemoveToken() = false")
	}
	st, err := e.tok.Inspect(e.ctx(), tok)
	if err != nil || !st.Gone {
		t.Errorf("Inspect() = %+v, %v, want Gone", st, err)
	}
}

// TestCreateAtCap covers the per-tenant cap: a full tenant gets its oldest token that is not current revoked
// before the create, expired tokens count, the current one is never touched, other tenants are never touched.
func TestCreateAtCap(t *testing.T) {
	type setup struct {
		current *providers.Token
		keep    []string
		victim  string // the id that must be revoked ("" = none)
	}
	tests := []struct {
		name    string
		fake    func(*huaweiidctest.Options)
		prepare func(e *env) setup
		wantErr bool
	}{
		{
			name: "older unmanaged token goes, current stays",
			prepare: func(e *env) setup {
				old, _ := e.issue()
				e.clk.Advance(time.Hour)
				cur := e.mustCreate(providers.CreateRequest{})
				return setup{current: &cur, keep: []string{cur.ID}, victim: old.ID}
			},
		},
		{
			name: "current is the oldest: the newer non-current one goes",
			prepare: func(e *env) setup {
				cur := e.mustCreate(providers.CreateRequest{})
				e.clk.Advance(time.Hour)
				newer, _ := e.issue()
				return setup{current: &cur, keep: []string{cur.ID}, victim: newer.ID}
			},
		},
		{
			name: "previous in its grace period is the only non-current token: it goes",
			prepare: func(e *env) setup {
				prev := e.mustCreate(providers.CreateRequest{})
				e.clk.Advance(time.Hour)
				cur := e.mustCreate(providers.CreateRequest{Current: &prev, Keep: []string{prev.ID}})
				return setup{current: &cur, keep: []string{cur.ID, prev.ID}, victim: prev.ID}
			},
		},
		{
			name: "no current token: the oldest goes",
			prepare: func(e *env) setup {
				a, _ := e.issue()
				e.clk.Advance(time.Minute)
				e.issue()
				return setup{victim: a.ID}
			},
		},
		{
			name: "expired but undeleted tokens count toward the cap",
			fake: func(o *huaweiidctest.Options) { o.Lifetime = 10 * time.Minute },
			prepare: func(e *env) setup {
				expired, _ := e.issue()
				e.clk.Advance(11 * time.Minute)
				cur := e.mustCreate(providers.CreateRequest{})
				return setup{current: &cur, keep: []string{cur.ID}, victim: expired.ID}
			},
		},
		{
			name: "below the cap nothing is revoked",
			prepare: func(e *env) setup {
				cur := e.mustCreate(providers.CreateRequest{})
				return setup{current: &cur, keep: []string{cur.ID}}
			},
		},
		{
			name: "cap of one holding only the current token: error, nothing revoked",
			fake: func(o *huaweiidctest.Options) { o.MaxTokens = 1 },
			prepare: func(e *env) setup {
				cur := e.mustCreate(providers.CreateRequest{})
				return setup{current: &cur, keep: []string{cur.ID}}
			},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []envOpt
			if tt.fake != nil {
				opts = append(opts, withFake(tt.fake))
			}
			// A second tenant, full, that must never be touched.
			opts = append(opts, withFake(func(o *huaweiidctest.Options) {
				o.Tenants = []string{huaweiidctest.DefaultTenantID, "other-tenant"}
			}))
			e := newEnv(t, opts...)
			for range e.srv.MaxTokens() {
				if _, _, err := e.srv.IssueToken("other-tenant"); err != nil {
					t.Fatal(err)
				}
			}
			s := tt.prepare(e)
			before := liveIDs(e.srv)
			revokesBefore := e.srv.Stats().Revokes
			e.clk.Advance(time.Minute)

			tok, err := e.create(providers.CreateRequest{Current: s.current, Keep: s.keep})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Create() = nil error, want one")
				}
				if providers.IsRetryable(err) {
					t.Errorf("Create() error class = %v, want not retryable", providers.ClassOf(err))
				}
				if got := liveIDs(e.srv); !slices.Equal(got, before) {
					t.Errorf("tokens = %v, want unchanged %v", got, before)
				}
				if !e.srv.Valid(s.current.Secret.Reveal()) {
					t.Errorf("current token no longer valid")
				}
				return
			}
			if err != nil {
				t.Fatalf("Create() error = %v", err)
			}
			if !e.srv.Valid(tok.Secret.Reveal()) {
				t.Errorf("new token not valid")
			}
			if s.current != nil && !e.srv.Valid(s.current.Secret.Reveal()) {
				t.Errorf("current token revoked or invalid after Create")
			}
			var want []string
			for _, id := range before {
				if id != s.victim {
					want = append(want, id)
				}
			}
			want = append(want, tok.ID)
			slices.Sort(want)
			got := liveIDs(e.srv)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("tokens after Create = %v, want %v (victim %q)", got, want, s.victim)
			}
			wantRevokes := 0
			if s.victim != "" {
				wantRevokes = 1
			}
			if n := e.srv.Stats().Revokes - revokesBefore; n != wantRevokes {
				t.Errorf("revokes during Create = %d, want %d", n, wantRevokes)
			}
			if e.srv.Stats().CapRefusals != 0 {
				t.Errorf("the fake refused a create for the cap: %d", e.srv.Stats().CapRefusals)
			}
		})
	}
}

// TestRotationsWithFullTenant walks the engine's recreate loop (create, verify, deliver, promote, revoke
// previous later) on a tenant that already holds two tokens, checking the delivered token is valid at every
// step and the tenant never goes over its cap.
func TestRotationsWithFullTenant(t *testing.T) {
	e := newEnv(t)
	ti, secret := e.issue()
	e.clk.Advance(time.Hour)
	e.issue() // a second token someone made by hand: the tenant is full
	current := tokenOf(ti, secret)
	delivered := current.Secret
	var previous *providers.Token
	for gen := 1; gen <= 5; gen++ {
		e.clk.Advance(24 * time.Hour)
		keep := []string{current.ID}
		if previous != nil {
			keep = append(keep, previous.ID)
		}
		next, err := e.create(providers.CreateRequest{VendorName: fmt.Sprintf("tokend-huawei-scim-g%d", gen), Current: current, Keep: keep})
		if err != nil {
			t.Fatalf("gen %d: Create() error = %v", gen, err)
		}
		if !e.srv.Valid(delivered.Reveal()) {
			t.Fatalf("gen %d: the delivered token stopped working during Create", gen)
		}
		if err := e.tok.Verify(e.ctx(), next); err != nil {
			t.Fatalf("gen %d: Verify() error = %v", gen, err)
		}
		delivered = next.Secret // deliver, promote
		previous, current = current, &next
		if n := len(e.srv.Tokens()); n > 2 {
			t.Fatalf("gen %d: tenant holds %d tokens", gen, n)
		}
		if gen%2 == 0 { // sometimes the revoke deadline comes before the next rotation
			if err := e.tok.Revoke(e.ctx(), *previous, *current); err != nil {
				t.Fatalf("gen %d: Revoke(previous) error = %v", gen, err)
			}
			previous = nil
		}
		if !e.srv.Valid(delivered.Reveal()) {
			t.Fatalf("gen %d: delivered token invalid", gen)
		}
	}
	if s := e.srv.Stats(); s.CapRefusals != 0 || s.BadSignatures != 0 {
		t.Errorf("Stats() = %+v, want no cap refusals and no bad signatures", s)
	}
}

func TestOrphans(t *testing.T) {
	e := newEnv(t)
	before, _ := e.issue() // made long before the request: never an orphan
	e.clk.Advance(time.Hour)
	started := e.clk.Now()
	kept := e.mustCreate(providers.CreateRequest{})
	e.clk.Advance(time.Second)
	if _, _, err := e.srv.IssueToken(e.srv.TenantID()); err == nil {
		t.Fatalf("IssueToken() on a full tenant = nil error")
	}
	if !e.srv.RemoveToken(before.ID) {
		t.Fatal("RemoveToken() = false")
	}
	// A create whose answer was lost: the vendor made it, tokend never saw the secret.
	lost, _, err := e.srv.IssueToken(e.srv.TenantID())
	if err != nil {
		t.Fatal(err)
	}
	req := providers.CreateRequest{StartedAt: started, Keep: []string{kept.ID}}
	got, err := e.tok.Orphans(e.ctx(), req)
	if err != nil {
		t.Fatalf("Orphans() error = %v", err)
	}
	if len(got) != 1 || got[0].ID != lost.ID || !got[0].Secret.IsZero() {
		t.Errorf("Orphans() = %+v, want just %s", got, lost.ID)
	}
	// Slack: a vendor clock a minute behind still dates the orphan "after" StartedAt.
	req.StartedAt = lost.CreatedAt.Add(time.Minute)
	if got, _ := e.tok.Orphans(e.ctx(), req); len(got) != 1 {
		t.Errorf("Orphans() with a skewed clock = %+v, want the orphan", got)
	}
	req.StartedAt = lost.CreatedAt.Add(orphanSlack + time.Second)
	if got, _ := e.tok.Orphans(e.ctx(), req); len(got) != 0 {
		t.Errorf("Orphans() with StartedAt after the orphan = %+v, want none", got)
	}
	req.StartedAt = started
	req.Keep = nil
	req.Current = &kept
	if got, _ := e.tok.Orphans(e.ctx(), req); len(got) != 1 || got[0].ID != lost.ID {
		t.Errorf("Orphans() never returns req.Current: got %+v", got)
	}
	if _, err := e.tok.Orphans(e.ctx(), providers.CreateRequest{}); err == nil {
		t.Errorf("Orphans() without StartedAt = nil error")
	}
}

func TestLostCreateAnswer(t *testing.T) {
	tests := []struct {
		name string
		rt   func(base http.RoundTripper) http.RoundTripper
	}{
		{"connection dropped after the vendor acted", func(base http.RoundTripper) http.RoundTripper {
			return rtFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := base.RoundTrip(r)
				if err == nil && r.Method == http.MethodPost {
					resp.Body.Close()
					return nil, errors.New("read: connection reset by peer")
				}
				return resp, err
			})
		}},
		{"2xx body truncated", func(base http.RoundTripper) http.RoundTripper {
			return rtFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := base.RoundTrip(r)
				if err == nil && r.Method == http.MethodPost {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					resp.Body = io.NopCloser(strings.NewReader(string(b[:len(b)*2/3])))
					resp.ContentLength = -1
				}
				return resp, err
			})
		}},
		{"2xx body without the token", func(base http.RoundTripper) http.RoundTripper {
			return rtFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := base.RoundTrip(r)
				if err == nil && r.Method == http.MethodPost {
					resp.Body.Close()
					resp.Body = io.NopCloser(strings.NewReader(`{"token_id":"x","creation_time":1,"expiration_time":2}`))
					resp.ContentLength = -1
				}
				return resp, err
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, withTransport(tt.rt))
			started := e.clk.Now()
			_, err := e.create(providers.CreateRequest{StartedAt: started})
			if !providers.IsAmbiguous(err) {
				t.Fatalf("Create() = %v (class %v), want ambiguous", err, providers.ClassOf(err))
			}
			orphans, err := e.tok.Orphans(e.ctx(), providers.CreateRequest{StartedAt: started})
			if err != nil || len(orphans) != 1 {
				t.Fatalf("Orphans() = %+v, %v, want the token the lost create made", orphans, err)
			}
			if err := e.tok.Revoke(e.ctx(), orphans[0], providers.Token{}); err != nil {
				t.Fatalf("Revoke(orphan) error = %v", err)
			}
			if n := len(e.srv.Tokens()); n != 0 {
				t.Errorf("tokens after revoking the orphan = %d", n)
			}
		})
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		status     int
		want       providers.Class
		retryAfter time.Duration
	}{
		{400, providers.Permanent, 0},
		{401, providers.Unauthorized, 0},
		{403, providers.Unauthorized, 0},
		{404, providers.NotFound, 0},
		{409, providers.Transient, 0}, // IdentityCenter.1006: concurrency conflict, retry later
		{429, providers.RateLimited, time.Second},
		{500, providers.Transient, 0},
		{502, providers.Transient, 0},
		{503, providers.Transient, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			e := newEnv(t)
			tok := e.mustCreate(providers.CreateRequest{})
			calls := map[string]func() error{
				"inspect": func() error { _, err := e.tok.Inspect(e.ctx(), tok); return err },
				"create":  func() error { _, err := e.create(providers.CreateRequest{Current: &tok}); return err },
				"revoke":  func() error { return e.tok.Revoke(e.ctx(), tok, providers.Token{}) },
				"check":   func() error { return e.acct.Check(e.ctx()) },
			}
			for name, call := range calls {
				if name == "revoke" && tt.status == 404 {
					continue // 404 on delete is success, tested elsewhere
				}
				e.srv.FailNext(tt.status, 1)
				err := call()
				if err == nil {
					t.Errorf("%s answered %d: nil error", name, tt.status)
					continue
				}
				var ae *providers.APIError
				if !errors.As(err, &ae) || ae.Status != tt.status || ae.Code == "" || ae.Message == "" {
					t.Errorf("%s answered %d: %v, want an APIError with status, vendor code and message", name, tt.status, err)
				}
				want := tt.want
				if name == "create" && tt.status == 404 {
					want = providers.Permanent // an unknown tenant or store is a config error, not a gone token
				}
				if got := providers.ClassOf(err); got != want {
					t.Errorf("%s answered %d: class %v, want %v (%v)", name, tt.status, got, want, err)
				}
				if got := providers.RetryAfterOf(err); got != tt.retryAfter {
					t.Errorf("%s answered %d: RetryAfter %v, want %v", name, tt.status, got, tt.retryAfter)
				}
			}
		})
	}
	t.Run("malformed list answer is transient", func(t *testing.T) {
		e := newEnv(t)
		tok := e.mustCreate(providers.CreateRequest{})
		e.srv.MalformedNext(1)
		_, err := e.tok.Inspect(e.ctx(), tok)
		if providers.ClassOf(err) != providers.Transient {
			t.Errorf("Inspect() with a malformed answer = %v (class %v), want transient", err, providers.ClassOf(err))
		}
		e.srv.MalformedNext(1)
		if err := e.acct.Check(e.ctx()); providers.ClassOf(err) != providers.Transient {
			t.Errorf("Check() with a malformed answer = %v, want transient", err)
		}
	})
	t.Run("transport error on a read is transient, not ambiguous", func(t *testing.T) {
		e := newEnv(t)
		tok := e.mustCreate(providers.CreateRequest{})
		e.srv.SetFaults(huaweiidctest.Faults{DropRate: 1})
		_, err := e.tok.Inspect(e.ctx(), tok)
		if err == nil || providers.IsAmbiguous(err) || !providers.IsRetryable(err) {
			t.Errorf("Inspect() with a dropped answer = %v (class %v), want transient", err, providers.ClassOf(err))
		}
		// The fake acts before dropping: a dropped delete still deleted.
		if err := e.tok.Revoke(e.ctx(), tok, providers.Token{}); err == nil {
			t.Errorf("Revoke() with a dropped answer = nil error")
		}
		e.srv.SetFaults(huaweiidctest.Faults{})
		if n := len(e.srv.Tokens()); n != 0 {
			t.Errorf("tokens after a dropped delete = %d, want 0 (the vendor acted)", n)
		}
		if err := e.tok.Revoke(e.ctx(), tok, providers.Token{}); err != nil {
			t.Errorf("retried Revoke() = %v, want nil (404 = done)", err)
		}
	})
}

func TestSignatureRefused(t *testing.T) {
	t.Run("wrong secret key", func(t *testing.T) {
		e := newEnv(t, withSK("not-the-right-secret-key"))
		_, err := e.create(providers.CreateRequest{})
		var ae *providers.APIError
		if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != "APIGW.0301" || !providers.IsUnauthorized(err) {
			t.Fatalf("Create() with a wrong SK = %v, want 401 APIGW.0301 unauthorized", err)
		}
		if !strings.Contains(ae.Message, "verify aksk signature fail") {
			t.Errorf("message = %q, want the gateway's reason", ae.Message)
		}
		if err := e.acct.Check(e.ctx()); !providers.IsUnauthorized(err) {
			t.Errorf("Check() with a wrong SK = %v, want unauthorized", err)
		}
		if strings.Contains(err.Error(), "not-the-right-secret-key") {
			t.Errorf("error contains the SK")
		}
		if s := e.srv.Stats(); s.BadSignatures != 2 || s.Creates != 0 {
			t.Errorf("Stats() = %+v, want 2 bad signatures, no creates", s)
		}
	})
	t.Run("clock more than 15 minutes off", func(t *testing.T) {
		e := newEnv(t, withProviderClock(func(t time.Time) time.Time { return t.Add(20 * time.Minute) }))
		err := e.acct.Check(e.ctx())
		var ae *providers.APIError
		if !errors.As(err, &ae) || ae.Status != 401 || !strings.Contains(ae.Message, "signature expired") {
			t.Fatalf("Check() with a skewed clock = %v, want 401 signature expired", err)
		}
		if !strings.Contains(ae.Message, "local clock is 20m0s off") {
			t.Errorf("message = %q, want the measured skew", ae.Message)
		}
	})
	t.Run("clock 14 minutes off is accepted", func(t *testing.T) {
		e := newEnv(t, withProviderClock(func(t time.Time) time.Time { return t.Add(-14 * time.Minute) }))
		if err := e.acct.Check(e.ctx()); err != nil {
			t.Fatalf("Check() = %v", err)
		}
	})
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	if err := e.acct.Check(e.ctx()); err != nil {
		t.Fatalf("Check() = %v", err)
	}
	e.acct.storeID = "d-unknown"
	if err := e.acct.Check(e.ctx()); !providers.IsNotFound(err) {
		t.Errorf("Check() with an unknown identity store = %v, want not found", err)
	}
}

func TestCancelledWhileWaitingForTheTenantLock(t *testing.T) {
	e := newEnv(t)
	unlock, err := e.acct.lockTenant(e.ctx(), e.srv.TenantID())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(e.ctx(), 50*time.Millisecond)
	defer cancel()
	_, err = e.tok.Create(ctx, providers.CreateRequest{StartedAt: e.clk.Now()})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Create() while the tenant is locked = %v, want the context's error", err)
	}
}

func TestNoSecretInErrors(t *testing.T) {
	var errs []error
	var secrets []string
	collect := func(e *env) { secrets = append(secrets, e.owned...); secrets = append(secrets, e.srv.SecretKey()) }

	e := newEnv(t)
	tok := e.mustCreate(providers.CreateRequest{})
	for _, st := range []int{401, 403, 404, 409, 429, 500} {
		e.srv.FailNext(st, 1)
		errs = append(errs, e.tok.Verify(e.ctx(), tok))
		e.srv.FailNext(st, 1)
		_, err := e.create(providers.CreateRequest{Current: &tok})
		errs = append(errs, err)
	}
	e.srv.MalformedNext(5)
	_, err := e.tok.Inspect(e.ctx(), tok)
	errs = append(errs, err)
	collect(e)

	// Truncated create answers hold half of the new secret: the error must not quote it.
	var seen []string
	e2 := newEnv(t, withTransport(func(base http.RoundTripper) http.RoundTripper {
		return rtFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := base.RoundTrip(r)
			if err == nil && r.Method == http.MethodPost {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				seen = append(seen, string(b))
				resp.Body = io.NopCloser(strings.NewReader(strings.Replace(string(b), `"token":`, `"token":1,"x":`, 1)))
				resp.ContentLength = -1
			}
			return resp, err
		})
	}))
	_, err = e2.create(providers.CreateRequest{})
	errs = append(errs, err)
	collect(e2)
	if len(seen) != 1 {
		t.Fatalf("saw %d create answers", len(seen))
	}
	// The lost create's secret is in the body we saw; pull it out.
	if i := strings.Index(seen[0], `"token":"`); i >= 0 {
		rest := seen[0][i+len(`"token":"`):]
		secrets = append(secrets, rest[:strings.IndexByte(rest, '"')])
	} else {
		t.Fatalf("create answer without token: %s", seen[0])
	}
	e3 := newEnv(t, withSK("wrong-secret-key-value"))
	errs = append(errs, e3.acct.Check(e3.ctx()))
	secrets = append(secrets, "wrong-secret-key-value")

	n := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		n++
		for _, s := range secrets {
			if len(s) >= 6 && strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains a secret", err)
			}
		}
		if strings.Contains(fmt.Sprintf("%+v %#v", err, err), tok.Secret.Reveal()) {
			t.Errorf("formatted error contains a secret")
		}
	}
	if n < 10 {
		t.Errorf("only %d errors collected; the check proves little", n)
	}
}
