package rest

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
)

// Conditional interactions (http://hl7.org/fhir/R4/http.html#ccreate,
// #cond-update, #3.1.0.7.1) find their target by a search instead of an id.
// They run in one database transaction that first takes a lock on the
// normalised criteria (TxStore.LockKey), then searches, then writes: two
// requests with the same criteria therefore run one after the other, and the
// second one sees what the first one wrote. Requests whose criteria differ
// only in form (parameter order, escapes, "eq" prefixes) share the lock; two
// different searches that happen to match the same resource do not.
//
// Criteria are parsed strictly: a parameter the server does not know or
// does not index is a 400, since silently dropping it would widen the match
// (and a conditional delete would remove more than asked). Result parameters
// (_count, _sort, _include, ...) are ignored.

// MaxConditionalDeletes bounds how many resources one conditional delete
// removes when Config.ConditionalDeleteMultiple is set; a search matching
// more answers 412.
const MaxConditionalDeletes = 100

// conditionalQuery parses the criteria of a conditional interaction on typ
// from a query string such as "identifier=http://x|1". A leading "typ?" is
// accepted, as some clients write it in If-None-Exist. expr names where the
// criteria came from, for the error's expression.
func (s *Server) conditionalQuery(typ, query, expr string) (*search.Query, error) {
	if t, rest, ok := strings.Cut(query, "?"); ok && !strings.Contains(t, "=") {
		if t != typ {
			return nil, fhir.Errorf(fhir.Invalid, expr, "the criteria %q are for %s, not %s", query, t, typ)
		}
		query = rest
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, fhir.Errorf(fhir.Invalid, expr, "the criteria %q are not a query string: %v", query, err)
	}
	return s.criteria(typ, params, expr)
}

// criteria parses the search parameters of a conditional interaction.
// It fails with Invalid when they are malformed, unknown, or select
// nothing at all (which would match every resource of the type).
func (s *Server) criteria(typ string, params url.Values, expr string) (*search.Query, error) {
	parser := *s.searchParser
	parser.Registry = s.registry()
	q, err := parser.Parse([]string{typ}, params, true)
	if err != nil {
		return nil, err
	}
	if len(q.Where) == 0 {
		return nil, fhir.Errorf(fhir.Invalid, expr, "a conditional interaction needs at least one search parameter to select %s resources", typ)
	}
	// Only the criteria count: what a search would return is not asked.
	q.Sort, q.Include, q.RevInclude, q.Elements, q.Warnings = nil, nil, nil, nil, nil
	q.Total, q.Summary, q.Cursor, q.Count = "none", "", "", 0
	return q, nil
}

// lockKey is the lock a conditional interaction with criteria q takes: the
// type and the normalised criteria.
func lockKey(q *search.Query) string {
	return "conditional " + strings.Join(q.Types, ",") + "?" + q.Encode().Encode()
}

// match locks q's criteria in tx and returns at most limit current matches;
// more reports that there are others.
func match(ctx context.Context, tx TxStore, q *search.Query, limit int) (matches []fhir.Resource, more bool, err error) {
	if err := tx.LockKey(ctx, lockKey(q)); err != nil {
		return nil, false, err
	}
	page := *q
	page.Count = limit
	res, err := tx.Search(ctx, &page)
	if err != nil {
		return nil, false, err
	}
	return res.Matches, res.Next != "", nil
}

// criteriaText renders q for messages.
func criteriaText(q *search.Query) string {
	v := q.Encode()
	v.Del("_count")
	return strings.Join(q.Types, ",") + "?" + v.Encode()
}

// multipleMatches is the 412 of a conditional interaction whose criteria
// are not selective enough.
func multipleMatches(q *search.Query, what string) error {
	return fhir.Errorf(fhir.PreconditionFailed, "", "the %s criteria %s match more than one resource: make them more selective", what, criteriaText(q))
}

// conditionalCreate writes w unless q matches (If-None-Exist): with no match
// it creates (Outcome.Created), with one it returns that resource and writes
// nothing, with several it fails with PreconditionFailed.
func conditionalCreate(ctx context.Context, tx TxStore, q *search.Query, w fhir.Write) (fhir.Outcome, error) {
	existing, err := existingMatch(ctx, tx, q)
	switch {
	case err != nil:
		return fhir.Outcome{}, err
	case existing != nil:
		return fhir.Outcome{Resource: *existing}, nil
	}
	return tx.Create(ctx, w)
}

// existingMatch returns the resource that the criteria of a conditional
// create match, or nil when none does; several matches fail with
// PreconditionFailed.
func existingMatch(ctx context.Context, tx TxStore, q *search.Query) (*fhir.Resource, error) {
	matches, more, err := match(ctx, tx, q, 1)
	switch {
	case err != nil:
		return nil, err
	case more:
		return nil, multipleMatches(q, "If-None-Exist")
	case len(matches) == 1:
		return &matches[0], nil
	}
	return nil, nil
}

