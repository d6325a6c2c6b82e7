package fhirpath

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/digitaleouder/ouder/conformance/r4"
)

// context is the state of one evaluation.
type context struct {
	m        *model
	root     Node
	resource map[string]any
}

func newContext(resource map[string]any) *context {
	m := loadModel()
	root := Node{Value: resource}
	if rt, ok := resource["resourceType"].(string); ok {
		root.Type = rt
		root.info = m.types[rt]
	}
	return &context{m: m, root: root, resource: resource}
}

// node is an expression tree node. focus is the input of the term the node stands in: the
// root resource at the top, each item inside where() and similar, which is also $this.
type node interface {
	eval(ctx *context, focus []Node) ([]Node, error)
}

// invocation is a node that can also follow a dot: input is the collection on the left of
// the dot, focus stays the term's focus (the context of function arguments).
type invocation interface {
	node
	invoke(ctx *context, focus, input []Node) ([]Node, error)
}

type literalNode struct{ nodes []Node }

func (n *literalNode) eval(*context, []Node) ([]Node, error) {
	return slices.Clone(n.nodes), nil // callers own the result
}

type rootNode struct{}

func (rootNode) eval(ctx *context, _ []Node) ([]Node, error) { return []Node{ctx.root}, nil }

type thisNode struct{}

func (thisNode) eval(_ *context, focus []Node) ([]Node, error) { return focus, nil }
func (thisNode) invoke(_ *context, _, input []Node) ([]Node, error) {
	return input, nil
}

// typeFilterNode is a type name at the start of a path: it keeps the items of that type.
type typeFilterNode struct{ name string }

func (n *typeFilterNode) eval(ctx *context, focus []Node) ([]Node, error) {
	return n.invoke(ctx, focus, focus)
}

func (n *typeFilterNode) invoke(_ *context, _, input []Node) ([]Node, error) {
	if len(input) == 1 { // the common case: the resource itself
		if input[0].isA(n.name) {
			return input, nil
		}
		return nil, nil
	}
	var out []Node
	for _, it := range input {
		if it.isA(n.name) {
			out = append(out, it)
		}
	}
	return out, nil
}

type memberNode struct{ name string }

func (n *memberNode) eval(ctx *context, focus []Node) ([]Node, error) {
	return n.invoke(ctx, focus, focus)
}

func (n *memberNode) invoke(ctx *context, _, input []Node) ([]Node, error) {
	var out []Node
	for _, it := range input {
		ctx.navigate(it, n.name, &out)
	}
	return out, nil
}

type dotNode struct {
	left  node
	right invocation
}

func (n *dotNode) eval(ctx *context, focus []Node) ([]Node, error) {
	in, err := n.left.eval(ctx, focus)
	if err != nil {
		return nil, err
	}
	return n.right.invoke(ctx, focus, in)
}

type indexNode struct{ left, index node }

func (n *indexNode) eval(ctx *context, focus []Node) ([]Node, error) {
	in, err := n.left.eval(ctx, focus)
	if err != nil {
		return nil, err
	}
	idx, err := n.index.eval(ctx, focus)
	if err != nil {
		return nil, err
	}
	if len(idx) == 0 {
		return nil, nil
	}
	i, err := singletonInt(idx, "indexer")
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= len(in) {
		return nil, nil
	}
	return []Node{in[i]}, nil
}

// unionNode is a chain of | operators, kept flat so that the long unions of multi-resource
// search parameters (one part per resource type) merge once.
type unionNode struct{ parts []node }

func newUnion(left, right node) *unionNode {
	if u, ok := left.(*unionNode); ok {
		return &unionNode{parts: append(u.parts, right)}
	}
	return &unionNode{parts: []node{left, right}}
}

func (n *unionNode) eval(ctx *context, focus []Node) ([]Node, error) {
	var all []Node
	nonEmpty := 0
	for _, p := range n.parts {
		r, err := p.eval(ctx, focus)
		if err != nil {
			return nil, err
		}
		if len(r) > 0 {
			nonEmpty++
			if all == nil {
				all = r
			} else {
				all = append(all[:len(all):len(all)], r...) // never append into a part's slice
			}
		}
	}
	if nonEmpty == 0 {
		return nil, nil
	}
	return distinct(all), nil
}

// distinct removes later duplicates (by =), as FHIRPath's | does.
func distinct(in []Node) []Node {
	if len(in) < 2 {
		return in
	}
	out := in[:1:1]
next:
	for _, it := range in[1:] {
		for _, o := range out {
			if valuesEqual(o.Value, it.Value, false) {
				continue next
			}
		}
		out = append(out, it)
	}
	return out
}

