// Package ig is the Digitale Ouder implementation guide: the conformance
// resources the server publishes and enforces — a StructureDefinition for
// every concept of the record (docs/mapping.md) and the parental-authority
// extension, a CodeSystem and ValueSet for every code system of package
// mapping, the SearchParameters the domain needs, and an
// ImplementationGuide indexing them. (The evaluation forms are data, not
// part of the guide: Questionnaires under mapping.QuestionnaireBase, which
// the evaluation-questionnaire profile validates.)
//
// Everything is generated in Go from package mapping, so every code, URL
// and profile is defined once; the snapshots are generated from the R4 base
// definitions embedded in data/. ouderd installs the resources into the
// store at start-up, and conformance.Parser validates writes against the
// profiles through Validator.
package ig

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/digitaleouder/ouder/conformance/ig/internal/sd"
	"github.com/digitaleouder/ouder/conformance/profile"
	"github.com/digitaleouder/ouder/mapping"
)

// Version is the version of the guide, in every resource it publishes.
const Version = "0.1.0"

// URL is the canonical URL of the ImplementationGuide resource.
const URL = mapping.BaseURL + "/ImplementationGuide/digitaleouder"

const publisher = "Digitale Ouder"

// Resource is one conformance resource of the guide as the server serves
// it.
type Resource struct {
	Type string // StructureDefinition, CodeSystem, ValueSet, SearchParameter or ImplementationGuide
	ID   string
	URL  string
	// Title is the resource's title (its name when it has no title).
	Title string
	// JSON is the resource in FHIR R4 JSON, without meta.
	JSON []byte
}

// structureDefinition is the JSON of a StructureDefinition, in R4 element
// order.
type structureDefinition struct {
	ResourceType   string      `json:"resourceType"`
	ID             string      `json:"id"`
	URL            string      `json:"url"`
	Version        string      `json:"version"`
	Name           string      `json:"name"`
	Title          string      `json:"title"`
	Status         string      `json:"status"`
	Publisher      string      `json:"publisher"`
	Description    string      `json:"description"`
	FHIRVersion    string      `json:"fhirVersion"`
	Kind           string      `json:"kind"`
	Abstract       bool        `json:"abstract"`
	Context        []sdContext `json:"context,omitempty"`
	Type           string      `json:"type"`
	BaseDefinition string      `json:"baseDefinition"`
	Derivation     string      `json:"derivation"`
	Snapshot       elements    `json:"snapshot"`
	Differential   elements    `json:"differential"`
}

type sdContext struct {
	Type       string `json:"type"`
	Expression string `json:"expression"`
}

type elements struct {
	Element []sd.Element `json:"element"`
}

// implementationGuide is the JSON of the ImplementationGuide resource.
type implementationGuide struct {
	ResourceType string   `json:"resourceType"`
	ID           string   `json:"id"`
	URL          string   `json:"url"`
	Version      string   `json:"version"`
	Name         string   `json:"name"`
	Title        string   `json:"title"`
	Status       string   `json:"status"`
	Publisher    string   `json:"publisher"`
	Description  string   `json:"description"`
	PackageID    string   `json:"packageId"`
	FHIRVersion  []string `json:"fhirVersion"`
	Definition   struct {
		Resource []igResource `json:"resource"`
	} `json:"definition"`
}

