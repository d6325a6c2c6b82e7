package search

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
)

const testBase = "https://ouder.example/fhir"

func newParser(tb testing.TB) *Parser {
	tb.Helper()
	reg, err := searchparam.Builtin()
	if err != nil {
		tb.Fatalf("searchparam.Builtin: %v", err)
	}
	return &Parser{Registry: reg, Fold: searchparam.Fold, DefaultCount: 20, MaxCount: 1000, Loc: time.UTC, Base: testBase}
}

// prm returns the registry's definition of typ.code.
func prm(tb testing.TB, typ, code string) *searchparam.Param {
	tb.Helper()
	reg, err := searchparam.Builtin()
	if err != nil {
		tb.Fatalf("searchparam.Builtin: %v", err)
	}
	p, ok := reg.Lookup(typ, code)
	if !ok {
		tb.Fatalf("no search parameter %s.%s", typ, code)
	}
	return p
}

func query(tb testing.TB, raw string) url.Values {
	tb.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		tb.Fatalf("url.ParseQuery(%q): %v", raw, err)
	}
	return v
}

// cmpOpts compares parameters by identity (they come from one registry)
// and times as instants.
var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b *searchparam.Param) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

func date(tb testing.TB, s string) fhir.DateRange {
	tb.Helper()
	r, err := fhir.ParseDate(s, time.UTC)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func ptr[T any](v T) *T { return &v }

// TestParseWhere checks the clauses of successful parses, one rule per case.
func TestParseWhere(t *testing.T) {
	t.Parallel()
	P := func(typ, code string) *searchparam.Param { return prm(t, typ, code) }
	tests := []struct {
		name  string
		types []string
		query string
		want  []Clause
	}{
		// Tokens.
		{"token code", []string{"Patient"}, "identifier=123",
			[]Clause{{Param: P("Patient", "identifier"), Values: []Value{Token{Code: "123"}}}}},
		{"token |code is no system", []string{"Patient"}, "identifier=|123",
			[]Clause{{Param: P("Patient", "identifier"), Values: []Value{Token{Code: "123", SystemGiven: true}}}}},
		{"token system|code", []string{"Patient"}, "identifier=http://x.nl|123",
			[]Clause{{Param: P("Patient", "identifier"), Values: []Value{Token{System: "http://x.nl", Code: "123", SystemGiven: true}}}}},
		{"token system|", []string{"Patient"}, "identifier=http://x.nl|",
			[]Clause{{Param: P("Patient", "identifier"), Values: []Value{Token{System: "http://x.nl", SystemGiven: true}}}}},
		{"token escaped pipe", []string{"Patient"}, `identifier=a\|b`,
			[]Clause{{Param: P("Patient", "identifier"), Values: []Value{Token{Code: "a|b"}}}}},
		{"token comma is OR, escaped comma is not", []string{"Patient"}, `identifier=a\,b,c`,
			[]Clause{{Param: P("Patient", "identifier"), Values: []Value{Token{Code: "a,b"}, Token{Code: "c"}}}}},
		{"token value starting with a prefix is a value", []string{"Patient"}, "gender=gtx",
			[]Clause{{Param: P("Patient", "gender"), Values: []Value{Token{Code: "gtx"}}}}},
		{"token :not", []string{"Patient"}, "gender:not=male",
			[]Clause{{Param: P("Patient", "gender"), Modifier: ModNot, Values: []Value{Token{Code: "male"}}}}},
		{"token :text folds", []string{"Observation"}, "code:text=Bloed  Druk",
			[]Clause{{Param: P("Observation", "code"), Modifier: ModText, Values: []Value{String{Raw: "Bloed  Druk", Norm: "bloed druk"}}}}},
		{"token :of-type", []string{"Patient"}, "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053",
			[]Clause{{Param: P("Patient", "identifier"), Modifier: ModOfType, Values: []Value{OfType{System: "http://terminology.hl7.org/CodeSystem/v2-0203", Code: "MR", Value: "446053"}}}}},

		// Strings.
		{"string folds", []string{"Patient"}, "name=Renée",
			[]Clause{{Param: P("Patient", "name"), Values: []Value{String{Raw: "Renée", Norm: "renee"}}}}},
		{"string :exact", []string{"Patient"}, "name:exact=Renée",
			[]Clause{{Param: P("Patient", "name"), Modifier: ModExact, Values: []Value{String{Raw: "Renée", Norm: "renee"}}}}},
		{"string :contains", []string{"Patient"}, "name:contains=eve",
			[]Clause{{Param: P("Patient", "name"), Modifier: ModContains, Values: []Value{String{Raw: "eve", Norm: "eve"}}}}},
		{"string escaped comma", []string{"Patient"}, `name=Jansen\,Piet`,
			[]Clause{{Param: P("Patient", "name"), Values: []Value{String{Raw: "Jansen,Piet", Norm: "jansen,piet"}}}}},
		{"string escapes", []string{"Patient"}, `name=a\\b\$c\|d\x`,
			[]Clause{{Param: P("Patient", "name"), Values: []Value{String{Raw: `a\b$c|d\x`, Norm: `a\b$c|d\x`}}}}},
		{"string starting with a prefix is a value", []string{"Patient"}, "name=gerrit",
			[]Clause{{Param: P("Patient", "name"), Values: []Value{String{Raw: "gerrit", Norm: "gerrit"}}}}},
		{"string OR and empty parts", []string{"Patient"}, "name=a,,b",
			[]Clause{{Param: P("Patient", "name"), Values: []Value{String{Raw: "a", Norm: "a"}, String{Raw: "b", Norm: "b"}}}}},
		{"repeated parameter is AND", []string{"Patient"}, "birthdate=ge2020&birthdate=lt2021",
			[]Clause{
				{Param: P("Patient", "birthdate"), Values: []Value{Date{Prefix: Ge, Range: date(t, "2020")}}},
				{Param: P("Patient", "birthdate"), Values: []Value{Date{Prefix: Lt, Range: date(t, "2021")}}},
			}},
		{"empty value is ignored", []string{"Patient"}, "name=&gender=,", nil},

		// Dates.
		{"date day", []string{"Patient"}, "birthdate=2020-03-04",
			[]Clause{{Param: P("Patient", "birthdate"), Values: []Value{Date{Prefix: Eq, Range: date(t, "2020-03-04")}}}}},
		{"date OR", []string{"Patient"}, "birthdate=2020,le1990-06",
			[]Clause{{Param: P("Patient", "birthdate"), Values: []Value{Date{Prefix: Eq, Range: date(t, "2020")}, Date{Prefix: Le, Range: date(t, "1990-06")}}}}},

		// Numbers and quantities.
		{"number", []string{"RiskAssessment"}, "probability=100",
			[]Clause{{Param: P("RiskAssessment", "probability"), Values: []Value{Number{Prefix: Eq, Value: "100", Lo: "99.5", Hi: "100.5"}}}}},
		{"quantity system and code", []string{"Observation"}, "value-quantity=5.4|http://unitsofmeasure.org|mg",
			[]Clause{{Param: P("Observation", "value-quantity"), Values: []Value{Quantity{Number: Number{Prefix: Eq, Value: "5.4", Lo: "5.35", Hi: "5.45"}, System: "http://unitsofmeasure.org", Code: "mg"}}}}},
		{"quantity code only", []string{"Observation"}, "value-quantity=le5.4||mg",
			[]Clause{{Param: P("Observation", "value-quantity"), Values: []Value{Quantity{Number: Number{Prefix: Le, Value: "5.4", Lo: "5.35", Hi: "5.45"}, Code: "mg"}}}}},
		{"quantity number only", []string{"Observation"}, "value-quantity=ap5.4",
			[]Clause{{Param: P("Observation", "value-quantity"), Values: []Value{Quantity{Number: Number{Prefix: Ap, Value: "5.4", Lo: "5.35", Hi: "5.45"}}}}}},

		// URIs.
		{"uri", []string{"ValueSet"}, "url=http://acme.org/fhir/ValueSet/1",
			[]Clause{{Param: P("ValueSet", "url"), Values: []Value{URI{Value: "http://acme.org/fhir/ValueSet/1"}}}}},
		{"uri :below", []string{"ValueSet"}, "url:below=http://acme.org/fhir/",
			[]Clause{{Param: P("ValueSet", "url"), Modifier: ModBelow, Values: []Value{URI{Value: "http://acme.org/fhir/"}}}}},
		{"uri :above", []string{"ValueSet"}, "url:above=http://acme.org/fhir/ValueSet/1/x",
			[]Clause{{Param: P("ValueSet", "url"), Modifier: ModAbove, Values: []Value{URI{Value: "http://acme.org/fhir/ValueSet/1/x"}}}}},

		// References.
		{"reference Type/id", []string{"Observation"}, "subject=Patient/123",
			[]Clause{{Param: P("Observation", "subject"), Values: []Value{Reference{Type: "Patient", ID: "123"}}}}},
		{"reference id with several targets", []string{"Observation"}, "subject=123",
			[]Clause{{Param: P("Observation", "subject"), Values: []Value{Reference{ID: "123"}}}}},
		{"reference id with one target", []string{"Observation"}, "patient=123",
			[]Clause{{Param: P("Observation", "patient"), Values: []Value{Reference{Type: "Patient", ID: "123"}}}}},
		{"reference :Type", []string{"Observation"}, "subject:Patient=123,Patient/456",
			[]Clause{{Param: P("Observation", "subject"), Values: []Value{Reference{Type: "Patient", ID: "123"}, Reference{Type: "Patient", ID: "456"}}}}},
		{"reference version", []string{"Observation"}, "subject=Patient/123/_history/2",
			[]Clause{{Param: P("Observation", "subject"), Values: []Value{Reference{Type: "Patient", ID: "123", Version: "2"}}}}},
		{"reference local URL", []string{"Observation"}, "subject=" + url.QueryEscape(testBase+"/Patient/123"),
			[]Clause{{Param: P("Observation", "subject"), Values: []Value{Reference{Type: "Patient", ID: "123"}}}}},
		{"reference remote URL", []string{"Observation"}, "subject=http://elders.example/fhir/Patient/123",
			[]Clause{{Param: P("Observation", "subject"), Values: []Value{Reference{URL: "http://elders.example/fhir/Patient/123"}}}}},
		{"reference canonical with version", []string{"QuestionnaireResponse"}, "questionnaire=http://x.nl/Questionnaire/q|1.0",
			[]Clause{{Param: P("QuestionnaireResponse", "questionnaire"), Values: []Value{Reference{URL: "http://x.nl/Questionnaire/q", Version: "1.0"}}}}},
		{"reference :identifier", []string{"Observation"}, "subject:identifier=http://fhir.nl/fhir/NamingSystem/bsn|123456782",
			[]Clause{{Param: P("Observation", "subject"), Modifier: ModIdentifier, Values: []Value{Token{System: "http://fhir.nl/fhir/NamingSystem/bsn", Code: "123456782", SystemGiven: true}}}}},

		// :missing on every kind.
		{"missing string", []string{"Patient"}, "name:missing=true",
			[]Clause{{Param: P("Patient", "name"), Missing: ptr(true)}}},
		{"missing date", []string{"Patient"}, "birthdate:missing=false",
			[]Clause{{Param: P("Patient", "birthdate"), Missing: ptr(false)}}},
		{"missing reference", []string{"Observation"}, "subject:missing=true",
			[]Clause{{Param: P("Observation", "subject"), Missing: ptr(true)}}},
		{"missing token", []string{"Patient"}, "gender:missing=true",
			[]Clause{{Param: P("Patient", "gender"), Missing: ptr(true)}}},
		{"missing quantity", []string{"Observation"}, "value-quantity:missing=true",
			[]Clause{{Param: P("Observation", "value-quantity"), Missing: ptr(true)}}},
		{"missing number", []string{"RiskAssessment"}, "probability:missing=false",
			[]Clause{{Param: P("RiskAssessment", "probability"), Missing: ptr(false)}}},
		{"missing uri", []string{"ValueSet"}, "url:missing=true",
			[]Clause{{Param: P("ValueSet", "url"), Missing: ptr(true)}}},
		{"missing composite", []string{"Observation"}, "code-value-quantity:missing=true",
			[]Clause{{Param: P("Observation", "code-value-quantity"), Missing: ptr(true)}}},

		// Composites.
		{"composite", []string{"Observation"}, "code-value-quantity=http://loinc.org|8480-6$lt60,http://loinc.org|8462-4$gt90||mm[Hg]",
			[]Clause{{Param: P("Observation", "code-value-quantity"), Values: []Value{
				Composite{Parts: []Value{
					Token{System: "http://loinc.org", Code: "8480-6", SystemGiven: true},
					Quantity{Number: Number{Prefix: Lt, Value: "60", Lo: "59.5", Hi: "60.5"}},
				}},
				Composite{Parts: []Value{
					Token{System: "http://loinc.org", Code: "8462-4", SystemGiven: true},
					Quantity{Number: Number{Prefix: Gt, Value: "90", Lo: "89.5", Hi: "90.5"}, Code: "mm[Hg]"},
				}},
			}}}},
		{"composite escaped dollar", []string{"Observation"}, `component-code-value-concept=a\$b$c`,
			[]Clause{{Param: P("Observation", "component-code-value-concept"), Values: []Value{
				Composite{Parts: []Value{Token{Code: "a$b"}, Token{Code: "c"}}},
			}}}},

		// Column parameters.
		{"_id", []string{"Patient"}, "_id=abc,def",
			[]Clause{{Param: P("Patient", "_id"), Values: []Value{Token{Code: "abc"}, Token{Code: "def"}}}}},
		{"_lastUpdated", []string{"Patient"}, "_lastUpdated=gt2024-01-01T10:00:00Z",
			[]Clause{{Param: P("Patient", "_lastUpdated"), Values: []Value{Date{Prefix: Gt, Range: date(t, "2024-01-01T10:00:00Z")}}}}},

		// Chains.
		{"chain with :Type", []string{"Observation"}, "subject:Patient.name=peter",
			[]Clause{{Param: P("Observation", "subject"), Chain: &Chain{Targets: []Link{
				{Type: "Patient", Next: Clause{Param: P("Patient", "name"), Values: []Value{String{Raw: "peter", Norm: "peter"}}}},
			}}}}},
		{"chain without :Type, one target", []string{"Patient"}, "organization.name=Zorg",
			[]Clause{{Param: P("Patient", "organization"), Chain: &Chain{Targets: []Link{
				{Type: "Organization", Next: Clause{Param: P("Organization", "name"), Values: []Value{String{Raw: "Zorg", Norm: "zorg"}}}},
			}}}}},
		{"ambiguous chain lists every target with the parameter", []string{"Observation"}, "subject.name=peter",
			[]Clause{{Param: P("Observation", "subject"), Chain: &Chain{Targets: []Link{
				{Type: "Location", Next: Clause{Param: P("Location", "name"), Values: []Value{String{Raw: "peter", Norm: "peter"}}}},
				{Type: "Patient", Next: Clause{Param: P("Patient", "name"), Values: []Value{String{Raw: "peter", Norm: "peter"}}}},
			}}}}},
		{"chain through several levels", []string{"Encounter"}, "subject:Patient.organization.name:exact=Zorg",
			[]Clause{{Param: P("Encounter", "subject"), Chain: &Chain{Targets: []Link{
				{Type: "Patient", Next: Clause{Param: P("Patient", "organization"), Chain: &Chain{Targets: []Link{
					{Type: "Organization", Next: Clause{Param: P("Organization", "name"), Modifier: ModExact, Values: []Value{String{Raw: "Zorg", Norm: "zorg"}}}},
				}}}},
			}}}}},
		{"chain ending in :missing", []string{"Observation"}, "patient.birthdate:missing=true",
			[]Clause{{Param: P("Observation", "patient"), Chain: &Chain{Targets: []Link{
				{Type: "Patient", Next: Clause{Param: P("Patient", "birthdate"), Missing: ptr(true)}},
			}}}}},

		// Reverse chains.
		{"_has", []string{"Patient"}, "_has:Observation:patient:code=1234-5",
			[]Clause{{Has: &Has{Type: "Observation", RefParam: P("Observation", "patient"),
				Next: Clause{Param: P("Observation", "code"), Values: []Value{Token{Code: "1234-5"}}}}}}},
		{"_has nested", []string{"Patient"}, "_has:Observation:patient:_has:AuditEvent:entity:agent=Practitioner/9",
			[]Clause{{Has: &Has{Type: "Observation", RefParam: P("Observation", "patient"),
				Next: Clause{Has: &Has{Type: "AuditEvent", RefParam: P("AuditEvent", "entity"),
					Next: Clause{Param: P("AuditEvent", "agent"), Values: []Value{Reference{Type: "Practitioner", ID: "9"}}}}}}}}},
		{"_has with a chain inside", []string{"Patient"}, "_has:Observation:patient:performer:Practitioner.name=jan",
			[]Clause{{Has: &Has{Type: "Observation", RefParam: P("Observation", "patient"),
				Next: Clause{Param: P("Observation", "performer"), Chain: &Chain{Targets: []Link{
					{Type: "Practitioner", Next: Clause{Param: P("Practitioner", "name"), Values: []Value{String{Raw: "jan", Norm: "jan"}}}},
				}}}}}}},

		// System search.
		{"system search with common parameters", []string{"Patient", "Observation"}, "_tag=http://x|a&_lastUpdated=ge2024",
			[]Clause{
				{Param: P("Patient", "_lastUpdated"), Values: []Value{Date{Prefix: Ge, Range: date(t, "2024")}}},
				{Param: P("Patient", "_tag"), Values: []Value{Token{System: "http://x", Code: "a", SystemGiven: true}}},
			}},
		{"search of all types", nil, "_id=1",
			[]Clause{{Param: P("Account", "_id"), Values: []Value{Token{Code: "1"}}}}},
	}
	p := newParser(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := p.Parse(tt.types, query(t, tt.query), true)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.query, err)
			}
			if diff := cmp.Diff(tt.want, q.Where, append(cmpOpts, cmpopts.IgnoreFields(Chain{}, "Name", "Value"))...); diff != "" {
				t.Errorf("Parse(%q).Where (-want +got):\n%s", tt.query, diff)
			}
			if len(q.Warnings) > 0 {
				t.Errorf("Parse(%q) warned: %v", tt.query, q.Warnings)
			}
			roundTrip(t, p, tt.types, q)
		})
	}
}

