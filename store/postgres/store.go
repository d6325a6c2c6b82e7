// Package postgres stores FHIR resources in PostgreSQL through pgx: the
// current state of each resource, every version in an append-only history,
// and (as the schema grows) the search indexes and the audit trail.
//
// Everything that two server instances must agree on (ids, versions, the
// change-log sequence) is decided by the database, so any number of
// instances can share one database.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
)

// Store is the PostgreSQL implementation of fhir.Store.
type Store struct {
	pool *pgxpool.Pool
	// tx is set on the Store that Transaction hands out: every statement
	// then runs in that one database transaction.
	tx pgx.Tx
	// Now is the clock; tests replace it. It must be safe for concurrent use.
	Now func() time.Time
	// NewID returns a fresh logical id for a created resource.
	NewID func() string
	// Registry returns the search parameters in force (for _include=*);
	// nil means the built-in R4 parameters.
	Registry func() *searchparam.Registry
	// Base is the server's FHIR base URL: an absolute reference under it
	// counts as local when access rules confine a request to compartments
	// outside a search (which carries its own, search.Query.Base). Empty:
	// only relative references are local.
	Base string
	// OnPolicyChange, when set, is called after commit whenever this
	// Store wrote a resource of one of PolicyTypes (the access policy's
	// facts), so this instance sees the change at once; other instances
	// hear of it on PolicyChannel (ListenPolicy).
	OnPolicyChange func()
	// policyTouched is set, inside Transaction, when the transaction
	// wrote one of PolicyTypes.
	policyTouched *bool
}

var _ fhir.Store = (*Store)(nil)

// New returns a Store on pool. The schema must have been migrated (Migrate).
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, Now: time.Now, NewID: uuid.NewString}
}

// Pool returns the connection pool, for wiring that shares it (health checks,
// benchmarks' raw baseline).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// errRetry asks inTx to run the transaction again: a concurrent writer won a
// race that the transaction could not see coming (two update-as-creates of
// the same id).
var errRetry = errors.New("retry transaction")

// maxAttempts bounds how often a transaction is retried on a serialization
// failure, deadlock or lost insert race.
const maxAttempts = 8

// db is where statements run: the transaction of a Store from
// Transaction, else the pool.
func (s *Store) db() dbtx {
	if s.tx != nil {
		return s.tx
	}
	return s.pool
}

// dbtx is what both a pool and a transaction offer.
type dbtx interface {
	querier
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Transaction runs fn with a Store whose reads, writes and searches all
// belong to one database transaction, committed when fn returns nil and
// rolled back otherwise: the all-or-nothing of a FHIR transaction Bundle.
// A write that conflicts with a concurrent one inside it fails with
// Conflict instead of being retried (the caller may retry the whole
// transaction).
func (s *Store) Transaction(ctx context.Context, fn func(tx *Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	touched := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		inner := *s
		inner.tx = tx
		inner.policyTouched = &touched
		return fn(&inner)
	})
	if err == nil && touched && s.OnPolicyChange != nil {
		s.OnPolicyChange()
	}
	if err != nil && !fhir.IsKind(err, fhir.Conflict) && retryable(err) {
		// A deadlock or serialization failure with a concurrent
		// transaction: nothing was stored, and the client may retry.
		return &fhir.Error{Kind: fhir.Conflict, Err: err, Issues: []fhir.Issue{{Diagnostics: "the transaction conflicted with a concurrent one and was rolled back; retry it"}}}
	}
	return err
}

// inTx runs fn in a transaction and retries it on serialization failures
// (SQLSTATE 40001), deadlocks (40P01) and errRetry. Inside Transaction it
// runs fn in that transaction, once.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if s.tx != nil {
		err := fn(s.tx)
		if retryable(err) {
			return &fhir.Error{Kind: fhir.Conflict, Err: err, Issues: []fhir.Issue{{Diagnostics: "a concurrent write to the same resource conflicted with this transaction; retry it"}}}
		}
		return err
	}
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, fn)
		if err == nil || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * time.Millisecond):
		}
	}
	return fmt.Errorf("transaction still conflicting after %d attempts: %w", maxAttempts, err)
}

