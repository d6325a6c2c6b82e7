package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
)

// This file compiles the access predicate of a request (search.Access, in
// its context) into SQL. Every read path selects resources through
// compiler.visible, which adds the Read rules; writes check the version they
// replace and the version they write against the Write rules, inside their
// transaction. A context without an Access compiles to "false": no rows, no
// writes. The unrestricted Access compiles to nothing at all, so the
// server's own statements are exactly what they were before access control.

// accessDenied is the compiled form of "no rule admits anything".
const accessDenied = "false"

// admits compiles rules for resource alias r, whose type is typ when the
// statement already fixes it ("" when not): the OR of the rules, or ""
// when some rule admits every resource (no condition needed). A rule whose
// filter cannot be compiled admits nothing (c.err records why): it must
// never be dropped, which would widen what the others admit.
//
// Rules that share their confinements (the same In, And and Not, as the
// access policy makes them: one set of records, many sections) are
// compiled as one group: the confinements once, the rules' types and
// filters as an OR inside, a filter clause that every rule of the group
// has once (on several types, only one on a parameter common to every
// type, such as _security), and the one-clause filters of one type on one
// token parameter as one clause with all their values. The statement
// stays small however many sections a role covers.
func (c *compiler) admits(r string, rules []search.Rule, typ string) string {
	// A rule that compiles to a constant leaves no arguments behind:
	// PostgreSQL cannot type a parameter the statement does not use.
	start := len(c.args)
	var kept []search.Rule
	for _, rule := range rules {
		if typ == "" || rule.Type == "" || rule.Type == typ {
			kept = append(kept, rule)
		}
	}
	// A clause on a common parameter (_security: what is withheld from
	// the caller) that every rule has is tested once, outside them.
	common, types := commonClauses(kept, typ)
	var head string
	if len(common) > 0 {
		outer := c.inRule
		c.inRule = true
		w, err := c.where(r, types, common)
		c.inRule = outer
		if err != nil {
			c.err = errors.Join(c.err, err)
			return accessDenied
		}
		head = "(" + w + ")"
		stripped := make([]search.Rule, len(kept))
		for i, rule := range kept {
			rule.Where = slices.DeleteFunc(slices.Clone(rule.Where), func(x search.Clause) bool {
				return slices.ContainsFunc(common, func(cl search.Clause) bool { return sameClause(x, cl) })
			})
			stripped[i] = rule
		}
		kept = stripped
	}
	rest := c.admitsAll(r, kept, typ, len(c.args))
	switch {
	case head == "":
		return rest
	case rest == accessDenied:
		c.args = c.args[:start]
		return accessDenied
	case rest == "":
		return head
	}
	return "(" + head + " AND " + rest + ")"
}

// commonClauses returns the clauses on a parameter common to every type
// (its code starts with "_") that each of rules has, and the types to
// compile them for: typ, the rules' types, or every type.
func commonClauses(rules []search.Rule, typ string) ([]search.Clause, []string) {
	if len(rules) < 2 {
		return nil, nil
	}
	common := clausesInEvery(rules, func(cl search.Clause) bool { return strings.HasPrefix(cl.Param.Code, "_") })
	if len(common) == 0 {
		return nil, nil
	}
	if typ != "" {
		return common, []string{typ}
	}
	var types []string
	for _, rule := range rules {
		if rule.Type == "" {
			return common, allTypes()
		}
		if !slices.Contains(types, rule.Type) {
			types = append(types, rule.Type)
		}
	}
	return common, types
}

// clausesInEvery returns the clauses of rules[0] that every other rule has
// too, among the plain ones (a parameter, no chain, no _has) that keep
// accepts.
func clausesInEvery(rules []search.Rule, keep func(search.Clause) bool) []search.Clause {
	var common []search.Clause
	for _, cl := range rules[0].Where {
		if cl.Param == nil || cl.Chain != nil || cl.Has != nil || !keep(cl) {
			continue
		}
		every := true
		for _, rule := range rules[1:] {
			if !slices.ContainsFunc(rule.Where, func(x search.Clause) bool { return sameClause(x, cl) }) {
				every = false
				break
			}
		}
		if every {
			common = append(common, cl)
		}
	}
	return common
}

