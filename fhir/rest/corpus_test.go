package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/postgres"
)

// storeParser parses and indexes what putStored writes.
var storeParser = sync.OnceValues(func() (*conformance.Parser, error) {
	p, err := conformance.NewParser()
	if err != nil {
		return nil, err
	}
	reg, err := searchparam.Builtin()
	if err != nil {
		return nil, err
	}
	p.Registry = func() *searchparam.Registry { return reg }
	return p, nil
})

// putStored writes a resource through the store, as the server itself does.
func (ts *testServer) putStored(tb testing.TB, typ, id, body string) {
	tb.Helper()
	p, err := storeParser()
	if err != nil {
		tb.Fatal(err)
	}
	res, err := p.Parse([]byte(body), typ)
	if err != nil {
		tb.Fatalf("%s/%s: %v", typ, id, err)
	}
	ctx := search.WithAccess(context.Background(), search.Unrestricted())
	if _, err := postgres.New(ts.pool).Update(ctx, fhir.Write{Type: typ, ID: id, Render: res.Render, Index: res.Index}); err != nil {
		tb.Fatalf("%s/%s: %v", typ, id, err)
	}
}

// The search correctness corpus: testdata/search/*.json at the top of the
// repository, one file per area of http://hl7.org/fhir/R4/search.html. Each
// file is loaded into its own fresh server (the files run in parallel), its
// resources are PUT with their fixed ids, and its cases run in order as
// subtests. The expectations are the spec's; where the spec leaves room, the
// case's "why" says what we chose.

// corpusFile is one file of the corpus.
type corpusFile struct {
	// Description says what the file covers.
	Description string `json:"description"`
	// Resources are PUT to [base]/[resourceType]/[id] before the first case;
	// anything but 2xx fails the file. "{base}" is replaced by the server's
	// base URL.
	Resources []json.RawMessage `json:"resources"`
	// Cases run in order; a case with Then changes the data for the cases
	// after it.
	Cases []corpusCase `json:"cases"`
}

// corpusCase is a search and what it must return, or (with Then) a change
// to the data between searches.
type corpusCase struct {
	Name string `json:"name"`
	// Why explains the expectation where the spec needs reading; not checked.
	Why string `json:"why,omitempty"`
	// Query is [type]?params, or ?params for a search of all types, written
	// unencoded: the runner percent-encodes each name and value (so "+" in a
	// time zone and spaces are sent as themselves), unless Raw is set. The
	// values "{base}" (the server's base URL) and "{name}" of a Then.Mark are
	// substituted first.
	Query string `json:"query"`
	Raw   bool   `json:"raw,omitempty"`
	// Post sends the search as POST [type]/_search with a form body.
	Post bool `json:"post,omitempty"`
	// Headers are "Name: value" request headers.
	Headers []string `json:"headers,omitempty"`

	// Status is the expected HTTP status (default 200). For an error, Issue
	// is the parameter the OperationOutcome must name in an issue's
	// expression.
	Status int    `json:"status,omitempty"`
	Issue  string `json:"issue,omitempty"`

	// Match are the ids of the entries with search.mode "match", in any
	// order unless Ordered. Include, when given, are those of mode
	// "include", in any order. Whatever is given, no resource may appear
	// twice in a Bundle.
	Match   *[]string `json:"match,omitempty"`
	Ordered bool      `json:"ordered,omitempty"`
	Include *[]string `json:"include,omitempty"`
	// Total, when given, is Bundle.total.
	Total *int `json:"total,omitempty"`
	// Pages are the ids of each page in order, following the next links
	// from the first; the last page must have no next link. The runner then
	// walks the previous links back to the first page, which must have no
	// previous link.
	Pages [][]string `json:"pages,omitempty"`
	// Keys, when given, are the top-level members every match must have,
	// and no others.
	Keys []string `json:"keys,omitempty"`
	// IncludeKeys is Keys for the included resources.
	IncludeKeys []string `json:"includeKeys,omitempty"`
	// Warning is a parameter that an outcome entry of the Bundle must name.
	Warning string `json:"warning,omitempty"`

	Then *corpusStep `json:"then,omitempty"`
}

// corpusStep changes the data between cases: it deletes a resource
// ("Type/id"), PUTs one, or records the current time under a name for later
// queries ("{name}"), with a pause either side so that no write shares its
// microsecond.
type corpusStep struct {
	Delete string          `json:"delete,omitempty"`
	Put    json.RawMessage `json:"put,omitempty"`
	Mark   string          `json:"mark,omitempty"`
}

func TestCorpus(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "search", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files in testdata/search (%v)", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			t.Parallel()
			runCorpusFile(t, loadCorpus(t, file))
		})
	}
}

