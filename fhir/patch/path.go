package patch

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/digitaleouder/ouder/conformance/fhirpath"
	"github.com/digitaleouder/ouder/conformance/r4"
)

// A FHIRPath Patch path names the elements an operation works on. This
// package reads the subset of FHIRPath that such paths use in practice:
//
//	Type                 the resource itself (its type must match)
//	.name                a child element; a choice element by its stem
//	                     (Observation.value finds valueQuantity)
//	[n]                  the n-th item of the collection so far
//	.where(criteria)     items for which the criteria, full FHIRPath as
//	                     conformance/fhirpath evaluates it, give true
//	.first() .last()     the first or last item
//	.ofType(T)           items of type T (Observation.value.ofType(Quantity))
//	.extension('url')    the extensions with that url
//
// Anything else (other functions, operators outside where(), paths through
// a reference's resolve()) is refused with the reason.

type stepKind int

const (
	stepMember stepKind = iota
	stepIndex
	stepWhere
	stepFirst
	stepLast
	stepOfType
	stepExtension
)

// step is one step of a path after its root type.
type step struct {
	kind  stepKind
	name  string         // the element (stepMember), type (stepOfType) or url (stepExtension)
	index int            // stepIndex
	cond  *fhirpath.Expr // stepWhere
}

// path is a parsed patch path.
type path struct {
	src   string
	root  string
	steps []step
}

// parsePath reads a patch path. It fails with a message naming the offset
// for syntax outside the subset.
func parsePath(src string) (*path, error) {
	p := &path{src: src}
	i := 0
	fail := func(format string, args ...any) (*path, error) {
		return nil, fmt.Errorf("path %q, offset %d: %s", src, i, fmt.Sprintf(format, args...))
	}
	ident := func() (string, bool) {
		if i < len(src) && src[i] == '`' {
			end := strings.IndexByte(src[i+1:], '`')
			if end < 0 {
				return "", false
			}
			name := src[i+1 : i+1+end]
			i += end + 2
			return name, name != ""
		}
		start := i
		for i < len(src) && (isLetter(src[i]) || src[i] == '_' || (i > start && src[i] >= '0' && src[i] <= '9')) {
			i++
		}
		return src[start:i], i > start
	}
	root, ok := ident()
	if !ok {
		return fail("want a resource type")
	}
	p.root = root
	for i < len(src) {
		switch src[i] {
		case '.':
			i++
			name, ok := ident()
			if !ok {
				return fail("want an element name or a function")
			}
			if i < len(src) && src[i] == '(' {
				args, ok := arguments(src, &i)
				if !ok {
					return fail("unbalanced parentheses")
				}
				st, err := function(name, args)
				if err != nil {
					return fail("%v", err)
				}
				p.steps = append(p.steps, st)
				continue
			}
			p.steps = append(p.steps, step{kind: stepMember, name: name})
		case '[':
			end := strings.IndexByte(src[i:], ']')
			if end < 0 {
				return fail("unclosed [")
			}
			n, err := strconv.Atoi(strings.TrimSpace(src[i+1 : i+end]))
			if err != nil || n < 0 {
				return fail("an index must be a whole number of 0 or more")
			}
			i += end + 1
			p.steps = append(p.steps, step{kind: stepIndex, index: n})
		default:
			return fail("unexpected %q: patch paths are element names, [n], where(), first(), last(), ofType() and extension()", src[i])
		}
	}
	return p, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// arguments reads the text between the parenthesis at src[*i] and its
// match, skipping quoted strings, and moves *i past the closing one.
func arguments(src string, i *int) (string, bool) {
	depth := 0
	for j := *i; j < len(src); j++ {
		switch c := src[j]; c {
		case '\'', '"', '`':
			for j++; j < len(src) && src[j] != c; j++ {
				if src[j] == '\\' {
					j++
				}
			}
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				args := src[*i+1 : j]
				*i = j + 1
				return args, true
			}
		}
	}
	return "", false
}

