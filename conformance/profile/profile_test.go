package profile

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/digitaleouder/ouder/fhir"
)

// sd returns a StructureDefinition of a constraint profile on typ with the
// given snapshot elements after the root (and root constraints).
func sd(url, typ string, rootConstraints string, elements ...string) []byte {
	root := `{"id":"` + typ + `","path":"` + typ + `","min":0,"max":"*","base":{"path":"` + typ + `","min":0,"max":"*"}`
	if rootConstraints != "" {
		root += `,"constraint":[` + rootConstraints + `]`
	}
	root += "}"
	return []byte(`{"resourceType":"StructureDefinition","url":"` + url + `","name":"T","type":"` + typ + `","derivation":"constraint",
 "snapshot":{"element":[` + strings.Join(append([]string{root}, elements...), ",") + `]}}`)
}

const (
	csURL = "http://example.org/cs"
	vsURL = "http://example.org/vs"
)

var terminology = [][]byte{
	[]byte(`{"resourceType":"CodeSystem","url":"` + csURL + `","content":"complete","concept":[{"code":"a"},{"code":"b"}]}`),
	[]byte(`{"resourceType":"ValueSet","url":"` + vsURL + `","compose":{"include":[{"system":"` + csURL + `","concept":[{"code":"a"}]}]}}`),
}

// patientProfile constrains Patient: identifier sliced (closed) by the
// system of each slice, exactly one BSN; gender fixed; maritalStatus bound
// to vsURL; generalPractitioner only Practitioner; deceased only boolean; an
// invariant.
var patientProfile = sd("http://example.org/p", "Patient",
	`{"key":"p-1","severity":"error","human":"a name","expression":"name.exists()","source":"http://example.org/p"},
	 {"key":"p-2","severity":"warning","human":"a birth date","expression":"birthDate.exists()","source":"http://example.org/p"},
	 {"key":"dom-2","severity":"error","human":"R4's own","expression":"contained.contained.empty()","source":"http://hl7.org/fhir/StructureDefinition/DomainResource"}`,
	`{"id":"Patient.identifier","path":"Patient.identifier","slicing":{"discriminator":[{"type":"value","path":"system"}],"rules":"closed"},"min":1,"max":"*","base":{"path":"Patient.identifier","min":0,"max":"*"}}`,
	`{"id":"Patient.identifier:bsn","path":"Patient.identifier","sliceName":"bsn","min":1,"max":"1","base":{"path":"Patient.identifier","min":0,"max":"*"}}`,
	`{"id":"Patient.identifier:bsn.system","path":"Patient.identifier.system","min":1,"max":"1","fixedUri":"http://fhir.nl/fhir/NamingSystem/bsn","base":{"path":"Identifier.system","min":0,"max":"1"}}`,
	`{"id":"Patient.identifier:local","path":"Patient.identifier","sliceName":"local","min":0,"max":"*","base":{"path":"Patient.identifier","min":0,"max":"*"}}`,
	`{"id":"Patient.identifier:local.system","path":"Patient.identifier.system","min":0,"max":"1","patternUri":"http://example.org/local","base":{"path":"Identifier.system","min":0,"max":"1"}}`,
	`{"id":"Patient.gender","path":"Patient.gender","min":0,"max":"1","fixedCode":"female","base":{"path":"Patient.gender","min":0,"max":"1"}}`,
	`{"id":"Patient.maritalStatus","path":"Patient.maritalStatus","min":0,"max":"1","type":[{"code":"CodeableConcept"}],"binding":{"strength":"required","valueSet":"`+vsURL+`|1.0"},"base":{"path":"Patient.maritalStatus","min":0,"max":"1"}}`,
	`{"id":"Patient.deceased[x]","path":"Patient.deceased[x]","min":0,"max":"1","type":[{"code":"boolean"}],"base":{"path":"Patient.deceased[x]","min":0,"max":"1"}}`,
	`{"id":"Patient.generalPractitioner","path":"Patient.generalPractitioner","min":0,"max":"*","type":[{"code":"Reference","targetProfile":["http://hl7.org/fhir/StructureDefinition/Practitioner"]}],"base":{"path":"Patient.generalPractitioner","min":0,"max":"*"}}`,
)

