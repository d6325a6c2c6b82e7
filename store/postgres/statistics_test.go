package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
	"github.com/digitaleouder/ouder/store/postgres/internal/dataset"
)

// searchTables are the tables the statistics refresher looks after.
var searchTables = []string{"idx_date", "idx_number", "idx_quantity", "idx_reference", "idx_string", "idx_token", "idx_uri", "resources"}

// flushTableStats makes PostgreSQL count the changes of every idle
// connection of pool now rather than within the next second
// (pg_stat_force_next_flush, PostgreSQL 15): the refresher reads those
// counts, and the test must not wait for them.
func flushTableStats(tb testing.TB, pool *pgxpool.Pool) {
	tb.Helper()
	ctx := context.Background()
	for _, c := range pool.AcquireAllIdle(ctx) {
		_, err := c.Exec(ctx, "SELECT pg_stat_force_next_flush()")
		c.Release()
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// TestSearchPlansAfterWriteBurst is make bench's search scenario in small:
// the tables are analysed while they hold only Patients, then a burst of
// Observations, Goals and CarePlans arrives and searches start at once.
// With the statistics of before the burst the planner takes the new
// parameters for one row each, and some plans rescan an index range for
// every outer row (seconds to minutes per search); one refresh of the
// statistics must give every common shape the plans TestSearchPlans
// expects. Autovacuum is off for the test's tables, as if it had not woken
// up yet.
func TestSearchPlansAfterWriteBurst(t *testing.T) {
	ctx := context.Background()
	pop := dataset.Sized(4, planResources)
	url := pgtest.URL(t)
	d := openDB(t, url, pop)
	for _, table := range searchTables {
		if _, err := d.pool.Exec(ctx, "ALTER TABLE "+table+" SET (autovacuum_enabled = false)"); err != nil {
			t.Fatal(err)
		}
	}
	sd, err := postgres.NewSeeder(pop)
	if err != nil {
		t.Fatal(err)
	}
	sd.Keep = func(typ string) bool { return typ == "Patient" }
	if err := sd.Copy(ctx, d.pool, 0, pop.Patients); err != nil {
		t.Fatal(err)
	}
	if _, err := d.pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		t.Fatal(err)
	}
	sd.Keep = func(typ string) bool { return typ != "Patient" }
	if err := sd.Copy(ctx, d.pool, 0, pop.Patients); err != nil {
		t.Fatal(err)
	}
	flushTableStats(t, d.pool)

	// The burst's searches as planned before the refresh. Running them
	// could take minutes: a second pool gives up on each statement after
	// a moment, which is enough to capture its SQL (timing decides
	// nothing here: a statement that finishes in time is captured too).
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "300"
	cfg.ConnConfig.Tracer = captureTracer{}
	quickPool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer quickPool.Close()
	quick := postgres.New(quickPool)
	cases := commonShapes(pop)
	cliffs := 0
	for _, tc := range cases {
		ctx, c := capturing(unrestricted())
		_, _ = quick.Search(ctx, d.parse(t, tc.typ, tc.query))
		if len(c.stmts) == 0 {
			t.Fatalf("%s: Store.Search ran no statement", tc.name)
		}
		plan, text := d.explain(t, c.stmts[0])
		plan.walk(func(n *planNode) {
			if r, ok := n.rescans(); ok {
				cliffs++
				t.Logf("%s before the refresh: %s on %s is repeated for every outer row:\n%s", tc.name, r.NodeType, r.Alias, text)
			}
		})
	}
	if cliffs == 0 {
		t.Errorf("no plan rescans an index range per outer row before the refresh: the scenario no longer reproduces stale statistics, and proves nothing about the refresher")
	}

	refresher := postgres.NewStatisticsRefresher(d.pool)
	refresher.Spacing = 0 // the tables were analysed moments ago, before the burst
	analyzed, err := refresher.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"idx_date", "idx_quantity", "idx_reference", "idx_token", "resources"} {
		if !slices.Contains(analyzed, table) {
			t.Errorf("Refresh analysed %v, not %s, which the burst filled", analyzed, table)
		}
	}
	checkPlans(t, d, cases)
}

