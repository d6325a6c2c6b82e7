package smart

import (
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Grant is what a set of scopes permits for one kind, resource type and
// operation. The zero Grant denies.
//
// When Allowed is true and Filters is empty, the scopes put no constraint on
// the resources. When Filters is not empty, a resource is covered if it
// matches at least one of them (OR across scopes); each filter is a FHIR
// search on the resource type whose parameters all have to match (AND, the
// usual meaning of several search parameters). The store compiles them with
// the search parser in strict mode: a filter it cannot compile must deny,
// never be dropped, or the grant would widen. For reads and searches a
// filter selects the resources returned; for create and update the resource
// written must match it, and for update and delete the stored version too.
type Grant struct {
	Allowed bool
	Filters []url.Values
}

// Allows reports what ss permits for operation op on resources of type typ
// at level k. Only scopes of that level count: the policy decision point asks
// once per level the caller has (patient scopes within the patient in
// context, user scopes within the user's own access, system scopes within the
// client's policy) and combines the answers.
//
// A scope without constraints for the type and operation wins over
// constrained ones; otherwise the constraints of every matching scope are
// returned (deduplicated, as copies the caller may keep). typ is a concrete
// resource type; "*" matches only wildcard scopes. op must be exactly one
// permission: any other value, an empty typ and the zero Kind are denied.
func (ss Scopes) Allows(k Kind, typ string, op Op) Grant {
	if k == 0 || typ == "" || !op.single() {
		return Grant{}
	}
	var g Grant
	seen := map[string]bool{}
	for _, s := range ss {
		if s.Kind != k || s.Ops&op == 0 || (s.Type != "*" && s.Type != typ) {
			continue
		}
		if len(s.Params) == 0 {
			return Grant{Allowed: true}
		}
		key := paramsKey(s.Params)
		if seen[key] {
			continue
		}
		seen[key] = true
		g.Allowed = true
		g.Filters = append(g.Filters, cloneParams(s.Params))
	}
	return g
}

// Types returns the resource types that some scope of level k grants op on,
// sorted, and whether a wildcard scope grants it on every type. The grant on
// each type may still be constrained: ask Allows for the filters. It serves
// searches across types, which must be limited to the types returned (or all
// types, when all is true) before anything is read.
func (ss Scopes) Types(k Kind, op Op) (types []string, all bool) {
	if k == 0 || !op.single() {
		return nil, false
	}
	set := map[string]bool{}
	for _, s := range ss {
		if s.Kind != k || s.Ops&op == 0 {
			continue
		}
		if s.Type == "*" {
			all = true
			continue
		}
		set[s.Type] = true
	}
	if len(set) == 0 {
		return nil, all
	}
	return slices.Sorted(maps.Keys(set)), all
}

// paramsKey is a canonical text of params, for comparing constraints.
func paramsKey(p url.Values) string {
	var b strings.Builder
	writeParams(&b, p)
	return b.String()
}

func cloneParams(p url.Values) url.Values {
	if p == nil {
		return nil
	}
	out := make(url.Values, len(p))
	for k, vs := range p {
		out[k] = slices.Clone(vs)
	}
	return out
}