func compileTest(tb testing.TB, defs ...[]byte) *Set {
	tb.Helper()
	s, err := Compile(Config{StructureDefinitions: defs, Terminology: terminology, CheckSystem: func(sys string) bool { return sys == csURL }})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func decoded(tb testing.TB, s string) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func summary(issues []fhir.Issue) []string {
	var out []string
	for _, is := range issues {
		out = append(out, is.Severity+" "+is.Code+" "+strings.Join(is.Expression, ","))
	}
	slices.Sort(out)
	return out
}

func TestValidate(t *testing.T) {
	t.Parallel()
	s := compileTest(t, patientProfile)
	const valid = `"identifier":[{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"1"},{"system":"http://example.org/local","value":"x"}],"name":[{"text":"A"}],"birthDate":"2000-01-01"`
	tests := []struct {
		name     string
		resource string
		want     []string
	}{
		{"valid", `{"resourceType":"Patient","meta":{"profile":["http://example.org/p|1.0"]},` + valid + `}`, nil},
		{"not claimed: not validated", `{"resourceType":"Patient"}`, nil},
		{"unknown claim", `{"resourceType":"Patient","meta":{"profile":["http://example.org/other"]}}`, []string{"warning not-supported Patient.meta.profile[0]"}},
		{"claim of another type", `{"resourceType":"Observation","meta":{"profile":["http://example.org/p"]}}`, []string{"error invalid Observation.meta.profile[0]"}},
		{"closed slicing, slice cardinality, fixed, invariants", `{"resourceType":"Patient","meta":{"profile":["http://example.org/p"]},
			"identifier":[{"system":"http://example.org/other"}],"gender":"male"}`, []string{
			"error invariant Patient", "error required Patient.identifier", "error structure Patient.identifier[0]",
			"error value Patient.gender", "warning invariant Patient"}},
		{"contained resources are not validated against the profile", `{"resourceType":"Patient","meta":{"profile":["http://example.org/p"]},` + valid + `,
			"contained":[{"resourceType":"Patient","identifier":[{"system":"http://fhir.nl/fhir/NamingSystem/bsn"}]}]}`, nil},
		{"binding, choice type, target", `{"resourceType":"Patient","meta":{"profile":["http://example.org/p"]},` + valid + `,
			"maritalStatus":{"coding":[{"system":"` + csURL + `","code":"b"}]},"deceasedDateTime":"2020-01-01",
			"generalPractitioner":[{"reference":"Practitioner/1"},{"reference":"https://x.org/fhir/Organization/2/_history/3"},{"reference":"#c"}]}`,
			[]string{"error code-invalid Patient.maritalStatus", "error structure Patient.deceased", "error structure Patient.generalPractitioner[1]"}},
		{"a code the system does not define, anywhere", `{"resourceType":"Patient","extension":[{"url":"x","valueCoding":{"system":"` + csURL + `","code":"z"}}]}`,
			[]string{"error code-invalid Patient.extension[0].valueCoding.code"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Validate(decoded(t, tc.resource))
			if got := summary(res.Issues); !slices.Equal(got, tc.want) {
				t.Errorf("issues %q, want %q", got, tc.want)
			}
			if res.Valid() != !slices.ContainsFunc(tc.want, func(s string) bool { return strings.HasPrefix(s, "error") }) {
				t.Errorf("Valid() = %v for %q", res.Valid(), tc.want)
			}
			if err := res.Err(); (err == nil) != res.Valid() || err != nil && !fhir.IsKind(err, fhir.Unprocessable) {
				t.Errorf("Err() = %v", err)
			}
		})
	}
}

func TestValidateAgainst(t *testing.T) {
	t.Parallel()
	s := compileTest(t, patientProfile)
	got := summary(s.ValidateAgainst(decoded(t, `{"resourceType":"Patient"}`), "http://example.org/p", "http://example.org/nope").Issues)
	want := []string{"error invariant Patient", "error not-supported ", "error required Patient.identifier", "error required Patient.identifier", "warning invariant Patient"}
	if !slices.Equal(got, want) {
		t.Errorf("issues %q, want %q", got, want)
	}
	if got := s.Profiles("Patient"); !slices.Equal(got, []string{"http://example.org/p"}) {
		t.Errorf("Profiles(Patient) = %v", got)
	}
	if got := s.Profiles("Observation"); len(got) != 0 {
		t.Errorf("Profiles(Observation) = %v", got)
	}
}

func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	el := func(id, rest string) string {
		path := strings.ReplaceAll(id, ":s", "")
		return `{"id":"` + id + `","path":"` + path + `","min":0,"max":"*","base":{"path":"` + path + `","min":0,"max":"*"}` + rest + `}`
	}
	tests := []struct {
		name string
		def  []byte
		want string
	}{
		{"a specialization", []byte(`{"resourceType":"StructureDefinition","url":"u","type":"Patient","derivation":"specialization","snapshot":{"element":[{"id":"Patient","path":"Patient"}]}}`), "only constraint"},
		{"no snapshot", []byte(`{"resourceType":"StructureDefinition","url":"u","type":"Patient","derivation":"constraint"}`), "no snapshot"},
		{"a discriminator by type", sd("u", "Patient", "", el("Patient.identifier", `,"slicing":{"discriminator":[{"type":"type","path":"$this"}],"rules":"open"}`)), "discriminator type"},
		{"a slice nothing tells", sd("u", "Patient", "", el("Patient.identifier", `,"slicing":{"discriminator":[{"type":"value","path":"system"}],"rules":"open"}`),
			el("Patient.identifier:s", `,"sliceName":"s"`)), "no value at the discriminator path"},
		{"an invariant below the root", sd("u", "Patient", "", el("Patient.name", `,"constraint":[{"key":"x","severity":"error","human":"x","expression":"text.exists()","source":"u"}]`)), "root element only"},
		{"an invariant outside the subset", sd("u", "Patient", `{"key":"x","severity":"error","human":"x","expression":"name.memberOf('v')","source":"u"}`), "invariant x"},
		{"an element without its parent", sd("u", "Patient", "", el("Patient.link.other", "")), "no parent"},
		{"an unknown target profile on a known element", sd("u", "Patient", "", el("Patient.generalPractitioner", `,"type":[{"code":"Reference","targetProfile":["http://example.org/nope"]}]`)), "not known"},
		{"an unknown extension profile", sd("u", "Patient", "", el("Patient.extension", `,"min":1,"type":[{"code":"Extension","profile":["http://example.org/ext"]}]`)), "extension profile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(Config{StructureDefinitions: [][]byte{tc.def}, Terminology: terminology})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Compile: %v, want an error with %q", err, tc.want)
			}
		})
	}
	bad := []byte(`{"resourceType":"ValueSet","url":"v","compose":{"include":[{"system":"` + csURL + `","concept":[{"code":"zz"}]}]}}`)
	if _, err := Compile(Config{Terminology: append(terminology, bad)}); err == nil {
		t.Error("a value set with a code its system does not define compiled")
	}
	if _, err := Compile(Config{Terminology: [][]byte{[]byte(`{"resourceType":"CodeSystem","url":"c","content":"fragment"}`)}}); err == nil {
		t.Error("a fragment code system compiled")
	}
}

