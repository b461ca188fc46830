package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/commvault/commvaulttest"
	"github.com/tokend/tokend/providers/huaweiidc/huaweiidctest"
	"github.com/tokend/tokend/scheduler"
)

type fixedSkew time.Duration

func (s fixedSkew) ClockSkew(string) (time.Duration, bool) { return time.Duration(s), true }

// stubProvider answers with fixed vendor times and records the tokens and requests it is given.
type stubProvider struct {
	tok    providers.Token
	status providers.Status
	gotTok providers.Token
	gotReq providers.CreateRequest
}

func (p *stubProvider) Inspect(_ context.Context, t providers.Token) (providers.Status, error) {
	p.gotTok = t
	return p.status, nil
}

func (p *stubProvider) Create(_ context.Context, req providers.CreateRequest) (providers.Token, error) {
	p.gotReq = req
	return p.tok, nil
}

func (p *stubProvider) Revoke(_ context.Context, t, _ providers.Token) error {
	p.gotTok = t
	return nil
}

func (p *stubProvider) Renew(_ context.Context, t providers.Token) (providers.Token, error) {
	p.gotTok = t
	return p.tok, nil
}

// abilities returns the set of optional provider interfaces p has, as withAbilities numbers them.
func abilities(p providers.Provider) int {
	n := 0
	if _, ok := p.(providers.Renewer); ok {
		n |= 1
	}
	if _, ok := p.(providers.Verifier); ok {
		n |= 2
	}
	if _, ok := p.(providers.Bootstrapper); ok {
		n |= 4
	}
	if _, ok := p.(providers.OrphanFinder); ok {
		n |= 8
	}
	return n
}

// TestWithAbilitiesKeepsExactlyTheInnerAbilities: the engine finds renew, verify, bootstrap and orphan
// search by type assertion, so the wrapper must neither hide nor add one.
func TestWithAbilitiesKeepsExactlyTheInnerAbilities(t *testing.T) {
	for set := range withAbilities {
		if got := abilities(withAbilities[set](&skewed{})); got != set {
			t.Errorf("withAbilities[%d] has abilities %d", set, got)
		}
	}
	inner := &stubProvider{} // a Provider and a Renewer
	if got := abilities(onOurClock(inner, "cv", "commvault", "access_token", fixedSkew(0))); got != 1 {
		t.Errorf("abilities of a wrapped Renewer = %d, want 1", got)
	}
}

func TestOnOurClockWrapsOnlyVendorTimes(t *testing.T) {
	tests := []struct {
		typ, kind string
		wrapped   bool
	}{
		{"commvault", "access_token", true},
		{"huawei-idc", "scim_token", true},
		{"vcd", "proxy_token", true},
		{"astra", "api_token", true},
		{"vcd", "access_token", false}, // expires_in: already on our clock
		{"vcd", "api_token", false},
		{"fake", "renewable", false},
	}
	for _, tt := range tests {
		inner := &stubProvider{}
		p := onOurClock(inner, "p", tt.typ, tt.kind, fixedSkew(5*time.Minute))
		if got := p != providers.Provider(inner); got != tt.wrapped {
			t.Errorf("onOurClock(%s %s) wrapped = %v, want %v", tt.typ, tt.kind, got, tt.wrapped)
		}
	}
}

// TestOnOurClockTranslatesVendorTimes: a vendor ahead by s has its absolute times moved s earlier (only the
// times it states on its own clock); a vendor behind, or within the noise, has them left alone; the
// provider is always handed back the times as the vendor stated them.
func TestOnOurClockTranslatesVendorTimes(t *testing.T) {
	ours := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // our clock when the answer arrived
	const skew = 5 * time.Minute
	vendorNow := ours.Add(skew)
	answer := providers.Token{ID: "42", IssuedAt: ours, CreatedAt: ours,
		ExpiresAt: vendorNow.Add(30 * time.Second), RenewableUntil: vendorNow.Add(time.Hour)}
	tests := []struct {
		name, typ   string
		skew        time.Duration
		wantExpires time.Time
		wantUntil   time.Time
		wantIssued  time.Time
	}{
		{"commvault ahead", "commvault", skew, ours.Add(30 * time.Second), ours.Add(time.Hour), ours},
		{"huawei ahead: issue time is the vendor's too", "huawei-idc", skew, ours.Add(30 * time.Second), vendorNow.Add(time.Hour), ours.Add(-skew)},
		{"commvault behind: never later", "commvault", -skew, answer.ExpiresAt, answer.RenewableUntil, ours},
		{"commvault within the noise", "commvault", 1500 * time.Millisecond, answer.ExpiresAt, answer.RenewableUntil, ours},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := &stubProvider{tok: answer, status: providers.Status{ExpiresAt: answer.ExpiresAt, RenewableUntil: answer.RenewableUntil}}
			p := onOurClock(inner, "p", tt.typ, "access_token", fixedSkew(tt.skew))
			got, err := p.Create(context.Background(), providers.CreateRequest{VendorName: "v"})
			if err != nil {
				t.Fatal(err)
			}
			if !got.ExpiresAt.Equal(tt.wantExpires) || !got.RenewableUntil.Equal(tt.wantUntil) || !got.IssuedAt.Equal(tt.wantIssued) {
				t.Errorf("Create() times = expires %v, renewable until %v, issued %v; want %v, %v, %v",
					got.ExpiresAt, got.RenewableUntil, got.IssuedAt, tt.wantExpires, tt.wantUntil, tt.wantIssued)
			}
			st, err := p.Inspect(context.Background(), got)
			if err != nil {
				t.Fatal(err)
			}
			if !inner.gotTok.ExpiresAt.Equal(answer.ExpiresAt) {
				t.Errorf("Inspect() handed the provider expiry %v, want the vendor's %v", inner.gotTok.ExpiresAt, answer.ExpiresAt)
			}
			if !st.ExpiresAt.Equal(got.ExpiresAt) {
				t.Errorf("Inspect() expiry = %v, want %v (as Create translated it: no change seen)", st.ExpiresAt, got.ExpiresAt)
			}
			renewed, err := p.(providers.Renewer).Renew(context.Background(), got)
			if err != nil {
				t.Fatal(err)
			}
			if !inner.gotTok.RenewableUntil.Equal(answer.RenewableUntil) || !renewed.ExpiresAt.Equal(tt.wantExpires) {
				t.Errorf("Renew() handed renewable until %v and returned expiry %v; want %v and %v",
					inner.gotTok.RenewableUntil, renewed.ExpiresAt, answer.RenewableUntil, tt.wantExpires)
			}
		})
	}
}

