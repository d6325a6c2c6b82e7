package patch

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digitaleouder/ouder/fhir"
)

const patientDoc = `{"resourceType":"Patient","id":"p","meta":{"versionId":"1"},
	"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">A &amp; B</div>"},
	"extension":[{"url":"http://example.org/a","valueString":"a"},{"url":"http://example.org/b","valueDecimal":4.20}],
	"identifier":[{"system":"urn:a","value":"1"},{"system":"urn:b","value":"2"}],
	"name":[{"family":"Jansen","given":["Anna","Maria"],"_given":[null,{"extension":[{"url":"http://example.org/x","valueCode":"y"}]}]}],
	"gender":"female","_gender":{"extension":[{"url":"http://example.org/g","valueCode":"z"}]},
	"birthDate":"2012-03-04","deceasedBoolean":false,
	"contact":[{"name":{"family":"Bakker"}}]}`

// op builds one FHIRPath Patch operation from name/value pairs.
func op(typ, path string, parts ...string) string {
	s := `{"name":"operation","part":[{"name":"type","valueCode":"` + typ + `"},{"name":"path","valueString":"` + path + `"}`
	for _, p := range parts {
		s += "," + p
	}
	return s + "]}"
}

func params(ops ...string) []byte {
	return []byte(`{"resourceType":"Parameters","parameter":[` + strings.Join(ops, ",") + `]}`)
}

func decoded(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := decode(b, &m); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return m
}

