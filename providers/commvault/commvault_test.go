package commvault_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/commvault"
	"github.com/tokend/tokend/providers/commvault/commvaulttest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dur(d time.Duration) *config.Duration { c := config.Duration(d); return &c }

func findToken(t *testing.T, srv *commvaulttest.Server, id string) commvaulttest.TokenInfo {
	t.Helper()
	for _, ti := range srv.Tokens() {
		if ti.ID == id {
			return ti
		}
	}
	t.Fatalf("token %s does not exist at the vendor", id)
	return commvaulttest.TokenInfo{}
}

func TestCreateEveryType(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		typ          string
		renewableFor time.Duration
		lifetime     time.Duration
		wantExpiry   time.Duration // from creation
		wantUntil    time.Duration // RenewableUntil from creation; 0: none
	}{
		{typ: "ALL", renewableFor: 30 * day, wantExpiry: 30 * time.Minute, wantUntil: 14 * day}, // refresh expiry first
		{typ: "ALL", renewableFor: 7 * day, wantExpiry: 30 * time.Minute, wantUntil: 7 * day},   // renewable-until first
		{typ: "ALL", wantExpiry: 30 * time.Minute, wantUntil: 14 * day},                         // vendor default 90d
		{typ: "CUSTOM", renewableFor: 2 * day, wantExpiry: 30 * time.Minute, wantUntil: 2 * day},
		{typ: "MS_SCIM", wantExpiry: 30 * day},
		{typ: "MS_SCIM", lifetime: 60 * day, wantExpiry: 60 * day},
		{typ: "MS_SCIM", lifetime: 400 * day, wantExpiry: 365 * day}, // capped by the vendor
		{typ: "OneTouch", wantExpiry: 7 * day},
		{typ: "OneTouch", lifetime: 20 * day, wantExpiry: 14 * day}, // capped by the vendor
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.renewableFor.String()+"/"+tt.lifetime.String(), func(t *testing.T) {
			clk := newClock()
			cfg := tokenConfig(tt.typ)
			if tt.renewableFor > 0 {
				cfg.RenewableFor = dur(tt.renewableFor)
			}
			if tt.lifetime > 0 {
				cfg.Lifetime = dur(tt.lifetime)
			}
			f := newFixture(t, commvaulttest.Options{Now: clk.Now}, cfg)
			created := clk.Now()
			tok, err := f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-cv-g1"})
			if err != nil {
				t.Fatalf("Create() error = %v", err)
			}
			ti := findToken(t, f.srv, tok.ID)
			if ti.Name != "tokend-cv-g1" || tok.Name != "tokend-cv-g1" {
				t.Errorf("vendor name = %q, Token.Name = %q, want tokend-cv-g1", ti.Name, tok.Name)
			}
			if ti.Type != tt.typ {
				t.Errorf("vendor token type = %s, want %s", ti.Type, tt.typ)
			}
			if !f.srv.Valid(tok.Secret.Reveal()) {
				t.Errorf("Valid(Secret) = false")
			}
			if got := tok.ExpiresAt.Sub(created); got != tt.wantExpiry {
				t.Errorf("ExpiresAt = created + %v, want + %v", got, tt.wantExpiry)
			}
			if !tok.ExpiresAt.Equal(ti.ExpiresAt) {
				t.Errorf("ExpiresAt = %v, vendor says %v", tok.ExpiresAt, ti.ExpiresAt)
			}
			var gotUntil time.Duration
			if !tok.RenewableUntil.IsZero() {
				gotUntil = tok.RenewableUntil.Sub(created)
			}
			if gotUntil != tt.wantUntil {
				t.Errorf("RenewableUntil = created + %v, want + %v", gotUntil, tt.wantUntil)
			}
			if tt.renewableFor > 0 && !ti.RenewableUntil.Equal(created.Add(tt.renewableFor)) {
				t.Errorf("vendor renewableUntil = %v, want created + renewable_for = %v", ti.RenewableUntil, created.Add(tt.renewableFor))
			}
			renewable := tt.typ == "ALL" || tt.typ == "CUSTOM"
			if tok.Refresh.IsZero() == renewable {
				t.Errorf("Refresh set = %v, want %v", !tok.Refresh.IsZero(), renewable)
			}
			if !tok.CreatedAt.Equal(created) || !tok.IssuedAt.Equal(created) {
				t.Errorf("CreatedAt, IssuedAt = %v, %v, want %v", tok.CreatedAt, tok.IssuedAt, created)
			}
		})
	}
}

