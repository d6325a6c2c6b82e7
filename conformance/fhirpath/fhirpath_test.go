package fhirpath

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func decode(tb testing.TB, s string) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// render shows a result as "Type:value" items, with complex values as compact JSON.
func render(tb testing.TB, nodes []Node) string {
	tb.Helper()
	var parts []string
	for _, n := range nodes {
		var v string
		switch x := n.Value.(type) {
		case string:
			v = x
		case map[string]any, []any:
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			if err := enc.Encode(x); err != nil {
				tb.Fatal(err)
			}
			v = strings.TrimSpace(buf.String())
		default:
			v = fmt.Sprint(x)
		}
		parts = append(parts, n.Type+":"+v)
	}
	return strings.Join(parts, " ")
}

const (
	patientJSON = `{
  "resourceType": "Patient", "id": "p1",
  "meta": {"lastUpdated": "2024-01-02T03:04:05Z", "tag": [{"system": "s", "code": "t"}]},
  "extension": [
    {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": {"city": "Utrecht"}},
    {"url": "http://example.org/nickname", "valueString": "Jan"}
  ],
  "name": [{"family": "Jansen", "given": ["Jan", "Piet"]}, {"family": "Smit"}],
  "telecom": [{"system": "phone", "value": "0301234567"}, {"system": "email", "value": "jan@example.org"}],
  "birthDate": "2010-05-06",
  "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "2010-05-06T07:08:00+02:00"}]},
  "deceasedBoolean": false,
  "generalPractitioner": [{"reference": "Practitioner/gp"}, {"reference": "Organization/org"}],
  "contained": [{"resourceType": "Organization", "id": "o1", "name": "Clinic"}],
  "managingOrganization": {"reference": "#o1"},
  "link": [{"other": {"reference": "https://example.org/fhir/RelatedPerson/rp/_history/2"}, "type": "seealso"},
           {"other": {"reference": "urn:uuid:6f1e", "type": "Patient"}, "type": "refer"},
           {"other": {"identifier": {"value": "x"}}, "type": "refer"}]
}`
	observationJSON = `{
  "resourceType": "Observation", "id": "o1", "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
  "subject": {"reference": "Patient/p1"},
  "performer": [{"reference": "Practitioner/pr"}, {"reference": "Patient/p1"}],
  "effectiveDateTime": "2024-01-01T10:00:00Z",
  "valueQuantity": {"value": 72.50, "unit": "beats/min", "system": "http://unitsofmeasure.org", "code": "/min"},
  "component": [
    {"code": {"text": "systolic"}, "valueQuantity": {"value": 120}},
    {"code": {"text": "position"}, "valueCodeableConcept": {"text": "sitting"}},
    {"code": {"text": "note"}, "valueString": "calm"}
  ]
}`
	carePlanJSON = `{"resourceType": "CarePlan", "id": "c1", "status": "active", "intent": "plan",
  "subject": {"reference": "Patient/p1"}, "activity": [{"detail": {"status": "scheduled", "code": {"text": "walk"}}}]}`
	bundleJSON = `{"resourceType": "Bundle", "type": "document",
  "entry": [{"fullUrl": "urn:uuid:c", "resource": {"resourceType": "Composition", "id": "c", "status": "final", "subject": {"reference": "urn:uuid:p"}}},
            {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "pp"}}]}`
	deceasedDateJSON  = `{"resourceType": "Patient", "deceasedDateTime": "2020-01-01"}`
	questionnaireJSON = `{"resourceType": "Questionnaire", "status": "active",
  "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "string", "code": [{"code": "x"}]}]}]}`
)

