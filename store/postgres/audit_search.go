package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
)

// AuditEvents are served from the audit table, not from resources: a read
// by id, and a search on the subset of AuditEvent's parameters that the
// table's columns answer. The request's access applies as to every other
// type: a Read rule for AuditEvent (or for every type) admits the rows of
// the patients of its compartment owners, or every row when it has no
// confinement; a rule with a filter, which the table cannot answer, admits
// nothing.

// auditParams are the search parameters the audit table answers.
var auditParams = []string{"_id", "patient", "agent", "entity", "date", "action", "outcome", "subtype", "type"}

// auditAccess compiles the Read rules of access for audit rows of alias a:
// "" when every row is visible. A rule admits the rows of the patients its
// confinements name (Patient owners, a Group's Patient members, the Patients
// a Person links to), all of them when it has none; a rule with a filter or
// with exceptions (Where, Not), which the table cannot answer, admits
// nothing.
func auditAccess(access *search.Access, args *sqlArgs) string {
	switch {
	case access == nil:
		return accessDenied
	case access.IsUnrestricted():
		return ""
	}
	var ors []string
	for _, rule := range access.Read {
		if rule.Type != "" && rule.Type != auditType {
			continue
		}
		if !auditWhereHolds(rule.Where) || len(rule.Not) > 0 {
			continue
		}
		var ands []string
		for _, in := range append([]*search.Confinement{rule.In}, rule.And...) {
			if in != nil {
				ands = append(ands, auditConfined(in, args))
			}
		}
		if len(ands) == 0 {
			return ""
		}
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	if len(ors) == 0 {
		return accessDenied
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// auditWhereHolds reports whether every clause of where holds for every
// audit row: only _security:not does, since the server's AuditEvents carry
// no security labels (the policy adds it to every rule to leave out what is
// withheld from the caller).
func auditWhereHolds(where []search.Clause) bool {
	for _, cl := range where {
		if cl.Param == nil || cl.Param.Code != "_security" || cl.Modifier != search.ModNot || cl.Chain != nil || cl.Has != nil {
			return false
		}
	}
	return true
}

// auditConfined compiles "every patient the row concerns is one of in's":
// a row about several children (a family's plan, a search across them) is
// visible only to whom may see each of them, so that the log never tells of
// a child the caller may not see. A family Group among the owners (the
// family's own records) does not open its members' rows: those are the
// children's, each confined by their own rules.
func auditConfined(in *search.Confinement, args *sqlArgs) string {
	var sets, patients []string
	for _, o := range in.Owners {
		if o.Type == "Patient" {
			patients = append(patients, "Patient/"+o.ID)
		}
	}
	if len(patients) > 0 {
		sets = append(sets, args.add(patients)+"::text[]")
	}
	if p := in.Person; p != "" {
		// The user is a patient when their Person links to one.
		sets = append(sets, fmt.Sprintf(`ARRAY(SELECT 'Patient/' || l.id FROM resources p JOIN idx_reference l ON l.rid = p.rid
			WHERE p.type = 'Person' AND p.id = %s AND NOT p.deleted AND l.param = %s AND l.type = 'Patient' AND (l.url = '' OR strpos(l.url, '://') = 0))`,
			args.add(p), args.add(fhir.ParamKey("Person", "link"))))
	}
	if len(sets) == 0 {
		return accessDenied
	}
	return "(cardinality(a.patients) > 0 AND a.patients <@ (" + strings.Join(sets, " || ") + "))"
}

// readAudit answers a read of AuditEvent/id.
func (s *Store) readAudit(ctx context.Context, id string) (fhir.Resource, error) {
	args := sqlArgs{id}
	cond := orTrue(auditAccess(search.AccessFrom(ctx), &args))
	r := fhir.Resource{Type: auditType, ID: id, VersionID: 1}
	var visible bool
	err := s.db().QueryRow(ctx, `SELECT a.recorded, a.body, `+cond+` FROM audit_events a WHERE a.id = $1`, args...).Scan(&r.LastUpdated, &r.Body, &visible)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !visible) {
		return fhir.Resource{}, fhir.Errorf(fhir.NotFound, "", "AuditEvent/%s is not known", id)
	}
	if err != nil {
		return fhir.Resource{}, err
	}
	r.LastUpdated = r.LastUpdated.UTC()
	return r, nil
}

// searchAudit answers a search of AuditEvents.
func (s *Store) searchAudit(ctx context.Context, q *search.Query) (*search.Result, error) {
	if len(q.Include)+len(q.RevInclude) > 0 {
		return nil, invalid("_include", "AuditEvent searches do not support _include or _revinclude")
	}
	c := &compiler{now: s.now(), base: q.Base}
	where := []string{orTrue(auditAccess(search.AccessFrom(ctx), &c.args))}
	for _, cl := range q.Where {
		cond, err := c.auditClause(cl)
		if err != nil {
			return nil, err
		}
		where = append(where, cond)
	}
	if comp := q.Compartment; comp != nil {
		if comp.Type != "Patient" {
			return nil, invalid("", "AuditEvents are searched in the Patient compartment only")
		}
		where = append(where, "a.patients @> ARRAY["+c.arg("Patient/"+comp.ID)+"]::text[]")
	}
	desc := true // newest first unless _sort=date
	for i, st := range q.Sort {
		if i > 0 || st.Param.Code != "date" {
			return nil, invalid("_sort", "AuditEvent searches sort on date only (_sort=date or _sort=-date)")
		}
		desc = st.Desc
	}
	filter := strings.Join(where, " AND ")
	res := &search.Result{Total: -1}
	if q.Total == "accurate" || q.Total == "estimate" || q.Summary == "count" || q.Count == 0 {
		if err := s.db().QueryRow(ctx, "SELECT count(*) FROM audit_events a WHERE "+filter, c.args...).Scan(&res.Total); err != nil {
			return nil, err
		}
	}
	if q.Count <= 0 || q.Summary == "count" {
		return res, nil
	}
	var cur cursor
	if q.Cursor != "" {
		var err error
		if cur, err = decodeCursor(q.Cursor, 1); err != nil {
			return nil, err
		}
		t, err := time.Parse(time.RFC3339Nano, cur.Keys[0])
		if err != nil {
			return nil, invalid("_cursor", "_cursor is not a paging position of this search: follow the links of the Bundle")
		}
		back := cur.Dir == "p"
		op := ">"
		if desc != back {
			op = "<"
		}
		filter += fmt.Sprintf(" AND (a.recorded, a.seq) %s (%s, %s)", op, c.arg(t), c.arg(cur.RID))
	}
	back := cur.Dir == "p"
	dir := "ASC"
	if desc != back {
		dir = "DESC"
	}
	rows, err := s.db().Query(ctx, fmt.Sprintf("SELECT a.seq, a.id, a.recorded, a.body FROM audit_events a WHERE %s ORDER BY a.recorded %s, a.seq %s LIMIT %s",
		filter, dir, dir, c.arg(q.Count+1)), c.args...)
	if err != nil {
		return nil, err
	}
	var page []row
	for rows.Next() {
		r := row{Resource: fhir.Resource{Type: auditType, VersionID: 1}}
		if err := rows.Scan(&r.rid, &r.ID, &r.LastUpdated, &r.Body); err != nil {
			rows.Close()
			return nil, err
		}
		r.LastUpdated = r.LastUpdated.UTC()
		r.keys = []string{r.LastUpdated.Format(time.RFC3339Nano)}
		page = append(page, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	more := len(page) > q.Count
	if more {
		page = page[:q.Count]
	}
	if back {
		slices.Reverse(page)
	}
	if len(page) > 0 {
		first, last := page[0], page[len(page)-1]
		if more || back {
			res.Next = cursor{Dir: "n", Keys: last.keys, RID: last.rid}.encode()
		}
		if (back && more) || (!back && q.Cursor != "") {
			res.Prev = cursor{Dir: "p", Keys: first.keys, RID: first.rid}.encode()
		}
	}
	for _, r := range page {
		res.Matches = append(res.Matches, r.Resource)
	}
	return res, nil
}

// auditClause compiles one clause of an AuditEvent search against the
// audit table; a parameter or modifier the table cannot answer is a 400
// naming it.
func (c *compiler) auditClause(cl search.Clause) (string, error) {
	if cl.Param == nil || cl.Chain != nil || cl.Has != nil {
		return "", invalid("", "AuditEvent searches take only the parameters %s, without chains or _has", strings.Join(auditParams, ", "))
	}
	code := cl.Param.Code
	unsupported := func() (string, error) {
		return "", invalid(code, "AuditEvent searches take only the parameters %s (without modifiers but agent:identifier); %s is not one of them", strings.Join(auditParams, ", "), code+modSuffix(cl))
	}
	if !slices.Contains(auditParams, code) || cl.Missing != nil {
		return unsupported()
	}
	if cl.Modifier != search.ModNone && !(code == "agent" && cl.Modifier == search.ModIdentifier) {
		return unsupported()
	}
	var ors []string
	for _, v := range cl.Values {
		var cond string
		switch code {
		case "_id":
			t, ok := v.(search.Token)
			if !ok {
				return unsupported()
			}
			cond = "a.id = " + c.arg(t.Code)
		case "action", "outcome", "subtype", "type":
			t, ok := v.(search.Token)
			if !ok {
				return unsupported()
			}
			if t.SystemGiven && t.System != auditSystems[code] {
				cond = "false"
				break
			}
			if t.Code == "" {
				cond = "true"
				break
			}
			cond = "a." + code + " = " + c.arg(t.Code)
		case "date":
			d, ok := v.(search.Date)
			if !ok {
				return unsupported()
			}
			var err error
			if cond, err = c.instantCond("a.recorded", d); err != nil {
				return "", err
			}
		case "patient", "entity", "agent":
			col := map[string]string{"patient": "a.patients", "entity": "a.entities", "agent": "a.agents"}[code]
			switch v := v.(type) {
			case search.Token: // agent:identifier
				ref := v.System + "|" + v.Code
				cond = col + " @> ARRAY[" + c.arg(ref) + "]::text[]"
			case search.Reference:
				switch {
				case v.URL != "" || v.ID == "":
					cond = "false"
				case v.Type != "":
					cond = col + " @> ARRAY[" + c.arg(v.Type+"/"+v.ID) + "]::text[]"
				case code == "patient":
					cond = col + " @> ARRAY[" + c.arg("Patient/"+v.ID) + "]::text[]"
				default:
					x := c.alias("x")
					cond = fmt.Sprintf("EXISTS (SELECT 1 FROM unnest(%s) %s WHERE %s LIKE %s)", col, x, x, c.arg("%/"+likeEscape(v.ID)))
				}
			default:
				return unsupported()
			}
		}
		ors = append(ors, "("+cond+")")
	}
	if len(ors) == 0 {
		return "", invalid(code, "parameter %s has no value", code)
	}
	return "(" + strings.Join(ors, " OR ") + ")", nil
}

// auditSystems are the code systems of the token columns.
var auditSystems = map[string]string{
	"action":  "http://hl7.org/fhir/audit-event-action",
	"outcome": "http://hl7.org/fhir/audit-event-outcome",
	"type":    "http://terminology.hl7.org/CodeSystem/audit-event-type",
	"subtype": "http://hl7.org/fhir/restful-interaction",
}

func modSuffix(cl search.Clause) string {
	if cl.Modifier != search.ModNone {
		return ":" + string(cl.Modifier)
	}
	return ""
}

// instantCond compiles a date value against an instant column: the
// instant is the range [col, col], so eq means it lies inside the value's
// range (http://hl7.org/fhir/R4/search.html#prefix).
func (c *compiler) instantCond(col string, v search.Date) (string, error) {
	s, e := v.Range.Start.UTC(), v.Range.End.UTC()
	switch v.Prefix {
	case search.Eq, "":
		return fmt.Sprintf("%s >= %s AND %s < %s", col, c.arg(s), col, c.arg(e)), nil
	case search.Ne:
		return fmt.Sprintf("NOT (%s >= %s AND %s < %s)", col, c.arg(s), col, c.arg(e)), nil
	case search.Gt, search.Sa:
		return col + " >= " + c.arg(e), nil
	case search.Lt, search.Eb:
		return col + " < " + c.arg(s), nil
	case search.Ge:
		return col + " >= " + c.arg(s), nil
	case search.Le:
		return col + " < " + c.arg(e), nil
	case search.Ap:
		gap := c.now.Sub(s)
		if gap < 0 {
			gap = -gap
		}
		pad := max(gap/10, e.Sub(s))
		return fmt.Sprintf("%s >= %s AND %s < %s", col, c.arg(s.Add(-pad)), col, c.arg(e.Add(pad))), nil
	}
	return "", invalid("date", "unknown prefix %q", v.Prefix)
}
