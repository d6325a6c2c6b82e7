package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/fhir"
)

// This file is the audit trail (docs/audit.md): the table of AuditEvents
// (migration 007), the hook that stores the Provenance and the audit record
// of every write in the write's transaction, the batch writer for the
// records of everything else, the hash chain that seals the table, and its
// verification.

// auditType is the resource type served from the audit table.
const auditType = "AuditEvent"

// patientRefKeys are the keys of the reference parameters that place a
// resource in a Patient compartment (the compartment definition's, for
// every type): what the patients of a resource are found through
// (patientsOf follows Group.member apart).
var patientRefKeys = sync.OnceValue(func() []int64 {
	return compartmentKeys(r4.PatientCompartment(), "")
})

// patientsOf returns, for each entity, the patients it concerns: a Patient
// itself; the Patients its compartment references point to; for a Group,
// and for a resource that refers to a Group (a family's plan, whose
// subject is the family), the Group's Patient members. Only references to
// this server count.
func (s *Store) patientsOf(ctx context.Context, q dbtx, entities []fhir.Entity) ([][]string, error) {
	out := make([][]string, len(entities))
	if len(entities) == 0 {
		return out, nil
	}
	ns, types, ids := make([]int32, len(entities)), make([]string, len(entities)), make([]string, len(entities))
	for i, e := range entities {
		ns[i], types[i], ids[i] = int32(i), e.Type, e.ID
	}
	args := sqlArgs{ns, types, ids, patientRefKeys(), fhir.ParamKey("Group", "member")}
	local := func(x string) string {
		cond := "(" + x + ".url = '' OR strpos(" + x + ".url, '://') = 0"
		if s.Base != "" {
			cond += " OR starts_with(" + x + ".url, " + args.add(strings.TrimRight(s.Base, "/")+"/") + ")"
		}
		return cond + ")"
	}
	sql := `WITH e AS (SELECT * FROM unnest($1::int[], $2::text[], $3::text[]) AS e(n, type, id)),
		direct AS (
			SELECT e.n, e.type, e.id FROM e JOIN resources r ON r.type = e.type AND r.id = e.id WHERE e.type IN ('Patient', 'Group')
			UNION
			SELECT e.n, x.type, x.id FROM e JOIN resources r ON r.type = e.type AND r.id = e.id
				JOIN idx_reference x ON x.rid = r.rid AND (x.type = 'Group' OR x.param = ANY($4::bigint[]) AND x.type = 'Patient') AND ` + local("x") + `)
		SELECT n, id FROM direct WHERE type = 'Patient'
		UNION
		SELECT d.n, m.id FROM direct d JOIN resources g ON g.type = 'Group' AND g.id = d.id
			JOIN idx_reference m ON m.rid = g.rid AND m.param = $5 AND m.type = 'Patient' AND ` + local("m")
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("patients of audited resources: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int32
		var id string
		if err := rows.Scan(&n, &id); err != nil {
			return nil, err
		}
		out[n] = append(out[n], "Patient/"+id)
	}
	return out, rows.Err()
}

// errRender marks a record that could not be rendered.
var errRender = errors.New("render AuditEvent")

// auditColumns are the columns an audit row is inserted with.
const auditColumns = "id, recorded, type, subtype, action, outcome, agents, entities, patients, body"

// copier is what both a pool and a transaction offer for COPY.
type copier interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
}

