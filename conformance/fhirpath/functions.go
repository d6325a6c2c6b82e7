package fhirpath

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// callNode is a function invocation.
type callNode struct {
	name string
	args []node
	fn   funcImpl
	re   *regexp.Regexp // matches() with a literal pattern, compiled once
}

// funcImpl evaluates a function on its input; focus is the context its arguments are
// evaluated in.
type funcImpl func(ctx *context, c *callNode, focus, input []Node) ([]Node, error)

type funcDef struct {
	minArgs, maxArgs int
	impl             funcImpl
}

var functions = map[string]funcDef{
	"where":      {1, 1, fnWhere},
	"select":     {1, 1, fnSelect},
	"exists":     {0, 1, fnExists},
	"empty":      {0, 0, fnEmpty},
	"not":        {0, 0, fnNot},
	"first":      {0, 0, fnFirst},
	"last":       {0, 0, fnLast},
	"tail":       {0, 0, fnTail},
	"single":     {0, 0, fnSingle},
	"count":      {0, 0, fnCount},
	"distinct":   {0, 0, fnDistinct},
	"hasValue":   {0, 0, fnHasValue},
	"children":   {0, 0, fnChildren},
	"ofType":     {1, 1, fnOfType},
	"as":         {1, 1, fnOfType},
	"is":         {1, 1, fnIs},
	"resolve":    {0, 0, fnResolve},
	"extension":  {1, 1, fnExtension},
	"startsWith": {1, 1, stringFn(strings.HasPrefix)},
	"endsWith":   {1, 1, stringFn(strings.HasSuffix)},
	"contains":   {1, 1, stringFn(strings.Contains)},
	"matches":    {1, 1, fnMatches},
	"lower":      {0, 0, fnLower},
	"upper":      {0, 0, fnUpper},
	"length":     {0, 0, fnLength},
}

// unsupported names functions that Compile rejects with a reason rather than as unknown.
var unsupported = map[string]string{
	"memberOf":          "it needs a terminology service to expand the value set",
	"subsumes":          "it needs a terminology service",
	"subsumedBy":        "it needs a terminology service",
	"conformsTo":        "it needs profile validation",
	"htmlChecks":        "it needs narrative validation",
	"now":               "results would depend on the time of indexing",
	"today":             "results would depend on the time of indexing",
	"timeOfDay":         "results would depend on the time of indexing",
	"trace":             "it has side effects",
	"descendants":       "its result is unbounded and no R4 search parameter needs it",
	"repeat":            "no R4 search parameter needs it",
	"aggregate":         "no R4 search parameter needs it",
	"iif":               "no R4 search parameter needs it",
	"elementDefinition": "no R4 search parameter needs it",
}

func newCall(name string, args []node, pos int) (invocation, error) {
	def, ok := functions[name]
	if !ok {
		if why, ok := unsupported[name]; ok {
			return nil, fmt.Errorf("offset %d: function %s() is not supported: %s", pos, name, why)
		}
		return nil, fmt.Errorf("offset %d: unknown function %s()", pos, name)
	}
	if len(args) < def.minArgs || len(args) > def.maxArgs {
		return nil, fmt.Errorf("offset %d: %s() takes %d to %d arguments, got %d", pos, name, def.minArgs, def.maxArgs, len(args))
	}
	c := &callNode{name: name, args: args, fn: def.impl}
	if name == "matches" {
		if lit, ok := args[0].(*literalNode); ok && len(lit.nodes) == 1 {
			s, ok := lit.nodes[0].Value.(string)
			if !ok {
				return nil, fmt.Errorf("offset %d: matches() needs a string pattern", pos)
			}
			re, err := regexp.Compile(s)
			if err != nil {
				return nil, fmt.Errorf("offset %d: matches(): %w", pos, err)
			}
			c.re = re
		}
	}
	return c, nil
}

func (c *callNode) eval(ctx *context, focus []Node) ([]Node, error) {
	return c.invoke(ctx, focus, focus)
}

func (c *callNode) invoke(ctx *context, focus, input []Node) ([]Node, error) {
	out, err := c.fn(ctx, c, focus, input)
	if err != nil {
		return nil, fmt.Errorf("%s(): %w", c.name, err)
	}
	return out, nil
}

// typeArgNode is the type argument of is(), as() and ofType().
type typeArgNode struct{ spec typeSpec }

func (n *typeArgNode) eval(*context, []Node) ([]Node, error) {
	return nil, fmt.Errorf("a type name is not a value: %s", n.spec.name)
}

// each evaluates an argument with every input item as its focus ($this).
func each(ctx *context, arg node, input []Node, f func(it Node, res []Node) error) error {
	one := make([]Node, 1)
	for _, it := range input {
		one[0] = it
		res, err := arg.eval(ctx, one)
		if err != nil {
			return err
		}
		if err := f(it, res); err != nil {
			return err
		}
	}
	return nil
}