func loadCorpus(tb testing.TB, file string) *corpusFile {
	tb.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c corpusFile
	if err := dec.Decode(&c); err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	names := map[string]bool{}
	for i, cs := range c.Cases {
		switch {
		case cs.Then != nil:
			if cs.Query != "" || cs.Name != "" {
				tb.Fatalf("%s: case %d: a step has no name or query", file, i)
			}
			continue
		case cs.Name == "" || cs.Query == "":
			tb.Fatalf("%s: case %d needs a name and a query", file, i)
		case names[cs.Name]:
			tb.Fatalf("%s: case name %q is used twice", file, cs.Name)
		case cs.Status == 0 && cs.Match == nil && cs.Pages == nil && cs.Total == nil:
			tb.Fatalf("%s: case %q checks nothing: give match, pages, total or status", file, cs.Name)
		}
		names[cs.Name] = true
	}
	return &c
}

func runCorpusFile(t *testing.T, c *corpusFile) {
	ts := newServer(t)
	vars := map[string]string{"base": ts.URL + "/fhir"}
	for _, r := range c.Resources {
		ts.putRaw(t, substitute(string(r), vars))
	}
	for _, cs := range c.Cases {
		if cs.Then != nil {
			ts.step(t, cs.Then, vars)
			continue
		}
		t.Run(cs.Name, func(t *testing.T) { ts.runCase(t, cs, vars) })
	}
}

// substitute replaces each {name} of vars in s.
func substitute(s string, vars map[string]string) string {
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	return s
}

// putRaw PUTs a resource to its own type and id, failing unless 2xx.
func (ts *testServer) putRaw(tb testing.TB, body string) {
	tb.Helper()
	var head struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &head); err != nil || head.ResourceType == "" || head.ID == "" {
		tb.Fatalf("a corpus resource needs resourceType and id (%v): %s", err, body)
	}
	if head.ResourceType == "Provenance" {
		// Clients cannot write Provenance (docs/audit.md): the corpus's
		// own go in through the store, as the server writes them.
		ts.putStored(tb, head.ResourceType, head.ID, body)
		return
	}
	res := ts.do(tb, "PUT", "/fhir/"+head.ResourceType+"/"+head.ID, body)
	if res.status/100 != 2 {
		tb.Fatalf("PUT %s/%s: %d %s", head.ResourceType, head.ID, res.status, res.body)
	}
}

func (ts *testServer) step(tb testing.TB, s *corpusStep, vars map[string]string) {
	tb.Helper()
	switch {
	case s.Delete != "":
		if res := ts.do(tb, "DELETE", "/fhir/"+s.Delete, ""); res.status/100 != 2 {
			tb.Fatalf("DELETE %s: %d %s", s.Delete, res.status, res.body)
		}
	case s.Put != nil:
		ts.putRaw(tb, substitute(string(s.Put), vars))
	case s.Mark != "":
		time.Sleep(5 * time.Millisecond)
		vars[s.Mark] = time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00")
		time.Sleep(5 * time.Millisecond)
	default:
		tb.Fatalf("a step must delete, put or mark")
	}
}

// encodeQuery percent-encodes each name and value of an unencoded query.
func encodeQuery(q string) string {
	var parts []string
	for p := range strings.SplitSeq(q, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(v))
	}
	return strings.Join(parts, "&")
}

// corpusEntry is one entry of a searchset.
type corpusEntry struct {
	typ, id, mode string
	keys          []string
}

