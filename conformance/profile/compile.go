package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/digitaleouder/ouder/conformance/fhirpath"
	"github.com/digitaleouder/ouder/conformance/r4"
)

// definition is the part of a StructureDefinition the compiler reads.
type definition struct {
	ResourceType string `json:"resourceType"`
	URL          string `json:"url"`
	Name         string `json:"name"`
	Title        string `json:"title"`
	Type         string `json:"type"`
	Derivation   string `json:"derivation"`
	Snapshot     struct {
		Element []json.RawMessage `json:"element"`
	} `json:"snapshot"`
}

// elementDef is the part of an ElementDefinition the compiler reads;
// fixed[x] and pattern[x] are found by their prefix.
type elementDef struct {
	ID        string `json:"id"`
	Path      string `json:"path"`
	SliceName string `json:"sliceName"`
	Slicing   *struct {
		Discriminator []struct {
			Type string `json:"type"`
			Path string `json:"path"`
		} `json:"discriminator"`
		Rules string `json:"rules"`
	} `json:"slicing"`
	Min  int    `json:"min"`
	Max  string `json:"max"`
	Base struct {
		Path string `json:"path"`
		Min  int    `json:"min"`
		Max  string `json:"max"`
	} `json:"base"`
	ContentReference string `json:"contentReference"`
	Type             []struct {
		Code          string   `json:"code"`
		Profile       []string `json:"profile"`
		TargetProfile []string `json:"targetProfile"`
	} `json:"type"`
	Constraint []constraintDef `json:"constraint"`
	Binding    *struct {
		Strength string `json:"strength"`
		ValueSet string `json:"valueSet"`
	} `json:"binding"`

	fixed, pattern any // the value of fixed[x] or pattern[x], decoded with UseNumber
}

// constraintDef is an ElementDefinition.constraint.
type constraintDef struct {
	Key        string `json:"key"`
	Severity   string `json:"severity"`
	Human      string `json:"human"`
	Expression string `json:"expression"`
	Source     string `json:"source"`
}

// node is one compiled element: what to check of the values found at its
// place. Only elements the profile constrains beyond R4 (and their
// ancestors) are kept, so validation walks a small tree.
type node struct {
	id       string
	name     string // JSON member name; the stem for a choice element
	choice   bool
	jsonType map[string]string // choice: JSON member name -> type code, for every type R4 allows
	allowed  map[string]bool   // choice: the type codes the profile allows; nil: all
	typ      string            // the single type code, for binding checks ("" when several)

	checkCard bool
	min, max  int // max -1: unbounded

	fixed, pattern any
	valueSet       string          // required binding to a known value set
	targets        map[string]bool // allowed reference target types; nil: any
	extension      string          // profile URL of an Extension type
	extProfile     *Profile        // resolved after every definition is compiled
	children       []*node         // constrained children
	slicing        *slicing        // nil unless the profile slices the element
	sliceName      string
	discriminators []discriminatorValue // a slice: what tells its values
}

type slicing struct {
	paths  []string // discriminator paths
	closed bool
	slices []*node
}

// discriminatorValue is what a slice's values hold at one discriminator
// path: exactly value (fixed) or at least value (pattern).
type discriminatorValue struct {
	path  string
	value any
	exact bool
}

// invariant is a compiled constraint of the profile's root element.
type invariant struct {
	key, human, severity string
	expr                 *fhirpath.Expr
}