func TestCapabilitiesByType(t *testing.T) {
	tests := []struct {
		typ             string
		renewer, verify bool
	}{
		{"ALL", true, true},
		{"CUSTOM", true, false},
		{"MS_SCIM", false, false},
		{"OneTouch", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			f := newFixture(t, commvaulttest.Options{}, tokenConfig(tt.typ))
			if _, ok := f.prov.(providers.Renewer); ok != tt.renewer {
				t.Errorf("implements Renewer = %v, want %v", ok, tt.renewer)
			}
			if _, ok := f.prov.(providers.Verifier); ok != tt.verify {
				t.Errorf("implements Verifier = %v, want %v", ok, tt.verify)
			}
			if _, ok := f.prov.(providers.OrphanFinder); !ok {
				t.Errorf("does not implement OrphanFinder")
			}
			if _, ok := f.prov.(providers.Bootstrapper); ok {
				t.Errorf("implements Bootstrapper; commvault tokens are created, never bootstrapped")
			}
		})
	}
}

func TestTokenRefusesBadConfig(t *testing.T) {
	f := newFixture(t, commvaulttest.Options{}, tokenConfig("ALL"))
	for _, tok := range []config.Token{
		{Name: "x", Kind: "api_token", TokenType: "ALL"},
		{Name: "x", Kind: "access_token", TokenType: "SCIM"},
		{Name: "x", Kind: "access_token", TokenType: "CUSTOM"},
	} {
		if _, err := f.acct.Token(tok); err == nil {
			t.Errorf("Token(%+v) error = nil, want an error", tok)
		}
	}
}

// TestRenewChain renews a token many times over its life: the id stays, expiry moves forward, every
// pair is presented once, and the vendor never sees a replay.
func TestRenewChain(t *testing.T) {
	for _, typ := range []string{"ALL", "CUSTOM"} {
		t.Run(typ, func(t *testing.T) {
			clk := newClock()
			f := newFixture(t, commvaulttest.Options{Now: clk.Now}, tokenConfig(typ))
			rn := f.prov.(providers.Renewer)
			tok, err := f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-chain-g1"})
			if err != nil {
				t.Fatalf("Create() error = %v", err)
			}
			created := tok.CreatedAt
			for i := range 5 {
				clk.Add(20 * time.Minute)
				next, err := rn.Renew(ctxT(t), tok)
				if err != nil {
					t.Fatalf("Renew() #%d error = %v", i+1, err)
				}
				if next.ID != tok.ID || next.Name != tok.Name || !next.CreatedAt.Equal(created) {
					t.Errorf("Renew() #%d = id %s name %s created %v, want %s %s %v", i+1, next.ID, next.Name, next.CreatedAt, tok.ID, tok.Name, created)
				}
				if !next.ExpiresAt.After(tok.ExpiresAt) {
					t.Errorf("Renew() #%d ExpiresAt = %v, not after %v", i+1, next.ExpiresAt, tok.ExpiresAt)
				}
				if next.Secret.Reveal() == tok.Secret.Reveal() || next.Refresh.Reveal() == tok.Refresh.Reveal() {
					t.Errorf("Renew() #%d kept a value; the vendor rotates both", i+1)
				}
				if !f.srv.Valid(next.Secret.Reveal()) {
					t.Errorf("Valid(renewed secret) = false")
				}
				st, err := f.prov.Inspect(ctxT(t), next)
				if err != nil || st.Gone || st.RotateNow || !st.ExpiresAt.Equal(next.ExpiresAt) {
					t.Errorf("Inspect(renewed) = %+v, %v; want expiry %v, no RotateNow", st, err, next.ExpiresAt)
				}
				tok = next
			}
			if s := f.srv.Stats(); s.Renews != 5 || s.Replays != 0 || s.ChainDeletions != 0 || s.Live != 1 {
				t.Errorf("Stats() = %+v, want 5 renews, no replay, no chain deletion, 1 live", s)
			}
		})
	}
}