// operands evaluates the two sides of a binary operator on focus.
func operands(ctx *context, focus []Node, left, right node) (l, r []Node, err error) {
	if l, err = left.eval(ctx, focus); err != nil {
		return nil, nil, err
	}
	if r, err = right.eval(ctx, focus); err != nil {
		return nil, nil, err
	}
	return l, r, nil
}

type equalNode struct {
	left, right node
	not, equiv  bool
}

func (n *equalNode) eval(ctx *context, focus []Node) ([]Node, error) {
	l, r, err := operands(ctx, focus, n.left, n.right)
	if err != nil {
		return nil, err
	}
	var eq bool
	switch {
	case len(l) == 0 || len(r) == 0:
		if !n.equiv {
			return nil, nil // = and != on an empty operand are empty
		}
		eq = len(l) == len(r)
	case len(l) != len(r):
		eq = false
	default:
		eq = true
		for i := range l {
			if !valuesEqual(l[i].Value, r[i].Value, n.equiv) {
				eq = false
				break
			}
		}
	}
	return boolResult(eq != n.not), nil
}

type compareNode struct {
	op          string
	left, right node
}

func (n *compareNode) eval(ctx *context, focus []Node) ([]Node, error) {
	l, r, err := operands(ctx, focus, n.left, n.right)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 || len(r) == 0 {
		return nil, nil
	}
	if len(l) > 1 || len(r) > 1 {
		return nil, fmt.Errorf("%s: operands must be single items, got %d and %d", n.op, len(l), len(r))
	}
	c, ok := compareValues(l[0].Value, r[0].Value)
	if !ok {
		return nil, fmt.Errorf("%s: cannot compare %s with %s", n.op, kindOf(l[0]), kindOf(r[0]))
	}
	var res bool
	switch n.op {
	case "<":
		res = c < 0
	case ">":
		res = c > 0
	case "<=":
		res = c <= 0
	case ">=":
		res = c >= 0
	}
	return boolResult(res), nil
}

type logicNode struct {
	op          string
	left, right node
}

// eval implements the three-valued logic of FHIRPath § 6.5, where empty is unknown.
func (n *logicNode) eval(ctx *context, focus []Node) ([]Node, error) {
	lv, err := n.operand(ctx, focus, n.left)
	if err != nil {
		return nil, err
	}
	// Short cuts that do not depend on the right operand.
	switch {
	case n.op == "and" && lv == isFalse:
		return boolResult(false), nil
	case n.op == "or" && lv == isTrue:
		return boolResult(true), nil
	case n.op == "implies" && lv == isFalse:
		return boolResult(true), nil
	}
	rv, err := n.operand(ctx, focus, n.right)
	if err != nil {
		return nil, err
	}
	var res tristate
	switch n.op {
	case "and":
		switch {
		case rv == isFalse:
			res = isFalse
		case lv == isTrue && rv == isTrue:
			res = isTrue
		}
	case "or":
		switch {
		case rv == isTrue:
			res = isTrue
		case lv == isFalse && rv == isFalse:
			res = isFalse
		}
	case "xor":
		if lv != unknown && rv != unknown {
			res = boolState(lv != rv)
		}
	case "implies":
		switch {
		case rv == isTrue:
			res = isTrue
		case lv == isTrue && rv == isFalse:
			res = isFalse
		}
	}
	if res == unknown {
		return nil, nil
	}
	return boolResult(res == isTrue), nil
}

func (n *logicNode) operand(ctx *context, focus []Node, e node) (tristate, error) {
	v, err := e.eval(ctx, focus)
	if err != nil {
		return unknown, err
	}
	b, ok, err := singletonBool(v, n.op)
	if err != nil || !ok {
		return unknown, err
	}
	return boolState(b), nil
}

type tristate int

const (
	unknown tristate = iota
	isTrue
	isFalse
)

func boolState(b bool) tristate {
	if b {
		return isTrue
	}
	return isFalse
}

// membershipNode is `item in coll` and `coll contains item`.
type membershipNode struct{ item, coll node }

func (n *membershipNode) eval(ctx *context, focus []Node) ([]Node, error) {
	it, err := n.item.eval(ctx, focus)
	if err != nil {
		return nil, err
	}
	coll, err := n.coll.eval(ctx, focus)
	if err != nil {
		return nil, err
	}
	switch len(it) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("in/contains: the item must be single, got %d", len(it))
	}
	for _, c := range coll {
		if valuesEqual(c.Value, it[0].Value, false) {
			return boolResult(true), nil
		}
	}
	return boolResult(false), nil
}

