package vcd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/vcd/vcdtest"
)

// clock is a settable clock shared by the fake and the provider.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// secrets collects issued secrets and errors and checks that no error contains a secret.
type secrets struct {
	vals []string
	errs []error
}

func (s *secrets) tok(t providers.Token) {
	s.vals = append(s.vals, t.Secret.Reveal(), t.Refresh.Reveal())
}

func (s *secrets) err(err error) error {
	if err != nil {
		s.errs = append(s.errs, err)
	}
	return err
}

func (s *secrets) check(t *testing.T) {
	t.Helper()
	if len(s.errs) == 0 {
		t.Fatal("no errors collected: the leak check proves nothing")
	}
	for _, e := range s.errs {
		for _, v := range s.vals {
			if len(v) >= 6 && strings.Contains(e.Error()+fmt.Sprintf("%+v %#v", e, e), v) {
				t.Errorf("error %q contains an issued secret", e)
			}
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func req(name string, keep ...string) providers.CreateRequest {
	return providers.CreateRequest{VendorName: name, Keep: keep, StartedAt: time.Now()}
}

func TestAccessTokenLifecycle(t *testing.T) {
	clk := newClock()
	e := tenant(t, vcdtest.Options{Now: clk.Now, AccessTokenLifetime: 90 * time.Second})
	e.acc.now = clk.Now
	p := e.kind(t, KindAccessToken)

	tok, err := p.Create(ctx(t), req("tokend-vcd-a-g1"))
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	if !strings.HasPrefix(tok.ID, "urn:vcloud:token:") || tok.Name != "tokend-vcd-a-g1" {
		t.Errorf("Create() = id %q name %q, want a token urn named tokend-vcd-a-g1", tok.ID, tok.Name)
	}
	if want := clk.Now().Add(90 * time.Second); !tok.ExpiresAt.Equal(want) {
		t.Errorf("Create() ExpiresAt = %v, want grant time + expires_in = %v", tok.ExpiresAt, want)
	}
	if !e.valid(tok.Secret) || !e.valid(tok.Refresh) {
		t.Fatalf("Valid(Secret)/Valid(Refresh) = %v/%v, want true/true", e.valid(tok.Secret), e.valid(tok.Refresh))
	}
	infos := e.srv.Tokens()
	if len(infos) != 1 || infos[0].ID != tok.ID || infos[0].Type != "REFRESH" {
		t.Fatalf("fake tokens = %+v, want the one REFRESH token %s", infos, tok.ID)
	}

	clk.Add(60 * time.Second)
	st, err := p.Inspect(ctx(t), tok)
	if err != nil || st.Gone || st.RotateNow || !st.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Fatalf("Inspect() = %+v, %v; want ExpiresAt %v", st, err, tok.ExpiresAt)
	}
	r, err := p.(providers.Renewer).Renew(ctx(t), tok)
	if err != nil {
		t.Fatalf("Renew() error = %v", err)
	}
	if r.ID != tok.ID || r.Secret.Reveal() == tok.Secret.Reveal() || r.Refresh.Reveal() != tok.Refresh.Reveal() {
		t.Errorf("Renew() = id %q, new secret %v, same refresh %v; want same id, new JWT, same API token",
			r.ID, r.Secret.Reveal() != tok.Secret.Reveal(), r.Refresh.Reveal() == tok.Refresh.Reveal())
	}
	if want := clk.Now().Add(90 * time.Second); !r.ExpiresAt.Equal(want) || !r.CreatedAt.Equal(tok.CreatedAt) {
		t.Errorf("Renew() ExpiresAt = %v CreatedAt = %v, want %v and %v", r.ExpiresAt, r.CreatedAt, want, tok.CreatedAt)
	}
	if err := p.(providers.Verifier).Verify(ctx(t), r); err != nil {
		t.Errorf("Verify(renewed) error = %v", err)
	}

	clk.Add(31 * time.Second) // the first JWT is past its 90 s
	if e.valid(tok.Secret) {
		t.Errorf("Valid(first JWT) = true after its expires_in")
	}
	if err := p.(providers.Verifier).Verify(ctx(t), tok); !providers.IsUnauthorized(err) {
		t.Errorf("Verify(expired JWT) = %v, want unauthorized", err)
	}
	if st, err := p.Inspect(ctx(t), tok); err != nil || st.Gone || !st.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Errorf("Inspect(expired JWT) = %+v, %v; want its expiry and no error", st, err)
	}

	if err := p.Revoke(ctx(t), r, providers.Token{}); err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	if e.valid(r.Secret) || e.valid(r.Refresh) {
		t.Errorf("after Revoke: Valid(JWT) = %v, Valid(API token) = %v; want both false (delete ends sessions)", e.valid(r.Secret), e.valid(r.Refresh))
	}
	if _, err := p.(providers.Renewer).Renew(ctx(t), r); !providers.IsUnauthorized(err) {
		t.Errorf("Renew(revoked) = %v, want unauthorized (invalid_grant)", err)
	}
	if st := e.srv.Stats(); st.Creates != 1 || st.Renews != 2 || st.Revokes != 1 || st.Live != 0 {
		t.Errorf("Stats() = %+v, want 1 create, 2 grants, 1 revoke, 0 live", st)
	}
}

func TestAccessTokenRotatingRefresh(t *testing.T) {
	var leak secrets
	e := tenant(t, vcdtest.Options{RequireRotation: true})
	p := e.kind(t, KindAccessToken)
	boot := e.srv.IssueBootstrap()
	leak.vals = append(leak.vals, boot)

	cur, err := p.(providers.Bootstrapper).Bootstrap(ctx(t), providers.NewSecret(boot))
	if err != nil {
		t.Fatalf("Bootstrap() error = %v", err)
	}
	leak.tok(cur)
	if cur.Refresh.Reveal() == boot || e.srv.Valid(boot) || !e.valid(cur.Refresh) {
		t.Fatalf("Bootstrap() did not take the rotated refresh token: bootstrap still valid = %v", e.srv.Valid(boot))
	}
	if cur.Attrs[attrRequireRotation] != "true" || cur.Attrs[attrSession] == "" || cur.ID == "" {
		t.Errorf("Bootstrap() Attrs = %v, ID = %q; want require_rotation, session id and the token id", cur.Attrs, cur.ID)
	}
	rn := p.(providers.Renewer)
	next, err := rn.Renew(ctx(t), cur)
	if err != nil {
		t.Fatalf("Renew() error = %v", err)
	}
	leak.tok(next)
	if next.Refresh.Reveal() == cur.Refresh.Reveal() || e.valid(cur.Refresh) || !e.valid(next.Refresh) {
		t.Fatalf("Renew() did not replace the rotated refresh token")
	}
	if e.srv.Stats().Replays != 0 {
		t.Fatalf("Stats().Replays = %d before any replay", e.srv.Stats().Replays)
	}
	// Presenting the rotated-out value again is a replay: refused and counted.
	_, err = rn.Renew(ctx(t), cur)
	leak.err(err)
	if !providers.IsUnauthorized(err) {
		t.Errorf("Renew(replayed refresh) = %v, want unauthorized", err)
	}
	var ae *providers.APIError
	if !errors.As(err, &ae) || ae.Code != "invalid_grant" {
		t.Errorf("Renew(replayed refresh) = %v, want code invalid_grant", err)
	}
	if got := e.srv.Stats().Replays; got != 1 {
		t.Errorf("Stats().Replays = %d, want 1", got)
	}
	// The replay did not hurt the live chain.
	if _, err := rn.Renew(ctx(t), next); err != nil {
		t.Errorf("Renew(current) after a replay: %v", err)
	}
	leak.check(t)
}

// A renew whose answer is lost leaves a dead refresh token; Create mints a new API token with the password
// session and the dead one is revocable by its different id (DESIGN.md §11 "Lost answers").
func TestAccessTokenLostRenewRecoveredByCreate(t *testing.T) {
	var leak secrets
	e := tenant(t, vcdtest.Options{RequireRotation: true})
	p := e.kind(t, KindAccessToken)
	rn := p.(providers.Renewer)
	cur, err := p.Create(ctx(t), req("tokend-vcd-a-g1"))
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	leak.tok(cur)
	e.srv.MalformedNext(1)
	_, err = rn.Renew(ctx(t), cur)
	leak.err(err)
	if !providers.IsAmbiguous(err) {
		t.Fatalf("Renew() with an unreadable answer = %v, want ambiguous (lost)", err)
	}
	if e.valid(cur.Refresh) {
		t.Fatalf("the fake did not rotate the refresh token behind the lost answer")
	}
	_, err = rn.Renew(ctx(t), cur)
	leak.err(err)
	if !providers.IsUnauthorized(err) {
		t.Fatalf("Renew(dead refresh) = %v, want unauthorized", err)
	}
	fresh, err := p.Create(ctx(t), req("tokend-vcd-a-g2", cur.ID))
	if err != nil {
		t.Fatalf("Create() recovery error = %v", err)
	}
	leak.tok(fresh)
	if fresh.ID == cur.ID || !e.valid(fresh.Secret) {
		t.Fatalf("recovery Create() id %q (old %q), valid %v", fresh.ID, cur.ID, e.valid(fresh.Secret))
	}
	if err := p.Revoke(ctx(t), cur, fresh); err != nil {
		t.Fatalf("Revoke(dead) error = %v", err)
	}
	if err := p.Revoke(ctx(t), fresh, fresh); err == nil {
		t.Errorf("Revoke(current, current) = nil, want a refusal")
	}
	if !e.valid(fresh.Secret) || len(e.srv.Tokens()) != 1 {
		t.Errorf("after recovery: Valid(new) = %v, tokens = %d; want true, 1", e.valid(fresh.Secret), len(e.srv.Tokens()))
	}
	leak.check(t)
}

func TestAccessTokenWithoutLogin(t *testing.T) {
	e := setup(t, vcdtest.Options{}, "", "acme", "")
	p := e.kind(t, KindAccessToken)
	cur, err := p.(providers.Bootstrapper).Bootstrap(ctx(t), providers.NewSecret(e.srv.IssueBootstrap()))
	if err != nil {
		t.Fatalf("Bootstrap() error = %v", err)
	}
	if _, err := p.(providers.Renewer).Renew(ctx(t), cur); err != nil {
		t.Errorf("Renew() error = %v", err)
	}
	if st, err := p.Inspect(ctx(t), cur); err != nil || st.Gone {
		t.Errorf("Inspect() = %+v, %v", st, err)
	}
	if _, err := p.Create(ctx(t), req("tokend-x-g2")); err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Errorf("Create() without a login = %v, want an error naming password_file", err)
	}
	if err := e.acc.Check(ctx(t)); err != nil {
		t.Errorf("Check() without a login = %v, want nil (GET /api/versions)", err)
	}
	// The API token is deleted behind tokend's back: its sessions end, and without a login that is
	// reported as unauthorized (the refresh grant will say invalid_grant).
	e.srv.DeleteToken(cur.ID)
	if _, err := p.Inspect(ctx(t), cur); !providers.IsUnauthorized(err) {
		t.Errorf("Inspect(deleted) without login = %v, want unauthorized", err)
	}
}

