package r4

import (
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestCounts(t *testing.T) {
	t.Parallel()
	// R4 4.0.1 has 146 concrete resource types (the 145 of the Patient compartment definition
	// plus Parameters); SubscriptionStatus (4.3.0) in the shared file is left out.
	if got, want := len(ResourceTypes()), 146; got != want {
		t.Errorf("len(ResourceTypes()) = %d, want %d", got, want)
	}
	// search-parameters.json has 1378 entries, one of which (DeviceDefinition-classification)
	// is from 5.0.0-snapshot1 and left out.
	if got, want := len(SearchParams()), 1377; got != want {
		t.Errorf("len(SearchParams()) = %d, want %d", got, want)
	}
	if got, want := len(PatientCompartment()), 67; got != want {
		t.Errorf("len(PatientCompartment()) = %d, want %d", got, want)
	}
}

func TestForeignEntriesLeftOut(t *testing.T) {
	t.Parallel()
	if IsResourceType("SubscriptionStatus") {
		t.Error("SubscriptionStatus (FHIR 4.3.0) is a resource type")
	}
	for _, p := range SearchParamsFor("DeviceDefinition") {
		if p.Code == "classification" {
			t.Errorf("DeviceDefinition has the 5.0.0 search parameter %s", p.ID)
		}
	}
	obs, _ := Type("AuditEvent")
	e, ok := obs.Element("AuditEvent.source.observer")
	if !ok {
		t.Fatal("no AuditEvent.source.observer")
	}
	for _, tg := range e.Types[0].Targets {
		if !IsResourceType(tg) {
			t.Errorf("AuditEvent.source.observer target %q is not a resource type", tg)
		}
	}
}

func TestIsResourceType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"Patient", true},
		{"Observation", true},
		{"Parameters", true},
		{"Bundle", true},
		{"patient", false},
		{"Resource", false},
		{"DomainResource", false},
		{"HumanName", false},
		{"MetadataResource", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsResourceType(tt.name); got != tt.want {
			t.Errorf("IsResourceType(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestElement(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		typ       string
		path      string
		wantTypes []string // codes
		targets   []string // of the first type
		summary   bool
		modifier  bool
		min       int
		max       string
		contRef   string
		binding   string // strength
		jsonNames []string
	}{
		{name: "birthDate", typ: "Patient", path: "Patient.birthDate", wantTypes: []string{"date"}, summary: true, max: "1", jsonNames: []string{"birthDate"}},
		{name: "active modifier", typ: "Patient", path: "Patient.active", wantTypes: []string{"boolean"}, summary: true, modifier: true, max: "1"},
		{name: "choice by stem", typ: "Observation", path: "Observation.value",
			wantTypes: []string{"Quantity", "CodeableConcept", "string", "boolean", "integer", "Range", "Ratio", "SampledData", "time", "dateTime", "Period"},
			summary:   true, max: "1",
			jsonNames: []string{"valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger", "valueRange", "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod"}},
		{name: "choice by path", typ: "Observation", path: "Observation.value[x]",
			wantTypes: []string{"Quantity", "CodeableConcept", "string", "boolean", "integer", "Range", "Ratio", "SampledData", "time", "dateTime", "Period"},
			summary:   true, max: "1"},
		{name: "status required", typ: "Observation", path: "Observation.status", wantTypes: []string{"code"}, summary: true, modifier: true, min: 1, max: "1", binding: "required"},
		{name: "reference targets", typ: "Observation", path: "Observation.subject", wantTypes: []string{"Reference"},
			targets: []string{"Patient", "Group", "Device", "Location"}, summary: true, max: "1"},
		{name: "canonical targets", typ: "Questionnaire", path: "Questionnaire.derivedFrom", wantTypes: []string{"canonical"}, targets: []string{"Questionnaire"}, max: "*"},
		{name: "content reference", typ: "Questionnaire", path: "Questionnaire.item.item", contRef: "#Questionnaire.item", max: "*"},
		{name: "backbone", typ: "Patient", path: "Patient.contact", wantTypes: []string{"BackboneElement"}, max: "*"},
		{name: "resource id", typ: "Patient", path: "Patient.id", wantTypes: []string{"string"}, summary: true, max: "1"},
		{name: "datatype element", typ: "HumanName", path: "HumanName.given", wantTypes: []string{"string"}, summary: true, max: "*"},
		{name: "primitive value", typ: "date", path: "date.value", wantTypes: []string{"http://hl7.org/fhirpath/System.Date"}, max: "1"},
		{name: "extension url", typ: "Extension", path: "Extension.url", wantTypes: []string{"uri"}, min: 1, max: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			td, ok := Type(tt.typ)
			if !ok {
				t.Fatalf("Type(%q) not found", tt.typ)
			}
			e, ok := td.Element(tt.path)
			if !ok {
				t.Fatalf("Element(%q) not found", tt.path)
			}
			var codes []string
			for _, et := range e.Types {
				codes = append(codes, et.Code)
			}
			if !slices.Equal(codes, tt.wantTypes) {
				t.Errorf("types = %v, want %v", codes, tt.wantTypes)
			}
			if tt.targets != nil && !slices.Equal(e.Types[0].Targets, tt.targets) {
				t.Errorf("targets = %v, want %v", e.Types[0].Targets, tt.targets)
			}
			if e.Summary != tt.summary || e.Modifier != tt.modifier || e.Min != tt.min || e.Max != tt.max {
				t.Errorf("summary, modifier, min, max = %v, %v, %d, %q; want %v, %v, %d, %q",
					e.Summary, e.Modifier, e.Min, e.Max, tt.summary, tt.modifier, tt.min, tt.max)
			}
			if e.ContentReference != tt.contRef {
				t.Errorf("contentReference = %q, want %q", e.ContentReference, tt.contRef)
			}
			if got := ""; e.Binding != nil {
				got = e.Binding.Strength
				if got != tt.binding {
					t.Errorf("binding strength = %q, want %q", got, tt.binding)
				}
				if e.Binding.ValueSet == "" {
					t.Error("binding without value set")
				}
			} else if tt.binding != "" {
				t.Errorf("no binding, want %q", tt.binding)
			}
			if tt.jsonNames != nil && !slices.Equal(e.JSONNames(), tt.jsonNames) {
				t.Errorf("JSONNames() = %v, want %v", e.JSONNames(), tt.jsonNames)
			}
		})
	}
}

