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

func TestVendorClockOnlyForVendorTimes(t *testing.T) {
	tests := []struct {
		typ, kind string
		clock     bool
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
		if got := newVendorClock("p", tt.typ, tt.kind, fixedSkew(5*time.Minute)) != nil; got != tt.clock {
			t.Errorf("newVendorClock(%s %s) != nil is %v, want %v", tt.typ, tt.kind, got, tt.clock)
		}
	}
	if newVendorClock("p", "commvault", "access_token", nil) != nil {
		t.Error("newVendorClock without a meter is not nil")
	}
}

// TestOnOursMovesVendorTimesEarlierNeverLater: a vendor ahead by s has its absolute times moved s earlier
// (only the times it states on its own clock); a vendor behind, or within the noise, has them left alone.
func TestOnOursMovesVendorTimesEarlierNeverLater(t *testing.T) {
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
			got := newVendorClock("p", tt.typ, "access_token", fixedSkew(tt.skew)).OnOurs(answer)
			if !got.ExpiresAt.Equal(tt.wantExpires) || !got.RenewableUntil.Equal(tt.wantUntil) || !got.IssuedAt.Equal(tt.wantIssued) {
				t.Errorf("OnOurs() times = expires %v, renewable until %v, issued %v; want %v, %v, %v",
					got.ExpiresAt, got.RenewableUntil, got.IssuedAt, tt.wantExpires, tt.wantUntil, tt.wantIssued)
			}
		})
	}
}

// TestOrphanSearchStartsOnTheVendorsClock: Huawei finds tokend's leftovers by creation time from
// StartedAt; a vendor behind our clock must not hide them, so StartedAt moves by the skew either way.
func TestOrphanSearchStartsOnTheVendorsClock(t *testing.T) {
	started := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, skew := range []time.Duration{5 * time.Minute, -5 * time.Minute} {
		if got, want := newVendorClock("hw", "huawei-idc", "scim_token", fixedSkew(skew)).Theirs(started), started.Add(skew); !got.Equal(want) {
			t.Errorf("skew %v: Theirs(StartedAt) = %v, want %v", skew, got, want)
		}
	}
	if got := newVendorClock("cv", "commvault", "access_token", fixedSkew(5*time.Minute)).Theirs(started); !got.Equal(started) {
		t.Errorf("Commvault finds orphans by name: Theirs() = %v, want %v unchanged", got, started)
	}
}

// TestVendorAheadIsPlannedOnItsClock builds the real providers (with the metrics transport, as the daemon
// does) against Commvault and Huawei fakes whose clocks and Date headers are five minutes ahead, with
// 40 s tokens: the expiry tokend holds is the vendor's, and the token is due before it really dies on our
// clock. Without the translation tokend would plan on a time five minutes after the token died.
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
		// tokend keeps the expiry the vendor stated, on its own clock (DESIGN.md section 11)...
		if vendorDies := after.Add(skew + life + time.Second); tok.ExpiresAt.After(vendorDies) || tok.ExpiresAt.Before(before.Add(skew+life-2*time.Second)) {
			t.Errorf("%s: expiry held = %v, want the vendor's, about %v", name, tok.ExpiresAt.Format(time.RFC3339), before.Add(skew+life).Format(time.RFC3339))
		}
		// ...and plans on it translated onto ours: due before the token dies.
		if rt.Clock == nil {
			t.Fatalf("%s: no vendor clock", name)
		}
		planned := rt.Clock.OnOurs(tok)
		if due := scheduler.DueAt(after, name, &planned, rt.Policy); !due.Before(after.Add(life)) {
			t.Errorf("%s: due at %v, after the token dies (%v)", name, due.Format(time.RFC3339), after.Add(life).Format(time.RFC3339))
		}
	}
	if s, ok := m.ClockSkew("cv"); !ok || (s-skew).Abs() > time.Second {
		t.Errorf("ClockSkew(cv) = %v, %v, want %v", s, ok, skew)
	}
}
