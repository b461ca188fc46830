package demo

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/daemon"
	"github.com/tokend/tokend/rotation"
)

func newDemo(t *testing.T, opts Options) *Demo {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener = ln
	d, err := New(opts)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

// TestConfig checks the generated config: it validates as `tokend check` would, manages one token of
// every kind of DESIGN.md section 1, holds no secret inline, and its timing makes every kind act, and
// every superseded token be revoked, well within a 40-second run.
func TestConfig(t *testing.T) {
	d := newDemo(t, Options{Dir: t.TempDir()})
	cfg := d.Config()
	if err := daemon.Validate(cfg); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if cfg.Listen != d.Addr() {
		t.Errorf("listen = %q, want the listener's %q", cfg.Listen, d.Addr())
	}

	types := map[string]string{}
	for _, p := range cfg.Providers {
		types[p.Name] = p.Type
	}
	var kinds []string
	for _, tok := range cfg.Tokens {
		kinds = append(kinds, strings.TrimSuffix(types[tok.Provider]+"/"+tok.Kind+"/"+tok.TokenType, "/"))
	}
	slices.Sort(kinds)
	want := []string{
		"astra/api_token",
		"commvault/access_token/ALL", "commvault/access_token/MS_SCIM", "commvault/access_token/OneTouch",
		"huawei-idc/scim_token",
		"vcd/access_token", "vcd/api_token", "vcd/proxy_token",
	}
	if !slices.Equal(kinds, want) {
		t.Errorf("kinds = %v, want %v", kinds, want)
	}

	raw, err := os.ReadFile(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := filepath.Glob(filepath.Join(d.Dir, "secrets", "*"))
	if err != nil || len(secrets) != 7 {
		t.Fatalf("secret files = %v, %v; want 7", secrets, err)
	}
	for _, f := range secrets {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if v := strings.TrimSpace(string(b)); strings.Contains(string(raw), v) {
			t.Errorf("config holds the value of %s inline", filepath.Base(f))
		}
		if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", filepath.Base(f), fi.Mode().Perm())
		}
	}

	// First action of a fresh token, from its policy: it must come early enough that the action, the
	// revocation after it and a few retries fit into the first half of a 40 s run.
	const budget = 20 * time.Second
	for _, tok := range cfg.Tokens {
		pol := cfg.Resolve(tok)
		var first time.Duration
		switch {
		case types[tok.Provider] == "astra" || tok.Kind == "api_token":
			first = pol.MaxAge // never expires
		case tok.TokenType == "ALL":
			first = Lifetime - pol.RenewBefore.Of(Lifetime)
			if recreate := RenewableFor - pol.RecreateBefore; recreate+pol.RevokeAfter > budget+5*time.Second {
				t.Errorf("%s: recreated only after %v", tok.Name, recreate)
			}
		default:
			first = Lifetime - pol.RenewBefore.Of(Lifetime)
		}
		if first <= 0 || first+pol.RevokeAfter > budget {
			t.Errorf("%s: first action after %v, revocation %v later; want both within %v", tok.Name, first, pol.RevokeAfter, budget)
		}
		if pol.RetryMax > 5*time.Second {
			t.Errorf("%s: retry.max = %v, too slow for a demo", tok.Name, pol.RetryMax)
		}
		if len(tok.Deliver) != 1 || tok.Deliver[0].File == nil || filepath.Dir(tok.Deliver[0].File.Path) != d.TokensDir {
			t.Errorf("%s: deliver = %+v, want one file in %s", tok.Name, tok.Deliver, d.TokensDir)
		}
	}
}

// TestAuditBeforeRun: before the daemon ran, tokend holds nothing, so the two tokens minted "by hand"
// for the bootstrap files are live at the vendors and held by nobody: the audit must count them stray.
func TestAuditBeforeRun(t *testing.T) {
	d := newDemo(t, Options{Dir: t.TempDir()})
	a, err := d.Audit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (Audit{Live: 2, Stray: 2}); a != want {
		t.Errorf("Audit() = %+v, want %+v", a, want)
	}
}

func TestCloseRemovesTempDir(t *testing.T) {
	for _, keep := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		d, err := New(Options{Listener: ln, Keep: keep})
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		d.Close() // twice is fine
		_, err = os.Stat(d.Dir)
		if exists := err == nil; exists != keep {
			t.Errorf("keep=%v: directory exists after Close = %v", keep, exists)
		}
		_ = os.RemoveAll(d.Dir)
		// The listener was never handed to a running daemon: Close must have released it.
		if l2, err := net.Listen("tcp", ln.Addr().String()); err != nil {
			t.Errorf("keep=%v: listener still open after Close: %v", keep, err)
		} else {
			l2.Close()
		}
	}
}

