package patch

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/digitaleouder/ouder/fhir"
)

// FHIRPath applies a FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html)
// to the resource doc and returns the patched JSON. params is the patch, a
// Parameters resource the caller has validated as one: each parameter named
// "operation" has parts type (add, insert, delete, replace, move), path,
// and as the type needs name, value, index, source and destination. A value
// is a value[x] part, or a part whose own parts build a complex value.
//
// Operations apply in order to one copy of the resource. Paths are read as
// parsePath describes. Following the spec, delete of a path that matches
// nothing is no error; add, replace, insert and move need their path to
// match exactly one element (or list). Removing a primitive also removes
// its extensions (the "_name" member), and inserting into or moving within a
// list of primitives keeps the "_name" list in step.
//
// The top-level members keep their order; nested objects come back with
// their members sorted by name (member order is not significant in FHIR
// JSON). Errors are *fhir.Error whose expression names the operation
// (Parameters.parameter[2]): Invalid when the patch is malformed, and
// Unprocessable when an operation does not fit this resource (a path that
// matches nothing or several elements, an index out of range, add over an
// existing value).
func FHIRPath(doc, params []byte) ([]byte, error) {
	var p struct {
		ResourceType string           `json:"resourceType"`
		Parameter    []map[string]any `json:"parameter"`
	}
	if err := decode(params, &p); err != nil || p.ResourceType != "Parameters" {
		return nil, fhir.Errorf(fhir.Invalid, "Parameters", "a FHIRPath Patch is a Parameters resource")
	}
	var resource map[string]any
	if err := decode(doc, &resource); err != nil {
		return nil, fmt.Errorf("patch: decode the resource: %w", err)
	}
	for i, param := range p.Parameter {
		expr := "Parameters.parameter[" + strconv.Itoa(i) + "]"
		op, err := readOperation(param)
		if err != nil {
			return nil, fhir.Errorf(fhir.Invalid, expr, "%v", err)
		}
		if err := op.apply(resource); err != nil {
			return nil, fhir.Errorf(fhir.Unprocessable, expr, "%s: %v", op.typ, err)
		}
	}
	return encode(doc, resource)
}

// operation is one operation of a FHIRPath Patch.
type operation struct {
	typ   string
	path  *path
	name  string
	value map[string]any // the value part, nil when none was given
	index *int
	// source and destination of a move
	source, destination *int
}

// readOperation reads and checks one parameter of a FHIRPath Patch.
func readOperation(param map[string]any) (*operation, error) {
	if param["name"] != "operation" {
		return nil, fmt.Errorf("a FHIRPath Patch parameter is named operation, not %v", param["name"])
	}
	op := &operation{}
	parts, _ := param["part"].([]any)
	var pathText string
	for _, p := range parts {
		part, _ := p.(map[string]any)
		name, _ := part["name"].(string)
		var err error
		switch name {
		case "type":
			op.typ, _ = part["valueCode"].(string)
		case "path":
			pathText, _ = part["valueString"].(string)
		case "name":
			op.name, _ = part["valueString"].(string)
		case "value":
			op.value = part
		case "index":
			op.index, err = integer(part, name)
		case "source":
			op.source, err = integer(part, name)
		case "destination":
			op.destination, err = integer(part, name)
		default:
			err = fmt.Errorf("unknown part %q", name)
		}
		if err != nil {
			return nil, err
		}
	}
	if pathText == "" {
		return nil, errors.New("the operation has no path")
	}
	var need []string
	switch op.typ {
	case "add":
		need = []string{"name", "value"}
	case "insert":
		need = []string{"index", "value"}
	case "delete":
	case "replace":
		need = []string{"value"}
	case "move":
		need = []string{"source", "destination"}
	case "":
		return nil, errors.New("the operation has no type")
	default:
		return nil, fmt.Errorf("%q is not an operation type (add, insert, delete, replace, move)", op.typ)
	}
	for _, n := range need {
		if n == "name" && op.name == "" || n == "value" && op.value == nil || n == "index" && op.index == nil ||
			n == "source" && op.source == nil || n == "destination" && op.destination == nil {
			return nil, fmt.Errorf("%s needs a %s part", op.typ, n)
		}
	}
	p, err := parsePath(pathText)
	if err != nil {
		return nil, err
	}
	op.path = p
	return op, nil
}

