package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/providers"
)

func newFileT(t *testing.T, c config.FileSink) *fileSink {
	t.Helper()
	s, err := New(config.Sink{File: &c}, nil)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return s.(*fileSink)
}

// onlyFiles fails when dir holds anything but the named files (a leftover temp file, say).
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("directory holds %q, want %q", got, names)
	}
}

func TestFileDeliver(t *testing.T) {
	d := testDelivery()
	tests := []struct {
		name     string
		c        config.FileSink
		wantMode fs.FileMode
		golden   string
	}{
		{"default raw 0600", config.FileSink{}, 0o600, "format_raw.golden"},
		{"mode 0640 json", config.FileSink{Mode: "0640", Format: "json"}, 0o640, "format_json.golden"},
		{"mode 440 env var", config.FileSink{Mode: "440", Format: "env", Var: "BACKUP_API_TOKEN"}, 0o440, "format_env_var.golden"},
		{"mode 0o644 env", config.FileSink{Mode: "0o644", Format: "env"}, 0o644, "format_env.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.c.Path = filepath.Join(dir, "x.token")
			s := newFileT(t, tt.c)
			// Twice: delivering the same generation again is harmless.
			for range 2 {
				if err := s.Deliver(context.Background(), d); err != nil {
					t.Fatalf("Deliver() error = %v", err)
				}
			}
			got, err := os.ReadFile(tt.c.Path)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", tt.golden))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("file = %q, want %q", got, want)
			}
			st, err := os.Stat(tt.c.Path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode() != tt.wantMode {
				t.Errorf("mode = %v, want %v", st.Mode(), tt.wantMode)
			}
			onlyFiles(t, dir, "x.token")
		})
	}
}

