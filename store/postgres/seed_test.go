package postgres

// This file is in package postgres, not postgres_test, so that the bulk
// loader writes index rows with the store's own column mapping (indexTables)
// rather than a copy of it. Its exported names are for the external tests of
// this package (plan_test.go, bench_test.go); they exist only in test
// binaries.

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rawjson"
	"github.com/digitaleouder/ouder/store/postgres/internal/dataset"
)

// Seeder writes the charts of a dataset.Population into a database, in one
// of two ways:
//
//   - Create does what a FHIR create does: conformance.Parser validates the
//     resource and extracts its index entries with the built-in R4 search
//     parameters (all of them, not only those the tests search on), and
//     Store.Create writes it, from Workers goroutines.
//   - Copy is the bulk mode. It skips validation (the generated resources
//     are valid: dataset's tests parse them) but extracts the index with the
//     same code (Parser.IndexOf, as Parse does) and stamps the body as
//     Render does, then writes with COPY in batches (resources, history and
//     every index table), in Workers concurrent transactions.
//
// Both leave the same rows (TestCopyWritesWhatCreateWrites compares them):
// version 1, method POST, one history row, the index rows of Index.
type Seeder struct {
	Pop dataset.Population
	// Workers is the number of concurrent writers; 0 means 4 per CPU for
	// Create (each waits on the database most of the time) and 3 for Copy.
	Workers int
	// Batch is the number of charts per COPY transaction (default 100,
	// about 1000 resources).
	Batch int
	// Now is the clock for lastUpdated; nil means time.Now.
	Now func() time.Time
	// Keep, when set, selects the resources of each chart to write by
	// type (the others are skipped).
	Keep func(typ string) bool

	parser *conformance.Parser
	// Parsed counts the resources prepared so far, for progress reports.
	Parsed atomic.Int64
}

// NewSeeder returns a Seeder for pop with the server's parser and the
// built-in search parameters.
func NewSeeder(pop dataset.Population) (*Seeder, error) {
	parser, err := conformance.NewParser()
	if err != nil {
		return nil, err
	}
	registry, err := searchparam.Builtin()
	if err != nil {
		return nil, err
	}
	parser.Registry = func() *searchparam.Registry { return registry }
	return &Seeder{Pop: pop, parser: parser}, nil
}

func (sd *Seeder) now() time.Time {
	if sd.Now == nil {
		return time.Now().UTC().Truncate(time.Microsecond)
	}
	return sd.Now().UTC().Truncate(time.Microsecond)
}

func (sd *Seeder) keeps(typ string) bool { return sd.Keep == nil || sd.Keep(typ) }

// parse validates r and extracts its index, as the REST layer does.
func (sd *Seeder) parse(r dataset.Resource) (*conformance.Resource, error) {
	res, err := sd.parser.Parse(r.JSON, r.Type)
	if err != nil {
		return nil, fmt.Errorf("parse %s/%s: %w", r.Type, r.ID, err)
	}
	sd.Parsed.Add(1)
	return res, nil
}