// TestRefreshStatistics checks when the refresher analyses: not while the
// tables are as analysed; after enough changes to one table, that one;
// not again within Spacing; and not while another refresher is at work.
func TestRefreshStatistics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := seedDB(t, dataset.Sized(5, 2000))
	refresher := postgres.NewStatisticsRefresher(d.pool)
	refresher.Spacing = 0
	refresh := func(t *testing.T, want ...string) {
		t.Helper()
		flushTableStats(t, d.pool)
		got, err := refresher.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Refresh analysed %v, want %v", got, want)
		}
	}
	exec := func(t *testing.T, sql string) {
		t.Helper()
		if _, err := d.pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	// grow adds n copies of a row of table (at most a few thousand rows
	// each, so the threshold is about MinChanged).
	grow := func(t *testing.T, table string, n int) {
		t.Helper()
		exec(t, fmt.Sprintf("INSERT INTO %s SELECT x.* FROM (SELECT * FROM %s LIMIT 1) x, generate_series(1, %d)", table, table, n))
	}
	t.Run("analysed", func(t *testing.T) { refresh(t) })
	t.Run("few changes", func(t *testing.T) {
		grow(t, "idx_string", 100)
		refresh(t)
	})
	t.Run("enough changes", func(t *testing.T) {
		grow(t, "idx_string", 1200)
		refresh(t, "idx_string")
		var fresh bool
		if err := d.pool.QueryRow(ctx, `SELECT last_analyze IS NOT NULL AND n_mod_since_analyze = 0
			FROM pg_stat_user_tables WHERE relname = 'idx_string'`).Scan(&fresh); err != nil || !fresh {
			t.Fatalf("idx_string is not freshly analysed (%v)", err)
		}
	})
	t.Run("within spacing", func(t *testing.T) {
		grow(t, "idx_string", 1500)
		spaced := *refresher
		spaced.Spacing = time.Hour
		flushTableStats(t, d.pool)
		if got, err := spaced.Refresh(ctx); err != nil || len(got) != 0 {
			t.Fatalf("within an hour of the last ANALYZE: Refresh analysed %v (%v), want nothing", got, err)
		}
		refresh(t, "idx_string")
	})
	t.Run("another refresher at work", func(t *testing.T) {
		tx, err := d.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", postgres.StatisticsLockKey); err != nil {
			t.Fatal(err)
		}
		grow(t, "idx_token", 2000)
		refresh(t)
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		refresh(t, "idx_token")
	})
	t.Run("table locked", func(t *testing.T) {
		// A vacuum (or anything else holding the lock ANALYZE needs) on
		// idx_token: the refresher analyses the rest and leaves it.
		tx, err := d.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "LOCK TABLE idx_token IN SHARE UPDATE EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		grow(t, "idx_token", 2000)
		grow(t, "idx_string", 1500)
		refresh(t, "idx_string")
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		refresh(t, "idx_token")
	})
}

// TestRunStatisticsStops checks that the background loop refreshes on its
// own, reports nothing when nothing fails, and returns when its context
// ends.
func TestRunStatisticsStops(t *testing.T) {
	t.Parallel()
	d := seedDB(t, dataset.Sized(6, 1000))
	refresher := postgres.NewStatisticsRefresher(d.pool)
	refresher.Spacing = 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var errs []error
	go func() {
		defer close(done)
		refresher.Run(ctx, time.Millisecond, func(err error) { errs = append(errs, err) })
	}()
	if _, err := d.pool.Exec(ctx, `INSERT INTO idx_token (rid, param, grp, system, code, text)
		SELECT rid, param, grp, system, code || 'x', text FROM idx_token LIMIT 3000`); err != nil {
		t.Fatal(err)
	}
	flushTableStats(t, d.pool)
	// Until the loop has analysed idx_token; the test's own deadline
	// bounds the wait.
	for analysed := false; !analysed; {
		if err := d.pool.QueryRow(ctx, `SELECT n_mod_since_analyze < 3000 FROM pg_stat_user_tables WHERE relname = 'idx_token'`).Scan(&analysed); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if len(errs) > 0 {
		t.Errorf("Run reported %v", errs)
	}
}