func TestSummaryAndRequired(t *testing.T) {
	t.Parallel()
	patient, _ := Type("Patient")
	wantSummary := []string{"id", "meta", "implicitRules", "identifier", "active", "name", "telecom", "gender",
		"birthDate", "deceased", "address", "managingOrganization", "link"}
	if got := patient.Summary(); !slices.Equal(got, wantSummary) {
		t.Errorf("Patient.Summary() = %v, want %v", got, wantSummary)
	}
	obs, _ := Type("Observation")
	if got, want := obs.Required(), []string{"status", "code"}; !slices.Equal(got, want) {
		t.Errorf("Observation.Required() = %v, want %v", got, want)
	}
	if got := obs.Summary(); !slices.Contains(got, "value") || !slices.Contains(got, "effective") {
		t.Errorf("Observation.Summary() = %v, want value and effective (choice stems)", got)
	}
}

func TestTypeKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, kind, base string
		abstract         bool
	}{
		{"Patient", KindResource, "DomainResource", false},
		{"Bundle", KindResource, "Resource", false},
		{"DomainResource", KindResource, "Resource", true},
		{"Resource", KindResource, "", true},
		{"HumanName", KindComplexType, "Element", false},
		{"Age", KindComplexType, "Quantity", false},
		{"BackboneElement", KindComplexType, "Element", true},
		{"code", KindPrimitiveType, "string", false},
		{"dateTime", KindPrimitiveType, "Element", false},
	}
	for _, tt := range tests {
		td, ok := Type(tt.name)
		if !ok {
			t.Errorf("Type(%q) not found", tt.name)
			continue
		}
		if td.Name != tt.name || td.Kind != tt.kind || td.Base != tt.base || td.Abstract != tt.abstract {
			t.Errorf("Type(%q) = {%s %s base=%q abstract=%v}, want {%s %s base=%q abstract=%v}",
				tt.name, td.Name, td.Kind, td.Base, td.Abstract, tt.name, tt.kind, tt.base, tt.abstract)
		}
	}
	if _, ok := Type("SimpleQuantity"); ok {
		t.Error("Type(SimpleQuantity) found; profiles are not types")
	}
}

func TestSearchParamsFor(t *testing.T) {
	t.Parallel()
	codes := func(ps []SearchParam) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Code)
		}
		return out
	}
	patient := codes(SearchParamsFor("Patient"))
	for _, c := range []string{"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_text", "_content", "_query",
		"birthdate", "name", "family", "identifier", "general-practitioner", "phone", "deceased"} {
		if !slices.Contains(patient, c) {
			t.Errorf("SearchParamsFor(Patient) lacks %q", c)
		}
	}
	if !sort.StringsAreSorted(patient) {
		t.Errorf("SearchParamsFor(Patient) not sorted by code: %v", patient)
	}
	bundle := codes(SearchParamsFor("Bundle"))
	if slices.Contains(bundle, "_text") {
		t.Error("Bundle is not a DomainResource but has _text")
	}
	if !slices.Contains(bundle, "_id") {
		t.Error("Bundle lacks _id")
	}
	// Multi-base parameters apply to each of their bases.
	var found bool
	for _, p := range SearchParamsFor("CarePlan") {
		if p.ID == "clinical-patient" {
			found = true
			if !strings.Contains(p.Expression, "CarePlan.subject.where(resolve() is Patient)") {
				t.Errorf("clinical-patient expression = %q", p.Expression)
			}
		}
	}
	if !found {
		t.Error("SearchParamsFor(CarePlan) lacks clinical-patient")
	}
	if SearchParamsFor("HumanName") != nil || SearchParamsFor("Nope") != nil {
		t.Error("SearchParamsFor of a non-resource is not nil")
	}
}