// roundTrip checks that parsing q.Encode() gives q again.
func roundTrip(tb testing.TB, p *Parser, types []string, q *Query) {
	tb.Helper()
	enc := q.Encode()
	q2, err := p.Parse(types, enc, true)
	if err != nil {
		tb.Fatalf("Parse(Encode()=%q): %v", enc.Encode(), err)
	}
	want := *q
	want.Warnings, want.Cursor = nil, ""
	if diff := cmp.Diff(&want, q2, cmpOpts...); diff != "" {
		tb.Errorf("Parse(Encode()=%q) (-want +got):\n%s", enc.Encode(), diff)
	}
}

func TestPrefixes(t *testing.T) {
	t.Parallel()
	p := newParser(t)
	for _, pre := range []Prefix{Eq, Ne, Gt, Lt, Ge, Le, Sa, Eb, Ap} {
		t.Run(string(pre), func(t *testing.T) {
			t.Parallel()
			q, err := p.Parse([]string{"Observation"}, url.Values{
				"date":           {string(pre) + "2020-01-02"},
				"value-quantity": {string(pre) + "5|http://unitsofmeasure.org|kg"},
			}, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.Where[0].Values[0].(Date).Prefix; got != pre {
				t.Errorf("date prefix = %q, want %q", got, pre)
			}
			if got := q.Where[1].Values[0].(Quantity).Prefix; got != pre {
				t.Errorf("quantity prefix = %q, want %q", got, pre)
			}
			q, err = p.Parse([]string{"RiskAssessment"}, url.Values{"probability": {string(pre) + "0.8"}}, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.Where[0].Values[0].(Number).Prefix; got != pre {
				t.Errorf("number prefix = %q, want %q", got, pre)
			}
			roundTrip(t, p, []string{"RiskAssessment"}, q)
		})
	}
}

func TestDatePrecision(t *testing.T) {
	t.Parallel()
	amsterdam, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skipf("no time zone data: %v", err) // the zone database is not part of the code under test
	}
	tests := []struct {
		value      string
		precision  fhir.Precision
		start, end string // RFC 3339
	}{
		{"2020", fhir.Year, "2020-01-01T00:00:00+01:00", "2021-01-01T00:00:00+01:00"},
		{"2020-03", fhir.Month, "2020-03-01T00:00:00+01:00", "2020-04-01T00:00:00+02:00"},
		{"2020-03-04", fhir.Day, "2020-03-04T00:00:00+01:00", "2020-03-05T00:00:00+01:00"},
		{"2020-03-04T10:00Z", fhir.Minute, "2020-03-04T10:00:00Z", "2020-03-04T10:01:00Z"},
		{"2020-03-04T10:00:30+02:00", fhir.Second, "2020-03-04T08:00:30Z", "2020-03-04T08:00:31Z"},
		{"2020-03-04T10:00:30.25Z", fhir.Fraction, "2020-03-04T10:00:30.25Z", "2020-03-04T10:00:30.26Z"},
		{"2020-03-04T10:00", fhir.Minute, "2020-03-04T10:00:00+01:00", "2020-03-04T10:01:00+01:00"},
	}
	p := newParser(t)
	p.Loc = amsterdam
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			q, err := p.Parse([]string{"Patient"}, url.Values{"birthdate": {tt.value}}, true)
			if err != nil {
				t.Fatal(err)
			}
			r := q.Where[0].Values[0].(Date).Range
			start, _ := time.Parse(time.RFC3339Nano, tt.start)
			end, _ := time.Parse(time.RFC3339Nano, tt.end)
			if r.Precision != tt.precision || !r.Start.Equal(start) || !r.End.Equal(end) {
				t.Errorf("range = %v [%v, %v), want %v [%v, %v)", r.Precision, r.Start, r.End, tt.precision, start, end)
			}
			roundTrip(t, p, []string{"Patient"}, q)
		})
	}
}