// TestReplayDeletesChain shows what tokend must never do and that the fake catches it: presenting a pair
// that was already renewed makes the vendor delete the whole token.
func TestReplayDeletesChain(t *testing.T) {
	f := newFixture(t, commvaulttest.Options{}, tokenConfig("ALL"))
	rn := f.prov.(providers.Renewer)
	t0, err := f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-replay-g1"})
	if err != nil {
		t.Fatal(err)
	}
	t1, err := rn.Renew(ctxT(t), t0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rn.Renew(ctxT(t), t0) // the replay
	if err == nil {
		t.Fatalf("Renew(old pair) error = nil, want an error")
	}
	// The vendor refuses the old pair (401) and deletes the token; the retry with a bearer header then finds
	// no such pair (404).
	if c := providers.ClassOf(err); c != providers.Unauthorized && c != providers.NotFound {
		t.Errorf("Renew(old pair) class = %v, want unauthorized or not found", c)
	}
	if s := f.srv.Stats(); s.Replays != 1 || s.ChainDeletions != 1 || s.Live != 0 {
		t.Errorf("Stats() = %+v, want 1 replay, 1 chain deletion, 0 live", s)
	}
	if f.srv.Valid(t1.Secret.Reveal()) {
		t.Errorf("Valid(current secret) = true after the chain was deleted")
	}
	if st, err := f.prov.Inspect(ctxT(t), t1); err != nil || !st.Gone {
		t.Errorf("Inspect() = %+v, %v, want Gone", st, err)
	}
}

func TestRenewNotRenewable(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name         string
		renewableFor time.Duration
		refresh      time.Duration
		wait         time.Duration
		wantVendor   string // the vendor's refusal, when the provider is made to send
	}{
		{name: "past renewable until", renewableFor: time.Hour, refresh: 14 * day, wait: 61 * time.Minute, wantVendor: "renewable until"},
		{name: "refresh token expired", renewableFor: 90 * day, refresh: time.Hour, wait: 61 * time.Minute, wantVendor: "Refresh token has expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			cfg := tokenConfig("ALL")
			cfg.RenewableFor = dur(tt.renewableFor)
			f := newFixture(t, commvaulttest.Options{Now: clk.Now, RefreshLifetime: tt.refresh}, cfg)
			rn := f.prov.(providers.Renewer)
			tok, err := f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-nr-g1"})
			if err != nil {
				t.Fatal(err)
			}
			if want := clk.Now().Add(min(tt.renewableFor, tt.refresh)); !tok.RenewableUntil.Equal(want) {
				t.Errorf("RenewableUntil = %v, want %v", tok.RenewableUntil, want)
			}
			clk.Add(tt.wait)
			before := f.srv.Stats().Requests
			_, err = rn.Renew(ctxT(t), tok)
			if !providers.IsNotRenewable(err) {
				t.Errorf("Renew() after renewable-until: err = %v (class %v), want not renewable", err, providers.ClassOf(err))
			}
			if n := f.srv.Stats().Requests - before; n != 0 {
				t.Errorf("Renew() past renewable-until sent %d requests, want 0", n)
			}
			// Without the local bound the vendor refuses, and says so.
			tok.RenewableUntil = time.Time{}
			_, err = rn.Renew(ctxT(t), tok)
			if !providers.IsNotRenewable(err) || !strings.Contains(err.Error(), tt.wantVendor) {
				t.Errorf("Renew() refused by the vendor: err = %v (class %v), want not renewable with %q", err, providers.ClassOf(err), tt.wantVendor)
			}
			if s := f.srv.Stats(); s.Replays != 0 || s.Live != 1 {
				t.Errorf("Stats() = %+v, want no replay and the token kept", s)
			}
		})
	}
}

