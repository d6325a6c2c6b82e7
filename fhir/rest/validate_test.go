package rest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// igExamples is one file of testdata/ig: valid and invalid examples of a
// profile of the implementation guide, with the OperationOutcome issues each
// invalid one must raise.
type igExamples struct {
	Profile string            `json:"profile"`
	Valid   []json.RawMessage `json:"valid"`
	Invalid []struct {
		Name     string          `json:"name"`
		Resource json.RawMessage `json:"resource"`
		Status   int             `json:"status"`
		Issues   []struct {
			Severity   string `json:"severity"`
			Code       string `json:"code"`
			Expression string `json:"expression"`
		} `json:"issues"`
	} `json:"invalid"`
}

// outcomeIssues returns the issues of an OperationOutcome as
// "severity code expression" strings, sorted.
func outcomeIssues(tb testing.TB, r response) []string {
	tb.Helper()
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity   string   `json:"severity"`
			Code       string   `json:"code"`
			Expression []string `json:"expression"`
		} `json:"issue"`
	}
	if err := json.Unmarshal(r.body, &oo); err != nil || oo.ResourceType != "OperationOutcome" {
		tb.Fatalf("want an OperationOutcome (%v), got %s", err, r.body)
	}
	var out []string
	for _, is := range oo.Issue {
		out = append(out, is.Severity+" "+is.Code+" "+strings.Join(is.Expression, ","))
	}
	slices.Sort(out)
	return out
}

// TestProfileExamples runs every example of testdata/ig through the HTTP
// API: a valid example is created (201) and $validate finds it valid; an
// invalid one is refused with the expected status and OperationOutcome
// issues, nothing is stored, and $validate answers 200 with the same issues.
func TestProfileExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../testdata/ig/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in testdata/ig: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var ex igExamples
			if err := json.Unmarshal(b, &ex); err != nil {
				t.Fatal(err)
			}
			ts := newServer(t)
			for i, body := range ex.Valid {
				typ := resourceType(t, body)
				if res := ts.do(t, "POST", "/fhir/"+typ, string(body)); res.status != http.StatusCreated {
					t.Errorf("valid example %d: status %d: %s", i, res.status, res.body)
				}
				res := ts.do(t, "POST", "/fhir/"+typ+"/$validate?profile="+url.QueryEscape(ex.Profile), string(body))
				if got := outcomeIssues(t, res); res.status != http.StatusOK || !slices.Equal(got, []string{"information informational "}) {
					t.Errorf("$validate of valid example %d: status %d, issues %q", i, res.status, got)
				}
			}
			for _, c := range ex.Invalid {
				typ := resourceType(t, c.Resource)
				var want []string
				for _, is := range c.Issues {
					want = append(want, is.Severity+" "+is.Code+" "+is.Expression)
				}
				slices.Sort(want)
				before, _ := ts.rows(t)
				res := ts.do(t, "POST", "/fhir/"+typ, string(c.Resource))
				if res.status != c.Status {
					t.Errorf("%s: status %d, want %d: %s", c.Name, res.status, c.Status, res.body)
				}
				got := outcomeIssues(t, res)
				if c.Status == http.StatusUnprocessableEntity && !slices.Equal(got, want) {
					t.Errorf("%s: issues\n%q, want\n%q", c.Name, got, want)
				}
				if after, _ := ts.rows(t); after != before {
					t.Errorf("%s: a refused create stored %d resources", c.Name, after-before)
				}
				val := ts.do(t, "POST", "/fhir/"+typ+"/$validate", string(c.Resource))
				if val.status != http.StatusOK {
					t.Errorf("%s: $validate status %d: %s", c.Name, val.status, val.body)
				}
				if vgot := outcomeIssues(t, val); !slices.Equal(vgot, got) {
					t.Errorf("%s: $validate issues\n%q, the create's\n%q", c.Name, vgot, got)
				}
			}
		})
	}
}

func resourceType(tb testing.TB, b []byte) string {
	tb.Helper()
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(b, &head); err != nil || head.ResourceType == "" {
		tb.Fatalf("not a resource: %s", b)
	}
	return head.ResourceType
}

const (
	igBase       = "https://digitaleouder.nl/fhir"
	agreementURL = igBase + "/StructureDefinition/agreement"
	// agreementJSON is a valid agreement; %s is its title member.
	agreementJSON = `{"resourceType":"CarePlan",%s"partOf":[{"reference":"CarePlan/kp-1"}],"status":"draft","intent":"plan",
 "category":[{"coding":[{"system":"` + igBase + `/CodeSystem/plan-category","code":"agreement"}]},
             {"coding":[{"system":"` + igBase + `/CodeSystem/plan-category","code":"child-plan"}]}],
 %s"subject":{"reference":"Patient/sara"}}`
)

