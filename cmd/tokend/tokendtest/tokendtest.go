// Package tokendtest gives end-to-end tests the tokend binary and loopback addresses.
package tokendtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// TestTags are the build tags of the binary the end-to-end tests run: the test provider (type "fake",
// talking to providertest's HTTP fake) and the failpoints, inert unless TOKEND_FAILPOINT is set. Every
// package builds with the same tags, so they share the build cache.
const TestTags = "tokend_testprovider,tokend_failpoints"

var shared struct {
	once      sync.Once
	dir, path string
	err       error
}

// Binary returns tokend built with TestTags, once per test process, in a directory RemoveBinary deletes.
func Binary(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "tokend-e2e-")
		if shared.err == nil {
			shared.path, shared.err = build(shared.dir, TestTags)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.path
}

// RemoveBinary deletes what Binary built; call it from TestMain after the tests ran.
func RemoveBinary() {
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
}

// Build builds tokend with tags (none: the binary as shipped) into dir and returns its path.
func Build(t testing.TB, dir, tags string) string {
	t.Helper()
	path, err := build(dir, tags)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func build(dir, tags string) (string, error) {
	path := filepath.Join(dir, "tokend")
	args := []string{"build", "-o", path}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	out, err := exec.Command("go", append(args, "github.com/tokend/tokend/cmd/tokend")...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building tokend: %v\n%s", err, out)
	}
	return path, nil
}

// FreeAddr returns a loopback host:port on which nothing listened a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}