// searchset reads the entries, total and links of a searchset Bundle.
func searchset(tb testing.TB, r response) (entries []corpusEntry, total *int, links map[string]string) {
	tb.Helper()
	var b struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Total        *int   `json:"total"`
		Link         []struct {
			Relation string `json:"relation"`
			URL      string `json:"url"`
		} `json:"link"`
		Entry []struct {
			Resource map[string]json.RawMessage `json:"resource"`
			Search   struct {
				Mode string `json:"mode"`
			} `json:"search"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil || b.ResourceType != "Bundle" || b.Type != "searchset" {
		tb.Fatalf("want a searchset Bundle (%v), got %d %s", err, r.status, r.body)
	}
	links = map[string]string{}
	for _, l := range b.Link {
		links[l.Relation] = l.URL
	}
	for _, e := range b.Entry {
		var typ, id string
		_ = json.Unmarshal(e.Resource["resourceType"], &typ)
		_ = json.Unmarshal(e.Resource["id"], &id)
		if typ == "Provenance" && uuid.Validate(id) == nil {
			// The server's record of a corpus write (docs/audit.md), not
			// a corpus resource.
			continue
		}
		entries = append(entries, corpusEntry{typ: typ, id: id, mode: e.Search.Mode, keys: slices.Sorted(maps.Keys(e.Resource))})
	}
	return entries, b.Total, links
}

func (ts *testServer) runCase(t *testing.T, cs corpusCase, vars map[string]string) {
	query := substitute(cs.Query, vars)
	path, params, _ := strings.Cut(query, "?")
	if !cs.Raw {
		params = encodeQuery(params)
	}
	var res response
	if cs.Post {
		res = ts.do(t, "POST", "/fhir/"+path+"/_search", params, append([]string{"Content-Type: application/x-www-form-urlencoded"}, cs.Headers...)...)
		query = "POST " + query
	} else {
		res = ts.do(t, "GET", "/fhir/"+path+"?"+params, "", cs.Headers...)
		query = "GET " + query
	}
	want := cs.Status
	if want == 0 {
		want = http.StatusOK
	}
	if res.status != want {
		t.Fatalf("%s: status %d, want %d: %s", query, res.status, want, res.body)
	}
	if want != http.StatusOK {
		if cs.Issue != "" && !slices.ContainsFunc(issues(t, res), func(s string) bool {
			_, exprs, _ := strings.Cut(s, "@")
			return slices.Contains(strings.Split(exprs, ","), cs.Issue)
		}) {
			t.Errorf("%s: no issue names %q: %s", query, cs.Issue, res.body)
		}
		return
	}
	entries, total, links := searchset(t, res)
	checkEntries(t, query, cs, entries)
	if cs.Total != nil {
		switch {
		case total == nil:
			t.Errorf("%s: no Bundle.total, want %d", query, *cs.Total)
		case *total != *cs.Total:
			t.Errorf("%s: Bundle.total = %d, want %d", query, *total, *cs.Total)
		}
	}
	if cs.Pages != nil {
		ts.checkPages(t, query, cs.Pages, entries, links)
	}
}

// checkEntries compares the entries of one page with the case.
func checkEntries(t *testing.T, query string, cs corpusCase, entries []corpusEntry) {
	t.Helper()
	seen := map[string]string{}
	var matches, includes []string
	warned := false
	for _, e := range entries {
		switch e.mode {
		case "match":
			matches = append(matches, e.id)
			if cs.Keys != nil && !slices.Equal(e.keys, sorted(cs.Keys)) {
				t.Errorf("%s: match %s/%s has members %v, want %v", query, e.typ, e.id, e.keys, sorted(cs.Keys))
			}
		case "include":
			includes = append(includes, e.id)
			if cs.IncludeKeys != nil && !slices.Equal(e.keys, sorted(cs.IncludeKeys)) {
				t.Errorf("%s: include %s/%s has members %v, want %v", query, e.typ, e.id, e.keys, sorted(cs.IncludeKeys))
			}
		case "outcome":
			warned = true
			continue
		default:
			t.Errorf("%s: entry %s/%s has search.mode %q", query, e.typ, e.id, e.mode)
		}
		key := e.typ + "/" + e.id
		if prev, dup := seen[key]; dup {
			t.Errorf("%s: %s appears twice (as %s and as %s)", query, key, prev, e.mode)
		}
		seen[key] = e.mode
	}
	if cs.Match != nil && cs.Pages == nil {
		want, got := *cs.Match, matches
		if !cs.Ordered {
			want, got = sorted(want), sorted(got)
		}
		if diff := cmp.Diff(want, got, cmp.Transformer("nil", orEmpty)); diff != "" {
			t.Errorf("%s: matches (-want +got):\n%s", query, diff)
		}
	}
	if cs.Include != nil {
		if diff := cmp.Diff(sorted(*cs.Include), sorted(includes), cmp.Transformer("nil", orEmpty)); diff != "" {
			t.Errorf("%s: includes (-want +got):\n%s", query, diff)
		}
	}
	if cs.Warning != "" && !warned {
		t.Errorf("%s: no outcome entry warns about %s", query, cs.Warning)
	}
}

// checkPages follows the next links through pages and the previous links
// back, comparing each page with want.
func (ts *testServer) checkPages(t *testing.T, query string, want [][]string, first []corpusEntry, links map[string]string) {
	t.Helper()
	page := func(entries []corpusEntry) []string {
		var out []string
		for _, e := range entries {
			if e.mode == "match" {
				out = append(out, e.id)
			}
		}
		return out
	}
	get := func(link string) ([]corpusEntry, map[string]string) {
		u, err := url.Parse(link)
		if err != nil {
			t.Fatalf("link %q: %v", link, err)
		}
		res := ts.do(t, "GET", u.RequestURI(), "")
		if res.status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", link, res.status, res.body)
		}
		entries, _, links := searchset(t, res)
		return entries, links
	}
	if links["previous"] != "" {
		t.Errorf("%s: the first page has a previous link", query)
	}
	entries := first
	for i := range want {
		if diff := cmp.Diff(want[i], page(entries), cmp.Transformer("nil", orEmpty)); diff != "" {
			t.Fatalf("%s: page %d (-want +got):\n%s", query, i+1, diff)
		}
		next := links["next"]
		if i == len(want)-1 {
			if next != "" {
				t.Fatalf("%s: the last page (%d) has a next link %s", query, i+1, next)
			}
			break
		}
		if next == "" {
			t.Fatalf("%s: page %d has no next link", query, i+1)
		}
		entries, links = get(next)
	}
	for i := len(want) - 2; i >= 0; i-- {
		prev := links["previous"]
		if prev == "" {
			t.Fatalf("%s: page %d has no previous link", query, i+2)
		}
		entries, links = get(prev)
		if diff := cmp.Diff(want[i], page(entries), cmp.Transformer("nil", orEmpty)); diff != "" {
			t.Fatalf("%s: page %d, reached going back (-want +got):\n%s", query, i+1, diff)
		}
	}
	if len(want) > 1 && links["previous"] != "" {
		t.Errorf("%s: the first page, reached going back, has a previous link %s", query, links["previous"])
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// orEmpty makes nil and empty lists compare equal.
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