func fnWhere(ctx *context, c *callNode, _, input []Node) ([]Node, error) {
	var out []Node
	err := each(ctx, c.args[0], input, func(it Node, res []Node) error {
		b, ok, err := singletonBool(res, "criteria")
		if ok && b {
			out = append(out, it)
		}
		return err
	})
	return out, err
}

func fnSelect(ctx *context, c *callNode, _, input []Node) ([]Node, error) {
	var out []Node
	err := each(ctx, c.args[0], input, func(_ Node, res []Node) error {
		out = append(out, res...)
		return nil
	})
	return out, err
}

func fnExists(ctx *context, c *callNode, focus, input []Node) ([]Node, error) {
	if len(c.args) == 1 {
		var err error
		if input, err = fnWhere(ctx, c, focus, input); err != nil {
			return nil, err
		}
	}
	return boolResult(len(input) > 0), nil
}

func fnEmpty(_ *context, _ *callNode, _, input []Node) ([]Node, error) {
	return boolResult(len(input) == 0), nil
}

func fnNot(_ *context, _ *callNode, _, input []Node) ([]Node, error) {
	b, ok, err := singletonBool(input, "not")
	if err != nil || !ok {
		return nil, err
	}
	return boolResult(!b), nil
}

func fnFirst(_ *context, _ *callNode, _, input []Node) ([]Node, error) {
	if len(input) == 0 {
		return nil, nil
	}
	return input[:1:1], nil
}

func fnLast(_ *context, _ *callNode, _, input []Node) ([]Node, error) {
	if len(input) == 0 {
		return nil, nil
	}
	return input[len(input)-1:], nil
}

func fnTail(_ *context, _ *callNode, _, input []Node) ([]Node, error) {
	if len(input) < 2 {
		return nil, nil
	}
	return input[1:], nil
}

func fnSingle(_ *context, _ *callNode, _, input []Node) ([]Node, error) {
	if len(input) > 1 {
		return nil, fmt.Errorf("expects at most one item, got %d", len(input))
	}
	return input, nil
}

func fnCount(_ *context, _ *callNode, _, input []Node) ([]Node, error) {
	return []Node{{Value: jsonInt(len(input)), Type: "integer"}}, nil
}

func fnDistinct(_ *context, _ *callNode, _, input []Node) ([]Node, error) {
	return distinct(slices.Clone(input)), nil
}

func fnHasValue(_ *context, _ *callNode, _, input []Node) ([]Node, error) {
	if len(input) != 1 {
		return boolResult(false), nil
	}
	_, complex := input[0].Value.(map[string]any)
	return boolResult(!complex), nil
}

func fnChildren(ctx *context, _ *callNode, _, input []Node) ([]Node, error) {
	var out []Node
	for _, it := range input {
		if it.info == nil {
			continue
		}
		for _, name := range sortedChildNames(it.info) {
			ctx.navigate(it, name, &out)
		}
	}
	return out, nil
}

func fnOfType(_ *context, c *callNode, _, input []Node) ([]Node, error) {
	return ofType(input, c.args[0].(*typeArgNode).spec), nil
}

func fnIs(_ *context, c *callNode, _, input []Node) ([]Node, error) {
	return isType(input, c.args[0].(*typeArgNode).spec)
}

func fnExtension(ctx *context, c *callNode, focus, input []Node) ([]Node, error) {
	arg, err := c.args[0].eval(ctx, focus)
	if err != nil {
		return nil, err
	}
	url, ok, err := singletonString(arg, "url")
	if err != nil || !ok {
		return nil, err
	}
	ext := ctx.m.types["Extension"]
	var out []Node
	for _, it := range input {
		obj, ok := it.Value.(map[string]any)
		if !ok {
			continue // extensions of primitives (in _name) are not supported
		}
		list, _ := obj["extension"].([]any)
		for _, e := range list {
			if em, ok := e.(map[string]any); ok && em["url"] == url {
				out = append(out, Node{Value: em, Type: "Extension", info: ext})
			}
		}
	}
	return out, nil
}

// stringFn builds startsWith, endsWith and contains: the input must be a single string;
// empty input or argument gives empty.
func stringFn(f func(s, arg string) bool) funcImpl {
	return func(ctx *context, c *callNode, focus, input []Node) ([]Node, error) {
		s, ok, err := singletonString(input, "input")
		if err != nil || !ok {
			return nil, err
		}
		argNodes, err := c.args[0].eval(ctx, focus)
		if err != nil {
			return nil, err
		}
		arg, ok, err := singletonString(argNodes, "argument")
		if err != nil || !ok {
			return nil, err
		}
		return boolResult(f(s, arg)), nil
	}
}