// admitsAll is the OR of the rules, grouped by their confinements; start
// is where the arguments of admits begin.
func (c *compiler) admitsAll(r string, rules []search.Rule, typ string, start int) string {
	var ors []string
	for _, g := range groupRules(rules, typ) {
		mark := len(c.args)
		var cond string
		if len(g) == 1 {
			cond = c.rule(r, g[0], typ)
		} else {
			cond = c.group(r, g, typ)
		}
		switch cond {
		case "":
			c.args = c.args[:start]
			return ""
		case accessDenied:
			c.args = c.args[:mark]
		default:
			ors = append(ors, cond)
		}
	}
	switch len(ors) {
	case 0:
		return accessDenied
	case 1:
		return ors[0]
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// groupRules returns the rules that can admit resources of type typ ("":
// any), grouped by their confinements, in the order of their first rule.
func groupRules(rules []search.Rule, typ string) [][]search.Rule {
	var out [][]search.Rule
	for _, rule := range rules {
		if typ != "" && rule.Type != "" && rule.Type != typ {
			continue
		}
		placed := false
		for i, g := range out {
			if sameConfinements(g[0], rule) {
				out[i] = append(g, rule)
				placed = true
				break
			}
		}
		if !placed {
			out = append(out, []search.Rule{rule})
		}
	}
	return out
}

// sameConfinements reports whether a and b are confined alike: the same
// confinement values (by identity), so one compiled form serves both.
func sameConfinements(a, b search.Rule) bool {
	return a.In == b.In && slices.Equal(a.And, b.And) && slices.Equal(a.Not, b.Not)
}

// group compiles rules that share their confinements (groupRules) for
// alias r of type typ.
func (c *compiler) group(r string, rules []search.Rule, typ string) string {
	// The types the group admits: the statement's, or the rules'.
	var types []string
	t := typ
	if t == "" {
		for _, rule := range rules {
			if rule.Type == "" {
				types = nil
				break
			}
			if !slices.Contains(types, rule.Type) {
				types = append(types, rule.Type)
			}
		}
		if len(types) == 1 {
			t = types[0]
		}
	} else {
		types = []string{t}
	}
	// Clauses that every rule has: on one type any parameter; across types
	// only the common ones (_security, _tag...), whose clause means the
	// same on each.
	common := clausesInEvery(rules, func(cl search.Clause) bool {
		return len(types) == 1 || strings.HasPrefix(cl.Param.Code, "_")
	})
	var parts []string
	if typ == "" && len(types) > 0 {
		if len(types) == 1 {
			parts = append(parts, r+".type = "+c.arg(types[0]))
		} else {
			parts = append(parts, r+".type = ANY("+c.arg(types)+"::text[])")
		}
	}
	if len(common) > 0 {
		ts := types
		if ts == nil {
			ts = allTypes()
		}
		outer := c.inRule
		c.inRule = true
		w, err := c.where(r, ts, common)
		c.inRule = outer
		if err != nil {
			c.err = errors.Join(c.err, err)
			return accessDenied
		}
		parts = append(parts, "("+w+")")
	}
	// What is left of each rule: its type and other clauses. Rules of one
	// type whose one clause is a plain one on the same parameter (the
	// category of each section's carriers) become one clause with all
	// their values: a token clause admits any of its values.
	var rests []search.Rule
	for _, rule := range rules {
		rest := rule
		rest.Where = slices.DeleteFunc(slices.Clone(rule.Where), func(x search.Clause) bool {
			return slices.ContainsFunc(common, func(cl search.Clause) bool { return sameClause(x, cl) })
		})
		rest.In, rest.And, rest.Not = nil, nil, nil
		if len(types) == 1 {
			rest.Type = "" // the group's type test covers it
		}
		merged := false
		if len(rest.Where) == 1 && plainClause(rest.Where[0]) {
			for i, o := range rests {
				if o.Type == rest.Type && len(o.Where) == 1 && plainClause(o.Where[0]) && o.Where[0].Param == rest.Where[0].Param {
					cl := o.Where[0]
					cl.Values = slices.Concat(cl.Values, rest.Where[0].Values)
					rests[i].Where = []search.Clause{cl}
					merged = true
					break
				}
			}
		}
		if !merged {
			rests = append(rests, rest)
		}
	}
	var ors []string
	for _, rest := range rests {
		mark := len(c.args)
		cond := c.rule(r, rest, t)
		switch cond {
		case "":
			ors = []string{"true"}
		case accessDenied:
			c.args = c.args[:mark]
			continue
		default:
			ors = append(ors, cond)
		}
		if cond == "" {
			break
		}
	}
	switch {
	case len(ors) == 0:
		return accessDenied
	case len(ors) == 1 && ors[0] == "true":
	default:
		parts = append(parts, "("+strings.Join(ors, " OR ")+")")
	}
	conf := rules[0]
	conf.Type, conf.Where = t, nil
	switch cond := c.rule(r, conf, t); cond {
	case accessDenied:
		return accessDenied
	case "":
	default:
		parts = append(parts, cond)
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, " AND ") + ")"
}

// plainClause reports whether cl is a clause whose values are
// alternatives: a parameter without modifier (or with a type modifier),
// no chain, _has or :missing.
func plainClause(cl search.Clause) bool {
	return cl.Param != nil && cl.Modifier == "" && cl.Chain == nil && cl.Has == nil && cl.Missing == nil && cl.Param.Kind == searchparam.Token
}

// sameClause reports whether two filter clauses are the same criterion.
func sameClause(a, b search.Clause) bool {
	return a.Param == b.Param && a.Modifier == b.Modifier && a.Chain == nil && b.Chain == nil &&
		a.Has == nil && b.Has == nil && a.Missing == nil && b.Missing == nil && reflect.DeepEqual(a.Values, b.Values)
}

// rule compiles one rule for alias r of type typ ("" unknown); "" when it
// admits everything. Knowing the type keeps the statement small: rules for
// other types drop out, and a rule for every type needs only the
// compartment parameters of that one.
func (c *compiler) rule(r string, rule search.Rule, typ string) string {
	var parts []string
	t := rule.Type
	switch {
	case typ != "" && t != "" && t != typ:
		return accessDenied
	case typ != "":
		t = typ
	case t != "":
		parts = append(parts, r+".type = "+c.arg(t))
	}
	if len(rule.Where) > 0 {
		types := []string{t}
		if t == "" {
			types = allTypes()
		}
		// A chain or _has inside a scope's filter looks at its targets
		// without the access rules: the filter only narrows what the rule
		// admits, and compiling the rules into themselves would not end.
		outer := c.inRule
		c.inRule = true
		w, err := c.where(r, types, rule.Where)
		c.inRule = outer
		if err != nil {
			c.err = errors.Join(c.err, err)
			return accessDenied
		}
		parts = append(parts, "("+w+")")
	}
	for _, in := range append([]*search.Confinement{rule.In}, rule.And...) {
		if in == nil {
			continue
		}
		switch cond := c.confined(r, t, in); cond {
		case accessDenied:
			return accessDenied
		case "":
		default:
			parts = append(parts, cond)
		}
	}
	for _, out := range rule.Not {
		if out == nil {
			continue
		}
		switch cond := c.confined(r, t, out); cond {
		case accessDenied: // nothing to leave out
		case "":
			return accessDenied
		default:
			parts = append(parts, "NOT "+cond)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, " AND ") + ")"
}

// compartmentKeys returns the parameter keys that place a resource of type
// typ ("" for any type) in a compartment with the given definition
// (resource type -> parameter codes).
func compartmentKeys(def map[string][]string, typ string) []int64 {
	var keys []int64
	add := func(t string) {
		for _, code := range def[t] {
			if !strings.HasPrefix(code, "{") { // {def}: the owner itself, handled apart
				keys = append(keys, fhir.ParamKey(t, code))
			}
		}
	}
	if typ != "" {
		add(typ)
		return keys
	}
	for _, t := range slices.Sorted(maps.Keys(def)) {
		add(t)
	}
	return keys
}

// keysCond is "col is one of keys", a plain comparison for one key.
func (c *compiler) keysCond(col string, keys []int64) string {
	if len(keys) == 1 {
		return col + " = " + c.arg(keys[0])
	}
	if len(keys) <= 8 {
		ps := make([]string, len(keys))
		for i, k := range keys {
			ps[i] = c.arg(k)
		}
		return col + " IN (" + strings.Join(ps, ", ") + ")"
	}
	return col + " = ANY(" + c.arg(keys) + "::bigint[])"
}

// confined compiles "r is inside one of in's compartments" for resources of
// type typ ("" for any type); "" when it is known to be (the one resource a
// statement reads is an owner).
func (c *compiler) confined(r, typ string, in *search.Confinement) string {
	var ors []string
	known := typ != "" && r == c.row.alias && c.row.id != ""
	// The owners of one type are tested together: one probe of the
	// resource's own index rows per owner type, whatever their number.
	var ownerTypes []string
	idsOf := map[string][]string{}
	for _, o := range in.Owners {
		if known && typ == o.Type && c.row.id == o.ID {
			return ""
		}
		if _, ok := idsOf[o.Type]; !ok {
			ownerTypes = append(ownerTypes, o.Type)
		}
		idsOf[o.Type] = append(idsOf[o.Type], o.ID)
	}
	// The resource's own reference index rows that point to an owner,
	// for every owner type in one probe.
	var x string
	var refs []string
	for _, ot := range ownerTypes {
		ids := idsOf[ot]
		keys := compartmentKeys(in.Params[ot], typ)
		if typ != "" && typ != ot && len(keys) == 0 && !in.Referrers {
			continue
		}
		// Arguments are added only when used: PostgreSQL cannot type a
		// parameter the statement does not mention.
		var oid string
		idIn := func(col string) string {
			if len(ids) == 1 {
				if oid == "" {
					oid = c.arg(ids[0])
				}
				return col + " = " + oid
			}
			if oid == "" {
				oid = c.arg(ids)
			}
			return col + " = ANY(" + oid + "::text[])"
		}
		switch {
		case typ == ot && !known:
			ors = append(ors, idIn(r+".id"))
		case typ == "":
			ors = append(ors, fmt.Sprintf("(%s.type = %s AND %s)", r, c.arg(ot), idIn(r+".id")))
		}
		if !in.Referrers && len(keys) == 0 {
			continue
		}
		if x == "" {
			x = c.alias("a")
		}
		if in.Referrers {
			// Any reference parameter: a superset of the compartment's.
			refs = append(refs, fmt.Sprintf("(%s.type = %s AND %s)", x, c.arg(ot), idIn(x+".id")))
		} else {
			refs = append(refs, fmt.Sprintf("(%s AND %s.type = %s AND %s)", c.keysCond(x+".param", keys), x, c.arg(ot), idIn(x+".id")))
		}
	}
	if len(refs) > 0 {
		ors = append(ors, fmt.Sprintf("EXISTS (SELECT 1 FROM idx_reference %s WHERE %s.rid = %s.rid AND (%s) AND %s)",
			x, x, r, strings.Join(refs, " OR "), c.local(x)))
	}
	if len(in.ReferencedBy) > 0 {
		// What the named resources point to, read when the query runs.
		types, ids := make([]string, len(in.ReferencedBy)), make([]string, len(in.ReferencedBy))
		for i, o := range in.ReferencedBy {
			types[i], ids[i] = o.Type, o.ID
		}
		o, x := c.alias("o"), c.alias("a")
		rtype := r + ".type"
		if typ != "" {
			rtype = c.arg(typ)
		}
		ors = append(ors, fmt.Sprintf("EXISTS (SELECT 1 FROM resources %s JOIN idx_reference %s ON %s.rid = %s.rid WHERE (%s.type, %s.id) IN (SELECT * FROM unnest(%s::text[], %s::text[])) AND NOT %s.deleted AND %s.type = %s AND %s.id = %s.id AND %s)",
			o, x, x, o, o, o, c.arg(types), c.arg(ids), o, x, rtype, x, r, c.local(x)))
	}
	if in.Person != "" {
		// The owners a Person links to, read when the query runs: a link
		// the Person gains or loses counts at once.
		linked := func() string {
			p, l := c.alias("p"), c.alias("l")
			return fmt.Sprintf("SELECT %s.type, %s.id FROM resources %s JOIN idx_reference %s ON %s.rid = %s.rid WHERE %s.type = 'Person' AND %s.id = %s AND NOT %s.deleted AND %s.param = %s AND %s",
				l, l, p, l, l, p, p, p, c.arg(in.Person), p, l, c.arg(fhir.ParamKey("Person", "link")), c.local(l))
		}
		if typ == "" || typ == "Person" {
			ors = append(ors, fmt.Sprintf("(%s.type = 'Person' AND %s.id = %s)", r, r, c.arg(in.Person)))
		}
		ors = append(ors, fmt.Sprintf("(%s.type, %s.id) IN (%s)", r, r, linked()))
		for _, ownerType := range slices.Sorted(maps.Keys(in.Params)) {
			keys := compartmentKeys(in.Params[ownerType], typ)
			if len(keys) == 0 {
				continue
			}
			x := c.alias("a")
			ors = append(ors, fmt.Sprintf("EXISTS (SELECT 1 FROM idx_reference %s WHERE %s.rid = %s.rid AND %s AND %s.type = %s AND %s AND (%s.type, %s.id) IN (%s))",
				x, x, r, c.keysCond(x+".param", keys), x, c.arg(ownerType), c.local(x), x, x, linked()))
		}
	}
	if len(ors) == 0 {
		return accessDenied
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// readable compiles the Read rules of the request for alias r of type typ
// ("" when the statement does not fix it): "" when every resource is
// readable.
func (c *compiler) readable(r, typ string) string {
	switch {
	case c.inRule || c.access.IsUnrestricted():
		return ""
	case c.access == nil:
		return accessDenied
	}
	cond := c.admits(r, c.access.Read, typ)
	if cond == "" || cond == accessDenied || (r == c.row.alias && c.row.id != "") {
		// A statement that reads one known row has nothing to narrow.
		return cond
	}
	mark := len(c.args)
	narrow := c.narrowing(r, c.access.Read, typ)
	if narrow == "" {
		c.args = c.args[:mark]
		return cond
	}
	return "(" + narrow + " AND " + cond + ")"
}

// narrowing compiles, for rules that are all confined (every rule that can
// admit resources of type typ has an In; "" otherwise), a condition that
// every resource they admit passes and that the planner can start from:
// "r.rid IN (the resources inside any of their In confinements)", a union
// of index probes by owner. The OR of the rules, each "filter AND
// EXISTS(reference to an owner)", it can only test row by row, after
// reading every resource of the type; this names the few rows inside the
// compartments up front. It is redundant (a rule admits only what lies in
// its In), so the rules stay as they are, and a superset is enough: the
// probes leave out what only narrows further (the local-reference test,
// "not deleted").
func (c *compiler) narrowing(r string, rules []search.Rule, typ string) string {
	var ins []*search.Confinement
	for _, rule := range rules {
		if typ != "" && rule.Type != "" && rule.Type != typ {
			continue
		}
		if rule.In == nil {
			return ""
		}
		if !slices.Contains(ins, rule.In) {
			ins = append(ins, rule.In)
		}
	}
	var sets []string
	for _, in := range ins {
		sets = append(sets, c.members(typ, in)...)
	}
	if len(sets) == 0 {
		return ""
	}
	return r + ".rid IN (" + strings.Join(sets, " UNION ALL ") + ")"
}

// members returns queries of rids whose union holds every resource of type
// typ ("" any) inside in (see confined, which it follows).
func (c *compiler) members(typ string, in *search.Confinement) []string {
	var sets []string
	var ownerTypes []string
	idsOf := map[string][]string{}
	for _, o := range in.Owners {
		if _, ok := idsOf[o.Type]; !ok {
			ownerTypes = append(ownerTypes, o.Type)
		}
		idsOf[o.Type] = append(idsOf[o.Type], o.ID)
	}
	for _, ot := range ownerTypes {
		keys := compartmentKeys(in.Params[ot], typ)
		if typ != "" && typ != ot && len(keys) == 0 && !in.Referrers {
			continue // nothing of type typ is inside through these owners
		}
		ids := c.arg(idsOf[ot])
		if typ == "" || typ == ot {
			// The owners themselves.
			sets = append(sets, fmt.Sprintf("SELECT m.rid FROM resources m WHERE m.type = %s AND m.id = ANY(%s::text[])", c.arg(ot), ids))
		}
		switch {
		case in.Referrers:
			sets = append(sets, fmt.Sprintf("SELECT m.rid FROM idx_reference m WHERE m.id = ANY(%s::text[]) AND m.type = %s", ids, c.arg(ot)))
		case len(keys) > 0:
			sets = append(sets, fmt.Sprintf("SELECT m.rid FROM idx_reference m WHERE m.id = ANY(%s::text[]) AND m.type = %s AND %s", ids, c.arg(ot), c.keysCond("m.param", keys)))
		}
	}
	if len(in.ReferencedBy) > 0 {
		types, ids := make([]string, len(in.ReferencedBy)), make([]string, len(in.ReferencedBy))
		for i, o := range in.ReferencedBy {
			types[i], ids[i] = o.Type, o.ID
		}
		set := fmt.Sprintf("SELECT m.rid FROM resources o JOIN idx_reference x ON x.rid = o.rid JOIN resources m ON m.type = x.type AND m.id = x.id WHERE (o.type, o.id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))", c.arg(types), c.arg(ids))
		if typ != "" {
			set += " AND x.type = " + c.arg(typ)
		}
		sets = append(sets, set)
	}
	if in.Person != "" {
		person := c.arg(in.Person)
		if typ == "" || typ == "Person" {
			sets = append(sets, "SELECT m.rid FROM resources m WHERE m.type = 'Person' AND m.id = "+person)
		}
		// What the Person links to, and what refers to that through a
		// compartment parameter of any owner type.
		linked := fmt.Sprintf("FROM resources p JOIN idx_reference l ON l.rid = p.rid WHERE p.type = 'Person' AND p.id = %s AND l.param = %s", person, c.arg(fhir.ParamKey("Person", "link")))
		set := "SELECT m.rid FROM resources m JOIN (SELECT l.type, l.id " + linked + ") k ON m.type = k.type AND m.id = k.id"
		if typ != "" {
			set += " WHERE m.type = " + c.arg(typ)
		}
		sets = append(sets, set)
		var keys []int64
		for _, ot := range slices.Sorted(maps.Keys(in.Params)) {
			keys = append(keys, compartmentKeys(in.Params[ot], typ)...)
		}
		if len(keys) > 0 {
			sets = append(sets, "SELECT m.rid FROM idx_reference m JOIN (SELECT l.type, l.id "+linked+") k ON m.type = k.type AND m.id = k.id WHERE "+c.keysCond("m.param", keys))
		}
	}
	return sets
}

// writable compiles the Write rules of the request for alias r of type
// typ: "" when every such resource is writable.
func (c *compiler) writable(r, typ string) string {
	switch {
	case c.access.IsUnrestricted():
		return ""
	case c.access == nil:
		return accessDenied
	}
	return c.admits(r, c.access.Write, typ)
}

// orTrue returns cond, or "true" for the empty condition.
func orTrue(cond string) string {
	if cond == "" {
		return "true"
	}
	return cond
}

// guard is the write side of a request's access: what a write may replace
// and what it may write.
type guard struct {
	access *search.Access
	now    func() time.Time
	base   string
	// open is set when the access admits every resource of the type
	// written: nothing to check (an operator, a system/ scope without
	// constraints).
	open bool
}

// newGuard returns the guard of ctx's access for writes of type typ. It
// fails with Forbidden when the access allows no write at all, before
// anything is read.
func (s *Store) newGuard(ctx context.Context, typ string) (guard, error) {
	a := search.AccessFrom(ctx)
	if a == nil || (!a.IsUnrestricted() && len(a.Write) == 0) {
		return guard{}, fhir.Errorf(fhir.Forbidden, "", "this request may not write %s resources", typ)
	}
	g := guard{access: a, now: s.now, base: s.Base, open: a.IsUnrestricted()}
	for _, r := range a.Write {
		if (r.Type == "" || r.Type == typ) && len(r.Where) == 0 && r.In == nil && len(r.And) == 0 && len(r.Not) == 0 {
			g.open = true
		}
	}
	return g, nil
}

// restricted reports whether writes must be checked.
func (g guard) restricted() bool { return !g.open }

// checkStored checks that the current version of a resource (rid) may be
// replaced or deleted: Forbidden when the request may read it but not write
// it, NotFound when it may not even read it (its existence is not revealed).
func (g guard) checkStored(ctx context.Context, q querier, typ, id string, rid int64) error {
	if !g.restricted() {
		return nil
	}
	c := &compiler{now: g.now(), base: g.base, access: g.access}
	c.args = sqlArgs{rid}
	c.row.alias, c.row.id = "r", id
	sql := fmt.Sprintf("SELECT %s, %s FROM resources r WHERE r.rid = $1", orTrue(c.writable("r", typ)), orTrue(c.readable("r", typ)))
	if c.err != nil {
		return c.err
	}
	var writable, readable bool
	if err := q.QueryRow(ctx, sql, c.args...).Scan(&writable, &readable); err != nil {
		return fmt.Errorf("check access to %s/%s: %w", typ, id, err)
	}
	switch {
	case writable:
		return nil
	case readable:
		return fhir.Errorf(fhir.Forbidden, "", "this request may read %s/%s but not change it", typ, id)
	}
	return fhir.Errorf(fhir.NotFound, "", "%s/%s is not known", typ, id)
}

// checkWritten checks, after a write and in its transaction, that the
// version written (with its index rows) is one the request may write:
// Forbidden otherwise, and the caller's transaction rolls back.
func (g guard) checkWritten(ctx context.Context, q querier, typ, id string) error {
	if !g.restricted() {
		return nil
	}
	c := &compiler{now: g.now(), base: g.base, access: g.access}
	c.args = sqlArgs{typ, id}
	c.row.alias, c.row.id = "r", id
	sql := "SELECT " + orTrue(c.writable("r", typ)) + " FROM resources r WHERE r.type = $1 AND r.id = $2"
	if c.err != nil {
		return c.err
	}
	var ok bool
	err := q.QueryRow(ctx, sql, c.args...).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		err = errors.New("the version written is not there")
	}
	if err != nil {
		return fmt.Errorf("check access to %s/%s: %w", typ, id, err)
	}
	if !ok {
		return fhir.Errorf(fhir.Forbidden, "", "this request may not write this %s: the resource would be outside what its access allows (the patient, user or granular scope it is confined to)", typ)
	}
	return nil
}
