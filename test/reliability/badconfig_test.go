package reliability

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokend/tokend/cmd/tokend/tokendtest"
)

// TestBrokenConfigs runs `tokend check` on every file of testdata/configs: each must exit 2 and print, on
// its first line, the message the file's first line names ("# want: MESSAGE"), without echoing a value
// the file holds after a secret-looking key. Files in testdata/configs/known are bugs found by this suite
// and not fixed yet (see docs/reliability.md); they run with TOKEND_RELIABILITY_KNOWN=1.
func TestBrokenConfigs(t *testing.T) {
	enabled(t)
	bin := tokendtest.Binary(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "configs", "*.yaml"))
	if os.Getenv("TOKEND_RELIABILITY_KNOWN") == "1" {
		known, _ := filepath.Glob(filepath.Join("testdata", "configs", "known", "*.yaml"))
		files = append(files, known...)
	}
	if len(files) < 25 {
		t.Fatalf("found %d broken configs, want at least 25", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok || want == "" {
				t.Fatalf("%s: the first line must be \"# want: MESSAGE\"", f)
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, "check", "--config", f)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("tokend check exited with %v, want exit status 2\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
			}
			got, _, _ := strings.Cut(stderr.String(), "\n")
			if !strings.Contains(got, want) {
				t.Errorf("tokend check printed %q, want %q", got, want)
			}
			for _, secret := range secretValues(string(b)) {
				if strings.Contains(stdout.String()+stderr.String(), secret) {
					t.Errorf("tokend check echoed the value of a secret key")
				}
			}
		})
	}
}

// secretValues returns the values of keys that look like inline secrets (password:, secret:, token:).
func secretValues(yaml string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(yaml))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok || strings.HasPrefix(k, "#") || strings.HasSuffix(k, "_file") {
			continue
		}
		if strings.Contains(k, "password") || strings.Contains(k, "secret") || strings.HasSuffix(k, "token") {
			if v = strings.TrimSpace(v); len(v) >= 4 {
				out = append(out, v)
			}
		}
	}
	return out
}
