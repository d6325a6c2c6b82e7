// Package sd holds the JSON shapes of the StructureDefinition parts the
// implementation guide writes (ElementDefinition and what it contains), in
// R4 element order, shared by the guide and the generator of its base
// definitions.
package sd

import "encoding/json"

// Element is an R4 ElementDefinition with the members the guide uses. The
// members are in R4 order, so the JSON written is in the order FHIR
// specifies.
type Element struct {
	ID                 string           `json:"id"`
	Path               string           `json:"path"`
	Representation     []string         `json:"representation,omitempty"`
	SliceName          string           `json:"sliceName,omitempty"`
	Slicing            *Slicing         `json:"slicing,omitempty"`
	Short              string           `json:"short,omitempty"`
	Definition         string           `json:"definition,omitempty"`
	Comment            string           `json:"comment,omitempty"`
	Min                *int             `json:"min,omitempty"`
	Max                string           `json:"max,omitempty"`
	Base               *Base            `json:"base,omitempty"`
	ContentReference   string           `json:"contentReference,omitempty"`
	Type               []Type           `json:"type,omitempty"`
	MeaningWhenMissing string           `json:"meaningWhenMissing,omitempty"`
	OrderMeaning       string           `json:"orderMeaning,omitempty"`
	FixedURI           string           `json:"fixedUri,omitempty"`
	FixedCode          string           `json:"fixedCode,omitempty"`
	FixedBoolean       *bool            `json:"fixedBoolean,omitempty"`
	PatternCC          *CodeableConcept `json:"patternCodeableConcept,omitempty"`
	PatternCoding      *Coding          `json:"patternCoding,omitempty"`
	Condition          []string         `json:"condition,omitempty"`
	Constraint         []Constraint     `json:"constraint,omitempty"`
	MustSupport        bool             `json:"mustSupport,omitempty"`
	IsModifier         bool             `json:"isModifier,omitempty"`
	IsModifierReason   string           `json:"isModifierReason,omitempty"`
	IsSummary          bool             `json:"isSummary,omitempty"`
	Binding            *Binding         `json:"binding,omitempty"`
}

// Slicing is ElementDefinition.slicing.
type Slicing struct {
	Discriminator []Discriminator `json:"discriminator,omitempty"`
	Description   string          `json:"description,omitempty"`
	Ordered       *bool           `json:"ordered,omitempty"`
	Rules         string          `json:"rules"`
}

// Discriminator is ElementDefinition.slicing.discriminator.
type Discriminator struct {
	Type string `json:"type"`
	Path string `json:"path"`
}

// Base is ElementDefinition.base.
type Base struct {
	Path string `json:"path"`
	Min  int    `json:"min"`
	Max  string `json:"max"`
}

// Type is ElementDefinition.type.
type Type struct {
	Extension     []Extension `json:"extension,omitempty"`
	Code          string      `json:"code"`
	Profile       []string    `json:"profile,omitempty"`
	TargetProfile []string    `json:"targetProfile,omitempty"`
}

// Extension is an extension of an ElementDefinition type, as the base
// definitions carry them (structuredefinition-fhir-type with a url,
// structuredefinition-hierarchy with a boolean).
type Extension struct {
	URL          string `json:"url"`
	ValueBoolean *bool  `json:"valueBoolean,omitempty"`
	ValueURL     string `json:"valueUrl,omitempty"`
}

// Constraint is ElementDefinition.constraint: an invariant.
type Constraint struct {
	Key        string `json:"key"`
	Severity   string `json:"severity"`
	Human      string `json:"human"`
	Expression string `json:"expression,omitempty"`
	Source     string `json:"source,omitempty"`
}

// Binding is ElementDefinition.binding.
type Binding struct {
	Strength    string `json:"strength"`
	Description string `json:"description,omitempty"`
	ValueSet    string `json:"valueSet,omitempty"`
}

// Coding is a FHIR Coding.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is a FHIR CodeableConcept.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Definition is one base definition as the generator stores it: the
// canonical URL of the R4 StructureDefinition and its snapshot elements.
type Definition struct {
	Type     string    `json:"type"`
	URL      string    `json:"url"`
	Kind     string    `json:"kind"`
	Elements []Element `json:"elements"`
}

// Clone returns a deep copy of e, so a profile can change it without
// touching the base definition it was copied from.
func (e Element) Clone() Element {
	b, err := json.Marshal(e)
	if err != nil {
		panic(err) // the struct holds only strings, numbers and slices of them
	}
	var c Element
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return c
}
