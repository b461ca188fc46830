//go:build !tokend_failpoints

package daemon

import "log/slog"

// wedge is where the watchdog test blocks the scheduler loop. Release builds compile it to nothing; see
// wedge_on.go.
func wedge(*slog.Logger) {}
