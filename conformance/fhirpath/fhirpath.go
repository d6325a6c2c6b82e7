// Package fhirpath evaluates the subset of FHIRPath (http://hl7.org/fhirpath/N1/) that the
// FHIR R4 search parameter expressions use, over resources held as generic JSON, so that the
// store can extract search index values at write time.
//
// Supported: paths (with choice elements: Observation.value finds valueQuantity, valueString,
// ...), a leading type name that filters (so the part of a multi-resource union for another
// type yields nothing), indexers, the operators | = != ~ !~ < > <= >= and or xor implies in
// contains is as, literals (string, integer, decimal, boolean, date/time, {}), %resource,
// %rootResource, %context, %ucum, %sct, %loinc, $this, and the functions where, select,
// exists, empty, not, first, last, tail, single, count, distinct, hasValue, ofType, as, is,
// resolve, extension, startsWith, endsWith, contains, matches, lower, upper, length and
// children. memberOf and any other function fail at Compile with the reason.
//
// Evaluation is lenient where servers are: `as` and `ofType` filter a collection of several
// items instead of failing, system types match the FHIR primitives they correspond to
// (value.as(DateTime) finds valueDateTime), and resolve() never fetches (see Evaluate).
package fhirpath

import (
	"encoding/json"
	"fmt"
)

// Node is one item of a result collection.
type Node struct {
	// Value is the item as decoded by encoding/json: map[string]any for complex types and
	// resources, string, bool or json.Number (float64 if the resource was decoded without
	// UseNumber) for primitives.
	Value any
	// Type is the FHIR type name when known: "Quantity", "date", "code", "Patient",
	// "BackboneElement" for inline elements. Results of operators and functions such as
	// exists() are "boolean", "string" or "integer"; literals are "string", "integer",
	// "decimal", "boolean", "date", "dateTime" or "time". Empty when unknown (below a
	// resource of an unknown type).
	Type string

	info *typeInfo // what the item contains, for navigation; nil for primitives
}

// Expr is a compiled expression. It is immutable and safe for concurrent use.
type Expr struct {
	src  string
	root node
}

// Compile parses a FHIRPath expression. It returns an error naming the offset and the
// problem for a syntax error, an unknown type name, and for functions and operators outside
// the supported subset (such as memberOf, which needs a terminology service).
func Compile(expr string) (*Expr, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, fmt.Errorf("fhirpath: compile %q: %w", expr, err)
	}
	p := &parser{toks: toks}
	root, err := p.parseExpr(0)
	if err != nil {
		return nil, fmt.Errorf("fhirpath: compile %q: %w", expr, err)
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, fmt.Errorf("fhirpath: compile %q: offset %d: unexpected %s", expr, t.pos, describe(t))
	}
	return &Expr{src: expr, root: root}, nil
}

// MustCompile is like Compile but panics on error; for package-level expressions.
func MustCompile(expr string) *Expr {
	e, err := Compile(expr)
	if err != nil {
		panic(err)
	}
	return e
}

// String returns the source of the expression.
func (e *Expr) String() string { return e.src }

// Evaluate evaluates the expression on a resource decoded from JSON (preferably with
// json.Decoder.UseNumber, so decimals keep their precision) and returns the resulting
// collection, empty when nothing matches. The resource's type is taken from its
// "resourceType".
//
// resolve() does not fetch anything. A reference to a contained resource ("#id") or, when
// the resource is a Bundle, to an entry's fullUrl gives that resource; any other literal
// reference ("Patient/123", "https://example.org/fhir/Patient/123/_history/2") or canonical
// URL gives a stub {"resourceType": type, "id": id} typed from the URL, or from
// Reference.type when the URL does not tell; a reference whose type cannot be told gives
// nothing. So `subject.where(resolve() is Patient)` keeps the references to patients.
//
// It returns an error when a function gets input it cannot handle (for example where()
// criteria that give several items, or startsWith on a number); the error names the
// expression.
func (e *Expr) Evaluate(resource map[string]any) ([]Node, error) {
	ctx := newContext(resource)
	out, err := e.root.eval(ctx, []Node{ctx.root})
	if err != nil {
		return nil, fmt.Errorf("fhirpath: evaluate %q: %w", e.src, err)
	}
	return out, nil
}

// EvaluateAt evaluates the expression with focus as its input and resource as %resource.
// It is how the components of a composite search parameter are evaluated on each item the
// parameter's own expression finds. Errors are as for Evaluate.
func (e *Expr) EvaluateAt(resource map[string]any, focus Node) ([]Node, error) {
	ctx := newContext(resource)
	out, err := e.root.eval(ctx, []Node{focus})
	if err != nil {
		return nil, fmt.Errorf("fhirpath: evaluate %q: %w", e.src, err)
	}
	return out, nil
}

// AsString returns the value of a node holding a string primitive.
func (n Node) AsString() (string, bool) {
	s, ok := n.Value.(string)
	return s, ok
}

// AsMap returns the value of a node holding a complex type or a resource.
func (n Node) AsMap() (map[string]any, bool) {
	m, ok := n.Value.(map[string]any)
	return m, ok
}

// AsNumber returns the value of a node holding a number.
func (n Node) AsNumber() (json.Number, bool) {
	switch v := n.Value.(type) {
	case json.Number:
		return v, true
	case float64:
		return json.Number(fmt.Sprint(v)), true
	}
	return "", false
}

// AsBool returns the value of a node holding a boolean.
func (n Node) AsBool() (value, ok bool) {
	b, ok := n.Value.(bool)
	return b, ok
}
