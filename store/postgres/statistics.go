package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Search plans are only as good as the planner's statistics, which come
// from the last ANALYZE of each table. Right after a burst of writes of a
// kind the statistics have not seen (Observations created after the index
// tables were analysed with Patients only), the planner takes a parameter
// that now has thousands of index rows for one row, and a nested loop that
// rescans an index range for every outer row turns a 2 ms search into one
// of seconds or minutes. Autovacuum wakes once a minute and waits for a
// share of the table to change; the refresher below analyses a search table
// within seconds of enough changes, whichever instance made them: it reads
// the changes from PostgreSQL's own counters (pg_stat_user_tables), which
// count every writer, bulk loads and reindexing included.

// statisticsTables are the tables searches plan on.
var statisticsTables = func() []string {
	out := []string{"resources"}
	for _, t := range indexTables {
		out = append(out, t.name)
	}
	return out
}()

// StatisticsRefresher analyses the search tables once enough of their rows
// changed since their last ANALYZE, whoever changed them. Its zero value is
// not usable: make it with NewStatisticsRefresher.
type StatisticsRefresher struct {
	pool *pgxpool.Pool
	// MinChanged and Share make a table stale: once the rows changed
	// since its last ANALYZE reach MinChanged plus Share of its rows. An
	// ANALYZE reads a sample of fixed size (30,000 rows at the default
	// statistics target), so its cost does not grow with the table (a
	// quarter of a second for the largest table of a million resources),
	// and a small share keeps new kinds of rows from going unseen for
	// long.
	MinChanged int64
	Share      float64
	// Spacing is the least time between two ANALYZEs of a table (ours or
	// autovacuum's), which bounds what analysing costs while writes go
	// on.
	Spacing time.Duration
}

// NewStatisticsRefresher returns a refresher of the search tables of the
// database of pool, with the thresholds that keep the plans of make bench's
// search scenario and of TestSearchPlansAfterWriteBurst sound.
func NewStatisticsRefresher(pool *pgxpool.Pool) *StatisticsRefresher {
	return &StatisticsRefresher{pool: pool, MinChanged: 1000, Share: 0.01, Spacing: 5 * time.Second}
}

// analyzeLockTimeout is how long an ANALYZE waits for its table. A vacuum
// holds the lock ANALYZE needs, and autovacuum gives way to a statement
// that has waited deadlock_timeout (1 s by default), which a refresh must
// not cause: the table is left for the next refresh instead.
const analyzeLockTimeout = "500ms"

// statisticsLockKey serialises the refreshers of several instances: one
// analyses while the others skip their turn.
const statisticsLockKey = 0x6f75646572_5354 // "ouder" "ST"

// Refresh analyses the search tables that are stale, and returns their
// names in name order. It does nothing while another refresher (of any
// instance) is at work, skips tables analysed less than Spacing ago, and
// leaves a table whose lock it cannot get at once (a vacuum is running on
// it) for the next time. PostgreSQL counts a backend's changes when its
// transactions end, at most once a second, so changes show here about a
// second after they commit. The tables analysed stay locked against
// vacuums and index builds (not against reads or writes) until the refresh
// ends, a second or two at most; autovacuum skips a table it cannot lock
// and comes back. Errors are those of the database.
func (st *StatisticsRefresher) Refresh(ctx context.Context) (analyzed []string, err error) {
	defer wrap(&err, "postgres.StatisticsRefresher.Refresh")
	err = pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(statisticsLockKey)).Scan(&locked); err != nil {
			return err
		}
		if !locked {
			return nil
		}
		rows, err := tx.Query(ctx, `SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
			WHERE s.schemaname = current_schema() AND s.relname = ANY($1)
				AND s.n_mod_since_analyze >= $2 + $3 * greatest(c.reltuples, 0)
				AND coalesce(greatest(s.last_analyze, s.last_autoanalyze) <= now() - $4::interval, true)
			ORDER BY s.relname`, statisticsTables, st.MinChanged, st.Share, st.Spacing)
		if err != nil {
			return err
		}
		stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+analyzeLockTimeout+"'"); err != nil {
			return err
		}
		for _, table := range stale {
			// Each ANALYZE in a savepoint: one that gives up waiting
			// for its table is undone alone.
			err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
				// The name is one of statisticsTables, never input.
				_, err := sp.Exec(ctx, "ANALYZE "+pgx.Identifier{table}.Sanitize())
				return err
			})
			var pe *pgconn.PgError
			switch {
			case errors.As(err, &pe) && pe.Code == "55P03": // lock_not_available
				continue
			case err != nil:
				return fmt.Errorf("analyze %s: %w", table, err)
			}
			analyzed = append(analyzed, table)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return analyzed, nil
}

// Run calls Refresh every interval until ctx ends, passing its errors
// (other than ctx's end) to report. cmd/ouderd runs it in the background
// of every instance.
func (st *StatisticsRefresher) Run(ctx context.Context, interval time.Duration, report func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := st.Refresh(ctx); err != nil && ctx.Err() == nil && report != nil {
			report(err)
		}
	}
}
