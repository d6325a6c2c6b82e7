package fhirpath

import (
	"fmt"
	"strings"
)

// This file holds a static checker used by the tests: it infers the types an expression
// can produce from a given root type and reports path steps that name no element, type
// tests that can never match, and leading type names that never apply. It proves that the
// search parameter expressions fit the R4 definitions, not just that they run.

// tref is a possible type of an item: a named type with what it contains, or unknown
// (below resolve()).
type tref struct {
	name string
	info *typeInfo
}

var unknownType = tref{}

type checker struct {
	m       *model
	root    tref
	matched map[*typeFilterNode]bool // type filters that applied to some root
}

func newChecker() *checker {
	return &checker{m: loadModel(), matched: map[*typeFilterNode]bool{}}
}

// check infers the result types of e evaluated on focus (nil means the root).
func (c *checker) check(e *Expr, root string, focus []tref) ([]tref, error) {
	c.root = tref{root, c.m.types[root]}
	if focus == nil {
		focus = []tref{c.root}
	}
	out, err := c.infer(e.root, focus, focus)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", e, root, err)
	}
	return out, nil
}

func typeNames(ts []tref) string {
	var names []string
	for _, t := range ts {
		if t.name == "" {
			names = append(names, "?")
		} else {
			names = append(names, t.name)
		}
	}
	return strings.Join(names, ",")
}

var booleanType = []tref{{name: "boolean"}}

func (c *checker) infer(n node, focus, input []tref) ([]tref, error) {
	switch n := n.(type) {
	case *literalNode:
		var out []tref
		for _, l := range n.nodes {
			out = append(out, tref{name: l.Type})
		}
		return out, nil
	case rootNode, *rootNode:
		return []tref{c.root}, nil
	case thisNode, *thisNode:
		return input, nil
	case *typeFilterNode:
		var out []tref
		for _, t := range input {
			if t.name == "" || isA(t.name, n.name) {
				out = append(out, t)
				c.matched[n] = true
			}
		}
		return out, nil
	case *memberNode:
		if len(input) == 0 {
			return nil, nil
		}
		var out []tref
		found := false
		for _, t := range input {
			if t.info == nil {
				if t.name == "" || !isTypeName(t.name) {
					out = append(out, unknownType) // unknown: anything goes
					found = true
				}
				continue
			}
			ch := t.info.children[n.name]
			if ch == nil {
				if jc, ok := t.info.byJSON[n.name]; ok {
					ct := jc.c.types[jc.t]
					out = append(out, tref{ct.code, ct.info})
					found = true
				}
				continue
			}
			found = true
			for _, ct := range ch.types {
				if ct.info != nil && ct.info.resource && ct.info.abstract {
					out = append(out, tref{ct.code, ct.info}, unknownType) // any resource
					continue
				}
				out = append(out, tref{ct.code, ct.info})
			}
		}
		if !found {
			return nil, fmt.Errorf("no element %q in %s", n.name, typeNames(input))
		}
		return out, nil
	case *dotNode:
		l, err := c.infer(n.left, focus, input)
		if err != nil {
			return nil, err
		}
		if len(l) == 0 {
			return nil, nil // a part for another type
		}
		return c.infer(n.right, focus, l)
	case *indexNode:
		if _, err := c.infer(n.index, focus, input); err != nil {
			return nil, err
		}
		return c.infer(n.left, focus, input)
	case *unionNode:
		var out []tref
		for _, p := range n.parts {
			r, err := c.infer(p, focus, input)
			if err != nil {
				return nil, err
			}
			out = append(out, r...)
		}
		return out, nil
	case *equalNode:
		return c.both(n.left, n.right, input)
	case *compareNode:
		return c.both(n.left, n.right, input)
	case *logicNode:
		return c.both(n.left, n.right, input)
	case *membershipNode:
		return c.both(n.item, n.coll, input)
	case *isNode:
		if _, err := c.infer(n.input, focus, input); err != nil {
			return nil, err
		}
		return booleanType, nil
	case *asNode:
		in, err := c.infer(n.input, focus, input)
		if err != nil {
			return nil, err
		}
		return c.filter(in, n.spec)
	case *callNode:
		return c.call(n, input)
	}
	return nil, fmt.Errorf("checker: unexpected node %T", n)
}

func (c *checker) both(l, r node, input []tref) ([]tref, error) {
	if _, err := c.infer(l, input, input); err != nil {
		return nil, err
	}
	if _, err := c.infer(r, input, input); err != nil {
		return nil, err
	}
	return booleanType, nil
}

func (c *checker) filter(in []tref, spec typeSpec) ([]tref, error) {
	if len(in) == 0 {
		return nil, nil
	}
	var out []tref
	for _, t := range in {
		switch {
		case t.name == "":
			out = append(out, tref{spec.name, c.m.types[spec.name]})
		case spec.match(Node{Type: t.name}):
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s never matches %s", spec.name, typeNames(in))
	}
	return out, nil
}

func (c *checker) call(n *callNode, input []tref) ([]tref, error) {
	switch n.name {
	case "where", "exists":
		for _, a := range n.args {
			if _, err := c.infer(a, input, input); err != nil {
				return nil, err
			}
		}
		if n.name == "exists" {
			return booleanType, nil
		}
		return input, nil
	case "select":
		return c.infer(n.args[0], input, input)
	case "ofType", "as":
		return c.filter(input, n.args[0].(*typeArgNode).spec)
	case "resolve":
		return []tref{unknownType}, nil
	case "extension":
		return []tref{{"Extension", c.m.types["Extension"]}}, nil
	case "first", "last", "tail", "single", "distinct":
		return input, nil
	case "count", "length":
		return []tref{{name: "integer"}}, nil
	case "lower", "upper":
		return []tref{{name: "string"}}, nil
	case "children":
		return []tref{unknownType}, nil
	}
	return booleanType, nil
}