func TestEvaluate(t *testing.T) {
	t.Parallel()
	resources := map[string]map[string]any{
		"patient":       decode(t, patientJSON),
		"observation":   decode(t, observationJSON),
		"careplan":      decode(t, carePlanJSON),
		"bundle":        decode(t, bundleJSON),
		"deceased":      decode(t, deceasedDateJSON),
		"questionnaire": decode(t, questionnaireJSON),
	}
	tests := []struct {
		name     string
		resource string
		expr     string
		want     string
	}{
		// Paths and types.
		{"primitive typed", "patient", "Patient.birthDate", "date:2010-05-06"},
		{"repeating", "patient", "Patient.name.given", "string:Jan string:Piet"},
		{"complex typed", "patient", "Patient.name.family", "string:Jansen string:Smit"},
		{"resource base", "patient", "Resource.meta.lastUpdated", "instant:2024-01-02T03:04:05Z"},
		{"domain resource base", "patient", "DomainResource.contained.name", "string:Clinic"},
		{"resource id", "patient", "Resource.id", "string:p1"},
		{"other type gives nothing", "patient", "Observation.code", ""},
		{"choice by stem", "observation", "Observation.value", `Quantity:{"code":"/min","system":"http://unitsofmeasure.org","unit":"beats/min","value":72.50}`},
		{"choice into child keeps decimal", "observation", "Observation.value.value", "decimal:72.50"},
		{"choice by JSON name", "observation", "Observation.valueQuantity.unit", "string:beats/min"},
		{"choice in backbone", "observation", "Observation.component.value", `Quantity:{"value":120} CodeableConcept:{"text":"sitting"} string:calm`},
		{"choice boolean", "patient", "Patient.deceased", "boolean:false"},
		{"backbone type", "observation", "Observation.component.code.text", "string:systolic string:position string:note"},
		{"content reference", "questionnaire", "Questionnaire.item.item.code.code", "code:x"},
		{"primitive extensions ignored", "patient", "Patient.birthDate.extension", ""},
		{"indexer", "patient", "Patient.name[1].family", "string:Smit"},
		{"indexer out of range", "patient", "Patient.name[5]", ""},
		{"bundle entry resource typed", "bundle", "Bundle.entry[0].resource.status", "code:final"},
		{"bundle entry resource type", "bundle", "Bundle.entry.resource.ofType(Patient).id", "string:pp"},

		// as, is, ofType.
		{"as operator", "observation", "(Observation.value as Quantity).unit", "string:beats/min"},
		{"as other type", "observation", "Observation.value as CodeableConcept", ""},
		{"as function", "observation", "Observation.effective.as(dateTime)", "dateTime:2024-01-01T10:00:00Z"},
		{"as system type", "observation", "Observation.effective.as(DateTime)", "dateTime:2024-01-01T10:00:00Z"},
		{"as filters many", "observation", "(Observation.component.value as CodeableConcept).text", "string:sitting"},
		{"as string", "observation", "Observation.component.value.as(string)", "string:calm"},
		{"is", "observation", "Observation.value is Quantity", "boolean:true"},
		{"is qualified", "observation", "Observation.value is FHIR.Quantity", "boolean:true"},
		{"is subtype", "patient", "Patient is DomainResource", "boolean:true"},
		{"ofType", "observation", "Observation.component.value.ofType(Quantity).value", "decimal:120"},
		{"system String matches code", "observation", "Observation.status is String", "boolean:true"},

		// where and resolve.
		{"where literal", "patient", "Patient.telecom.where(system='email').value", "string:jan@example.org"},
		{"where resolve is", "observation", "Observation.performer.where(resolve() is Patient)", `Reference:{"reference":"Patient/p1"}`},
		{"where resolve is other", "observation", "Observation.performer.where(resolve() is Practitioner).reference", "string:Practitioner/pr"},
		{"resolve absolute with history", "patient", "Patient.link.other.where(resolve() is RelatedPerson).reference", "string:https://example.org/fhir/RelatedPerson/rp/_history/2"},
		{"resolve by Reference.type", "patient", "Patient.link.other.where(resolve() is Patient).reference", "string:urn:uuid:6f1e"},
		{"resolve contained", "patient", "Patient.managingOrganization.resolve().name", "string:Clinic"},
		{"resolve stub", "observation", "Observation.subject.resolve().id", "string:p1"},
		{"resolve bundle entry", "bundle", "Bundle.entry[0].resource.subject.resolve().id", "string:pp"},
		{"resolve identifier only", "patient", "Patient.link[2].other.resolve()", ""},
		{"where several", "patient", "Patient.generalPractitioner.where(resolve() is Organization or resolve() is Practitioner).reference",
			"string:Practitioner/gp string:Organization/org"},

		// Unions across resource types: only the part for the resource's own type applies.
		{"multi-type union", "careplan", "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | Observation.subject.where(resolve() is Patient)",
			`Reference:{"reference":"Patient/p1"}`},
		{"multi-type union other", "observation", "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | Observation.subject.where(resolve() is Patient)",
			`Reference:{"reference":"Patient/p1"}`},
		{"union removes duplicates", "observation", "Observation.subject | Observation.performer", `Reference:{"reference":"Patient/p1"} Reference:{"reference":"Practitioner/pr"}`},
		{"union of resource and component", "observation", "(Observation | Observation.component).code.text", "string:systolic string:position string:note"},
		{"combo code", "observation", "Observation.code.coding.code | Observation.component.code.text", "code:8867-4 string:systolic string:position string:note"},

		// Extensions.
		{"extension value", "patient", "Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace').value", `Address:{"city":"Utrecht"}`},
		{"extension value child", "patient", "Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace').value.city", "string:Utrecht"},
		{"extension string", "patient", "Patient.extension('http://example.org/nickname').value", "string:Jan"},
		{"extension where", "patient", "Patient.extension.where(url='http://example.org/nickname').value.as(string)", "string:Jan"},
		{"extension missing", "patient", "Patient.extension('http://example.org/none').value", ""},

		// Logic, exists, empty (Patient-deceased).
		{"deceased boolean false", "patient", "Patient.deceased.exists() and Patient.deceased != false", "boolean:false"},
		{"deceased date", "deceased", "Patient.deceased.exists() and Patient.deceased != false", "boolean:true"},
		{"deceased absent", "observation", "Patient.deceased.exists() and Patient.deceased != false", "boolean:false"},
		{"exists criteria", "patient", "Patient.name.exists(family = 'Smit')", "boolean:true"},
		{"empty", "patient", "Patient.photo.empty()", "boolean:true"},
		{"not", "patient", "Patient.active.exists().not()", "boolean:true"},
		{"or unknown", "patient", "Patient.active or true", "boolean:true"},
		{"and unknown", "patient", "Patient.active and true", ""},
		{"implies", "patient", "Patient.active implies false", ""},
		{"xor", "patient", "true xor false", "boolean:true"},

		// Functions and operators.
		{"first", "patient", "Patient.name.first().family", "string:Jansen"},
		{"last", "patient", "Patient.name.given.last()", "string:Piet"},
		{"count", "patient", "Patient.name.given.count()", "integer:2"},
		{"startsWith", "patient", "Patient.telecom.value.where($this.startsWith('030'))", "string:0301234567"},
		{"contains function", "patient", "Patient.name.where(family.contains('ans')).family", "string:Jansen"},
		{"endsWith", "patient", "Patient.telecom.where(value.endsWith('.org')).system", "code:email"},
		{"matches", "patient", "Patient.birthDate.matches('^[0-9]{4}-')", "boolean:true"},
		{"in", "patient", "'Jan' in Patient.name.given", "boolean:true"},
		{"contains operator", "patient", "Patient.name.given contains 'Kees'", "boolean:false"},
		{"compare strings", "patient", "Patient.birthDate > '2000'", "boolean:true"},
		{"compare numbers", "observation", "Observation.value.value >= 72.5", "boolean:true"},
		{"equal numbers", "observation", "Observation.value.value = 72.5", "boolean:true"},
		{"equivalent", "patient", "Patient.name.first().family ~ 'JANSEN'", "boolean:true"},
		{"not equal collections", "patient", "Patient.name.given = 'Jan'", "boolean:false"},
		{"select", "patient", "Patient.name.select(given.first())", "string:Jan"},
		{"root variable", "observation", "Observation.component.where(%resource.status = 'final').code.text.first()", "string:systolic"},
		{"this", "patient", "Patient.name.given.where($this = 'Piet')", "string:Piet"},
		{"empty literal", "patient", "{}", ""},
		{"ucum", "observation", "Observation.value.where(system = %ucum).code", "code:/min"},
		{"distinct", "observation", "(Observation.subject.reference | Observation.performer.reference).distinct().count()", "integer:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := Compile(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			out, err := e.Evaluate(resources[tt.resource])
			if err != nil {
				t.Fatal(err)
			}
			if got := render(t, out); got != tt.want {
				t.Errorf("%s on %s\n got: %s\nwant: %s", tt.expr, tt.resource, got, tt.want)
			}
		})
	}
}

