package rest_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/digitaleouder/ouder/fhir/rest"
	"github.com/google/go-cmp/cmp"
)

const patient = `{"resourceType":"Patient","name":[{"family":"Jansen","given":["Anna"]}],"gender":"female","birthDate":"2012-03-04"}`

// TestRejections checks every refusal of the Foundation issue: the status,
// an OperationOutcome whose issue carries an expression where there is an
// element to point at, and that nothing was stored.
func TestRejections(t *testing.T) {
	t.Parallel()
	ts := newServer(t, func(c *rest.Config) { c.MaxBody = 4096 })
	existing := ts.create(t, "Patient", patient)
	baseRes, baseVer := ts.rows(t)

	big := `{"resourceType":"Patient","name":[{"family":"` + strings.Repeat("x", 5000) + `"}]}`
	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		headers []string
		status  int
		issues  []string // code@expression of each issue
	}{
		{name: "malformed JSON", method: "POST", path: "/fhir/Patient", body: `{"resourceType":"Patient",`, status: 400, issues: []string{"invalid@Patient"}},
		{name: "not an object", method: "POST", path: "/fhir/Patient", body: `[1,2]`, status: 400, issues: []string{"invalid@Patient"}},
		{name: "no resourceType", method: "POST", path: "/fhir/Patient", body: `{"gender":"male"}`, status: 400, issues: []string{"invalid@Patient"}},
		{name: "duplicate key", method: "POST", path: "/fhir/Patient", body: `{"resourceType":"Patient","gender":"male","gender":"female"}`, status: 400, issues: []string{"invalid@Patient"}},
		{name: "resourceType differs from URL", method: "POST", path: "/fhir/Patient", body: `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`, status: 400, issues: []string{"invalid@Patient"}},
		{name: "unknown element", method: "POST", path: "/fhir/Patient", body: `{"resourceType":"Patient","colour":"blue"}`, status: 400, issues: []string{"structure@Patient.colour"}},
		{name: "bad primitive", method: "POST", path: "/fhir/Patient", body: `{"resourceType":"Patient","birthDate":"2012-13-45"}`, status: 400, issues: []string{"structure@Patient.birthDate"}},
		{name: "bad nested primitive", method: "POST", path: "/fhir/Patient", body: `{"resourceType":"Patient","name":[{"given":[42]}]}`, status: 400, issues: []string{"structure@Patient.name[0].given[0]"}},
		{name: "bad code", method: "POST", path: "/fhir/Patient", body: `{"resourceType":"Patient","gender":"purple"}`, status: 400, issues: []string{"structure@Patient.gender"}},
		{name: "missing required element", method: "POST", path: "/fhir/Observation", body: `{"resourceType":"Observation","code":{"text":"x"}}`, status: 400, issues: []string{"required@Observation"}},
		{name: "wrong reference type", method: "POST", path: "/fhir/Patient", body: `{"resourceType":"Patient","managingOrganization":{"reference":"Patient/1"}}`, status: 400, issues: []string{"invalid@Patient.managingOrganization"}},
		{name: "bad id in body", method: "PUT", path: "/fhir/Patient/abc", body: `{"resourceType":"Patient","id":"a b"}`, status: 400, issues: []string{"invalid@Patient.id"}},
		{name: "update id differs from URL", method: "PUT", path: "/fhir/Patient/" + existing, body: `{"resourceType":"Patient","id":"other"}`, status: 400, issues: []string{"invalid@Patient.id"}},
		{name: "update without id", method: "PUT", path: "/fhir/Patient/" + existing, body: `{"resourceType":"Patient"}`, status: 400, issues: []string{"invalid@Patient.id"}},
		{name: "update with invalid URL id", method: "PUT", path: "/fhir/Patient/" + strings.Repeat("a", 65), body: `{"resourceType":"Patient"}`, status: 400, issues: []string{"invalid@Patient.id"}},
		{name: "empty body", method: "POST", path: "/fhir/Patient", body: "", headers: []string{"Content-Type: application/fhir+json"}, status: 400, issues: []string{"invalid@Patient"}},
		{name: "unknown resource type", method: "POST", path: "/fhir/Nonsense", body: patient, status: 404, issues: []string{"not-found@"}},
		{name: "unknown resource type read", method: "GET", path: "/fhir/Nonsense/1", status: 404, issues: []string{"not-found@"}},
		{name: "abstract type", method: "GET", path: "/fhir/DomainResource/1", status: 404, issues: []string{"not-found@"}},
		{name: "unsupported media type", method: "POST", path: "/fhir/Patient", body: patient, headers: []string{"Content-Type: application/fhir+xml"}, status: 415, issues: []string{"not-supported@"}},
		{name: "text/plain", method: "POST", path: "/fhir/Patient", body: patient, headers: []string{"Content-Type: text/plain"}, status: 415, issues: []string{"not-supported@"}},
		{name: "no content type", method: "POST", path: "/fhir/Patient", body: patient, headers: []string{"Content-Type:"}, status: 415, issues: []string{"not-supported@"}},
		{name: "wrong fhirVersion", method: "POST", path: "/fhir/Patient", body: patient, headers: []string{"Content-Type: application/fhir+json; fhirVersion=3.0"}, status: 415, issues: []string{"not-supported@"}},
		{name: "body above limit", method: "POST", path: "/fhir/Patient", body: big, status: 413, issues: []string{"too-costly@"}},
		{name: "unknown _format", method: "POST", path: "/fhir/Patient?_format=yaml", body: patient, status: 406, issues: []string{"not-supported@_format"}},
		{name: "xml _format", method: "GET", path: "/fhir/Patient/" + existing + "?_format=xml", status: 406, issues: []string{"not-supported@_format"}},
		{name: "xml Accept", method: "GET", path: "/fhir/Patient/" + existing, headers: []string{"Accept: application/fhir+xml"}, status: 406, issues: []string{"not-supported@"}},
		{name: "bad _pretty", method: "GET", path: "/fhir/Patient/" + existing + "?_pretty=maybe", status: 400, issues: []string{"invalid@_pretty"}},
		{name: "bad _summary", method: "GET", path: "/fhir/Patient/" + existing + "?_summary=some", status: 400, issues: []string{"invalid@_summary"}},
		{name: "_summary=count on read", method: "GET", path: "/fhir/Patient/" + existing + "?_summary=count", status: 400, issues: []string{"invalid@_summary"}},
		{name: "malformed If-Match", method: "PUT", path: "/fhir/Patient/" + existing, body: `{"resourceType":"Patient","id":"` + existing + `"}`, headers: []string{"If-Match: yesterday"}, status: 400, issues: []string{"invalid@"}},
		{name: "stale If-Match", method: "PUT", path: "/fhir/Patient/" + existing, body: `{"resourceType":"Patient","id":"` + existing + `"}`, headers: []string{`If-Match: W/"7"`}, status: 412, issues: []string{"conflict@"}},
		{name: "stale If-Match on delete", method: "DELETE", path: "/fhir/Patient/" + existing, headers: []string{`If-Match: W/"7"`}, status: 412, issues: []string{"conflict@"}},
		{name: "If-Match on a missing resource", method: "PUT", path: "/fhir/Patient/missing", body: `{"resourceType":"Patient","id":"missing"}`, headers: []string{`If-Match: W/"1"`}, status: 412, issues: []string{"conflict@"}},
		{name: "read unknown id", method: "GET", path: "/fhir/Patient/nope", status: 404, issues: []string{"not-found@"}},
		{name: "vread unknown version", method: "GET", path: "/fhir/Patient/" + existing + "/_history/9", status: 404, issues: []string{"not-found@"}},
		{name: "vread non-numeric version", method: "GET", path: "/fhir/Patient/" + existing + "/_history/x", status: 404, issues: []string{"not-found@"}},
		{name: "history of unknown id", method: "GET", path: "/fhir/Patient/nope/_history", status: 404, issues: []string{"not-found@"}},
		{name: "bad _count", method: "GET", path: "/fhir/Patient/_history?_count=many", status: 400, issues: []string{"invalid@_count"}},
		{name: "bad _since", method: "GET", path: "/fhir/_history?_since=last-week", status: 400, issues: []string{"invalid@_since"}},
		{name: "bad _at", method: "GET", path: "/fhir/_history?_at=2020-02-30", status: 400, issues: []string{"invalid@_at"}},
		{name: "method not allowed", method: "POST", path: "/fhir/Patient/" + existing, body: patient, status: 405, issues: []string{"not-supported@"}},
		{name: "no such route", method: "GET", path: "/fhir/Patient/" + existing + "/nothing/here", status: 404, issues: []string{"not-found@"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ts.do(t, tt.method, tt.path, tt.body, tt.headers...)
			if res.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", res.status, tt.status, res.body)
			}
			if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, fhirJSON) {
				t.Errorf("Content-Type = %q, want %s", ct, fhirJSON)
			}
			if diff := cmp.Diff(tt.issues, issues(t, res)); diff != "" {
				t.Errorf("issues (-want +got):\n%s\nbody: %s", diff, res.body)
			}
			if r, v := ts.rows(t); r != baseRes || v != baseVer {
				t.Errorf("rows after a refused request: %d resources, %d versions; want %d, %d", r, v, baseRes, baseVer)
			}
		})
	}
}

