package rest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digitaleouder/ouder/fhir/rest"
)

// bundleOf returns a Bundle of type typ with the given entries (JSON
// objects).
func bundleOf(typ string, entries ...string) string {
	return `{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(entries, ",") + `]}`
}

// entry returns a Bundle entry: fullUrl (may be empty), the request and the
// resource (may be empty). request is the members of entry.request after
// method and url, such as `"ifNoneExist":"identifier=a|b"`.
func entry(fullURL, method, url, resource string, request ...string) string {
	var b strings.Builder
	b.WriteString("{")
	if fullURL != "" {
		fmt.Fprintf(&b, `"fullUrl":%q,`, fullURL)
	}
	if resource != "" {
		fmt.Fprintf(&b, `"resource":%s,`, resource)
	}
	fmt.Fprintf(&b, `"request":{"method":%q,"url":%q`, method, url)
	for _, r := range request {
		b.WriteString("," + r)
	}
	b.WriteString("}}")
	return b.String()
}

// responseBundle is what the tests read of a transaction-response or
// batch-response.
type responseBundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Response struct {
			Status       string          `json:"status"`
			Location     string          `json:"location"`
			Etag         string          `json:"etag"`
			LastModified string          `json:"lastModified"`
			Outcome      json.RawMessage `json:"outcome"`
		} `json:"response"`
	} `json:"entry"`
}

// post sends a Bundle to the base and reads the response Bundle, failing
// the test unless the answer is 200.
func (ts *testServer) post(tb testing.TB, bundle string, headers ...string) responseBundle {
	tb.Helper()
	res := ts.do(tb, "POST", "/fhir", bundle, headers...)
	if res.status != http.StatusOK {
		tb.Fatalf("POST /fhir: status %d: %s", res.status, res.body)
	}
	var rb responseBundle
	if err := json.Unmarshal(res.body, &rb); err != nil {
		tb.Fatalf("POST /fhir: %v\n%s", err, res.body)
	}
	return rb
}

// statuses returns the response.status of every entry.
func (rb responseBundle) statuses() []string {
	out := make([]string, len(rb.Entry))
	for i, e := range rb.Entry {
		out[i] = e.Response.Status
	}
	return out
}

// idFrom returns the id of a Location such as base/Patient/1/_history/1.
func idFrom(tb testing.TB, location, typ string) string {
	tb.Helper()
	_, rest, ok := strings.Cut(location, "/"+typ+"/")
	id, _, _ := strings.Cut(rest, "/")
	if !ok || id == "" {
		tb.Fatalf("location %q names no %s", location, typ)
	}
	return id
}

// read returns the current version of typ/id as generic JSON.
func (ts *testServer) read(tb testing.TB, typ, id string) map[string]any {
	tb.Helper()
	res := ts.do(tb, "GET", "/fhir/"+typ+"/"+id, "")
	if res.status != http.StatusOK {
		tb.Fatalf("GET %s/%s: status %d: %s", typ, id, res.status, res.body)
	}
	return res.json(tb)
}

// referenceAt returns the reference at a path of member names and array
// indexes in a resource.
func referenceAt(tb testing.TB, r map[string]any, path ...any) string {
	tb.Helper()
	var v any = r
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	ref, _ := v.(map[string]any)["reference"].(string)
	return ref
}

// snapshot counts the rows of every table a write touches, and sums the
// versions, so a test can tell that nothing was written.
func (ts *testServer) snapshot(tb testing.TB) map[string]int64 {
	tb.Helper()
	ctx := context.Background()
	out := map[string]int64{}
	tables := []string{"resources", "resource_history", "idx_string", "idx_token", "idx_reference", "idx_date", "idx_number", "idx_quantity", "idx_uri"}
	for _, t := range tables {
		var n int64
		if err := ts.pool.QueryRow(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			tb.Fatal(err)
		}
		out[t] = n
	}
	var versions int64
	if err := ts.pool.QueryRow(ctx, `SELECT coalesce(sum(version), 0) FROM resources`).Scan(&versions); err != nil {
		tb.Fatal(err)
	}
	out["sum(version)"] = versions
	return out
}

const observationOf = `{"resourceType":"Observation","status":"final","code":{"text":"weight"},"subject":{"reference":%q},"valueQuantity":{"value":4.2,"unit":"kg"}}`

// TestTransactionReferences checks that references to the fullUrls of new
// entries come back rewritten to the ids the server assigned, wherever they
// are in the resource.
func TestTransactionReferences(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	pat := "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"
	org := "urn:oid:1.2.3.4.5"
	obs := `{"resourceType":"Observation","status":"final","code":{"text":"x"},
		"subject":{"reference":"` + pat + `"},
		"performer":[{"reference":"` + org + `"},{"reference":"Patient/elsewhere"}],
		"extension":[{"url":"http://example.org/ext","valueReference":{"reference":"` + pat + `"}}],
		"component":[{"code":{"text":"c"},"valueString":"v","extension":[{"url":"http://example.org/ext2","extension":[{"url":"inner","valueReference":{"reference":"` + org + `"}}]}]}],
		"note":[{"text":"mentions ` + pat + ` in text, which stays"}]}`
	// An absolute fullUrl at another base: a relative reference in an entry
	// at that base means the same resource.
	other := `{"resourceType":"Observation","status":"final","code":{"text":"y"},"subject":{"reference":"Patient/p1"}}`
	rb := ts.post(t, bundleOf("transaction",
		entry("", "POST", "Observation", obs),
		entry("http://other.example/fhir/Observation/o1", "POST", "Observation", other),
		entry(pat, "POST", "Patient", patient),
		entry(org, "POST", "Organization", `{"resourceType":"Organization","name":"Praktijk"}`),
		entry("http://other.example/fhir/Patient/p1", "POST", "Patient", patient),
	))
	if rb.Type != "transaction-response" {
		t.Errorf("type %q, want transaction-response", rb.Type)
	}
	if diff := cmp.Diff([]string{"201 Created", "201 Created", "201 Created", "201 Created", "201 Created"}, rb.statuses()); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	for i, e := range rb.Entry {
		if e.Response.Location == "" || e.Response.Etag != `W/"1"` || e.Response.LastModified == "" || len(e.Resource) == 0 || e.FullURL == "" {
			t.Errorf("entry %d: location %q, etag %q, lastModified %q, resource %d bytes, fullUrl %q; want all set, etag W/\"1\"",
				i, e.Response.Location, e.Response.Etag, e.Response.LastModified, len(e.Resource), e.FullURL)
		}
	}
	obsID := idFrom(t, rb.Entry[0].Response.Location, "Observation")
	patID := idFrom(t, rb.Entry[2].Response.Location, "Patient")
	orgID := idFrom(t, rb.Entry[3].Response.Location, "Organization")
	p1ID := idFrom(t, rb.Entry[4].Response.Location, "Patient")

	got := ts.read(t, "Observation", obsID)
	refs := map[string]string{
		"subject":                 referenceAt(t, got, "subject"),
		"performer[0]":            referenceAt(t, got, "performer", 0),
		"performer[1]":            referenceAt(t, got, "performer", 1),
		"extension[0]":            referenceAt(t, got, "extension", 0, "valueReference"),
		"component[0] nested ext": referenceAt(t, got, "component", 0, "extension", 0, "extension", 0, "valueReference"),
	}
	want := map[string]string{
		"subject":                 "Patient/" + patID,
		"performer[0]":            "Organization/" + orgID,
		"performer[1]":            "Patient/elsewhere",
		"extension[0]":            "Patient/" + patID,
		"component[0] nested ext": "Organization/" + orgID,
	}
	if diff := cmp.Diff(want, refs); diff != "" {
		t.Errorf("references read back (-want +got):\n%s", diff)
	}
	if note := got["note"].([]any)[0].(map[string]any)["text"]; note != "mentions "+pat+" in text, which stays" {
		t.Errorf("note = %q: only references are rewritten", note)
	}
	if ref := referenceAt(t, ts.read(t, "Observation", idFrom(t, rb.Entry[1].Response.Location, "Observation")), "subject"); ref != "Patient/"+p1ID {
		t.Errorf("relative reference against an absolute fullUrl: %q, want Patient/%s", ref, p1ID)
	}
	// The response carries the stored resources, references rewritten.
	var first map[string]any
	if err := json.Unmarshal(rb.Entry[0].Resource, &first); err != nil {
		t.Fatal(err)
	}
	if ref := referenceAt(t, first, "subject"); ref != "Patient/"+patID {
		t.Errorf("response entry 0 subject %q, want Patient/%s", ref, patID)
	}
}

// TestTransactionOrder checks R4's processing order (DELETE, POST, PUT and
// PATCH, GET) whatever the order of the entries, and that the response
// entries follow the request's.
func TestTransactionOrder(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	old := ts.create(t, "Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:order","value":"1"}]}`)
	rb := ts.post(t, bundleOf("transaction",
		// Runs last: sees the writes of the transaction.
		entry("", "GET", "Patient?identifier=urn:order|1", ""),
		// Runs after the POST and the DELETE.
		entry("", "PUT", "Patient/fixed", `{"resourceType":"Patient","id":"fixed","link":[{"other":{"reference":"urn:uuid:8b5c4f5e-3b5a-4d0e-9a83-1c5bd0f6a7c1"},"type":"seealso"}]}`),
		// Runs after the DELETE, so the old Patient no longer matches.
		entry("urn:uuid:8b5c4f5e-3b5a-4d0e-9a83-1c5bd0f6a7c1", "POST", "Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:order","value":"1"}]}`,
			`"ifNoneExist":"identifier=urn:order|1"`),
		entry("", "DELETE", "Patient/"+old, ""),
	))
	if diff := cmp.Diff([]string{"200 OK", "201 Created", "201 Created", "204 No Content"}, rb.statuses()); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	newID := idFrom(t, rb.Entry[2].Response.Location, "Patient")
	if newID == old {
		t.Fatalf("the conditional create matched the Patient deleted in the same transaction")
	}
	var found struct {
		Entry []struct {
			Resource struct{ ID string }
		}
	}
	if err := json.Unmarshal(rb.Entry[0].Resource, &found); err != nil {
		t.Fatal(err)
	}
	if len(found.Entry) != 1 || found.Entry[0].Resource.ID != newID {
		t.Errorf("the GET found %+v, want the new Patient %s only", found.Entry, newID)
	}
	if ref := referenceAt(t, ts.read(t, "Patient", "fixed"), "link", 0, "other"); ref != "Patient/"+newID {
		t.Errorf("PUT entry's reference %q, want Patient/%s", ref, newID)
	}
}

// TestTransactionFailures checks that a transaction whose last entry fails
// leaves the database exactly as it was, and that the OperationOutcome
// names the failing entry.
func TestTransactionFailures(t *testing.T) {
	t.Parallel()
	ts := newServer(t, func(c *rest.Config) { c.MaxBundleEntries = 4 })
	existing := ts.create(t, "Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:dup","value":"1"}]}`)
	dup := ts.create(t, "Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:dup","value":"1"}]}`)
	first := entry("urn:uuid:0f7a3d4c-1d8e-4b55-9b0c-6a4a5e0f1a01", "POST", "Patient", patient)
	second := entry("", "PUT", "Patient/"+existing, `{"resourceType":"Patient","id":"`+existing+`","gender":"male"}`)
	jsonPatch := func(ops string) string {
		return `{"resourceType":"Binary","contentType":"application/json-patch+json","data":"` + b64(ops) + `"}`
	}
	tests := []struct {
		name   string
		last   string // the third entry, or the whole Bundle when it starts with {"resourceType"
		status int
		issues []string
	}{
		{"invalid resource", entry("", "POST", "Patient", `{"resourceType":"Patient","birthDate":"2012-13-45"}`), 400, []string{"structure@Bundle.entry[2].resource.birthDate"}},
		{"resource of another type", entry("", "POST", "Patient", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`), 400, []string{"invalid@Bundle.entry[2].resource"}},
		{"update id differs", entry("", "PUT", "Patient/abc", `{"resourceType":"Patient","id":"xyz"}`), 400, []string{"invalid@Bundle.entry[2].resource.id"}},
		{"stale ifMatch", entry("", "DELETE", "Patient/"+dup, "", `"ifMatch":"W/\"3\""`), 412, []string{"conflict@Bundle.entry[2]"}},
		{"ifMatch on a missing resource", entry("", "PUT", "Patient/missing", `{"resourceType":"Patient","id":"missing"}`, `"ifMatch":"W/\"1\""`), 412, []string{"conflict@Bundle.entry[2]"}},
		{"malformed ifMatch", entry("", "PUT", "Patient/abc", `{"resourceType":"Patient","id":"abc"}`, `"ifMatch":"soon"`), 400, []string{"invalid@Bundle.entry[2].request.ifMatch"}},
		{"conditional create matches two", entry("", "POST", "Patient", patient, `"ifNoneExist":"identifier=urn:dup|1"`), 412, []string{"conflict@Bundle.entry[2]"}},
		{"conditional update matches two", entry("", "PUT", "Patient?identifier=urn:dup|1", patient), 412, []string{"conflict@Bundle.entry[2]"}},
		{"conditional delete matches two", entry("", "DELETE", "Patient?identifier=urn:dup|1", ""), 412, []string{"conflict@Bundle.entry[2]"}},
		{"unknown search parameter in criteria", entry("", "POST", "Patient", patient, `"ifNoneExist":"colour=blue"`), 400, []string{"invalid@Bundle.entry[2],colour"}},
		{"conditional reference matches nothing", entry("", "POST", "Observation", fmt.Sprintf(observationOf, "Patient?identifier=urn:none|0")), 404, []string{"not-found@Bundle.entry[2]"}},
		{"conditional reference matches two", entry("", "POST", "Observation", fmt.Sprintf(observationOf, "Patient?identifier=urn:dup|1")), 412, []string{"conflict@Bundle.entry[2]"}},
		{"duplicate fullUrl", entry("urn:uuid:0f7a3d4c-1d8e-4b55-9b0c-6a4a5e0f1a01", "POST", "Patient", patient), 400, []string{"invalid@Bundle.entry[2].fullUrl"}},
		{"relative fullUrl", entry("Patient/1", "POST", "Patient", patient), 400, []string{"invalid@Bundle.entry[2].fullUrl"}},
		{"absolute request.url", entry("", "PUT", "http://example.org/fhir/Patient/1", `{"resourceType":"Patient","id":"1"}`), 400, []string{"invalid@Bundle.entry[2].request.url"}},
		{"POST with an id in the url", entry("", "POST", "Patient/1", patient), 400, []string{"invalid@Bundle.entry[2].request.url"}},
		{"unknown type in the url", entry("", "POST", "Nonsense", patient), 400, []string{"invalid@Bundle.entry[2].request.url"}},
		{"operation", entry("", "POST", "ValueSet/$lookup", `{"resourceType":"Parameters"}`), 501, []string{"not-supported@Bundle.entry[2].request.url"}},
		{"unknown method", entry("", "FETCH", "Patient/1", ""), 400, []string{"invalid@Bundle.entry[2].request.method"}},
		{"no request", `{"resource":` + patient + `}`, 400, []string{"invalid@Bundle.entry[2].request"}},
		{"request and response", `{"request":{"method":"GET","url":"Patient"},"response":{"status":"200"}}`, 400, []string{"invalid@Bundle.entry[2].response"}},
		{"GET with a resource", entry("", "GET", "Patient/1", patient), 400, []string{"invalid@Bundle.entry[2].resource"}},
		{"PUT without a resource", entry("", "PUT", "Patient/1", ""), 400, []string{"invalid@Bundle.entry[2].resource"}},
		{"same resource twice", entry("", "DELETE", "Patient/"+existing, ""), 400, []string{"invalid@Bundle.entry[2]"}},
		{"GET fails", entry("", "GET", "Patient/missing", ""), 404, []string{"not-found@Bundle.entry[2]"}},
		{"GET with a bad search", entry("", "GET", "Patient?birthdate=yesterday", ""), 400, []string{"invalid@Bundle.entry[2],birthdate"}},
		{"patch of a missing resource", entry("", "PATCH", "Patient/missing", jsonPatch(`[{"op":"add","path":"/active","value":true}]`)), 404, []string{"not-found@Bundle.entry[2]"}},
		{"patch not a Binary or Parameters", entry("", "PATCH", "Patient/"+existing, patient), 400, []string{"invalid@Bundle.entry[2].resource"}},
		{"too many entries", bundleOf("transaction", first, second, first, second, first), 413, []string{"too-costly@Bundle.entry"}},
		{"not a transaction", bundleOf("collection", first), 400, []string{"invalid@Bundle.type"}},
		{"not a Bundle", patient, 400, []string{"invalid@Bundle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.snapshot(t)
			body := tt.last
			if !strings.HasPrefix(body, `{"resourceType"`) {
				body = bundleOf("transaction", first, second, tt.last)
			}
			res := ts.do(t, "POST", "/fhir", body)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			if diff := cmp.Diff(tt.issues, issues(t, res)); diff != "" {
				t.Errorf("issues (-want +got):\n%s\n%s", diff, res.body)
			}
			if diff := cmp.Diff(before, ts.snapshot(t)); diff != "" {
				t.Errorf("the failed transaction changed the database (-before +after):\n%s", diff)
			}
		})
	}
}

