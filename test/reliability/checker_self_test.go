package reliability

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCheckerCatches proves the checker can fail: with no tokend running, a sink holding a value no vendor
// issued is a bad sample, and the bootstrap tokens minted at VCD and Astra, which no state holds, are leaks.
func TestCheckerCatches(t *testing.T) {
	enabled(t)
	c := newCluster(t, fastTiming, 1)
	in := c.instances[0]
	if err := os.WriteFile(filepath.Join(in.sinks, "astra-api-token"), []byte("not-a-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := c.startChecker(500 * time.Millisecond)
	waitFor(t, 10*time.Second, "the checker to see the bad sample and the leaks", func() error {
		r := k.report()
		if r.Bad == 0 || r.Leaks < 2 {
			return errorf("bad=%d leaks=%d", r.Bad, r.Leaks)
		}
		return nil
	})
	k.stop()
	if u := k.unheld(); len(u) < 2 {
		t.Errorf("unheld vendor tokens %v, want the two bootstrap tokens", u)
	}
}