// TestLifecycle walks one resource through every instance interaction.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	ts := newServer(t)

	res := ts.do(t, "POST", "/fhir/Patient", patient)
	if res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	id := res.json(t)["id"].(string)
	if got, want := res.header.Get("Location"), ts.URL+"/fhir/Patient/"+id+"/_history/1"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if got := res.header.Get("ETag"); got != `W/"1"` {
		t.Errorf("ETag = %q, want W/\"1\"", got)
	}
	if res.header.Get("Last-Modified") == "" || res.header.Get("X-Request-Id") == "" {
		t.Errorf("missing Last-Modified or X-Request-Id: %v", res.header)
	}
	created := res.json(t)
	meta := created["meta"].(map[string]any)
	if meta["versionId"] != "1" || meta["lastUpdated"] == nil {
		t.Errorf("meta = %v", meta)
	}

	read := ts.do(t, "GET", "/fhir/Patient/"+id, "")
	if read.status != 200 || string(read.body) != string(res.body) {
		t.Fatalf("read: %d %s, want the created bytes %s", read.status, read.body, res.body)
	}
	if nm := ts.do(t, "GET", "/fhir/Patient/"+id, "", `If-None-Match: W/"1"`); nm.status != 304 || len(nm.body) != 0 {
		t.Errorf("If-None-Match current: %d %s, want 304", nm.status, nm.body)
	}
	if nm := ts.do(t, "GET", "/fhir/Patient/"+id, "", `If-None-Match: W/"0"`); nm.status != 200 {
		t.Errorf("If-None-Match stale: %d, want 200", nm.status)
	}
	lm := read.header.Get("Last-Modified")
	if ims := ts.do(t, "GET", "/fhir/Patient/"+id, "", "If-Modified-Since: "+lm); ims.status != 304 {
		t.Errorf("If-Modified-Since: %d, want 304", ims.status)
	}
	if ims := ts.do(t, "GET", "/fhir/Patient/"+id, "", "If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT"); ims.status != 200 {
		t.Errorf("If-Modified-Since old: %d, want 200", ims.status)
	}

	upd := ts.do(t, "PUT", "/fhir/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`","gender":"male"}`, `If-Match: W/"1"`)
	if upd.status != 200 || upd.header.Get("ETag") != `W/"2"` {
		t.Fatalf("update: %d %v %s", upd.status, upd.header, upd.body)
	}
	if upd.json(t)["gender"] != "male" {
		t.Errorf("update body = %s", upd.body)
	}
	v1 := ts.do(t, "GET", "/fhir/Patient/"+id+"/_history/1", "")
	if v1.status != 200 || string(v1.body) != string(res.body) || v1.header.Get("ETag") != `W/"1"` {
		t.Errorf("vread 1: %d %s", v1.status, v1.body)
	}

	del := ts.do(t, "DELETE", "/fhir/Patient/"+id, "")
	if del.status != 204 || del.header.Get("ETag") != `W/"3"` {
		t.Fatalf("delete: %d %v %s", del.status, del.header, del.body)
	}
	if again := ts.do(t, "DELETE", "/fhir/Patient/"+id, ""); again.status != 204 {
		t.Errorf("second delete: %d, want 204", again.status)
	}
	gone := ts.do(t, "GET", "/fhir/Patient/"+id, "")
	if gone.status != 410 || !slices.Equal(issues(t, gone), []string{"deleted@"}) {
		t.Errorf("read after delete: %d %s, want 410", gone.status, gone.body)
	}
	if g := ts.do(t, "GET", "/fhir/Patient/"+id+"/_history/3", ""); g.status != 410 {
		t.Errorf("vread of the tombstone: %d, want 410", g.status)
	}
	if v2 := ts.do(t, "GET", "/fhir/Patient/"+id+"/_history/2", ""); v2.status != 200 {
		t.Errorf("vread 2 after delete: %d, want 200", v2.status)
	}

	hist := ts.do(t, "GET", "/fhir/Patient/"+id+"/_history", "")
	h := hist.json(t)
	if h["type"] != "history" || h["total"] != float64(3) {
		t.Fatalf("history: %s", hist.body)
	}
	var got []string
	for _, e := range h["entry"].([]any) {
		em := e.(map[string]any)
		req := em["request"].(map[string]any)
		resp := em["response"].(map[string]any)
		_, hasRes := em["resource"]
		got = append(got, fmt.Sprintf("%s %s %s %v", req["method"], resp["status"], resp["etag"], hasRes))
	}
	want := []string{`DELETE 204 No Content W/"3" false`, `PUT 200 OK W/"2" true`, `POST 201 Created W/"1" true`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history entries (-want +got):\n%s", diff)
	}

	back := ts.do(t, "PUT", "/fhir/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`","active":true}`)
	if back.status != 201 || back.header.Get("ETag") != `W/"4"` {
		t.Errorf("update after delete: %d %v, want 201 with version 4", back.status, back.header)
	}
}

