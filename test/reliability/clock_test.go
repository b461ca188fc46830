package reliability

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/cmd/tokend/tokendtest"
	"github.com/tokend/tokend/providers"
)

// TestClockSkew runs tokend against vendor fakes whose clocks, Date headers included, are five minutes
// ahead of ours, and against fakes five minutes behind.
//
// Ahead: the tokens live 12 s on the vendor's clock, so a tokend that planned on the absolute times the
// vendors state (Commvault's tokenExpiryTimestamp, Huawei's expiration_time, VCD's expirationTimeUtc)
// would renew five minutes after its tokens died and leave them in the sinks: the checker must find no bad
// sample, and every token must rotate twice (ten times in long mode), Astra's by max_age from a creation
// time that is the vendor's too.
//
// Behind: a vendor behind us says its tokens expire earlier than they do, and tokend must not move a time
// later: tokens live 640 s, so the Huawei token (whose issue time is the vendor's) and the Astra token (max
// age 320 s from the vendor's creation time) are due 20 s after they are made instead of 320 s, and must
// rotate, early, without anything else going wrong.
//
// In both, tokend holds the vendor's expiry as stated and never plans its next action after the token's
// death on our clock (less 2 s for the Date header's resolution when the vendor is ahead), tokend_provider_clock_skew_seconds shows every vendor's
// skew within 2 s, and the checker finds no leak, replay or double rotation.
func TestClockSkew(t *testing.T) {
	enabled(t)
	t.Parallel()
	t.Run("ahead", func(t *testing.T) {
		t.Parallel()
		tm := timing{Lifetime: 12 * time.Second, MaxAge: 8 * time.Second, RenewableFor: 24 * time.Second,
			RecreateBefore: 4 * time.Second, RevokeAfter: 2 * time.Second, Skew: 5 * time.Minute, VendorLifetimes: true}
		runClockSkew(t, tm, "clock-ahead", func(string) int64 { return pick[int64](2, 10) })
	})
	t.Run("behind", func(t *testing.T) {
		t.Parallel()
		tm := timing{Lifetime: 640 * time.Second, MaxAge: 320 * time.Second, RenewableFor: 700 * time.Second,
			RecreateBefore: 60 * time.Second, RevokeAfter: 2 * time.Second, Skew: -5 * time.Minute, VendorLifetimes: true}
		early := map[string]bool{"huawei-scim-token": true, "astra-api-token": true}
		runClockSkew(t, tm, "clock-behind", func(n string) int64 {
			if early[n] {
				return pick[int64](1, 8)
			}
			return 0
		})
	})
}