// TestFHIRPath checks each operation and path form on one resource: what
// the patched resource holds where the operation acted.
func TestFHIRPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ops  []string
		at   func(m map[string]any) any // the part of the result to compare
		want string                     // as JSON
	}{
		{
			name: "replace a primitive keeps its extension",
			ops:  []string{op("replace", "Patient.gender", `{"name":"value","valueCode":"male"}`)},
			at:   func(m map[string]any) any { return []any{m["gender"], m["_gender"] != nil} },
			want: `["male",true]`,
		},
		{
			name: "delete a primitive removes its extension",
			ops:  []string{op("delete", "Patient.gender")},
			at:   func(m map[string]any) any { return []any{m["gender"], m["_gender"]} },
			want: `[null,null]`,
		},
		{
			name: "delete of nothing is no error",
			ops:  []string{op("delete", "Patient.photo")},
			at:   func(m map[string]any) any { return m["photo"] },
			want: `null`,
		},
		{
			name: "delete an item keeps the extension list in step",
			ops:  []string{op("delete", "Patient.name[0].given[0]")},
			at: func(m map[string]any) any {
				n := m["name"].([]any)[0].(map[string]any)
				return []any{n["given"], n["_given"]}
			},
			want: `[["Maria"],[{"extension":[{"url":"http://example.org/x","valueCode":"y"}]}]]`,
		},
		{
			name: "insert into a list of primitives",
			ops:  []string{op("insert", "Patient.name[0].given", `{"name":"index","valueInteger":1}`, `{"name":"value","valueString":"Sophie"}`)},
			at: func(m map[string]any) any {
				n := m["name"].([]any)[0].(map[string]any)
				return []any{n["given"], len(n["_given"].([]any))}
			},
			want: `[["Anna","Sophie","Maria"],3]`,
		},
		{
			name: "insert at the end, and into a list that does not exist yet",
			ops: []string{
				op("insert", "Patient.identifier", `{"name":"index","valueInteger":2}`, `{"name":"value","valueIdentifier":{"system":"urn:c","value":"3"}}`),
				op("insert", "Patient.telecom", `{"name":"index","valueInteger":0}`, `{"name":"value","valueContactPoint":{"system":"phone","value":"1"}}`),
			},
			at:   func(m map[string]any) any { return []any{len(m["identifier"].([]any)), m["telecom"]} },
			want: `[3,[{"system":"phone","value":"1"}]]`,
		},
		{
			name: "move within a list",
			ops:  []string{op("move", "Patient.identifier", `{"name":"source","valueInteger":1}`, `{"name":"destination","valueInteger":0}`)},
			at:   func(m map[string]any) any { return m["identifier"] },
			want: `[{"system":"urn:b","value":"2"},{"system":"urn:a","value":"1"}]`,
		},
		{
			name: "where() selects",
			ops:  []string{op("replace", "Patient.identifier.where(system='urn:b').value", `{"name":"value","valueString":"22"}`)},
			at:   func(m map[string]any) any { return m["identifier"] },
			want: `[{"system":"urn:a","value":"1"},{"system":"urn:b","value":"22"}]`,
		},
		{
			name: "extension('url')",
			ops:  []string{op("delete", "Patient.extension('http://example.org/a')")},
			at:   func(m map[string]any) any { return m["extension"] },
			want: `[{"url":"http://example.org/b","valueDecimal":4.20}]`,
		},
		{
			name: "first() and last()",
			ops: []string{
				op("replace", "Patient.identifier.first().value", `{"name":"value","valueString":"f"}`),
				op("replace", "Patient.identifier.last().value", `{"name":"value","valueString":"l"}`),
			},
			at:   func(m map[string]any) any { return m["identifier"] },
			want: `[{"system":"urn:a","value":"f"},{"system":"urn:b","value":"l"}]`,
		},
		{
			name: "replace a choice element with another type",
			ops:  []string{op("replace", "Patient.deceased", `{"name":"value","valueDateTime":"2020-01-01"}`)},
			at:   func(m map[string]any) any { return []any{m["deceasedBoolean"], m["deceasedDateTime"]} },
			want: `[null,"2020-01-01"]`,
		},
		{
			name: "ofType() on a choice",
			ops:  []string{op("delete", "Patient.deceased.ofType(boolean)")},
			at:   func(m map[string]any) any { return m["deceasedBoolean"] },
			want: `null`,
		},
		{
			name: "add a choice element by its stem",
			ops: []string{
				op("delete", "Patient.deceased"),
				op("add", "Patient", `{"name":"name","valueString":"multipleBirth"}`, `{"name":"value","valueInteger":2}`),
			},
			at:   func(m map[string]any) any { return m["multipleBirthInteger"] },
			want: `2`,
		},
		{
			name: "add to a list appends",
			ops:  []string{op("add", "Patient", `{"name":"name","valueString":"identifier"}`, `{"name":"value","valueIdentifier":{"value":"9"}}`)},
			at:   func(m map[string]any) any { return m["identifier"].([]any)[2] },
			want: `{"value":"9"}`,
		},
		{
			name: "add inside a backbone element, a complex value from parts",
			ops: []string{op("add", "Patient.contact[0]", `{"name":"name","valueString":"address"}`,
				`{"name":"value","part":[{"name":"city","valueString":"Utrecht"},{"name":"line","valueString":"Oudegracht 1"}]}`)},
			at:   func(m map[string]any) any { return m["contact"].([]any)[0].(map[string]any)["address"] },
			want: `{"city":"Utrecht","line":["Oudegracht 1"]}`,
		},
		{
			name: "operations apply in order",
			ops: []string{
				op("add", "Patient", `{"name":"name","valueString":"active"}`, `{"name":"value","valueBoolean":true}`),
				op("replace", "Patient.active", `{"name":"value","valueBoolean":false}`),
			},
			at:   func(m map[string]any) any { return m["active"] },
			want: `false`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := FHIRPath([]byte(patientDoc), params(tt.ops...))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(tt.at(decoded(t, out)))
			var want any
			if err := decode([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			wantJSON, _ := json.Marshal(want)
			if diff := cmp.Diff(string(wantJSON), string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestFHIRPathKeepsBytes checks what a patch must not change: the order of
// the top-level members, decimals as written, HTML in the narrative.
func TestFHIRPathKeepsBytes(t *testing.T) {
	t.Parallel()
	out, err := FHIRPath([]byte(patientDoc), params(op("delete", "Patient.birthDate")))
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{`"valueDecimal":4.20`, `<div xmlns=\"http://www.w3.org/1999/xhtml\">A &amp; B</div>`} {
		if !strings.Contains(s, want) {
			t.Errorf("result lost %s:\n%s", want, s)
		}
	}
	if !strings.HasPrefix(s, `{"resourceType":"Patient","id":"p","meta":`) || strings.Index(s, `"gender"`) > strings.Index(s, `"deceasedBoolean"`) {
		t.Errorf("top-level members out of order:\n%s", s)
	}
}

// TestFHIRPathErrors checks the refusals: Invalid for a malformed patch,
// Unprocessable for one that does not fit the resource, each naming the
// operation.
func TestFHIRPathErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params string
		kind   fhir.Kind
		expr   string
	}{
		{"not Parameters", `{"resourceType":"Patient"}`, fhir.Invalid, "Parameters"},
		{"not an operation", `{"resourceType":"Parameters","parameter":[{"name":"other"}]}`, fhir.Invalid, "Parameters.parameter[0]"},
		{"no type", `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"path","valueString":"Patient"}]}]}`, fhir.Invalid, "Parameters.parameter[0]"},
		{"unknown type", string(params(op("frobnicate", "Patient"))), fhir.Invalid, "Parameters.parameter[0]"},
		{"add without name", string(params(op("add", "Patient", `{"name":"value","valueBoolean":true}`))), fhir.Invalid, "Parameters.parameter[0]"},
		{"unknown part", string(params(op("delete", "Patient.gender", `{"name":"colour","valueString":"x"}`))), fhir.Invalid, "Parameters.parameter[0]"},
		{"negative index", string(params(op("insert", "Patient.identifier", `{"name":"index","valueInteger":-1}`, `{"name":"value","valueString":"x"}`))), fhir.Invalid, "Parameters.parameter[0]"},
		{"unsupported function", string(params(op("delete", "Patient.name.skip(1)"))), fhir.Invalid, "Parameters.parameter[0]"},
		{"path syntax", string(params(op("delete", "Patient.name + 1"))), fhir.Invalid, "Parameters.parameter[0]"},
		{"bad where criteria", string(params(op("delete", "Patient.name.where(family = )"))), fhir.Invalid, "Parameters.parameter[0]"},
		{"other resource type", string(params(op("delete", "Observation.status"))), fhir.Unprocessable, "Parameters.parameter[0]"},
		{"replace matches several", string(params(op("replace", "Patient.identifier", `{"name":"value","valueIdentifier":{}}`))), fhir.Unprocessable, "Parameters.parameter[0]"},
		{"delete matches several", string(params(op("delete", "Patient.identifier"))), fhir.Unprocessable, "Parameters.parameter[0]"},
		{"add over a value", string(params(op("add", "Patient", `{"name":"name","valueString":"gender"}`, `{"name":"value","valueCode":"male"}`))), fhir.Unprocessable, "Parameters.parameter[0]"},
		{"add a choice that has a value", string(params(op("add", "Patient", `{"name":"name","valueString":"deceased"}`, `{"name":"value","valueDateTime":"2020"}`))), fhir.Unprocessable, "Parameters.parameter[0]"},
		{"add an unknown element", string(params(op("add", "Patient", `{"name":"name","valueString":"colour"}`, `{"name":"value","valueCode":"blue"}`))), fhir.Unprocessable, "Parameters.parameter[0]"},
		{"add a choice of a wrong type", string(params(op("add", "Patient", `{"name":"name","valueString":"multipleBirth"}`, `{"name":"value","valueString":"twice"}`))), fhir.Unprocessable, "Parameters.parameter[0]"},
		{"insert into a single element", string(params(op("insert", "Patient.gender", `{"name":"index","valueInteger":0}`, `{"name":"value","valueCode":"male"}`))), fhir.Unprocessable, "Parameters.parameter[0]"},
		{"insert beyond the end", string(params(op("insert", "Patient.identifier", `{"name":"index","valueInteger":3}`, `{"name":"value","valueIdentifier":{}}`))), fhir.Unprocessable, "Parameters.parameter[0]"},
		{"move out of range", string(params(op("move", "Patient.identifier", `{"name":"source","valueInteger":0}`, `{"name":"destination","valueInteger":2}`))), fhir.Unprocessable, "Parameters.parameter[0]"},
		{"delete the resource", string(params(op("delete", "Patient"))), fhir.Unprocessable, "Parameters.parameter[0]"},
		{"second operation fails", string(params(op("delete", "Patient.gender"), op("replace", "Patient.gender", `{"name":"value","valueCode":"male"}`))), fhir.Unprocessable, "Parameters.parameter[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := FHIRPath([]byte(patientDoc), []byte(tt.params))
			fe, ok := err.(*fhir.Error)
			if !ok {
				t.Fatalf("error %v, want a *fhir.Error", err)
			}
			if fe.Kind != tt.kind || len(fe.Issues) != 1 || len(fe.Issues[0].Expression) != 1 || fe.Issues[0].Expression[0] != tt.expr {
				t.Errorf("got kind %d, issues %+v; want kind %d at %s", fe.Kind, fe.Issues, tt.kind, tt.expr)
			}
		})
	}
}

// TestJSON checks JSON Patch and its refusals.
func TestJSON(t *testing.T) {
	t.Parallel()
	out, err := JSON([]byte(patientDoc), []byte(`[{"op":"test","path":"/gender","value":"female"},{"op":"replace","path":"/gender","value":"male"},{"op":"remove","path":"/_gender"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if m := decoded(t, out); m["gender"] != "male" || m["_gender"] != nil {
		t.Errorf("gender %v, _gender %v", m["gender"], m["_gender"])
	}
	if s := string(out); !strings.HasPrefix(s, `{"resourceType":"Patient","id":"p","meta":`) || !strings.Contains(s, "4.20") {
		t.Errorf("JSON Patch lost order or decimals:\n%s", s)
	}
	tests := []struct {
		name, patch string
		kind        fhir.Kind
	}{
		{"not an array", `{"op":"remove","path":"/gender"}`, fhir.Invalid},
		{"unknown op", `[{"op":"frobnicate","path":"/gender"}]`, fhir.Invalid},
		{"no path", `[{"op":"remove"}]`, fhir.Invalid},
		{"add without value", `[{"op":"add","path":"/active"}]`, fhir.Invalid},
		{"move without from", `[{"op":"move","path":"/active"}]`, fhir.Invalid},
		{"failed test", `[{"op":"test","path":"/gender","value":"male"}]`, fhir.Unprocessable},
		{"missing member", `[{"op":"remove","path":"/photo"}]`, fhir.Unprocessable},
		{"index out of range", `[{"op":"remove","path":"/identifier/5"}]`, fhir.Unprocessable},
		{"copy bomb", `[` + strings.Repeat(`{"op":"copy","from":"/identifier","path":"/identifier/-"},`, 40) + `{"op":"remove","path":"/identifier"}]`, fhir.Unprocessable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := JSON([]byte(patientDoc), []byte(tt.patch))
			if got := fhir.KindOf(err); err == nil || got != tt.kind {
				t.Errorf("error %v (kind %d), want kind %d", err, got, tt.kind)
			}
		})
	}
}

// FuzzFHIRPath applies arbitrary patches: they may fail, never panic, and
// a success is JSON.
func FuzzFHIRPath(f *testing.F) {
	f.Add(string(params(op("replace", "Patient.identifier.where(system='urn:b').value", `{"name":"value","valueString":"22"}`))))
	f.Add(string(params(op("move", "Patient.name[0].given", `{"name":"source","valueInteger":1}`, `{"name":"destination","valueInteger":0}`))))
	f.Add(string(params(op("add", "Patient.contact[0]", `{"name":"name","valueString":"address"}`, `{"name":"value","part":[{"name":"line","valueString":"x"}]}`))))
	f.Add(string(params(op("delete", "Patient.extension('http://example.org/a')"))))
	f.Fuzz(func(t *testing.T, p string) {
		out, err := FHIRPath([]byte(patientDoc), []byte(p))
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("not JSON: %s", out)
		}
	})
}
