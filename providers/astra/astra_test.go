package astra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/astra/astratest"
)

// errLog collects every error a test saw and every secret issued, for the leak check.
type errLog struct {
	mu      sync.Mutex
	errs    []error
	secrets []string
}

func (l *errLog) err(err error) error {
	if err != nil {
		l.mu.Lock()
		l.errs = append(l.errs, err)
		l.mu.Unlock()
	}
	return err
}

func (l *errLog) secret(s string) string {
	l.mu.Lock()
	l.secrets = append(l.secrets, s)
	l.mu.Unlock()
	return s
}

func (l *errLog) check(t *testing.T) {
	t.Helper()
	if len(l.errs) == 0 || len(l.secrets) == 0 {
		t.Fatalf("leak check saw %d errors and %d secrets; it proves nothing", len(l.errs), len(l.secrets))
	}
	for _, err := range l.errs {
		for _, s := range l.secrets {
			if strings.Contains(err.Error(), s) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), s) {
				t.Errorf("error %q contains an issued secret", strings.ReplaceAll(err.Error(), s, "<secret>"))
			}
		}
	}
}

// TestRotation walks one full Astra rotation against the fake: bootstrap from a UI token, create a new
// token with it, verify the new one with its own secret, revoke the old one with the new one.
func TestRotation(t *testing.T) {
	e := newEnv(t, astratest.Options{})
	boot := e.bootstrap(t)
	if !boot.ExpiresAt.IsZero() {
		t.Errorf("Bootstrap() ExpiresAt = %v, want zero (never expires)", boot.ExpiresAt)
	}
	e.clock.Add(7 * 24 * time.Hour)
	next := e.create(t, "tokend-backup-g2", boot)
	if err := e.p.Verify(ctx(t), next); err != nil {
		t.Fatalf("Verify(new) error = %v", err)
	}
	if err := e.p.Revoke(ctx(t), boot, next); err != nil {
		t.Fatalf("Revoke(old, new) error = %v", err)
	}
	if e.srv.Valid(boot.Secret.Reveal()) {
		t.Errorf("old token still valid after Revoke")
	}
	if !e.srv.Valid(next.Secret.Reveal()) {
		t.Errorf("new token not valid after revoking the old one")
	}
	st, err := e.p.Inspect(ctx(t), next)
	if err != nil || st.Gone {
		t.Errorf("Inspect(new) = %+v, %v; want live", st, err)
	}
	st, err = e.p.Inspect(ctx(t), boot)
	if err != nil || !st.Gone {
		t.Errorf("Inspect(old) = %+v, %v; want Gone", st, err)
	}
	got := e.srv.Stats()
	if got.Creates != 1 || got.Revokes != 1 || got.Live != 1 || got.Bootstraps != 1 {
		t.Errorf("Stats() = %+v, want 1 create, 1 revoke, 1 bootstrap, 1 live", got)
	}
	if want := e.clock.Now().UTC(); !next.CreatedAt.Equal(want.Truncate(time.Microsecond)) || !next.IssuedAt.Equal(next.CreatedAt) {
		t.Errorf("Create() CreatedAt = %v IssuedAt = %v, want the vendor's creationTimestamp %v", next.CreatedAt, next.IssuedAt, want)
	}
}