// TestTransactionPatchResultInvalid checks that a PATCH entry whose result
// breaks a rule fails the transaction, naming the entry and the element.
func TestTransactionPatchResultInvalid(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	id := ts.create(t, "Patient", patient)
	before := ts.snapshot(t)
	res := ts.do(t, "POST", "/fhir", bundleOf("transaction",
		entry("", "POST", "Patient", patient),
		entry("", "PATCH", "Patient/"+id, `{"resourceType":"Binary","contentType":"application/json-patch+json","data":"`+b64(`[{"op":"replace","path":"/birthDate","value":"2012-13-45"}]`)+`"}`),
	))
	if res.status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", res.status, res.body)
	}
	if diff := cmp.Diff([]string{"structure@Bundle.entry[1],Patient.birthDate"}, issues(t, res)); diff != "" {
		t.Errorf("issues (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, ts.snapshot(t)); diff != "" {
		t.Errorf("the failed transaction changed the database (-before +after):\n%s", diff)
	}
}

// TestTransactionConditional checks conditional create, update and delete
// and conditional references inside a transaction.
func TestTransactionConditional(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	known := ts.create(t, "Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:c","value":"known"}]}`)
	updated := ts.create(t, "Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:c","value":"upd"}]}`)
	gone := ts.create(t, "Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:c","value":"gone"}]}`)
	rb := ts.post(t, bundleOf("transaction",
		// Matches: nothing is created, and references to its fullUrl mean
		// the existing Patient.
		entry("urn:uuid:0b9a2b1e-0c55-4a0f-8d7a-2f3a9e1b0c01", "POST", "Patient", `{"resourceType":"Patient"}`, `"ifNoneExist":"identifier=urn:c|known"`),
		entry("", "POST", "Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:c","value":"new"}]}`, `"ifNoneExist":"Patient?identifier=urn:c|new"`),
		entry("urn:uuid:0b9a2b1e-0c55-4a0f-8d7a-2f3a9e1b0c03", "PUT", "Patient?identifier=urn:c|upd", `{"resourceType":"Patient","identifier":[{"system":"urn:c","value":"upd"}],"gender":"other"}`),
		entry("", "PUT", "Patient?identifier=urn:c|created", `{"resourceType":"Patient","identifier":[{"system":"urn:c","value":"created"}]}`),
		entry("", "DELETE", "Patient?identifier=urn:c|gone", ""),
		entry("", "DELETE", "Patient?identifier=urn:c|nothing", ""),
		entry("", "POST", "Observation", fmt.Sprintf(observationOf, "urn:uuid:0b9a2b1e-0c55-4a0f-8d7a-2f3a9e1b0c01")),
		entry("", "POST", "Observation", fmt.Sprintf(observationOf, "urn:uuid:0b9a2b1e-0c55-4a0f-8d7a-2f3a9e1b0c03")),
		entry("", "POST", "Observation", fmt.Sprintf(observationOf, "Patient?identifier=urn:c|known")),
	))
	want := []string{"200 OK", "201 Created", "200 OK", "201 Created", "204 No Content", "204 No Content", "201 Created", "201 Created", "201 Created"}
	if diff := cmp.Diff(want, rb.statuses()); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	if id := idFrom(t, rb.Entry[0].Response.Location, "Patient"); id != known {
		t.Errorf("conditional create answered Patient/%s, want the existing %s", id, known)
	}
	if id := idFrom(t, rb.Entry[2].Response.Location, "Patient"); id != updated || rb.Entry[2].Response.Etag != `W/"2"` {
		t.Errorf("conditional update wrote Patient/%s %s, want version 2 of %s", id, rb.Entry[2].Response.Etag, updated)
	}
	if res := ts.do(t, "GET", "/fhir/Patient/"+gone, ""); res.status != http.StatusGone {
		t.Errorf("Patient/%s after conditional delete: status %d, want 410", gone, res.status)
	}
	for i, want := range []string{known, updated, known} {
		obs := ts.read(t, "Observation", idFrom(t, rb.Entry[6+i].Response.Location, "Observation"))
		if ref := referenceAt(t, obs, "subject"); ref != "Patient/"+want {
			t.Errorf("entry %d: subject %q, want Patient/%s", 6+i, ref, want)
		}
	}
}