func retryable(err error) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// now returns the clock truncated to PostgreSQL's microsecond precision, in UTC.
func (s *Store) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// after returns a version time that is the clock's, but never earlier than
// just after prev: versions of one resource keep increasing times even if
// two instances' clocks disagree slightly.
func (s *Store) after(prev time.Time) time.Time {
	t := s.now()
	if !t.After(prev) {
		t = prev.Add(time.Microsecond).UTC()
	}
	return t
}

// querier is what both a pool and a transaction offer; the single-statement
// writes run on either.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Writes take one of two paths. The fast path is optimistic: it reads the
// current version without a lock and writes the new version with one
// statement that only succeeds if that version is still current (resource
// row, history row and index rows together, atomically, in one round trip).
// When a concurrent writer (or a reindex) got in between, the slow path
// repeats the write in a transaction that locks the row: blind writers queue
// up instead of retrying forever, and If-Match is judged against the version
// found under the lock.

// Every write obeys the access of its context (search.AccessFrom): without
// one it is refused (Forbidden). Under a restricted access the write runs in
// a transaction that checks, before it writes, that the version it replaces
// is one the request may write (Forbidden, or NotFound when the request may
// not even read it) and, after it has written the new version and its index
// rows, that the new version is one too; otherwise it rolls back
// (Forbidden). The unrestricted access takes the paths described above.

// Create implements fhir.Store.
func (s *Store) Create(ctx context.Context, w fhir.Write) (out fhir.Outcome, err error) {
	defer wrap(&err, "postgres.Create(%q)", w.Type)
	if err := refuseAudit(w.Type); err != nil {
		return out, err
	}
	g, err := s.newGuard(ctx, w.Type)
	if err != nil {
		return out, err
	}
	id := w.ID
	if id == "" {
		id = s.NewID()
	}
	var r *fhir.Resource
	if !g.restricted() && !recording(ctx, w.Type) {
		r, err = s.insertNew(ctx, s.db(), w, id, fhir.MethodCreate)
	} else {
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			var err error
			if r, err = s.insertNew(ctx, tx, w, id, fhir.MethodCreate); err != nil || r == nil {
				return err
			}
			if err := g.checkWritten(ctx, tx, w.Type, id); err != nil {
				return err
			}
			return s.record(ctx, tx, fhir.Written{Resource: *r, Method: fhir.MethodCreate, Created: true}, nil)
		})
	}
	if err != nil {
		return out, err
	}
	if r == nil {
		// Only possible with a caller-chosen id.
		return out, fhir.Errorf(fhir.Conflict, w.Type+".id", "%s/%s already exists", w.Type, id)
	}
	s.policyWritten(w.Type)
	return fhir.Outcome{Resource: *r, Created: true}, nil
}

