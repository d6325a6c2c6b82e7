package fhirpath

import (
	"maps"
	"slices"
	"testing"

	"github.com/digitaleouder/ouder/conformance/r4"
)

// notIndexable lists the R4 search parameters whose values cannot be extracted by
// evaluating an expression, with the reason. TestSearchParameterExpressions fails when an
// entry is missing or no longer applies.
var notIndexable = map[string]string{
	"DomainResource-text": "_text has no expression: it is a full-text search of the narrative (text.div), served by a text index over the stored resource",
	"Resource-content":    "_content has no expression: it is a full-text search of the whole resource, served by a text index over the stored resource",
	"Resource-query":      "_query has no expression: it names a custom query to run, not a value to index",
	"Location-near":       "type special: its expression (Location.position) compiles and is evaluated below, but the search is a distance from a point, which needs latitude/longitude columns and a distance computation rather than the generic index rows",
}

// resourceTypesFor expands the bases of a search parameter (Resource, DomainResource) to
// concrete resource types.
func resourceTypesFor(bases []string) []string {
	var out []string
	for _, rt := range r4.ResourceTypes() {
		for _, b := range bases {
			if isA(rt, b) {
				out = append(out, rt)
				break
			}
		}
	}
	return out
}

// typeFilters returns the leading type names of an expression tree.
func typeFilters(n node) []*typeFilterNode {
	var out []*typeFilterNode
	var walk func(node)
	walk = func(n node) {
		switch n := n.(type) {
		case *typeFilterNode:
			out = append(out, n)
		case *dotNode:
			walk(n.left)
			walk(n.right)
		case *indexNode:
			walk(n.left)
			walk(n.index)
		case *unionNode:
			for _, p := range n.parts {
				walk(p)
			}
		case *equalNode:
			walk(n.left)
			walk(n.right)
		case *compareNode:
			walk(n.left)
			walk(n.right)
		case *logicNode:
			walk(n.left)
			walk(n.right)
		case *membershipNode:
			walk(n.item)
			walk(n.coll)
		case *isNode:
			walk(n.input)
		case *asNode:
			walk(n.input)
		case *callNode:
			for _, a := range n.args {
				walk(a)
			}
		}
	}
	walk(n)
	return out
}

// TestSearchParameterExpressions is the proof that the evaluator covers R4: every search
// parameter expression (and composite component) compiles, fits the R4 definitions for
// every base type (no unknown element, no type test that can never match, no part for a
// type outside the bases), and evaluates without error on every HL7 example of its base
// types, yielding only values of a known FHIR type.
func TestSearchParameterExpressions(t *testing.T) {
	t.Parallel()
	ex := examples(t)
	params := r4.SearchParams()
	if len(params) < 1300 {
		t.Fatalf("only %d search parameters", len(params))
	}
	listed := map[string]bool{}
	var evaluations, withValues, withoutExamples, compiled int
	paramsWithValues := map[string]bool{}
	for _, p := range params {
		reason, inTable := notIndexable[p.ID]
		if inTable {
			listed[p.ID] = true
			if reason == "" {
				t.Errorf("%s: notIndexable entry without a reason", p.ID)
			}
		}
		switch {
		case p.Expression == "" || p.Type == "special":
			if !inTable {
				t.Errorf("%s (%s, type %s) has no expression or is special; add it to notIndexable with the reason", p.ID, p.Code, p.Type)
			}
		case inTable:
			t.Errorf("%s is in notIndexable but has an expression and type %s: remove the entry", p.ID, p.Type)
		}
		if p.Expression == "" {
			continue
		}
		e, err := Compile(p.Expression)
		if err != nil {
			t.Errorf("%s: %v", p.ID, err)
			continue
		}
		compiled++
		comps := make([]*Expr, len(p.Component))
		for i, c := range p.Component {
			if comps[i], err = Compile(c.Expression); err != nil {
				t.Errorf("%s component %d: %v", p.ID, i, err)
			}
		}
		if slices.Contains(comps, nil) {
			continue
		}

		chk := newChecker()
		bases := resourceTypesFor(p.Base)
		if len(bases) == 0 {
			t.Errorf("%s: no resource type for bases %v", p.ID, p.Base)
		}
		for _, rt := range bases {
			types, err := chk.check(e, rt, nil)
			if err != nil {
				t.Errorf("%s: %v", p.ID, err)
				continue
			}
			if len(types) == 0 {
				t.Errorf("%s: %q yields nothing on %s, one of its bases", p.ID, p.Expression, rt)
			}
			for i, c := range comps {
				if len(types) == 0 {
					break
				}
				if _, err := chk.check(c, rt, types); err != nil {
					t.Errorf("%s component %d: %v", p.ID, i, err)
				}
			}
			if len(ex[rt]) == 0 {
				withoutExamples++
			}
			for _, x := range ex[rt] {
				evaluations++
				out, err := e.Evaluate(x.resource)
				if err != nil {
					t.Errorf("%s on %s: %v", p.ID, x.name, err)
					continue
				}
				if len(out) > 0 {
					withValues++
					paramsWithValues[p.ID] = true
				}
				for _, n := range out {
					if n.Type == "" {
						t.Errorf("%s on %s: value of unknown type: %v", p.ID, x.name, n.Value)
					}
				}
				for _, item := range out {
					for i, c := range comps {
						if _, err := c.EvaluateAt(x.resource, item); err != nil {
							t.Errorf("%s component %d on %s: %v", p.ID, i, x.name, err)
						}
					}
				}
			}
		}
		for _, tf := range typeFilters(e.root) {
			if !chk.matched[tf] {
				t.Errorf("%s: the part for %s never applies: bases are %v", p.ID, tf.name, p.Base)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(notIndexable)) {
		if !listed[id] {
			t.Errorf("notIndexable lists %s, which is not an R4 search parameter: remove it", id)
		}
	}
	t.Logf("%d of %d search parameters compiled; %d evaluations on examples, %d with values; %d parameters gave values; %d (parameter, type) pairs without examples",
		compiled, len(params), evaluations, withValues, len(paramsWithValues), withoutExamples)
}