// TestTransactionPatch checks both patch formats inside a transaction.
func TestTransactionPatch(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	a := ts.create(t, "Patient", patient)
	b := ts.create(t, "Patient", patient)
	params := `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[
		{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Patient.gender"},{"name":"value","valueCode":"male"}]}]}`
	rb := ts.post(t, bundleOf("transaction",
		entry("", "PATCH", "Patient/"+a, `{"resourceType":"Binary","contentType":"application/json-patch+json","data":"`+b64(`[{"op":"add","path":"/active","value":true}]`)+`"}`, `"ifMatch":"W/\"1\""`),
		entry("", "PATCH", "Patient/"+b, params),
	))
	if diff := cmp.Diff([]string{"200 OK", "200 OK"}, rb.statuses()); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	if got := ts.read(t, "Patient", a)["active"]; got != true {
		t.Errorf("JSON Patch: active = %v, want true", got)
	}
	if got := ts.read(t, "Patient", b)["gender"]; got != "male" {
		t.Errorf("FHIRPath Patch: gender = %v, want male", got)
	}

	// Prefer applies to every entry.
	for prefer, want := range map[string]string{"return=minimal": "", "return=OperationOutcome": "outcome", "return=representation": "resource"} {
		rb := ts.post(t, bundleOf("transaction", entry("", "POST", "Patient", patient), entry("", "DELETE", "Patient/"+b, "")), "Prefer: "+prefer)
		for i, e := range rb.Entry {
			got := ""
			switch {
			case len(e.Resource) > 0:
				got = "resource"
			case len(e.Response.Outcome) > 0:
				got = "outcome"
			}
			if i == 1 && want == "resource" {
				want = "" // a delete has nothing to represent
			}
			if got != want {
				t.Errorf("Prefer: %s, entry %d carries %q, want %q", prefer, i, got, want)
			}
		}
		b = idFrom(t, rb.Entry[0].Response.Location, "Patient")
	}
}