func TestCreate(t *testing.T) {
	e := newEnv(t, astratest.Options{})
	boot := e.bootstrap(t)
	tok := e.create(t, "tokend-backup-g1", boot)

	t.Run("carries the vendor name, labels and no expiry", func(t *testing.T) {
		if tok.Name != "tokend-backup-g1" || !tok.ExpiresAt.IsZero() || !tok.RenewableUntil.IsZero() {
			t.Errorf("Create() = name %q expires %v renewable %v", tok.Name, tok.ExpiresAt, tok.RenewableUntil)
		}
		if tok.Attrs["user_id"] != e.srv.UserID() {
			t.Errorf("Create() Attrs = %v, want user_id %s", tok.Attrs, e.srv.UserID())
		}
		i := slices.IndexFunc(e.srv.Tokens(), func(ti astratest.TokenInfo) bool { return ti.ID == tok.ID })
		if i < 0 {
			t.Fatalf("created token %s not at the vendor", tok.ID)
		}
		ti := e.srv.Tokens()[i]
		if ti.Name != "tokend-backup-g1" || ti.Labels["managed-by"] != "tokend" || ti.Labels["tokend-vendor-name"] != "tokend-backup-g1" {
			t.Errorf("vendor-side token = %+v, want name and labels tokend-backup-g1", ti)
		}
	})
	t.Run("does not spend the current token", func(t *testing.T) {
		if !e.srv.Valid(boot.Secret.Reveal()) {
			t.Errorf("current token invalid after Create")
		}
	})

	for _, tt := range []struct {
		name  string
		req   providers.CreateRequest
		class providers.Class
	}{
		{"without a current token", providers.CreateRequest{VendorName: "tokend-backup-g3"}, providers.Unauthorized},
		{"with an empty current secret", providers.CreateRequest{VendorName: "tokend-backup-g3", Current: &providers.Token{ID: "x"}}, providers.Unauthorized},
		{"with a name longer than 63", providers.CreateRequest{VendorName: "tokend-" + strings.Repeat("a", 60) + "-g1", Current: &boot}, providers.Permanent},
		{"with a name astra refuses", providers.CreateRequest{VendorName: "tokend-<b>-g1", Current: &boot}, providers.Permanent},
	} {
		t.Run("refused before sending "+tt.name, func(t *testing.T) {
			before := e.srv.Stats().Requests
			_, err := e.p.Create(ctx(t), tt.req)
			if err == nil || providers.ClassOf(err) != tt.class {
				t.Fatalf("Create() error = %v (class %v), want class %v", err, providers.ClassOf(err), tt.class)
			}
			if n := e.srv.Stats().Requests - before; n != 0 {
				t.Errorf("Create() sent %d requests, want 0", n)
			}
		})
	}

	t.Run("a revoked current token is unauthorized", func(t *testing.T) {
		dead := e.create(t, "tokend-backup-g4", boot)
		if err := e.p.Revoke(ctx(t), dead, boot); err != nil {
			t.Fatal(err)
		}
		_, err := e.p.Create(ctx(t), providers.CreateRequest{VendorName: "tokend-backup-g5", Current: &dead})
		if !providers.IsUnauthorized(err) {
			t.Errorf("Create(current revoked) error = %v, want unauthorized", err)
		}
	})
	t.Run("a wrong user id is permanent", func(t *testing.T) {
		pc := providerConfig(e.srv)
		pc.UserID = "00000000-0000-0000-0000-000000000000"
		acct, err := New(pc, providers.Options{HTTP: e.srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := acct.Token(config.Token{Name: "backup", Kind: KindAPIToken})
		_, err = p.Create(ctx(t), providers.CreateRequest{VendorName: "tokend-backup-g6", Current: &boot})
		var ae *providers.APIError
		if !errors.As(err, &ae) || ae.Status != 404 || ae.Class != providers.Permanent || ae.Code != "problems/2" {
			t.Errorf("Create(unknown user) error = %#v, want 404 problems/2 permanent", err)
		}
	})
}

// TestCreateLostAnswer: when the vendor acted but the answer was lost (dropped connection, unreadable
// body), Create says Ambiguous and Orphans finds the token by its name so it can be revoked.
func TestCreateLostAnswer(t *testing.T) {
	for _, tt := range []struct {
		name   string
		inject func(*astratest.Server)
	}{
		{"dropped connection", func(s *astratest.Server) { s.SetFaults(astratest.Faults{DropRate: 1}) }},
		{"truncated body", func(s *astratest.Server) { s.MalformedNext(1) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, astratest.Options{})
			boot := e.bootstrap(t)
			tt.inject(e.srv)
			req := providers.CreateRequest{VendorName: "tokend-backup-g2", Current: &boot, Keep: []string{boot.ID}}
			_, err := e.p.Create(ctx(t), req)
			if !providers.IsAmbiguous(err) {
				t.Fatalf("Create() error = %v (class %v), want ambiguous", err, providers.ClassOf(err))
			}
			e.srv.SetFaults(astratest.Faults{})
			if e.srv.Stats().Creates != 1 {
				t.Fatalf("fake did not act: %+v", e.srv.Stats())
			}
			orphans, err := e.p.Orphans(ctx(t), req)
			if err != nil {
				t.Fatalf("Orphans() error = %v", err)
			}
			if len(orphans) != 1 || orphans[0].Name != "tokend-backup-g2" || !orphans[0].Secret.IsZero() {
				t.Fatalf("Orphans() = %+v, want the one lost token without a secret", orphans)
			}
			if err := e.p.Revoke(ctx(t), orphans[0], boot); err != nil {
				t.Fatalf("Revoke(orphan) error = %v", err)
			}
			if s := e.srv.Stats(); s.Live != 1 {
				t.Errorf("Live = %d after revoking the orphan, want 1 (the bootstrap token)", s.Live)
			}
		})
	}
}

// TestInspect tells a token deleted behind tokend's back (Gone) from a credential problem (an error).
func TestInspect(t *testing.T) {
	for _, tt := range []struct {
		name    string
		act     func(e *env, tok providers.Token) providers.Token
		gone    bool
		class   providers.Class // when an error is wanted
		wantErr bool
	}{
		{name: "live token", act: func(_ *env, tok providers.Token) providers.Token { return tok }},
		{name: "deleted in the UI is gone", gone: true, act: func(e *env, tok providers.Token) providers.Token {
			e.srv.DeleteToken(tok.ID)
			return tok
		}},
		{name: "404 is gone", gone: true, act: func(e *env, tok providers.Token) providers.Token {
			e.srv.FailNext(404, 1)
			return tok
		}},
		{name: "401 from something that is not astra is unauthorized, not gone", wantErr: true, class: providers.Unauthorized,
			act: func(e *env, tok providers.Token) providers.Token { e.srv.FailNext(401, 1); return tok }},
		{name: "403 is unauthorized, not gone", wantErr: true, class: providers.Unauthorized,
			act: func(e *env, tok providers.Token) providers.Token { e.srv.FailNext(403, 1); return tok }},
		{name: "a token of another user is unauthorized, not gone", wantErr: true, class: providers.Unauthorized,
			act: func(e *env, tok providers.Token) providers.Token {
				id, secret := e.srv.IssueToken("11111111-2222-4333-8444-555555555555", "other")
				return providers.Token{ID: id, Secret: providers.NewSecret(secret)}
			}},
		{name: "no secret is an error without a request", wantErr: true, class: providers.Permanent,
			act: func(_ *env, tok providers.Token) providers.Token { tok.Secret = providers.Secret{}; return tok }},
		{name: "503 is transient", wantErr: true, class: providers.Transient,
			act: func(e *env, tok providers.Token) providers.Token { e.srv.FailNext(503, 1); return tok }},
		{name: "malformed answer is transient", wantErr: true, class: providers.Transient,
			act: func(e *env, tok providers.Token) providers.Token { e.srv.MalformedNext(1); return tok }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, astratest.Options{Users: []string{astratest.DefaultUserID, "11111111-2222-4333-8444-555555555555"}})
			tok := tt.act(e, e.bootstrap(t))
			st, err := e.p.Inspect(ctx(t), tok)
			if tt.wantErr {
				if err == nil || providers.ClassOf(err) != tt.class {
					t.Fatalf("Inspect() = %+v, %v (class %v); want a %v error", st, err, providers.ClassOf(err), tt.class)
				}
				return
			}
			if err != nil || st.Gone != tt.gone || !st.ExpiresAt.IsZero() {
				t.Fatalf("Inspect() = %+v, %v; want Gone %v, no expiry", st, err, tt.gone)
			}
		})
	}

	t.Run("a disabled user's token still exists at the vendor but reads as gone", func(t *testing.T) {
		// Documented limitation: Astra answers a refused bearer the same way (/problems/4) whether its
		// token was deleted or its user lost access, and there is no other credential to ask with.
		e := newEnv(t, astratest.Options{})
		tok := e.bootstrap(t)
		e.srv.DisableUser(e.srv.UserID(), true)
		st, err := e.p.Inspect(ctx(t), tok)
		if err != nil || !st.Gone {
			t.Fatalf("Inspect() = %+v, %v; want Gone", st, err)
		}
		if len(e.srv.Tokens()) != 1 || e.srv.Valid(tok.Secret.Reveal()) {
			t.Errorf("fake: tokens %d, valid %v; want the token kept but refused", len(e.srv.Tokens()), e.srv.Valid(tok.Secret.Reveal()))
		}
	})
}

