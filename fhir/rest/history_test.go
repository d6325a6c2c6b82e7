package rest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digitaleouder/ouder/fhir/rest"
	"github.com/digitaleouder/ouder/store/postgres"
)

// historyBundle is what the tests read of a history Bundle.
type historyBundle struct {
	ResourceType string         `json:"resourceType"`
	Type         string         `json:"type"`
	Total        *int64         `json:"total"`
	Link         []bundleLink   `json:"link"`
	Entry        []historyEntry `json:"entry"`
}

type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// historyEntry is one Bundle.entry of a history Bundle.
type historyEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Request  struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	} `json:"request"`
	Response struct {
		Status       string `json:"status"`
		Etag         string `json:"etag"`
		LastModified string `json:"lastModified"`
	} `json:"response"`
}

// link returns the URL of the link with relation rel, or "".
func (b historyBundle) link(rel string) string {
	for _, l := range b.Link {
		if l.Relation == rel {
			return l.URL
		}
	}
	return ""
}

// historyPage GETs path (relative to the test server) and fails the test
// unless the answer is 200 with a history Bundle whose self link is the
// request's URL.
func (ts *testServer) historyPage(tb testing.TB, path string) historyBundle {
	tb.Helper()
	res := ts.do(tb, "GET", path, "")
	if res.status != http.StatusOK {
		tb.Fatalf("GET %s: status %d: %s", path, res.status, res.body)
	}
	var b historyBundle
	if err := json.Unmarshal(res.body, &b); err != nil {
		tb.Fatalf("GET %s: %v\n%s", path, err, res.body)
	}
	if b.ResourceType != "Bundle" || b.Type != "history" {
		tb.Fatalf("GET %s: resourceType %q, type %q; want a history Bundle", path, b.ResourceType, b.Type)
	}
	assertSameURL(tb, "self link", ts.URL+path, b.link("self"))
	return b
}

// assertSameURL reports whether got is want up to the encoding and order of
// the query parameters.
func assertSameURL(tb testing.TB, what, want, got string) {
	tb.Helper()
	w, err := url.Parse(want)
	if err != nil {
		tb.Fatal(err)
	}
	g, err := url.Parse(got)
	if err != nil {
		tb.Fatalf("%s %q: %v", what, got, err)
	}
	if g.Scheme != w.Scheme || g.Host != w.Host || g.Path != w.Path {
		tb.Errorf("%s = %q, want %q", what, got, want)
	}
	if diff := cmp.Diff(w.Query(), g.Query()); diff != "" {
		tb.Errorf("%s %q: query parameters (-want +got):\n%s", what, got, diff)
	}
}

// historyPages GETs path and every page after it by following the next
// links, calling between (when not nil) before each next page. It fails the
// test if a next link leaves the server or the pages never end.
func (ts *testServer) historyPages(tb testing.TB, path string, between func()) []historyBundle {
	tb.Helper()
	var pages []historyBundle
	for {
		page := ts.historyPage(tb, path)
		pages = append(pages, page)
		next := page.link("next")
		if next == "" {
			return pages
		}
		if len(pages) == 100 {
			tb.Fatalf("history of %s has more than 100 pages", path)
		}
		var ok bool
		if path, ok = strings.CutPrefix(next, ts.URL); !ok {
			tb.Fatalf("next link %q is not on the server %s", next, ts.URL)
		}
		if between != nil {
			between()
		}
	}
}