func fnMatches(ctx *context, c *callNode, focus, input []Node) ([]Node, error) {
	s, ok, err := singletonString(input, "input")
	if err != nil || !ok {
		return nil, err
	}
	re := c.re
	if re == nil {
		argNodes, err := c.args[0].eval(ctx, focus)
		if err != nil {
			return nil, err
		}
		pat, ok, err := singletonString(argNodes, "pattern")
		if err != nil || !ok {
			return nil, err
		}
		if re, err = regexp.Compile(pat); err != nil {
			return nil, err
		}
	}
	return boolResult(re.MatchString(s)), nil
}

func fnLower(_ *context, _ *callNode, _, input []Node) ([]Node, error) {
	s, ok, err := singletonString(input, "input")
	if err != nil || !ok {
		return nil, err
	}
	return []Node{{Value: strings.ToLower(s), Type: "string"}}, nil
}

func fnUpper(_ *context, _ *callNode, _, input []Node) ([]Node, error) {
	s, ok, err := singletonString(input, "input")
	if err != nil || !ok {
		return nil, err
	}
	return []Node{{Value: strings.ToUpper(s), Type: "string"}}, nil
}

func fnLength(_ *context, _ *callNode, _, input []Node) ([]Node, error) {
	s, ok, err := singletonString(input, "input")
	if err != nil || !ok {
		return nil, err
	}
	return []Node{{Value: jsonInt(len([]rune(s))), Type: "integer"}}, nil
}

// fnResolve: see Expr.Evaluate for what resolve() gives without fetching.
func fnResolve(ctx *context, _ *callNode, _, input []Node) ([]Node, error) {
	var out []Node
	for _, it := range input {
		if n, ok := ctx.resolve(it); ok {
			out = append(out, n)
		}
	}
	return out, nil
}

func (ctx *context) resolve(it Node) (Node, bool) {
	var ref, typeHint string
	switch v := it.Value.(type) {
	case map[string]any:
		ref, _ = v["reference"].(string)
		typeHint, _ = v["type"].(string)
	case string:
		ref = v
	default:
		return Node{}, false
	}
	if ref != "" {
		if id, ok := strings.CutPrefix(ref, "#"); ok {
			return ctx.contained(id)
		}
		if n, ok := ctx.bundleEntry(ref); ok {
			return n, true
		}
	}
	typ, id := ctx.parseReference(ref)
	if typ == "" && typeHint != "" {
		if t := typeHint[strings.LastIndexByte(typeHint, '/')+1:]; ctx.isResourceType(t) {
			typ = t
		}
	}
	if typ == "" {
		return Node{}, false
	}
	stub := map[string]any{"resourceType": typ}
	if id != "" {
		stub["id"] = id
	}
	return Node{Value: stub, Type: typ, info: ctx.m.types[typ]}, true
}

func (ctx *context) isResourceType(name string) bool {
	ti := ctx.m.types[name]
	return ti != nil && ti.resource && !ti.abstract
}

// parseReference returns the type and id of a literal reference: Patient/123,
// Patient/123/_history/1, https://example.org/fhir/Patient/123, or a conditional reference
// Patient?identifier=x (no id). It returns "" when the type cannot be told (urn:uuid:...).
func (ctx *context) parseReference(ref string) (typ, id string) {
	if i := strings.IndexByte(ref, '?'); i >= 0 {
		if t := ref[:i]; ctx.isResourceType(t) {
			return t, ""
		}
		ref = ref[:i]
	}
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndexByte(ref, '/')
	if slash <= 0 {
		return "", ""
	}
	id = ref[slash+1:]
	rest := ref[:slash]
	typ = rest[strings.LastIndexByte(rest, '/')+1:]
	if !ctx.isResourceType(typ) || id == "" {
		return "", ""
	}
	return typ, id
}

func (ctx *context) contained(id string) (Node, bool) {
	if id == "" {
		return ctx.root, true // "#" refers to the containing resource
	}
	list, _ := ctx.resource["contained"].([]any)
	for _, c := range list {
		if m, ok := c.(map[string]any); ok && m["id"] == id {
			var out []Node
			ctx.appendOne(m, "Resource", ctx.m.types["Resource"], &out)
			return out[0], true
		}
	}
	return Node{}, false
}

func (ctx *context) bundleEntry(ref string) (Node, bool) {
	if ctx.root.Type != "Bundle" {
		return Node{}, false
	}
	entries, _ := ctx.resource["entry"].([]any)
	for _, e := range entries {
		em, ok := e.(map[string]any)
		if !ok || em["fullUrl"] != ref {
			continue
		}
		if r, ok := em["resource"].(map[string]any); ok {
			var out []Node
			ctx.appendOne(r, "Resource", ctx.m.types["Resource"], &out)
			return out[0], true
		}
	}
	return Node{}, false
}

func jsonInt(i int) json.Number { return json.Number(strconv.Itoa(i)) }

// sortedChildNames returns the element names of a type in a stable order.
func sortedChildNames(ti *typeInfo) []string {
	names := make([]string, 0, len(ti.children))
	for n := range ti.children {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