func TestRenewAnswerLostIsAmbiguous(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*commvaulttest.Server)
	}{
		{"connection dropped after the vendor acted", func(s *commvaulttest.Server) { s.SetFaults(commvaulttest.Faults{DropRate: 1}) }},
		{"unreadable 200 after the vendor acted", func(s *commvaulttest.Server) { s.MalformedNext(1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			f := newFixture(t, commvaulttest.Options{Now: clk.Now}, tokenConfig("ALL"))
			tok, err := f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-lost-g1"})
			if err != nil {
				t.Fatal(err)
			}
			clk.Add(20 * time.Minute)
			tt.fault(f.srv)
			_, err = f.prov.(providers.Renewer).Renew(ctxT(t), tok)
			if !providers.IsAmbiguous(err) {
				t.Fatalf("Renew() err = %v (class %v), want ambiguous", err, providers.ClassOf(err))
			}
			f.srv.SetFaults(commvaulttest.Faults{})
			if s := f.srv.Stats(); s.Renews != 1 {
				t.Errorf("vendor Renews = %d, want 1 (it acted)", s.Renews)
			}
			// The vendor moved on without tokend's pair: Inspect says renewing is over, so tokend recreates
			// instead of presenting the old pair (which would delete the token).
			st, err := f.prov.Inspect(ctxT(t), tok)
			if err != nil {
				t.Fatalf("Inspect() error = %v", err)
			}
			if !st.RotateNow || !st.RenewableUntil.Equal(clk.Now()) {
				t.Errorf("Inspect() = %+v, want RotateNow and RenewableUntil now", st)
			}
		})
	}
}

func TestRenewBearerFallback(t *testing.T) {
	f := newFixture(t, commvaulttest.Options{RenewRequiresBearer: true}, tokenConfig("CUSTOM"))
	tok, err := f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-bearer-g1"})
	if err != nil {
		t.Fatal(err)
	}
	next, err := f.prov.(providers.Renewer).Renew(ctxT(t), tok)
	if err != nil {
		t.Fatalf("Renew() error = %v", err)
	}
	if !f.srv.Valid(next.Secret.Reveal()) {
		t.Errorf("Valid(renewed) = false")
	}
	if s := f.srv.Stats(); s.Renews != 1 || s.Replays != 0 {
		t.Errorf("Stats() = %+v, want 1 renew and no replay", s)
	}
}

func TestSessionRelogin(t *testing.T) {
	tests := []struct {
		name  string
		lapse func(*commvaulttest.Server, *clock)
	}{
		{"sessions ended at the vendor", func(s *commvaulttest.Server, _ *clock) { s.ExpireSessions() }},
		{"idle timeout", func(_ *commvaulttest.Server, c *clock) { c.Add(31 * time.Minute) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			f := newFixture(t, commvaulttest.Options{Now: clk.Now}, tokenConfig("MS_SCIM"))
			tok, err := f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-s-g1"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.prov.Inspect(ctxT(t), tok); err != nil {
				t.Fatal(err)
			}
			if n := f.srv.Stats().Logins; n != 1 {
				t.Errorf("Logins = %d before the lapse, want 1 (the session is reused)", n)
			}
			tt.lapse(f.srv, clk)
			if st, err := f.prov.Inspect(ctxT(t), tok); err != nil || st.Gone {
				t.Fatalf("Inspect() after the session lapsed = %+v, %v", st, err)
			}
			if err := f.prov.Revoke(ctxT(t), tok, providers.Token{}); err != nil {
				t.Fatalf("Revoke() error = %v", err)
			}
			if n := f.srv.Stats().Logins; n != 2 {
				t.Errorf("Logins = %d, want 2 (one re-login)", n)
			}
		})
	}
}