// versions returns the entries of pages as "METHOD Type/id/_history/n",
// failing the test where an entry is inconsistent: a deletion with a
// resource, another version without one, or a resource whose id and
// versionId are not those of fullUrl and the ETag.
func (ts *testServer) versions(tb testing.TB, pages ...historyBundle) []string {
	tb.Helper()
	out := []string{}
	for _, p := range pages {
		for _, e := range p.Entry {
			ref, ok := strings.CutPrefix(e.FullURL, ts.URL+"/fhir/")
			typ, id, _ := strings.Cut(ref, "/")
			if typ == "Provenance" {
				continue // the server's record of each version (docs/audit.md)
			}
			n, okTag := strings.CutPrefix(e.Response.Etag, `W/"`)
			n, okTag2 := strings.CutSuffix(n, `"`)
			if !ok || id == "" || !okTag || !okTag2 {
				tb.Fatalf("entry fullUrl %q, etag %q: want [base]/Type/id and W/\"n\"", e.FullURL, e.Response.Etag)
			}
			v := e.Request.Method + " " + ref + "/_history/" + n
			wantURL := ref
			if e.Request.Method == "POST" {
				wantURL = typ
			}
			if e.Request.URL != wantURL {
				tb.Errorf("%s: request.url = %q, want %q", v, e.Request.URL, wantURL)
			}
			switch {
			case e.Request.Method == "DELETE" && e.Resource != nil:
				tb.Errorf("%s: a deletion has a resource: %s", v, e.Resource)
			case e.Request.Method == "DELETE":
			case e.Resource == nil:
				tb.Errorf("%s: no resource", v)
			default:
				var r struct {
					ResourceType, ID string
					Meta             struct{ VersionID string }
				}
				if err := json.Unmarshal(e.Resource, &r); err != nil || r.ResourceType != typ || r.ID != id || r.Meta.VersionID != n {
					tb.Errorf("%s: resource %s is not that version (%v)", v, e.Resource, err)
				}
			}
			out = append(out, v)
		}
	}
	return out
}

// write sends a create, update or delete that must succeed and returns the
// version it wrote as "METHOD Type/id/_history/n".
func (ts *testServer) write(tb testing.TB, method, path, body string) string {
	tb.Helper()
	res := ts.do(tb, method, path, body)
	if res.status != http.StatusOK && res.status != http.StatusCreated && res.status != http.StatusNoContent {
		tb.Fatalf("%s %s: status %d: %s", method, path, res.status, res.body)
	}
	ref := strings.TrimPrefix(path, "/fhir/")
	if method == "POST" {
		ref += "/" + res.json(tb)["id"].(string)
	}
	n := strings.TrimSuffix(strings.TrimPrefix(res.header.Get("ETag"), `W/"`), `"`)
	return method + " " + ref + "/_history/" + n
}

// idOf returns the id in a version written by write.
func idOf(version string) string {
	_, ref, _ := strings.Cut(version, " ")
	return strings.Split(ref, "/")[1]
}

