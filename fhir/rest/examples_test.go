package rest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// examplesDir holds the official HL7 FHIR R4 (4.0.1) examples, one resource
// per file, relative to this package.
const examplesDir = "../../../shared/fhir-r4/examples"

// exampleWorkers bounds how many examples run at once against the one server.
const exampleWorkers = 4

// refusedExamples are the official examples the server rightly refuses with
// 400, because they break a rule of the R4 definitions that google/fhir's
// validator enforces. issues are code@expression pairs that the
// OperationOutcome must contain, pointing at the offending element.
var refusedExamples = map[string]struct {
	reason string
	issues []string
}{
	"DeviceMetric-example.json": {
		reason: "DeviceMetric.parent references DeviceDefinition/dc102, but R4 allows only Reference(Device) there, STU3's DeviceComponent having been folded into Device (known erratum in the R4 example)",
		issues: []string{"invalid@DeviceMetric.parent"},
	},
	"DeviceUseStatement-example.json": {
		reason: "DeviceUseStatement.reasonReference references Procedure/example, but R4 allows only Condition, Observation, DiagnosticReport, DocumentReference or Media",
		issues: []string{"invalid@DeviceUseStatement.reasonReference[0]"},
	},
	"MedicationRequest-medrx0301.json": {
		reason: "MedicationRequest.dispenseRequest.performer references Practitioner/f001, but R4 allows only Organization",
		issues: []string{"invalid@MedicationRequest.dispenseRequest.performer"},
	},
	"Observation-clinical-gender.json": {
		reason: "Observation.performer references Encounter/example, but R4 allows only Practitioner, PractitionerRole, Organization, CareTeam, Patient or RelatedPerson",
		issues: []string{"invalid@Observation.performer[0]"},
	},
	"Questionnaire-qs1.json": {
		reason: "32 nested Questionnaire.item entries have no linkId, which is 1..1 in R4",
		issues: []string{"required@Questionnaire.item[0].item[0]", "required@Questionnaire.item[0].item[19].item[0]"},
	},
	"ig-r4.json": {
		reason: "the ImplementationGuide of the FHIR core package lacks name and status, both 1..1 in R4",
		issues: []string{"required@ImplementationGuide"},
	},
}

// TestExamples round-trips every official R4 example through the HTTP API
// (create, read, update, vread, history, delete, read) on one server, and
// checks that nothing the client sent is lost on the way.
func TestExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no R4 examples in %s: the test needs the shared fhir-r4/examples directory next to the repository", examplesDir)
	}
	if len(files) != 712 {
		t.Errorf("found %d R4 examples in %s, want the 712 of FHIR 4.0.1", len(files), examplesDir)
	}
	for name := range refusedExamples {
		if !slices.Contains(files, filepath.Join(examplesDir, name)) {
			t.Errorf("refusedExamples lists %s, which is not an example", name)
		}
	}

	ts := newServer(t)
	// Workers call t.Run concurrently: the subtests run exactly
	// exampleWorkers at a time, whatever -parallel says.
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range exampleWorkers {
		wg.Go(func() {
			for file := range jobs {
				t.Run(filepath.Base(file), func(t *testing.T) { roundTrip(t, ts, file) })
			}
		})
	}
	for _, f := range files {
		jobs <- f
	}
	close(jobs)
	wg.Wait()
}