func TestBootstrap(t *testing.T) {
	const other = "11111111-2222-4333-8444-555555555555"
	for _, tt := range []struct {
		name string
		opts astratest.Options
		// setup mints tokens and returns the bootstrap secret and its id ("" when Bootstrap must fail).
		setup func(s *astratest.Server) (secret, id string)
		class providers.Class
	}{
		{"jwt among many hand-made tokens", astratest.Options{}, func(s *astratest.Server) (string, string) {
			s.IssueToken(s.UserID(), "ci")
			id, secret := s.IssueToken(s.UserID(), "tokend bootstrap")
			s.IssueToken(s.UserID(), "backup-script")
			return secret, id
		}, 0},
		{"jwt on the third page", astratest.Options{MaxPageSize: 2}, func(s *astratest.Server) (string, string) {
			for i := range 4 {
				s.IssueToken(s.UserID(), fmt.Sprintf("t%d", i))
			}
			id, secret := s.IssueToken(s.UserID(), "mine")
			return secret, id
		}, 0},
		{"opaque, the only hand-made token beside tokend's", astratest.Options{OpaqueSecrets: true}, func(s *astratest.Server) (string, string) {
			s.IssueToken(s.UserID(), "tokend-backup-g7")
			id, secret := s.IssueToken(s.UserID(), "ui-token")
			s.IssueToken(s.UserID(), "tokend-other-g1")
			return secret, id
		}, 0},
		{"opaque among two hand-made tokens is refused", astratest.Options{OpaqueSecrets: true}, func(s *astratest.Server) (string, string) {
			s.IssueToken(s.UserID(), "ci")
			_, secret := s.IssueToken(s.UserID(), "ui-token")
			return secret, ""
		}, providers.Permanent},
		{"a secret the vendor refuses is unauthorized", astratest.Options{}, func(s *astratest.Server) (string, string) {
			return "bm90IGEgdG9rZW4=", ""
		}, providers.Unauthorized},
		{"a token of another user is unauthorized", astratest.Options{Users: []string{astratest.DefaultUserID, other}}, func(s *astratest.Server) (string, string) {
			_, secret := s.IssueToken(other, "ui-token")
			return secret, ""
		}, providers.Unauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts)
			secret, id := tt.setup(e.srv)
			tok, err := e.p.Bootstrap(ctx(t), providers.NewSecret(secret))
			if id == "" {
				if err == nil || providers.ClassOf(err) != tt.class {
					t.Fatalf("Bootstrap() = %+v, %v (class %v); want a %v error", tok, err, providers.ClassOf(err), tt.class)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("Bootstrap() error contains the secret")
				}
				return
			}
			if err != nil {
				t.Fatalf("Bootstrap() error = %v", err)
			}
			if tok.ID != id || tok.Secret.Reveal() != secret {
				t.Errorf("Bootstrap() ID = %s, want %s (secret kept: %v)", tok.ID, id, tok.Secret.Reveal() == secret)
			}
			if want := e.clock.Now().UTC().Truncate(time.Microsecond); !tok.CreatedAt.Equal(want) || !tok.ExpiresAt.IsZero() {
				t.Errorf("Bootstrap() CreatedAt = %v ExpiresAt = %v, want %v and zero", tok.CreatedAt, tok.ExpiresAt, want)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t, astratest.Options{})
	boot := e.bootstrap(t)

	t.Run("already gone is done", func(t *testing.T) {
		old := e.create(t, "tokend-backup-g1", boot)
		e.srv.DeleteToken(old.ID)
		if err := e.p.Revoke(ctx(t), old, boot); err != nil {
			t.Errorf("Revoke(gone) error = %v, want nil", err)
		}
	})
	t.Run("the current token is never revoked", func(t *testing.T) {
		before := e.srv.Stats().Requests
		if err := e.p.Revoke(ctx(t), boot, boot); err == nil {
			t.Errorf("Revoke(current, current) = nil, want a refusal")
		}
		if !e.srv.Valid(boot.Secret.Reveal()) || e.srv.Stats().Requests != before {
			t.Errorf("Revoke(current, current) reached the vendor")
		}
	})
	t.Run("without a current token the old one deletes itself", func(t *testing.T) {
		old := e.create(t, "tokend-backup-g2", boot)
		if err := e.p.Revoke(ctx(t), old, providers.Token{}); err != nil {
			t.Fatalf("Revoke(old, none) error = %v", err)
		}
		if e.srv.Valid(old.Secret.Reveal()) {
			t.Errorf("old token valid after Revoke")
		}
	})
	t.Run("authenticates with the current token", func(t *testing.T) {
		// The old token is already unusable (its user's access is fine, its secret is dropped): only the
		// current one can make the call.
		old := e.create(t, "tokend-backup-g3", boot)
		old.Secret = providers.NewSecret("garbage")
		if err := e.p.Revoke(ctx(t), old, boot); err != nil {
			t.Fatalf("Revoke() error = %v", err)
		}
	})
	t.Run("a refused current token is unauthorized", func(t *testing.T) {
		old := e.create(t, "tokend-backup-g4", boot)
		err := e.p.Revoke(ctx(t), old, providers.Token{ID: "x", Secret: providers.NewSecret("garbage")})
		if !providers.IsUnauthorized(err) {
			t.Errorf("Revoke() error = %v, want unauthorized", err)
		}
	})
}

func TestOrphans(t *testing.T) {
	e := newEnv(t, astratest.Options{MaxPageSize: 2})
	boot := e.bootstrap(t)
	kept := e.create(t, "tokend-backup-g2", boot)
	lost1 := e.create(t, "tokend-backup-g2", boot) // a retried create of the same generation
	e.create(t, "tokend-backup-g1", boot)          // another generation
	e.create(t, "tokend-other-g2", boot)           // another token's
	e.srv.IssueToken(e.srv.UserID(), "tokend-backup-g2-manual")
	got, err := e.p.Orphans(ctx(t), providers.CreateRequest{VendorName: "tokend-backup-g2", Current: &boot, Keep: []string{boot.ID, kept.ID}})
	if err != nil {
		t.Fatalf("Orphans() error = %v", err)
	}
	var ids []string
	for _, o := range got {
		ids = append(ids, o.ID)
	}
	if !slices.Equal(ids, []string{lost1.ID}) {
		t.Errorf("Orphans() = %v, want only %s", ids, lost1.ID)
	}
	if _, err := e.p.Orphans(ctx(t), providers.CreateRequest{VendorName: "tokend-backup-g2"}); err == nil {
		t.Errorf("Orphans() without a current token = nil error")
	}
}

// TestErrorClasses checks how every operation classifies the vendor's failures.
func TestErrorClasses(t *testing.T) {
	type call func(e *env, boot, tok providers.Token) error
	calls := map[string]call{
		"create": func(e *env, boot, _ providers.Token) error {
			_, err := e.p.Create(e.ctx, providers.CreateRequest{VendorName: "tokend-backup-g9", Current: &boot})
			return err
		},
		"inspect": func(e *env, _, tok providers.Token) error {
			_, err := e.p.Inspect(e.ctx, tok)
			return err
		},
		"verify": func(e *env, _, tok providers.Token) error { return e.p.Verify(e.ctx, tok) },
		"revoke": func(e *env, boot, tok providers.Token) error { return e.p.Revoke(e.ctx, tok, boot) },
		"bootstrap": func(e *env, boot, _ providers.Token) error {
			_, err := e.p.Bootstrap(e.ctx, boot.Secret)
			return err
		},
		"orphans": func(e *env, boot, _ providers.Token) error {
			_, err := e.p.Orphans(e.ctx, providers.CreateRequest{VendorName: "x", Current: &boot})
			return err
		},
	}
	type want struct {
		class providers.Class
		nilOK bool // the operation succeeds instead (inspect 404 is Gone, revoke 404 is done)
	}
	for _, st := range []int{400, 401, 403, 404, 409, 429, 500, 503, -1} {
		for name, c := range calls {
			w := want{class: providers.ClassForStatus(st)}
			switch {
			case st == -1 && name == "create":
				w.class = providers.Ambiguous
			case st == -1 && name == "revoke":
				w.nilOK = true // revoke reads no body
			case st == -1:
				w.class = providers.Transient
			case st == 404 && (name == "inspect" || name == "revoke"):
				w.nilOK = true
			case st == 404 && name == "create":
				w.class = providers.Permanent
			}
			label := fmt.Sprint(st)
			if st == -1 {
				label = "malformed"
			}
			t.Run(name+" "+label, func(t *testing.T) {
				e := newEnv(t, astratest.Options{})
				boot := e.bootstrap(t)
				tok := e.create(t, "tokend-backup-g1", boot)
				if st == -1 {
					e.srv.MalformedNext(1)
				} else {
					e.srv.FailNext(st, 1)
				}
				err := c(e, boot, tok)
				if w.nilOK {
					if err != nil {
						t.Errorf("error = %v, want nil", err)
					}
					return
				}
				if err == nil {
					t.Fatalf("error = nil, want class %v", w.class)
				}
				if got := providers.ClassOf(err); got != w.class {
					t.Errorf("class = %v, want %v (err: %v)", got, w.class, err)
				}
				if st == 429 && providers.RetryAfterOf(err) != time.Second {
					t.Errorf("RetryAfterOf = %v, want 1s", providers.RetryAfterOf(err))
				}
			})
		}
	}
}

// TestNoSecretInErrors provokes failures of every kind, including a vendor that echoes the bearer in its
// problem detail, and checks no error text holds any secret issued.
func TestNoSecretInErrors(t *testing.T) {
	var l errLog
	e := newEnv(t, astratest.Options{})
	boot := e.bootstrap(t)
	l.secret(boot.Secret.Reveal())
	tok := e.create(t, "tokend-backup-g1", boot)
	l.secret(tok.Secret.Reveal())
	for _, st := range []int{400, 401, 403, 409, 429, 500, 503} {
		e.srv.FailNext(st, 1)
		_, err := e.p.Create(ctx(t), providers.CreateRequest{VendorName: "tokend-backup-g2", Current: &boot})
		l.err(err)
		e.srv.FailNext(st, 1)
		_, err = e.p.Inspect(ctx(t), tok)
		l.err(err)
		e.srv.FailNext(st, 1)
		l.err(e.p.Revoke(ctx(t), tok, boot))
		e.srv.FailNext(st, 1)
		_, err = e.p.Bootstrap(ctx(t), boot.Secret)
		l.err(err)
	}
	e.srv.MalformedNext(1)
	_, err := e.p.Create(ctx(t), providers.CreateRequest{VendorName: "tokend-backup-g3", Current: &boot})
	l.err(err)
	l.err(e.p.Verify(ctx(t), providers.Token{ID: tok.ID, Secret: providers.NewSecret(l.secret("wrong-secret-value"))}))
	l.err(e.p.Revoke(ctx(t), boot, boot))

	// A vendor (or proxy) that echoes the Authorization header in its problem detail.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(500)
		_, _ = fmt.Fprintf(w, `{"type":"https://astra.netapp.io/problems/%s","title":"boom %s","detail":"header was %s","status":"500"}`,
			strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), r.Header.Get("Authorization"), r.Header.Get("Authorization"))
	}))
	defer echo.Close()
	pc := providerConfig(e.srv)
	pc.URL = echo.URL
	acct, err := New(pc, providers.Options{HTTP: echo.Client()})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := acct.Token(config.Token{Name: "backup", Kind: KindAPIToken})
	_, err = p.Create(ctx(t), providers.CreateRequest{VendorName: "tokend-backup-g4", Current: &boot})
	l.err(err)
	if err == nil || !strings.Contains(err.Error(), "<secret>") {
		t.Errorf("echoing vendor: error = %v, want the echoed bearer scrubbed to <secret>", err)
	}
	_, err = p.Inspect(ctx(t), tok)
	l.err(err)
	l.check(t)
}