func TestChanges(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := t0.Add(time.Minute)
	snap := func(gen int64, created time.Time, prevRevoke time.Time, failures int, state string) rotation.Snapshot {
		return rotation.Snapshot{Name: "tok", Generation: gen, CreatedAt: created, PrevRevokeAt: prevRevoke,
			ConsecutiveFailures: failures, State: state, LastError: "creating token: 503"}
	}
	cur := rotation.StateCurrent
	tests := []struct {
		name          string
		before, after []rotation.Snapshot
		want          []string // What (generation) of each event
	}{
		{"nothing yet", nil, []rotation.Snapshot{snap(0, time.Time{}, time.Time{}, 0, rotation.StateRotating)}, nil},
		{"first token", nil, []rotation.Snapshot{snap(1, t0, time.Time{}, 0, cur)}, []string{"created 1"}},
		{"unchanged", []rotation.Snapshot{snap(2, t0, time.Time{}, 0, cur)}, []rotation.Snapshot{snap(2, t0, time.Time{}, 0, cur)}, nil},
		{"renewed in place", []rotation.Snapshot{snap(2, t0, time.Time{}, 0, cur)}, []rotation.Snapshot{snap(3, t0, time.Time{}, 0, cur)}, []string{"renewed 3"}},
		{"recreated", []rotation.Snapshot{snap(2, t0, time.Time{}, 0, cur)}, []rotation.Snapshot{snap(3, t0.Add(time.Second), t0.Add(3*time.Second), 0, cur)}, []string{"recreated 3"}},
		{"recreated, same creation second", []rotation.Snapshot{snap(2, t0, time.Time{}, 0, cur)}, []rotation.Snapshot{snap(3, t0, t0.Add(3*time.Second), 0, cur)}, []string{"recreated 3"}},
		{"previous revoked", []rotation.Snapshot{snap(3, t0, t0.Add(3*time.Second), 0, cur)}, []rotation.Snapshot{snap(3, t0, time.Time{}, 0, cur)}, []string{"revoked previous 2"}},
		{"revoked and recreated again", []rotation.Snapshot{snap(3, t0, t0.Add(3*time.Second), 0, cur)},
			[]rotation.Snapshot{snap(4, t0.Add(time.Second), t0.Add(9*time.Second), 0, cur)}, []string{"revoked previous 2", "recreated 4"}},
		{"attempt failed", []rotation.Snapshot{snap(3, t0, time.Time{}, 0, cur)}, []rotation.Snapshot{snap(3, t0, time.Time{}, 1, cur)}, []string{"attempt failed 3"}},
		{"failed first create", nil, []rotation.Snapshot{snap(0, time.Time{}, time.Time{}, 1, rotation.StateFailed)}, []string{"attempt failed 0", "needs attention 0"}},
		{"expired", []rotation.Snapshot{snap(3, t0, time.Time{}, 0, cur)}, []rotation.Snapshot{snap(3, t0, time.Time{}, 0, rotation.StateExpired)}, []string{"needs attention 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range Changes(tt.before, tt.after, now) {
				if e.Token != "tok" || !e.At.Equal(now) {
					t.Errorf("event %+v: wrong token or time", e)
				}
				got = append(got, e.What+" "+strconv.FormatInt(e.Generation, 10))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Changes() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewFailsCleanly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Listener: ln, Dir: filepath.Join(file, "demo")})
	if err == nil || d != nil {
		t.Fatalf("New(dir under a file) = %v, %v; want nil and an error", d, err)
	}
	if l2, err := net.Listen("tcp", ln.Addr().String()); err != nil {
		t.Errorf("listener still open after a failed New: %v", err)
	} else {
		l2.Close()
	}
}
