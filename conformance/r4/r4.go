// Package r4 provides compact FHIR R4 (4.0.1) definitions: the structure of every resource
// type and datatype, the search parameters and the Patient compartment, derived from the
// official HL7 definition files and embedded in the binary.
//
// The data in data/ is written by internal/gen from the files in /work/shared/fhir-r4;
// refresh it with `go generate` after changing the generator. Those files are not pristine
// 4.0.1: they carry a few resources, elements and search parameters of later FHIR versions
// and of a vendor, which the generator leaves out or repairs (see internal/gen/repair.go;
// its test checks the result against the R4 protos of google/fhir).
//
// All functions are safe for concurrent use; the embedded data is decoded on first use.
package r4

//go:generate go run ./internal/gen -shared ../../../shared/fhir-r4 -out data

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Type kinds, as in StructureDefinition.kind.
const (
	KindResource      = "resource"
	KindComplexType   = "complex-type"
	KindPrimitiveType = "primitive-type"
)

// TypeDef is the definition of one resource type or datatype.
type TypeDef struct {
	// Name is the type name, e.g. "Patient", "HumanName", "dateTime".
	Name string `json:"name"`
	// Kind is KindResource, KindComplexType or KindPrimitiveType.
	Kind string `json:"kind"`
	// Abstract is true for Resource, DomainResource, Element and BackboneElement.
	Abstract bool `json:"abstract,omitempty"`
	// Base is the name of the type this one specialises ("DomainResource" for Patient,
	// "Quantity" for Age, "string" for code); empty for Resource and Element.
	Base string `json:"base,omitempty"`
	// Elements are the snapshot elements in definition order; the first is the root element
	// whose Path equals Name.
	Elements []Element `json:"elements"`

	index map[string]int // path (choice paths also under their stem) -> index in Elements
}

// Element is one element of a snapshot.
//
// Choice elements keep their definition path ending in "[x]" (Observation.value[x]); in JSON
// they appear as the stem followed by the capitalised type code (valueQuantity, valueString),
// see JSONNames.
type Element struct {
	// Path is the full element path, e.g. "Patient.contact.name" or "Observation.value[x]".
	Path string `json:"path"`
	// Types are the allowed types; empty for the root element and for elements defined by
	// ContentReference.
	Types []ElementType `json:"types,omitempty"`
	// Min is the minimum cardinality.
	Min int `json:"min"`
	// Max is the maximum cardinality: "0", "1" or "*".
	Max string `json:"max"`
	// Summary reports ElementDefinition.isSummary (part of _summary=true).
	Summary bool `json:"summary,omitempty"`
	// Modifier reports ElementDefinition.isModifier.
	Modifier bool `json:"modifier,omitempty"`
	// ContentReference names the element whose definition this one reuses, e.g.
	// "#Questionnaire.item" for Questionnaire.item.item.
	ContentReference string `json:"contentReference,omitempty"`
	// Binding is the terminology binding, nil when there is none.
	Binding *Binding `json:"binding,omitempty"`
}

// ElementType is one allowed type of an element.
type ElementType struct {
	// Code is the type name ("string", "CodeableConcept", "Reference", "BackboneElement").
	// FHIRPath system types are given by their FHIR name from the structuredefinition-fhir-type
	// extension (Element.id and Extension.url are "string" and "uri"), except for the value of a
	// primitive type itself (date.value), which keeps its system type URL
	// ("http://hl7.org/fhirpath/System.Date").
	Code string `json:"code"`
	// Targets are the type names allowed by targetProfile for Reference and canonical
	// ("Patient", "Group"); empty means any.
	Targets []string `json:"targets,omitempty"`
}

// Binding is a terminology binding of a coded element.
type Binding struct {
	// Strength is required, extensible, preferred or example.
	Strength string `json:"strength"`
	// ValueSet is the canonical URL of the value set, possibly with a |version suffix; empty
	// when the binding has only a description.
	ValueSet string `json:"valueSet,omitempty"`
}

