// Package pgtest gives each database test its own freshly migrated
// PostgreSQL database, cloned from a template that is migrated once per test
// binary. The server is DATABASE_URL when set, else a throwaway cluster
// (store/pgcluster) that the first test starts.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// and in tests:
//
//	pool := pgtest.Pool(t)
//
// Database tests never skip: without a usable PostgreSQL they fail with a
// message that says how to get one.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/store/pgcluster"
	"github.com/digitaleouder/ouder/store/postgres"
)

// setupTimeout bounds starting the cluster and migrating the template.
const setupTimeout = 2 * time.Minute

// howTo ends every "no PostgreSQL" failure, and howToURL when
// DATABASE_URL was set.
const (
	howTo = "Database tests need PostgreSQL: install the server binaries (PostgreSQL 15+; Debian: apt-get install postgresql, " +
		"macOS: brew install postgresql@15) so that pg_config or initdb is on PATH, or set DATABASE_URL to a server " +
		"where the user may CREATE DATABASE."
	howToURL = "Database tests use DATABASE_URL when it is set: point it at a running server where the user may " +
		"CREATE DATABASE, or unset it to let the tests start a throwaway cluster (needs the PostgreSQL 15+ server binaries)."
)

// The process-wide server, set up by the first test that needs it.
var (
	setupOnce sync.Once
	shared    *server
	setupErr  error
)

// Main runs the tests of m and then stops the test cluster (or drops the
// databases made on DATABASE_URL) before exiting with m's code. Call it from
// TestMain. Without it the harness still works, but leaves its temporary
// directory (removed by a later run) or, with DATABASE_URL, its databases.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := shared.close(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: cleanup: %v\n", err)
		}
		cancel()
	}
	os.Exit(code)
}

// URL returns a connection string for a new database that holds the
// migrated schema and nothing else, for this test alone. The database is
// dropped when the test ends. URL fails the test (never skips it) when no
// PostgreSQL can be had. It is safe to call from parallel tests.
func URL(tb testing.TB) string {
	tb.Helper()
	setupOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		shared, setupErr = newServer(ctx, os.Getenv("DATABASE_URL"))
	})
	if setupErr != nil {
		hint := howTo
		if os.Getenv("DATABASE_URL") != "" {
			hint = howToURL
		}
		tb.Fatalf("pgtest: no PostgreSQL for database tests: %v\n%s", setupErr, hint)
		return ""
	}
	return shared.database(tb)
}

// Pool returns a connection pool on a new database from URL, closed when the
// test ends. It fails the test when no PostgreSQL can be had.
func Pool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	u := URL(tb)
	if u == "" {
		return nil // only when a fake TB's Fatalf returns
	}
	pool, err := pgxpool.New(context.Background(), u)
	if err != nil {
		tb.Fatalf("pgtest: open pool: %v", err)
		return nil
	}
	// Registered after URL's drop, so it runs before it.
	tb.Cleanup(pool.Close)
	return pool
}

// server is a PostgreSQL server with a migrated template database from
// which test databases are cloned.
type server struct {
	cluster  *pgcluster.Cluster // nil on DATABASE_URL
	tempDir  string             // the cluster's directory, removed on close
	connStr  func(db string) string
	admin    *pgxpool.Pool // on the maintenance database
	prefix   string        // of every database name we make
	template string
	// cloneSQL is the CREATE DATABASE statement with a %s for the name.
	cloneSQL string

	// cloneMu serialises CREATE DATABASE: PostgreSQL refuses to copy a
	// template that another session is copying at the same moment.
	cloneMu sync.Mutex
	n       atomic.Int64
	mu      sync.Mutex
	live    map[string]bool // test databases not dropped yet
}

// newServer connects to databaseURL, or starts a cluster in a temporary
// directory when it is empty, and migrates a template database there.
func newServer(ctx context.Context, databaseURL string) (_ *server, err error) {
	s := &server{live: map[string]bool{}}
	defer func() {
		if err != nil {
			s.close(context.WithoutCancel(ctx))
		}
	}()
	admin := ""
	if databaseURL == "" {
		if err := s.startCluster(ctx); err != nil {
			return nil, err
		}
		s.connStr = s.cluster.ConnString
		s.prefix = "" // the cluster is ours alone
		admin = s.connStr("postgres")
	} else {
		if _, err := pgx.ParseConfig(databaseURL); err != nil {
			return nil, fmt.Errorf("DATABASE_URL: %w", err)
		}
		admin = databaseURL
		s.connStr = func(db string) string { return withDatabase(databaseURL, db) }
		// Several test binaries, or machines, may share the server.
		var r [3]byte
		_, _ = rand.Read(r[:])
		s.prefix = fmt.Sprintf("ouder_test_%d_%s_", os.Getpid(), hex.EncodeToString(r[:]))
	}
	s.template = s.prefix + "tmpl"

	if s.admin, err = pgxpool.New(ctx, admin); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := s.admin.Ping(ctx); err != nil {
		if databaseURL != "" {
			return nil, fmt.Errorf("DATABASE_URL=%s: %w", redact(databaseURL), err)
		}
		return nil, fmt.Errorf("connect to the test cluster: %w", err)
	}
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{s.template}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create template database: %w", err)
	}
	s.live[s.template] = true
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	s.cloneSQL = "CREATE DATABASE %s TEMPLATE " + pgx.Identifier{s.template}.Sanitize()
	var version int
	if err := s.admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return nil, err
	}
	if s.cluster != nil && version >= 150000 {
		// Copying the files of a small template takes about 60 ms, logging
		// every block (the default since 15) about 150 ms. The checkpoint
		// that file copying needs is cheap with fsync off, but could hurt
		// a shared server, so only on ours.
		s.cloneSQL += " STRATEGY FILE_COPY"
	}
	return s, nil
}

