//go:build !tokend_failpoints

package rotation

// failpoint marks a step of a rotation where the crash tests kill the process. Release builds compile it
// to nothing; see failpoint_on.go.
func failpoint(string, string) {}
