package ig

import (
	"fmt"
	"slices"
	"strings"

	"github.com/digitaleouder/ouder/conformance/ig/internal/sd"
)

// snapshot returns the snapshot of a profile on the R4 type typ whose
// differential is diff: the base type's snapshot with every differential
// element merged into the element of the same id. A slice (an id whose last
// part is name:slice) is inserted after the element it slices and its
// earlier slices; an element below a datatype (Goal.description.text) first
// expands the datatype's children under its parent. It fails when an id is
// neither in the base nor one of these, or when a differential element
// loosens the base: a smaller min, a larger max, or a type the base does not
// allow.
func snapshot(typ string, diff []sd.Element) ([]sd.Element, error) {
	defs, err := baseDefinitions()
	if err != nil {
		return nil, err
	}
	base, ok := defs[typ]
	if !ok {
		return nil, fmt.Errorf("ig: no base definition of %s", typ)
	}
	snap := make([]sd.Element, len(base.Elements))
	for i, e := range base.Elements {
		snap[i] = e.Clone()
	}
	for _, d := range diff {
		i := indexOf(snap, d.ID)
		if i < 0 {
			if snap, err = insert(snap, d.ID, defs); err != nil {
				return nil, fmt.Errorf("ig: profile on %s: %w", typ, err)
			}
			i = indexOf(snap, d.ID)
		}
		if err := merge(&snap[i], d); err != nil {
			return nil, fmt.Errorf("ig: profile on %s: %s: %w", typ, d.ID, err)
		}
	}
	return snap, nil
}

func indexOf(els []sd.Element, id string) int {
	return slices.IndexFunc(els, func(e sd.Element) bool { return e.ID == id })
}

// pathOf returns the path of an element id: the id without slice names.
func pathOf(id string) string {
	parts := strings.Split(id, ".")
	for i, p := range parts {
		if name, _, ok := strings.Cut(p, ":"); ok {
			parts[i] = name
		}
	}
	return strings.Join(parts, ".")
}

// endOfSubtree returns the index after the element at i, its descendants and
// its slices with their descendants.
func endOfSubtree(els []sd.Element, i int) int {
	id := els[i].ID
	j := i + 1
	for j < len(els) && (strings.HasPrefix(els[j].ID, id+".") || strings.HasPrefix(els[j].ID, id+":")) {
		j++
	}
	return j
}

// insert adds the element id to snap: a new slice, or the children of a
// datatype (or of the sliced backbone element) that id is below.
func insert(snap []sd.Element, id string, defs map[string]*sd.Definition) ([]sd.Element, error) {
	dot := strings.LastIndexByte(id, '.')
	last := id[dot+1:]
	if name, slice, ok := strings.Cut(last, ":"); ok {
		sliced := id[:dot+1] + name
		u := indexOf(snap, sliced)
		if u < 0 {
			return nil, fmt.Errorf("slice %s of an unknown element", id)
		}
		el := snap[u].Clone()
		// A slice starts optional; the differential says how many it needs.
		el.ID, el.SliceName, el.Slicing, el.Min = id, slice, nil, intp(0)
		return slices.Insert(snap, endOfSubtree(snap, u), el), nil
	}
	if dot < 0 {
		return nil, fmt.Errorf("unknown element %s", id)
	}
	parentID := id[:dot]
	p := indexOf(snap, parentID)
	if p < 0 {
		return nil, fmt.Errorf("unknown element %s", id)
	}
	if p+1 < len(snap) && strings.HasPrefix(snap[p+1].ID, parentID+".") {
		return nil, fmt.Errorf("unknown element %s", id)
	}
	parent := snap[p]
	var children []sd.Element
	switch {
	case parent.SliceName != "" && len(parent.Type) == 1 && parent.Type[0].Code == "BackboneElement":
		// The children of a backbone slice are those of the sliced element.
		slicedID := strings.TrimSuffix(parentID, ":"+parent.SliceName)
		u := indexOf(snap, slicedID)
		for _, e := range snap[u+1 : endOfSubtree(snap, u)] {
			if strings.HasPrefix(e.ID, slicedID+".") && !strings.Contains(strings.TrimPrefix(e.ID, slicedID+"."), ":") {
				c := e.Clone()
				c.ID = parentID + strings.TrimPrefix(e.ID, slicedID)
				children = append(children, c)
			}
		}
	case len(parent.Type) == 1:
		t := parent.Type[0].Code
		def, ok := defs[t]
		if !ok {
			return nil, fmt.Errorf("%s: %s has type %s, whose children are not known", id, parentID, t)
		}
		for _, e := range def.Elements[1:] {
			c := e.Clone()
			c.ID = parentID + strings.TrimPrefix(e.ID, t)
			c.Path = parent.Path + strings.TrimPrefix(e.Path, t)
			children = append(children, c)
		}
	default:
		return nil, fmt.Errorf("%s: %s has %d types; constrain it to one first", id, parentID, len(parent.Type))
	}
	return slices.Insert(snap, p+1, children...), nil
}

// maxOf returns a max cardinality as a number, -1 for "*".
func maxOf(s string) int {
	if s == "*" {
		return -1
	}
	n := 0
	fmt.Sscanf(s, "%d", &n)
	return n
}

// merge applies the differential element d to the snapshot element el.
func merge(el *sd.Element, d sd.Element) error {
	if d.Min != nil {
		if el.Min != nil && *d.Min < *el.Min {
			return fmt.Errorf("min %d is below the base's %d", *d.Min, *el.Min)
		}
		m := *d.Min
		el.Min = &m
	}
	if d.Max != "" {
		if bm, dm := maxOf(el.Max), maxOf(d.Max); bm >= 0 && (dm < 0 || dm > bm) {
			return fmt.Errorf("max %s is above the base's %s", d.Max, el.Max)
		}
		el.Max = d.Max
	}
	if d.Type != nil {
		for _, t := range d.Type {
			if !slices.ContainsFunc(el.Type, func(b sd.Type) bool { return b.Code == t.Code }) {
				return fmt.Errorf("type %s is not allowed by the base", t.Code)
			}
		}
		el.Type = d.Type
	}
	if d.Short != "" {
		el.Short = d.Short
	}
	if d.Definition != "" {
		el.Definition = d.Definition
	}
	if d.Comment != "" {
		el.Comment = d.Comment
	}
	if d.Slicing != nil {
		el.Slicing = d.Slicing
	}
	if d.FixedURI != "" {
		el.FixedURI = d.FixedURI
	}
	if d.FixedCode != "" {
		el.FixedCode = d.FixedCode
	}
	if d.FixedBoolean != nil {
		el.FixedBoolean = d.FixedBoolean
	}
	if d.PatternCC != nil {
		el.PatternCC = d.PatternCC
	}
	if d.PatternCoding != nil {
		el.PatternCoding = d.PatternCoding
	}
	if d.Binding != nil {
		el.Binding = d.Binding
	}
	el.Constraint = append(el.Constraint, d.Constraint...)
	el.MustSupport = el.MustSupport || d.MustSupport
	return nil
}