func TestNumberRange(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, value, lo, hi string }{
		{"100", "100", "99.5", "100.5"},
		{"100.00", "100.00", "99.995", "100.005"},
		{"1e2", "1e2", "50", "150"},
		{"1.5E-3", "1.5E-3", "0.00145", "0.00155"},
		{"+0.8", "0.8", "0.75", "0.85"},
		{"-0.5", "-0.5", "-0.55", "-0.45"},
		{"0", "0", "-0.5", "0.5"},
		{"12e-1", "12e-1", "1.15", "1.25"},
	}
	for _, tt := range tests {
		n, err := number(tt.in)
		if err != nil {
			t.Errorf("number(%q): %v", tt.in, err)
			continue
		}
		if n.Value != tt.value || n.Lo != tt.lo || n.Hi != tt.hi {
			t.Errorf("number(%q) = %q [%s, %s), want %q [%s, %s)", tt.in, n.Value, n.Lo, n.Hi, tt.value, tt.lo, tt.hi)
		}
	}
}

func TestParseResult(t *testing.T) {
	t.Parallel()
	P := func(typ, code string) *searchparam.Param { return prm(t, typ, code) }
	tests := []struct {
		name  string
		types []string
		query string
		want  Query // Types and Where are not compared
	}{
		{"defaults", []string{"Patient"}, "", Query{Count: 20, Total: "none"}},
		{"_count", []string{"Patient"}, "_count=5", Query{Count: 5, Total: "none"}},
		{"_count=0 asks for the total only", []string{"Patient"}, "_count=0", Query{Count: 0, Total: "none"}},
		{"_count is capped", []string{"Patient"}, "_count=5000", Query{Count: 1000, Total: "none"}},
		{"_sort", []string{"Patient"}, "_sort=-birthdate,name,_id&_sort=-_lastUpdated", Query{Count: 20, Total: "none", Sort: []Sort{
			{Param: P("Patient", "birthdate"), Desc: true}, {Param: P("Patient", "name")}, {Param: P("Patient", "_id")}, {Param: P("Patient", "_lastUpdated"), Desc: true},
		}}},
		{"_total", []string{"Patient"}, "_total=accurate", Query{Count: 20, Total: "accurate"}},
		{"_summary", []string{"Patient"}, "_summary=count", Query{Count: 20, Total: "none", Summary: "count"}},
		{"_elements", []string{"Patient"}, "_elements=name,birthDate,name", Query{Count: 20, Total: "none", Elements: []string{"name", "birthDate"}}},
		{"_cursor", []string{"Patient"}, "_cursor=opaque.token-1", Query{Count: 20, Total: "none", Cursor: "opaque.token-1"}},
		{"_format and _pretty are ignored", []string{"Patient"}, "_format=json&_pretty=true&_type=Patient", Query{Count: 20, Total: "none"}},
		{"_include", []string{"Observation"}, "_include=Observation:subject&_include=Observation:subject:Patient&_include=*", Query{Count: 20, Total: "none", Include: []Include{
			{SourceType: "Observation", Param: P("Observation", "subject")},
			{SourceType: "Observation", Param: P("Observation", "subject"), TargetType: "Patient"},
			{},
		}}},
		{"_include Type:*", []string{"Observation"}, "_include=Observation:*", Query{Count: 20, Total: "none", Include: []Include{{SourceType: "Observation"}}}},
		{"_include:iterate and :recurse", []string{"Observation"}, "_include=Observation:subject&_include:iterate=Patient:general-practitioner&_include:recurse=Patient:link",
			Query{Count: 20, Total: "none", Include: []Include{
				{SourceType: "Observation", Param: P("Observation", "subject")},
				{SourceType: "Patient", Param: P("Patient", "general-practitioner"), Iterate: true},
				{SourceType: "Patient", Param: P("Patient", "link"), Iterate: true},
			}}},
		{"_revinclude", []string{"Patient"}, "_revinclude=Provenance:target&_revinclude:iterate=Observation:subject", Query{Count: 20, Total: "none", RevInclude: []Include{
			{SourceType: "Provenance", Param: P("Provenance", "target")},
			{SourceType: "Observation", Param: P("Observation", "subject"), Iterate: true},
		}}},
		{"_contained=false is the default", []string{"Patient"}, "_contained=false&_containedType=container", Query{Count: 20, Total: "none"}},
		{"_sort in a system search", []string{"Patient", "Observation"}, "_sort=-_lastUpdated", Query{Count: 20, Total: "none", Sort: []Sort{
			{Param: P("Patient", "_lastUpdated"), Desc: true},
		}}},
	}
	p := newParser(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := p.Parse(tt.types, query(t, tt.query), true)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.query, err)
			}
			if diff := cmp.Diff(&tt.want, q, append(cmpOpts, cmpopts.IgnoreFields(Query{}, "Types", "Where", "Base"))...); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.query, diff)
			}
			if q.Base != p.Base {
				t.Errorf("Parse(%q).Base = %q, want Parser.Base %q", tt.query, q.Base, p.Base)
			}
			roundTrip(t, p, tt.types, q)
		})
	}
}