// startCluster starts a Fast cluster in a short temporary directory.
func (s *server) startCluster(ctx context.Context) error {
	tmp := shortTempDir()
	removeAbandoned(tmp)
	dir, err := os.MkdirTemp(tmp, dirPrefix)
	if err != nil {
		return fmt.Errorf("create cluster directory: %w", err)
	}
	s.tempDir = dir
	// When we run as root the server runs as the postgres user, which
	// must be able to enter the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	// Up to GOMAXPROCS parallel tests each hold a pool of up to
	// max(4, NumCPU) connections.
	p := runtime.GOMAXPROCS(0)
	maxConns := min(max(200, p*max(4, runtime.NumCPU())+20), 1000)
	s.cluster, err = pgcluster.Start(ctx, pgcluster.Options{
		DataDir:  filepath.Join(dir, "data"),
		Fast:     true,
		Logger:   slog.New(slog.DiscardHandler),
		Settings: map[string]string{"max_connections": strconv.Itoa(maxConns)},
	})
	return err
}

// migrate applies the migrations to the template and closes every
// connection to it: a database with sessions cannot be a template.
func (s *server) migrate(ctx context.Context) error {
	pool, err := pgxpool.New(ctx, s.connStr(s.template))
	if err != nil {
		return fmt.Errorf("connect to template: %w", err)
	}
	defer pool.Close()
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	return nil
}

// database creates a database for tb from the template and returns its
// connection string; it is dropped in tb's cleanup.
func (s *server) database(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("%st%d", s.prefix, s.n.Add(1))
	ctx := context.Background()
	s.cloneMu.Lock()
	_, err := s.admin.Exec(ctx, fmt.Sprintf(s.cloneSQL, pgx.Identifier{name}.Sanitize()))
	s.cloneMu.Unlock()
	if err != nil {
		tb.Fatalf("pgtest: create test database: %v", err)
		return ""
	}
	s.mu.Lock()
	s.live[name] = true
	s.mu.Unlock()
	tb.Cleanup(func() {
		if err := s.drop(ctx, name); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return s.connStr(name)
}

// drop drops database name, disconnecting whoever is still on it.
func (s *server) drop(ctx context.Context, name string) error {
	if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	s.mu.Lock()
	delete(s.live, name)
	s.mu.Unlock()
	return nil
}

// close drops the databases left (on DATABASE_URL) or stops the cluster and
// removes its directory.
func (s *server) close(ctx context.Context) error {
	var errs []error
	if s.cluster == nil && s.admin != nil {
		s.mu.Lock()
		names := make([]string, 0, len(s.live))
		for name := range s.live {
			names = append(names, name)
		}
		s.mu.Unlock()
		for _, name := range names {
			errs = append(errs, s.drop(ctx, name))
		}
	}
	if s.admin != nil {
		s.admin.Close()
	}
	if s.cluster != nil {
		errs = append(errs, s.cluster.Stop(ctx))
	}
	if s.tempDir != "" {
		errs = append(errs, os.RemoveAll(s.tempDir))
	}
	return errors.Join(errs...)
}

// withDatabase returns the connection string u (URL or keyword/value form)
// with its database replaced by db.
func withDatabase(u, db string) string {
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		parsed, err := url.Parse(u)
		if err == nil {
			parsed.Path = "/" + db
			parsed.RawPath = ""
			return parsed.String()
		}
	}
	// In keyword/value form the last occurrence of a keyword wins.
	return u + " dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(db) + "'"
}

// redact hides a password in a connection string for an error message.
func redact(conn string) string {
	cfg, err := pgx.ParseConfig(conn)
	if err != nil || cfg.Password == "" {
		return conn
	}
	return strings.ReplaceAll(conn, cfg.Password, "xxxxx")
}

// Temporary cluster directories are named dirPrefix* and hold ownerFile
// with the pid of the test binary, so that a later run can remove the
// directories of binaries that ended without Main.
const (
	dirPrefix = "ouder-pgtest-"
	ownerFile = "owner.pid"
)

// removeAbandoned removes cluster directories under tmp whose test binary
// and server have both exited.
func removeAbandoned(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, dirPrefix+"*"))
	for _, dir := range dirs {
		owner := pgcluster.PIDFromFile(filepath.Join(dir, ownerFile))
		if owner == 0 || pgcluster.Alive(owner) {
			continue // being set up, or in use
		}
		if pm := pgcluster.PIDFromFile(filepath.Join(dir, "data", "postmaster.pid")); pm != 0 && pgcluster.Alive(pm) {
			continue // the server is still shutting down
		}
		_ = os.RemoveAll(dir)
	}
}

// shortTempDir returns /tmp when it exists, keeping socket paths short
// where $TMPDIR is long (macOS), else os.TempDir.
func shortTempDir() string {
	if fi, err := os.Stat("/tmp"); err == nil && fi.IsDir() {
		return "/tmp"
	}
	return os.TempDir()
}