func TestInspectGone(t *testing.T) {
	for _, kind := range []string{KindAccessToken, KindAPIToken, KindProxyToken} {
		t.Run(kind, func(t *testing.T) {
			e := tenant(t, vcdtest.Options{})
			p := e.kind(t, kind)
			tok, err := p.Create(ctx(t), req("tokend-g-g1"))
			if err != nil {
				t.Fatalf("Create() error = %v", err)
			}
			if !e.srv.DeleteToken(tok.ID) {
				t.Fatalf("fake does not know %s", tok.ID)
			}
			st, err := p.Inspect(ctx(t), tok)
			if err != nil || !st.Gone {
				t.Errorf("Inspect(deleted behind our back) = %+v, %v; want Gone", st, err)
			}
			if err := p.Revoke(ctx(t), tok, providers.Token{}); err != nil {
				t.Errorf("Revoke(gone) = %v, want nil", err)
			}
		})
	}
}

func TestAPIToken(t *testing.T) {
	e := tenant(t, vcdtest.Options{})
	p := e.kind(t, KindAPIToken)
	if _, ok := p.(providers.Renewer); ok {
		t.Fatal("api_token implements Renewer; API tokens never expire and are recreated")
	}
	tok, err := p.Create(ctx(t), req("tokend-api-g1"))
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	if !tok.ExpiresAt.IsZero() || !tok.Refresh.IsZero() || !e.valid(tok.Secret) {
		t.Errorf("Create() = expires %v, refresh set %v, valid %v; want never, no refresh, valid", tok.ExpiresAt, !tok.Refresh.IsZero(), e.valid(tok.Secret))
	}
	v := p.(providers.Verifier)
	if err := v.Verify(ctx(t), tok); err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	if !e.valid(tok.Secret) {
		t.Fatal("Verify spent a non-rotating API token")
	}
	// A token that rotates on use cannot be handed to consumers; Verify says so without spending it.
	e.srv.SetRequireRotation(tok.ID, true)
	err = v.Verify(ctx(t), tok)
	if err == nil || providers.ClassOf(err) != providers.Permanent || !strings.Contains(err.Error(), "requireRotation") {
		t.Errorf("Verify(rotating) = %v, want a permanent error naming requireRotation", err)
	}
	if !e.valid(tok.Secret) || e.srv.Stats().Replays != 0 {
		t.Errorf("Verify(rotating) spent the token")
	}
	// Bootstrap from a token made in the UI finds its id.
	id, secret, err := e.srv.IssueAPIToken("alice", "acme", "made-by-hand")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.(providers.Bootstrapper).Bootstrap(ctx(t), providers.NewSecret(secret))
	if err != nil || b.ID != id || b.Name != "made-by-hand" || b.Secret.Reveal() != secret {
		t.Errorf("Bootstrap() = id %q name %q same secret %v, %v; want %q", b.ID, b.Name, b.Secret.Reveal() == secret, err, id)
	}
}