func TestFileReplacesLooserMode(t *testing.T) {
	// An existing world-readable file is replaced by one with the configured mode, not patched in place.
	dir := t.TempDir()
	path := filepath.Join(dir, "x.token")
	if err := os.WriteFile(path, []byte("old-longer-content-than-the-new-one-by-far-really-much-longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := newFileT(t, config.FileSink{Path: path}).Deliver(context.Background(), testDelivery()); err != nil {
		t.Fatalf("Deliver() error = %v", err)
	}
	st, _ := os.Stat(path)
	got, _ := os.ReadFile(path)
	if st.Mode() != 0o600 || string(got) != testSecret {
		t.Errorf("file = %q mode %v, want the secret with mode 0600", got, st.Mode())
	}
}

func TestFileOwner(t *testing.T) {
	cur, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	grp, err := user.LookupGroupId(cur.Gid)
	if err != nil {
		t.Skip(err)
	}
	tests := []struct {
		name         string
		owner, group string
		uid, gid     string
	}{
		{"names", cur.Username, grp.Name, cur.Uid, cur.Gid},
		{"numeric", cur.Uid, cur.Gid, cur.Uid, cur.Gid},
		{"group only", "", cur.Gid, cur.Uid, cur.Gid},
	}
	if os.Geteuid() == 0 {
		tests = append(tests, struct {
			name         string
			owner, group string
			uid, gid     string
		}{"other numeric ids as root", "4242", "4343", "4242", "4343"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.token")
			s := newFileT(t, config.FileSink{Path: path, Owner: tt.owner, Group: tt.group})
			if err := s.Deliver(context.Background(), testDelivery()); err != nil {
				t.Fatalf("Deliver() error = %v", err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			sys := st.Sys().(*syscall.Stat_t)
			if got := fmt.Sprint(sys.Uid, ":", sys.Gid); got != tt.uid+":"+tt.gid {
				t.Errorf("owner = %s, want %s:%s", got, tt.uid, tt.gid)
			}
		})
	}
}

func TestFileNewErrors(t *testing.T) {
	tests := []struct {
		name string
		c    config.FileSink
		want string
	}{
		{"relative path", config.FileSink{Path: "x.token"}, "must be absolute"},
		{"empty path", config.FileSink{}, "must be absolute"},
		{"bad mode", config.FileSink{Path: "/x", Mode: "rw"}, `mode "rw"`},
		{"mode too big", config.FileSink{Path: "/x", Mode: "4755"}, `mode "4755"`},
		{"mode not octal", config.FileSink{Path: "/x", Mode: "0800"}, `mode "0800"`},
		{"unknown owner", config.FileSink{Path: "/x", Owner: "no-such-user-tokend"}, `owner "no-such-user-tokend"`},
		{"unknown group", config.FileSink{Path: "/x", Group: "no-such-group-tokend"}, `group "no-such-group-tokend"`},
		{"negative owner", config.FileSink{Path: "/x", Owner: "-1"}, `owner "-1"`},
		{"bad format", config.FileSink{Path: "/x", Format: "yaml"}, `format "yaml"`},
		{"bad var", config.FileSink{Path: "/x", Format: "env", Var: "A-B"}, `var "A-B"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(config.Sink{File: &tt.c}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestFileRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "x.token")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	err := newFileT(t, config.FileSink{Path: path}).Deliver(context.Background(), testDelivery())
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Deliver() error = %v, want a refusal to follow the symlink", err)
	}
	noSecret(t, err, testSecret)
	if got, _ := os.ReadFile(victim); string(got) != "keep me" {
		t.Errorf("symlink target = %q, want it untouched", got)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("symlink was replaced: %v, %v", fi, err)
	}
	onlyFiles(t, dir, "victim", "x.token")
}

func TestFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.token")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	err := newFileT(t, config.FileSink{Path: path}).Deliver(context.Background(), testDelivery())
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Deliver() error = %v, want not a regular file", err)
	}
	onlyFiles(t, dir, "x.token")
}

func TestFileMissingParent(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "missing")
	err := newFileT(t, config.FileSink{Path: filepath.Join(parent, "x.token")}).Deliver(context.Background(), testDelivery())
	if err == nil || !strings.Contains(err.Error(), "parent directory "+parent+" does not exist") {
		t.Fatalf("Deliver() error = %v, want one naming the missing parent %s", err, parent)
	}
	noSecret(t, err, testSecret)
}

func TestFileCleansUpOnFailure(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		hook   func(cancel context.CancelFunc) error
		wantIs error
	}{
		{"failure before rename", func(context.CancelFunc) error { return boom }, boom},
		{"ctx cancelled before rename", func(cancel context.CancelFunc) error { cancel(); return nil }, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x.token")
			if err := os.WriteFile(path, []byte("previous"), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := newFileT(t, config.FileSink{Path: path})
			s.beforeRename = func() error { return tt.hook(cancel) }
			err := s.Deliver(ctx, testDelivery())
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("Deliver() error = %v, want %v", err, tt.wantIs)
			}
			noSecret(t, err, testSecret)
			if got, _ := os.ReadFile(path); string(got) != "previous" {
				t.Errorf("target = %q, want it untouched", got)
			}
			onlyFiles(t, dir, "x.token")
		})
	}
}

func TestFileCancelledContext(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := newFileT(t, config.FileSink{Path: filepath.Join(dir, "x.token")}).Deliver(ctx, testDelivery())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver() error = %v, want context.Canceled", err)
	}
	onlyFiles(t, dir)
}

func TestFileEnvTokenWithNewline(t *testing.T) {
	dir := t.TempDir()
	d := testDelivery()
	d.Secret = providers.NewSecret(testSecret + "\n")
	err := newFileT(t, config.FileSink{Path: filepath.Join(dir, "x.env"), Format: "env"}).Deliver(context.Background(), d)
	if err == nil {
		t.Fatal("Deliver() error = nil, want the env format to refuse a newline")
	}
	noSecret(t, err, testSecret)
	onlyFiles(t, dir)
}

// TestFileAtomicReads reads the file in a loop while many generations of different lengths are delivered:
// every read must be one complete value, and generations must never go backwards.
func TestFileAtomicReads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.json")
	s := newFileT(t, config.FileSink{Path: path, Format: "json"})
	tokenFor := func(g int64) string {
		return fmt.Sprintf("g%d-%s-end", g, strings.Repeat(string(rune('a'+g%26)), int(g*37%4000)))
	}
	deliver := func(g int64) error {
		d := testDelivery()
		d.Generation, d.Secret = g, providers.NewSecret(tokenFor(g))
		return s.Deliver(context.Background(), d)
	}
	if err := deliver(0); err != nil {
		t.Fatal(err)
	}
	const generations = 200
	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads int
	var readErr error
	wg.Go(func() {
		last := int64(-1)
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil {
				readErr = err
				return
			}
			var v struct {
				Token      string `json:"token"`
				Generation int64  `json:"generation"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				readErr = fmt.Errorf("read %d bytes that are not one complete value: %w", len(b), err)
				return
			}
			if v.Token != tokenFor(v.Generation) || v.Generation < last {
				readErr = fmt.Errorf("read generation %d (after %d) with a token of %d bytes, want %d",
					v.Generation, last, len(v.Token), len(tokenFor(v.Generation)))
				return
			}
			last = v.Generation
			reads++
		}
	})
	for g := int64(1); g <= generations; g++ {
		if err := deliver(g); err != nil {
			close(done)
			wg.Wait()
			t.Fatalf("Deliver(%d) error = %v", g, err)
		}
	}
	close(done)
	wg.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	if reads == 0 {
		t.Fatal("the reader never read the file")
	}
	t.Logf("%d complete reads during %d deliveries", reads, generations)
	onlyFiles(t, dir, "x.json")
}

func TestFileConcurrentDeliveries(t *testing.T) {
	// Different tokens through different sinks at once, and the same sink from several goroutines.
	dir := t.TempDir()
	shared := newFileT(t, config.FileSink{Path: filepath.Join(dir, "shared")})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		own := newFileT(t, config.FileSink{Path: filepath.Join(dir, fmt.Sprint("t", i))})
		wg.Go(func() {
			d := testDelivery()
			d.Secret = providers.NewSecret(fmt.Sprint("token-", i))
			errs <- own.Deliver(context.Background(), d)
			errs <- shared.Deliver(context.Background(), d)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Deliver() error = %v", err)
		}
	}
	for i := range 20 {
		if got, _ := os.ReadFile(filepath.Join(dir, fmt.Sprint("t", i))); string(got) != fmt.Sprint("token-", i) {
			t.Errorf("t%d = %q, want token-%d", i, got, i)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "shared")); !strings.HasPrefix(string(got), "token-") {
		t.Errorf("shared = %q, want one whole token", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 21 {
		t.Errorf("directory holds %d entries, want 21 (no temp files left)", len(ents))
	}
}