// SearchParam is one search parameter definition.
type SearchParam struct {
	// ID is the SearchParameter id, e.g. "Patient-birthdate" or "clinical-patient".
	ID string `json:"id"`
	// URL is the canonical URL.
	URL string `json:"url"`
	// Code is the name used in the query string, e.g. "birthdate" or "_id".
	Code string `json:"code"`
	// Base lists the resource types the parameter applies to ("Resource" and
	// "DomainResource" for the common parameters).
	Base []string `json:"base"`
	// Type is number, date, string, token, reference, composite, quantity, uri or special.
	Type string `json:"type"`
	// Expression is the FHIRPath expression that extracts the values. For parameters with
	// several bases it is a union whose parts each start with their own type name
	// ("AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | ...").
	// Empty for _text, _content and _query, which have no expression.
	Expression string `json:"expression,omitempty"`
	// Target lists the resource types a reference parameter may point to.
	Target []string `json:"target,omitempty"`
	// Component lists the parts of a composite parameter.
	Component []Component `json:"component,omitempty"`
	// Modifier lists the allowed modifiers when the definition restricts them.
	Modifier []string `json:"modifier,omitempty"`
	// Comparator lists the allowed comparators when the definition states them.
	Comparator []string `json:"comparator,omitempty"`
	// MultipleOr reports whether several values may be ORed (a,b); nil when the definition
	// does not state it (only composite parameters do, all with false).
	MultipleOr *bool `json:"multipleOr,omitempty"`
	// MultipleAnd reports whether the parameter may be repeated; nil when not stated (no R4
	// parameter states it).
	MultipleAnd *bool `json:"multipleAnd,omitempty"`
}

// Component is one part of a composite search parameter.
type Component struct {
	// Definition is the URL of the search parameter that defines the part.
	Definition string `json:"definition"`
	// Expression is evaluated on each item found by the composite parameter's expression.
	Expression string `json:"expression"`
}

//go:embed data
var dataFS embed.FS

type model struct {
	types         map[string]*TypeDef
	resourceTypes []string
	params        []SearchParam
	byBase        map[string][]int // base type -> indexes into params
	byURL         map[string]int   // canonical URL -> index into params
	compartment   map[string][]string
}

var load = sync.OnceValue(func() *model {
	m, err := decode(dataFS)
	if err != nil {
		// The data is generated and checked by tests; failing here means a broken build.
		panic(fmt.Sprintf("r4: embedded definitions: %v", err))
	}
	return m
})

func readData(fsys embed.FS, name string) ([]byte, error) {
	if b, err := fsys.ReadFile("data/" + name); err == nil {
		return b, nil
	}
	gz, err := fsys.ReadFile("data/" + name + ".gz")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("gunzip %s: %w", name, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzip %s: %w", name, err)
	}
	return b, nil
}

func decodeFile(fsys embed.FS, name string, v any) error {
	b, err := readData(fsys, name)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", name, err)
	}
	return nil
}

func decode(fsys embed.FS) (*model, error) {
	var types []*TypeDef
	if err := decodeFile(fsys, "types.json", &types); err != nil {
		return nil, err
	}
	m := &model{types: make(map[string]*TypeDef, len(types)), byBase: map[string][]int{}, byURL: map[string]int{}}
	for _, td := range types {
		td.index = make(map[string]int, len(td.Elements)*2)
		for i, e := range td.Elements {
			td.index[e.Path] = i
			if stem, ok := strings.CutSuffix(e.Path, "[x]"); ok {
				td.index[stem] = i
			}
		}
		m.types[td.Name] = td
		if td.Kind == KindResource && !td.Abstract {
			m.resourceTypes = append(m.resourceTypes, td.Name)
		}
	}
	sort.Strings(m.resourceTypes)
	if err := decodeFile(fsys, "searchparameters.json", &m.params); err != nil {
		return nil, err
	}
	for i, p := range m.params {
		m.byURL[p.URL] = i
		for _, b := range p.Base {
			m.byBase[b] = append(m.byBase[b], i)
		}
	}
	if err := decodeFile(fsys, "compartment-patient.json", &m.compartment); err != nil {
		return nil, err
	}
	return m, nil
}

// ResourceTypes returns the names of the concrete R4 resource types, sorted. The caller may
// modify the returned slice.
func ResourceTypes() []string {
	return slices.Clone(load().resourceTypes)
}