// insertNew writes version 1 of a new resource and its history row in one
// statement. It returns nil, nil when (type, id) already exists.
func (s *Store) insertNew(ctx context.Context, q querier, w fhir.Write, id string, m fhir.Method) (*fhir.Resource, error) {
	r := fhir.Resource{Type: w.Type, ID: id, VersionID: 1, LastUpdated: s.now()}
	body, err := w.Render(fhir.Meta{ID: id, VersionID: 1, LastUpdated: r.LastUpdated})
	if err != nil {
		return nil, err
	}
	r.Body = body
	args := sqlArgs{w.Type, id, r.LastUpdated, body, string(m)}
	sql := `WITH r AS (
			INSERT INTO resources (type, id, version, last_updated, body)
			VALUES ($1, $2, 1, $3, $4) ON CONFLICT (type, id) DO NOTHING RETURNING rid),
		h AS (INSERT INTO resource_history (rid, type, id, version, last_updated, method, body)
			SELECT rid, $1, $2, 1, $3, $5, $4 FROM r)` + indexCTEs("r", w.Index, false, &args) + `
		SELECT rid FROM r`
	var rid int64
	err = q.QueryRow(ctx, sql, args...).Scan(&rid)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// current is the current row of a resource.
type current struct {
	rid         int64
	version     int64
	gen         int64
	lastUpdated time.Time
	deleted     bool
}

// readCurrent reads the current row of (typ, id), locking it when lock is
// set (inside a transaction); ok is false when the resource does not exist.
func readCurrent(ctx context.Context, q querier, typ, id string, lock bool) (c current, ok bool, err error) {
	sql := `SELECT rid, version, gen, last_updated, deleted FROM resources WHERE type = $1 AND id = $2`
	if lock {
		sql += ` FOR UPDATE`
	}
	err = q.QueryRow(ctx, sql, typ, id).Scan(&c.rid, &c.version, &c.gen, &c.lastUpdated, &c.deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	return c, err == nil, err
}

// replace writes r as the version after cur, resource row, history row and
// index rows (x; nil for a tombstone, which removes them) in one statement,
// provided cur is still the current version and no reindex rewrote its
// index rows since it was read (gen). It reports whether it wrote.
func replace(ctx context.Context, q querier, cur current, r fhir.Resource, m fhir.Method, x *fhir.Index) (bool, error) {
	args := sqlArgs{cur.rid, cur.version, r.VersionID, r.LastUpdated, r.Deleted, r.Body, string(m), cur.gen}
	sql := `WITH u AS (
			UPDATE resources SET version = $3, last_updated = $4, deleted = $5, body = $6
			WHERE rid = $1 AND version = $2 AND gen = $8 RETURNING rid, type, id),
		h AS (INSERT INTO resource_history (rid, type, id, version, last_updated, method, body)
			SELECT rid, type, id, $3, $4, $7, $6 FROM u)` + indexCTEs("u", x, true, &args) + `
		SELECT rid FROM u`
	var rid int64
	err := q.QueryRow(ctx, sql, args...).Scan(&rid)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func preconditionFailed(typ, id string, want, have int64) error {
	return fhir.Errorf(fhir.PreconditionFailed, "", "If-Match expects version %d of %s/%s, but the current version is %d", want, typ, id, have)
}

func preconditionMissing(typ, id string, want int64) error {
	return fhir.Errorf(fhir.PreconditionFailed, "", "If-Match expects version %d of %s/%s, which does not exist", want, typ, id)
}

// Update implements fhir.Store.
func (s *Store) Update(ctx context.Context, w fhir.Write) (out fhir.Outcome, err error) {
	defer wrap(&err, "postgres.Update(%q, %q)", w.Type, w.ID)
	if err := refuseAudit(w.Type); err != nil {
		return out, err
	}
	g, err := s.newGuard(ctx, w.Type)
	if err != nil {
		return out, err
	}
	defer func() {
		if err == nil {
			s.policyWritten(w.Type)
		}
	}()
	if !g.restricted() && !recording(ctx, w.Type) {
		out, done, err := s.update(ctx, s.db(), w, false, g)
		if done || err != nil {
			return out, err
		}
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var done bool
		before, err := s.patientsBefore(ctx, tx, w.Type, w.ID)
		if err != nil {
			return err
		}
		out, done, err = s.update(ctx, tx, w, true, g)
		if err == nil && !done {
			err = errRetry // the row was created concurrently: lock it now
		}
		if err == nil {
			err = g.checkWritten(ctx, tx, w.Type, w.ID)
		}
		if err == nil {
			err = s.record(ctx, tx, fhir.Written{Resource: out.Resource, Method: fhir.MethodUpdate, Created: out.Created}, before)
		}
		return err
	})
	return out, err
}

// update tries to write the next version of w.ID on q. done is false when a
// concurrent writer got in between and the caller should take the locked
// path; with If-Match that is a 412 instead. The version it replaces must
// pass g.
func (s *Store) update(ctx context.Context, q querier, w fhir.Write, lock bool, g guard) (out fhir.Outcome, done bool, err error) {
	cur, ok, err := readCurrent(ctx, q, w.Type, w.ID, lock)
	if err != nil {
		return out, false, err
	}
	if !ok {
		if w.IfMatch != 0 {
			return out, false, preconditionMissing(w.Type, w.ID, w.IfMatch)
		}
		r, err := s.insertNew(ctx, q, w, w.ID, fhir.MethodUpdate)
		if err != nil || r == nil {
			return out, false, err
		}
		return fhir.Outcome{Resource: *r, Created: true}, true, nil
	}
	if err := g.checkStored(ctx, q, w.Type, w.ID, cur.rid); err != nil {
		return out, false, err
	}
	if w.IfMatch != 0 && w.IfMatch != cur.version {
		return out, false, preconditionFailed(w.Type, w.ID, w.IfMatch, cur.version)
	}
	r := fhir.Resource{Type: w.Type, ID: w.ID, VersionID: cur.version + 1, LastUpdated: s.after(cur.lastUpdated)}
	if r.Body, err = w.Render(fhir.Meta{ID: w.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated}); err != nil {
		return out, false, err
	}
	wrote, err := replace(ctx, q, cur, r, fhir.MethodUpdate, w.Index)
	if err != nil || !wrote {
		// Not written: someone else got in between. The locked path reads
		// again and answers If-Match against what it finds.
		return out, false, err
	}
	// Writing over a tombstone brings the resource back: 201, as for a create.
	return fhir.Outcome{Resource: r, Created: cur.deleted}, true, nil
}

// Delete implements fhir.Store.
func (s *Store) Delete(ctx context.Context, typ, id string, ifMatch int64) (out fhir.Outcome, err error) {
	defer wrap(&err, "postgres.Delete(%q, %q)", typ, id)
	if err := refuseAudit(typ); err != nil {
		return out, err
	}
	g, err := s.newGuard(ctx, typ)
	if err != nil {
		return out, err
	}
	defer func() {
		if err == nil && !out.Unchanged {
			s.policyWritten(typ)
		}
	}()
	if !g.restricted() && !recording(ctx, typ) {
		out, done, err := s.delete(ctx, s.db(), typ, id, ifMatch, false, g)
		if done || err != nil {
			return out, err
		}
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var done bool
		before, err := s.patientsBefore(ctx, tx, typ, id)
		if err != nil {
			return err
		}
		out, done, err = s.delete(ctx, tx, typ, id, ifMatch, true, g)
		if err == nil && !done {
			err = errRetry
		}
		if err == nil && !out.Unchanged {
			err = s.record(ctx, tx, fhir.Written{Resource: out.Resource, Method: fhir.MethodDelete}, before)
		}
		return err
	})
	return out, err
}

func (s *Store) delete(ctx context.Context, q querier, typ, id string, ifMatch int64, lock bool, g guard) (out fhir.Outcome, done bool, err error) {
	cur, ok, err := readCurrent(ctx, q, typ, id, lock)
	if err != nil {
		return out, false, err
	}
	if ok && cur.deleted && g.restricted() {
		// A tombstone has no index rows to judge it by: deleting it again
		// changes nothing, and the answer must not reveal that it existed.
		ok = false
	}
	if ok {
		if err := g.checkStored(ctx, q, typ, id, cur.rid); err != nil {
			return out, false, err
		}
	}
	if !ok {
		if ifMatch != 0 {
			return out, false, preconditionMissing(typ, id, ifMatch)
		}
		return fhir.Outcome{Resource: fhir.Resource{Type: typ, ID: id}, Unchanged: true}, true, nil
	}
	if ifMatch != 0 && ifMatch != cur.version {
		return out, false, preconditionFailed(typ, id, ifMatch, cur.version)
	}
	if cur.deleted {
		tomb := fhir.Resource{Type: typ, ID: id, VersionID: cur.version, LastUpdated: cur.lastUpdated.UTC(), Deleted: true}
		return fhir.Outcome{Resource: tomb, Unchanged: true}, true, nil
	}
	r := fhir.Resource{Type: typ, ID: id, VersionID: cur.version + 1, LastUpdated: s.after(cur.lastUpdated), Deleted: true}
	wrote, err := replace(ctx, q, cur, r, fhir.MethodDelete, nil)
	if err != nil || !wrote {
		return out, false, err
	}
	return fhir.Outcome{Resource: r}, true, nil
}

// Read implements fhir.Store.
func (s *Store) Read(ctx context.Context, typ, id string) (r fhir.Resource, err error) {
	defer wrap(&err, "postgres.Read(%q, %q)", typ, id)
	if typ == auditType {
		return s.readAudit(ctx, id) // audit_search.go
	}
	r = fhir.Resource{Type: typ, ID: id}
	c := s.accessCompiler(ctx, typ, id)
	readable := orTrue(c.readable("r", typ))
	if c.err != nil {
		return fhir.Resource{}, c.err
	}
	var visible bool
	err = s.db().QueryRow(ctx, `SELECT version, last_updated, deleted, body, `+readable+` FROM resources r
		WHERE type = $1 AND id = $2`, c.args...).Scan(&r.VersionID, &r.LastUpdated, &r.Deleted, &r.Body, &visible)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !visible) {
		// A resource the request may not see is not known to it: the
		// answer does not reveal that it exists.
		return fhir.Resource{}, fhir.Errorf(fhir.NotFound, "", "%s/%s is not known", typ, id)
	}
	if err != nil {
		return fhir.Resource{}, err
	}
	r.LastUpdated = r.LastUpdated.UTC()
	if r.Deleted {
		return r, fhir.Errorf(fhir.Gone, "", "%s/%s was deleted (version %d)", typ, id, r.VersionID)
	}
	return r, nil
}