// conditionalTarget returns the id a conditional update with criteria q
// writes to: the one match (bodyID must then be empty or equal), or with no
// match bodyID, or a new id. ifMatch with no match fails: there is no
// version to hold it against.
func conditionalTarget(ctx context.Context, tx TxStore, q *search.Query, bodyID string, ifMatch int64) (id string, err error) {
	matches, more, err := match(ctx, tx, q, 1)
	switch {
	case err != nil:
		return "", err
	case more:
		return "", multipleMatches(q, "conditional update")
	case len(matches) == 1:
		id := matches[0].ID
		if bodyID != "" && bodyID != id {
			typ := matches[0].Type
			return "", fhir.Errorf(fhir.Invalid, typ+".id", "the resource id %q differs from the id of the resource the criteria match (%s/%s)", bodyID, typ, id)
		}
		return id, nil
	case ifMatch != 0:
		return "", fhir.Errorf(fhir.PreconditionFailed, "", "If-Match expects version %d, but the criteria %s match no resource", ifMatch, criteriaText(q))
	case bodyID != "":
		// R4: no match and an id in the body is an update as create.
		return bodyID, nil
	}
	return uuid.NewString(), nil
}

// conditionalUpdate handles PUT [base]/[type]?[search].
func (s *Server) conditionalUpdate(w http.ResponseWriter, r *http.Request) error {
	typ := chi.URLParam(r, "type")
	q, err := s.criteria(typ, queryOf(r), "")
	if err != nil {
		return err
	}
	in, err := s.readUpdate(r, typ)
	if err != nil {
		return err
	}
	bases := in.bases
	var out fhir.Outcome
	err = s.tx.Transaction(r.Context(), func(tx TxStore) error {
		id, err := conditionalTarget(r.Context(), tx, q, in.res.ID, in.version)
		if err != nil {
			return err
		}
		bases = append(bases, oldSearchParamBases(r.Context(), tx, typ, id)...)
		write := fhir.Write{Type: typ, ID: id, IfMatch: in.version, Render: in.res.Render, Index: in.res.Index}
		out, err = s.governedWrite(r.Context(), tx, typ, id, in.body, func(ctx context.Context, st fhir.Store) (fhir.Outcome, error) {
			return st.Update(ctx, write)
		})
		return err
	})
	if err != nil {
		return err
	}
	return s.updated(w, r, out, bases)
}

// conditionalDeletes deletes what q matches in tx: nothing when nothing
// matches (as R4 says, an ordinary delete of nothing), the one match, or
// with Config.ConditionalDeleteMultiple up to MaxConditionalDeletes
// matches; more matches than allowed fail with PreconditionFailed. It
// returns the tombstones written and the SearchParameter bases to reindex.
func (s *Server) conditionalDeletes(ctx context.Context, tx TxStore, q *search.Query, ifMatch int64) (deleted []fhir.Resource, bases []string, err error) {
	limit := 1
	if s.condDeleteMultiple {
		limit = MaxConditionalDeletes
	}
	matches, more, err := match(ctx, tx, q, limit)
	if err != nil {
		return nil, nil, err
	}
	if more {
		if limit == 1 {
			return nil, nil, multipleMatches(q, "conditional delete")
		}
		return nil, nil, fhir.Errorf(fhir.PreconditionFailed, "", "the conditional delete criteria %s match more than %d resources, the most one request may delete", criteriaText(q), limit)
	}
	for _, m := range matches {
		bases = append(bases, oldSearchParamBases(ctx, tx, m.Type, m.ID)...)
		out, err := s.governedWrite(ctx, tx, m.Type, m.ID, nil, func(ctx context.Context, st fhir.Store) (fhir.Outcome, error) {
			return st.Delete(ctx, m.Type, m.ID, ifMatch)
		})
		if err != nil {
			return nil, nil, err
		}
		deleted = append(deleted, out.Resource)
	}
	return deleted, bases, nil
}

// conditionalDelete handles DELETE [base]/[type]?[search]: 204 whether
// zero, one or (when allowed) several resources matched and were deleted,
// or 200 with an OperationOutcome that says which when Prefer asks.
func (s *Server) conditionalDelete(w http.ResponseWriter, r *http.Request) error {
	typ := chi.URLParam(r, "type")
	q, err := s.criteria(typ, queryOf(r), "")
	if err != nil {
		return err
	}
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	var deleted []fhir.Resource
	var bases []string
	err = s.tx.Transaction(r.Context(), func(tx TxStore) (err error) {
		deleted, bases, err = s.conditionalDeletes(r.Context(), tx, q, version)
		return err
	})
	if err != nil {
		return err
	}
	if err := s.searchParamsChanged(r.Context(), bases); err != nil {
		return err
	}
	if len(deleted) == 1 {
		setVersionHeaders(w, deleted[0])
	}
	return s.deleted(w, r, deletedMessage(q, deleted))
}

// deletedMessage says what a conditional delete did.
func deletedMessage(q *search.Query, deleted []fhir.Resource) string {
	if len(deleted) == 0 {
		return "no resource matches " + criteriaText(q) + "; nothing was deleted"
	}
	ids := make([]string, len(deleted))
	for i, d := range deleted {
		ids[i] = d.Type + "/" + d.ID
	}
	return "deleted " + strconv.Itoa(len(deleted)) + ": " + strings.Join(ids, ", ")
}