func agreement(id, title string) string {
	idMember, titleMember := "", ""
	if id != "" {
		idMember = `"id":"` + id + `",`
	}
	if title != "" {
		titleMember = `"title":"` + title + `",`
	}
	return fmt.Sprintf(agreementJSON, idMember, titleMember)
}

// TestValidateOperation covers the parameters and levels of $validate.
func TestValidateOperation(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	if res := ts.do(t, "PUT", "/fhir/CarePlan/afs-1", agreement("afs-1", "Lezen")); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	patient := `{"resourceType":"Patient","name":[{"family":"Jansen"}]}`
	params := func(parts ...string) string {
		return `{"resourceType":"Parameters","parameter":[` + strings.Join(parts, ",") + `]}`
	}
	valid := []string{"information informational "}
	tests := []struct {
		name, method, path, body string
		status                   int
		issues                   []string
	}{
		{"type level, valid", "POST", "/fhir/CarePlan/$validate", agreement("", "Lezen"), 200, valid},
		{"type level, invalid", "POST", "/fhir/CarePlan/$validate", agreement("", ""), 200, []string{"error required CarePlan.title"}},
		{"instance level, stored", "GET", "/fhir/CarePlan/afs-1/$validate", "", 200, valid},
		{"instance level, stored, against another profile", "GET", "/fhir/CarePlan/afs-1/$validate?profile=" + url.QueryEscape(igBase+"/StructureDefinition/child-plan"), "", 200,
			[]string{"error invariant CarePlan"}},
		{"instance level, body with another id", "POST", "/fhir/CarePlan/afs-1/$validate", agreement("afs-2", "Lezen"), 200, []string{"error invalid CarePlan.id"}},
		{"instance level, unknown resource", "GET", "/fhir/CarePlan/nope/$validate", "", 404, nil},
		{"mode update without id", "POST", "/fhir/CarePlan/$validate?mode=update", agreement("", "Lezen"), 200, []string{"error required CarePlan.id"}},
		{"mode create", "POST", "/fhir/CarePlan/$validate?mode=create", agreement("", "Lezen"), 200, valid},
		{"mode delete", "POST", "/fhir/CarePlan/afs-1/$validate?mode=delete", "", 200, valid},
		{"mode delete of nothing", "GET", "/fhir/CarePlan/nope/$validate?mode=delete", "", 404, nil},
		{"mode delete at type level", "POST", "/fhir/CarePlan/$validate?mode=delete", agreement("", "Lezen"), 400, nil},
		{"unknown mode", "POST", "/fhir/CarePlan/$validate?mode=merge", agreement("", "Lezen"), 400, nil},
		{"Parameters with resource and profile", "POST", "/fhir/Patient/$validate",
			params(`{"name":"resource","resource":`+patient+`}`, `{"name":"profile","valueUri":"`+igBase+`/StructureDefinition/child"}`), 200,
			[]string{"error required Patient.birthDate"}},
		{"Parameters with a canonical profile and a mode", "POST", "/fhir/CarePlan/$validate",
			params(`{"name":"resource","resource":`+agreement("", "Lezen")+`}`, `{"name":"profile","valueCanonical":"`+agreementURL+`"}`, `{"name":"mode","valueCode":"create"}`), 200, valid},
		{"Parameters with an unknown parameter", "POST", "/fhir/Patient/$validate", params(`{"name":"strict","valueBoolean":true}`), 400, nil},
		{"Parameters without a resource", "POST", "/fhir/Patient/$validate", params(`{"name":"mode","valueCode":"create"}`), 400, nil},
		{"unknown profile", "POST", "/fhir/Patient/$validate?profile=http://example.org/p", patient, 200, []string{"error not-supported "}},
		{"profile of another type", "POST", "/fhir/Patient/$validate?profile=" + url.QueryEscape(agreementURL), patient, 200, []string{"error invalid Patient"}},
		{"claimed unknown profile is a warning", "POST", "/fhir/Patient/$validate", `{"resourceType":"Patient","meta":{"profile":["http://example.org/p"]}}`, 200,
			[]string{"warning not-supported Patient.meta.profile[0]"}},
		{"structurally invalid", "POST", "/fhir/Patient/$validate", `{"resourceType":"Patient","birthDate":"yesterday"}`, 200, []string{"error structure Patient.birthDate"}},
		{"not JSON", "POST", "/fhir/Patient/$validate", `{"resourceType":`, 200, []string{"error invalid Patient"}},
		{"another type than the URL's", "POST", "/fhir/Patient/$validate", agreement("", "Lezen"), 200, []string{"error invalid Patient"}},
		{"a SearchParameter the server cannot index", "POST", "/fhir/SearchParameter/$validate",
			`{"resourceType":"SearchParameter","url":"http://example.org/sp","name":"x","status":"active","description":"x","code":"x","base":["Patient"],"type":"special","expression":"Patient.name"}`,
			200, []string{"error invalid SearchParameter.type"}},
		{"no resource", "POST", "/fhir/Patient/$validate", "", 400, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := ts.rows(t)
			res := ts.do(t, tc.method, tc.path, tc.body)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			if got := outcomeIssues(t, res); tc.issues != nil && !slices.Equal(got, tc.issues) {
				t.Errorf("issues %q, want %q", got, tc.issues)
			}
			if after, _ := ts.rows(t); after != before {
				t.Errorf("$validate stored %d resources", after-before)
			}
		})
	}
}

