package pgcluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// tempBase returns a short temporary directory that the postgres OS user can
// traverse when the tests run as root (t.TempDir's parents are mode 0700).
func tempBase(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "pgc-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestFindBinaries(t *testing.T) {
	dir, err := FindBinaries()
	if err != nil {
		t.Fatalf("FindBinaries: %v", err)
	}
	if !hasServer(dir) {
		t.Errorf("FindBinaries() = %q, which lacks initdb or postgres", dir)
	}
}

func TestDefaultSocketDir(t *testing.T) {
	dir, temp, err := defaultSocketDir("/srv/ouder/var")
	if err != nil || temp || dir != "/srv/ouder/var/run" {
		t.Errorf("short base: got (%q, %v, %v), want (/srv/ouder/var/run, false, nil)", dir, temp, err)
	}
	long := "/" + strings.Repeat("x", 120)
	dir, temp, err = defaultSocketDir(long)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	if !temp || len(dir) > maxSocketDir || strings.HasPrefix(dir, long) {
		t.Errorf("long base: got (%q, %v), want a short temporary directory", dir, temp)
	}
}

func TestConnStringQuoting(t *testing.T) {
	c := &Cluster{socketDir: "/tmp/with space/it's"}
	cfg, err := pgx.ParseConfig(c.ConnString("my db"))
	if err != nil {
		t.Fatalf("ParseConfig(%q): %v", c.ConnString("my db"), err)
	}
	if cfg.Host != c.socketDir || cfg.Database != "my db" || cfg.User != "postgres" || cfg.Port != port {
		t.Errorf("parsed host=%q db=%q user=%q port=%d", cfg.Host, cfg.Database, cfg.User, cfg.Port)
	}
}

// TestLifecycle runs one cluster through its life: initdb and start, a
// second server refused on the same data directory, stop, restart on the
// existing data after a crash left a stale postmaster.pid, and a start that
// fails with the server's own words. One data directory keeps it to one
// initdb (about a second).
func TestLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := tempBase(t)
	opts := Options{DataDir: filepath.Join(base, "data"), Fast: true, Settings: map[string]string{"application_name": "lifecycle"}}

	t0 := time.Now()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("initdb + start: %v", time.Since(t0).Round(time.Millisecond))
	t.Cleanup(func() { c.Stop(context.Background()) })

	conn := connect(ctx, t, c)
	for setting, want := range map[string]string{"fsync": "off", "listen_addresses": "", "application_name": "lifecycle", "server_encoding": "UTF8"} {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	if _, err := os.Stat(filepath.Join(base, "log", "postgres.log")); err != nil {
		t.Errorf("server log: %v", err)
	}

	t.Run("Running finds the server", func(t *testing.T) {
		if got, want := Running(opts.DataDir, "postgres"), c.ConnString("postgres"); got != want {
			t.Errorf("Running = %q, want %q", got, want)
		}
		if got := Running(filepath.Join(base, "elsewhere"), "postgres"); got != "" {
			t.Errorf("Running on a data dir without a server = %q, want \"\"", got)
		}
	})

	t.Run("second server on the same data dir", func(t *testing.T) {
		_, err := Start(ctx, opts)
		if err == nil || !strings.Contains(err.Error(), "another postgres") {
			t.Errorf("Start on a data dir in use: err = %v, want one naming another postgres", err)
		}
		if testing.Verbose() {
			t.Log(err)
		}
	})

	t0 = time.Now()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("stop: %v", time.Since(t0).Round(time.Millisecond))
	if err := c.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done not closed after Stop")
	}
	if got := Running(opts.DataDir, "postgres"); got != "" {
		t.Errorf("Running after Stop = %q, want \"\"", got)
	}

	// A killed server leaves postmaster.pid behind; its pid is dead by now.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(opts.DataDir, "postmaster.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(dead.Process.Pid)+"\n"+opts.DataDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if owner, err := serverUser(); err == nil {
		owner.chown(pidFile)
	}

	t0 = time.Now()
	c2, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("restart on existing data dir: %v", err)
	}
	t.Logf("restart: %v", time.Since(t0).Round(time.Millisecond))
	conn = connect(ctx, t, c2)
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "before restart" {
		t.Errorf("after restart: got (%q, %v), want the row written before", v, err)
	}
	conn.Close(ctx)
	if err := c2.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	t.Run("server refuses to start", func(t *testing.T) {
		bad := opts
		bad.Settings = map[string]string{"shared_buffers": "lots"}
		_, err := Start(ctx, bad)
		if err == nil || !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), `"shared_buffers"`) {
			t.Errorf("Start with a bad setting: err = %v, want the early exit with the log tail", err)
		}
		if testing.Verbose() {
			t.Log(err)
		}
	})
}

func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	_, err := Start(ctx, Options{DataDir: filepath.Join(tempBase(t), "data"), BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "does not hold the PostgreSQL server binaries") {
		t.Errorf("empty BinDir: err = %v", err)
	}
	if os.Geteuid() == 0 {
		// t.TempDir's parent is mode 0700 and owned by root.
		_, err := Start(ctx, Options{DataDir: filepath.Join(t.TempDir(), "data")})
		if err == nil || !strings.Contains(err.Error(), "cannot reach") {
			t.Errorf("unreachable data dir as root: err = %v", err)
		}
	}
}

func connect(ctx context.Context, tb testing.TB, c *Cluster) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	return conn
}