func TestParseTypes(t *testing.T) {
	t.Parallel()
	p := newParser(t)
	q, err := p.Parse([]string{"Patient", "Observation", "Patient"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Patient", "Observation"}, q.Types); diff != "" {
		t.Errorf("Types (-want +got):\n%s", diff)
	}
}

func TestUnknownParameters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		types []string
		query string
		key   string // the parameter named by the warning or error
		msg   string // part of the diagnostics
	}{
		{"unknown", []string{"Patient"}, "foo=bar", "foo", "unknown search parameter foo"},
		{"not indexed", []string{"Patient"}, "_text=diabetes", "_text", "full-text search"},
		{"not indexed special", []string{"Location"}, "near=52.1|5.1|10|km", "near", "geographic"},
		{"unknown in a chain", []string{"Observation"}, "subject.foo=bar", "subject.foo", "has a search parameter foo"},
		{"unknown in _has", []string{"Patient"}, "_has:Observation:patient:foo=bar", "_has:Observation:patient:foo", "unknown search parameter foo"},
		{"unknown in a system search", []string{"Patient", "Observation"}, "foo=bar", "foo", "unknown search parameter foo"},
		{"_contained", []string{"Patient"}, "_contained=true", "_contained", "not supported"},
		{"_containedType", []string{"Patient"}, "_containedType=contained", "_containedType", "not supported"},
		{"_include from another type", []string{"Patient"}, "_include=Observation:subject", "_include", "cannot apply"},
		{"_revinclude not pointing here", []string{"Practitioner"}, "_revinclude=Observation:patient", "_revinclude", "cannot apply"},
	}
	p := newParser(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := p.Parse(tt.types, query(t, tt.query), false)
			if err != nil {
				t.Fatalf("lenient Parse(%q): %v", tt.query, err)
			}
			if len(q.Warnings) != 1 {
				t.Fatalf("lenient Parse(%q) warnings = %v, want one", tt.query, q.Warnings)
			}
			w := q.Warnings[0]
			if w.Severity != "warning" || w.Code != "not-supported" || !strings.Contains(w.Diagnostics, tt.msg) ||
				!cmp.Equal(w.Expression, []string{tt.key}) {
				t.Errorf("warning = %+v, want not-supported on %s saying %q", w, tt.key, tt.msg)
			}
			if len(q.Where) != 0 || len(q.Include) != 0 || len(q.RevInclude) != 0 {
				t.Errorf("lenient Parse(%q) kept the parameter: %+v", tt.query, q)
			}
			_, err = p.Parse(tt.types, query(t, tt.query), true)
			checkError(t, err, fhir.Invalid, tt.key, tt.msg)
		})
	}
}