// compile compiles one StructureDefinition with a snapshot.
func (s *Set) compile(b []byte) (*Profile, error) {
	var d definition
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if d.ResourceType != "StructureDefinition" || d.URL == "" || d.Type == "" {
		return nil, fmt.Errorf("not a StructureDefinition with a url and a type")
	}
	if d.Derivation != "constraint" {
		return nil, fmt.Errorf("%s: only constraint profiles are compiled, not a %q", d.URL, d.Derivation)
	}
	if len(d.Snapshot.Element) == 0 {
		return nil, fmt.Errorf("%s: no snapshot", d.URL)
	}
	els := make([]*elementDef, len(d.Snapshot.Element))
	for i, raw := range d.Snapshot.Element {
		e, err := decodeElement(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: element %d: %w", d.URL, i, err)
		}
		els[i] = e
	}
	p := &Profile{URL: d.URL, Type: d.Type, Name: d.Name, Title: d.Title}
	nodes := map[string]*node{}
	var order []*node
	for i, e := range els {
		n, err := s.compileElement(d.URL, e)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", d.URL, e.ID, err)
		}
		nodes[e.ID] = n
		order = append(order, n)
		if i == 0 {
			p.root = n
			for _, c := range e.Constraint {
				if c.Source != d.URL {
					continue // R4's own invariants are not evaluated (see the package comment)
				}
				x, err := fhirpath.Compile(c.Expression)
				if err != nil {
					return nil, fmt.Errorf("%s: invariant %s: %w", d.URL, c.Key, err)
				}
				p.invariants = append(p.invariants, invariant{key: c.Key, human: c.Human, severity: c.Severity, expr: x})
			}
			continue
		}
		if slices.ContainsFunc(e.Constraint, func(c constraintDef) bool { return c.Source == d.URL }) {
			return nil, fmt.Errorf("%s: %s: invariants are supported on the root element only", d.URL, e.ID)
		}
		if e.SliceName != "" && strings.HasSuffix(e.ID, ":"+e.SliceName) {
			sliced := nodes[strings.TrimSuffix(e.ID, ":"+e.SliceName)]
			if sliced == nil || sliced.slicing == nil {
				return nil, fmt.Errorf("%s: slice %s of an element that is not sliced", d.URL, e.ID)
			}
			sliced.slicing.slices = append(sliced.slicing.slices, n)
			continue
		}
		parent := nodes[e.ID[:strings.LastIndexByte(e.ID, '.')]]
		if parent == nil {
			return nil, fmt.Errorf("%s: %s has no parent element", d.URL, e.ID)
		}
		parent.children = append(parent.children, n)
	}
	// An element is kept when it, a slice of it, or something below it is
	// constrained beyond R4.
	var keep func(n *node) bool
	keep = func(n *node) bool {
		k := n.constrained()
		var children []*node
		for _, c := range n.children {
			if keep(c) {
				children = append(children, c)
				k = true
			}
		}
		n.children = children
		if n.slicing != nil {
			for _, sl := range n.slicing.slices {
				keep(sl)
				k = true
			}
		}
		return k
	}
	keep(p.root)
	for _, n := range order {
		if n.slicing == nil {
			continue
		}
		for _, sl := range n.slicing.slices {
			if err := sl.discriminate(n.slicing.paths); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", d.URL, sl.id, err)
			}
		}
	}
	return p, nil
}