func TestUpdateAsCreate(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	res := ts.do(t, "PUT", "/fhir/Patient/chosen-id.1", `{"resourceType":"Patient","id":"chosen-id.1","active":true}`)
	if res.status != 201 {
		t.Fatalf("status %d %s", res.status, res.body)
	}
	if got, want := res.header.Get("Location"), ts.URL+"/fhir/Patient/chosen-id.1/_history/1"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if res := ts.do(t, "PUT", "/fhir/Patient/chosen-id.1", `{"resourceType":"Patient","id":"chosen-id.1","active":false}`); res.status != 200 {
		t.Errorf("second PUT: %d, want 200", res.status)
	}
}

func TestServerOwnsIDAndMeta(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	res := ts.do(t, "POST", "/fhir/Patient", `{"resourceType":"Patient","id":"mine","meta":{"versionId":"42","lastUpdated":"2001-01-01T00:00:00Z","tag":[{"system":"urn:t","code":"x"}]}}`)
	m := res.json(t)
	meta := m["meta"].(map[string]any)
	if m["id"] == "mine" || meta["versionId"] != "1" || meta["lastUpdated"] == "2001-01-01T00:00:00Z" {
		t.Errorf("client id/meta kept: %s", res.body)
	}
	if tags := meta["tag"].([]any); len(tags) != 1 {
		t.Errorf("client tag lost: %s", res.body)
	}
}