// integer reads the valueInteger of a part.
func integer(part map[string]any, name string) (*int, error) {
	if n, ok := part["valueInteger"].(json.Number); ok {
		if v, err := strconv.Atoi(string(n)); err == nil && v >= 0 {
			return &v, nil
		}
	}
	return nil, fmt.Errorf("%s must be a valueInteger of 0 or more", name)
}

// valueFor returns the operation's value for an element of type t, and the
// type suffix of its value[x] ("Quantity"; "" when it was built from parts).
func (op *operation) valueFor(t elemType) (any, string, error) {
	return partValue(op.value, t)
}

// partValue reads the value of a part: its value[x], its resource, or an
// object built from its parts.
func partValue(part map[string]any, t elemType) (any, string, error) {
	for k, v := range part {
		if suffix, ok := strings.CutPrefix(k, "value"); ok && suffix != "" {
			return v, suffix, nil
		}
	}
	if r, ok := part["resource"]; ok {
		return r, "", nil
	}
	parts, ok := part["part"].([]any)
	if !ok {
		return nil, "", fmt.Errorf("the %v part has no value[x] and no parts", part["name"])
	}
	obj := map[string]any{}
	for _, p := range parts {
		sub, _ := p.(map[string]any)
		name, _ := sub["name"].(string)
		if name == "" {
			return nil, "", errors.New("a part of a value has no name")
		}
		def, code, known := t.child(name)
		v, suffix, err := partValue(sub, t.typeOf(def, code, nil))
		if err != nil {
			return nil, "", err
		}
		key := name
		if known && def.IsChoice() {
			if _, ok := choiceType(def, suffix); suffix == "" || !ok {
				return nil, "", fmt.Errorf("%s is a choice element: give its value as a value[x] of one of its types", name)
			}
			key += suffix
		}
		switch old, exists := obj[key]; {
		case known && def.Max == "*":
			list, _ := old.([]any)
			obj[key] = append(list, v)
		case exists:
			list, ok := old.([]any)
			if !ok {
				list = []any{old}
			}
			obj[key] = append(list, v)
		default:
			obj[key] = v
		}
	}
	return obj, "", nil
}

func (op *operation) apply(resource map[string]any) error {
	switch op.typ {
	case "add":
		return op.add(resource)
	case "insert", "move":
		return op.inList(resource)
	case "delete":
		return op.delete(resource)
	}
	return op.replace(resource)
}

// one evaluates the path and requires exactly one element below the
// resource.
func (op *operation) one(resource map[string]any) (node, error) {
	nodes, err := op.path.eval(resource)
	if err != nil {
		return node{}, err
	}
	if len(nodes) != 1 {
		return node{}, fmt.Errorf("the path %s matches %d elements, not one", op.path.src, len(nodes))
	}
	return nodes[0], nil
}

func (op *operation) add(resource map[string]any) error {
	n, err := op.one(resource)
	if err != nil {
		return err
	}
	obj, ok := n.value.(map[string]any)
	if !ok {
		return fmt.Errorf("%s is a primitive value; add works on elements that have children", op.path.src)
	}
	def, code, known := n.t.child(op.name)
	if !known && n.t.td != nil {
		return fmt.Errorf("%s has no element %s", n.t.path, op.name)
	}
	value, suffix, err := op.valueFor(n.t.typeOf(def, code, nil))
	if err != nil {
		return err
	}
	key := op.name
	if def.IsChoice() {
		if _, ok := choiceType(def, suffix); suffix == "" || !ok {
			return fmt.Errorf("%s is a choice element: the value must be a value[x] of one of its types", op.name)
		}
		key += suffix
		for _, k := range def.JSONNames() {
			if _, ok := obj[k]; ok {
				return fmt.Errorf("%s.%s already has a value: use replace", op.path.src, op.name)
			}
		}
	}
	old, exists := obj[key]
	if list, ok := old.([]any); ok || known && def.Max == "*" {
		obj[key] = append(list, value)
		return nil
	}
	if exists {
		return fmt.Errorf("%s.%s already has a value: use replace", op.path.src, op.name)
	}
	obj[key] = value
	return nil
}

