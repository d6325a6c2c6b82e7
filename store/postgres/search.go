package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
)

// This file is the search compiler: a parsed search.Query becomes one SQL
// query over resources, with one EXISTS per clause against the index table
// of the parameter's kind. Every resource a search returns (matches,
// includes, chained and _has targets) is selected through visible(), the
// one place where the access policy will be compiled in, and paging is done
// in SQL with a keyset on the sort keys and rid, so nothing is ever filtered
// after the page is cut.

var _ search.Searcher = (*Store)(nil)

// Limits of _include/_revinclude: how many rounds :iterate follows, and how
// many resources includes may add to one page.
const (
	maxIncludeRounds = 8
	maxIncluded      = 1000
)

// customPlans runs a search statement as an unnamed statement (its
// description cached, so still one round trip), which PostgreSQL plans for
// the values at hand every time. A named prepared statement (pgx's default)
// switches to a generic plan after five runs when that plan's estimate looks
// no worse, and the generic estimate of "code = $2" is that of an average
// code: Observation?code=<a common code> then reads every row of that code
// before it sorts (at 200,000 resources BenchmarkSearch/token had a p95 of
// 480 ms that way, 5 ms with custom plans; TestSearchPlans checks the mode).
// Planning every time costs about 0.3 ms.
const customPlans = pgx.QueryExecModeCacheDescribe

// compiler builds one SQL statement.
type compiler struct {
	args sqlArgs
	n    int
	now  time.Time
	base string // search.Query.Base
	// access is the request's (search.AccessFrom); nil grants nothing.
	access *search.Access
	// inRule is set while a rule's own filter is compiled (see rule).
	inRule bool
	// err is the first access rule that could not be compiled; the
	// statement must not run when it is set.
	err error
	// row names the alias of the one resource a statement reads, with its
	// id, when the statement is for one resource (read, vread, a write's
	// checks): access rules can then be decided for it as they compile.
	row struct{ alias, id string }
}

func (c *compiler) alias(prefix string) string {
	c.n++
	return fmt.Sprintf("%s%d", prefix, c.n)
}

func (c *compiler) arg(v any) string { return c.args.add(v) }

// text adds a text value compared with index rows, clipped as they are.
func (c *compiler) text(s string) string { return c.args.add(fhir.Clip(s)) }

// visible is the predicate every resource row of a search must satisfy:
// not deleted, and admitted by the Read rules of the request's access
// (access.go), so matches, includes, chains, _has and totals all pass
// through it.
func (c *compiler) visible(r string) string { return c.visibleAs(r, "") }

// visibleAs is visible for an alias whose type the statement fixes to typ
// (a chain's target type, the one type searched): the access rules then
// compile for that type alone.
func (c *compiler) visibleAs(r, typ string) string {
	if cond := c.readable(r, typ); cond != "" {
		return "NOT " + r + ".deleted AND " + cond
	}
	return "NOT " + r + ".deleted"
}

// local is the predicate "reference index row x points to a resource on
// this server": a relative reference, or an absolute one under the base URL.
// The index gives an absolute reference that ends in Type/id that Type and
// ID whatever its server (it cannot know the base), but one on another
// server is not a reference to ours (http://hl7.org/fhir/R4/search.html#reference).
// Relative canonicals keep their URL, without "://".
//
// The test for an empty url (a relative reference: nearly every row) is
// implied by the strpos test and is there for the planner, which estimates
// it from the column statistics; strpos() alone it guesses to hold for 0.5%
// of the rows, and then drives _has and chains from a scan of idx_reference.
func (c *compiler) local(x string) string {
	cond := "(" + x + ".url = '' OR strpos(" + x + ".url, '://') = 0"
	if c.base != "" {
		cond += " OR starts_with(" + x + ".url, " + c.arg(c.base+"/") + ")"
	}
	return cond + ")"
}

// keysFor returns the parameter keys of code on types, as a SQL condition
// on column col.
func (c *compiler) keyCond(col string, types []string, code string) string {
	if len(types) == 1 {
		return col + " = " + c.arg(fhir.ParamKey(types[0], code))
	}
	keys := make([]int64, len(types))
	for i, t := range types {
		keys[i] = fhir.ParamKey(t, code)
	}
	return col + " = ANY(" + c.arg(keys) + "::bigint[])"
}

// tableOf is the index table of a parameter kind.
func tableOf(kind string) (string, bool) {
	switch kind {
	case searchparam.String:
		return "idx_string", true
	case searchparam.Token:
		return "idx_token", true
	case searchparam.Reference:
		return "idx_reference", true
	case searchparam.Date:
		return "idx_date", true
	case searchparam.Number:
		return "idx_number", true
	case searchparam.Quantity:
		return "idx_quantity", true
	case searchparam.URI:
		return "idx_uri", true
	}
	return "", false
}