// TestBatch checks that batch entries succeed and fail on their own.
func TestBatch(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	existing := ts.create(t, "Patient", patient)
	before, _ := ts.rows(t)
	rb := ts.post(t, bundleOf("batch",
		entry("urn:uuid:5d0e6b3a-8d2f-4d58-9a43-0d1c2e3f4a51", "POST", "Patient", patient),
		entry("", "POST", "Patient", `{"resourceType":"Patient","gender":"purple"}`),
		entry("", "GET", "Patient/"+existing, ""),
		entry("", "GET", "/Patient/missing", ""),
		entry("", "POST", "Observation", fmt.Sprintf(observationOf, "urn:uuid:5d0e6b3a-8d2f-4d58-9a43-0d1c2e3f4a51")),
		entry("", "PUT", "Patient/batch-put", `{"resourceType":"Patient","id":"batch-put"}`),
		entry("", "PATCH", "Patient/"+existing, `{"resourceType":"Binary","contentType":"application/json-patch+json","data":"`+b64(`[{"op":"add","path":"/active","value":false}]`)+`"}`),
		entry("", "GET", "Patient?_id="+existing, ""),
		entry("", "DELETE", "Patient/"+existing, "", `"ifMatch":"W/\"1\""`),
		entry("", "FETCH", "Patient", ""),
	))
	if rb.Type != "batch-response" {
		t.Errorf("type %q, want batch-response", rb.Type)
	}
	want := []string{"201 Created", "400 Bad Request", "200 OK", "404 Not Found", "400 Bad Request", "201 Created", "200 OK", "200 OK", "412 Precondition Failed", "400 Bad Request"}
	if diff := cmp.Diff(want, rb.statuses()); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
	outcomeIssues := func(i int) []string {
		t.Helper()
		return issues(t, response{body: rb.Entry[i].Response.Outcome})
	}
	for i, want := range map[int][]string{
		1: {"structure@Bundle.entry[1].resource.gender"},
		3: {"not-found@Bundle.entry[3]"},
		4: {"invalid@Bundle.entry[4].resource"},
		8: {"conflict@Bundle.entry[8]"},
		9: {"invalid@Bundle.entry[9].request.method"},
	} {
		if diff := cmp.Diff(want, outcomeIssues(i)); diff != "" {
			t.Errorf("entry %d outcome (-want +got):\n%s", i, diff)
		}
	}
	if after, _ := ts.rows(t); after != before+2 {
		t.Errorf("%d resources after the batch, want %d (two created)", after, before+2)
	}
	if got := ts.read(t, "Patient", existing)["active"]; got != false {
		t.Errorf("the batch PATCH did not apply: active = %v", got)
	}
}

