package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/fhir"
)

// SearchParamChannel is the LISTEN/NOTIFY channel on which a change of the
// custom search parameters is announced to every instance.
const SearchParamChannel = "ouder_searchparams"

// CustomSearchParams returns the SearchParameter resources stored on this
// server whose status is not retired: the custom definitions to index with.
func (s *Store) CustomSearchParams(ctx context.Context) (out []r4.SearchParam, err error) {
	defer wrap(&err, "postgres.CustomSearchParams")
	rows, err := s.pool.Query(ctx, `SELECT body FROM resources WHERE type = 'SearchParameter' AND NOT deleted ORDER BY rid`)
	if err != nil {
		return nil, err
	}
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, err
	}
	for _, b := range bodies {
		var sp r4.SearchParam
		var st struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(b, &sp) != nil || json.Unmarshal(b, &st) != nil || st.Status == "retired" {
			continue
		}
		out = append(out, sp)
	}
	return out, nil
}

// AnnounceSearchParams tells every instance (through NOTIFY) that the
// custom search parameters changed.
func (s *Store) AnnounceSearchParams(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, '')`, SearchParamChannel)
	return err
}

// ListenSearchParams calls changed whenever any instance announces a change
// of the custom search parameters, until ctx ends. It reconnects after a
// lost connection and then calls changed once, in case it missed a notice.
func (s *Store) ListenSearchParams(ctx context.Context, changed func()) {
	for ctx.Err() == nil {
		err := s.listen(ctx, changed)
		if ctx.Err() != nil {
			return
		}
		_ = err
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		changed()
	}
}

func (s *Store) listen(ctx context.Context, changed func()) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+SearchParamChannel); err != nil {
		return err
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "UNLISTEN "+SearchParamChannel) }()
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return err
		}
		changed()
	}
}

// ReindexJob is the state of one reindexing job.
type ReindexJob struct {
	ID          int64
	Reason      string
	Types       []string
	Total, Done int64
	CreatedAt   time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
	Error       string
}

// StartReindex queues a job that re-extracts the index of every resource of
// types (with the registry in force when each batch runs).
func (s *Store) StartReindex(ctx context.Context, reason string, types []string) (id int64, err error) {
	defer wrap(&err, "postgres.StartReindex")
	err = s.pool.QueryRow(ctx, `INSERT INTO reindex_jobs (reason, types, total)
		VALUES ($1, $2, (SELECT count(*) FROM resources WHERE type = ANY($2) AND NOT deleted)) RETURNING id`,
		reason, types).Scan(&id)
	return id, err
}

// ReindexJobs lists the jobs, newest first.
func (s *Store) ReindexJobs(ctx context.Context) (jobs []ReindexJob, err error) {
	defer wrap(&err, "postgres.ReindexJobs")
	rows, err := s.pool.Query(ctx, `SELECT id, reason, types, total, done, created_at, started_at, finished_at, coalesce(error, '')
		FROM reindex_jobs ORDER BY id DESC LIMIT 100`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var j ReindexJob
		if err := rows.Scan(&j.ID, &j.Reason, &j.Types, &j.Total, &j.Done, &j.CreatedAt, &j.StartedAt, &j.FinishedAt, &j.Error); err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// IndexFunc extracts the search index entries of a stored resource.
type IndexFunc func(typ string, body []byte) (*fhir.Index, error)

// reindexBatch is how many resources one step of a job rewrites.
const reindexBatch = 200

// ReindexStep claims an open job (one no other instance is working on) and
// reindexes its next batch. It reports whether it did any work, so a worker
// can loop until there is nothing left. A resource written concurrently is
// skipped: its own write indexed it with the registry of that moment.
// refresh, when not nil, is called once the job is claimed and before any
// resource is indexed, to bring index's search-parameter registry up to
// date with the database.
func (s *Store) ReindexStep(ctx context.Context, refresh func(context.Context) error, index IndexFunc) (worked bool, err error) {
	defer wrap(&err, "postgres.ReindexStep")
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			id      int64
			types   []string
			lastRID int64
		)
		err := tx.QueryRow(ctx, `SELECT id, types, last_rid FROM reindex_jobs WHERE finished_at IS NULL
			ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&id, &types, &lastRID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		worked = true
		// The job was queued after its SearchParameter change committed;
		// refreshing now gives index a registry at least that new, even
		// when this instance has not yet heard the announcement. Without
		// it, a stale registry would rewrite the rows without the new
		// parameter and finish the job.
		if refresh != nil {
			if err := refresh(ctx); err != nil {
				return fmt.Errorf("refresh the search parameters: %w", err)
			}
		}
		rows, err := tx.Query(ctx, `SELECT rid, type, version, body FROM resources
			WHERE type = ANY($1) AND rid > $2 AND NOT deleted ORDER BY rid LIMIT $3`, types, lastRID, reindexBatch)
		if err != nil {
			return err
		}
		type item struct {
			rid, version int64
			typ          string
			body         []byte
		}
		var items []item
		for rows.Next() {
			var it item
			if err := rows.Scan(&it.rid, &it.typ, &it.version, &it.body); err != nil {
				rows.Close()
				return err
			}
			items = append(items, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, it := range items {
			x, err := index(it.typ, it.body)
			if err != nil {
				_, uerr := tx.Exec(ctx, `UPDATE reindex_jobs SET finished_at = now(), error = $2 WHERE id = $1`,
					id, fmt.Sprintf("%s rid %d: %v", it.typ, it.rid, err))
				return uerr
			}
			args := sqlArgs{it.rid, it.version}
			// Bumping gen makes a concurrent writer that read this row
			// before us retry, so its index rows replace ours, never
			// join them.
			sql := `WITH ok AS (UPDATE resources SET gen = gen + 1 WHERE rid = $1 AND version = $2 RETURNING rid)` +
				indexCTEs("ok", x, true, &args) + ` SELECT count(*) FROM ok`
			var n int
			if err := tx.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
				return err
			}
		}
		if len(items) == 0 {
			_, err = tx.Exec(ctx, `UPDATE reindex_jobs SET finished_at = now(), started_at = coalesce(started_at, now()) WHERE id = $1`, id)
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE reindex_jobs SET done = done + $2, last_rid = $3, started_at = coalesce(started_at, now())
			WHERE id = $1`, id, len(items), items[len(items)-1].rid)
		return err
	})
	return worked, err
}
