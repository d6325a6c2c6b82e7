package searchparam

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/digitaleouder/ouder/fhir"
)

// extractParams extracts the index of the JSON resource src and keeps the
// entries of the given parameter codes (with modifier suffixes such as
// "identifier:of-type" for the modifier rows).
func extractParams(tb testing.TB, src string, codes ...string) fhir.Index {
	tb.Helper()
	res, err := decode([]byte(src))
	if err != nil {
		tb.Fatalf("bad test resource: %v", err)
	}
	typ, _ := res["resourceType"].(string)
	idx, err := builtinRegistry(tb).Extract(typ, res)
	if err != nil {
		tb.Fatalf("Extract: %v", err)
	}
	keep := map[int64]bool{}
	for _, c := range codes {
		keep[fhir.ParamKey(typ, c)] = true
	}
	var out fhir.Index
	out.Strings = filter(idx.Strings, func(e fhir.StringEntry) bool { return keep[e.Param] })
	out.Tokens = filter(idx.Tokens, func(e fhir.TokenEntry) bool { return keep[e.Param] })
	out.References = filter(idx.References, func(e fhir.ReferenceEntry) bool { return keep[e.Param] })
	out.Dates = filter(idx.Dates, func(e fhir.DateEntry) bool { return keep[e.Param] })
	out.Numbers = filter(idx.Numbers, func(e fhir.NumberEntry) bool { return keep[e.Param] })
	out.Quantities = filter(idx.Quantities, func(e fhir.QuantityEntry) bool { return keep[e.Param] })
	out.URIs = filter(idx.URIs, func(e fhir.URIEntry) bool { return keep[e.Param] })
	return out
}