type igResource struct {
	Reference struct {
		Reference string `json:"reference"`
	} `json:"reference"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// build generates every resource of the guide once.
var build = sync.OnceValues(func() ([]Resource, error) {
	var out []Resource
	add := func(typ, id, url, title string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("ig: encode %s/%s: %w", typ, id, err)
		}
		out = append(out, Resource{Type: typ, ID: id, URL: url, Title: title, JSON: b})
		return nil
	}
	for _, p := range profiles() {
		d, err := p.structureDefinition()
		if err != nil {
			return nil, err
		}
		if err := add("StructureDefinition", d.ID, d.URL, d.Title, d); err != nil {
			return nil, err
		}
	}
	for _, cs := range codeSystems() {
		if err := add("CodeSystem", cs.ID, cs.URL, cs.Title, cs); err != nil {
			return nil, err
		}
	}
	for _, vs := range valueSets() {
		if err := add("ValueSet", vs.ID, vs.URL, vs.Title, vs); err != nil {
			return nil, err
		}
	}
	for _, sp := range searchParameters() {
		if err := add("SearchParameter", sp.ID, sp.URL, sp.Name, sp); err != nil {
			return nil, err
		}
	}
	g := implementationGuide{
		ResourceType: "ImplementationGuide", ID: idOf(URL), URL: URL, Version: Version,
		Name: "DigitaleOuder", Title: "Digitale Ouder implementation guide", Status: "active", Publisher: publisher,
		Description: "The profiles, extension, code systems, value sets and search parameters of a Digitale Ouder environment: " +
			"one shared, secure record for separated parents, blended families and families with extra support needs.",
		PackageID: "nl.digitaleouder.fhir", FHIRVersion: []string{"4.0.1"},
	}
	for _, r := range out {
		var ir igResource
		ir.Reference.Reference = r.Type + "/" + r.ID
		ir.Name = r.Title
		g.Definition.Resource = append(g.Definition.Resource, ir)
	}
	if err := add("ImplementationGuide", g.ID, g.URL, g.Title, g); err != nil {
		return nil, err
	}
	return out, nil
})

// Resources returns every conformance resource of the guide, the
// ImplementationGuide last. The result is shared: callers must not modify
// it. It fails only when the guide's sources are inconsistent (a profile
// that loosens its base or names an unknown element), which the package's
// tests rule out.
func Resources() ([]Resource, error) { return build() }

// structureDefinition builds the StructureDefinition of p with its
// differential and generated snapshot.
func (p source) structureDefinition() (structureDefinition, error) {
	diff := make([]sd.Element, len(p.diff))
	for i, e := range p.diff {
		e = e.Clone()
		e.Path = pathOf(e.ID)
		if _, name, ok := strings.Cut(e.ID[strings.LastIndexByte(e.ID, '.')+1:], ":"); ok && e.SliceName == "" {
			e.SliceName = name
		}
		for j := range e.Constraint {
			if e.Constraint[j].Source == "" {
				e.Constraint[j].Source = p.url
			}
		}
		diff[i] = e
	}
	snap, err := snapshot(p.typ, diff)
	if err != nil {
		return structureDefinition{}, fmt.Errorf("%s: %w", p.url, err)
	}
	kind := "resource"
	if p.typ == "Extension" {
		kind = "complex-type"
	}
	d := structureDefinition{
		ResourceType: "StructureDefinition", ID: p.id(), URL: p.url, Version: Version,
		Name: p.name, Title: p.title, Status: "active", Publisher: publisher,
		Description: p.description + " Dutch: " + p.dutch + ".",
		FHIRVersion: "4.0.1", Kind: kind, Type: p.typ,
		BaseDefinition: corePrefix + p.typ, Derivation: "constraint",
		Snapshot: elements{snap}, Differential: elements{diff},
	}
	for _, c := range p.context {
		d.Context = append(d.Context, sdContext{Type: "element", Expression: c})
	}
	return d, nil
}

// Profile is one profile of the guide, for listings (CapabilityStatement,
// documentation).
type Profile struct {
	URL   string
	Type  string // the R4 type constrained (Extension for the extension)
	Name  string
	Title string
	Dutch string
}

// Profiles returns the guide's profiles and its extension, in the order of
// docs/mapping.md.
func Profiles() []Profile {
	var out []Profile
	for _, p := range profiles() {
		out = append(out, Profile{URL: p.url, Type: p.typ, Name: p.name, Title: p.title, Dutch: p.dutch})
	}
	return out
}

// Validator returns the profile validator for the guide: its
// StructureDefinitions compiled once, with its value sets, and the
// selection rule of mapping.ProfilesFor. It is built on first use and
// shared; it fails only when the guide does not compile, which the
// package's tests rule out.
func Validator() (*profile.Set, error) { return validator() }

var validator = sync.OnceValues(func() (*profile.Set, error) {
	rs, err := Resources()
	if err != nil {
		return nil, err
	}
	var defs, terms [][]byte
	for _, r := range rs {
		switch r.Type {
		case "StructureDefinition":
			defs = append(defs, r.JSON)
		case "CodeSystem", "ValueSet":
			terms = append(terms, r.JSON)
		}
	}
	s, err := profile.Compile(profile.Config{
		StructureDefinitions: defs,
		Terminology:          terms,
		Select:               mapping.ProfilesFor,
		CheckSystem:          mapping.IsGuideSystem,
	})
	if err != nil {
		return nil, fmt.Errorf("ig: compile the profiles: %w", err)
	}
	return s, nil
})