func TestEvaluateAtComposite(t *testing.T) {
	t.Parallel()
	obs := decode(t, observationJSON)
	main := MustCompile("Observation | Observation.component")
	code := MustCompile("code")
	value := MustCompile("value.as(Quantity)")
	var got []string
	items, err := main.Evaluate(obs)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		c, err := code.EvaluateAt(obs, it)
		if err != nil {
			t.Fatal(err)
		}
		v, err := value.EvaluateAt(obs, it)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, render(t, c)+" & "+render(t, v))
	}
	want := []string{
		`CodeableConcept:{"coding":[{"code":"8867-4","system":"http://loinc.org"}]} & Quantity:{"code":"/min","system":"http://unitsofmeasure.org","unit":"beats/min","value":72.50}`,
		`CodeableConcept:{"text":"systolic"} & Quantity:{"value":120}`,
		`CodeableConcept:{"text":"position"} & `,
		`CodeableConcept:{"text":"note"} & `,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("composite:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
	// %resource in a component refers to the resource, not the item.
	chrom := MustCompile("%resource.id")
	out, err := chrom.EvaluateAt(obs, items[1])
	if err != nil {
		t.Fatal(err)
	}
	if got := render(t, out); got != "string:o1" {
		t.Errorf("%%resource.id at a component = %s, want string:o1", got)
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr, want string
	}{
		{"memberOf", "Observation.code.memberOf('http://example.org/vs')", "memberOf() is not supported: it needs a terminology service"},
		{"unknown function", "Patient.name.frobnicate()", "unknown function frobnicate()"},
		{"arity", "Patient.name.where()", "where() takes 1 to 1 arguments, got 0"},
		{"unknown type", "Patient.name as Frob", "unknown type Frob"},
		{"unknown leading type", "Patinet.name", "Patinet is not an R4 type"},
		{"arithmetic", "Patient.name.count() + 1", `operator "+" is not supported`},
		{"unterminated string", "Patient.name.where(family = 'x)", "unterminated '"},
		{"trailing", "Patient.name)", `unexpected ")"`},
		{"missing paren", "(Patient.name", `expected ")"`},
		{"unknown constant", "%foo.bar", "unknown constant %foo"},
		{"empty", "", "unexpected end of expression"},
		{"bad regexp", "Patient.id.matches('(')", "matches()"},
		{"too deep", strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200), "nested more than 100 deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tt.expr)
			if err == nil {
				t.Fatalf("Compile(%q) succeeded, want error containing %q", tt.expr, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Compile(%q) error = %q, want it to contain %q", tt.expr, err, tt.want)
			}
		})
	}
}