// typeSpec is a type named in is, as and ofType.
type typeSpec struct {
	name   string
	system bool // a FHIRPath system type (String, DateTime, ...) rather than a FHIR type
}

// systemTypes are the FHIRPath system types that are not also FHIR type names.
var systemTypes = map[string]bool{
	"Boolean": true, "String": true, "Integer": true, "Decimal": true,
	"Date": true, "DateTime": true, "Time": true,
}

func newTypeSpec(ns, name string, pos int) (typeSpec, error) {
	switch {
	case ns != "System" && isTypeName(name):
		return typeSpec{name: name}, nil
	case ns != "FHIR" && systemTypes[name]:
		return typeSpec{name: name, system: true}, nil
	case ns == "System" && name == "Quantity":
		return typeSpec{name: name}, nil
	}
	if ns != "" {
		name = ns + "." + name
	}
	return typeSpec{}, fmt.Errorf("offset %d: unknown type %s", pos, name)
}

func isTypeName(name string) bool {
	_, ok := r4.Type(name)
	return ok
}

// match reports whether n is of the type. A FHIR type matches its subtypes (Age is a
// Quantity); a system type matches the FHIR primitives that convert to it (String matches
// code and uri).
func (t typeSpec) match(n Node) bool {
	if t.system {
		return systemType[n.Type] == t.name
	}
	return n.isA(t.name)
}

type isNode struct {
	input node
	spec  typeSpec
}

func (n *isNode) eval(ctx *context, focus []Node) ([]Node, error) {
	in, err := n.input.eval(ctx, focus)
	if err != nil {
		return nil, err
	}
	return isType(in, n.spec)
}

func isType(in []Node, spec typeSpec) ([]Node, error) {
	switch len(in) {
	case 0:
		return nil, nil
	case 1:
		return boolResult(spec.match(in[0])), nil
	}
	return nil, fmt.Errorf("is %s: expects a single item, got %d", spec.name, len(in))
}

type asNode struct {
	input node
	spec  typeSpec
}

func (n *asNode) eval(ctx *context, focus []Node) ([]Node, error) {
	in, err := n.input.eval(ctx, focus)
	if err != nil {
		return nil, err
	}
	return ofType(in, n.spec), nil
}

// ofType keeps the items of the type. FHIRPath makes `as` on several items an error; R4's
// own expressions apply it to repeating elements ((useContext.value as Quantity)), so it
// filters, as common servers do.
func ofType(in []Node, spec typeSpec) []Node {
	var out []Node
	for _, it := range in {
		if spec.match(it) {
			out = append(out, it)
		}
	}
	return out
}

// navigate appends the children called name of it to out. Choice elements are found under
// each of their JSON names; a resource in a Resource-typed element (contained,
// Bundle.entry.resource) takes the type of its resourceType.
func (ctx *context) navigate(it Node, name string, out *[]Node) {
	obj, ok := it.Value.(map[string]any)
	if !ok {
		return // primitives have no navigable children (extensions of primitives are ignored)
	}
	if it.info == nil {
		ctx.navigateUntyped(obj, name, out)
		return
	}
	c := it.info.children[name]
	if c == nil {
		if jc, ok := it.info.byJSON[name]; ok {
			t := &jc.c.types[jc.t]
			if v, ok := obj[t.json]; ok {
				ctx.appendValue(v, t.code, t.info, out)
			}
		}
		return
	}
	if !c.choice {
		t := &c.types[0]
		if v, ok := obj[t.json]; ok {
			ctx.appendValue(v, t.code, t.info, out)
		}
		return
	}
	if len(obj) < len(c.types) {
		// Fewer properties than possible types: look at the properties.
		first := len(*out)
		for k, v := range obj {
			if len(k) > len(name) && strings.HasPrefix(k, name) {
				for i := range c.types {
					if t := &c.types[i]; t.json == k {
						ctx.appendValue(v, t.code, t.info, out)
						break
					}
				}
			}
		}
		if len(*out)-first > 1 { // invalid JSON with two choices: keep a stable order
			found := (*out)[first:]
			slices.SortStableFunc(found, func(a, b Node) int {
				return slices.IndexFunc(c.types, func(t childType) bool { return t.code == a.Type }) -
					slices.IndexFunc(c.types, func(t childType) bool { return t.code == b.Type })
			})
		}
		return
	}
	for i := range c.types {
		t := &c.types[i]
		if v, ok := obj[t.json]; ok {
			ctx.appendValue(v, t.code, t.info, out)
		}
	}
}