// function makes the step of a function call.
func function(name, args string) (step, error) {
	args = strings.TrimSpace(args)
	switch name {
	case "where":
		cond, err := fhirpath.Compile(args)
		if err != nil {
			return step{}, err
		}
		return step{kind: stepWhere, cond: cond}, nil
	case "first", "last":
		if args != "" {
			return step{}, fmt.Errorf("%s() takes no arguments", name)
		}
		if name == "first" {
			return step{kind: stepFirst}, nil
		}
		return step{kind: stepLast}, nil
	case "ofType":
		if args == "" || !isLetter(args[0]) || strings.ContainsAny(args, " .()'") {
			return step{}, fmt.Errorf("ofType() takes a type name, not %q", args)
		}
		return step{kind: stepOfType, name: args}, nil
	case "extension":
		url, err := stringLiteral(args)
		if err != nil {
			return step{}, fmt.Errorf("extension() takes the url as a string: %v", err)
		}
		return step{kind: stepExtension, name: url}, nil
	}
	return step{}, fmt.Errorf("%s() is not supported in patch paths (where, first, last, ofType and extension are)", name)
}

// stringLiteral evaluates a FHIRPath string literal ('http://...').
func stringLiteral(src string) (string, error) {
	if len(src) < 2 || src[0] != '\'' {
		return "", fmt.Errorf("%q is not a string literal", src)
	}
	e, err := fhirpath.Compile(src)
	if err != nil {
		return "", err
	}
	out, err := e.Evaluate(map[string]any{})
	if err != nil || len(out) != 1 {
		return "", fmt.Errorf("%q is not a string literal", src)
	}
	s, ok := out[0].AsString()
	if !ok {
		return "", fmt.Errorf("%q is not a string literal", src)
	}
	return s, nil
}

// elemType is where a value sits in the R4 model: a type definition and an
// element path inside it ("Patient.contact" for a backbone element,
// "HumanName" for a datatype). The zero value is unknown: navigation below
// it goes by JSON names only.
type elemType struct {
	td   *r4.TypeDef
	path string
}

// typeNamed is the elemType of the type called code.
func typeNamed(code string) elemType {
	if td, ok := r4.Type(code); ok {
		return elemType{td, code}
	}
	return elemType{}
}

// child finds the element of t that the JSON member key stands for: the
// element itself, or a choice element (valueQuantity is value[x] with type
// code Quantity). code is the type code of that member.
func (t elemType) child(key string) (def r4.Element, code string, ok bool) {
	if t.td == nil {
		return def, "", false
	}
	if def, ok = t.td.Element(t.path + "." + key); ok {
		if def.IsChoice() {
			return def, "", true // the stem: no type yet
		}
		if len(def.Types) > 0 {
			code = def.Types[0].Code
		}
		return def, code, true
	}
	for i := 1; i < len(key); i++ {
		if key[i] < 'A' || key[i] > 'Z' {
			continue
		}
		if def, ok = t.td.Element(t.path + "." + key[:i]); ok && def.IsChoice() {
			if code, ok := choiceType(def, key[i:]); ok {
				return def, code, true
			}
		}
		break
	}
	return r4.Element{}, "", false
}

// choiceType returns the type code of choice element def whose JSON name
// ends in suffix ("Quantity", "String" gives "string").
func choiceType(def r4.Element, suffix string) (string, bool) {
	for _, t := range def.Types {
		if strings.EqualFold(t.Code[:1], suffix[:1]) && t.Code[1:] == suffix[1:] {
			return t.Code, true
		}
	}
	return "", false
}

// typeOf is the elemType of a value of element def with type code.
func (t elemType) typeOf(def r4.Element, code string, value any) elemType {
	if ref, ok := strings.CutPrefix(def.ContentReference, "#"); ok {
		return elemType{t.td, ref}
	}
	switch code {
	case "":
		return elemType{}
	case "BackboneElement", "Element":
		return elemType{t.td, strings.TrimSuffix(def.Path, "[x]")}
	case "Resource":
		if m, ok := value.(map[string]any); ok {
			if rt, ok := m["resourceType"].(string); ok {
				return typeNamed(rt)
			}
		}
		return elemType{}
	}
	return typeNamed(code)
}

