// Package pgcluster runs a private PostgreSQL cluster as a child process,
// reachable only through a unix socket: the embedded database of the default
// `ouderd` run and the throwaway cluster of the test harness (store/pgtest).
//
// It needs the PostgreSQL server binaries (initdb, postgres) on the machine;
// it does not download anything.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// port is the port number in the socket file name (.s.PGSQL.5432). It is
// set explicitly on both sides so that a PGPORT in the environment cannot
// make server and client disagree; there is no TCP listener.
const port = 5432

// maxSocketDir bounds the socket directory's length: the socket path
// (dir + "/.s.PGSQL.5432") must fit in sun_path (108 bytes on Linux).
const maxSocketDir = 100 - len("/.s.PGSQL.5432")

// startTimeout bounds how long Start waits for the server to accept
// connections when ctx has no earlier deadline.
const startTimeout = 30 * time.Second

// Options configures Start. Only DataDir is required.
type Options struct {
	// DataDir is the cluster's data directory. It is created and initialised
	// (initdb) when it holds no PG_VERSION file.
	DataDir string
	// SocketDir is where the server puts its unix socket. Empty means
	// <DataDir>/../run when that path is short enough for a socket, else a
	// fresh directory under /tmp that Stop removes.
	SocketDir string
	// Fast trades durability for speed (initdb --no-sync, fsync=off,
	// synchronous_commit=off, full_page_writes=off): for tests and
	// benchmarks only, a crash of the machine can corrupt the cluster.
	Fast bool
	// Settings are extra server settings, passed as -c name=value. They
	// override the ones Start chooses.
	Settings map[string]string
	// Logger receives start and stop events; nil means slog.Default().
	Logger *slog.Logger
	// BinDir holds initdb and postgres; empty means FindBinaries.
	BinDir string
}

// Cluster is a running PostgreSQL server started by Start. Its methods are
// safe for concurrent use.
type Cluster struct {
	dataDir   string
	socketDir string
	ownSocket bool // socketDir is a temporary directory of ours
	logPath   string
	logOffset int64 // where this run's lines start in logPath
	log       *slog.Logger
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the postgres process is gone
	waitErr   error         // set before exited is closed
	stopOnce  sync.Once
	stopErr   error
	logFile   *os.File
}