func TestPrefer(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	tests := []struct {
		name, prefer string
		wantType     string // "" means an empty body
	}{
		{"default", "", "Patient"},
		{"representation", "return=representation", "Patient"},
		{"minimal", "return=minimal", ""},
		{"OperationOutcome", "return=OperationOutcome", "OperationOutcome"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ts.do(t, "POST", "/fhir/Patient", patient, "Prefer: "+tt.prefer)
			if res.status != 201 || res.header.Get("Location") == "" || res.header.Get("ETag") == "" {
				t.Fatalf("status %d, headers %v", res.status, res.header)
			}
			if tt.wantType == "" {
				if len(res.body) != 0 {
					t.Errorf("body = %s, want none", res.body)
				}
				return
			}
			if got := res.json(t)["resourceType"]; got != tt.wantType {
				t.Errorf("resourceType = %v, want %s", got, tt.wantType)
			}
		})
	}
	id := ts.create(t, "Patient", patient)
	if res := ts.do(t, "DELETE", "/fhir/Patient/"+id, "", "Prefer: return=OperationOutcome"); res.status != 200 || res.json(t)["resourceType"] != "OperationOutcome" {
		t.Errorf("delete with Prefer OperationOutcome: %d %s", res.status, res.body)
	}
}

// TestConcurrentIfMatch: 20 updates against the same version; exactly one
// may win, the others get 412, and no update is lost.
func TestConcurrentIfMatch(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	id := ts.create(t, "Patient", patient)
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			body := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":"writer-%d"}]}`, id, i)
			statuses[i] = ts.do(t, "PUT", "/fhir/Patient/"+id, body, `If-Match: W/"1"`).status
		})
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[200] != 1 || count[412] != n-1 {
		t.Fatalf("statuses = %v, want 1 x 200 and %d x 412", count, n-1)
	}
	if _, versions := ts.rows(t); versions != 2 {
		t.Errorf("versions = %d, want 2", versions)
	}
}