func TestCheck(t *testing.T) {
	e := newEnv(t, astratest.Options{})
	if err := e.acct.Check(ctx(t)); err != nil {
		t.Errorf("Check() against the fake = %v, want nil", err)
	}
	if e.srv.Stats().Unauthorized != 1 {
		t.Errorf("Check() did not reach the fake's auth: %+v", e.srv.Stats())
	}
	for _, tt := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"answers 200 without a bearer", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"items":[]}`) }},
		{"answers 401 that is not astra's", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(401) }},
		{"answers 502", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := httptest.NewServer(tt.h)
			defer s.Close()
			pc := providerConfig(e.srv)
			pc.URL = s.URL
			acct, err := New(pc, providers.Options{HTTP: s.Client()})
			if err != nil {
				t.Fatal(err)
			}
			if err := acct.Check(ctx(t)); err == nil {
				t.Errorf("Check() = nil, want an error")
			}
		})
	}
}

func TestNewAndToken(t *testing.T) {
	good := config.Provider{Name: "a", URL: "https://astra.example.com/", AccountID: astratest.DefaultAccountID, UserID: astratest.DefaultUserID}
	acct, err := New(good, providers.Options{})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	if want := "/accounts/" + astratest.DefaultAccountID + "/core/v1/users/" + astratest.DefaultUserID + "/tokens"; acct.collection.Path != want {
		t.Errorf("collection path = %s, want %s", acct.collection.Path, want)
	}
	bad := good
	bad.AccountID = "nope"
	if _, err := New(bad, providers.Options{}); err == nil {
		t.Errorf("New(bad account id) = nil error")
	}
	if _, err := acct.Token(config.Token{Name: "x", Kind: "proxy_token"}); err == nil {
		t.Errorf("Token(proxy_token) = nil error")
	}
	p, err := acct.Token(config.Token{Name: "x", Kind: KindAPIToken})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.(providers.Renewer); ok {
		t.Errorf("astra provider implements Renewer; astra tokens cannot be renewed")
	}
}

func TestCancelledContext(t *testing.T) {
	e := newEnv(t, astratest.Options{})
	boot := e.bootstrap(t)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	before := e.srv.Stats().Requests
	_, err := e.p.Create(c, providers.CreateRequest{VendorName: "tokend-backup-g1", Current: &boot})
	if !errors.Is(err, context.Canceled) || providers.IsAmbiguous(err) {
		t.Errorf("Create(cancelled) error = %v (ambiguous %v), want context.Canceled, not ambiguous: nothing was sent",
			err, providers.IsAmbiguous(err))
	}
	if e.srv.Stats().Requests != before {
		t.Errorf("Create(cancelled) reached the vendor")
	}
}
