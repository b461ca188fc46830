package sinks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tokend/tokend/config"
)

// fileSink writes the formatted token to a file so that a reader sees the old content or the new, never a
// mix: a private temp file in the same directory is written, synced, given its mode and owner, renamed over
// the target, and the directory is synced so the rename survives a crash.
type fileSink struct {
	path     string
	mode     os.FileMode
	uid, gid int // -1: leave unchanged
	format   string
	envVar   string

	// beforeRename, when set (tests only), runs after the temp file is complete and before the rename.
	beforeRename func() error
}

func newFile(c config.FileSink) (*fileSink, error) {
	if c.Path == "" || !filepath.IsAbs(c.Path) {
		return nil, fmt.Errorf("path %q: must be absolute", c.Path)
	}
	f := &fileSink{path: filepath.Clean(c.Path), mode: 0o600, uid: -1, gid: -1, format: c.Format, envVar: c.Var}
	if c.Mode != "" {
		m, err := strconv.ParseUint(strings.TrimPrefix(c.Mode, "0o"), 8, 32)
		if err != nil || m > 0o777 {
			return nil, fmt.Errorf("mode %q: must be octal permission bits, at most 0777", c.Mode)
		}
		f.mode = os.FileMode(m)
	}
	var err error
	if c.Owner != "" {
		if f.uid, err = lookupID(c.Owner, func(n string) (string, error) {
			u, err := user.Lookup(n)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		}); err != nil {
			return nil, fmt.Errorf("owner %q: %w", c.Owner, err)
		}
	}
	if c.Group != "" {
		if f.gid, err = lookupID(c.Group, func(n string) (string, error) {
			g, err := user.LookupGroup(n)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		}); err != nil {
			return nil, fmt.Errorf("group %q: %w", c.Group, err)
		}
	}
	if _, err := Format(Delivery{}, c.Format, c.Var); err != nil {
		return nil, err
	}
	return f, nil
}

// lookupID reads a numeric id as it is and resolves a name with lookup.
func lookupID(s string, lookup func(string) (string, error)) (int, error) {
	if id, err := strconv.Atoi(s); err == nil {
		if id < 0 {
			return 0, errors.New("must not be negative")
		}
		return id, nil
	}
	v, err := lookup(s)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}

func (f *fileSink) String() string { return "file:" + f.path }

func (f *fileSink) Close() error { return nil }

func (f *fileSink) Deliver(ctx context.Context, d Delivery) error {
	return redact(f.deliver(ctx, d), d.Secret.Reveal())
}

func (f *fileSink) deliver(ctx context.Context, d Delivery) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	data, err := Format(d, f.format, f.envVar)
	if err != nil {
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	dir := filepath.Dir(f.path)
	if err := checkTarget(f.path, dir); err != nil {
		return err
	}

	// CreateTemp opens with O_CREATE|O_EXCL and mode 0600: the secret is never readable by others, and an
	// attacker's symlink at the temp name makes the open fail instead of being followed.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temp file in %s: %w", dir, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close() // a second Close after the one below is harmless
			_ = os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmpName, err)
	}
	if err := tmp.Chmod(f.mode); err != nil {
		return fmt.Errorf("setting mode of %s: %w", tmpName, err)
	}
	if f.uid >= 0 || f.gid >= 0 {
		if err := tmp.Chown(f.uid, f.gid); err != nil {
			return fmt.Errorf("setting owner of %s: %w", tmpName, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmpName, err)
	}
	if f.beforeRename != nil {
		if err := f.beforeRename(); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	// rename(2) replaces the directory entry itself: it never follows a symlink at the target.
	if err := os.Rename(tmpName, f.path); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmpName, f.path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// checkTarget refuses a target that is a symlink or not a regular file, and a parent directory that is missing.
func checkTarget(path, dir string) error {
	switch st, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("writing %s: parent directory %s does not exist", path, dir)
	case err != nil:
		return fmt.Errorf("writing %s: checking parent directory: %w", path, err)
	case !st.IsDir():
		return fmt.Errorf("writing %s: parent %s is not a directory", path, dir)
	}
	switch st, err := os.Lstat(path); {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("writing %s: %w", path, err)
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("writing %s: refusing to replace a symbolic link", path)
	case !st.Mode().IsRegular():
		return fmt.Errorf("writing %s: not a regular file (%s)", path, st.Mode().Type())
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