// node is an element a path found: its value and where it sits, so that an
// operation can change it.
type node struct {
	value  any
	parent map[string]any // the object that holds it; nil for the resource
	key    string         // its JSON member name in parent (valueQuantity)
	index  int            // its position when parent[key] is an array, else -1
	code   string         // its type code, "" when unknown
	def    r4.Element     // its element definition (zero when unknown)
	t      elemType       // its own type, for navigating below it
}

// eval returns the elements p finds in resource.
func (p *path) eval(resource map[string]any) ([]node, error) {
	rt, _ := resource["resourceType"].(string)
	if p.root != rt {
		return nil, fmt.Errorf("path %q starts at %s, but the resource is a %s", p.src, p.root, rt)
	}
	nodes := []node{{value: resource, index: -1, code: rt, t: typeNamed(rt)}}
	return p.walk(resource, nodes, p.steps)
}

// walk applies steps to nodes.
func (p *path) walk(resource map[string]any, nodes []node, steps []step) ([]node, error) {
	for _, st := range steps {
		var next []node
		switch st.kind {
		case stepMember:
			for _, n := range nodes {
				next = members(n, st.name, next)
			}
		case stepExtension:
			for _, n := range nodes {
				for _, e := range members(n, "extension", nil) {
					if m, ok := e.value.(map[string]any); ok && m["url"] == st.name {
						next = append(next, e)
					}
				}
			}
		case stepIndex:
			if st.index < len(nodes) {
				next = nodes[st.index : st.index+1]
			}
		case stepFirst:
			next = nodes[:min(1, len(nodes))]
		case stepLast:
			next = nodes[max(0, len(nodes)-1):]
		case stepOfType:
			for _, n := range nodes {
				if strings.EqualFold(n.code[:min(1, len(n.code))], st.name[:1]) && n.code[min(1, len(n.code)):] == st.name[1:] {
					next = append(next, n)
				}
			}
		case stepWhere:
			for _, n := range nodes {
				out, err := st.cond.EvaluateAt(resource, fhirpath.Node{Value: n.value, Type: n.code})
				if err != nil {
					return nil, fmt.Errorf("path %q: %v", p.src, err)
				}
				if len(out) == 1 {
					if b, ok := out[0].AsBool(); ok && b {
						next = append(next, n)
					}
				}
			}
		}
		nodes = next
	}
	return nodes, nil
}

// members appends to out the items of n's child name: one per array item,
// or the one value; a choice element gives whichever JSON member it has.
func members(n node, name string, out []node) []node {
	obj, ok := n.value.(map[string]any)
	if !ok {
		return out
	}
	add := func(key string, def r4.Element, code string) {
		v, ok := obj[key]
		if !ok {
			return
		}
		if list, ok := v.([]any); ok {
			for i, item := range list {
				out = append(out, node{value: item, parent: obj, key: key, index: i, code: code, def: def, t: n.t.typeOf(def, code, item)})
			}
			return
		}
		out = append(out, node{value: v, parent: obj, key: key, index: -1, code: code, def: def, t: n.t.typeOf(def, code, v)})
	}
	def, code, known := n.t.child(name)
	switch {
	case known && def.IsChoice():
		for _, t := range def.Types {
			add(def.Name()+strings.ToUpper(t.Code[:1])+t.Code[1:], def, t.Code)
		}
	case known:
		add(name, def, code)
	default:
		// Below an unknown type: the member itself, or members that look
		// like a choice (name followed by a capitalised type).
		if _, ok := obj[name]; ok {
			add(name, def, "")
			break
		}
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			if len(key) > len(name) && strings.HasPrefix(key, name) && key[len(name)] >= 'A' && key[len(name)] <= 'Z' {
				add(key, def, key[len(name):])
			}
		}
	}
	return out
}
