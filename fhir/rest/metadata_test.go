package rest_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/fhir/rest"
)

// capabilityStatement is what the tests read of a CapabilityStatement.
type capabilityStatement struct {
	ResourceType   string `json:"resourceType"`
	Kind           string `json:"kind"`
	FHIRVersion    string `json:"fhirVersion"`
	Implementation struct {
		URL string `json:"url"`
	} `json:"implementation"`
	Rest []struct {
		Mode     string `json:"mode"`
		Resource []struct {
			Type        string            `json:"type"`
			Interaction []interactionCode `json:"interaction"`
		} `json:"resource"`
		Interaction []interactionCode `json:"interaction"`
	} `json:"rest"`
}

type interactionCode struct {
	Code string `json:"code"`
}

// codesOf returns the codes of a CapabilityStatement interaction list.
func codesOf(is []interactionCode) []string {
	out := make([]string, len(is))
	for i, c := range is {
		out[i] = c.Code
	}
	return out
}

// TestMetadata checks that GET /metadata describes what the route table
// serves, and that every interaction it lists answers on a real Patient.
func TestMetadata(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	res := ts.do(t, "GET", "/fhir/metadata", "")
	if res.status != http.StatusOK {
		t.Fatalf("GET /metadata: status %d: %s", res.status, res.body)
	}
	var cs capabilityStatement
	if err := json.Unmarshal(res.body, &cs); err != nil {
		t.Fatalf("GET /metadata: %v\n%s", err, res.body)
	}
	if cs.ResourceType != "CapabilityStatement" || cs.Kind != "instance" || cs.FHIRVersion != "4.0.1" {
		t.Fatalf("resourceType %q, kind %q, fhirVersion %q; want an R4 4.0.1 instance CapabilityStatement", cs.ResourceType, cs.Kind, cs.FHIRVersion)
	}
	if got, want := cs.Implementation.URL, ts.URL+"/fhir"; got != want {
		t.Errorf("implementation.url = %q, want the server's base %q", got, want)
	}
	if len(cs.Rest) != 1 || cs.Rest[0].Mode != "server" {
		t.Fatalf("want one rest entry in server mode, got %+v", cs.Rest)
	}
	server := cs.Rest[0]
	var types []string
	var patientInteractions []string
	for _, r := range server.Resource {
		types = append(types, r.Type)
		if r.Type == "AuditEvent" || r.Type == "Provenance" {
			continue // read only: TestCapabilityReadOnlyTypes
		}
		if diff := cmp.Diff(rest.TypeInteractions, codesOf(r.Interaction)); diff != "" {
			t.Errorf("%s interactions (-rest.TypeInteractions +statement):\n%s", r.Type, diff)
		}
		if r.Type == "Patient" {
			patientInteractions = codesOf(r.Interaction)
		}
	}
	if diff := cmp.Diff(conformance.ResourceTypes(), types); diff != "" {
		t.Errorf("resource types (-conformance.ResourceTypes +statement):\n%s", diff)
	}
	if diff := cmp.Diff(rest.SystemInteractions, codesOf(server.Interaction)); diff != "" {
		t.Errorf("system interactions (-rest.SystemInteractions +statement):\n%s", diff)
	}

	// Every listed interaction must be served. The probes run in order on one
	// Patient: delete comes last.
	id := ts.create(t, "Patient", patient)
	update := patientBody(id, "Bakker")
	probes := []struct {
		interaction  string
		method, path string
		body         string
		status       int
		headers      []string
	}{
		{"read", "GET", "/fhir/Patient/" + id, "", http.StatusOK, nil},
		{"vread", "GET", "/fhir/Patient/" + id + "/_history/1", "", http.StatusOK, nil},
		{"update", "PUT", "/fhir/Patient/" + id, update, http.StatusOK, nil},
		{"patch", "PATCH", "/fhir/Patient/" + id, `[{"op":"add","path":"/gender","value":"other"}]`, http.StatusOK, []string{"Content-Type: application/json-patch+json"}},
		{"history-instance", "GET", "/fhir/Patient/" + id + "/_history", "", http.StatusOK, nil},
		{"history-type", "GET", "/fhir/Patient/_history", "", http.StatusOK, nil},
		{"create", "POST", "/fhir/Patient", patient, http.StatusCreated, nil},
		{"history-system", "GET", "/fhir/_history", "", http.StatusOK, nil},
		{"search-type", "GET", "/fhir/Patient?_id=" + id, "", http.StatusOK, nil},
		{"search-system", "GET", "/fhir/?_type=Patient&_id=" + id, "", http.StatusOK, nil},
		{"transaction", "POST", "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":` + patient + `,"request":{"method":"POST","url":"Patient"}}]}`, http.StatusOK, nil},
		{"batch", "POST", "/fhir", `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/` + id + `"}}]}`, http.StatusOK, nil},
		{"delete", "DELETE", "/fhir/Patient/" + id, "", http.StatusNoContent, nil},
	}
	listed := append(slices.Clone(patientInteractions), codesOf(server.Interaction)...)
	var probed []string
	for _, p := range probes {
		probed = append(probed, p.interaction)
	}
	slices.Sort(listed)
	slices.Sort(probed)
	if diff := cmp.Diff(probed, listed); diff != "" {
		t.Errorf("listed interactions without a probe here, or probes of unlisted ones (-probed +listed):\n%s", diff)
	}
	for _, p := range probes {
		if !slices.Contains(listed, p.interaction) {
			continue
		}
		t.Run(p.interaction, func(t *testing.T) {
			if res := ts.do(t, p.method, p.path, p.body, p.headers...); res.status != p.status {
				t.Errorf("%s %s: status %d, want %d: %s", p.method, p.path, res.status, p.status, res.body)
			}
		})
	}
}

// TestCapabilityReadOnlyTypes: the CapabilityStatement offers clients only
// reads of what the server writes itself (AuditEvent, Provenance: writing
// them answers 405), and every other type the full set.
func TestCapabilityReadOnlyTypes(t *testing.T) {
	ts := newServer(t)
	res := ts.do(t, "GET", "/fhir/metadata", "")
	var cs struct {
		Rest []struct {
			Resource []struct {
				Type              string `json:"type"`
				ConditionalDelete string `json:"conditionalDelete"`
				Interaction       []struct {
					Code string `json:"code"`
				} `json:"interaction"`
			} `json:"resource"`
		} `json:"rest"`
	}
	if err := json.Unmarshal(res.body, &cs); err != nil || len(cs.Rest) != 1 {
		t.Fatalf("CapabilityStatement: %v", err)
	}
	want := map[string]string{
		"AuditEvent": "read search-type",
		"Provenance": "read vread history-instance history-type search-type",
		"CarePlan":   strings.Join(rest.TypeInteractions, " "),
	}
	for _, r := range cs.Rest[0].Resource {
		w, ok := want[r.Type]
		if !ok {
			continue
		}
		var got []string
		for _, in := range r.Interaction {
			got = append(got, in.Code)
		}
		if strings.Join(got, " ") != w {
			t.Errorf("%s interactions %v, want %s", r.Type, got, w)
		}
		if r.Type != "CarePlan" && r.ConditionalDelete != "not-supported" {
			t.Errorf("%s conditionalDelete %q, want not-supported", r.Type, r.ConditionalDelete)
		}
		delete(want, r.Type)
	}
	if len(want) > 0 {
		t.Errorf("types missing from the CapabilityStatement: %v", want)
	}
}
