package pgtest

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/store/postgres"
)

func TestMain(m *testing.M) { Main(m) }

// helperEnv makes the test binary, run as a subprocess, act as a separate
// test binary (TestHelperProcess) instead of running the tests.
const helperEnv = "PGTEST_HELPER"

// TestDistinctDatabases checks that parallel tests get separate, migrated
// databases that are dropped when each test ends.
func TestDistinctDatabases(t *testing.T) {
	var (
		mu    sync.Mutex
		names = map[string]bool{}
	)
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"a", "b", "c"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				pool := Pool(t)
				t.Logf("database ready in %v", time.Since(start).Round(time.Millisecond))
				db := checkMigrated(t, pool)
				mu.Lock()
				defer mu.Unlock()
				if names[db] {
					t.Errorf("database %s handed out twice", db)
				}
				names[db] = true
			})
		}
	})
	if len(names) != 3 {
		t.Fatalf("got databases %v, want 3 distinct", names)
	}
	for db := range names {
		if exists(t, shared.admin, db) {
			t.Errorf("database %s still exists after its test ended", db)
		}
	}
}

// TestDatabaseURL runs the DATABASE_URL path against the harness's own
// cluster: the template and test databases get unique names and are all
// dropped on close, including one whose test never cleaned up.
func TestDatabaseURL(t *testing.T) {
	Pool(t) // start the shared cluster
	for _, tc := range []struct {
		name string
		url  string
	}{
		{name: "keyword/value", url: shared.connStr("postgres")},
		{name: "URL", url: "postgres:///postgres?host=" + shared.cluster.SocketDir() + "&user=postgres&sslmode=disable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := newServer(ctx, tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if want := "ouder_test_" + strconv.Itoa(os.Getpid()) + "_"; !strings.HasPrefix(s.template, want) {
				t.Errorf("template %q, want prefix %q", s.template, want)
			}
			var dbs []string
			t.Run("test", func(t *testing.T) {
				pool, err := pgxpool.New(ctx, s.database(t))
				if err != nil {
					t.Fatal(err)
				}
				defer pool.Close()
				dbs = append(dbs, checkMigrated(t, pool))
			})
			leak := &leakyTB{TB: t}
			pool, err := pgxpool.New(ctx, s.database(leak))
			if err != nil {
				t.Fatal(err)
			}
			dbs = append(dbs, checkMigrated(t, pool))
			pool.Close()
			if err := s.close(ctx); err != nil {
				t.Fatalf("close: %v", err)
			}
			for _, db := range append(dbs, s.template) {
				if exists(t, shared.admin, db) {
					t.Errorf("database %s left behind", db)
				}
			}
		})
	}
}

// TestSubprocess runs this test binary as another test binary would: with
// DATABASE_URL set, and with a DATABASE_URL that leads nowhere, where the
// tests must fail (never skip) and say how to get PostgreSQL.
func TestSubprocess(t *testing.T) {
	Pool(t)
	for _, tc := range []struct {
		name       string
		url        string
		wantFail   bool
		wantOutput string
	}{
		{name: "DATABASE_URL", url: shared.connStr("postgres"), wantOutput: "helper ok"},
		{name: "no PostgreSQL", url: "host=/nonexistent user=postgres dbname=postgres", wantFail: true, wantOutput: "unset it to let the tests start a throwaway cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
			cmd.Env = append(os.Environ(), helperEnv+"=1", "DATABASE_URL="+tc.url)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Errorf("helper failed = %v (%v), want %v; output:\n%s", failed, err, tc.wantFail, out)
			}
			if !strings.Contains(string(out), tc.wantOutput) || strings.Contains(string(out), "SKIP") {
				t.Errorf("helper output lacks %q or has a SKIP:\n%s", tc.wantOutput, out)
			}
			// Main dropped everything the helper made.
			var left []string
			prefix := "ouder_test_" + strconv.Itoa(cmd.Process.Pid) + "_%"
			rows, err := shared.admin.Query(context.Background(), "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var s string
				rows.Scan(&s)
				left = append(left, s)
			}
			if len(left) > 0 {
				t.Errorf("helper left databases %v", left)
			}
		})
	}
}

// TestHelperProcess is the test binary that TestSubprocess runs.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		return
	}
	a, b := Pool(t), Pool(t)
	if checkMigrated(t, a) == checkMigrated(t, b) {
		t.Fatal("two pools on one database")
	}
	t.Log("helper ok")
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{name: "URL", in: "postgres://u:p@h:5433/old?sslmode=disable", want: "postgres://u:p@h:5433/new_1?sslmode=disable"},
		{name: "postgresql URL", in: "postgresql://h/old", want: "postgresql://h/new_1"},
		{name: "keyword/value", in: "host=/tmp dbname=old", want: "host=/tmp dbname=old dbname='new_1'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := withDatabase(tc.in, "new_1"); got != tc.want {
				t.Errorf("withDatabase(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// checkMigrated fails unless pool's database has the migrated schema, and
// returns the database's name.
func checkMigrated(tb testing.TB, pool *pgxpool.Pool) string {
	tb.Helper()
	var (
		db      string
		table   *string
		version int
	)
	err := pool.QueryRow(context.Background(),
		"SELECT current_database(), to_regclass('resources')::text, (SELECT max(version) FROM schema_migrations)").Scan(&db, &table, &version)
	if err != nil {
		tb.Fatal(err)
	}
	if table == nil || version != postgres.LatestVersion() {
		tb.Errorf("database %s: resources table %v, schema version %d, want the table and version %d", db, table, version, postgres.LatestVersion())
	}
	return db
}

func exists(tb testing.TB, admin *pgxpool.Pool, db string) bool {
	tb.Helper()
	var n int
	if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", db).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n > 0
}

// leakyTB is a test that never runs its cleanups.
type leakyTB struct{ testing.TB }

func (*leakyTB) Cleanup(func()) {}