// TestProfileValidationOnEveryWritePath checks that update, patch,
// transaction and conditional create refuse what breaks a profile with 422
// and leave nothing behind.
func TestProfileValidationOnEveryWritePath(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	if res := ts.do(t, "PUT", "/fhir/CarePlan/afs-1", agreement("afs-1", "Lezen")); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	tx := func(resource string) string {
		return `{"resourceType":"Bundle","type":"transaction","entry":[
 {"fullUrl":"urn:uuid:11111111-1111-1111-1111-111111111111","resource":{"resourceType":"Patient","birthDate":"2014-11-23"},"request":{"method":"POST","url":"Patient"}},
 {"resource":` + resource + `,"request":{"method":"POST","url":"CarePlan"}}]}`
	}
	tests := []struct {
		name, method, path, body string
		headers                  []string
		issues                   []string
	}{
		{"update", "PUT", "/fhir/CarePlan/afs-1", agreement("afs-1", ""), nil, []string{"error required CarePlan.title"}},
		{"JSON Patch", "PATCH", "/fhir/CarePlan/afs-1", `[{"op":"remove","path":"/title"}]`, []string{"Content-Type: application/json-patch+json"},
			[]string{"error required CarePlan.title"}},
		{"conditional create", "POST", "/fhir/CarePlan", agreement("", ""), []string{"If-None-Exist: title=Schrijven"}, []string{"error required CarePlan.title"}},
		{"transaction entry", "POST", "/fhir", tx(agreement("", "")), nil, []string{"error required Bundle.entry[1].resource.title"}},
		{"an unknown code in a transaction", "POST", "/fhir", tx(strings.Replace(agreement("", "Lezen"), `"child-plan"`, `"holiday-plan"`, 1)), nil,
			[]string{"error code-invalid Bundle.entry[1].resource.category[1].coding[0].code"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, versions := ts.rows(t)
			res := ts.do(t, tc.method, tc.path, tc.body, tc.headers...)
			if res.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422: %s", res.status, res.body)
			}
			if got := outcomeIssues(t, res); !slices.Equal(got, tc.issues) {
				t.Errorf("issues %q, want %q", got, tc.issues)
			}
			if after, v := ts.rows(t); after != before || v != versions {
				t.Errorf("the refused write stored %d resources and %d versions", after-before, v-versions)
			}
		})
	}
}

// TestCapabilityListsProfiles checks that the CapabilityStatement lists the
// guide, each profile as a supportedProfile of its type, and $validate.
func TestCapabilityListsProfiles(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	var cs struct {
		ImplementationGuide []string `json:"implementationGuide"`
		Rest                []struct {
			Resource []struct {
				Type             string   `json:"type"`
				SupportedProfile []string `json:"supportedProfile"`
				Operation        []struct {
					Name string `json:"name"`
				} `json:"operation"`
			} `json:"resource"`
		} `json:"rest"`
	}
	res := ts.do(t, "GET", "/fhir/metadata", "")
	if err := json.Unmarshal(res.body, &cs); err != nil || len(cs.Rest) != 1 {
		t.Fatalf("metadata: %v %s", err, res.body)
	}
	if !slices.Equal(cs.ImplementationGuide, []string{igBase + "/ImplementationGuide/digitaleouder"}) {
		t.Errorf("implementationGuide %q", cs.ImplementationGuide)
	}
	profiles := map[string][]string{}
	for _, r := range cs.Rest[0].Resource {
		profiles[r.Type] = r.SupportedProfile
		var ops []string
		for _, o := range r.Operation {
			ops = append(ops, o.Name)
		}
		want := map[string]string{"Task": "validate approve reject", "Patient": "validate invite"}[r.Type]
		if want == "" {
			want = "validate"
		}
		if got := strings.Join(ops, " "); got != want {
			t.Errorf("%s: operations %q, want %q", r.Type, got, want)
		}
	}
	for typ, want := range map[string]string{
		"CarePlan": agreementURL, "Patient": igBase + "/StructureDefinition/child", "Consent": igBase + "/StructureDefinition/grant",
		"Task": igBase + "/StructureDefinition/change-request", "Invoice": igBase + "/StructureDefinition/cost-share",
	} {
		if !slices.Contains(profiles[typ], want) {
			t.Errorf("%s: supportedProfile %q lacks %s", typ, profiles[typ], want)
		}
	}
	if n := len(profiles["CarePlan"]); n != 5 {
		t.Errorf("CarePlan has %d supported profiles, want 5 (four plans and the agreement)", n)
	}
}