// b64 is standard base64, as Binary.data holds it.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// exampleBundles lists the HL7 R4 examples that are transaction or batch
// Bundles and what processing them needs: seed runs before, drop removes
// entries (by index) that the server rightly cannot do, and refused says
// why the whole Bundle is refused instead, with the issue expected.
var exampleBundles = map[string]struct {
	seed    []string // PUT bodies, as Type/id JSON
	drop    map[int]string
	refused string
	status  int
	issues  []string
}{
	"Bundle-bundle-transaction.json": {
		seed: []string{
			`{"resourceType":"Patient","id":"123a"}`, `{"resourceType":"Patient","id":"123a","active":true}`, // ifMatch W/"2"
			`{"resourceType":"Patient","id":"12334"}`, // GET Patient/12334
		},
		drop: map[int]string{7: "POST ValueSet/$lookup is an operation; operations are not supported (501)"},
	},
	"Bundle-bundle-request-medsallergies.json": {seed: []string{`{"resourceType":"Patient","id":"example"}`}},
	"Bundle-bundle-request-simplesummary.json": {seed: []string{`{"resourceType":"Patient","id":"example"}`}},
	"Bundle-hla-1.json":                        {},
	"Bundle-xds.json":                          {},
	"Bundle-ussg-fht.json": {
		refused: "its request.url values are absolute (http://hl7.org/fhir/us/sdc/...), but R4 defines request.url as relative to the base",
		status:  400,
		issues:  []string{"invalid@Bundle.entry[0].request.url"},
	},
}