// insertAudit appends events to the audit table in one statement, after
// finding the patients behind their entities and rendering them.
func (s *Store) insertAudit(ctx context.Context, q dbtx, events []fhir.AuditEvent) error {
	var all []fhir.Entity
	var owner []int
	for i, e := range events {
		for _, en := range e.Entities {
			all = append(all, en)
			owner = append(owner, i)
		}
	}
	found, err := s.patientsOf(ctx, q, all)
	if err != nil {
		return err
	}
	patients := make([][]string, len(events))
	for i, e := range events {
		patients[i] = append(patients[i], e.Patients...)
	}
	for j, ps := range found {
		patients[owner[j]] = append(patients[owner[j]], ps...)
	}
	var args sqlArgs
	var values []string
	var copyRows [][]any
	for i, e := range events {
		ps := append([]string{}, slices.Compact(slices.Sorted(slices.Values(patients[i])))...)
		body, err := e.Render(ps)
		if err != nil {
			return fmt.Errorf("%w %s: %w", errRender, e.ID, err)
		}
		entities := make([]string, 0, len(e.Entities))
		for _, en := range e.Entities {
			entities = append(entities, en.Type+"/"+en.ID)
		}
		entities = append([]string{}, slices.Compact(slices.Sorted(slices.Values(entities)))...)
		agents := e.Agents
		if agents == nil {
			agents = []string{}
		}
		if len(events) > 1 {
			copyRows = append(copyRows, []any{e.ID, e.Recorded.UTC(), e.Type, e.Subtype, e.Action, e.Outcome, agents, entities, ps, body})
			continue
		}
		values = append(values, fmt.Sprintf("(%s, %s, %s, %s, %s, %s, %s::text[], %s::text[], %s::text[], %s)",
			args.add(e.ID), args.add(e.Recorded.UTC()), args.add(e.Type), args.add(e.Subtype), args.add(e.Action), args.add(e.Outcome),
			args.add(agents), args.add(entities), args.add(ps), args.add(body)))
	}
	if c, ok := q.(copier); ok && len(copyRows) > 0 {
		// A batch: COPY, the cheapest way in.
		if _, err := c.CopyFrom(ctx, pgx.Identifier{"audit_events"}, strings.Split(auditColumns, ", "), pgx.CopyFromRows(copyRows)); err != nil {
			return fmt.Errorf("copy audit events: %w", err)
		}
		return nil
	}
	for _, r := range copyRows {
		values = append(values, fmt.Sprintf("(%s, %s, %s, %s, %s, %s, %s::text[], %s::text[], %s::text[], %s)",
			args.add(r[0]), args.add(r[1]), args.add(r[2]), args.add(r[3]), args.add(r[4]), args.add(r[5]), args.add(r[6]), args.add(r[7]), args.add(r[8]), args.add(r[9])))
	}
	if _, err := q.Exec(ctx, "INSERT INTO audit_events ("+auditColumns+") VALUES "+strings.Join(values, ", "), args...); err != nil {
		return fmt.Errorf("insert audit events: %w", err)
	}
	return nil
}

// recording reports whether a write of type typ under ctx is recorded (a
// Recorder is in the context), which takes it into a transaction.
func recording(ctx context.Context, typ string) bool {
	return fhir.RecorderFrom(ctx) != nil && typ != "Provenance"
}

// record tells the Recorder of ctx about version w, just written in
// transaction tx, and writes what it returns there: the Provenance, and the
// audit record (with before, the patients the replaced version concerned).
func (s *Store) record(ctx context.Context, tx dbtx, w fhir.Written, before []string) error {
	if !recording(ctx, w.Resource.Type) {
		return nil
	}
	rec, err := fhir.RecorderFrom(ctx).Record(ctx, w)
	if err != nil {
		return err
	}
	if p := rec.Provenance; p != nil {
		if p.Type != "Provenance" {
			return fmt.Errorf("record %s/%s: the recorder returned a %s as its Provenance", w.Resource.Type, w.Resource.ID, p.Type)
		}
		r, err := s.insertNew(ctx, tx, *p, s.NewID(), fhir.MethodCreate)
		if err != nil {
			return fmt.Errorf("record the Provenance of %s/%s: %w", w.Resource.Type, w.Resource.ID, err)
		}
		if r == nil {
			return fmt.Errorf("record the Provenance of %s/%s: its new id is taken", w.Resource.Type, w.Resource.ID)
		}
	}
	if a := rec.Audit; a != nil {
		e := *a
		e.Patients = append(slices.Clone(e.Patients), before...)
		return s.insertAudit(ctx, tx, []fhir.AuditEvent{e})
	}
	return nil
}