// TestOrphanSearchStartsOnTheVendorsClock: Huawei finds tokend's leftovers by creation time from
// StartedAt; a vendor behind our clock must not hide them, so StartedAt moves by the skew either way.
func TestOrphanSearchStartsOnTheVendorsClock(t *testing.T) {
	started := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, skew := range []time.Duration{5 * time.Minute, -5 * time.Minute} {
		inner := &stubProvider{}
		p := onOurClock(inner, "hw", "huawei-idc", "scim_token", fixedSkew(skew))
		if _, err := p.Create(context.Background(), providers.CreateRequest{StartedAt: started}); err != nil {
			t.Fatal(err)
		}
		if want := started.Add(skew); !inner.gotReq.StartedAt.Equal(want) {
			t.Errorf("skew %v: provider got StartedAt %v, want %v", skew, inner.gotReq.StartedAt, want)
		}
	}
}

// TestVendorAheadIsPlannedOnItsClock builds the real providers (with the metrics transport, as the daemon
// does) against Commvault and Huawei fakes whose clocks and Date headers are five minutes ahead, with
// 40 s tokens: the expiry tokend holds is when the token really dies on our clock, and the token is due
// before then. Without the translation tokend would plan on a time five minutes after the token died.
func TestVendorAheadIsPlannedOnItsClock(t *testing.T) {
	const skew = 5 * time.Minute
	const life = 40 * time.Second
	ahead := func() time.Time { return time.Now().Add(skew) }
	cv := commvaulttest.New(commvaulttest.Options{Now: ahead, SCIMLifetime: life, AccessLifetime: life})
	t.Cleanup(cv.Close)
	hw := huaweiidctest.New(huaweiidctest.Options{Now: ahead, Lifetime: life})
	t.Cleanup(hw.Close)
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := config.Parse(fmt.Appendf(nil, `redis: {url: "redis://127.0.0.1:1/0"}
state_key_file: %s
defaults: {renew_before: 50%%, jitter: 0%%}
providers:
  - {name: cv, type: commvault, url: %s, username: %s, password_file: %s}
  - {name: hw, type: huawei-idc, url: %s, scim_url: %s, identity_store_id: %s, access_key_file: %s, secret_key_file: %s}
tokens:
  - {name: cv-scim, provider: cv, kind: access_token, token_type: MS_SCIM, deliver: [{file: {path: %s/a}}]}
  - {name: cv-all, provider: cv, kind: access_token, token_type: ALL, deliver: [{file: {path: %s/b}}]}
  - {name: hw-scim, provider: hw, kind: scim_token, tenant_id: %s, deliver: [{file: {path: %s/c}}]}
`, write("key", "0123456789abcdef0123456789abcdef"),
		cv.URL(), commvaulttest.DefaultUser, write("cvpw", commvaulttest.DefaultPassword),
		hw.URL(), hw.SCIMURL(), hw.IdentityStoreID(), write("ak", hw.AccessKey()), write("sk", hw.SecretKey()),
		dir, dir, hw.TenantID(), dir), "")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry(), nil, metrics.BuildInfo{}, false)
	w, err := build(cfg, nil, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	for _, name := range []string{"cv-scim", "cv-all", "hw-scim"} {
		rt := w.tokens[name]
		before := time.Now()
		tok, err := rt.Provider.Create(context.Background(), providers.CreateRequest{VendorName: "tokend-" + name + "-g1", StartedAt: before})
		if err != nil {
			t.Fatalf("%s: Create() = %v", name, err)
		}
		after := time.Now()
		// The fake truncates its clock to the second (Commvault) or millisecond (Huawei); the skew is
		// known to a second.
		dies := after.Add(life + time.Second)
		if tok.ExpiresAt.After(dies) || tok.ExpiresAt.Before(before.Add(life-2*time.Second)) {
			t.Errorf("%s: expiry held = %v, want the vendor's expiry on our clock, about %v", name, tok.ExpiresAt.Format(time.RFC3339), before.Add(life).Format(time.RFC3339))
		}
		if due := scheduler.DueAt(after, name, &tok, rt.Policy); !due.Before(after.Add(life)) {
			t.Errorf("%s: due at %v, after the token dies (%v)", name, due.Format(time.RFC3339), after.Add(life).Format(time.RFC3339))
		}
	}
	if s, ok := m.ClockSkew("cv"); !ok || (s-skew).Abs() > time.Second {
		t.Errorf("ClockSkew(cv) = %v, %v, want %v", s, ok, skew)
	}
}