// VRead implements fhir.Store.
func (s *Store) VRead(ctx context.Context, typ, id string, version int64) (r fhir.Resource, err error) {
	defer wrap(&err, "postgres.VRead(%q, %q, %d)", typ, id, version)
	if typ == auditType {
		// An AuditEvent never changes: its one version is 1.
		if r, err = s.readAudit(ctx, id); err == nil && version != 1 {
			return fhir.Resource{}, fhir.Errorf(fhir.NotFound, "", "%s/%s has no version %d", typ, id, version)
		}
		return r, err
	}
	r = fhir.Resource{Type: typ, ID: id, VersionID: version}
	var method string
	c := s.accessCompiler(ctx, typ, id, version)
	// A version is visible when its resource is, as it is now (the
	// index holds the current version only).
	readable := orTrue(c.readable("r", typ))
	if c.err != nil {
		return fhir.Resource{}, c.err
	}
	err = s.db().QueryRow(ctx, `SELECT h.last_updated, h.method, h.body FROM resources r
		JOIN resource_history h ON h.rid = r.rid AND h.version = $3
		WHERE r.type = $1 AND r.id = $2 AND `+readable, c.args...).Scan(&r.LastUpdated, &method, &r.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return fhir.Resource{}, fhir.Errorf(fhir.NotFound, "", "%s/%s has no version %d", typ, id, version)
	}
	if err != nil {
		return fhir.Resource{}, err
	}
	r.LastUpdated = r.LastUpdated.UTC()
	if fhir.Method(method) == fhir.MethodDelete {
		r.Deleted = true
		return r, fhir.Errorf(fhir.Gone, "", "version %d of %s/%s is a deletion", version, typ, id)
	}
	return r, nil
}

