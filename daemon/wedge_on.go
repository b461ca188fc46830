//go:build tokend_failpoints

package daemon

import (
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
)

var wedgeTicks atomic.Int64

// wedge blocks the scheduler loop forever once it has ticked TOKEND_WEDGE_AFTER_TICKS times, so a test
// can see the systemd watchdog pings stop while the rest of the process (HTTP, polls) carries on. Only
// binaries built with -tags tokend_failpoints have it.
func wedge(log *slog.Logger) {
	n, err := strconv.ParseInt(os.Getenv("TOKEND_WEDGE_AFTER_TICKS"), 10, 64)
	if err != nil || n <= 0 || wedgeTicks.Add(1) <= n {
		return
	}
	log.Warn("failpoint: scheduler loop wedged", "op", "wedge")
	select {}
}