func TestLoginRefused(t *testing.T) {
	srv := commvaulttest.New(commvaulttest.Options{})
	t.Cleanup(srv.Close)
	const wrong = "not-the-password"
	acct, err := commvault.New(providerConfig(t, srv, commvaulttest.DefaultUser, wrong), providers.Options{HTTP: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := acct.Token(tokenConfig("ALL"))
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string]error{"Check": acct.Check(ctxT(t))}
	_, errs["Create"] = p.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-x-g1"})
	_, errs["Inspect"] = p.Inspect(ctxT(t), providers.Token{ID: "101"})
	for op, err := range errs {
		if !providers.IsUnauthorized(err) {
			t.Errorf("%s() err = %v (class %v), want unauthorized", op, err, providers.ClassOf(err))
		}
		if err != nil && strings.Contains(err.Error(), wrong) {
			t.Errorf("%s() error contains the password", op)
		}
	}
	good, err := commvault.New(providerConfig(t, srv, commvaulttest.DefaultUser, commvaulttest.DefaultPassword), providers.Options{HTTP: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if err := good.Check(ctxT(t)); err != nil {
		t.Errorf("Check() with the right password: %v", err)
	}
}

func TestInspectAndRevoke(t *testing.T) {
	f := newFixture(t, commvaulttest.Options{}, tokenConfig("OneTouch"))
	tok, err := f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-ir-g1"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.prov.Inspect(ctxT(t), tok)
	if err != nil || st.Gone || !st.ExpiresAt.Equal(tok.ExpiresAt) || !st.RenewableUntil.IsZero() {
		t.Errorf("Inspect() = %+v, %v; want expiry %v and no renewable-until", st, err, tok.ExpiresAt)
	}
	if err := f.prov.Revoke(ctxT(t), tok, providers.Token{}); err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	if err := f.prov.Revoke(ctxT(t), tok, providers.Token{}); err != nil {
		t.Errorf("Revoke() of a deleted token = %v, want nil (404 is done)", err)
	}
	if st, err := f.prov.Inspect(ctxT(t), tok); err != nil || !st.Gone {
		t.Errorf("Inspect(revoked) = %+v, %v, want Gone", st, err)
	}
	before := f.srv.Stats().Requests
	for _, id := range []string{"", "abc", "1/../2", "-4"} {
		if err := f.prov.Revoke(ctxT(t), providers.Token{ID: id}, providers.Token{}); err == nil {
			t.Errorf("Revoke(id %q) = nil, want an error", id)
		}
		if _, err := f.prov.Inspect(ctxT(t), providers.Token{ID: id}); err == nil {
			t.Errorf("Inspect(id %q) error = nil, want an error", id)
		}
	}
	if n := f.srv.Stats().Requests - before; n != 0 {
		t.Errorf("invalid ids sent %d requests, want 0", n)
	}
}

func TestOrphans(t *testing.T) {
	f := newFixture(t, commvaulttest.Options{Users: map[string]string{
		commvaulttest.DefaultUser: commvaulttest.DefaultPassword, "someone": "else"}}, tokenConfig("ALL"))
	of := f.prov.(providers.OrphanFinder)
	kept, err := f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-o-g1"})
	if err != nil {
		t.Fatal(err)
	}
	// A create whose answer was lost: the token exists, tokend never got its secret.
	f.srv.SetFaults(commvaulttest.Faults{DropRate: 1})
	_, err = f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-o-g2"})
	f.srv.SetFaults(commvaulttest.Faults{})
	if !providers.IsAmbiguous(err) {
		t.Fatalf("Create() with the answer dropped: err = %v, want ambiguous", err)
	}
	// Tokens tokend did not make, with names close to its own.
	for _, s := range []struct{ user, name string }{
		{commvaulttest.DefaultUser, "tokend-o-g2-manual"},
		{commvaulttest.DefaultUser, "backup-scripts"},
		{"someone", "tokend-o-g3"},
	} {
		if _, err := f.srv.Seed(s.user, s.name, "ALL"); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		req  providers.CreateRequest
		want []string // names
	}{
		{"the lost create", providers.CreateRequest{VendorName: "tokend-o-g2", Keep: []string{kept.ID}}, []string{"tokend-o-g2"}},
		{"a kept id is never returned", providers.CreateRequest{VendorName: "tokend-o-g1", Keep: []string{kept.ID}}, nil},
		{"another user's token is not seen", providers.CreateRequest{VendorName: "tokend-o-g3"}, nil},
		{"no name matches nothing", providers.CreateRequest{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := of.Orphans(ctxT(t), tt.req)
			if err != nil {
				t.Fatalf("Orphans() error = %v", err)
			}
			var names []string
			for _, o := range got {
				names = append(names, o.Name)
				if !o.Secret.IsZero() || o.ID == "" || o.ExpiresAt.IsZero() {
					t.Errorf("orphan %+v: want an id and expiry, no secret", o)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.want, ",") {
				t.Errorf("Orphans() = %q, want %q", names, tt.want)
			}
			for _, o := range got {
				if err := f.prov.Revoke(ctxT(t), o, kept); err != nil {
					t.Errorf("Revoke(orphan) = %v", err)
				}
			}
		})
	}
	if s := f.srv.Stats(); s.Live != 4 {
		t.Errorf("Live = %d, want 4 (kept + 3 foreign)", s.Live)
	}
}

func TestCreateNameTakenIsAnErrorInside200(t *testing.T) {
	f := newFixture(t, commvaulttest.Options{}, tokenConfig("ALL"))
	if _, err := f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-dup-g1"}); err != nil {
		t.Fatal(err)
	}
	_, err := f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-dup-g1"})
	var ae *providers.APIError
	if !errors.As(err, &ae) || ae.Status != 0 || providers.IsAmbiguous(err) || !strings.Contains(ae.Message, "already present") {
		t.Errorf("Create(duplicate name) err = %v, want an APIError from the 200 body, not ambiguous", err)
	}
	if s := f.srv.Stats(); s.Live != 1 {
		t.Errorf("Live = %d, want 1", s.Live)
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t, commvaulttest.Options{}, tokenConfig("ALL"))
	v := f.prov.(providers.Verifier)
	tok, err := f.prov.Create(ctxT(t), providers.CreateRequest{VendorName: "tokend-v-g1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(ctxT(t), tok); err != nil {
		t.Errorf("Verify(new) = %v", err)
	}
	bad := tok
	bad.Secret = providers.NewSecret("0123456789ABCDEF")
	if err := v.Verify(ctxT(t), bad); !providers.IsUnauthorized(err) {
		t.Errorf("Verify(wrong secret) = %v, want unauthorized", err)
	}
}

// stub answers every login and the one request under test with a canned answer.
type stub struct {
	method, path string
	status       int
	body         string
	header       map[string]string
}

func (s stub) serve(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/Login" {
			_, _ = w.Write([]byte(`{"token":"3a1f9c","userName":"tokend","errList":[]}`))
			return
		}
		if r.Method != s.method || r.URL.Path != "/api"+s.path {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusTeapot)
			return
		}
		if r.URL.Path != "/api/V4/AccessToken/Renew" && r.Header.Get("Authtoken") != "QSDK 3a1f9c" &&
			r.URL.Path != "/api/v2/WhoAmI" {
			t.Errorf("%s %s: Authtoken = %q, want the session with the QSDK prefix added", r.Method, r.URL.Path, r.Header.Get("Authtoken"))
		}
		for k, v := range s.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(s.status)
		_, _ = w.Write([]byte(s.body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

const (
	stubAccess  = "ACCESS-7f3e9b1c2d"
	stubRefresh = "REFRESH-9a8b7c6d5e"
)

// TestClassification feeds each operation canned vendor answers and checks how the error is sorted.
func TestClassification(t *testing.T) {
	const (
		ok = -1 // the call must succeed
	)
	type op struct {
		name, method, path string
		call               func(providers.Provider) error
	}
	tok := providers.Token{ID: "7", Name: "tokend-c-g1", Secret: providers.NewSecret(stubAccess),
		Refresh: providers.NewSecret(stubRefresh), ExpiresAt: time.Unix(1767227400, 0)}
	create := op{"create", "POST", "/V4/AccessToken", func(p providers.Provider) error {
		_, err := p.Create(t.Context(), providers.CreateRequest{VendorName: "tokend-c-g1"})
		return err
	}}
	renew := op{"renew", "POST", "/V4/AccessToken/Renew", func(p providers.Provider) error {
		_, err := p.(providers.Renewer).Renew(t.Context(), tok)
		return err
	}}
	inspect := op{"inspect", "GET", "/V4/AccessToken", func(p providers.Provider) error {
		_, err := p.Inspect(t.Context(), tok)
		return err
	}}
	revoke := op{"revoke", "DELETE", "/V4/AccessToken/7", func(p providers.Provider) error {
		return p.Revoke(t.Context(), tok, providers.Token{})
	}}
	verify := op{"verify", "GET", "/v2/WhoAmI", func(p providers.Provider) error {
		return p.(providers.Verifier).Verify(t.Context(), tok)
	}}
	garbage := `{"tokenInfo": {"accessTokenId": 10, "accessTok`
	tests := []struct {
		op     op
		status int
		body   string
		header map[string]string
		want   providers.Class // or ok
	}{
		{create, 403, `{"errorMessage":"User does not have permission","errorCode":403}`, nil, providers.Unauthorized},
		{create, 404, ``, nil, providers.NotFound}, // a server older than SP38
		{create, 429, `{}`, map[string]string{"Retry-After": "7"}, providers.RateLimited},
		{create, 500, `{"errorMessage":"Internal error","errorCode":500}`, nil, providers.Transient},
		{create, 200, garbage, nil, providers.Ambiguous},
		{create, 200, `{"error":{"errorMessage":"","errorCode":0},"tokenInfo":{"accessTokenId":10}}`, nil, providers.Ambiguous},
		{create, 200, `{"error":{"errorMessage":"Token name already present","errorCode":1001},"tokenInfo":{}}`, nil, providers.Permanent},
		{create, 200, `{"error":{"errorCode":0},"tokenInfo":{"error":{"errorMessage":"Invalid apiEndpoints","errorCode":2}}}`, nil, providers.Permanent},
		{create, 200, `{"error":{"errorMessage":"","errorCode":0},"tokenInfo":{"accessTokenId":10,"tokenName":"tokend-c-g1","accessToken":"A1","refreshToken":"R1","tokenExpiryTimestamp":1767227400,"refreshTokenExpiryTimestamp":1768435200,"renewableUntilTimestamp":1775000000}}`, nil, ok},
		{renew, 400, `{"errorMessage":"Token cannot be renewed any more","errorCode":7}`, nil, providers.NotRenewable},
		{renew, 400, `{"errorMessage":"Refresh token has expired","errorCode":8}`, nil, providers.NotRenewable},
		{renew, 404, `{"errorMessage":"Invalid access token","errorCode":404}`, nil, providers.NotFound},
		{renew, 401, `{"errorMessage":"Access denied","errorCode":5}`, nil, providers.Unauthorized},
		{renew, 503, ``, map[string]string{"Retry-After": "3"}, providers.Transient},
		{renew, 200, garbage, nil, providers.Ambiguous},
		{renew, 200, `{"error":{"errorMessage":"renew refused: ` + stubAccess + `","errorCode":9}}`, nil, providers.Permanent},
		{renew, 200, `{"error":{"errorMessage":"","errorCode":0},"accessTokenId":7,"accessToken":"A2","refreshToken":"R2","tokenExpiryTimestamp":1767229200,"refreshTokenExpiryTimestamp":1768437000,"renewableUntilTimestamp":1775000000,"tokenType":2}`, nil, ok},
		{renew, 200, `{"error":{"errorMessage":"","errorCode":0},"accessTokenId":8,"accessToken":"A2","refreshToken":"R2","tokenExpiryTimestamp":1767229200}`, nil, providers.Ambiguous},
		{inspect, 200, `{"tokens":[{"accessTokenId":7,"tokenName":"tokend-c-g1","tokenType":"ALL","tokenExpiryTimestamp":1767227400,"renewableUntilTimestamp":1775000000}],"error":{"errorMessage":"","errorCode":0}}`, nil, ok},
		{inspect, 200, `{"tokens":[{"accessTokenId":"7","tokenType":2,"tokenExpiryTimestamp":"1767227400"}]}`, nil, ok},
		{inspect, 200, `{"error":{"errorMessage":"Access denied","errorCode":5}}`, nil, providers.Unauthorized},
		{inspect, 200, `[]`, nil, providers.Transient},
		{inspect, 200, `{"tokens":[{"accessTokenId":7,"tokenExpiryTimestamp":1.5e9}]}`, nil, ok},
		{inspect, 502, `<html>Bad Gateway</html>`, nil, providers.Transient},
		{revoke, 404, ``, nil, ok},
		{revoke, 200, ``, nil, ok},
		{revoke, 200, `{"errorMessage":"","errorCode":0}`, nil, ok},
		{revoke, 200, `{"errorMessage":"Access token not found","errorCode":2}`, nil, ok},
		{revoke, 200, `{"errorMessage":"Cannot delete","errorCode":3}`, nil, providers.Permanent},
		{revoke, 403, `{"errorMessage":"No permission","errorCode":6}`, nil, providers.Unauthorized},
		{verify, 403, `{"errorMessage":"The access token is not authorized for this API","errorCode":9}`, nil, providers.Unauthorized},
		{verify, 200, `{"user":{"userName":"tokend","userId":5}}`, nil, ok},
	}
	for i, tt := range tests {
		t.Run(strconv.Itoa(i)+"/"+tt.op.name+"/"+strconv.Itoa(tt.status), func(t *testing.T) {
			srv := stub{tt.op.method, tt.op.path, tt.status, tt.body, tt.header}.serve(t)
			pw := t.TempDir() + "/pw"
			if err := writeFile(pw, "pw-5e3c1a9b"); err != nil {
				t.Fatal(err)
			}
			acct, err := commvault.New(config.Provider{Name: "cv", URL: srv.URL + "/api/", Username: "tokend", PasswordFile: config.SecretRef(pw)},
				providers.Options{HTTP: srv.Client(), Now: func() time.Time { return time.Unix(1767225600, 0) }})
			if err != nil {
				t.Fatal(err)
			}
			p, err := acct.Token(tokenConfig("ALL"))
			if err != nil {
				t.Fatal(err)
			}
			err = tt.op.call(p)
			if tt.want == ok {
				if err != nil {
					t.Fatalf("%s error = %v, want nil", tt.op.name, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s error = nil, want class %v", tt.op.name, tt.want)
			}
			if got := providers.ClassOf(err); got != tt.want {
				t.Errorf("%s class = %v, want %v (err: %v)", tt.op.name, got, tt.want, err)
			}
			if tt.header["Retry-After"] != "" && providers.RetryAfterOf(err) <= 0 {
				t.Errorf("RetryAfterOf = %v, want > 0", providers.RetryAfterOf(err))
			}
			for _, s := range []string{stubAccess, stubRefresh, "pw-5e3c1a9b", "3a1f9c"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}