// History implements fhir.Store.
func (s *Store) History(ctx context.Context, q fhir.HistoryQuery) (page fhir.HistoryPage, err error) {
	defer wrap(&err, "postgres.History(%q, %q)", q.Type, q.ID)
	if q.Type == auditType {
		return page, fhir.Errorf(fhir.NotSupported, "", "AuditEvents have no history: each is recorded once and never changes; search them (AuditEvent?date=...)")
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	page.Total = -1
	// Versions are visible when their resource is, as it is now (the index
	// holds the current version only).
	from := "resource_history h"
	if q.ID != "" {
		c := s.accessCompiler(ctx, q.Type, q.ID)
		readable := orTrue(c.readable("r", q.Type))
		if c.err != nil {
			return page, c.err
		}
		var rid int64
		err := s.db().QueryRow(ctx, `SELECT rid FROM resources r WHERE type = $1 AND id = $2 AND `+readable, c.args...).Scan(&rid)
		if errors.Is(err, pgx.ErrNoRows) {
			return page, fhir.Errorf(fhir.NotFound, "", "%s/%s is not known", q.Type, q.ID)
		}
		if err != nil {
			return page, err
		}
		where = append(where, "h.rid = "+arg(rid))
	} else {
		if q.Type != "" {
			where = append(where, "h.type = "+arg(q.Type))
		}
		c := &compiler{now: s.now(), base: s.Base, access: search.AccessFrom(ctx), args: args}
		if readable := c.readable("r", q.Type); readable != "" {
			from += " JOIN resources r ON r.rid = h.rid"
			where = append(where, readable)
		}
		if c.err != nil {
			return page, c.err
		}
		args = c.args
	}
	if !q.Since.IsZero() {
		where = append(where, "h.last_updated >= "+arg(q.Since))
	}
	if !q.AtEnd.IsZero() {
		// Current at some moment of [AtStart, AtEnd): written before the
		// end, and not replaced by its successor at or before the start.
		where = append(where, "h.last_updated < "+arg(q.AtEnd),
			`NOT EXISTS (SELECT 1 FROM resource_history n WHERE n.rid = h.rid AND n.version = h.version + 1
				AND n.last_updated <= `+arg(q.AtStart)+`)`)
	}
	filter := "true"
	if len(where) > 0 {
		filter = joinAnd(where)
	}
	if q.ID != "" {
		if err := s.db().QueryRow(ctx, `SELECT count(*) FROM `+from+` WHERE `+filter, args...).Scan(&page.Total); err != nil {
			return page, err
		}
	}
	if q.Count <= 0 {
		// No entries asked for: only that the resource exists, and the total.
		return page, nil
	}
	count := q.Count
	pageFilter := filter
	if q.Before > 0 {
		pageFilter += " AND h.seq < " + arg(q.Before)
	}
	rows, err := s.db().Query(ctx, `SELECT h.seq, h.type, h.id, h.version, h.last_updated, h.method, h.body
		FROM `+from+` WHERE `+pageFilter+` ORDER BY h.seq DESC LIMIT `+arg(count+1), args...)
	if err != nil {
		return page, err
	}
	defer rows.Close()
	for rows.Next() {
		var e fhir.HistoryEntry
		var method string
		if err := rows.Scan(&e.Seq, &e.Type, &e.ID, &e.VersionID, &e.LastUpdated, &method, &e.Body); err != nil {
			return page, err
		}
		e.LastUpdated = e.LastUpdated.UTC()
		e.Method = fhir.Method(method)
		e.Deleted = e.Method == fhir.MethodDelete
		page.Entries = append(page.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return page, err
	}
	if len(page.Entries) > count {
		page.Entries = page.Entries[:count]
		page.Next = page.Entries[count-1].Seq
	}
	return page, nil
}

func joinAnd(parts []string) string {
	s := parts[0]
	for _, p := range parts[1:] {
		s += " AND " + p
	}
	return s
}

// Ping implements fhir.Store: the database answers and has every embedded
// migration applied.
func (s *Store) Ping(ctx context.Context) (err error) {
	defer wrap(&err, "postgres.Ping")
	var v *int32
	if err := s.db().QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return err
	}
	if v == nil || int(*v) < LatestVersion() {
		have := 0
		if v != nil {
			have = int(*v)
		}
		return fmt.Errorf("schema at version %d, want %d", have, LatestVersion())
	}
	return nil
}

// wrap adds the operation to a non-FHIR error, leaving *fhir.Error values
// (which are meant for the client) as they are.
func wrap(errp *error, format string, args ...any) {
	if *errp == nil {
		return
	}
	var fe *fhir.Error
	if errors.As(*errp, &fe) {
		return
	}
	*errp = fmt.Errorf(format+": %w", append(args, *errp)...)
}

// accessCompiler returns a compiler for the access of ctx to the resource
// typ/id, alias "r", whose first arguments are typ, id and more ($1, $2,
// ...).
func (s *Store) accessCompiler(ctx context.Context, typ, id string, more ...any) *compiler {
	c := &compiler{now: s.now(), base: s.Base, access: search.AccessFrom(ctx), args: append(sqlArgs{typ, id}, more...)}
	c.row.alias, c.row.id = "r", id
	return c
}