// patientsBefore returns the patients the current version of typ/id
// concerns, for the audit record of a write that replaces or deletes it
// (whose index rows are gone once it is written); nil when the write is
// not recorded.
func (s *Store) patientsBefore(ctx context.Context, tx dbtx, typ, id string) ([]string, error) {
	if !recording(ctx, typ) {
		return nil, nil
	}
	ps, err := s.patientsOf(ctx, tx, []fhir.Entity{{Type: typ, ID: id}})
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// refuseAudit refuses writes of AuditEvents: the trail is written by the
// server alone, through its own table.
func refuseAudit(typ string) error {
	if typ == auditType {
		return fhir.Errorf(fhir.MethodNotAllowed, auditType, "AuditEvents are recorded by the server; they cannot be created, changed or deleted")
	}
	return nil
}

// AuditWriter appends the audit records of interactions that write nothing
// (reads, searches, refused requests) in batches, one multi-row insert per
// batch, off the request's path. It implements fhir.AuditLog. Append waits
// while the queue is full and never drops a record; a batch that fails is
// retried. Close writes what is queued.
type AuditWriter struct {
	store   *Store
	queue   chan auditItem
	done    chan struct{}
	onError func(error)

	mu     sync.RWMutex
	closed bool
}

// auditItem is a queued record, or (flushed != nil) a flush marker.
type auditItem struct {
	event   fhir.AuditEvent
	flushed chan struct{}
}

var _ fhir.AuditLog = (*AuditWriter)(nil)

// maxAuditBatch is the most records one insert writes.
const maxAuditBatch = 256

// auditLinger is how long the writer waits for more records after the
// first of a batch: a few requests' worth, so that under a steady stream of
// reads one statement writes many rows instead of one each (a statement
// costs PostgreSQL far more than a row). A flush does not wait.
const auditLinger = 3 * time.Millisecond

// NewAuditWriter starts a writer of s's audit table with a queue of
// capacity records. onError, when set, is told of failed batches (which are
// retried); it must not block.
func (s *Store) NewAuditWriter(capacity int, onError func(error)) *AuditWriter {
	w := &AuditWriter{store: s, queue: make(chan auditItem, max(capacity, 1)), done: make(chan struct{}), onError: onError}
	go w.run()
	return w
}

// Append implements fhir.AuditLog. After Close it writes e at once.
func (w *AuditWriter) Append(e fhir.AuditEvent) {
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		w.write([]fhir.AuditEvent{e}, 5)
		return
	}
	w.queue <- auditItem{event: e}
	w.mu.RUnlock()
}

// Flush returns once every record appended before it is written.
func (w *AuditWriter) Flush() {
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return
	}
	ch := make(chan struct{})
	w.queue <- auditItem{flushed: ch}
	w.mu.RUnlock()
	<-ch
}

// Close stops taking records into the queue, writes what it holds, and
// returns when that is done.
func (w *AuditWriter) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *AuditWriter) run() {
	defer close(w.done)
	var batch []fhir.AuditEvent
	var flushes []chan struct{}
	for it := range w.queue {
		batch, flushes = batch[:0], flushes[:0]
		add := func(it auditItem) {
			if it.flushed != nil {
				flushes = append(flushes, it.flushed)
			} else {
				batch = append(batch, it.event)
			}
		}
		add(it)
		linger := time.NewTimer(auditLinger)
	fill:
		for len(batch) < maxAuditBatch && len(flushes) == 0 {
			select {
			case it, ok := <-w.queue:
				if !ok {
					break fill
				}
				add(it)
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		if len(batch) > 0 {
			w.write(batch, 0)
		}
		for _, ch := range flushes {
			close(ch)
		}
	}
}

// write inserts batch, retrying with a growing pause until it succeeds;
// with attempts > 0 it gives up after that many (then the records are lost,
// and onError says so). A batch that fails for a reason retrying cannot
// mend (a record the database refuses) is written record by record, so that
// one bad record cannot hold up the others; that record is reported to
// onError and left out.
func (w *AuditWriter) write(batch []fhir.AuditEvent, attempts int) {
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := w.store.insertAudit(ctx, w.store.pool, batch)
		cancel()
		if err == nil {
			return
		}
		if permanent(err) {
			if len(batch) > 1 {
				for _, e := range batch {
					w.write([]fhir.AuditEvent{e}, attempts)
				}
				return
			}
			w.report(fmt.Errorf("audit writer: AuditEvent/%s refused, left out: %w", batch[0].ID, err))
			return
		}
		w.report(fmt.Errorf("audit writer: %d record(s), attempt %d: %w", len(batch), try, err))
		if attempts > 0 && try >= attempts {
			return
		}
		time.Sleep(min(time.Duration(try)*100*time.Millisecond, 5*time.Second))
	}
}

func (w *AuditWriter) report(err error) {
	if w.onError != nil {
		w.onError(err)
	}
}

// permanent reports whether a failed insert would fail again: the
// database refused the data (SQLSTATE classes 22 and 23), or a record
// could not be rendered.
func permanent(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23")
	}
	return errors.Is(err, errRender)
}