func TestEvaluateErrors(t *testing.T) {
	t.Parallel()
	p := decode(t, patientJSON)
	tests := []struct {
		name, expr, want string
	}{
		{"where criteria not single", "Patient.name.where(given)", "where(): criteria: expects a single boolean, got 2 items"},
		{"startsWith on many", "Patient.name.given.startsWith('J')", "startsWith(): input: expects a single string, got 2 items"},
		{"startsWith on a complex value", "Patient.name.first().startsWith('J')", "startsWith(): input: expects a string, got HumanName"},
		{"is on many", "Patient.name is HumanName", "is HumanName: expects a single item, got 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := MustCompile(tt.expr).Evaluate(p)
			if err == nil {
				t.Fatalf("%s succeeded, want error containing %q", tt.expr, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.expr) {
				t.Errorf("%s error = %q, want it to contain %q and the expression", tt.expr, err, tt.want)
			}
		})
	}
}

// TestChecker makes sure the static checker used by TestSearchParameterExpressions does
// catch the mistakes it is there for.
func TestChecker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr, root, want string
	}{
		{"ok", "Patient.name.given | Patient.telecom.where(system='phone')", "Patient", ""},
		{"ok choice", "(Observation.value as Quantity).value | Observation.value.as(DateTime)", "Observation", ""},
		{"unknown element", "Patient.nmae", "Patient", `no element "nmae" in Patient`},
		{"unknown nested", "Patient.name.given.value", "Patient", `no element "value" in string`},
		{"as never matches", "Observation.value as Address", "Observation", "Address never matches"},
		{"R5 element", "DeviceDefinition.classification.type", "DeviceDefinition", `no element "classification"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newChecker().check(MustCompile(tt.expr), tt.root, nil)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("check(%s) = %v", tt.expr, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("check(%s) = %v, want error containing %q", tt.expr, err, tt.want)
			}
		})
	}
	// A part for a type outside the bases is reported by TestSearchParameterExpressions
	// through the matched type filters.
	c := newChecker()
	e := MustCompile("Patient.name | Observation.code")
	if _, err := c.check(e, "Patient", nil); err != nil {
		t.Fatal(err)
	}
	var unmatched []string
	for _, tf := range typeFilters(e.root) {
		if !c.matched[tf] {
			unmatched = append(unmatched, tf.name)
		}
	}
	if strings.Join(unmatched, ",") != "Observation" {
		t.Errorf("unmatched type filters = %v, want [Observation]", unmatched)
	}
}

// TestConcurrent evaluates one compiled expression from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	e := MustCompile("Observation.component.where(code.text = 'systolic').value.as(Quantity).value | Observation.subject.where(resolve() is Patient).reference")
	obs := decode(t, observationJSON)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for range 100 {
				out, err := e.Evaluate(obs)
				if err != nil {
					errs <- err
					return
				}
				if len(out) != 2 {
					errs <- fmt.Errorf("got %d items, want 2", len(out))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestResultOwnedByCaller(t *testing.T) {
	t.Parallel()
	e := MustCompile("'a' | 'b'")
	out, err := e.Evaluate(map[string]any{"resourceType": "Patient"})
	if err != nil {
		t.Fatal(err)
	}
	out[0].Value = "changed"
	again, _ := e.Evaluate(map[string]any{"resourceType": "Patient"})
	if again[0].Value != "a" {
		t.Errorf("changing a result changed the expression: %v", again[0].Value)
	}
}

func TestExampleValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, expr, want string
	}{
		{"Patient-example.json", "Patient.birthDate", "date:1974-12-25"},
		{"Patient-example.json", "Patient.deceased.exists() and Patient.deceased != false", "boolean:false"},
		{"Patient-example.json", "Patient.managingOrganization.where(resolve() is Organization).reference", "string:Organization/1"},
		{"Observation-example.json", "(Observation.value as Quantity).value", "decimal:185"},
		{"Observation-example.json", "Observation.subject.where(resolve() is Patient).reference", "string:Patient/example"},
		{"Observation-example-genetics-1.json", "Observation.extension('http://hl7.org/fhir/StructureDefinition/observation-geneticsGene').value.coding.code", "code:3236"},
	}
	for _, tt := range tests {
		t.Run(tt.file+" "+tt.expr, func(t *testing.T) {
			t.Parallel()
			out, err := MustCompile(tt.expr).Evaluate(exampleResource(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := render(t, out); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