// TypeNames returns the names of every type Type knows: all resource types including the
// abstract Resource and DomainResource, and all complex and primitive datatypes, sorted.
// The caller may modify the returned slice.
func TypeNames() []string {
	m := load()
	names := make([]string, 0, len(m.types))
	for n := range m.types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IsResourceType reports whether name is a concrete R4 resource type (case-sensitive).
func IsResourceType(name string) bool {
	td, ok := load().types[name]
	return ok && td.Kind == KindResource && !td.Abstract
}

// Type returns the definition of a resource type or datatype, including the abstract
// Resource, DomainResource, Element and BackboneElement; ok is false for unknown names.
// The returned TypeDef is shared and must not be modified.
func Type(name string) (td *TypeDef, ok bool) {
	td, ok = load().types[name]
	return td, ok
}

// Element returns the element with the given full path ("Patient.birthDate"). A choice
// element is found both by its definition path ("Observation.value[x]") and by its stem
// ("Observation.value"). ok is false when the type has no such element; paths through a
// ContentReference (Questionnaire.item.item.linkId) are not expanded.
func (td *TypeDef) Element(path string) (Element, bool) {
	i, ok := td.index[path]
	if !ok {
		return Element{}, false
	}
	return td.Elements[i], true
}

// Summary returns the names of the top-level elements that are part of the summary
// (isSummary), in definition order. A choice element is named by its stem without "[x]":
// Patient's deceased[x] is "deceased"; use td.Element(td.Name+"."+name) and
// Element.IsChoice/JSONNames to find its JSON property names (deceasedBoolean,
// deceasedDateTime).
func (td *TypeDef) Summary() []string {
	return td.topLevel(func(e Element) bool { return e.Summary })
}

// Required returns the names of the top-level elements with a minimum cardinality of at
// least one, in definition order, named as in Summary.
func (td *TypeDef) Required() []string {
	return td.topLevel(func(e Element) bool { return e.Min >= 1 })
}

func (td *TypeDef) topLevel(keep func(Element) bool) []string {
	var names []string
	for _, e := range td.Elements {
		rest, ok := strings.CutPrefix(e.Path, td.Name+".")
		if !ok || strings.Contains(rest, ".") || !keep(e) {
			continue
		}
		names = append(names, e.Name())
	}
	return names
}

// Name returns the last segment of the path without a "[x]" suffix: "value" for
// Observation.value[x], "birthDate" for Patient.birthDate.
func (e Element) Name() string {
	name := e.Path[strings.LastIndexByte(e.Path, '.')+1:]
	return strings.TrimSuffix(name, "[x]")
}

// IsChoice reports whether the element is a choice element (its path ends in "[x]").
func (e Element) IsChoice() bool {
	return strings.HasSuffix(e.Path, "[x]")
}

// JSONNames returns the property names the element takes in JSON: the name itself, or for
// a choice element the stem followed by each capitalised type code (valueQuantity,
// valueCodeableConcept, ...), in the order of Types.
func (e Element) JSONNames() []string {
	if !e.IsChoice() {
		return []string{e.Name()}
	}
	stem := e.Name()
	names := make([]string, 0, len(e.Types))
	for _, t := range e.Types {
		names = append(names, stem+strings.ToUpper(t.Code[:1])+t.Code[1:])
	}
	return names
}

// SearchParams returns every R4 search parameter, sorted by ID. The returned slice and its
// elements are shared and must not be modified.
func SearchParams() []SearchParam {
	return load().params
}

// SearchParamsFor returns the search parameters that apply to resourceType, sorted by Code
// (then ID): those whose Base includes it, plus those based on Resource (_id, _lastUpdated,
// _tag, _profile, _security, _source, _query, _content) and, for types derived from
// DomainResource, on DomainResource (_text). _list and _has are not defined by
// search-parameters.json and are not included. It returns nil for unknown types. The
// returned slice is the caller's; the SearchParam values share their slices with the package.
func SearchParamsFor(resourceType string) []SearchParam {
	m := load()
	td, ok := m.types[resourceType]
	if !ok || td.Kind != KindResource {
		return nil
	}
	seen := map[int]bool{}
	var out []SearchParam
	for name := resourceType; name != ""; {
		for _, i := range m.byBase[name] {
			if !seen[i] {
				seen[i] = true
				out = append(out, m.params[i])
			}
		}
		t, ok := m.types[name]
		if !ok {
			break
		}
		name = t.Base
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Code != out[j].Code {
			return out[i].Code < out[j].Code
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// SearchParamByURL returns the search parameter with the given canonical URL, as used by
// Component.Definition; ok is false when there is none.
func SearchParamByURL(url string) (SearchParam, bool) {
	m := load()
	i, ok := m.byURL[url]
	if !ok {
		return SearchParam{}, false
	}
	return m.params[i], true
}

// PatientCompartment returns the Patient compartment definition: for each resource type that
// can be in a patient's compartment, the codes of the search parameters that link it to the
// patient (sorted). Resource types that are never in the compartment are absent. The caller
// owns the returned map and slices.
func PatientCompartment() map[string][]string {
	src := load().compartment
	out := make(map[string][]string, len(src))
	for k, v := range src {
		out[k] = slices.Clone(v)
	}
	return out
}