// newestFirst returns the versions for which keep is true, newest first, from
// a log of writes oldest first.
func newestFirst(log []string, keep func(version string) bool) []string {
	out := []string{}
	for _, v := range slices.Backward(log) {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// of returns a filter for versions of a type ("Patient/") or of one resource
// ("Patient/123/"); "" keeps every version.
func of(prefix string) func(string) bool {
	return func(v string) bool {
		_, ref, _ := strings.Cut(v, " ")
		return strings.HasPrefix(ref, prefix)
	}
}

// patientBody is a Patient with the given id and family name.
func patientBody(id, family string) string {
	return fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":%q}]}`, id, family)
}

// TestHistoryPaging follows the next links of instance, type and system
// history and checks that every version appears exactly once, newest first.
func TestHistoryPaging(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	var log []string
	a := ts.write(t, "POST", "/fhir/Patient", patient)
	log = append(log, a)
	for i := range 5 {
		log = append(log, ts.write(t, "PUT", "/fhir/Patient/"+idOf(a), patientBody(idOf(a), fmt.Sprint("v", i+2))))
	}
	log = append(log, ts.write(t, "POST", "/fhir/Patient", patient))
	o := ts.write(t, "POST", "/fhir/Observation", `{"resourceType":"Observation","status":"preliminary","code":{"text":"length"}}`)
	log = append(log, o,
		ts.write(t, "PUT", "/fhir/Observation/"+idOf(o), `{"resourceType":"Observation","id":"`+idOf(o)+`","status":"final","code":{"text":"length"}}`),
		ts.write(t, "DELETE", "/fhir/Patient/"+idOf(a), ""))

	tests := []struct {
		name  string
		path  string
		count int
		keep  func(string) bool
		total bool // Bundle.total must be given
		per   int  // history entries per version listed (2 in system history: each has its Provenance)
	}{
		{name: "instance", path: "/fhir/Patient/" + idOf(a) + "/_history", count: 3, keep: of("Patient/" + idOf(a) + "/"), total: true},
		{name: "type", path: "/fhir/Patient/_history", count: 3, keep: of("Patient/")},
		{name: "system", path: "/fhir/_history", count: 6, keep: of(""), per: 2},
		{name: "system, pages fill up exactly", path: "/fhir/_history", count: 10, keep: of(""), per: 2},
		{name: "system, one page", path: "/fhir/_history", count: 20, keep: of(""), per: 2},
		{name: "instance, one version a page", path: "/fhir/Patient/" + idOf(a) + "/_history", count: 1, keep: of("Patient/" + idOf(a) + "/"), total: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := newestFirst(log, tt.keep)
			pages := ts.historyPages(t, fmt.Sprintf("%s?_count=%d", tt.path, tt.count), nil)
			if diff := cmp.Diff(want, ts.versions(t, pages...)); diff != "" {
				t.Errorf("versions (-want +got):\n%s", diff)
			}
			if wantPages := (len(want)*max(tt.per, 1) + tt.count - 1) / tt.count; len(pages) != wantPages {
				t.Errorf("%d pages, want %d", len(pages), wantPages)
			}
			for i, p := range pages {
				if i < len(pages)-1 && len(p.Entry) != tt.count {
					t.Errorf("page %d has %d entries, want %d", i+1, len(p.Entry), tt.count)
				}
				if tt.total && (p.Total == nil || *p.Total != int64(len(want))) {
					t.Errorf("page %d: total %v, want %d", i+1, p.Total, len(want))
				}
			}
		})
	}
}

// TestHistoryPagingIsStable writes between page fetches: pages of a history
// already started go on where they left off (keyset paging), with no version
// repeated or skipped, and the new versions show up on a fresh first page.
func TestHistoryPagingIsStable(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	a := ts.write(t, "POST", "/fhir/Patient", patient)
	b := ts.write(t, "POST", "/fhir/Patient", patient)
	log := []string{a, b,
		ts.write(t, "PUT", "/fhir/Patient/"+idOf(a), patientBody(idOf(a), "a2")),
		ts.write(t, "POST", "/fhir/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`),
		ts.write(t, "PUT", "/fhir/Patient/"+idOf(b), patientBody(idOf(b), "b2")),
		ts.write(t, "PUT", "/fhir/Patient/"+idOf(a), patientBody(idOf(a), "a3")),
		ts.write(t, "PUT", "/fhir/Patient/"+idOf(a), patientBody(idOf(a), "a4")),
	}
	// The subtests write, so they run one after the other.
	tests := []struct {
		name string
		path string
		keep func(string) bool
	}{
		{"system", "/fhir/_history", of("")},
		{"type", "/fhir/Patient/_history", of("Patient/")},
		{"instance", "/fhir/Patient/" + idOf(a) + "/_history", of("Patient/" + idOf(a) + "/")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := newestFirst(log, tt.keep)
			writes := 0
			pages := ts.historyPages(t, tt.path+"?_count=3", func() {
				// A new resource and a new version of one on every page.
				log = append(log,
					ts.write(t, "POST", "/fhir/Patient", patient),
					ts.write(t, "PUT", "/fhir/Patient/"+idOf(a), patientBody(idOf(a), fmt.Sprint("during paging ", writes))))
				writes++
			})
			if writes == 0 {
				t.Fatalf("history fit on one page: nothing was written while paging")
			}
			if diff := cmp.Diff(want, ts.versions(t, pages...)); diff != "" {
				t.Errorf("versions of the pages started before the writes (-want +got):\n%s", diff)
			}
			count := 3
			if tt.name == "system" {
				count = 6 // every version is followed by its Provenance
			}
			fresh := ts.historyPage(t, fmt.Sprintf("%s?_count=%d", tt.path, count))
			if diff := cmp.Diff(newestFirst(log, tt.keep)[:3], ts.versions(t, fresh)); diff != "" {
				t.Errorf("fresh first page (-want +got):\n%s", diff)
			}
		})
	}
}

// stoppedClock is a clock that stands still until the test moves it.
type stoppedClock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the time last set.
func (c *stoppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *stoppedClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// withStoreClock makes the store take the times of versions from c.
func withStoreClock(c *stoppedClock) serverOption {
	return func(cfg *rest.Config) { cfg.Store.(*postgres.Store).Now = c.Now }
}

// observation has elements in and out of the summary (text and note are not).
const observation = `{"resourceType":"Observation","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">4.20 kg</div>"},"status":"final","code":{"text":"weight"},"valueQuantity":{"value":4.20,"unit":"kg"},"note":[{"text":"after lunch"}]}`

// TestHistoryFilters checks _since, _at, _count=0 and _summary, and which
// versions instance, type and system history hold, on writes at known times.
func TestHistoryFilters(t *testing.T) {
	t.Parallel()
	clock := &stoppedClock{}
	ts := newServer(t, withStoreClock(clock))
	at := func(hhmm string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, "2026-01-01T"+hhmm+":00Z")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	clock.Set(at("10:00"))
	a1 := ts.write(t, "POST", "/fhir/Patient", patient)
	a := idOf(a1)
	clock.Set(at("11:00"))
	created := ts.do(t, "POST", "/fhir/Observation", observation)
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	o := created.json(t)["id"].(string)
	o1 := "POST Observation/" + o + "/_history/1"
	// _since takes the instant exactly as the server wrote it.
	o1Time := created.json(t)["meta"].(map[string]any)["lastUpdated"].(string)
	if o1Time != "2026-01-01T11:00:00.000000Z" {
		t.Fatalf("meta.lastUpdated = %q, want the store clock's 2026-01-01T11:00:00.000000Z", o1Time)
	}
	clock.Set(at("12:00"))
	a2 := ts.write(t, "PUT", "/fhir/Patient/"+a, patientBody(a, "Jansen-de Vries"))
	clock.Set(at("13:00"))
	o2 := ts.write(t, "DELETE", "/fhir/Observation/"+o, "")
	clock.Set(at("14:00"))
	b1 := ts.write(t, "POST", "/fhir/Patient", patient)

	none := []string{}
	tests := []struct {
		name  string
		query string // appended to the path
		path  string
		want  []string
		// total is what Bundle.total must say when given: the number of
		// matching versions, len(want) unless _count cuts the page short.
		total int
	}{
		{name: "system", path: "/fhir/_history", want: []string{b1, o2, a2, o1, a1}},
		{name: "type Patient", path: "/fhir/Patient/_history", want: []string{b1, a2, a1}},
		{name: "type Observation", path: "/fhir/Observation/_history", want: []string{o2, o1}},
		{name: "type without versions", path: "/fhir/Encounter/_history", want: none},
		{name: "instance", path: "/fhir/Patient/" + a + "/_history", want: []string{a2, a1}},
		{name: "deleted instance", path: "/fhir/Observation/" + o + "/_history", want: []string{o2, o1}},
		{name: "_since a version's lastUpdated includes it", path: "/fhir/_history", query: "_since=" + o1Time, want: []string{b1, o2, a2, o1}},
		{name: "_since a microsecond later excludes it", path: "/fhir/_history", query: "_since=2026-01-01T11:00:00.000001Z", want: []string{b1, o2, a2}},
		{name: "_since on type", path: "/fhir/Patient/_history", query: "_since=" + o1Time, want: []string{b1, a2}},
		{name: "_since on instance", path: "/fhir/Patient/" + a + "/_history", query: "_since=2026-01-01T12:00:00Z", want: []string{a2}},
		{name: "_since in another zone", path: "/fhir/_history", query: "_since=" + url.QueryEscape("2026-01-01T14:00:00+01:00"), want: []string{b1, o2}},
		{name: "_since after every write", path: "/fhir/_history", query: "_since=2026-01-02", want: none},
		{name: "_at between two versions: the first is current", path: "/fhir/Patient/" + a + "/_history", query: "_at=2026-01-01T11:30:00Z", want: []string{a1}},
		{name: "_at the instant of the update: the second is current", path: "/fhir/Patient/" + a + "/_history", query: "_at=2026-01-01T12:00:00Z", want: []string{a2}},
		{name: "_at the second before the update", path: "/fhir/Patient/" + a + "/_history", query: "_at=2026-01-01T11:59:59Z", want: []string{a1}},
		{name: "_at a day covering both", path: "/fhir/Patient/" + a + "/_history", query: "_at=2026-01-01", want: []string{a2, a1}},
		{name: "_at on system", path: "/fhir/_history", query: "_at=2026-01-01T11:30:00Z", want: []string{o1, a1}},
		{name: "_at on type", path: "/fhir/Patient/_history", query: "_at=2026-01-01T14:30:00Z", want: []string{b1, a2}},
		{name: "_at before any write", path: "/fhir/_history", query: "_at=2026-01-01T09:00:00Z", want: none},
		{name: "_since and _at", path: "/fhir/_history", query: "_since=2026-01-01T11:00:00Z&_at=2026-01-01T11:30:00Z", want: []string{o1}},
		{name: "_count=0", path: "/fhir/_history", query: "_count=0", want: none, total: 5},
		{name: "_count=0 on instance", path: "/fhir/Patient/" + a + "/_history", query: "_count=0", want: none, total: 2},
		{name: "_count=0 with _since", path: "/fhir/_history", query: "_count=0&_since=2026-01-01T12:00:00Z", want: none, total: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := tt.path
			if tt.query != "" {
				path += "?" + tt.query
			}
			page := ts.historyPage(t, path)
			if diff := cmp.Diff(tt.want, ts.versions(t, page)); diff != "" {
				t.Errorf("versions (-want +got):\n%s", diff)
			}
			if next := page.link("next"); next != "" {
				t.Errorf("next link %q on a complete history", next)
			}
			total := tt.total
			if total == 0 {
				total = len(tt.want)
			}
			if page.Total != nil && *page.Total != int64(total) {
				t.Errorf("total = %d, want %d (or none)", *page.Total, total)
			}
		})
	}

	t.Run("_summary=true", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/fhir/Observation/" + o + "/_history", "/fhir/Observation/_history", "/fhir/_history"} {
			page := ts.historyPage(t, path+"?_summary=true")
			for _, e := range page.Entry {
				if !strings.Contains(e.FullURL, "/Observation/") || e.Resource == nil {
					continue
				}
				var got []string
				for k := range decodeJSON(t, e.Resource) {
					got = append(got, k)
				}
				slices.Sort(got)
				if want := []string{"code", "id", "meta", "resourceType", "status", "valueQuantity"}; !slices.Equal(got, want) {
					t.Errorf("%s: summary entry has members %q, want %q", path, got, want)
				}
				if !strings.Contains(string(e.Resource), `"SUBSETTED"`) {
					t.Errorf("%s: summary entry without the SUBSETTED tag: %s", path, e.Resource)
				}
			}
			if got := ts.versions(t, page); !slices.Contains(got, o1) || !slices.Contains(got, o2) {
				t.Errorf("%s: versions %q, want %s and %s among them", path, got, o1, o2)
			}
		}
		full := ts.historyPage(t, "/fhir/Observation/"+o+"/_history")
		if len(full.Entry) != 2 || !strings.Contains(string(full.Entry[1].Resource), "after lunch") {
			t.Errorf("history without _summary: want 2 entries, the first version with its note: %+v", full.Entry)
		}
	})
}

