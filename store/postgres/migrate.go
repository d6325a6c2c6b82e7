package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrationLockKey is the advisory lock that serialises migrations when
// several instances start at once.
const migrationLockKey = 0x6f75646572 // "ouder"

// loadMigrations returns the embedded migrations in version order.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %q: name must be NNN_description.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %q and %q share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %q: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// LatestVersion returns the highest embedded migration version: the schema
// version a ready database has.
func LatestVersion() int {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// Migrate applies every embedded migration that the database does not have
// yet, each in its own transaction. Concurrent callers (several instances
// starting at once) are serialised by an advisory lock, so each migration runs
// exactly once. It returns the number of migrations applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (applied int, err error) {
	ms, err := loadMigrations()
	if err != nil {
		return 0, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLockKey)); err != nil {
		return 0, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer func() {
		// A fresh context: the caller's may be cancelled, and the lock must go.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLockKey))
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	have := map[int]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return 0, fmt.Errorf("migrate: list applied: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, fmt.Errorf("migrate: list applied: %w", err)
	}
	for _, v := range vs {
		have[int(v)] = true
	}
	for _, m := range ms {
		if have[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migrate: apply %s: %w", m.name, err)
		}
		applied++
	}
	return applied, nil
}

// Status is a summary of what a database holds.
type Status struct {
	SchemaVersion int
	Resources     int64 // current resources, including deleted ones
	Deleted       int64
	Versions      int64
}

// ReadStatus returns the schema version and row counts of the database.
func ReadStatus(ctx context.Context, pool *pgxpool.Pool) (st Status, err error) {
	err = pool.QueryRow(ctx, `SELECT
		coalesce((SELECT max(version) FROM schema_migrations), 0),
		(SELECT count(*) FROM resources),
		(SELECT count(*) FROM resources WHERE deleted),
		(SELECT count(*) FROM resource_history)`).Scan(&st.SchemaVersion, &st.Resources, &st.Deleted, &st.Versions)
	if err != nil {
		return st, fmt.Errorf("read status: %w", err)
	}
	return st, nil
}