// decodeElement reads an ElementDefinition with its fixed[x] or pattern[x].
func decodeElement(raw json.RawMessage) (*elementDef, error) {
	var e elementDef
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	for k, v := range m {
		isFixed, isPattern := strings.HasPrefix(k, "fixed"), strings.HasPrefix(k, "pattern")
		if !isFixed && !isPattern {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		var x any
		if err := dec.Decode(&x); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if isFixed {
			e.fixed = x
		} else {
			e.pattern = x
		}
	}
	return &e, nil
}

// compileElement compiles one element on its own; the tree is built by
// compile.
func (s *Set) compileElement(url string, e *elementDef) (*node, error) {
	n := &node{id: e.ID, sliceName: e.SliceName, min: e.Min, max: maxOf(e.Max), fixed: e.fixed, pattern: e.pattern}
	last := e.Path[strings.LastIndexByte(e.Path, '.')+1:]
	n.name = strings.TrimSuffix(last, "[x]")
	n.choice = strings.HasSuffix(last, "[x]")
	n.checkCard = e.Min > e.Base.Min || (n.max >= 0 && (maxOf(e.Base.Max) < 0 || n.max < maxOf(e.Base.Max)))
	if e.SliceName != "" {
		n.checkCard = true // a slice's cardinality always counts only its own values
	}
	if e.Slicing != nil {
		n.slicing = &slicing{closed: e.Slicing.Rules == "closed"}
		for _, d := range e.Slicing.Discriminator {
			if d.Type != "value" && d.Type != "pattern" {
				return nil, fmt.Errorf("discriminator type %q is not supported (value and pattern are)", d.Type)
			}
			n.slicing.paths = append(n.slicing.paths, d.Path)
		}
	}
	if e.Binding != nil && e.Binding.Strength == "required" {
		vs, _, _ := strings.Cut(e.Binding.ValueSet, "|")
		if _, ok := s.valueSets[vs]; ok {
			n.valueSet = vs
		}
	}
	if len(e.Type) == 1 {
		n.typ = e.Type[0].Code
	}
	base, hasBase := r4Element(e.Base.Path)
	if n.choice && hasBase {
		n.jsonType = map[string]string{}
		for i, name := range base.JSONNames() {
			n.jsonType[name] = base.Types[i].Code
		}
		if len(e.Type) < len(base.Types) {
			n.allowed = map[string]bool{}
			for _, t := range e.Type {
				n.allowed[t.Code] = true
			}
		}
	}
	for _, t := range e.Type {
		if t.Code == "Extension" && len(t.Profile) == 1 {
			n.extension = t.Profile[0]
		}
		if t.Code != "Reference" || len(t.TargetProfile) == 0 {
			continue
		}
		var targets []string
		for _, tp := range t.TargetProfile {
			typ, ok := s.typeOfProfile(tp)
			if !ok {
				return nil, fmt.Errorf("target profile %s is not known", tp)
			}
			targets = append(targets, typ)
		}
		if hasBase && sameTargets(targets, base) {
			continue // R4 checks these already
		}
		if n.targets == nil {
			n.targets = map[string]bool{}
		}
		for _, t := range targets {
			n.targets[t] = true
		}
	}
	return n, nil
}

// constrained reports whether n itself checks anything.
func (n *node) constrained() bool {
	return n.checkCard || n.fixed != nil || n.pattern != nil || n.valueSet != "" || n.allowed != nil ||
		n.targets != nil || n.extension != "" || n.slicing != nil
}

// discriminate finds what the values of slice n hold at each discriminator
// path: its own fixed or pattern value for $this, that of the element at the
// path below it, or, for the url of an extension slice, the extension's
// profile URL.
func (n *node) discriminate(paths []string) error {
	for _, p := range paths {
		if p == "$this" {
			switch {
			case n.fixed != nil:
				n.discriminators = append(n.discriminators, discriminatorValue{path: p, value: n.fixed, exact: true})
			case n.pattern != nil:
				n.discriminators = append(n.discriminators, discriminatorValue{path: p, value: n.pattern})
			default:
				return fmt.Errorf("the slice has no fixed or pattern value to be told by")
			}
			continue
		}
		if c := n.descendant(p); c != nil && (c.fixed != nil || c.pattern != nil) {
			if c.fixed != nil {
				n.discriminators = append(n.discriminators, discriminatorValue{path: p, value: c.fixed, exact: true})
			} else {
				n.discriminators = append(n.discriminators, discriminatorValue{path: p, value: c.pattern})
			}
			continue
		}
		if p == "url" && n.extension != "" {
			n.discriminators = append(n.discriminators, discriminatorValue{path: p, value: n.extension, exact: true})
			continue
		}
		return fmt.Errorf("the slice has no value at the discriminator path %s", p)
	}
	return nil
}

// descendant returns the kept node at the dotted path below n, or nil.
func (n *node) descendant(path string) *node {
	cur := n
	for _, part := range strings.Split(path, ".") {
		var next *node
		for _, c := range cur.children {
			if c.name == part {
				next = c
			}
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// r4Element returns the R4 element at a base path (Patient.birthDate,
// CodeableConcept.text), whose type is its first part.
func r4Element(path string) (r4.Element, bool) {
	typ, _, _ := strings.Cut(path, ".")
	td, ok := r4.Type(typ)
	if !ok {
		return r4.Element{}, false
	}
	return td.Element(path)
}

// sameTargets reports whether targets are exactly the targets of the
// Reference type of base.
func sameTargets(targets []string, base r4.Element) bool {
	for _, t := range base.Types {
		if t.Code == "Reference" {
			a, b := slices.Clone(targets), slices.Clone(t.Targets)
			slices.Sort(a)
			slices.Sort(b)
			return slices.Equal(slices.Compact(a), b)
		}
	}
	return false
}

// maxOf returns a max cardinality as a number, -1 for "*".
func maxOf(s string) int {
	if s == "*" || s == "" {
		return -1
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
