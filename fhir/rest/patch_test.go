package rest_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const jsonPatchType = "Content-Type: application/json-patch+json"

// fhirPathPatch is a Parameters resource with the given operations, each
// the parts of one operation.
func fhirPathPatch(ops ...string) string {
	s := `{"resourceType":"Parameters","parameter":[`
	for i, op := range ops {
		if i > 0 {
			s += ","
		}
		s += `{"name":"operation","part":[` + op + `]}`
	}
	return s + `]}`
}

// TestPatch checks PATCH with both formats: the result is stored as the
// next version, If-Match holds, and every refusal leaves the resource as it
// was.
func TestPatch(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	id := ts.create(t, "Patient", `{"resourceType":"Patient","name":[{"family":"Jansen","given":["Anna","Maria"]}],"gender":"female","birthDate":"2012-03-04","telecom":[{"system":"phone","value":"1"},{"system":"email","value":"a@example.org"}]}`)
	path := "/fhir/Patient/" + id

	r := ts.do(t, "PATCH", path, `[{"op":"replace","path":"/gender","value":"other"},{"op":"add","path":"/name/0/given/-","value":"Sophie"}]`, jsonPatchType, `If-Match: W/"1"`)
	if r.status != http.StatusOK || r.header.Get("ETag") != `W/"2"` {
		t.Fatalf("JSON Patch: status %d, ETag %q: %s", r.status, r.header.Get("ETag"), r.body)
	}
	got := ts.read(t, "Patient", id)
	if got["gender"] != "other" || len(got["name"].([]any)[0].(map[string]any)["given"].([]any)) != 3 {
		t.Errorf("after the JSON Patch: %v", got)
	}

	r = ts.do(t, "PATCH", path, fhirPathPatch(
		`{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Patient.birthDate"},{"name":"value","valueDate":"2012-03-05"}`,
		`{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Patient.telecom.where(system='phone')"}`,
		`{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"deceased"},{"name":"value","valueBoolean":false}`,
		`{"name":"type","valueCode":"insert"},{"name":"path","valueString":"Patient.identifier"},{"name":"index","valueInteger":0},{"name":"value","valueIdentifier":{"system":"urn:t","value":"p"}}`,
		`{"name":"type","valueCode":"move"},{"name":"path","valueString":"Patient.name[0].given"},{"name":"source","valueInteger":2},{"name":"destination","valueInteger":0}`,
		`{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"contact"},{"name":"value","part":[{"name":"name","valueHumanName":{"family":"Bakker"}},{"name":"telecom","valueContactPoint":{"system":"phone","value":"2"}}]}`,
	), `If-Match: W/"2"`)
	if r.status != http.StatusOK || r.header.Get("ETag") != `W/"3"` {
		t.Fatalf("FHIRPath Patch: status %d, ETag %q: %s", r.status, r.header.Get("ETag"), r.body)
	}
	got = ts.read(t, "Patient", id)
	want := map[string]any{
		"birthDate":       "2012-03-05",
		"deceasedBoolean": false,
		"telecom":         []any{map[string]any{"system": "email", "value": "a@example.org"}},
		"identifier":      []any{map[string]any{"system": "urn:t", "value": "p"}},
		"given":           []any{"Sophie", "Anna", "Maria"},
		"contact":         []any{map[string]any{"name": map[string]any{"family": "Bakker"}, "telecom": []any{map[string]any{"system": "phone", "value": "2"}}}},
	}
	have := map[string]any{
		"birthDate":       got["birthDate"],
		"deceasedBoolean": got["deceasedBoolean"],
		"telecom":         got["telecom"],
		"identifier":      got["identifier"],
		"given":           got["name"].([]any)[0].(map[string]any)["given"],
		"contact":         got["contact"],
	}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("after the FHIRPath Patch (-want +got):\n%s", diff)
	}

	before := ts.snapshot(t)
	tests := []struct {
		name    string
		path    string
		body    string
		headers []string
		status  int
		issues  []string
	}{
		{"stale If-Match", path, `[]`, []string{jsonPatchType, `If-Match: W/"1"`}, 412, []string{"conflict@"}},
		{"result invalid", path, `[{"op":"replace","path":"/gender","value":"purple"}]`, []string{jsonPatchType}, 400, []string{"structure@Patient.gender"}},
		{"result changes the id", path, `[{"op":"replace","path":"/id","value":"other"}]`, []string{jsonPatchType}, 400, []string{"invalid@Patient.id"}},
		{"result changes the type", path, `[{"op":"replace","path":"/resourceType","value":"Group"}]`, []string{jsonPatchType}, 400, []string{"invalid@Patient"}},
		{"failed test", path, `[{"op":"test","path":"/gender","value":"male"}]`, []string{jsonPatchType}, 422, []string{"processing@"}},
		{"missing path", path, `[{"op":"remove","path":"/photo"}]`, []string{jsonPatchType}, 422, []string{"processing@"}},
		{"not a JSON Patch", path, `{"op":"remove"}`, []string{jsonPatchType}, 400, []string{"invalid@"}},
		{"unknown JSON Patch op", path, `[{"op":"frobnicate","path":"/gender"}]`, []string{jsonPatchType}, 400, []string{"invalid@"}},
		{"not Parameters", path, patient, nil, 400, []string{"invalid@Parameters"}},
		{"FHIRPath Patch unknown type", path, fhirPathPatch(`{"name":"type","valueCode":"frobnicate"},{"name":"path","valueString":"Patient"}`), nil, 400, []string{"invalid@Parameters.parameter[0]"}},
		{"FHIRPath Patch unsupported function", path, fhirPathPatch(`{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Patient.name.skip(1)"}`), nil, 400, []string{"invalid@Parameters.parameter[0]"}},
		{"FHIRPath Patch replace of nothing", path, fhirPathPatch(`{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Patient.photo"},{"name":"value","valueString":"x"}`), nil, 422, []string{"processing@Parameters.parameter[0]"}},
		{"FHIRPath Patch add over a value", path, fhirPathPatch(`{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"gender"},{"name":"value","valueCode":"male"}`), nil, 422, []string{"processing@Parameters.parameter[0]"}},
		{"FHIRPath Patch unknown element", path, fhirPathPatch(`{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"colour"},{"name":"value","valueCode":"blue"}`), nil, 422, []string{"processing@Parameters.parameter[0]"}},
		{"FHIRPath Patch result invalid", path, fhirPathPatch(`{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Patient.gender"},{"name":"value","valueCode":"purple"}`), nil, 400, []string{"structure@Patient.gender"}},
		{"FHIRPath Patch of another type", path, fhirPathPatch(`{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Observation.status"}`), nil, 422, []string{"processing@Parameters.parameter[0]"}},
		{"unsupported media type", path, `gender=male`, []string{"Content-Type: application/x-www-form-urlencoded"}, 415, []string{"not-supported@"}},
		{"unknown resource", "/fhir/Patient/missing", `[]`, []string{jsonPatchType}, 404, []string{"not-found@"}},
		{"conditional patch without a match", "/fhir/Patient?identifier=urn:t|none", `[]`, []string{jsonPatchType}, 404, []string{"not-found@"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(t, "PATCH", tt.path, tt.body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if diff := cmp.Diff(tt.issues, issues(t, r)); diff != "" {
				t.Errorf("issues (-want +got):\n%s", diff)
			}
		})
	}
	if diff := cmp.Diff(before, ts.snapshot(t)); diff != "" {
		t.Errorf("refused patches changed the database (-before +after):\n%s", diff)
	}

	// Conditional patch: the one match.
	r = ts.do(t, "PATCH", "/fhir/Patient?identifier=urn:t|p", `[{"op":"add","path":"/active","value":true}]`, jsonPatchType)
	if r.status != http.StatusOK || r.json(t)["id"] != id || r.header.Get("ETag") != `W/"4"` {
		t.Errorf("conditional patch: status %d, ETag %q: %s", r.status, r.header.Get("ETag"), r.body)
	}
}

// TestPatchConcurrent checks that concurrent patches without If-Match are
// all applied: a patch that loses the race is applied again to the new
// version rather than overwriting it.
func TestPatchConcurrent(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	id := ts.create(t, "Patient", `{"resourceType":"Patient","name":[{"family":"Jansen","given":["Anna"]}]}`)
	const n = 3
	done := make(chan response, n)
	for i := range n {
		go func() {
			done <- ts.do(t, "PATCH", "/fhir/Patient/"+id, `[{"op":"add","path":"/name/0/given/-","value":"g`+string(rune('0'+i))+`"}]`, jsonPatchType)
		}()
	}
	for range n {
		if r := <-done; r.status != http.StatusOK {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	}
	given, _ := ts.read(t, "Patient", id)["name"].([]any)[0].(map[string]any)["given"].([]any)
	if len(given) != n+1 {
		t.Errorf("given = %v, want all %d patches applied", given, n)
	}
}