func TestProxyToken(t *testing.T) {
	clk := newClock()
	e := tenant(t, vcdtest.Options{Now: clk.Now, ProxyTokenLifetime: 10 * time.Second})
	p := e.kind(t, KindProxyToken)
	for _, iface := range []bool{isRenewer(p), isBootstrapper(p)} {
		if iface {
			t.Fatal("proxy_token implements Renewer or Bootstrapper; it is recreate-only without a bootstrap file")
		}
	}
	tok, err := p.Create(ctx(t), req("tokend-proxy-g1"))
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	if want := clk.Now().Add(10 * time.Second); !tok.ExpiresAt.Equal(want) {
		t.Errorf("Create() ExpiresAt = %v, want expirationTimeUtc %v", tok.ExpiresAt, want)
	}
	st, err := p.Inspect(ctx(t), tok)
	if err != nil || !st.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Errorf("Inspect() = %+v, %v", st, err)
	}
	clk.Add(11 * time.Second)
	if e.valid(tok.Secret) {
		t.Errorf("Valid(expired proxy token) = true")
	}
}

func isRenewer(p providers.Provider) bool      { _, ok := p.(providers.Renewer); return ok }
func isBootstrapper(p providers.Provider) bool { _, ok := p.(providers.Bootstrapper); return ok }

