package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// ouderdStartTimeout bounds how long ouderd may take to listen and be ready.
const ouderdStartTimeout = time.Minute

// ouderdProc is ouderd running as the suite's child process, its log going
// to a file.
type ouderdProc struct {
	cmd     *exec.Cmd
	logPath string
	base    string        // http://ADDR
	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // set before exited is closed
}

// startOuderd starts the ouderd binary at path on database dsn, listening
// on a free loopback port, with env added to its environment and its log
// (stdout and stderr) in logPath, and
// returns once GET /readyz answers 200. It fails, with the end of the log,
// when ouderd exits or is not ready within ouderdStartTimeout. ouderd gets
// SIGTERM if this process dies first.
func startOuderd(ctx context.Context, path, dsn, logPath string, env ...string) (_ *ouderdProc, err error) {
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ouderd log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	p := &ouderdProc{logPath: logPath, exited: make(chan struct{})}
	p.cmd = exec.Command(path)
	// ouderd's defaults (log level info, JSON logs, pool size) are what
	// production runs: only the database and the address are ours to set.
	p.cmd.Env = append(append(childEnviron(), "DATABASE_URL="+dsn, "OUDERD_ADDR=127.0.0.1:0"), env...)
	p.cmd.Stdout = logFile
	p.cmd.Stderr = logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{
		Pdeathsig: syscall.SIGTERM,
		Setpgid:   true, // a ^C in the terminal is ours to handle: we stop ouderd in order
	}
	if err := p.spawn(); err != nil {
		return nil, fmt.Errorf("start ouderd: %w", err)
	}
	defer func() {
		if err != nil {
			_ = p.stop(context.WithoutCancel(ctx))
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, ouderdStartTimeout)
	defer cancel()
	addr, err := p.waitListening(ctx)
	if err != nil {
		return nil, err
	}
	p.base = "http://" + addr
	if err := waitHTTP(ctx, p.base+"/readyz"); err != nil {
		return nil, fmt.Errorf("ouderd: %w; its log ends:\n%s", err, p.logTail())
	}
	return p, nil
}

// childEnviron returns our environment without the variables that would
// change what ouderd measures: its own settings and libpq's defaults.
func childEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OUDERD_") || strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// spawn starts p.cmd from a goroutine locked to its OS thread: the kernel
// sends the parent-death signal when the thread that forked the child
// exits, and Go may retire idle threads. The thread stays in Wait until
// ouderd is gone.
func (p *ouderdProc) spawn() error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine, after ouderd.
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return <-started
}

// waitListening reads ouderd's log until its "listening" line and returns
// the address in it.
func (p *ouderdProc) waitListening(ctx context.Context) (string, error) {
	for {
		if addr := listeningAddr(p.logPath); addr != "" {
			return addr, nil
		}
		select {
		case <-p.exited:
			return "", fmt.Errorf("ouderd exited during start-up: %w", p.exitError())
		case <-ctx.Done():
			return "", fmt.Errorf("ouderd did not log that it listens: %w; its log ends:\n%s", ctx.Err(), p.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// listeningAddr returns the address of the first JSON log line
// {"msg":"listening","addr":...} in the file at path, or "".
func listeningAddr(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && line.Addr != "" {
			return line.Addr
		}
	}
	return ""
}

// stop sends ouderd SIGTERM and waits for it to drain and exit; when ctx
// ends first it kills ouderd's process group. The error reports an exit
// that was not clean, with the end of the log.
func (p *ouderdProc) stop(ctx context.Context) error {
	select {
	case <-p.exited:
		return p.exitError()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.exitError()
	case <-ctx.Done():
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	return fmt.Errorf("ouderd did not stop after SIGTERM (%w); killed; its log ends:\n%s", ctx.Err(), p.logTail())
}

// exitError describes how ouderd exited, once it has: nil for a clean exit.
func (p *ouderdProc) exitError() error {
	if p.waitErr == nil {
		return nil
	}
	return fmt.Errorf("ouderd: %w; its log ends:\n%s", p.waitErr, p.logTail())
}

// logTail returns the last lines of ouderd's log, indented.
func (p *ouderdProc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "  (log unreadable: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(len(lines)-15, 0):]
	return "  " + strings.Join(lines, "\n  ")
}

// ouderdBuild describes the build of the binary at path from its embedded
// build information ("built from commit abc with go1.26.1"), or returns ""
// when it has none.
func ouderdBuild(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return ""
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" { // built with -buildvcs=false, or outside a repository
		return "built with " + bi.GoVersion
	}
	out := "built from commit " + rev[:min(len(rev), 12)]
	if modified == "true" {
		out += " with uncommitted changes,"
	}
	return out + " with " + bi.GoVersion
}

// ouderdHasFlag reports whether "ouderd -h" lists -name.
func ouderdHasFlag(ctx context.Context, path, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-h")
	cmd.Env = childEnviron()
	out, _ := cmd.CombinedOutput() // -h exits non-zero
	return bytes.Contains(out, []byte("-"+name+" ")) || bytes.Contains(out, []byte("-"+name+"\n"))
}
