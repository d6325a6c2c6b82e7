package smart

import (
	"net/url"
	"slices"
)

// Narrow returns what requested and granted have in common: the scopes a
// token may carry when a client asks for requested and is entitled to
// granted (the client's registration, the user's consent, or the scopes of
// the token a refresh token was issued with). It implements the rule that a
// scope never widens what its holder may do: for every level, type,
// operation and resource, the result permits something only if both
// requested and granted permit it.
//
// A clinical scope is intersected with every granted scope of the same level:
// the more specific resource type wins ("*" yields to a named type), the
// permissions are those in both, and the constraints of both apply together
// (their parameters are joined, so a resource must match each). Levels are
// never mixed: user/*.rs does not grant patient/Observation.rs. A non-clinical
// scope is kept when granted holds the same name. The result is simplified:
// scopes with the same level, type and constraints are merged, and a scope
// that another one in the result already covers is left out. A requested v1
// scope that survives with its meaning intact is given back in v1 form.
func Narrow(requested, granted Scopes) Scopes {
	var out Scopes
	for _, r := range requested {
		if !r.Clinical() {
			if granted.Has(r.Name) && !out.Has(r.Name) {
				out = append(out, Scope{Name: r.Name})
			}
			continue
		}
		for _, g := range granted {
			if x, ok := intersect(r, g); ok {
				out = append(out, x)
			}
		}
	}
	return simplify(out)
}

// intersect returns the scope that grants exactly what both r and g grant,
// and false when they share nothing.
func intersect(r, g Scope) (Scope, bool) {
	if !r.Clinical() || r.Kind != g.Kind {
		return Scope{}, false
	}
	typ := r.Type
	switch {
	case r.Type == "*":
		typ = g.Type
	case g.Type == "*" || g.Type == r.Type:
	default:
		return Scope{}, false
	}
	ops := r.Ops & g.Ops & allOps
	if ops == 0 {
		return Scope{}, false
	}
	return Scope{Kind: r.Kind, Type: typ, Ops: ops, Params: joinParams(r.Params, g.Params), v1: r.v1}, true
}

// joinParams returns the constraint that holds where both a and b hold:
// every parameter of both (repeated search parameters are ANDed).
func joinParams(a, b url.Values) url.Values {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := cloneParams(a)
	if out == nil {
		out = url.Values{}
	}
	for k, vs := range b {
		for _, v := range vs {
			if !slices.Contains(out[k], v) {
				out[k] = append(out[k], v)
			}
		}
	}
	for _, vs := range out {
		slices.Sort(vs)
	}
	return out
}

// simplify merges clinical scopes that differ only in their permissions and
// drops clinical scopes that another scope of ss covers. Neither changes what
// ss permits.
func simplify(ss Scopes) Scopes {
	var merged Scopes
	index := map[string]int{}
	for _, s := range ss {
		if !s.Clinical() {
			merged = append(merged, s)
			continue
		}
		key := s.Kind.String() + "/" + s.Type + "?" + paramsKey(s.Params)
		if i, ok := index[key]; ok {
			merged[i].Ops |= s.Ops
			merged[i].v1 = merged[i].v1 && s.v1
			continue
		}
		index[key] = len(merged)
		merged = append(merged, s)
	}
	var out Scopes
	for i, s := range merged {
		covered := false
		for j, t := range merged {
			if i != j && s.Clinical() && covers(t, s) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, s)
		}
	}
	return out
}

// covers reports whether t permits everything s permits: same level, a type
// at least as wide, at least the same permissions, and constraints that are
// a subset of those of s (fewer parameters select more resources).
func covers(t, s Scope) bool {
	if !t.Clinical() || t.Kind != s.Kind || (t.Type != "*" && t.Type != s.Type) || s.Ops&^t.Ops != 0 {
		return false
	}
	for k, vs := range t.Params {
		for _, v := range vs {
			if !slices.Contains(s.Params[k], v) {
				return false
			}
		}
	}
	return true
}
