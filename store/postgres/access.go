package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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
func (c *compiler) admits(r string, rules []search.Rule, typ string) string {
	// A rule that compiles to a constant leaves no arguments behind:
	// PostgreSQL cannot type a parameter the statement does not use.
	var ors []string
	start := len(c.args)
	for _, rule := range rules {
		mark := len(c.args)
		cond := c.rule(r, rule, typ)
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
	if rule.In != nil {
		switch in := c.confined(r, t, rule.In); in {
		case accessDenied:
			return accessDenied
		case "":
		default:
			parts = append(parts, in)
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
	for _, o := range in.Owners {
		if known && typ == o.Type && c.row.id == o.ID {
			return ""
		}
		keys := compartmentKeys(in.Params[o.Type], typ)
		if typ != "" && typ != o.Type && len(keys) == 0 {
			continue
		}
		ot, oid := c.arg(o.Type), c.arg(o.ID)
		switch {
		case typ == o.Type && !known:
			ors = append(ors, r+".id = "+oid)
		case typ == "":
			ors = append(ors, fmt.Sprintf("(%s.type = %s AND %s.id = %s)", r, ot, r, oid))
		}
		if len(keys) == 0 {
			continue
		}
		x := c.alias("a")
		ors = append(ors, fmt.Sprintf("EXISTS (SELECT 1 FROM idx_reference %s WHERE %s.rid = %s.rid AND %s AND %s.type = %s AND %s.id = %s AND %s)",
			x, x, r, c.keysCond(x+".param", keys), x, ot, x, oid, c.local(x)))
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
	return c.admits(r, c.access.Read, typ)
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
		if (r.Type == "" || r.Type == typ) && len(r.Where) == 0 && r.In == nil {
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