func TestRefType(t *testing.T) {
	t.Parallel()
	for ref, want := range map[string]string{
		"Patient/1": "Patient", "Patient/1/_history/2": "Patient", "https://x.org/fhir/Group/g": "Group",
		"#c": "", "urn:uuid:1": "", "": "", "Nonsense/1": "", "1": "",
	} {
		if got := refType(ref); got != want {
			t.Errorf("refType(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestMatches(t *testing.T) {
	t.Parallel()
	cc := decoded(t, `{"x":{"coding":[{"system":"s","code":"c","display":"d"},{"system":"t","code":"e"}],"text":"x"}}`)["x"]
	tests := []struct {
		pattern string
		val     any
		want    bool
	}{
		{`{"coding":[{"system":"s","code":"c"}]}`, cc, true},
		{`{"coding":[{"system":"t","code":"e"},{"system":"s"}]}`, cc, true},
		{`{"coding":[{"system":"s","code":"e"}]}`, cc, false},
		{`{"text":"y"}`, cc, false},
		{`{"coding":[{"system":"s"}]}`, nil, false},
	}
	for _, tc := range tests {
		var p any
		if err := json.Unmarshal([]byte(tc.pattern), &p); err != nil {
			t.Fatal(err)
		}
		if got := matches(p, tc.val); got != tc.want {
			t.Errorf("matches(%s) = %v, want %v", tc.pattern, got, tc.want)
		}
	}
	if !equal(json.Number("1.5"), 1.5) || equal(json.Number("1.50"), json.Number("1.5")) || equal(json.Number("1"), "1") || !equal([]any{"a"}, []any{"a"}) || equal(map[string]any{"a": "b"}, map[string]any{}) {
		t.Error("equal is wrong")
	}
}
