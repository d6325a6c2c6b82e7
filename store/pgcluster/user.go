package pgcluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// osUser is the OS user that initdb and postgres run as.
type osUser struct {
	name string
	home string
	uid  uint32
	gids []uint32            // primary group first
	cred *syscall.Credential // nil: run as ourselves
}

// serverUser returns the user to run the server as: ourselves, or the
// `postgres` user when we are root, since PostgreSQL refuses to run as root.
func serverUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return &osUser{uid: uint32(os.Geteuid()), gids: []uint32{uint32(os.Getegid())}}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses to run as root, but there is no OS user postgres to run it as (%v): create one (useradd --system --create-home postgres) or run as an unprivileged user", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("OS user postgres: %w", err)
	}
	ou := &osUser{name: u.Username, home: u.HomeDir, uid: uint32(uid), gids: []uint32{uint32(gid)}}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.ParseUint(s, 10, 32); err == nil && !slices.Contains(ou.gids, uint32(g)) {
				ou.gids = append(ou.gids, uint32(g))
			}
		}
	}
	if ou.home == "" {
		ou.home = "/"
	}
	ou.cred = &syscall.Credential{Uid: ou.uid, Gid: ou.gids[0], Groups: ou.gids[1:]}
	return ou, nil
}

// makeDir creates dir (mode 0700, parents 0755) for the server user. An
// existing directory is handed over only if it is empty, so that a shared
// directory such as /tmp is never chowned.
func (u *osUser) makeDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create directory: %w", err)
		}
		if !isEmptyDir(dir) {
			return nil
		}
	}
	return u.chown(dir)
}

// chown gives path to the server user when we run as root.
func (u *osUser) chown(path string) error {
	if u.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(u.uid), int(u.gids[0])); err != nil {
		return fmt.Errorf("hand %s to OS user %s: %w", path, u.name, err)
	}
	return nil
}

// checkDataDir fails with a hint when the server user cannot reach or does
// not own dataDir; postgres would otherwise fail with a terse message in a
// log file.
func (u *osUser) checkDataDir(dataDir string) error {
	if u.cred == nil {
		return nil // we are the server user: our own Mkdir worked
	}
	for dir := filepath.Dir(dataDir); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if !u.canSearch(fi) {
			return fmt.Errorf("OS user %s (uid %d), which runs the server because we run as root, cannot reach %s: directory %s has mode %v; allow it (chmod o+x %s) or choose a data directory elsewhere",
				u.name, u.uid, dataDir, dir, fi.Mode().Perm(), dir)
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != u.uid {
		return fmt.Errorf("data directory %s belongs to uid %d, but the server runs as OS user %s (uid %d) because we run as root: chown -R %s %s, or run as uid %d",
			dataDir, st.Uid, u.name, u.uid, u.name, dataDir, st.Uid)
	}
	return nil
}

// canSearch reports whether the user may traverse the directory fi by its
// mode bits (ACLs are not consulted).
func (u *osUser) canSearch(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := fi.Mode().Perm()
	switch {
	case st.Uid == u.uid:
		return mode&0o100 != 0
	case slices.Contains(u.gids, st.Gid):
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}

// isEmptyDir reports whether dir has no entries.
func isEmptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return errors.Is(err, io.EOF)
}