func TestOrphans(t *testing.T) {
	e := tenant(t, vcdtest.Options{})
	api, proxy := e.kind(t, KindAPIToken), e.kind(t, KindProxyToken)
	kept, err := api.Create(ctx(t), req("tokend-o-g1"))
	if err != nil {
		t.Fatal(err)
	}
	lost, err := api.Create(ctx(t), req("tokend-o-g1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proxy.Create(ctx(t), req("tokend-o-g1")); err != nil { // same name, other type
		t.Fatal(err)
	}
	if _, _, err := e.srv.IssueAPIToken("alice", "acme", "tokend-o-g10"); err != nil { // a name with our prefix
		t.Fatal(err)
	}
	got, err := api.(providers.OrphanFinder).Orphans(ctx(t), req("tokend-o-g1", kept.ID))
	if err != nil {
		t.Fatalf("Orphans() error = %v", err)
	}
	if len(got) != 1 || got[0].ID != lost.ID || !got[0].Secret.IsZero() {
		t.Errorf("Orphans() = %+v, want only %s", got, lost.ID)
	}
}

// A create whose register answer is lost leaves a client without a fetched token; Create says the vendor
// may have acted, and the orphan search finds the client by its name.
func TestOrphanFromInterruptedCreate(t *testing.T) {
	for _, kind := range []string{KindAccessToken, KindAPIToken, KindProxyToken} {
		t.Run(kind, func(t *testing.T) {
			e := tenant(t, vcdtest.Options{})
			p := e.kind(t, kind)
			if _, err := e.acc.login(ctx(t)); err != nil {
				t.Fatal(err)
			}
			e.srv.MalformedNext(1)
			_, err := p.Create(ctx(t), req("tokend-m-g1"))
			if !providers.IsAmbiguous(err) {
				t.Fatalf("Create() with a lost answer = %v, want ambiguous", err)
			}
			got, err := p.(providers.OrphanFinder).Orphans(ctx(t), req("tokend-m-g1"))
			if err != nil || len(got) != 1 || got[0].Name != "tokend-m-g1" {
				t.Fatalf("Orphans() = %+v, %v; want the token the lost create made", got, err)
			}
			if err := p.Revoke(ctx(t), got[0], providers.Token{}); err != nil || len(e.srv.Tokens()) != 0 {
				t.Errorf("Revoke(orphan) = %v, fake tokens %d", err, len(e.srv.Tokens()))
			}
		})
	}
}

// A failure after the client was registered (the one-time grant) is Lost whatever its status: the vendor
// made a token whose secret we do not hold.
func TestMintFailureAfterRegisterIsLost(t *testing.T) {
	e := tenant(t, vcdtest.Options{MaxTokensPerUser: 1})
	p := e.kind(t, KindAPIToken)
	if _, err := p.Create(ctx(t), req("tokend-c-g1")); err != nil {
		t.Fatal(err)
	}
	// The cap refuses the register itself: nothing was made, so the error is not ambiguous.
	_, err := p.Create(ctx(t), req("tokend-c-g2"))
	if err == nil || providers.IsAmbiguous(err) || providers.ClassOf(err) != providers.Permanent {
		t.Errorf("Create() over the cap = %v (class %v), want a permanent, unambiguous error", err, providers.ClassOf(err))
	}
	if got := lostIfAPI(&providers.APIError{Op: "POST /oauth/tenant/acme/token", Status: 503, Class: providers.Transient}); !providers.IsAmbiguous(got) {
		t.Errorf("lostIfAPI(503) is not ambiguous")
	}
}

func TestPasswordSession(t *testing.T) {
	e := tenant(t, vcdtest.Options{})
	p := e.kind(t, KindProxyToken)
	tok, err := p.Create(ctx(t), req("tokend-s-g1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Inspect(ctx(t), tok); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Stats().Logins; got != 1 {
		t.Errorf("Logins = %d after two calls, want 1 (the session is shared)", got)
	}
	e.srv.ExpireSessions()
	if _, err := p.Inspect(ctx(t), tok); err != nil {
		t.Fatalf("Inspect() after the session lapsed: %v, want a re-login", err)
	}
	if got := e.srv.Stats().Logins; got != 2 {
		t.Errorf("Logins = %d, want 2 after the session lapsed", got)
	}
	if err := e.acc.Check(ctx(t)); err != nil {
		t.Errorf("Check() = %v", err)
	}
}

func TestLoginErrors(t *testing.T) {
	tests := []struct {
		name, user, org, password, version string
		class                              providers.Class
	}{
		{"wrong password", "alice", "acme", "nope", "39.0", providers.Unauthorized},
		{"tenant user at the provider endpoint", "alice", "System", "alice-password", "39.0", providers.Unauthorized},
		{"unsupported api version", "alice", "acme", "alice-password", "40.0", providers.Permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, vcdtest.Options{}, tt.user, tt.org, tt.password)
			e.acc.version = tt.version
			err := e.acc.Check(ctx(t))
			if err == nil || providers.ClassOf(err) != tt.class {
				t.Errorf("Check() = %v (class %v), want class %v", err, providers.ClassOf(err), tt.class)
			}
			if strings.Contains(err.Error(), tt.password) {
				t.Errorf("Check() error contains the password")
			}
		})
	}
}