// TestDataConsistent checks that the embedded data decodes, is sorted and refers only to
// what it defines.
func TestDataConsistent(t *testing.T) {
	t.Parallel()
	m, err := decode(dataFS)
	if err != nil {
		t.Fatal(err)
	}
	if !sort.StringsAreSorted(m.resourceTypes) {
		t.Error("resource types not sorted")
	}
	for name, td := range m.types {
		if td.Base != "" {
			if _, ok := m.types[td.Base]; !ok {
				t.Errorf("%s: unknown base %q", name, td.Base)
			}
		}
		for _, e := range td.Elements {
			if e.Path != name && !strings.HasPrefix(e.Path, name+".") {
				t.Errorf("%s: element %s outside the type", name, e.Path)
			}
			if (len(e.Types) == 0) != (e.Path == name || e.ContentReference != "") {
				t.Errorf("%s: element %s has types %v and contentReference %q", name, e.Path, e.Types, e.ContentReference)
			}
			if ref := strings.TrimPrefix(e.ContentReference, "#"); ref != "" {
				if _, ok := td.Element(ref); !ok {
					t.Errorf("%s: contentReference %s not found", e.Path, e.ContentReference)
				}
			}
			for _, et := range e.Types {
				if _, ok := m.types[et.Code]; !ok && !strings.HasPrefix(et.Code, "http://hl7.org/fhirpath/System.") {
					t.Errorf("%s: unknown type %q", e.Path, et.Code)
				}
				for _, tg := range et.Targets {
					if _, ok := m.types[tg]; !ok {
						t.Errorf("%s: unknown target %q", e.Path, tg)
					}
				}
			}
		}
	}
	ids := make([]string, len(m.params))
	for i, p := range m.params {
		ids[i] = p.ID
		for _, b := range p.Base {
			if _, ok := m.types[b]; !ok {
				t.Errorf("%s: unknown base %q", p.ID, b)
			}
		}
		for _, tg := range p.Target {
			if !IsResourceType(tg) {
				t.Errorf("%s: unknown target %q", p.ID, tg)
			}
		}
		if !sort.StringsAreSorted(p.Target) {
			t.Errorf("%s: targets not sorted", p.ID)
		}
		for _, c := range p.Component {
			if _, ok := SearchParamByURL(c.Definition); !ok {
				t.Errorf("%s: component %s not defined", p.ID, c.Definition)
			}
		}
		if (p.Type == "composite") != (len(p.Component) > 0) {
			t.Errorf("%s: type %s with %d components", p.ID, p.Type, len(p.Component))
		}
	}
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			t.Errorf("search parameters not strictly sorted by id: %s before %s", ids[i-1], ids[i])
		}
	}
	for rt, params := range m.compartment {
		if !IsResourceType(rt) {
			t.Errorf("compartment: unknown resource type %q", rt)
		}
		if !sort.StringsAreSorted(params) {
			t.Errorf("compartment %s: params not sorted", rt)
		}
		codes := map[string]bool{}
		for _, p := range SearchParamsFor(rt) {
			codes[p.Code] = true
		}
		for _, c := range params {
			if !codes[c] {
				t.Errorf("compartment %s: param %q is not a search parameter of the type", rt, c)
			}
		}
	}
}

func TestPatientCompartment(t *testing.T) {
	t.Parallel()
	c := PatientCompartment()
	tests := []struct {
		typ  string
		want []string
	}{
		{"Observation", []string{"performer", "subject"}},
		{"Patient", []string{"link"}},
		{"AllergyIntolerance", []string{"asserter", "patient", "recorder"}},
	}
	for _, tt := range tests {
		if got := c[tt.typ]; !slices.Equal(got, tt.want) {
			t.Errorf("PatientCompartment()[%s] = %v, want %v", tt.typ, got, tt.want)
		}
	}
	if _, ok := c["ActivityDefinition"]; ok {
		t.Error("ActivityDefinition is in the Patient compartment")
	}
	c["Observation"][0] = "changed"
	if PatientCompartment()["Observation"][0] != "performer" {
		t.Error("PatientCompartment shares its slices with the caller")
	}
}

func TestTypeNames(t *testing.T) {
	t.Parallel()
	names := TypeNames()
	if !sort.StringsAreSorted(names) {
		t.Error("TypeNames() not sorted")
	}
	// 146 resources, Resource, DomainResource, 20 primitive and 41 complex types (with Element
	// and BackboneElement).
	if got, want := len(names), 146+2+20+41; got != want {
		t.Errorf("len(TypeNames()) = %d, want %d", got, want)
	}
	for _, n := range names {
		if _, ok := Type(n); !ok {
			t.Errorf("Type(%q) not found", n)
		}
	}
}