func filter[E any](s []E, keep func(E) bool) []E {
	var out []E
	for _, e := range s {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

var key = fhir.ParamKey

// utc is a shorthand for test dates.
func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestExtract(t *testing.T) {
	t.Parallel()
	const (
		loinc = "http://loinc.org"
		ucum  = "http://unitsofmeasure.org"
		v2    = "http://terminology.hl7.org/CodeSystem/v2-0203"
	)
	tests := []struct {
		name  string
		src   string
		codes []string
		want  fhir.Index
	}{
		{
			name: "HumanName parts",
			src: `{"resourceType":"Patient","name":[{"family":"van den Berg","given":["Jan","Pieter"],"prefix":["Dr."],
				"suffix":["PhD"],"text":"Dr. Jan Pieter van den Berg"}]}`,
			codes: []string{"name", "family", "given"},
			want: fhir.Index{Strings: []fhir.StringEntry{
				{Param: key("Patient", "given"), Norm: "jan", Exact: "Jan"},
				{Param: key("Patient", "given"), Norm: "pieter", Exact: "Pieter"},
				{Param: key("Patient", "family"), Norm: "van den berg", Exact: "van den Berg"},
				{Param: key("Patient", "name"), Norm: "van den berg", Exact: "van den Berg"},
				{Param: key("Patient", "name"), Norm: "jan", Exact: "Jan"},
				{Param: key("Patient", "name"), Norm: "pieter", Exact: "Pieter"},
				{Param: key("Patient", "name"), Norm: "dr.", Exact: "Dr."},
				{Param: key("Patient", "name"), Norm: "phd", Exact: "PhD"},
				{Param: key("Patient", "name"), Norm: "dr. jan pieter van den berg", Exact: "Dr. Jan Pieter van den Berg"},
			}},
		},
		{
			name: "Address parts",
			src: `{"resourceType":"Patient","address":[{"line":["Oudegracht 1","2e etage"],"city":"Utrecht",
				"district":"Binnenstad","state":"UT","postalCode":"3511 AB","country":"NL","text":"Oudegracht 1, Utrecht"}]}`,
			codes: []string{"address", "address-city", "address-postalcode"},
			want: fhir.Index{Strings: []fhir.StringEntry{
				{Param: key("Patient", "address-postalcode"), Norm: "3511 ab", Exact: "3511 AB"},
				{Param: key("Patient", "address-city"), Norm: "utrecht", Exact: "Utrecht"},
				{Param: key("Patient", "address"), Norm: "oudegracht 1", Exact: "Oudegracht 1"},
				{Param: key("Patient", "address"), Norm: "2e etage", Exact: "2e etage"},
				{Param: key("Patient", "address"), Norm: "utrecht", Exact: "Utrecht"},
				{Param: key("Patient", "address"), Norm: "binnenstad", Exact: "Binnenstad"},
				{Param: key("Patient", "address"), Norm: "ut", Exact: "UT"},
				{Param: key("Patient", "address"), Norm: "3511 ab", Exact: "3511 AB"},
				{Param: key("Patient", "address"), Norm: "nl", Exact: "NL"},
				{Param: key("Patient", "address"), Norm: "oudegracht 1, utrecht", Exact: "Oudegracht 1, Utrecht"},
			}},
		},
		{
			name:  "accents, case and spaces are folded; Exact keeps them",
			src:   `{"resourceType":"Patient","name":[{"family":"Zoë","given":["  Ana \t María ","ÉLISE"]}]}`,
			codes: []string{"given", "family"},
			want: fhir.Index{Strings: []fhir.StringEntry{
				{Param: key("Patient", "given"), Norm: "ana maria", Exact: "  Ana \t María "},
				{Param: key("Patient", "given"), Norm: "elise", Exact: "ÉLISE"},
				{Param: key("Patient", "family"), Norm: "zoe", Exact: "Zoë"},
			}},
		},
		{
			name:  "identical values are indexed once",
			src:   `{"resourceType":"Patient","name":[{"family":"Smit"},{"family":"Smit","given":["Smit"]}]}`,
			codes: []string{"family"},
			want: fhir.Index{Strings: []fhir.StringEntry{
				{Param: key("Patient", "family"), Norm: "smit", Exact: "Smit"},
			}},
		},
		{
			name: "CodeableConcept: codings take the text when they have no display",
			src: `{"resourceType":"Observation","status":"final","code":{"coding":[
				{"system":"http://loinc.org","code":"15074-8","display":"Glucose [Moles/volume] in Blood"},
				{"system":"http://example.org/codes","code":"glu"},
				{"system":"http://loinc.org","code":"15074-8","display":"Glucose [Moles/volume] in Blood"}],
				"text":"Bloedsuiker"}}`,
			codes: []string{"code"},
			want: fhir.Index{Tokens: []fhir.TokenEntry{
				{Param: key("Observation", "code"), System: loinc, Code: "15074-8", Text: "glucose [moles/volume] in blood"},
				{Param: key("Observation", "code"), System: "http://example.org/codes", Code: "glu", Text: "bloedsuiker"},
			}},
		},
		{
			name: "CodeableConcept: the text alone when no coding carries it",
			src: `{"resourceType":"Observation","status":"final","code":{"coding":[
				{"system":"http://loinc.org","code":"15074-8","display":"Glucose"}],"text":"Bloedsuiker"}}`,
			codes: []string{"code"},
			want: fhir.Index{Tokens: []fhir.TokenEntry{
				{Param: key("Observation", "code"), System: loinc, Code: "15074-8", Text: "glucose"},
				{Param: key("Observation", "code"), Text: "bloedsuiker"},
			}},
		},
		{
			name:  "CodeableConcept with only text",
			src:   `{"resourceType":"Observation","status":"final","code":{"text":"Nüchtern Glukose"}}`,
			codes: []string{"code"},
			want: fhir.Index{Tokens: []fhir.TokenEntry{
				{Param: key("Observation", "code"), Text: "nuchtern glukose"},
			}},
		},
		{
			name: "Identifier with type gives of-type rows",
			src: `{"resourceType":"Patient","identifier":[
				{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"999911120",
				 "type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"NNNLD"},
				                   {"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"NI"}],"text":"BSN"}},
				{"system":"urn:oid:1.2.3","value":"A-1"},
				{"use":"official"}]}`,
			codes: []string{"identifier", "identifier:of-type"},
			want: fhir.Index{Tokens: []fhir.TokenEntry{
				{Param: key("Patient", "identifier"), System: "http://fhir.nl/fhir/NamingSystem/bsn", Code: "999911120", Text: "bsn"},
				{Param: key("Patient", "identifier:of-type"), System: v2, Code: "NNNLD", Text: "999911120"},
				{Param: key("Patient", "identifier:of-type"), System: v2, Code: "NI", Text: "999911120"},
				{Param: key("Patient", "identifier"), System: "urn:oid:1.2.3", Code: "A-1"},
			}},
		},
		{
			name: "primitives, booleans and ContactPoint",
			src: `{"resourceType":"Patient","active":true,"gender":"female","deceasedBoolean":false,
				"telecom":[{"system":"email","value":"Zoe@example.org"},{"system":"phone","value":"+31 30 1234567","use":"work"},
				{"use":"home"}]}`,
			codes: []string{"active", "gender", "deceased", "telecom", "email", "phone"},
			want: fhir.Index{Tokens: []fhir.TokenEntry{
				{Param: key("Patient", "gender"), Code: "female"},
				{Param: key("Patient", "phone"), System: "phone", Code: "+31 30 1234567"},
				{Param: key("Patient", "email"), System: "email", Code: "Zoe@example.org"},
				{Param: key("Patient", "deceased"), Code: "false"},
				{Param: key("Patient", "telecom"), System: "email", Code: "Zoe@example.org"},
				{Param: key("Patient", "telecom"), System: "phone", Code: "+31 30 1234567"},
				{Param: key("Patient", "active"), Code: "true"},
			}},
		},
		{
			name: "Reference forms",
			src: `{"resourceType":"Observation","status":"final","code":{"text":"x"},
				"contained":[{"resourceType":"Practitioner","id":"c1"}],
				"performer":[
					{"reference":"Practitioner/p1"},
					{"reference":"Practitioner/p2/_history/3"},
					{"reference":"https://other.example.org/fhir/Organization/o1"},
					{"reference":"https://other.example.org/fhir/Organization/o2/_history/7"},
					{"reference":"urn:uuid:8a4a3f2e-1c1d-4c9b-9d43-5a1bb1f6d1a2"},
					{"reference":"https://example.org/people/about-us"},
					{"reference":"#c1"},
					{"type":"Practitioner","identifier":{"system":"http://fhir.nl/fhir/NamingSystem/uzi","value":"123"}},
					{"reference":"Patient/x","identifier":{"system":"urn:oid:1.2.3","value":"9"}},
					{"display":"Dr. Nobody"}]}`,
			codes: []string{"performer", "performer:identifier"},
			want: fhir.Index{
				References: []fhir.ReferenceEntry{
					{Param: key("Observation", "performer"), Type: "Practitioner", ID: "p1"},
					{Param: key("Observation", "performer"), Type: "Practitioner", ID: "p2", Version: "3"},
					{Param: key("Observation", "performer"), Type: "Organization", ID: "o1", URL: "https://other.example.org/fhir/Organization/o1"},
					{Param: key("Observation", "performer"), Type: "Organization", ID: "o2", Version: "7", URL: "https://other.example.org/fhir/Organization/o2/_history/7"},
					{Param: key("Observation", "performer"), URL: "urn:uuid:8a4a3f2e-1c1d-4c9b-9d43-5a1bb1f6d1a2"},
					{Param: key("Observation", "performer"), URL: "https://example.org/people/about-us"},
					{Param: key("Observation", "performer"), Type: "Patient", ID: "x"},
				},
				Tokens: []fhir.TokenEntry{
					{Param: key("Observation", "performer:identifier"), System: "http://fhir.nl/fhir/NamingSystem/uzi", Code: "123"},
					{Param: key("Observation", "performer:identifier"), System: "urn:oid:1.2.3", Code: "9"},
				},
			},
		},
		{
			name:  "canonical reference: version split off",
			src:   `{"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"http://example.org/Questionnaire/intake|2.1"}`,
			codes: []string{"questionnaire"},
			want: fhir.Index{References: []fhir.ReferenceEntry{
				{Param: key("QuestionnaireResponse", "questionnaire"), URL: "http://example.org/Questionnaire/intake", Version: "2.1"},
			}},
		},
		{
			name:  "relative canonical reference",
			src:   `{"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"Questionnaire/gcs"}`,
			codes: []string{"questionnaire"},
			want: fhir.Index{References: []fhir.ReferenceEntry{
				{Param: key("QuestionnaireResponse", "questionnaire"), Type: "Questionnaire", ID: "gcs", URL: "Questionnaire/gcs"},
			}},
		},
		{
			name:  "date precisions: year",
			src:   `{"resourceType":"Patient","birthDate":"1974"}`,
			codes: []string{"birthdate"},
			want: fhir.Index{Dates: []fhir.DateEntry{
				{Param: key("Patient", "birthdate"), Lo: utc("1974-01-01T00:00:00Z"), Hi: utc("1975-01-01T00:00:00Z")},
			}},
		},
		{
			name:  "date precisions: month",
			src:   `{"resourceType":"Patient","birthDate":"1974-02"}`,
			codes: []string{"birthdate"},
			want: fhir.Index{Dates: []fhir.DateEntry{
				{Param: key("Patient", "birthdate"), Lo: utc("1974-02-01T00:00:00Z"), Hi: utc("1974-03-01T00:00:00Z")},
			}},
		},
		{
			name:  "date precisions: day",
			src:   `{"resourceType":"Patient","birthDate":"1974-12-31"}`,
			codes: []string{"birthdate"},
			want: fhir.Index{Dates: []fhir.DateEntry{
				{Param: key("Patient", "birthdate"), Lo: utc("1974-12-31T00:00:00Z"), Hi: utc("1975-01-01T00:00:00Z")},
			}},
		},
		{
			name:  "date precisions: seconds with an offset, read in UTC",
			src:   `{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2020-03-04T10:15:00+01:00"}`,
			codes: []string{"date"},
			want: fhir.Index{Dates: []fhir.DateEntry{
				{Param: key("Observation", "date"), Lo: utc("2020-03-04T09:15:00Z"), Hi: utc("2020-03-04T09:15:01Z")},
			}},
		},
		{
			name:  "an instant is a point, whatever its digits",
			src:   `{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveInstant":"2020-03-04T10:15:00.250Z"}`,
			codes: []string{"date"},
			want: fhir.Index{Dates: []fhir.DateEntry{
				{Param: key("Observation", "date"), Lo: utc("2020-03-04T10:15:00.250Z"), Hi: utc("2020-03-04T10:15:00.250001Z")},
			}},
		},
		{
			name:  "date precisions: time without zone is UTC",
			src:   `{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2020-03-04T10:15:00"}`,
			codes: []string{"date"},
			want: fhir.Index{Dates: []fhir.DateEntry{
				{Param: key("Observation", "date"), Lo: utc("2020-03-04T10:15:00Z"), Hi: utc("2020-03-04T10:15:01Z")},
			}},
		},
		{
			name:  "Period",
			src:   `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"period":{"start":"2020-01-01","end":"2020-01-31"}}`,
			codes: []string{"date"},
			want: fhir.Index{Dates: []fhir.DateEntry{
				{Param: key("Encounter", "date"), Lo: utc("2020-01-01T00:00:00Z"), Hi: utc("2020-02-01T00:00:00Z")},
			}},
		},
		{
			name:  "Period without end",
			src:   `{"resourceType":"Encounter","status":"in-progress","class":{"code":"AMB"},"period":{"start":"2020-01-01T10:00:00Z"}}`,
			codes: []string{"date"},
			want: fhir.Index{Dates: []fhir.DateEntry{
				{Param: key("Encounter", "date"), Lo: utc("2020-01-01T10:00:00Z"), Hi: fhir.MaxTime},
			}},
		},
		{
			name:  "Period without start",
			src:   `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"period":{"end":"2020"}}`,
			codes: []string{"date"},
			want: fhir.Index{Dates: []fhir.DateEntry{
				{Param: key("Encounter", "date"), Lo: fhir.MinTime, Hi: utc("2021-01-01T00:00:00Z")},
			}},
		},
		{
			name: "Timing events and bounds",
			src: `{"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"reference":"Patient/p"},
				"occurrenceTiming":{"event":["2020-05-01","2020-05-08"],"repeat":{"boundsPeriod":{"start":"2020-06-01","end":"2020-06-30"},"frequency":1,"period":1,"periodUnit":"wk"}}}`,
			codes: []string{"occurrence"},
			want: fhir.Index{Dates: []fhir.DateEntry{
				{Param: key("ServiceRequest", "occurrence"), Lo: utc("2020-05-01T00:00:00Z"), Hi: utc("2020-05-02T00:00:00Z")},
				{Param: key("ServiceRequest", "occurrence"), Lo: utc("2020-05-08T00:00:00Z"), Hi: utc("2020-05-09T00:00:00Z")},
				{Param: key("ServiceRequest", "occurrence"), Lo: utc("2020-06-01T00:00:00Z"), Hi: utc("2020-07-01T00:00:00Z")},
			}},
		},
		{
			name: "numbers keep their precision",
			src: `{"resourceType":"RiskAssessment","status":"final","subject":{"reference":"Patient/p"},"prediction":[
				{"probabilityDecimal":0.02},{"probabilityDecimal":100},{"probabilityDecimal":1.50},{"probabilityDecimal":-3},
				{"probabilityRange":{"low":{"value":1},"high":{"value":2}}}]}`,
			codes: []string{"probability"},
			want: fhir.Index{Numbers: []fhir.NumberEntry{
				{Param: key("RiskAssessment", "probability"), Value: "0.02", Lo: "0.015", Hi: "0.025"},
				{Param: key("RiskAssessment", "probability"), Value: "100", Lo: "99.5", Hi: "100.5"},
				{Param: key("RiskAssessment", "probability"), Value: "1.50", Lo: "1.495", Hi: "1.505"},
				{Param: key("RiskAssessment", "probability"), Value: "-3", Lo: "-3.5", Hi: "-2.5"},
			}},
		},
		{
			name: "Quantity",
			src: `{"resourceType":"Observation","status":"final","code":{"text":"glucose"},
				"valueQuantity":{"value":5.40,"unit":"mmol/l","system":"http://unitsofmeasure.org","code":"mmol/L"}}`,
			codes: []string{"value-quantity"},
			want: fhir.Index{Quantities: []fhir.QuantityEntry{
				{Param: key("Observation", "value-quantity"), Value: "5.40", Lo: "5.395", Hi: "5.405", System: ucum, Code: "mmol/L", Unit: "mmol/l"},
			}},
		},
		{
			name:  "Quantity without value",
			src:   `{"resourceType":"Observation","status":"final","code":{"text":"glucose"},"valueQuantity":{"unit":"mmol/l"}}`,
			codes: []string{"value-quantity"},
		},
		{
			name:  "Age",
			src:   `{"resourceType":"Condition","subject":{"reference":"Patient/p"},"onsetAge":{"value":52,"unit":"years","system":"http://unitsofmeasure.org","code":"a"}}`,
			codes: []string{"onset-age"},
			want: fhir.Index{Quantities: []fhir.QuantityEntry{
				{Param: key("Condition", "onset-age"), Value: "52", Lo: "51.5", Hi: "52.5", System: ucum, Code: "a", Unit: "years"},
			}},
		},
		{
			name:  "Money",
			src:   `{"resourceType":"Invoice","status":"issued","totalNet":{"value":100.50,"currency":"EUR"}}`,
			codes: []string{"totalnet"},
			want: fhir.Index{Quantities: []fhir.QuantityEntry{
				{Param: key("Invoice", "totalnet"), Value: "100.50", Lo: "100.495", Hi: "100.505", System: "urn:iso:std:iso:4217", Code: "EUR"},
			}},
		},
		{
			name: "meta: _tag, _security, _profile, _source",
			src: `{"resourceType":"Patient","meta":{
				"profile":["http://example.org/StructureDefinition/patient-nl|1.0"],
				"tag":[{"system":"http://example.org/tags","code":"test","display":"Test Data"}],
				"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"}],
				"source":"http://example.org/source#a1"}}`,
			codes: []string{"_tag", "_security", "_profile", "_source"},
			want: fhir.Index{
				Tokens: []fhir.TokenEntry{
					{Param: key("Patient", "_security"), System: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", Code: "R"},
					{Param: key("Patient", "_tag"), System: "http://example.org/tags", Code: "test", Text: "test data"},
				},
				URIs: []fhir.URIEntry{
					{Param: key("Patient", "_profile"), Value: "http://example.org/StructureDefinition/patient-nl|1.0"},
					{Param: key("Patient", "_source"), Value: "http://example.org/source#a1"},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := extractParams(t, tt.src, tt.codes...)
			// Entries of different parameters come in the order of their keys,
			// which are hashes: compare each parameter's entries in order.
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty(), sortByParam); diff != "" {
				t.Errorf("Extract (-want +got):\n%s", diff)
			}
		})
	}
}

// sortByParam orders entries by parameter only, keeping the order within a
// parameter (the sort is stable).
var sortByParam = cmp.Options{
	cmpopts.SortSlices(func(a, b fhir.StringEntry) bool { return a.Param < b.Param }),
	cmpopts.SortSlices(func(a, b fhir.TokenEntry) bool { return a.Param < b.Param }),
	cmpopts.SortSlices(func(a, b fhir.ReferenceEntry) bool { return a.Param < b.Param }),
	cmpopts.SortSlices(func(a, b fhir.DateEntry) bool { return a.Param < b.Param }),
	cmpopts.SortSlices(func(a, b fhir.NumberEntry) bool { return a.Param < b.Param }),
	cmpopts.SortSlices(func(a, b fhir.QuantityEntry) bool { return a.Param < b.Param }),
	cmpopts.SortSlices(func(a, b fhir.URIEntry) bool { return a.Param < b.Param }),
}

// bloodPressure has a value of its own (which a panel would not, but it
// shows both composite forms) and three components, the last without a
// quantity.
const bloodPressure = `{"resourceType":"Observation","status":"final",
	"code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},
	"valueQuantity":{"value":1,"system":"http://unitsofmeasure.org","code":"1"},
	"component":[
		{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},
		 "valueQuantity":{"value":120,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
		{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},
		 "valueQuantity":{"value":80,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
		{"code":{"coding":[{"system":"http://loinc.org","code":"9999-9"}]},"valueString":"n/a"}]}`

func TestExtractComposite(t *testing.T) {
	t.Parallel()
	const loinc, ucum = "http://loinc.org", "http://unitsofmeasure.org"
	tok := func(code string, g int32, c string) fhir.TokenEntry {
		return fhir.TokenEntry{Param: key("Observation", code), Group: g, System: loinc, Code: c}
	}
	qty := func(code string, g int32, v, lo, hi, unit, c string) fhir.QuantityEntry {
		return fhir.QuantityEntry{Param: key("Observation", code), Group: g, Value: v, Lo: lo, Hi: hi, System: ucum, Code: c, Unit: unit}
	}
	tests := []struct {
		code string
		want fhir.Index // with groups numbered 1, 2, ... in order of appearance
	}{
		{"code-value-quantity", fhir.Index{
			Tokens:     []fhir.TokenEntry{tok("code-value-quantity", 1, "85354-9")},
			Quantities: []fhir.QuantityEntry{qty("code-value-quantity", 1, "1", "0.5", "1.5", "", "1")},
		}},
		{"component-code-value-quantity", fhir.Index{
			Tokens: []fhir.TokenEntry{
				tok("component-code-value-quantity", 1, "8480-6"),
				tok("component-code-value-quantity", 2, "8462-4"),
			},
			Quantities: []fhir.QuantityEntry{
				qty("component-code-value-quantity", 1, "120", "119.5", "120.5", "mmHg", "mm[Hg]"),
				qty("component-code-value-quantity", 2, "80", "79.5", "80.5", "mmHg", "mm[Hg]"),
			},
		}},
		{"combo-code-value-quantity", fhir.Index{
			Tokens: []fhir.TokenEntry{
				tok("combo-code-value-quantity", 1, "85354-9"),
				tok("combo-code-value-quantity", 2, "8480-6"),
				tok("combo-code-value-quantity", 3, "8462-4"),
			},
			Quantities: []fhir.QuantityEntry{
				qty("combo-code-value-quantity", 1, "1", "0.5", "1.5", "", "1"),
				qty("combo-code-value-quantity", 2, "120", "119.5", "120.5", "mmHg", "mm[Hg]"),
				qty("combo-code-value-quantity", 3, "80", "79.5", "80.5", "mmHg", "mm[Hg]"),
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			got := renumberGroups(t, extractParams(t, bloodPressure, tt.code))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Extract (-want +got):\n%s", diff)
			}
		})
	}

	// Across parameters, no two matches share a group, and plain parameters
	// have none.
	all := extractParams(t, bloodPressure, "code", "component-code", "code-value-quantity", "component-code-value-quantity", "combo-code-value-quantity")
	owner := map[int32]int64{}
	for _, e := range all.Tokens {
		switch {
		case e.Param == key("Observation", "code") || e.Param == key("Observation", "component-code"):
			if e.Group != 0 {
				t.Errorf("plain parameter entry %+v has a group", e)
			}
		case e.Group == 0:
			t.Errorf("composite entry %+v has no group", e)
		case owner[e.Group] != 0 && owner[e.Group] != e.Param:
			t.Errorf("group %d used by two parameters", e.Group)
		default:
			owner[e.Group] = e.Param
		}
	}
	if len(owner) != 6 {
		t.Errorf("%d composite groups, want 6", len(owner))
	}
}

// renumberGroups numbers the groups of idx 1, 2, ... in order of first
// appearance (tokens first), so tests do not depend on the numbering.
func renumberGroups(tb testing.TB, idx fhir.Index) fhir.Index {
	tb.Helper()
	m := map[int32]int32{}
	re := func(g int32) int32 {
		if g == 0 {
			return 0
		}
		if m[g] == 0 {
			m[g] = int32(len(m) + 1)
		}
		return m[g]
	}
	for i := range idx.Tokens {
		idx.Tokens[i].Group = re(idx.Tokens[i].Group)
	}
	for i := range idx.Quantities {
		idx.Quantities[i].Group = re(idx.Quantities[i].Group)
	}
	if len(idx.Strings)+len(idx.References)+len(idx.Dates)+len(idx.Numbers)+len(idx.URIs) > 0 {
		tb.Fatalf("renumberGroups handles tokens and quantities only")
	}
	return idx
}

func TestExtractErrors(t *testing.T) {
	t.Parallel()
	r := builtinRegistry(t)
	if _, err := r.Extract("Unicorn", map[string]any{"resourceType": "Unicorn"}); err == nil {
		t.Error("Extract of an unknown type: no error")
	}
	if _, err := r.Extract("Patient", map[string]any{"resourceType": "Observation"}); err == nil {
		t.Error("Extract with the wrong resourceType: no error")
	}
	// Invalid values are left out, not errors: validation is not the index's job.
	idx := extractParams(t, `{"resourceType":"Patient","birthDate":"1974-13-45","name":[{"family":7}]}`, "birthdate", "family")
	if idx.Len() != 0 {
		t.Errorf("invalid values gave entries: %+v", idx)
	}
}

func TestFold(t *testing.T) { // not parallel: AllocsPerRun
	tests := []struct{ in, want string }{
		{"", ""},
		{"zoe", "zoe"},
		{"Zoë", "zoe"},
		{"ZOË", "zoe"},
		{"Zoe\u0308", "zoe"}, // already decomposed
		{"  Ana \t\n María  ", "ana maria"},
		{"Ærø Ångström", "ærø angstrom"}, // Æ and ø do not decompose
		{"Straße", "straße"},
		{"İstanbul", "istanbul"},
		{"Çelik-Öztürk", "celik-ozturk"},
		{"Dvořák", "dvorak"},
		{"Nguyễn", "nguyen"},
		{"a\u00a0b", "a b"}, // no-break space
		{"O'Brien", "o'brien"},
	}
	for _, tt := range tests {
		if got := Fold(tt.in); got != tt.want {
			t.Errorf("Fold(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Fold("already folded") }); n != 0 {
		t.Errorf("Fold of a folded ASCII string allocates %v times", n)
	}
}

func TestNumberRange(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, lo, hi string }{
		{"100", "99.5", "100.5"},
		{"1.50", "1.495", "1.505"},
		{"0", "-0.5", "0.5"},
		{"0.0", "-0.05", "0.05"},
		{"-0", "-0.5", "0.5"},
		{"-3", "-3.5", "-2.5"},
		{"-0.1", "-0.15", "-0.05"},
		{"1", "0.5", "1.5"},
		{"10", "9.5", "10.5"},
		{"0.001", "0.0005", "0.0015"},
		{"007", "6.5", "7.5"},
		{"1e2", "50", "150"},
		{"1.0e2", "95", "105"},
		{"1.0E-3", "0.00095", "0.00105"},
		{"2.5e+1", "24.5", "25.5"},
		{"12345678901234567890.123", "12345678901234567890.1225", "12345678901234567890.1235"},
	}
	for _, tt := range tests {
		lo, hi, ok := numberRange(tt.in)
		if !ok || lo != tt.lo || hi != tt.hi {
			t.Errorf("numberRange(%q) = %q, %q, %v; want %q, %q", tt.in, lo, hi, ok, tt.lo, tt.hi)
		}
	}
	for _, bad := range []string{"", "-", ".", "1.2.3", "1e", "1e+", "abc", "1 ", "0x10", "1e99999", "Infinity", "NaN"} {
		if lo, hi, ok := numberRange(bad); ok {
			t.Errorf("numberRange(%q) = %q, %q, ok; want not ok", bad, lo, hi)
		}
	}
}

// FuzzNumberRange checks numberRange against math/big: the bounds lie half a
// unit of the last digit on either side of the value.
func FuzzNumberRange(f *testing.F) {
	for _, s := range []string{"100", "1.50", "-0.0", "1e2", "-12.5E-7", "0.000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lo, hi, ok := numberRange(s)
		if !ok {
			return
		}
		var v, l, h big.Rat
		if _, ok := v.SetString(s); !ok {
			t.Fatalf("numberRange accepted %q, which is not a number", s)
		}
		if _, ok := l.SetString(lo); !ok || strings.ContainsAny(lo, "eE") {
			t.Fatalf("numberRange(%q): bad lo %q", s, lo)
		}
		if _, ok := h.SetString(hi); !ok || strings.ContainsAny(hi, "eE") {
			t.Fatalf("numberRange(%q): bad hi %q", s, hi)
		}
		var below, above big.Rat
		below.Sub(&v, &l)
		above.Sub(&h, &v)
		if below.Cmp(&above) != 0 || below.Sign() <= 0 {
			t.Fatalf("numberRange(%q) = [%s, %s): not centred on the value", s, lo, hi)
		}
	})
}

// FuzzFold checks that folding is idempotent, so that the query side can fold
// a value that is already folded.
func FuzzFold(f *testing.F) {
	for _, s := range []string{"Zoë", "  A  b ", "İ", "Straße", "\u212a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once := Fold(s)
		if twice := Fold(once); twice != once {
			t.Fatalf("Fold(%q) = %q, but Fold(%q) = %q", s, once, once, twice)
		}
	})
}