// navigateUntyped navigates below an item of unknown type: the property itself or, failing
// that, properties that look like a choice (name followed by a capitalised type name).
func (ctx *context) navigateUntyped(obj map[string]any, name string, out *[]Node) {
	if v, ok := obj[name]; ok {
		ctx.appendValue(v, "", nil, out)
		return
	}
	var keys []string
	for k := range obj {
		if len(k) > len(name) && strings.HasPrefix(k, name) && k[len(name)] >= 'A' && k[len(name)] <= 'Z' {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		typ := k[len(name):]
		if lower := strings.ToLower(typ[:1]) + typ[1:]; ctx.m.types[lower] != nil && ctx.m.types[lower].primitive {
			typ = lower
		}
		ctx.appendValue(obj[k], typ, ctx.m.types[typ], out)
	}
}

func (ctx *context) appendValue(v any, code string, info *typeInfo, out *[]Node) {
	switch x := v.(type) {
	case nil:
	case []any:
		for _, e := range x {
			if e != nil {
				ctx.appendOne(e, code, info, out)
			}
		}
	default:
		ctx.appendOne(v, code, info, out)
	}
}

func (ctx *context) appendOne(v any, code string, info *typeInfo, out *[]Node) {
	if info == nil || info.resource {
		if m, ok := v.(map[string]any); ok {
			if rt, ok := m["resourceType"].(string); ok {
				if ti := ctx.m.types[rt]; ti != nil && ti.resource {
					code, info = rt, ti
				}
			}
		}
	}
	*out = append(*out, Node{Value: v, Type: code, info: info})
}

func boolResult(b bool) []Node {
	return []Node{{Value: b, Type: "boolean"}}
}

// singletonBool converts a collection to a boolean as FHIRPath § 4.5 does: empty is
// unknown (ok false), a single boolean is itself, any other single item is true.
func singletonBool(in []Node, what string) (value, ok bool, err error) {
	switch len(in) {
	case 0:
		return false, false, nil
	case 1:
		if b, isBool := in[0].Value.(bool); isBool {
			return b, true, nil
		}
		return true, true, nil
	}
	return false, false, fmt.Errorf("%s: expects a single boolean, got %d items", what, len(in))
}

func singletonString(in []Node, what string) (string, bool, error) {
	switch len(in) {
	case 0:
		return "", false, nil
	case 1:
		if s, ok := in[0].Value.(string); ok {
			return s, true, nil
		}
		return "", false, fmt.Errorf("%s: expects a string, got %s", what, kindOf(in[0]))
	}
	return "", false, fmt.Errorf("%s: expects a single string, got %d items", what, len(in))
}

func singletonInt(in []Node, what string) (int, error) {
	if len(in) != 1 {
		return 0, fmt.Errorf("%s: expects a single integer, got %d items", what, len(in))
	}
	n, ok := in[0].AsNumber()
	if !ok {
		return 0, fmt.Errorf("%s: expects an integer, got %s", what, kindOf(in[0]))
	}
	i, err := n.Int64()
	if err != nil {
		return 0, fmt.Errorf("%s: expects an integer, got %s", what, n)
	}
	return int(i), nil
}

func kindOf(n Node) string {
	if n.Type != "" {
		return n.Type
	}
	switch n.Value.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", n.Value)
}

// valuesEqual implements = (and ~ when equiv) on JSON values: primitives by value (numbers
// numerically), complex values property by property.
func valuesEqual(a, b any, equiv bool) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		if !ok {
			return false
		}
		if equiv {
			return strings.EqualFold(strings.Join(strings.Fields(x), " "), strings.Join(strings.Fields(y), " "))
		}
		return x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case json.Number, float64:
		c, ok := compareNumbers(a, b)
		return ok && c == 0
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !valuesEqual(v, w, equiv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !valuesEqual(x[i], y[i], equiv) {
				return false
			}
		}
		return true
	case nil:
		return b == nil
	}
	return false
}

// compareValues orders two strings or two numbers.
func compareValues(a, b any) (int, bool) {
	if x, ok := a.(string); ok {
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	}
	return compareNumbers(a, b)
}

func compareNumbers(a, b any) (int, bool) {
	x, ok1 := toRat(a)
	y, ok2 := toRat(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	return x.Cmp(y), true
}

func toRat(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case json.Number:
		return new(big.Rat).SetString(string(x))
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(x) == nil {
			return nil, false
		}
		return r, true
	}
	return nil, false
}
