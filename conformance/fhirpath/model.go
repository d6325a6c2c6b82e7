package fhirpath

import (
	"strings"
	"sync"

	"github.com/digitaleouder/ouder/conformance/r4"
)

// typeInfo describes what a node of one FHIR type (or one inline backbone element) contains,
// so that navigation is a map lookup rather than a search through the R4 definitions.
type typeInfo struct {
	name      string // FHIR type name; "BackboneElement" or "Element" for inline elements
	primitive bool
	resource  bool // a resource type, abstract or not
	abstract  bool
	ancestors []string // name, then its base types up to Resource or Element
	children  map[string]*child
	// byJSON finds a choice element by one of its JSON names (valueQuantity), which some
	// expressions use although FHIRPath names the element value.
	byJSON map[string]jsonChoice
}

type jsonChoice struct {
	c *child
	t int // index in c.types
}

// child is one element below a type. A choice element has several types, each with its
// own JSON name (valueQuantity, valueString); other elements have one, named as the element.
type child struct {
	name   string
	choice bool
	types  []childType
}

type childType struct {
	code string // FHIR type name
	json string // property name in JSON
	info *typeInfo
}

// model holds the typeInfo of every R4 type by name.
type model struct {
	types map[string]*typeInfo
}

var loadModel = sync.OnceValue(buildModel)

func buildModel() *model {
	m := &model{types: map[string]*typeInfo{}}
	names := r4.TypeNames()
	var defs []*r4.TypeDef
	for _, n := range names {
		td, ok := r4.Type(n)
		if !ok {
			continue
		}
		defs = append(defs, td)
		m.types[n] = &typeInfo{
			name:      n,
			primitive: td.Kind == r4.KindPrimitiveType,
			resource:  td.Kind == r4.KindResource,
			abstract:  td.Abstract,
			children:  map[string]*child{},
		}
	}
	for _, td := range defs {
		m.fill(td)
		ti := m.types[td.Name]
		for name := td.Name; name != ""; {
			ti.ancestors = append(ti.ancestors, name)
			b, ok := r4.Type(name)
			if !ok {
				break
			}
			name = b.Base
		}
	}
	return m
}

// fill adds the children of td, creating a typeInfo for every inline backbone element.
func (m *model) fill(td *r4.TypeDef) {
	root := m.types[td.Name]
	if root.primitive {
		return // the value of a primitive is not navigable
	}
	byPath := map[string]*typeInfo{td.Name: root}
	type pending struct {
		c   *child
		ref string
	}
	var refs []pending
	for _, e := range td.Elements[1:] {
		dot := strings.LastIndexByte(e.Path, '.')
		parent := byPath[e.Path[:dot]]
		if parent == nil {
			continue // below a primitive
		}
		c := &child{name: e.Name(), choice: e.IsChoice()}
		parent.children[c.name] = c
		if e.ContentReference != "" {
			refs = append(refs, pending{c, strings.TrimPrefix(e.ContentReference, "#")})
			continue
		}
		jsonNames := e.JSONNames()
		if c.choice && parent.byJSON == nil {
			parent.byJSON = map[string]jsonChoice{}
		}
		for i, t := range e.Types {
			if c.choice {
				parent.byJSON[jsonNames[i]] = jsonChoice{c, i}
			}
			ct := childType{code: t.Code, json: jsonNames[i]}
			if (t.Code == "BackboneElement" || t.Code == "Element") && !c.choice {
				ct.info = &typeInfo{name: t.Code, children: map[string]*child{}}
				byPath[e.Path] = ct.info
			} else {
				ct.info = m.types[t.Code] // nil for system types
			}
			c.types = append(c.types, ct)
		}
	}
	for _, p := range refs {
		info := byPath[p.ref]
		if info == nil {
			continue
		}
		p.c.types = []childType{{code: info.name, json: p.c.name, info: info}}
	}
}

// isA reports whether the node's type is want or derives from it.
func (n Node) isA(want string) bool {
	if n.Type == want {
		return true
	}
	if n.info != nil && n.info.name == n.Type && len(n.info.ancestors) > 0 {
		for _, a := range n.info.ancestors {
			if a == want {
				return true
			}
		}
		return false
	}
	return isA(n.Type, want)
}

// isA reports whether type name is want or derives from it (Age is a Quantity, code is a
// string, Patient is a DomainResource and a Resource).
func isA(name, want string) bool {
	for i := 0; name != "" && i < 8; i++ {
		if name == want {
			return true
		}
		td, ok := r4.Type(name)
		if !ok {
			return false
		}
		name = td.Base
	}
	return false
}

// systemType maps FHIR primitive types to the FHIRPath system type they are implicitly
// converted to.
var systemType = map[string]string{
	"boolean":      "Boolean",
	"string":       "String",
	"code":         "String",
	"id":           "String",
	"markdown":     "String",
	"uri":          "String",
	"url":          "String",
	"canonical":    "String",
	"oid":          "String",
	"uuid":         "String",
	"base64Binary": "String",
	"xhtml":        "String",
	"integer":      "Integer",
	"positiveInt":  "Integer",
	"unsignedInt":  "Integer",
	"decimal":      "Decimal",
	"date":         "Date",
	"dateTime":     "DateTime",
	"instant":      "DateTime",
	"time":         "Time",
}