// The hash chain. Rows get their seq when they are inserted but become
// visible when their transaction commits, so seq order is not commit order.
// The sealer therefore links rows in the order it finds them committed:
// each run takes the rows not yet sealed whose transactions are not older
// than the previous run's horizon (the oldest transaction then running;
// every older transaction had finished, so its rows were visible and
// sealed), in seq order, and appends one chain row per audit row with
// hash = SHA-256(previous hash || canonical row).

// sealLockKey is the advisory lock that lets one instance seal at a time.
const sealLockKey = 0x61756469740a // "audit\n"

// maxSeal is the most rows one seal run links.
const maxSeal = 5000

// auditRow is an audit row as the chain hashes it.
type auditRow struct {
	seq                           int64
	id                            string
	recorded                      time.Time
	typ, subtype, action, outcome string
	agents, entities, patients    []string
	body                          []byte
	xid                           string
}

const auditRowColumns = "a.seq, a.id, a.recorded, a.type, a.subtype, a.action, a.outcome, a.agents, a.entities, a.patients, a.body, a.xid::text"

func scanAuditRow(row pgx.Row, r *auditRow) error {
	return row.Scan(&r.seq, &r.id, &r.recorded, &r.typ, &r.subtype, &r.action, &r.outcome, &r.agents, &r.entities, &r.patients, &r.body, &r.xid)
}

// canonical is the byte form of a row that the chain hashes: every column,
// each length-prefixed, so no two rows share one.
func (r *auditRow) canonical() []byte {
	var b []byte
	field := func(v []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	list := func(vs []string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(vs)))
		for _, v := range vs {
			field([]byte(v))
		}
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.seq))
	field([]byte(r.id))
	field([]byte(r.recorded.UTC().Format("2006-01-02T15:04:05.000000Z")))
	for _, s := range []string{r.typ, r.subtype, r.action, r.outcome} {
		field([]byte(s))
	}
	list(r.agents)
	list(r.entities)
	list(r.patients)
	field(r.body)
	field([]byte(r.xid))
	return b
}

func chainHash(prev []byte, r *auditRow) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(r.canonical())
	return h.Sum(nil)
}

// genesis is the "previous hash" of the first link.
var genesis = make([]byte, sha256.Size)