// runClockSkew runs one instance with the fakes' clocks tm.Skew off ours until every token n has rotated
// rotations(n) more times after its first generation, then checks the held expiries, the skew metric and
// the checker's figures.
func runClockSkew(t *testing.T, tm timing, scenario string, rotations func(string) int64) {
	tokendtest.Binary(t) // before the fakes mint the bootstrap tokens, whose age counts from then
	c := newCluster(t, tm, 1)
	in := c.instances[0]
	in.start()
	k := c.startChecker(c.timing.RevokeAfter + leakGrace)
	c.waitGenerations(30*time.Second, "every token's first generation", func(string) int64 { return 1 })
	first, _ := c.generations()
	held, reported := 0, map[string]bool{}
	// Not waitFor: a tokend that gets the skew wrong also rotates late, and the checker's figures (bad
	// samples) are the measure of it.
	deadline := time.Now().Add(pick(90*time.Second, 400*time.Second))
	for {
		held += checkHeldExpiries(t, c, reported) // all along, not only at the end
		gens, err := c.generations()
		var behind []string
		for _, n := range c.names() {
			if want := first[n] + rotations(n); err != nil || gens[n] < want {
				behind = append(behind, fmt.Sprintf("%s at %d, want %d", n, gens[n], want))
			}
		}
		if len(behind) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("tokens did not rotate in time: %s", strings.Join(behind, "; "))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if in.exited() {
		t.Fatalf("tokend exited:\n%s", in.logTail())
	}
	if held == 0 {
		t.Error("no expiry of a vendor's clock was checked")
	}
	skews := scrapeClockSkew(t, in)
	var shown []string
	for _, p := range []string{"astra", "commvault", "huawei", "vcd"} {
		v, ok := skews[p]
		if !ok || (time.Duration(v*float64(time.Second))-tm.Skew).Abs() > 2*time.Second {
			t.Errorf("tokend_provider_clock_skew_seconds{provider=%q} = %v (present %v), want %v ± 2 s", p, v, ok, tm.Skew.Seconds())
		}
		shown = append(shown, fmt.Sprintf("%s=%.3f", p, v))
	}
	k.finish(scenario, fmt.Sprintf("skew=%v held-expiries-checked=%d tokend_provider_clock_skew_seconds %s", tm.Skew, held,
		strings.Join(shown, " ")))
}

// checkHeldExpiries compares every current token tokend holds with its fake: tokend keeps the expiry the
// vendor states, on the vendor's clock (DESIGN.md section 11), and plans its next action no later than the
// token's death on our clock (the stated expiry less the skew when the vendor is ahead, 2 s allowed for the
// skew's resolution; the stated expiry itself when it is behind). It returns how many tokens it compared; a
// token found wrong is reported once in reported.
func checkHeldExpiries(t *testing.T, c *cluster, reported map[string]bool) int {
	t.Helper()
	r, closeFn := c.reader()
	defer closeFn()
	states, err := r.Load(context.Background(), c.names())
	if err != nil {
		return 0 // Redis is not down in this scenario; the next sample will do
	}
	// Read the fakes after the state: an expiry the vendor moved since (a renew) is only later. Then the state
	// again: a token whose rotation started meanwhile is left to the next sample.
	stated := map[string]time.Time{}
	for _, tk := range c.vendors.cv.Tokens() {
		stated["commvault/"+tk.ID] = tk.ExpiresAt
	}
	for _, tk := range c.vendors.huawei.Tokens() {
		stated["huawei/"+tk.ID] = tk.ExpiresAt
	}
	for _, tk := range c.vendors.vcd.Tokens() {
		stated["vcd/"+tk.ID] = tk.ExpiresAt
	}
	again, err := r.Load(context.Background(), c.names())
	if err != nil {
		return 0
	}
	slack := time.Duration(0)
	if c.timing.Skew > 0 {
		slack = 2 * time.Second
	}
	n := 0
	for _, spec := range c.vendors.tokens {
		st := states[spec.name]
		var cur *providers.Token
		if st != nil {
			cur = st.Current
		}
		if cur == nil || cur.ExpiresAt.IsZero() {
			continue
		}
		if a := again[spec.name]; a == nil || a.Generation != st.Generation || a.Intent != nil || a.Pending != nil ||
			st.Intent != nil || st.Pending != nil {
			continue // a rotation under way: the vendor may already hold the next expiry
		}
		exp, ok := stated[spec.provider+"/"+cur.ID]
		if !ok || exp.IsZero() {
			continue
		}
		n++
		if d := cur.ExpiresAt.Sub(exp); d.Abs() > time.Second && !reported[spec.name] {
			reported[spec.name] = true
			t.Errorf("%s: tokend holds expiry %s, want the vendor's %s", spec.name,
				cur.ExpiresAt.Format(time.RFC3339Nano), exp.Format(time.RFC3339Nano))
		}
		dies := exp.Add(-max(c.timing.Skew, 0))
		if st.NextAt.After(dies.Add(slack)) && !reported[spec.name] {
			reported[spec.name] = true
			t.Errorf("%s: tokend plans its next action (%s) at %s, but the token dies at %s on our clock (the vendor states %s on its clock, %v off ours)",
				spec.name, st.NextAction, st.NextAt.Format(time.RFC3339Nano), dies.Format(time.RFC3339Nano), exp.Format(time.RFC3339Nano), c.timing.Skew)
		}
	}
	return n
}

// scrapeClockSkew reads tokend_provider_clock_skew_seconds from the instance's /metrics, by provider.
func scrapeClockSkew(t *testing.T, in *instance) map[string]float64 {
	t.Helper()
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + in.listen + "/metrics")
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	const prefix = `tokend_provider_clock_skew_seconds{provider="`
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		name, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("tokend_provider_clock_skew_seconds for %v: %v", names, out)
	return out
}
