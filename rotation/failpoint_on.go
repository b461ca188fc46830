//go:build tokend_failpoints

package rotation

import (
	"os"
	"syscall"
)

// failpoint kills the process with SIGKILL when TOKEND_FAILPOINT names this step ("after-pending") or this
// step of one token ("after-pending:astra-backup"). Only binaries built with -tags tokend_failpoints have
// it: the crash tests use them to kill tokend at each step of a rotation.
func failpoint(step, token string) {
	fp := os.Getenv("TOKEND_FAILPOINT")
	if fp == "" || (fp != step && fp != step+":"+token) {
		return
	}
	// Once per process start, so the restarted process can finish what this one left.
	if os.Getenv("TOKEND_FAILPOINT_ONCE_FILE") != "" {
		f, err := os.OpenFile(os.Getenv("TOKEND_FAILPOINT_ONCE_FILE"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return
		}
		f.Close()
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