// roundTrip walks one example file through every instance interaction.
func roundTrip(t *testing.T, ts *testServer, file string) {
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	example := decodeJSON(t, body)
	typ, _ := example["resourceType"].(string)
	if typ == "" {
		t.Fatalf("example has no resourceType")
	}

	created := ts.do(t, "POST", "/fhir/"+typ, string(body))
	if typ == "Provenance" || typ == "AuditEvent" {
		// Written by the server alone (docs/audit.md).
		if created.status != http.StatusMethodNotAllowed {
			t.Fatalf("a client's %s: status %d, want 405: %s", typ, created.status, created.body)
		}
		return
	}
	if refused, ok := refusedExamples[filepath.Base(file)]; ok {
		if created.status == http.StatusCreated {
			t.Fatalf("refused example was accepted (stale entry in refusedExamples: %s)", refused.reason)
		}
		if created.status != http.StatusBadRequest {
			t.Fatalf("status %d, want 400 (%s): %s", created.status, refused.reason, created.body)
		}
		got := issues(t, created)
		for _, want := range refused.issues {
			if !slices.Contains(got, want) {
				t.Errorf("issues %q do not contain %q (%s)", got, want, refused.reason)
			}
		}
		return
	}
	if created.status != http.StatusCreated {
		t.Fatalf("create: status %d: %s", created.status, created.body)
	}
	stored := decodeJSON(t, created.body)
	id, _ := stored["id"].(string)
	if id == "" {
		t.Fatalf("created resource has no id: %s", created.body)
	}
	path := "/fhir/" + typ + "/" + id
	assertSameContent(t, "created", example, stored)

	if read := ts.do(t, "GET", path, ""); read.status != http.StatusOK || !bytes.Equal(read.body, created.body) {
		t.Fatalf("read: status %d, body differs from the create response:\n got %s\nwant %s", read.status, read.body, created.body)
	}

	// Update with the stored content plus one tag: meta.tag must be kept.
	changed := withTag(decodeJSON(t, created.body))
	updated := ts.do(t, "PUT", path, string(encodeJSON(t, changed)))
	if updated.status != http.StatusOK || updated.header.Get("ETag") != `W/"2"` {
		t.Fatalf("update: status %d, ETag %q, want 200 and W/\"2\": %s", updated.status, updated.header.Get("ETag"), updated.body)
	}
	v2 := decodeJSON(t, updated.body)
	if meta, _ := v2["meta"].(map[string]any); meta["versionId"] != "2" || v2["id"] != id {
		t.Errorf("update: id %v, meta %v; want id %s, versionId 2", v2["id"], v2["meta"], id)
	}
	assertSameContent(t, "updated", withTag(decodeJSON(t, body)), v2)

	if v1 := ts.do(t, "GET", path+"/_history/1", ""); v1.status != http.StatusOK || !bytes.Equal(v1.body, created.body) {
		t.Errorf("vread 1: status %d, body differs from the create response:\n got %s\nwant %s", v1.status, v1.body, created.body)
	}

	h := ts.historyPage(t, path+"/_history")
	if len(h.Entry) != 2 {
		t.Fatalf("history has %d entries, want 2", len(h.Entry))
	}
	for i, want := range []response{updated, created} {
		if e := h.Entry[i]; !bytes.Equal(e.Resource, want.body) {
			t.Errorf("history entry %d (%s %s) is not the version written:\n got %s\nwant %s", i, e.Request.Method, e.Response.Etag, e.Resource, want.body)
		}
	}

	if del := ts.do(t, "DELETE", path, ""); del.status != http.StatusNoContent {
		t.Fatalf("delete: status %d: %s", del.status, del.body)
	}
	if gone := ts.do(t, "GET", path, ""); gone.status != http.StatusGone {
		t.Errorf("read after delete: status %d, want 410: %s", gone.status, gone.body)
	}
}

// roundTripTag is the meta.tag the update step adds.
var roundTripTag = map[string]any{"system": "urn:ouder:test", "code": "round-trip"}

// withTag returns r with roundTripTag appended to meta.tag.
func withTag(r map[string]any) map[string]any {
	meta, _ := r["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		r["meta"] = meta
	}
	tags, _ := meta["tag"].([]any)
	meta["tag"] = append(tags, roundTripTag)
	return r
}

// decodeJSON decodes a JSON object keeping numbers as their literal
// (json.Number), so "1.50" and "1.5" stay different.
func decodeJSON(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	return m
}

// encodeJSON encodes v without HTML escaping; json.Number values are written
// as their literal.
func encodeJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		tb.Fatal(err)
	}
	return bytes.TrimSpace(buf.Bytes())
}

// assertSameContent reports where got, a resource as the server returned it,
// differs from want, the resource the client sent, apart from what the server
// owns: id, meta.versionId and meta.lastUpdated. It changes neither map.
func assertSameContent(tb testing.TB, what string, want, got map[string]any) {
	tb.Helper()
	if diff := cmp.Diff(clientOwned(want), clientOwned(got)); diff != "" {
		tb.Errorf("%s resource lost or changed content (-sent +stored):\n%s", what, diff)
	}
}

// clientOwned returns a copy of r without the members the server assigns.
// A meta left empty is dropped, since the server always writes one.
func clientOwned(r map[string]any) map[string]any {
	out := make(map[string]any, len(r))
	for k, v := range r {
		out[k] = v
	}
	delete(out, "id")
	if meta, ok := r["meta"].(map[string]any); ok {
		m := make(map[string]any, len(meta))
		for k, v := range meta {
			switch k {
			case "versionId", "lastUpdated", "_versionId", "_lastUpdated":
			default:
				m[k] = v
			}
		}
		if len(m) == 0 {
			delete(out, "meta")
		} else {
			out["meta"] = m
		}
	}
	return out
}