// TestHistoryRefusals: history of what does not exist is 404, whatever the
// page size asked for.
func TestHistoryRefusals(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	gone := ts.create(t, "Patient", patient)
	ts.do(t, "DELETE", "/fhir/Patient/"+gone, "")
	tests := []struct {
		name, path string
		status     int
		issues     []string
	}{
		{"unknown id", "/fhir/Patient/nope/_history", 404, []string{"not-found@"}},
		{"unknown id, _count=0", "/fhir/Patient/nope/_history?_count=0", 404, []string{"not-found@"}},
		{"unknown type", "/fhir/Nonsense/_history", 404, []string{"not-found@"}},
		{"negative _count", "/fhir/_history?_count=-1", 400, []string{"invalid@_count"}},
		{"forged cursor", "/fhir/_history?_cursor=abc", 400, []string{"invalid@_cursor"}},
		{"_summary=count", "/fhir/_history?_summary=count", 400, []string{"invalid@_summary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := ts.do(t, "GET", tt.path, "")
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			if diff := cmp.Diff(tt.issues, issues(t, res)); diff != "" {
				t.Errorf("issues (-want +got):\n%s", diff)
			}
		})
	}
	// A deleted resource keeps its history.
	if page := ts.historyPage(t, "/fhir/Patient/"+gone+"/_history"); len(page.Entry) != 2 {
		t.Errorf("history of a deleted resource has %d entries, want 2", len(page.Entry))
	}
}