// TestConcurrentUpdatesWithoutIfMatch: blind concurrent updates all land,
// each as its own version.
func TestConcurrentUpdatesWithoutIfMatch(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"resourceType":"Patient","id":"same","name":[{"family":"w%d"}]}`, i)
			if s := ts.do(t, "PUT", "/fhir/Patient/same", body).status; s != 200 && s != 201 {
				t.Errorf("status %d", s)
			}
		})
	}
	wg.Wait()
	if res := ts.do(t, "GET", "/fhir/Patient/same", ""); res.header.Get("ETag") != fmt.Sprintf(`W/"%d"`, n) {
		t.Errorf("ETag after %d updates = %s", n, res.header.Get("ETag"))
	}
}

func TestContentNegotiation(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	id := ts.create(t, "Patient", patient)
	tests := []struct {
		name, query, accept, wantCT string
		pretty                      bool
	}{
		{name: "default", wantCT: "application/fhir+json; charset=utf-8"},
		{name: "_format json", query: "?_format=json", wantCT: "application/fhir+json; charset=utf-8"},
		{name: "_format application/json", query: "?_format=application/json", wantCT: "application/json; charset=utf-8"},
		{name: "_format fhir+json with space", query: "?_format=application/fhir json", wantCT: "application/fhir+json; charset=utf-8"},
		{name: "Accept json", accept: "application/json", wantCT: "application/json; charset=utf-8"},
		{name: "Accept browser", accept: "text/html,application/xhtml+xml,*/*;q=0.8", wantCT: "application/fhir+json; charset=utf-8"},
		{name: "Accept with version", accept: "application/fhir+json; fhirVersion=4.0", wantCT: "application/fhir+json; charset=utf-8"},
		{name: "pretty", query: "?_pretty=true", wantCT: "application/fhir+json; charset=utf-8", pretty: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.accept != "" {
				h = append(h, "Accept: "+tt.accept)
			}
			res := ts.do(t, "GET", "/fhir/Patient/"+id+strings.ReplaceAll(tt.query, " ", "%20"), "", h...)
			if res.status != 200 {
				t.Fatalf("status %d %s", res.status, res.body)
			}
			if got := res.header.Get("Content-Type"); got != tt.wantCT {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantCT)
			}
			if got := strings.Contains(string(res.body), "\n  "); got != tt.pretty {
				t.Errorf("pretty = %v, want %v", got, tt.pretty)
			}
		})
	}
	// A write may be sent as application/json too.
	if res := ts.do(t, "POST", "/fhir/Patient", patient, "Content-Type: application/json; charset=utf-8"); res.status != 201 {
		t.Errorf("POST application/json: %d", res.status)
	}
}

func TestSummaryAndElements(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	obs := `{"resourceType":"Observation","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},"status":"final","code":{"text":"weight"},"valueQuantity":{"value":4.20,"unit":"kg"},"note":[{"text":"after lunch"}],"interpretation":[{"text":"ok"}]}`
	id := ts.create(t, "Observation", obs)
	keys := func(r response) []string {
		var ks []string
		for k := range r.json(t) {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"code", "id", "interpretation", "meta", "note", "resourceType", "status", "text", "valueQuantity"}},
		{"_summary=false", []string{"code", "id", "interpretation", "meta", "note", "resourceType", "status", "text", "valueQuantity"}},
		{"_summary=true", []string{"code", "id", "meta", "resourceType", "status", "valueQuantity"}},
		{"_summary=text", []string{"code", "id", "meta", "resourceType", "status", "text"}},
		{"_summary=data", []string{"code", "id", "interpretation", "meta", "note", "resourceType", "status", "valueQuantity"}},
		{"_elements=note", []string{"code", "id", "meta", "note", "resourceType", "status"}},
		{"_elements=value,Observation.interpretation", []string{"code", "id", "interpretation", "meta", "resourceType", "status", "valueQuantity"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			res := ts.do(t, "GET", "/fhir/Observation/"+id+"?"+tt.query, "")
			if res.status != 200 {
				t.Fatalf("status %d %s", res.status, res.body)
			}
			if diff := cmp.Diff(tt.want, keys(res)); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
			subsetted := strings.Contains(string(res.body), "SUBSETTED")
			if want := tt.query != "" && tt.query != "_summary=false"; subsetted != want {
				t.Errorf("SUBSETTED tag = %v, want %v", subsetted, want)
			}
		})
	}
	// The decimal is returned exactly as written.
	if res := ts.do(t, "GET", "/fhir/Observation/"+id, ""); !strings.Contains(string(res.body), `"value":4.20`) {
		t.Errorf("decimal not kept as written: %s", res.body)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if res := ts.do(t, "GET", p, ""); res.status != 200 {
			t.Errorf("%s: %d %s", p, res.status, res.body)
		}
	}
	// Not ready once the database is gone.
	ts.pool.Close()
	if res := ts.do(t, "GET", "/readyz", ""); res.status != 503 {
		t.Errorf("/readyz without database: %d, want 503", res.status)
	}
}

// TestAccessLog: one line per request, with the request id the client saw,
// and never the query string.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	res := ts.do(t, "GET", "/fhir/Patient/x?name=Secret-Name", "", "X-Request-Id: abc-123")
	if res.header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("X-Request-Id = %q, want the client's", res.header.Get("X-Request-Id"))
	}
	forged := ts.do(t, "GET", "/fhir/metadata", "", "X-Request-Id: bad id {with} spaces")
	if got := forged.header.Get("X-Request-Id"); got == "" || strings.Contains(got, " ") {
		t.Errorf("unsafe X-Request-Id kept: %q", got)
	}
	logs := ts.logs.String()
	if strings.Contains(logs, "Secret-Name") {
		t.Errorf("query string logged: %s", logs)
	}
	lines := strings.Count(logs, `"msg":"request"`)
	if lines != 2 || !strings.Contains(logs, `"request_id":"abc-123"`) {
		t.Errorf("want 2 request lines, one with request_id abc-123; got:\n%s", logs)
	}

}