// checkError checks that err is a *fhir.Error of kind with one issue naming
// key whose diagnostics contain msg.
func checkError(tb testing.TB, err error, kind fhir.Kind, key, msg string) {
	tb.Helper()
	var fe *fhir.Error
	if !errors.As(err, &fe) {
		tb.Fatalf("error = %v, want a *fhir.Error", err)
	}
	if fe.Kind != kind || len(fe.Issues) != 1 || !cmp.Equal(fe.Issues[0].Expression, []string{key}) ||
		!strings.Contains(fe.Issues[0].Diagnostics, msg) {
		tb.Errorf("error = kind %d %+v, want kind %d on %q saying %q", fe.Kind, fe.Issues, kind, key, msg)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		types []string
		query string
		kind  fhir.Kind
		key   string
		msg   string
	}{
		{"bad date", []string{"Patient"}, "birthdate=2020-13", fhir.Invalid, "birthdate", "out of range"},
		{"not a date", []string{"Patient"}, "birthdate=yesterday", fhir.Invalid, "birthdate", "known prefix"},
		{"bad prefix", []string{"Patient"}, "birthdate=xx2020", fhir.Invalid, "birthdate", "known prefix"},
		{"upper-case prefix", []string{"Patient"}, "birthdate=GE2020", fhir.Invalid, "birthdate", "known prefix"},
		{"bad date in an OR", []string{"Patient"}, "birthdate=2020,20x0", fhir.Invalid, "birthdate", "not a FHIR date"},
		{"unknown modifier for the kind", []string{"Patient"}, "birthdate:exact=2020", fhir.Invalid, "birthdate:exact", "unknown modifier :exact"},
		{"unknown modifier on a string", []string{"Patient"}, "name:not=x", fhir.Invalid, "name:not", "allowed: :exact, :contains"},
		{"empty modifier", []string{"Patient"}, "name:=x", fhir.Invalid, "name:", "empty modifier"},
		{"bad number", []string{"RiskAssessment"}, "probability=abc", fhir.Invalid, "probability", "known prefix"},
		{"bad number digits", []string{"RiskAssessment"}, "probability=1.2.3", fhir.Invalid, "probability", "not a number"},
		{"number exponent too large", []string{"RiskAssessment"}, "probability=1e5000", fhir.Invalid, "probability", "exponent"},
		{"quantity with two parts", []string{"Observation"}, "value-quantity=5.4|mg", fhir.Invalid, "value-quantity", "not a quantity"},
		{"quantity with a bad number", []string{"Observation"}, "value-quantity=five||mg", fhir.Invalid, "value-quantity", "known prefix"},
		{"quantity system without code", []string{"Observation"}, "value-quantity=5|http://unitsofmeasure.org|", fhir.Invalid, "value-quantity", "no unit code"},
		{"token with three parts", []string{"Patient"}, "identifier=a|b|c", fhir.Invalid, "identifier", "not a token"},
		{"token of a lone pipe", []string{"Patient"}, "identifier=|", fhir.Invalid, "identifier", "neither a system nor a code"},
		{"bad :of-type", []string{"Patient"}, "identifier:of-type=MR|123", fhir.Invalid, "identifier:of-type", "system|code|value"},
		{":in is not supported", []string{"Observation"}, "code:in=http://x/ValueSet/v", fhir.NotSupported, "code:in", "not supported"},
		{":below on a token is not supported", []string{"Observation"}, "code:below=http://snomed.info/sct|123", fhir.NotSupported, "code:below", "not supported"},
		{":above on a reference is not supported", []string{"Observation"}, "subject:above=Patient/1", fhir.NotSupported, "subject:above", "not supported"},
		{"bad :missing", []string{"Patient"}, "name:missing=maybe", fhir.Invalid, "name:missing", "true or false"},
		{"_id with a system", []string{"Patient"}, "_id=a|b", fhir.Invalid, "_id", "resource id"},
		{"_id not an id", []string{"Patient"}, "_id=a_b", fhir.Invalid, "_id", "not a resource id"},
		{"_id :text", []string{"Patient"}, "_id:text=a", fhir.Invalid, "_id:text", ":text"},
		{"reference to a type it cannot point to", []string{"Observation"}, "subject=Medication/1", fhir.Invalid, "subject", "cannot refer to Medication"},
		{"reference to an unknown type", []string{"Observation"}, "subject=Foo/1", fhir.Invalid, "subject", "not a resource type"},
		{"reference of a bad form", []string{"Observation"}, "subject=Patient/1/2", fhir.Invalid, "subject", "not a reference"},
		{"reference with a bad id", []string{"Observation"}, "subject=Patient/a_b", fhir.Invalid, "subject", "not a valid resource id"},
		{"reference :Type and URL", []string{"Observation"}, "subject:Patient=http://x/Patient/1", fhir.Invalid, "subject:Patient", "not the URL"},
		{"reference :Type disagrees", []string{"Observation"}, "subject:Patient=Group/1", fhir.Invalid, "subject:Patient", "does not agree"},
		{"reference :Type not a target", []string{"Observation"}, "subject:Medication=1", fhir.Invalid, "subject:Medication", "cannot refer to Medication"},
		{"reference version on a local reference", []string{"Observation"}, "subject=Patient/1|2", fhir.Invalid, "subject", "only a canonical"},
		{"composite with too few parts", []string{"Observation"}, "code-value-quantity=http://loinc.org|8480-6", fhir.Invalid, "code-value-quantity", "composite of 2 parts"},
		{"composite with too many parts", []string{"Observation"}, "code-value-quantity=a$1$2", fhir.Invalid, "code-value-quantity", "composite of 2 parts"},
		{"composite with an empty part", []string{"Observation"}, "code-value-quantity=a$", fhir.Invalid, "code-value-quantity", "empty"},
		{"composite with a bad part", []string{"Observation"}, "code-value-quantity=a$xx5", fhir.Invalid, "code-value-quantity", "known prefix"},
		{"chain on a non-reference", []string{"Patient"}, "gender.name=x", fhir.Invalid, "gender.name", "only reference parameters can be chained"},
		{"chain with an unknown type", []string{"Observation"}, "subject:Foo.name=x", fhir.Invalid, "subject:Foo.name", "not one"},
		{"chain with a type it cannot point to", []string{"Observation"}, "subject:Medication.code=x", fhir.Invalid, "subject:Medication.code", "cannot refer to Medication"},
		{"chain with a modifier that is no type", []string{"Observation"}, "subject:identifier.name=x", fhir.Invalid, "subject:identifier.name", "must be a resource type"},
		{"chain without a next parameter", []string{"Observation"}, "subject.=x", fhir.Invalid, "subject.", "names no parameter"},
		{"chain with a bad value", []string{"Observation"}, "subject:Patient.birthdate=2020-02-30", fhir.Invalid, "subject:Patient.birthdate", "does not exist"},
		{"chain too deep", []string{"Patient"}, "link:Patient.link:Patient.link:Patient.link:Patient.link:Patient.name=x", fhir.Invalid, "link:Patient.link:Patient.link:Patient.link:Patient.link:Patient.name", "levels deep"},
		{"_has with an unknown type", []string{"Patient"}, "_has:Foo:patient:code=x", fhir.Invalid, "_has:Foo:patient:code", "not a resource type"},
		{"_has with an unknown reference", []string{"Patient"}, "_has:Observation:foo:code=x", fhir.Invalid, "_has:Observation:foo:code", "not a search parameter of Observation"},
		{"_has with a non-reference", []string{"Patient"}, "_has:Observation:code:code=x", fhir.Invalid, "_has:Observation:code:code", "must be a reference"},
		{"_has pointing elsewhere", []string{"Practitioner"}, "_has:Observation:patient:code=x", fhir.Invalid, "_has:Observation:patient:code", "cannot refer to Practitioner"},
		{"_has incomplete", []string{"Patient"}, "_has:Observation:patient=x", fhir.Invalid, "_has:Observation:patient", "_has:Type:reference:parameter"},
		{"_has in a system search", []string{"Patient", "Observation"}, "_has:Observation:patient:code=x", fhir.Invalid, "_has:Observation:patient:code", "several types"},
		{"resource parameter in a system search", []string{"Patient", "Observation"}, "name=x", fhir.Invalid, "name", "several types"},
		{"unknown _type", []string{"Foo"}, "", fhir.Invalid, "_type", "not a resource type"},
		{"bad _count", []string{"Patient"}, "_count=ten", fhir.Invalid, "_count", "whole number"},
		{"negative _count", []string{"Patient"}, "_count=-1", fhir.Invalid, "_count", "whole number"},
		{"repeated _count", []string{"Patient"}, "_count=1&_count=2", fhir.Invalid, "_count", "only once"},
		{"_count with a modifier", []string{"Patient"}, "_count:x=1", fhir.Invalid, "_count:x", "no modifier"},
		{"unknown _sort parameter", []string{"Patient"}, "_sort=foo", fhir.Invalid, "_sort", "cannot sort by foo"},
		{"_sort on a not indexed parameter", []string{"Patient"}, "_sort=_text", fhir.Invalid, "_sort", "cannot sort by _text"},
		{"_sort on a composite", []string{"Observation"}, "_sort=code-value-quantity", fhir.Invalid, "_sort", "no order"},
		{"_sort with an empty item", []string{"Patient"}, "_sort=name,,birthdate", fhir.Invalid, "_sort", "empty item"},
		{"_sort on a resource parameter in a system search", []string{"Patient", "Observation"}, "_sort=name", fhir.Invalid, "_sort", "cannot sort by name"},
		{"bad _total", []string{"Patient"}, "_total=maybe", fhir.Invalid, "_total", "none, estimate or accurate"},
		{"bad _summary", []string{"Patient"}, "_summary=short", fhir.Invalid, "_summary", "true, text, data, count or false"},
		{"bad _elements", []string{"Patient"}, "_elements=name,birth-date", fhir.Invalid, "_elements", "not an element name"},
		{"bad _contained", []string{"Patient"}, "_contained=maybe", fhir.Invalid, "_contained", "true, false or both"},
		{"_include of an unknown parameter", []string{"Observation"}, "_include=Observation:foo", fhir.Invalid, "_include", "not a search parameter of Observation"},
		{"_include of an unknown type", []string{"Observation"}, "_include=Foo:subject", fhir.Invalid, "_include", "not a resource type"},
		{"_include of a non-reference", []string{"Observation"}, "_include=Observation:code", fhir.Invalid, "_include", "only reference parameters"},
		{"_include to a type it cannot point to", []string{"Observation"}, "_include=Observation:subject:Medication", fhir.Invalid, "_include", "cannot refer to Medication"},
		{"_include to an unknown type", []string{"Observation"}, "_include=Observation:subject:Foo", fhir.Invalid, "_include", "not a resource type"},
		{"_include of a bad form", []string{"Observation"}, "_include=subject", fhir.Invalid, "_include", "SourceType:parameter"},
		{"_include with an unknown modifier", []string{"Observation"}, "_include:deep=Observation:subject", fhir.Invalid, "_include:deep", "unknown modifier"},
		{"_revinclude=*", []string{"Patient"}, "_revinclude=*", fhir.Invalid, "_revinclude", "SourceType:parameter"},
		{"_revinclude of an unknown parameter", []string{"Patient"}, "_revinclude:iterate=Provenance:foo", fhir.Invalid, "_revinclude:iterate", "not a search parameter of Provenance"},
	}
	p := newParser(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, strict := range []bool{false, true} {
				q, err := p.Parse(tt.types, query(t, tt.query), strict)
				if err == nil {
					t.Fatalf("Parse(%q, strict=%v) = %+v, want an error", tt.query, strict, q)
				}
				checkError(t, err, tt.kind, tt.key, tt.msg)
			}
		})
	}
}