// SealAudit links the audit rows not yet in the hash chain into it and
// returns how many it linked. Any number of instances may call it: one
// seals at a time (the others return 0 at once).
func (s *Store) SealAudit(ctx context.Context) (n int, err error) {
	defer wrap(&err, "postgres.SealAudit")
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(sealLockKey)).Scan(&locked); err != nil || !locked {
			return err
		}
		pos, prev, horizon := int64(0), genesis, "0"
		err := tx.QueryRow(ctx, `SELECT pos, hash, horizon::text FROM audit_chain ORDER BY pos DESC LIMIT 1`).Scan(&pos, &prev, &horizon)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var next string
		if err := tx.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&next); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+auditRowColumns+` FROM audit_events a
			WHERE a.xid >= $1::xid8 AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.seq = a.seq)
			ORDER BY a.seq LIMIT $2`, horizon, maxSeal)
		if err != nil {
			return err
		}
		var batch []auditRow
		for rows.Next() {
			var r auditRow
			if err := scanAuditRow(rows, &r); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		if len(batch) == maxSeal {
			// More may be waiting behind this run's horizon: keep the
			// old one so that the next run still looks at them.
			next = horizon
		}
		positions, seqs, hashes := make([]int64, len(batch)), make([]int64, len(batch)), make([][]byte, len(batch))
		for i := range batch {
			pos++
			prev = chainHash(prev, &batch[i])
			positions[i], seqs[i], hashes[i] = pos, batch[i].seq, prev
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_chain (pos, seq, hash, sealed_at, horizon)
			SELECT p, s, h, now(), $4::xid8 FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS v(p, s, h)`,
			positions, seqs, hashes, next); err != nil {
			return err
		}
		n = len(batch)
		return nil
	})
	return n, err
}

// RunAuditSealer seals the audit table every interval until ctx ends,
// telling onError of failures.
func (s *Store) RunAuditSealer(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for {
			n, err := s.SealAudit(ctx)
			if err != nil && ctx.Err() == nil && onError != nil {
				onError(err)
			}
			if err != nil || n < maxSeal {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// AuditProblem is the first place where the audit trail and its chain
// disagree.
type AuditProblem struct {
	// Kind is "altered" (the row or its link changed), "deleted" (a sealed
	// row is gone), "inserted" (a row appeared that the chain should hold
	// but does not) or "broken" (links are missing from the chain).
	Kind string
	// Seq and ID name the audit row; Pos the link (0 for "inserted").
	Seq int64
	ID  string
	Pos int64
}

func (p *AuditProblem) String() string {
	switch p.Kind {
	case "inserted":
		return fmt.Sprintf("audit row seq %d (AuditEvent/%s) was inserted outside the audit trail: it is not sealed, though a later seal should hold it", p.Seq, p.ID)
	case "deleted":
		return fmt.Sprintf("audit row seq %d, sealed at chain position %d, was deleted", p.Seq, p.Pos)
	case "broken":
		return fmt.Sprintf("the hash chain has no link at position %d", p.Pos)
	}
	return fmt.Sprintf("audit row seq %d (AuditEvent/%s) at chain position %d was altered: its hash does not match", p.Seq, p.ID, p.Pos)
}

// AuditVerification is the result of VerifyAudit.
type AuditVerification struct {
	// Sealed is the number of links checked; Unsealed the rows not yet
	// linked (written since the last seal).
	Sealed, Unsealed int64
	// Head is the hash of the last link (hex in reports): publishing it
	// elsewhere lets a later check prove the trail up to it unchanged.
	Head []byte
	// Problem is the first disagreement found, nil when there is none.
	Problem *AuditProblem
}

// VerifyAudit recomputes the hash chain over the audit table and reports
// the first row that was altered, deleted or inserted behind the sealer's
// back. It reads in one snapshot and changes nothing.
func VerifyAudit(ctx context.Context, db interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}) (v AuditVerification, err error) {
	defer wrap(&err, "postgres.VerifyAudit")
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return v, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, `SELECT c.pos, c.seq, c.hash, c.horizon::text, a.seq IS NOT NULL, `+
		strings.ReplaceAll(auditRowColumns, "a.seq, ", "")+`
		FROM audit_chain c LEFT JOIN audit_events a ON a.seq = c.seq ORDER BY c.pos`)
	if err != nil {
		return v, err
	}
	prev, horizon := genesis, "0"
	for rows.Next() {
		var (
			pos, seq int64
			hash     []byte
			present  bool
			r        auditRow
			id       *string
			recorded *time.Time
			typ      *string
			subtype  *string
			action   *string
			outcome  *string
			xid      *string
		)
		if err := rows.Scan(&pos, &seq, &hash, &horizon, &present, &id, &recorded, &typ, &subtype, &action, &outcome,
			&r.agents, &r.entities, &r.patients, &r.body, &xid); err != nil {
			rows.Close()
			return v, err
		}
		if v.Problem != nil {
			continue
		}
		switch {
		case pos != v.Sealed+1:
			v.Problem = &AuditProblem{Kind: "broken", Pos: v.Sealed + 1}
		case !present:
			v.Problem = &AuditProblem{Kind: "deleted", Seq: seq, Pos: pos}
		default:
			r.seq, r.id, r.recorded, r.xid = seq, *id, *recorded, *xid
			r.typ, r.subtype, r.action, r.outcome = *typ, *subtype, *action, *outcome
			want := chainHash(prev, &r)
			if string(want) != string(hash) {
				v.Problem = &AuditProblem{Kind: "altered", Seq: seq, ID: r.id, Pos: pos}
			}
		}
		prev = hash
		v.Sealed++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return v, err
	}
	v.Head = prev
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM audit_events a WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.seq = a.seq)`).Scan(&v.Unsealed); err != nil {
		return v, err
	}
	if v.Problem != nil {
		return v, nil
	}
	// A row written by a transaction older than the last link's horizon
	// was visible to that seal run, and so must be linked.
	var seq int64
	var id string
	err = tx.QueryRow(ctx, `SELECT a.seq, a.id FROM audit_events a
		WHERE a.xid < $1::xid8 AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.seq = a.seq)
		ORDER BY a.seq LIMIT 1`, horizon).Scan(&seq, &id)
	switch {
	case err == nil:
		v.Problem = &AuditProblem{Kind: "inserted", Seq: seq, ID: id}
	case !errors.Is(err, pgx.ErrNoRows):
		return v, err
	}
	return v, nil
}