// FindBinaries returns the directory that holds the PostgreSQL server
// binaries initdb and postgres. It tries, in order, `pg_config --bindir`,
// initdb on PATH (following symlinks to the real installation) and the
// Debian layout /usr/lib/postgresql/<version>/bin (highest version first).
// The error, when none is found, is one line that says what to install.
func FindBinaries() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); hasServer(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// /usr/local/bin/initdb may be a symlink into the installation, or
		// a wrapper script next to which no postgres lives: prefer the
		// directory of the real binary.
		if real, err := filepath.EvalSymlinks(p); err == nil && hasServer(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if hasServer(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return debianVersion(dirs[i]) > debianVersion(dirs[j]) })
	for _, dir := range dirs {
		if hasServer(dir) {
			return dir, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries found (looked in pg_config --bindir, PATH, /usr/lib/postgresql/*/bin): " +
		"install PostgreSQL 15+ (Debian: apt-get install postgresql) or set DATABASE_URL")
}

// hasServer reports whether dir holds executable initdb and postgres files.
func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// debianVersion returns the version number in /usr/lib/postgresql/<v>/bin,
// or 0 when it is not a number.
func debianVersion(dir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
	return v
}

// Start initialises opts.DataDir if needed, starts postgres on it as a child
// process and returns once the server accepts connections. The server
// listens on a unix socket only. When the caller runs as root, initdb and
// postgres run as the `postgres` OS user (PostgreSQL refuses root), and the
// directories are created for that user. If this process dies without Stop,
// the kernel sends postgres SIGTERM, so no orphaned server remains.
//
// Start fails if the binaries are missing, the data directory is unusable
// (not reachable by the postgres user, owned by someone else, in use by a
// running server), or the server does not come up within ctx's deadline or
// 30 seconds; the error then includes the end of the server log.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("pgcluster.Start(%q): %w", opts.DataDir, err)
		}
	}()
	if opts.DataDir == "" {
		return nil, errors.New("no data directory given")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = FindBinaries(); err != nil {
			return nil, err
		}
	} else if !hasServer(binDir) {
		return nil, fmt.Errorf("%s does not hold the PostgreSQL server binaries initdb and postgres", binDir)
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	base := filepath.Dir(dataDir)

	owner, err := serverUser()
	if err != nil {
		return nil, err
	}

	c := &Cluster{dataDir: dataDir, log: logger, exited: make(chan struct{})}
	defer func() {
		if err != nil && c.ownSocket {
			_ = os.RemoveAll(c.socketDir)
		}
	}()
	c.socketDir = opts.SocketDir
	if c.socketDir == "" {
		if c.socketDir, c.ownSocket, err = defaultSocketDir(base); err != nil {
			return nil, err
		}
	}
	if c.socketDir, err = filepath.Abs(c.socketDir); err != nil {
		return nil, err
	}
	if len(c.socketDir) > maxSocketDir {
		return nil, fmt.Errorf("socket directory %s is too long for a unix socket path (max %d bytes)", c.socketDir, maxSocketDir)
	}
	logDir := filepath.Join(base, "log")
	c.logPath = filepath.Join(logDir, "postgres.log")

	for _, dir := range []string{dataDir, c.socketDir, logDir} {
		if err := owner.makeDir(dir); err != nil {
			return nil, err
		}
	}
	if err := owner.checkDataDir(dataDir); err != nil {
		return nil, err
	}
	if err := checkRunning(dataDir); err != nil {
		return nil, err
	}

	c.logFile, err = os.OpenFile(c.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open server log: %w", err)
	}
	defer func() {
		if err != nil {
			c.logFile.Close()
		}
	}()
	_ = owner.chown(c.logPath)
	if c.logOffset, err = c.logFile.Seek(0, io.SeekEnd); err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}

	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx, binDir, owner, opts.Fast); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}

	args := []string{"-D", dataDir, "-k", c.socketDir}
	for _, s := range settings(opts) {
		args = append(args, "-c", s)
	}
	c.cmd = exec.Command(filepath.Join(binDir, "postgres"), args...)
	c.cmd.Dir = dataDir
	c.cmd.Env = childEnv(owner)
	c.cmd.Stdout = c.logFile
	c.cmd.Stderr = c.logFile
	c.cmd.SysProcAttr = &syscall.SysProcAttr{
		// SIGTERM is a smart shutdown: the server finishes cleanly once the
		// dead parent's connections are gone.
		Pdeathsig:  syscall.SIGTERM,
		Credential: owner.cred,
		Setpgid:    true, // a ^C in the terminal is ours to handle, not postgres's
	}
	if err := c.spawn(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	logger.Info("postgres starting", "data_dir", dataDir, "socket_dir", c.socketDir, "log", c.logPath, "pid", c.cmd.Process.Pid)
	if err := c.waitReady(ctx); err != nil {
		c.kill()
		return nil, fmt.Errorf("%w; server log %s ends:\n%s", err, c.logPath, c.logTail())
	}
	logger.Info("postgres ready", "data_dir", dataDir)
	return c, nil
}

// settings returns the -c settings for the server, in a stable order.
func settings(opts Options) []string {
	m := map[string]string{
		"listen_addresses":        "",
		"port":                    strconv.Itoa(port),
		"unix_socket_permissions": "0700",
	}
	if opts.Fast {
		m["fsync"] = "off"
		m["synchronous_commit"] = "off"
		m["full_page_writes"] = "off"
	}
	for k, v := range opts.Settings {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// spawn starts c.cmd from a goroutine locked to its OS thread: the kernel
// sends the parent-death signal when the *thread* that forked the child
// exits, and Go may retire idle threads. The thread stays in Wait until
// postgres is gone.
func (c *Cluster) spawn() error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine, after postgres.
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	return <-started
}

// initdb creates a new cluster in c.dataDir.
func (c *Cluster) initdb(ctx context.Context, binDir string, owner *osUser, fast bool) error {
	args := []string{"-D", c.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-instructions"}
	if fast {
		args = append(args, "--no-sync")
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), args...)
	cmd.Dir = c.dataDir
	cmd.Env = childEnv(owner)
	cmd.Stdout = io.MultiWriter(&out, c.logFile)
	cmd.Stderr = io.MultiWriter(&out, c.logFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: owner.cred, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, tail(out.String(), 20))
	}
	c.log.Info("postgres cluster initialised", "data_dir", c.dataDir, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// waitReady polls until the server accepts a connection, the process
// exits, or the deadline passes.
func (c *Cluster) waitReady(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	var lastErr error
	pidFile := filepath.Join(c.dataDir, "postmaster.pid")
	for i := 0; ; i++ {
		// Connect once postmaster.pid says ready, as pg_ctl does: every
		// attempt before that leaves a FATAL line in the server log. Every
		// so often try anyway, in case the file's format changes.
		if pid, status := readPidFile(pidFile); (pid == c.cmd.Process.Pid && status == "ready") || i%50 == 49 {
			attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
			conn, err := pgx.Connect(attempt, c.ConnString("postgres"))
			cancel()
			if err == nil {
				conn.Close(ctx)
				return nil
			}
			lastErr = err
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited during start-up (%v)", c.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("postgres not accepting connections (last error: %v): %w", lastErr, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// logTail returns the last lines that this run wrote to the server log,
// indented.
func (c *Cluster) logTail() string {
	f, err := os.Open(c.logPath)
	if err == nil {
		defer f.Close()
		_, err = f.Seek(c.logOffset, io.SeekStart)
	}
	var b []byte
	if err == nil {
		b, err = io.ReadAll(f)
	}
	if err != nil {
		return "  (server log unreadable: " + err.Error() + ")"
	}
	return tail(string(b), 15)
}

// tail returns the last n lines of s, indented.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// DataDir returns the absolute path of the cluster's data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// SocketDir returns the directory of the server's unix socket.
func (c *Cluster) SocketDir() string { return c.socketDir }

// LogPath returns the file that receives the server's log.
func (c *Cluster) LogPath() string { return c.logPath }

// Done returns a channel that is closed when the postgres process has
// exited, whether through Stop or on its own (a crash).
func (c *Cluster) Done() <-chan struct{} { return c.exited }

// ConnString returns a keyword/value connection string for database db as
// the superuser postgres over the cluster's unix socket, as accepted by pgx
// and libpq. It may be called after Stop, but connections then fail.
func (c *Cluster) ConnString(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable",
		quoteValue(c.socketDir), port, quoteValue(db))
}

// quoteValue quotes a keyword/value connection string value when needed.
func quoteValue(s string) string {
	if s != "" && !strings.ContainsAny(s, ` '\`) {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Stop shuts the server down and waits for it to exit: a fast shutdown
// (SIGINT: clients are disconnected, then a checkpoint), escalating to an
// immediate shutdown (SIGQUIT) and then SIGKILL when ctx ends first. It
// removes a temporary socket directory. Calling Stop again returns the
// first call's result. The error reports a shutdown that was not clean.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		c.stopErr = c.stop(ctx)
		if c.stopErr != nil {
			c.stopErr = fmt.Errorf("pgcluster.Stop(%q): %w", c.dataDir, c.stopErr)
		}
	})
	return c.stopErr
}

func (c *Cluster) stop(ctx context.Context) error {
	defer func() {
		c.logFile.Close()
		if c.ownSocket {
			_ = os.RemoveAll(c.socketDir)
		}
	}()
	select {
	case <-c.exited:
		return c.exitErr("postgres had already exited")
	default:
	}
	start := time.Now()
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
		c.log.Info("postgres stopped", "data_dir", c.dataDir, "took", time.Since(start).Round(time.Millisecond))
		return c.exitErr("postgres shutdown")
	case <-ctx.Done():
	}
	c.log.Warn("postgres fast shutdown timed out; immediate shutdown", "data_dir", c.dataDir)
	_ = c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.exited:
		return fmt.Errorf("fast shutdown did not finish in time (%w); immediate shutdown done, crash recovery runs at next start", ctx.Err())
	case <-time.After(5 * time.Second):
	}
	c.kill()
	return fmt.Errorf("postgres did not stop (%w); killed", ctx.Err())
}

// exitErr reports an unclean exit of the postgres process.
func (c *Cluster) exitErr(what string) error {
	if c.waitErr != nil {
		return fmt.Errorf("%s: %w; server log %s ends:\n%s", what, c.waitErr, c.logPath, c.logTail())
	}
	return nil
}

// kill ends the postgres process group (postmaster and its backends) and
// waits for the postmaster to be reaped.
func (c *Cluster) kill() {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.exited
}

// readPidFile returns the pid and status ("starting", "ready", "stopping")
// in a postmaster.pid file, or zero values when it is missing or partial.
func readPidFile(path string) (pid int, status string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, ""
	}
	lines := strings.Split(string(b), "\n")
	pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	// Line 8 (LOCK_FILE_LINE_PM_STATUS) is the postmaster's status.
	if len(lines) > 7 {
		status = strings.TrimSpace(lines[7])
	}
	return pid, status
}

// checkRunning fails when a live postmaster owns dataDir. A postmaster.pid
// left by a killed server is fine: postgres itself removes it.
func checkRunning(dataDir string) error {
	pid, _ := readPidFile(filepath.Join(dataDir, "postmaster.pid"))
	if pid <= 0 {
		return nil
	}
	if Alive(pid) {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); len(comm) > 0 && !strings.HasPrefix(string(comm), "postgres") {
			return nil // the pid was reused by an unrelated process
		}
		return fmt.Errorf("another postgres (pid %d) is running on data directory %s: stop it first (pg_ctl stop -D %s) or use another data directory", pid, dataDir, dataDir)
	}
	return nil
}

// defaultSocketDir returns base/run when a socket path in it fits in
// sun_path, else a new temporary directory (temp true) under /tmp.
func defaultSocketDir(base string) (dir string, temp bool, err error) {
	if dir = filepath.Join(base, "run"); len(dir) <= maxSocketDir {
		return dir, false, nil
	}
	if dir, err = os.MkdirTemp(shortTempDir(), "pgs"); err != nil {
		return "", false, fmt.Errorf("create socket directory: %w", err)
	}
	return dir, true, nil
}

// Alive reports whether process pid exists and has not exited. A zombie
// (exited, not yet reaped, as happens to orphans in containers whose init
// does not reap) counts as exited: its postmaster.pid is stale. Harnesses
// that clean up abandoned clusters use it too.
func Alive(pid int) bool {
	// EPERM means the process exists but belongs to another user.
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no procfs: trust kill
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// shortTempDir returns a parent for a temporary socket directory that keeps
// the socket path short: /tmp rather than a long $TMPDIR (macOS).
func shortTempDir() string {
	if fi, err := os.Stat("/tmp"); err == nil && fi.IsDir() {
		return "/tmp"
	}
	return os.TempDir()
}

// childEnv returns the environment for initdb and postgres: ours without
// the PG* variables that could redirect them, with HOME and USER set for
// the server's OS user.
func childEnv(u *osUser) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		if u.cred != nil && (strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "USER=") || strings.HasPrefix(kv, "LOGNAME=")) {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LC_ALL=C")
	if u.cred != nil {
		env = append(env, "HOME="+u.home, "USER="+u.name, "LOGNAME="+u.name)
	}
	return env
}

// PIDFromFile returns the number on the first line of file (a
// postmaster.pid or a harness's owner file), or 0 when there is none.
func PIDFromFile(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

// Running returns the connection string of database db on the cluster
// whose data directory is dataDir, when a server is running on it (as
// started by Start, for example by `make run`), and "" otherwise. It reads
// the server's postmaster.pid for the socket directory and port, so tools
// such as ouderctl reach the private cluster without configuration.
func Running(dataDir, db string) string {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return ""
	}
	// postmaster.pid: pid, data directory, start time, port, socket
	// directory, listen address, shared memory key, status.
	lines := strings.Split(string(b), "\n")
	if len(lines) < 5 {
		return ""
	}
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || !Alive(pid) {
		return ""
	}
	portNum, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	sock := strings.TrimSpace(lines[4])
	if err != nil || sock == "" {
		return ""
	}
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", quoteValue(sock), portNum, quoteValue(db))
}