func TestNoRegistry(t *testing.T) {
	t.Parallel()
	_, err := (&Parser{}).Parse([]string{"Patient"}, nil, false)
	if !fhir.IsKind(err, fhir.Internal) {
		t.Errorf("Parse without a registry: %v, want an Internal error", err)
	}
}

func TestDefaultFold(t *testing.T) {
	t.Parallel()
	p := newParser(t)
	p.Fold = nil
	q, err := p.Parse([]string{"Patient"}, url.Values{"name": {"  Zoë  Van Dijk "}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := q.Where[0].Values[0].(String).Norm, searchparam.Fold("Zoë Van Dijk"); got != want || got != "zoe van dijk" {
		t.Errorf("Norm = %q, want searchparam.Fold's %q", got, want)
	}
}

func TestEncode(t *testing.T) {
	t.Parallel()
	p := newParser(t)
	q, err := p.Parse([]string{"Observation"}, query(t,
		"subject:Patient.name=Jansen%5C,Piet,de%24Vries&date=eq2020-01&date=lt2021-03-04T10:00:00.5%2B02:00"+
			"&value-string=a%24b%5C,c,,d&code=http://loinc.org|8480-6&_sort=-date&_include=Observation:subject&_cursor=abc&_count=10&foo=bar"), false)
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"subject:Patient.name": {`Jansen\,Piet,de$Vries`}, // a chain's value as written
		"value-string":         {`a\$b\,c,d`},
		"date":                 {"2020-01", "lt2021-03-04T10:00:00.5+02:00"},
		"code":                 {"http://loinc.org|8480-6"},
		"_sort":                {"-date"},
		"_include":             {"Observation:subject"},
		"_count":               {"10"},
	}
	if diff := cmp.Diff(want, q.Encode()); diff != "" {
		t.Errorf("Encode() (-want +got):\n%s", diff)
	}
}