func (op *operation) replace(resource map[string]any) error {
	n, err := op.one(resource)
	if err != nil {
		return err
	}
	if n.parent == nil {
		return errors.New("the resource itself cannot be replaced")
	}
	value, suffix, err := op.valueFor(n.t)
	if err != nil {
		return err
	}
	if n.def.IsChoice() && suffix != "" {
		if _, ok := choiceType(n.def, suffix); !ok {
			return fmt.Errorf("%s cannot hold a %s", op.path.src, suffix)
		}
		if key := n.def.Name() + suffix; key != n.key {
			delete(n.parent, n.key)
			delete(n.parent, "_"+n.key)
			n.parent[key] = value
			return nil
		}
	}
	if n.index >= 0 {
		n.parent[n.key].([]any)[n.index] = value
		return nil
	}
	n.parent[n.key] = value
	return nil
}

func (op *operation) delete(resource map[string]any) error {
	nodes, err := op.path.eval(resource)
	if err != nil {
		return err
	}
	switch {
	case len(nodes) == 0:
		return nil
	case len(nodes) > 1:
		return fmt.Errorf("the path %s matches %d elements; delete removes one", op.path.src, len(nodes))
	case nodes[0].parent == nil:
		return errors.New("the resource itself cannot be deleted")
	}
	n := nodes[0]
	if n.index < 0 {
		delete(n.parent, n.key)
		delete(n.parent, "_"+n.key)
		return nil
	}
	for _, key := range []string{n.key, "_" + n.key} {
		list, ok := n.parent[key].([]any)
		if !ok || n.index >= len(list) {
			continue
		}
		if list = slices.Delete(list, n.index, n.index+1); len(list) == 0 {
			delete(n.parent, key)
		} else {
			n.parent[key] = list
		}
	}
	return nil
}

// inList does insert and move, whose path names a list: the element of
// exactly one parent, which must be repeating.
func (op *operation) inList(resource map[string]any) error {
	steps := op.path.steps
	if len(steps) == 0 || steps[len(steps)-1].kind != stepMember {
		return fmt.Errorf("the path %s must end with the name of a list element", op.path.src)
	}
	key := steps[len(steps)-1].name
	prefix := &path{src: op.path.src, root: op.path.root, steps: steps[:len(steps)-1]}
	parents, err := prefix.eval(resource)
	if err != nil {
		return err
	}
	if len(parents) != 1 {
		return fmt.Errorf("the path %s is in %d elements, not one", op.path.src, len(parents))
	}
	parent := parents[0]
	obj, ok := parent.value.(map[string]any)
	if !ok {
		return fmt.Errorf("%s is below a primitive value", op.path.src)
	}
	def, code, known := parent.t.child(key)
	if known && def.Max != "*" || !known && parent.t.td != nil {
		return fmt.Errorf("%s is not a list", op.path.src)
	}
	list, ok := obj[key].([]any)
	if _, exists := obj[key]; exists && !ok {
		return fmt.Errorf("%s is not a list", op.path.src)
	}
	ext, hasExt := obj["_"+key].([]any)
	hasExt = hasExt && len(ext) == len(list)
	if op.typ == "insert" {
		if *op.index > len(list) {
			return fmt.Errorf("index %d is beyond the end of %s (%d items)", *op.index, op.path.src, len(list))
		}
		value, _, err := op.valueFor(parent.t.typeOf(def, code, nil))
		if err != nil {
			return err
		}
		obj[key] = slices.Insert(list, *op.index, value)
		if hasExt {
			obj["_"+key] = slices.Insert(ext, *op.index, nil)
		}
		return nil
	}
	from, to := *op.source, *op.destination
	if from >= len(list) || to >= len(list) {
		return fmt.Errorf("source %d and destination %d must both be below the length of %s (%d items)", from, to, op.path.src, len(list))
	}
	move := func(l []any) []any {
		item := l[from]
		return slices.Insert(slices.Delete(l, from, from+1), to, item)
	}
	obj[key] = move(list)
	if hasExt {
		obj["_"+key] = move(ext)
	}
	return nil
}