func invalid(param, format string, args ...any) error {
	return fhir.Errorf(fhir.Invalid, param, format, args...)
}

// where compiles the AND of clauses for resource alias r of the given types.
func (c *compiler) where(r string, types []string, clauses []search.Clause) (string, error) {
	var parts []string
	for _, cl := range clauses {
		p, err := c.clause(r, types, cl)
		if err != nil {
			return "", err
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "true", nil
	}
	return strings.Join(parts, " AND "), nil
}

func (c *compiler) clause(r string, types []string, cl search.Clause) (string, error) {
	switch {
	case cl.Has != nil:
		return c.has(r, cl.Has)
	case cl.Chain != nil:
		return c.chain(r, types, cl)
	}
	if cl.Param == nil {
		return "", invalid("", "a search clause without a parameter")
	}
	if searchparam.IsColumn(cl.Param.Code) {
		return c.column(r, cl)
	}
	code := cl.Param.Code
	kind := cl.Param.Kind
	if cl.Modifier == search.ModIdentifier {
		code, kind = code+":identifier", searchparam.Token
	}
	if cl.Modifier == search.ModOfType {
		code = code + ":of-type"
	}
	if cl.Param.Kind == searchparam.Composite {
		return c.composite(r, types, cl)
	}
	table, ok := tableOf(kind)
	if !ok {
		return "", invalid(cl.Param.Code, "parameter %s of kind %s cannot be searched", cl.Param.Code, kind)
	}
	t := c.alias("t")
	head := fmt.Sprintf("SELECT 1 FROM %s %s WHERE %s.rid = %s.rid AND %s", table, t, t, r, c.keyCond(t+".param", types, code))
	if cl.Missing != nil {
		present := "EXISTS (" + head + ")"
		if kind == searchparam.Reference {
			// A Reference with only an identifier is a value too; the index
			// has it as a token under code+":identifier".
			i := c.alias("t")
			present = fmt.Sprintf("(%s OR EXISTS (SELECT 1 FROM idx_token %s WHERE %s.rid = %s.rid AND %s))",
				present, i, i, r, c.keyCond(i+".param", types, code+":identifier"))
		}
		if *cl.Missing {
			return "NOT " + present, nil
		}
		return present, nil
	}
	var ors []string
	for _, v := range cl.Values {
		cond, err := c.value(t, kind, cl.Modifier, cl.Param.Code, v)
		if err != nil {
			return "", err
		}
		ors = append(ors, "("+cond+")")
	}
	if len(ors) == 0 {
		return "", invalid(cl.Param.Code, "parameter %s has no value", cl.Param.Code)
	}
	exists := "EXISTS (" + head + " AND (" + strings.Join(ors, " OR ") + "))"
	if cl.Modifier == search.ModNot {
		return "NOT " + exists, nil
	}
	return exists, nil
}

// value compiles one value against index alias t of the given kind.
func (c *compiler) value(t, kind string, mod search.Modifier, param string, v search.Value) (string, error) {
	switch v := v.(type) {
	case search.String:
		switch {
		case kind == searchparam.Token && mod == search.ModText:
			return c.prefix(t+".text", v.Norm), nil
		case mod == search.ModExact:
			return t + ".exact = " + c.text(v.Raw), nil
		case mod == search.ModContains:
			return t + ".norm LIKE " + c.arg("%"+likeEscape(fhir.Clip(v.Norm))+"%"), nil
		}
		return c.prefix(t+".norm", v.Norm), nil
	case search.Token:
		var conds []string
		if v.Code != "" {
			conds = append(conds, t+".code = "+c.text(v.Code))
		}
		if v.SystemGiven {
			conds = append(conds, t+".system = "+c.text(v.System))
		}
		if len(conds) == 0 {
			return "", invalid(param, "an empty token")
		}
		return strings.Join(conds, " AND "), nil
	case search.OfType:
		return fmt.Sprintf("%s.system = %s AND %s.code = %s AND %s.text = %s", t, c.text(v.System), t, c.text(v.Code), t, c.text(v.Value)), nil
	case search.Reference:
		var conds []string
		if v.URL != "" {
			conds = append(conds, t+".url = "+c.text(v.URL))
		} else {
			conds = append(conds, t+".id = "+c.text(v.ID))
			if v.Type != "" {
				conds = append(conds, t+".type = "+c.arg(v.Type))
			}
			conds = append(conds, c.local(t))
		}
		if v.Version != "" {
			conds = append(conds, t+".version = "+c.text(v.Version))
		}
		return strings.Join(conds, " AND "), nil
	case search.Date:
		return c.dateCond(t+".lo", t+".hi", v)
	case search.Number:
		return c.numberCond(t+".value", v)
	case search.Quantity:
		cond, err := c.numberCond(t+".value", v.Number)
		if err != nil {
			return "", err
		}
		switch {
		case v.System != "" && v.Code != "":
			cond += fmt.Sprintf(" AND %s.system = %s AND %s.code = %s", t, c.text(v.System), t, c.text(v.Code))
		case v.Code != "":
			a := c.text(v.Code)
			cond += fmt.Sprintf(" AND (%s.code = %s OR %s.unit = %s)", t, a, t, a)
		case v.System != "":
			cond += fmt.Sprintf(" AND %s.system = %s", t, c.text(v.System))
		}
		return cond, nil
	case search.URI:
		switch mod {
		case search.ModBelow:
			return c.prefix(t+".value", v.Value), nil
		case search.ModAbove:
			return t + ".value = ANY(" + c.arg(uriPrefixes(v.Value)) + "::text[])", nil
		}
		return t + ".value = " + c.text(v.Value), nil
	}
	return "", invalid(param, "a %T value cannot be used on a %s parameter", v, kind)
}

// prefix matches values of col that start with p, as a range on the
// byte-wise order so the text_pattern_ops index serves it even in a generic
// prepared plan (LIKE with a parameter could not use it).
func (c *compiler) prefix(col, p string) string {
	if p == "" {
		return "true"
	}
	p = fhir.Clip(p)
	return fmt.Sprintf("%s ~>=~ %s AND %s ~<~ %s", col, c.arg(p), col, c.arg(p+"\U0010FFFF"))
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// uriPrefixes lists the prefixes of u that end at a path boundary, and u
// itself: the stored URIs that :above may match.
func uriPrefixes(u string) []string {
	out := []string{u}
	for i := len(u) - 1; i > 0; i-- {
		if u[i] == '/' {
			out = append(out, u[:i], u[:i+1])
		}
	}
	return out
}

// dateCond compiles a date value against the range [lo, hi) of the target,
// following http://hl7.org/fhir/R4/search.html#prefix.
func (c *compiler) dateCond(lo, hi string, v search.Date) (string, error) {
	vs, ve := v.Range.Start.UTC(), v.Range.End.UTC()
	s, e := func() string { return c.arg(vs) }, func() string { return c.arg(ve) }
	switch v.Prefix {
	case search.Eq, "":
		return fmt.Sprintf("%s >= %s AND %s <= %s", lo, s(), hi, e()), nil
	case search.Ne:
		return fmt.Sprintf("NOT (%s >= %s AND %s <= %s)", lo, s(), hi, e()), nil
	case search.Gt:
		return fmt.Sprintf("%s > %s", hi, e()), nil
	case search.Lt:
		return fmt.Sprintf("%s < %s", lo, s()), nil
	case search.Ge:
		return fmt.Sprintf("(%s > %s OR (%s >= %s AND %s <= %s))", hi, e(), lo, s(), hi, e()), nil
	case search.Le:
		return fmt.Sprintf("(%s < %s OR (%s >= %s AND %s <= %s))", lo, s(), lo, s(), hi, e()), nil
	case search.Sa:
		return fmt.Sprintf("%s >= %s", lo, e()), nil
	case search.Eb:
		return fmt.Sprintf("%s <= %s", hi, s()), nil
	case search.Ap:
		// Approximately: the ranges overlap once the search range is
		// widened by 10% of its distance from now (at least its own width).
		gap := c.now.Sub(vs)
		if gap < 0 {
			gap = -gap
		}
		pad := max(gap/10, ve.Sub(vs))
		return fmt.Sprintf("%s < %s AND %s > %s", lo, c.arg(ve.Add(pad)), hi, c.arg(vs.Add(-pad))), nil
	}
	return "", invalid("", "unknown prefix %q", v.Prefix)
}

// numberCond compiles a number value against the stored value in col:
// equality means the value lies in the range the search value's precision
// implies.
func (c *compiler) numberCond(col string, v search.Number) (string, error) {
	val := func() string { return c.arg(v.Value) + "::numeric" }
	switch v.Prefix {
	case search.Eq, "":
		return fmt.Sprintf("%s >= %s::numeric AND %s < %s::numeric", col, c.arg(v.Lo), col, c.arg(v.Hi)), nil
	case search.Ne:
		return fmt.Sprintf("NOT (%s >= %s::numeric AND %s < %s::numeric)", col, c.arg(v.Lo), col, c.arg(v.Hi)), nil
	case search.Gt, search.Sa:
		return col + " > " + val(), nil
	case search.Lt, search.Eb:
		return col + " < " + val(), nil
	case search.Ge:
		return col + " >= " + val(), nil
	case search.Le:
		return col + " <= " + val(), nil
	case search.Ap:
		a := val()
		return fmt.Sprintf("%s BETWEEN %s - abs(%s) * 0.1 AND %s + abs(%s) * 0.1", col, a, a, a, a), nil
	}
	return "", invalid("", "unknown prefix %q", v.Prefix)
}

// column compiles _id and _lastUpdated against the resources table.
func (c *compiler) column(r string, cl search.Clause) (string, error) {
	if cl.Missing != nil {
		if *cl.Missing {
			return "false", nil
		}
		return "true", nil
	}
	var ors []string
	switch cl.Param.Code {
	case "_id":
		var ids []string
		for _, v := range cl.Values {
			tok, ok := v.(search.Token)
			if !ok {
				return "", invalid("_id", "_id takes resource ids")
			}
			ids = append(ids, tok.Code)
		}
		cond := r + ".id = ANY(" + c.arg(ids) + "::text[])"
		if cl.Modifier == search.ModNot {
			cond = "NOT (" + cond + ")"
		}
		return cond, nil
	case "_lastUpdated":
		for _, v := range cl.Values {
			d, ok := v.(search.Date)
			if !ok {
				return "", invalid("_lastUpdated", "_lastUpdated takes dates")
			}
			// The stored instant covers its microsecond.
			cond, err := c.dateCond(r+".last_updated", "("+r+".last_updated + interval '1 microsecond')", d)
			if err != nil {
				return "", err
			}
			ors = append(ors, "("+cond+")")
		}
		return "(" + strings.Join(ors, " OR ") + ")", nil
	}
	return "", invalid(cl.Param.Code, "unknown column parameter %s", cl.Param.Code)
}

// chain compiles a chained reference: the reference points to a visible
// resource of one of the link types that satisfies the link's clause.
func (c *compiler) chain(r string, types []string, cl search.Clause) (string, error) {
	var ors []string
	for _, link := range cl.Chain.Targets {
		x, t := c.alias("x"), c.alias("r")
		next, err := c.clause(t, []string{link.Type}, link.Next)
		if err != nil {
			return "", err
		}
		ors = append(ors, fmt.Sprintf(`EXISTS (SELECT 1 FROM idx_reference %s JOIN resources %s ON %s.type = %s.type AND %s.id = %s.id
			WHERE %s.rid = %s.rid AND %s AND %s.type = %s AND %s AND %s AND %s)`,
			x, t, t, x, t, x, x, r, c.keyCond(x+".param", types, cl.Param.Code), x, c.arg(link.Type), c.local(x), c.visibleAs(t, link.Type), next))
	}
	if len(ors) == 0 {
		return "false", nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", nil
}

// has compiles reverse chaining: some visible resource of h.Type refers to
// r through h.RefParam and satisfies h.Next.
//
// When visible() asks no more of the referring resource than "not deleted"
// and h.Next reads nothing of it but its rid, its resources row is not
// read at all: index rows exist only for the current version of a live
// resource (a deletion removes them in its own statement), so every rid
// they carry passes visible(). Reading that row, a random page of the
// widest table for every match, was most of the cost of a _has on a large
// database; without it the planner can drive from the index rows that
// match h.Next and reach the references through idx_reference_rid, or walk
// r in page order and probe idx_reference_back, with index-only scans
// either way (see sourceRowNeeded and migration 006).
func (c *compiler) has(r string, h *search.Has) (string, error) {
	x, o := c.alias("x"), c.alias("r")
	next, err := c.clause(o, []string{h.Type}, h.Next)
	if err != nil {
		return "", err
	}
	key := c.arg(fhir.ParamKey(h.Type, h.RefParam.Code))
	if vis := c.visible(o); sourceRowNeeded(o, vis, next) {
		return fmt.Sprintf(`EXISTS (SELECT 1 FROM idx_reference %s JOIN resources %s ON %s.rid = %s.rid
		WHERE %s.param = %s AND %s.id = %s.id AND %s.type = %s.type AND %s AND %s AND %s)`,
			x, o, o, x, x, key, x, r, x, r, c.local(x), vis, next), nil
	}
	return fmt.Sprintf(`EXISTS (SELECT 1 FROM idx_reference %s
		WHERE %s.param = %s AND %s.id = %s.id AND %s.type = %s.type AND %s AND %s)`,
		x, x, key, x, r, x, r, c.local(x), ridOf(next, o, x)), nil
}

// composite compiles a composite parameter: for one value, an entry of each
// component in the same group (one element of the resource) must match its
// part.
func (c *compiler) composite(r string, types []string, cl search.Clause) (string, error) {
	comps := cl.Param.Components
	if cl.Missing != nil {
		// Present when the first component has an entry of some group.
		table, ok := tableOf(comps[0].Kind)
		if !ok {
			return "", invalid(cl.Param.Code, "component 1 of %s cannot be searched", cl.Param.Code)
		}
		a := c.alias("c")
		exists := fmt.Sprintf("EXISTS (SELECT 1 FROM %s %s WHERE %s.rid = %s.rid AND %s AND %s.grp > 0)", table, a, a, r, c.keyCond(a+".param", types, cl.Param.Code), a)
		if *cl.Missing {
			return "NOT " + exists, nil
		}
		return exists, nil
	}
	var ors []string
	for _, v := range cl.Values {
		cv, ok := v.(search.Composite)
		if !ok || len(cv.Parts) != len(comps) {
			return "", invalid(cl.Param.Code, "%s needs %d parts separated by $", cl.Param.Code, len(comps))
		}
		var from, conds []string
		first := ""
		for i, comp := range comps {
			table, ok := tableOf(comp.Kind)
			if !ok {
				return "", invalid(cl.Param.Code, "component %d of %s has kind %s, which cannot be searched", i+1, cl.Param.Code, comp.Kind)
			}
			a := c.alias("c")
			cond, err := c.value(a, comp.Kind, search.ModNone, cl.Param.Code, cv.Parts[i])
			if err != nil {
				return "", err
			}
			if i == 0 {
				first = a
				from = append(from, table+" "+a)
				conds = append(conds, fmt.Sprintf("%s.rid = %s.rid AND %s AND %s.grp > 0", a, r, c.keyCond(a+".param", types, cl.Param.Code), a))
			} else {
				from = append(from, fmt.Sprintf("JOIN %s %s ON %s.rid = %s.rid AND %s.param = %s.param AND %s.grp = %s.grp", table, a, a, first, a, first, a, first))
			}
			conds = append(conds, "("+cond+")")
		}
		ors = append(ors, "EXISTS (SELECT 1 FROM "+strings.Join(from, " ")+" WHERE "+strings.Join(conds, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", nil
}

// compartment restricts r to the resources in a compartment.
func (c *compiler) compartment(r string, types []string, comp *search.Compartment) string {
	var keys []int64
	for _, t := range types {
		for _, p := range comp.Params {
			keys = append(keys, fhir.ParamKey(t, p))
		}
	}
	x := c.alias("x")
	return fmt.Sprintf("EXISTS (SELECT 1 FROM idx_reference %s WHERE %s.rid = %s.rid AND %s.param = ANY(%s::bigint[]) AND %s.type = %s AND %s.id = %s AND %s)",
		x, x, r, x, c.arg(keys), x, c.arg(comp.Type), x, c.arg(comp.ID), c.local(x))
}

// sortKey is one ORDER BY key of a search: its SQL expression (never NULL:
// missing values become a sentinel that sorts last), direction and the SQL
// type its cursor value is cast to.
type sortKey struct {
	expr string
	desc bool
	cast string
}

// sortKeys compiles _sort into keys over resource alias r.
func (c *compiler) sortKeys(r string, types []string, sorts []search.Sort) ([]sortKey, error) {
	var keys []sortKey
	for _, s := range sorts {
		p := s.Param
		agg := "min"
		if s.Desc {
			agg = "max"
		}
		var k sortKey
		switch {
		case p.Code == "_id":
			k = sortKey{expr: r + `.id COLLATE "C"`, cast: `text COLLATE "C"`}
		case p.Code == "_lastUpdated":
			k = sortKey{expr: r + ".last_updated", cast: "timestamptz"}
		default:
			table, ok := tableOf(p.Kind)
			if !ok {
				return nil, invalid("_sort", "cannot sort on %s (kind %s)", p.Code, p.Kind)
			}
			t := c.alias("s")
			var col, cast, lastAsc, lastDesc string
			switch p.Kind {
			case searchparam.Date:
				col, cast, lastAsc, lastDesc = t+".lo", "timestamptz", "'infinity'::timestamptz", "'-infinity'::timestamptz"
				if s.Desc {
					col = t + ".hi"
				}
			case searchparam.Number, searchparam.Quantity:
				col, cast, lastAsc, lastDesc = t+".value", "numeric", "'Infinity'::numeric", "'-Infinity'::numeric"
			default:
				// Text keys compare byte-wise (COLLATE "C") so that the
				// cursor comparison and the ORDER BY agree everywhere.
				cast, lastAsc, lastDesc = `text COLLATE "C"`, `chr(1114111)`, `''`
				switch p.Kind {
				case searchparam.Token:
					col = t + ".code"
				case searchparam.Reference:
					col = "(" + t + ".type || '/' || " + t + ".id)"
				case searchparam.URI:
					col = t + ".value"
				default:
					col = t + ".norm"
				}
				col += ` COLLATE "C"`
			}
			last := lastAsc
			if s.Desc {
				last = lastDesc
			}
			k = sortKey{
				expr: fmt.Sprintf("coalesce((SELECT %s(%s) FROM %s %s WHERE %s.rid = %s.rid AND %s), %s)",
					agg, col, table, t, t, r, c.keyCond(t+".param", types, p.Code), last),
				cast: cast,
			}
		}
		k.desc = s.Desc
		keys = append(keys, k)
	}
	return keys, nil
}

// cursor is the keyset position a paging link carries: the sort key values
// and rid of the row it starts after (Dir "n") or before (Dir "p").
type cursor struct {
	Dir  string   `json:"d"`
	Keys []string `json:"k,omitempty"`
	RID  int64    `json:"r"`
}

func (cur cursor) encode() string {
	b, _ := json.Marshal(cur)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, nkeys int) (cursor, error) {
	var cur cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &cur)
	}
	if err != nil || (cur.Dir != "n" && cur.Dir != "p") || len(cur.Keys) != nkeys {
		return cur, invalid("_cursor", "_cursor is not a paging position of this search: follow the links of the Bundle")
	}
	return cur, nil
}

// keyset returns the condition "row comes after cur" (or before, for a
// previous page) over the keys and rid.
func (c *compiler) keyset(keys []sortKey, rid string, cur cursor) string {
	back := cur.Dir == "p"
	var ors []string
	var eqs []string
	cmp := func(desc bool) string {
		if desc != back {
			return "<"
		}
		return ">"
	}
	for i, k := range keys {
		v := c.arg(cur.Keys[i]) + "::" + k.cast
		ors = append(ors, "("+strings.Join(append(slices.Clone(eqs), k.expr+" "+cmp(k.desc)+" "+v), " AND ")+")")
		eqs = append(eqs, k.expr+" = "+v)
	}
	ors = append(ors, "("+strings.Join(append(eqs, rid+" "+cmp(false)+" "+c.arg(cur.RID)), " AND ")+")")
	return "(" + strings.Join(ors, " OR ") + ")"
}

// typeCond restricts resource alias r to the searched types.
func (c *compiler) typeCond(r string, types []string) string {
	switch len(types) {
	case 0:
		return "true"
	case 1:
		return r + ".type = " + c.arg(types[0])
	}
	return r + ".type = ANY(" + c.arg(types) + "::text[])"
}

// row is a resource row with its sort key values.
type row struct {
	fhir.Resource
	rid  int64
	keys []string
}

// Search implements search.Searcher.
func (s *Store) Search(ctx context.Context, q *search.Query) (res *search.Result, err error) {
	defer wrap(&err, "postgres.Search(%v)", q.Types)
	if len(q.Types) == 1 && q.Types[0] == auditType {
		return s.searchAudit(ctx, q) // audit_search.go
	}
	res = &search.Result{Total: -1}
	c := &compiler{now: s.now(), base: q.Base, access: search.AccessFrom(ctx)}
	types := q.Types
	if len(types) == 0 {
		types = allTypes()
	}
	filter, err := c.where("r", types, q.Where)
	if err != nil {
		return nil, err
	}
	only := ""
	if len(q.Types) == 1 {
		only = q.Types[0]
	}
	base := c.typeCond("r", q.Types) + " AND " + c.visibleAs("r", only) + " AND " + filter
	if q.Compartment != nil {
		base += " AND " + c.compartment("r", types, q.Compartment)
	}
	if c.err != nil {
		return nil, c.err
	}
	// The count runs on the filter alone: the same predicate as the page,
	// so it never counts what the page could not show.
	baseArgs := slices.Clone(c.args)
	// _count=0 is treated as _summary=count (search.html#count).
	if q.Total == "accurate" || q.Summary == "count" || q.Count == 0 {
		if err := s.db().QueryRow(ctx, "SELECT count(*) FROM resources r WHERE "+base, append([]any{customPlans}, baseArgs...)...).Scan(&res.Total); err != nil {
			return nil, err
		}
	} else if q.Total == "estimate" {
		if res.Total, err = s.estimate(ctx, "SELECT 1 FROM resources r WHERE "+base, baseArgs); err != nil {
			return nil, err
		}
	}
	keys, err := c.sortKeys("r", types, q.Sort)
	if err != nil {
		return nil, err
	}
	if q.Count <= 0 || q.Summary == "count" {
		return res, nil
	}

	var cur cursor
	if q.Cursor != "" {
		if cur, err = decodeCursor(q.Cursor, len(keys)); err != nil {
			return nil, err
		}
	}
	back := cur.Dir == "p"
	var sel, order []string
	for i, k := range keys {
		sel = append(sel, fmt.Sprintf("(%s)::text AS k%d", k.expr, i))
		dir := "ASC"
		if k.desc != back {
			dir = "DESC"
		}
		order = append(order, k.expr+" "+dir)
	}
	ridDir := "ASC"
	if back {
		ridDir = "DESC"
	}
	order = append(order, "r.rid "+ridDir)
	where := base
	if q.Cursor != "" {
		where += " AND " + c.keyset(keys, "r.rid", cur)
	}
	cols := "r.rid, r.type, r.id, r.version, r.last_updated, r.body"
	if len(sel) > 0 {
		cols += ", " + strings.Join(sel, ", ")
	}
	// The page is chosen on rids and sort keys alone, which the planner can
	// often read from indexes only, and just its rows are then read in full:
	// a search that must sort 2,500 matches to find the first page reads 21
	// resources, not 2,500 (Patient?name=bak on a million resources: 22 ms
	// down to 8 ms).
	orderBy := strings.Join(order, ", ")
	sql := "SELECT " + cols + " FROM resources r WHERE r.rid IN (SELECT r.rid FROM resources r WHERE " + where +
		" ORDER BY " + orderBy + " LIMIT " + c.arg(q.Count+1) + ") ORDER BY " + orderBy
	rows, err := s.db().Query(ctx, sql, append([]any{customPlans}, c.args...)...)
	if err != nil {
		return nil, err
	}
	page, err := scanRows(rows, len(keys))
	if err != nil {
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
		if (!back && more) || back {
			res.Next = cursor{Dir: "n", Keys: last.keys, RID: last.rid}.encode()
		}
		if (back && more) || (!back && q.Cursor != "") {
			res.Prev = cursor{Dir: "p", Keys: first.keys, RID: first.rid}.encode()
		}
	}
	for _, r := range page {
		res.Matches = append(res.Matches, r.Resource)
	}
	if len(q.Include)+len(q.RevInclude) > 0 && len(page) > 0 {
		if res.Included, err = s.includes(ctx, q, page); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func scanRows(rows pgx.Rows, nkeys int) ([]row, error) {
	defer rows.Close()
	var out []row
	for rows.Next() {
		var r row
		dst := []any{&r.rid, &r.Type, &r.ID, &r.VersionID, &r.LastUpdated, &r.Body}
		r.keys = make([]string, nkeys)
		for i := range r.keys {
			dst = append(dst, &r.keys[i])
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		r.LastUpdated = r.LastUpdated.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// estimate asks the planner how many rows a query returns.
func (s *Store) estimate(ctx context.Context, sql string, args []any) (int64, error) {
	var plan []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	var raw []byte
	if err := s.db().QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
		return 0, err
	}
	if err := json.Unmarshal(raw, &plan); err != nil || len(plan) == 0 {
		return 0, errors.Join(errors.New("read EXPLAIN output"), err)
	}
	return int64(plan[0].Plan.Rows), nil
}

// includes runs _include and _revinclude (with :iterate) for a page.
func (s *Store) includes(ctx context.Context, q *search.Query, page []row) ([]fhir.Resource, error) {
	seen := map[int64]bool{}
	var current []row
	for _, r := range page {
		seen[r.rid] = true
		current = append(current, r)
	}
	var out []fhir.Resource
	for round := 0; round < maxIncludeRounds && len(current) > 0 && len(out) < maxIncluded; round++ {
		var next []row
		for _, inc := range q.Include {
			if round > 0 && !inc.Iterate {
				continue
			}
			rows, err := s.include(ctx, q.Base, inc, current, false)
			if err != nil {
				return nil, err
			}
			next = appendNew(next, rows, seen)
		}
		for _, inc := range q.RevInclude {
			if round > 0 && !inc.Iterate {
				continue
			}
			rows, err := s.include(ctx, q.Base, inc, current, true)
			if err != nil {
				return nil, err
			}
			next = appendNew(next, rows, seen)
		}
		for _, r := range next {
			if len(out) >= maxIncluded {
				break
			}
			out = append(out, r.Resource)
		}
		current = next
	}
	return out, nil
}

func appendNew(dst, rows []row, seen map[int64]bool) []row {
	for _, r := range rows {
		if !seen[r.rid] {
			seen[r.rid] = true
			dst = append(dst, r)
		}
	}
	return dst
}

// includedType is the one type an _include can bring in, "" when it can
// bring in several: the access rules then compile for that type alone.
func includedType(inc search.Include) string {
	switch {
	case inc.TargetType != "":
		return inc.TargetType
	case inc.Param != nil && len(inc.Param.Targets) == 1:
		return inc.Param.Targets[0]
	}
	return ""
}

// include fetches what one _include brings in for the resources from (or,
// with rev, what refers to them); base is search.Query.Base.
func (s *Store) include(ctx context.Context, base string, inc search.Include, from []row, rev bool) ([]row, error) {
	c := &compiler{now: s.now(), base: base, access: search.AccessFrom(ctx)}
	var rids []int64
	var types, ids []string
	for _, r := range from {
		if !rev && inc.SourceType != "" && r.Type != inc.SourceType {
			continue
		}
		if rev && inc.TargetType != "" && r.Type != inc.TargetType {
			continue
		}
		rids = append(rids, r.rid)
		types = append(types, r.Type)
		ids = append(ids, r.ID)
	}
	if len(rids) == 0 {
		return nil, nil
	}
	keys, err := s.includeKeys(inc, from)
	if err != nil {
		return nil, err
	}
	var sql string
	if !rev {
		target := ""
		if t := includedType(inc); t != "" {
			// What the reference parameter can point to: the access rules
			// compile for that type alone.
			target = " AND x.type = " + c.arg(t)
		}
		sql = fmt.Sprintf(`SELECT DISTINCT t.rid, t.type, t.id, t.version, t.last_updated, t.body
			FROM idx_reference x JOIN resources t ON t.type = x.type AND t.id = x.id
			WHERE x.rid = ANY(%s::bigint[]) AND x.param = ANY(%s::bigint[])%s AND %s AND %s
			ORDER BY t.rid LIMIT %d`, c.arg(rids), c.arg(keys), target, c.local("x"), c.visibleAs("t", includedType(inc)), maxIncluded)
	} else {
		sql = fmt.Sprintf(`SELECT DISTINCT o.rid, o.type, o.id, o.version, o.last_updated, o.body
			FROM unnest(%s::text[], %s::text[]) AS m(type, id)
			JOIN idx_reference x ON x.id = m.id AND x.type = m.type AND x.param = ANY(%s::bigint[])
			JOIN resources o ON o.rid = x.rid
			WHERE %s AND %s ORDER BY o.rid LIMIT %d`, c.arg(types), c.arg(ids), c.arg(keys), c.local("x"), c.visibleAs("o", inc.SourceType), maxIncluded)
	}
	if c.err != nil {
		return nil, c.err
	}
	rows, err := s.db().Query(ctx, sql, append([]any{customPlans}, c.args...)...)
	if err != nil {
		return nil, err
	}
	return scanRows(rows, 0)
}

// includeKeys returns the parameter keys an include follows: its own, or
// for _include=* every reference parameter of the source types.
func (s *Store) includeKeys(inc search.Include, from []row) ([]int64, error) {
	if inc.Param != nil {
		return []int64{fhir.ParamKey(inc.SourceType, inc.Param.Code)}, nil
	}
	var reg *searchparam.Registry
	if s.Registry != nil {
		reg = s.Registry()
	} else {
		var err error
		if reg, err = searchparam.Builtin(); err != nil {
			return nil, err
		}
	}
	var keys []int64
	done := map[string]bool{}
	for _, r := range from {
		if done[r.Type] || (inc.SourceType != "" && r.Type != inc.SourceType) {
			continue
		}
		done[r.Type] = true
		for _, p := range reg.Params(r.Type) {
			if p.Kind == searchparam.Reference {
				keys = append(keys, p.Key)
			}
		}
	}
	return keys, nil
}

// allTypes lists every resource type, for system searches without _type.
func allTypes() []string { return r4.ResourceTypes() }