func TestListPaging(t *testing.T) {
	for _, omit := range []bool{false, true} {
		t.Run(fmt.Sprintf("omit nextPage %v", omit), func(t *testing.T) {
			e := tenant(t, vcdtest.Options{OmitNextPage: omit})
			for i := range 300 {
				if _, _, err := e.srv.IssueAPIToken("alice", "acme", fmt.Sprintf("t-%03d", i)); err != nil {
					t.Fatal(err)
				}
			}
			before := e.srv.Stats().Requests
			got, err := e.acc.listTokens(ctx(t), "type==REFRESH")
			if err != nil {
				t.Fatalf("listTokens() error = %v", err)
			}
			if len(got) != 300 {
				t.Fatalf("listTokens() = %d tokens, want 300", len(got))
			}
			seen := map[string]bool{}
			for _, tk := range got {
				seen[tk.ID] = true
			}
			if len(seen) != 300 {
				t.Errorf("listTokens() returned %d distinct ids, want 300", len(seen))
			}
			if n := e.srv.Stats().Requests - before; n != 4 { // login + 3 pages of 128
				t.Errorf("listTokens() made %d requests, want 4", n)
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		status int
		body   string
		class  providers.Class
		code   string
	}{
		{400, `{"minorErrorCode":"invalid_grant","message":"Invalid refresh token"}`, providers.Unauthorized, "invalid_grant"},
		{400, `{"error":"invalid_grant","error_description":"expired"}`, providers.Unauthorized, "invalid_grant"},
		{400, `{"minorErrorCode":"BAD_REQUEST","message":"x"}`, providers.Permanent, "BAD_REQUEST"},
		{401, ``, providers.Unauthorized, ""},
		{403, `{"minorErrorCode":"ACCESS_TO_RESOURCE_IS_FORBIDDEN"}`, providers.Unauthorized, "ACCESS_TO_RESOURCE_IS_FORBIDDEN"},
		{404, `<html>not json</html>`, providers.NotFound, ""},
		{429, `{}`, providers.RateLimited, ""},
		{500, `{"minorErrorCode":"INTERNAL_SERVER_ERROR","message":"boom"}`, providers.Transient, "INTERNAL_SERVER_ERROR"},
		{503, `garbage`, providers.Transient, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.status, tt.code), func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Retry-After": {"7"}}}
			e := apiError("POST /x", resp, []byte(tt.body))
			if e.Class != tt.class || e.Code != tt.code {
				t.Errorf("apiError() = class %v code %q, want %v %q", e.Class, e.Code, tt.class, tt.code)
			}
			if tt.status == 429 && e.RetryAfter != 7*time.Second {
				t.Errorf("apiError(429) RetryAfter = %v, want 7s", e.RetryAfter)
			}
		})
	}
}

func TestMalformedReadsAreTransient(t *testing.T) {
	e := tenant(t, vcdtest.Options{})
	p := e.kind(t, KindProxyToken)
	tok, err := p.Create(ctx(t), req("tokend-r-g1"))
	if err != nil {
		t.Fatal(err)
	}
	e.srv.MalformedNext(1)
	_, err = p.Inspect(ctx(t), tok)
	if providers.ClassOf(err) != providers.Transient || providers.IsAmbiguous(err) {
		t.Errorf("Inspect() with an unreadable answer = %v (class %v), want transient", err, providers.ClassOf(err))
	}
	e.srv.MalformedNext(1)
	if _, err := p.Create(ctx(t), req("tokend-r-g2")); !providers.IsAmbiguous(err) {
		t.Errorf("Create() with an unreadable answer = %v, want ambiguous", err)
	}
}

func TestDroppedAnswerIsLost(t *testing.T) {
	e := tenant(t, vcdtest.Options{RequireRotation: true})
	p := e.kind(t, KindAccessToken)
	tok, err := p.Create(ctx(t), req("tokend-d-g1"))
	if err != nil {
		t.Fatal(err)
	}
	e.srv.SetFaults(vcdtest.Faults{DropRate: 1})
	_, err = p.(providers.Renewer).Renew(ctx(t), tok)
	e.srv.SetFaults(vcdtest.Faults{})
	if !providers.IsAmbiguous(err) {
		t.Fatalf("Renew() with a dropped connection = %v, want ambiguous", err)
	}
	if e.valid(tok.Refresh) {
		t.Errorf("the dropped grant was not acted on; the fault should act, then drop")
	}
}

func TestValidate(t *testing.T) {
	good := config.Provider{Name: "vcd-prod", Type: "vcd", URL: "https://vcd.example.com", Org: "acme", APIVersion: "39.0",
		Username: "svc", PasswordFile: "/run/pw", Index: 0}
	tok := func(i int, name, kind string) config.Token {
		return config.Token{Name: name, Provider: "vcd-prod", Kind: kind, Index: i}
	}
	d := config.Duration(time.Hour)
	tests := []struct {
		name   string
		p      config.Provider
		tokens []config.Token
		want   []string
	}{
		{"example config", good, []config.Token{
			func() config.Token {
				t := tok(0, "vcd-automation", "access_token")
				t.BootstrapFile = "/run/b"
				return t
			}(),
			tok(1, "vcd-proxy", "proxy_token"), tok(2, "vcd-api", "api_token"),
		}, nil},
		{"missing org", func() config.Provider { p := good; p.Org = ""; return p }(), nil,
			[]string{"providers[0] (vcd-prod).org: required"}},
		{"bad version", func() config.Provider { p := good; p.APIVersion = "v39"; return p }(), nil,
			[]string{"providers[0] (vcd-prod).api_version:"}},
		{"username without password", func() config.Provider { p := good; p.PasswordFile = ""; return p }(),
			nil, []string{"providers[0] (vcd-prod): username and password_file go together"}},
		{"foreign provider keys", func() config.Provider { p := good; p.AccountID = "x"; p.SCIMURL = "y"; return p }(), nil,
			[]string{"providers[0] (vcd-prod).account_id: not used", "providers[0] (vcd-prod).scim_url: not used"}},
		{"proxy with bootstrap", good, []config.Token{
			func() config.Token { t := tok(3, "vcd-proxy", "proxy_token"); t.BootstrapFile = "/run/b"; return t }(),
		}, []string{"tokens[3] (vcd-proxy).bootstrap_file: not allowed for kind proxy_token"}},
		{"unknown kind", good, []config.Token{tok(4, "x", "scim_token")}, []string{"tokens[4] (x).kind: \"scim_token\" is not a vcd kind"}},
		{"no kind", good, []config.Token{tok(4, "x", "")}, []string{"tokens[4] (x).kind: required"}},
		{"access token without bootstrap or login", func() config.Provider { p := good; p.Username, p.PasswordFile = "", ""; return p }(),
			[]config.Token{tok(5, "a", "access_token"), tok(6, "b", "api_token"), tok(7, "c", "proxy_token")},
			[]string{"tokens[5] (a).bootstrap_file: required", "tokens[6] (b): kind api_token needs a password session", "tokens[7] (c): kind proxy_token needs a password session"}},
		{"foreign token keys", good, []config.Token{
			func() config.Token {
				t := tok(8, "x", "api_token")
				t.TokenType, t.APIEndpoints, t.Lifetime, t.TenantID, t.RenewableFor = "ALL", []string{"/a"}, &d, "t", &d
				return t
			}(),
		}, []string{"tokens[8] (x).token_type: not used", "tokens[8] (x).renewable_for", "tokens[8] (x).api_endpoints", "tokens[8] (x).lifetime", "tokens[8] (x).tenant_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := Validate(tt.p, tt.tokens)
			if len(errs) != len(tt.want) {
				t.Fatalf("Validate() = %v, want %d errors %q", errs, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("Validate()[%d] = %q, want it to start with %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	if _, err := New(config.Provider{Name: "v", URL: "ftp://x", Org: "acme"}, providers.Options{}); err == nil {
		t.Error("New(ftp URL) = nil error")
	}
	if _, err := New(config.Provider{Name: "v", URL: "https://x", Org: "acme", Username: "u", PasswordFile: "/nonexistent/pw"}, providers.Options{}); err == nil {
		t.Error("New(missing password file) = nil error")
	}
	a, err := New(config.Provider{Name: "v", URL: "https://vcd.example.com/", Org: "SYSTEM"}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !a.system || a.loginPath() != "/cloudapi/1.0.0/sessions/provider" || a.oauthPath("token") != "/oauth/provider/token" || a.version != DefaultAPIVersion {
		t.Errorf("System account: system=%v login %s oauth %s version %s", a.system, a.loginPath(), a.oauthPath("token"), a.version)
	}
	if _, err := a.Token(config.Token{Name: "x", Kind: "scim_token"}); err == nil {
		t.Error("Token(unknown kind) = nil error")
	}
}

func TestCancelledContextSendsNothing(t *testing.T) {
	e := tenant(t, vcdtest.Options{})
	p := e.kind(t, KindAccessToken)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	before := e.srv.Stats().Requests
	_, err := p.Create(c, req("tokend-x-g1"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Create(cancelled) = %v, want context.Canceled", err)
	}
	if n := e.srv.Stats().Requests - before; n != 0 {
		t.Errorf("Create(cancelled) sent %d requests", n)
	}
}