// forCharts runs fn on the charts [from, to) in chunks of size, from n
// goroutines, and returns the first error (after which the others stop).
func forCharts(ctx context.Context, from, to, size, n int, fn func(ctx context.Context, lo, hi int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				lo := int(next.Add(int64(size))) - size
				if lo >= to {
					return
				}
				if err := fn(ctx, lo, min(lo+size, to)); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// Create writes charts [from, to) through s.Create, each chart's resources
// in order, Workers charts at a time.
func (sd *Seeder) Create(ctx context.Context, s *Store, from, to int) error {
	workers := sd.Workers
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	err := forCharts(ctx, from, to, 1, workers, func(ctx context.Context, lo, hi int) error {
		for i := lo; i < hi; i++ {
			for _, r := range sd.Pop.Chart(i) {
				if !sd.keeps(r.Type) {
					continue
				}
				res, err := sd.parse(r)
				if err != nil {
					return err
				}
				w := fhir.Write{Type: r.Type, ID: r.ID, Render: res.Render, Index: res.Index}
				if _, err := s.Create(ctx, w); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seed charts [%d, %d) through Store.Create: %w", from, to, err)
	}
	return nil
}

// copyRows are the rows of one COPY batch, by table.
type copyRows struct {
	resources, history [][]any
	index              [][][]any // parallel to indexTables
}

// Copy writes charts [from, to) in bulk. Each batch reserves its rids from
// the resources identity sequence (COPY writes given identity values, like
// OVERRIDING SYSTEM VALUE) and copies resources, history and index rows in
// one transaction; history seq comes from its own sequence as on any
// insert.
func (sd *Seeder) Copy(ctx context.Context, pool *pgxpool.Pool, from, to int) error {
	workers, batch := sd.Workers, sd.Batch
	if workers <= 0 {
		workers = 3
	}
	if batch <= 0 {
		batch = 100
	}
	err := forCharts(ctx, from, to, batch, workers, func(ctx context.Context, lo, hi int) error {
		rows, err := sd.rows(lo, hi)
		if err != nil {
			return err
		}
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return writeRows(ctx, tx, rows) })
	})
	if err != nil {
		return fmt.Errorf("copy charts [%d, %d): %w", from, to, err)
	}
	return nil
}

// rows turns charts [lo, hi) into the rows Store.Create would write. The
// rid of each row is left for writeRows to fill in.
func (sd *Seeder) rows(lo, hi int) (*copyRows, error) {
	out := &copyRows{index: make([][][]any, len(indexTables))}
	for i := lo; i < hi; i++ {
		for _, r := range sd.Pop.Chart(i) {
			if !sd.keeps(r.Type) {
				continue
			}
			members, err := rawjson.Members(r.JSON)
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %w", r.Type, r.ID, err)
			}
			x, err := sd.parser.IndexOf(r.Type, r.JSON)
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %w", r.Type, r.ID, err)
			}
			sd.Parsed.Add(1)
			now := sd.now()
			body, err := rawjson.Stamp(members, r.Type, r.ID, 1, now)
			if err != nil {
				return nil, err
			}
			// The rid is the first value of every row; it is set once the
			// batch has reserved its rids.
			out.resources = append(out.resources, []any{int64(0), r.Type, r.ID, int64(1), now, body})
			out.history = append(out.history, []any{int64(0), r.Type, r.ID, int64(1), now, string(fhir.MethodCreate), body})
			for t, table := range indexTables {
				n, params, groups, cols := table.arrays(x)
				for j := range n {
					row := []any{len(out.resources) - 1, params[j], groups[j]}
					for _, c := range cols {
						row = append(row, element(c, j))
					}
					out.index[t] = append(out.index[t], row)
				}
			}
		}
	}
	return out, nil
}

// element returns item j of one of the column slices indexTables makes.
func element(col any, j int) any {
	switch c := col.(type) {
	case []string:
		return c[j]
	case []time.Time:
		return c[j]
	}
	panic(fmt.Sprintf("seed: index column of type %T", col))
}

// writeRows reserves rids for rows and copies them on tx. Index rows hold
// the position of their resource in rows.resources until then.
func writeRows(ctx context.Context, tx pgx.Tx, rows *copyRows) error {
	n := len(rows.resources)
	var rids []int64
	err := tx.QueryRow(ctx, `SELECT array_agg(nextval(pg_get_serial_sequence('resources', 'rid')))
		FROM generate_series(1, $1)`, n).Scan(&rids)
	if err != nil {
		return fmt.Errorf("reserve rids: %w", err)
	}
	for i := range n {
		rows.resources[i][0] = rids[i]
		rows.history[i][0] = rids[i]
	}
	copies := []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"resources", []string{"rid", "type", "id", "version", "last_updated", "body"}, rows.resources},
		{"resource_history", []string{"rid", "type", "id", "version", "last_updated", "method", "body"}, rows.history},
	}
	for t, table := range indexTables {
		for _, row := range rows.index[t] {
			row[0] = rids[row[0].(int)]
		}
		copies = append(copies, struct {
			table string
			cols  []string
			rows  [][]any
		}{table.name, append([]string{"rid", "param", "grp"}, table.columns...), rows.index[t]})
	}
	for _, c := range copies {
		if len(c.rows) == 0 {
			continue
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			return fmt.Errorf("copy into %s: %w", c.table, err)
		}
	}
	return nil
}