// TestExampleBundles processes every transaction and batch among the HL7 R4
// examples.
func TestExampleBundles(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var b struct{ ResourceType, Type string }
		if json.Unmarshal(body, &b) == nil && b.ResourceType == "Bundle" && (b.Type == "transaction" || b.Type == "batch") {
			found = append(found, filepath.Base(f))
		}
	}
	listed := slices.Sorted(func(yield func(string) bool) {
		for k := range exampleBundles {
			if !yield(k) {
				return
			}
		}
	})
	if diff := cmp.Diff(listed, found); diff != "" {
		t.Errorf("transaction and batch examples (-exampleBundles +found in %s):\n%s", examplesDir, diff)
	}
	for _, name := range found {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ex := exampleBundles[name]
			ts := newServer(t)
			for _, s := range ex.seed {
				var r struct{ ResourceType, ID string }
				if err := json.Unmarshal([]byte(s), &r); err != nil {
					t.Fatal(err)
				}
				if res := ts.do(t, "PUT", "/fhir/"+r.ResourceType+"/"+r.ID, s); res.status >= 300 {
					t.Fatalf("seed %s: status %d: %s", s, res.status, res.body)
				}
			}
			body, err := os.ReadFile(filepath.Join(examplesDir, name))
			if err != nil {
				t.Fatal(err)
			}
			var bundle map[string]any
			if err := json.Unmarshal(body, &bundle); err != nil {
				t.Fatal(err)
			}
			entries := bundle["entry"].([]any)
			var kept []any
			for i, e := range entries {
				if _, drop := ex.drop[i]; !drop {
					kept = append(kept, e)
				}
			}
			bundle["entry"] = kept
			body, _ = json.Marshal(bundle)
			res := ts.do(t, "POST", "/fhir", string(body))
			if ex.refused != "" {
				if res.status != ex.status {
					t.Fatalf("status %d, want %d (%s): %s", res.status, ex.status, ex.refused, res.body)
				}
				if diff := cmp.Diff(ex.issues, issues(t, res)); diff != "" {
					t.Errorf("issues (-want +got):\n%s", diff)
				}
				return
			}
			if res.status != http.StatusOK {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			var rb responseBundle
			if err := json.Unmarshal(res.body, &rb); err != nil {
				t.Fatal(err)
			}
			if len(rb.Entry) != len(kept) {
				t.Fatalf("%d response entries for %d requests", len(rb.Entry), len(kept))
			}
			for i, e := range rb.Entry {
				if !strings.HasPrefix(e.Response.Status, "2") {
					t.Errorf("entry %d: status %q: %s", i, e.Response.Status, e.Response.Outcome)
				}
			}
			t.Logf("statuses: %v", rb.statuses())
		})
	}
}
