package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/mapping/family"
	"github.com/digitaleouder/ouder/store/pgtest"
)

// database returns a new migrated database's URL and a pool on it.
func database(tb testing.TB) (string, *pgxpool.Pool) {
	tb.Helper()
	url := pgtest.URL(tb)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close) // before pgtest drops the database
	return url, pool
}

// ouderctl runs the command with args and returns its output.
func ouderctl(tb testing.TB, args ...string) string {
	tb.Helper()
	var out strings.Builder
	if err := run(context.Background(), args, func(string) string { return "" }, &out); err != nil {
		tb.Fatalf("ouderctl %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// stored returns the current resources of the database: "Type/id" to
// version and body without meta.versionId and meta.lastUpdated (which the
// server decides). The Provenances the server writes with every version
// are left out, once it is checked that every version has its own.
func stored(tb testing.TB, pool *pgxpool.Pool) (versions map[string]int64, bodies map[string]map[string]any) {
	tb.Helper()
	var missing int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM resource_history h WHERE h.type <> 'Provenance' AND NOT EXISTS (
		SELECT 1 FROM resources p JOIN idx_reference x ON x.rid = p.rid
		WHERE p.type = 'Provenance' AND x.type = h.type AND x.id = h.id AND x.version = h.version::text)`).Scan(&missing); err != nil {
		tb.Fatal(err)
	}
	if missing > 0 {
		tb.Errorf("%d versions have no Provenance", missing)
	}
	rows, err := pool.Query(context.Background(), `SELECT type, id, version, body FROM resources WHERE NOT deleted AND type <> 'Provenance'`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	versions, bodies = map[string]int64{}, map[string]map[string]any{}
	for rows.Next() {
		var typ, id string
		var version int64
		var body []byte
		if err := rows.Scan(&typ, &id, &version, &body); err != nil {
			tb.Fatal(err)
		}
		versions[typ+"/"+id] = version
		bodies[typ+"/"+id] = withoutServerMeta(tb, body)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return versions, bodies
}

func withoutServerMeta(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	if meta, ok := m["meta"].(map[string]any); ok {
		delete(meta, "versionId")
		delete(meta, "lastUpdated")
	}
	return m
}

// TestDemoLoad loads the demo family twice into real PostgreSQL: the first
// load stores exactly the demo's resources, byte for byte apart from the
// server's meta; the second duplicates nothing and changes nothing but the
// versions.
func TestDemoLoad(t *testing.T) {
	url, pool := database(t)
	want, err := family.Demo(time.Date(2026, 5, 1, 12, 0, 0, 0, time.Local))
	if err != nil {
		t.Fatal(err)
	}
	wantBodies := map[string]map[string]any{}
	for _, r := range want.Resources {
		wantBodies[r.Ref()] = withoutServerMeta(t, r.JSON)
	}

	out := ouderctl(t, "-database-url", url, "demo", "load", "-date", "2026-05-01")
	if !strings.Contains(out, fmt.Sprintf(": %d resources", len(want.Resources))) {
		t.Errorf("output %q does not say what was loaded", out)
	}
	versions, bodies := stored(t, pool)
	if diff := cmp.Diff(wantBodies, bodies); diff != "" {
		t.Fatalf("stored after one load (-want +got):\n%s", diff)
	}
	ouderctl(t, "-database-url", url, "demo", "load", "-date", "2026-05-01")
	versions2, bodies2 := stored(t, pool)
	if diff := cmp.Diff(wantBodies, bodies2); diff != "" {
		t.Errorf("stored after two loads (-want +got):\n%s", diff)
	}
	for ref, v := range versions2 {
		if v != versions[ref]+1 {
			t.Errorf("%s: version %d after the second load, %d after the first", ref, v, versions[ref])
		}
	}

	// What was loaded is indexed: the child's plan with its agreements and
	// goals comes in one search (the README's example).
	l, err := newLoader(context.Background(), pool, "http://127.0.0.1:8080/fhir")
	if err != nil {
		t.Fatal(err)
	}
	got := searchIDs(t, l, "/fhir/CarePlan?subject=Patient/demo-sara&_include=CarePlan:goal&_include=CarePlan:condition")
	wantIDs := []string{
		"CarePlan/demo-kindplan-sara", "CarePlan/demo-afspraak-sara-gesprekken",
		"Goal/demo-doel-sara-1", "Goal/demo-doel-sara-2", "Goal/demo-doel-sara-3", "Condition/demo-hulpvraag-sara",
	}
	if diff := cmp.Diff(wantIDs, got, sortStrings); diff != "" {
		t.Errorf("the child's plan search (-want +got):\n%s", diff)
	}
	if got := searchIDs(t, l, "/fhir/Person?_tag="+family.TagSystem+"|"+family.TagDemo); len(got) != 2 {
		t.Errorf("demo-tagged Persons: %v, want Anna and Bram", got)
	}
}

var sortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// searchIDs runs a search through l's API and returns "Type/id" of every
// entry.
func searchIDs(tb testing.TB, l *loader, path string) []string {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	var w response
	l.handler.ServeHTTP(&w, req)
	if w.status != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", path, w.status, w.body.String())
	}
	var b struct {
		Entry []struct {
			Resource struct {
				ResourceType, ID string
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(w.body.Bytes(), &b); err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range b.Entry {
		out = append(out, e.Resource.ResourceType+"/"+e.Resource.ID)
	}
	return out
}

// TestLoaderRefusal checks that a refused Bundle stores nothing and that
// the error says where the problem is.
func TestLoaderRefusal(t *testing.T) {
	pool := pgtest.Pool(t)
	l, err := newLoader(context.Background(), pool, "http://127.0.0.1:8080/fhir")
	if err != nil {
		t.Fatal(err)
	}
	f, err := family.Generate(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]family.Resource(nil), f.Resources...)
	bad = append(bad, family.Resource{Type: "Patient", ID: "broken", JSON: []byte(`{"resourceType":"Patient","id":"broken","birthDate":"gisteren"}`)})
	_, err = l.post(context.Background(), family.Transaction(bad))
	if err == nil || !strings.Contains(err.Error(), "Bundle.entry[") || !strings.Contains(err.Error(), "HTTP 4") {
		t.Errorf("err = %v, want a refusal naming the entry", err)
	}
	if versions, _ := stored(t, pool); len(versions) != 0 {
		t.Errorf("a refused transaction stored %d resources", len(versions))
	}
}

func TestDemoBundle(t *testing.T) {
	a := ouderctl(t, "demo", "bundle", "-date", "2024-02-29")
	b := ouderctl(t, "demo", "bundle", "-date", "2024-02-29")
	if a != b || !strings.HasPrefix(a, `{"resourceType":"Bundle","type":"transaction"`) {
		t.Errorf("demo bundle is not one stable transaction Bundle:\n%.200s", a)
	}
	if !strings.Contains(a, `"birthDate":"2009-10-29"`) { // Sara, 14 on 2024-02-29 (last birthday 123 days before)
		t.Errorf("Sara's birth date is not 14 years and 123 days before the date")
	}
}

func TestGenOutput(t *testing.T) {
	a := ouderctl(t, "gen", "-families", "5", "-seed", "3")
	if b := ouderctl(t, "gen", "--families", "5", "--seed", "3"); a != b {
		t.Error("the same seed gave different output")
	}
	if c := ouderctl(t, "gen", "-families", "5", "-seed", "4"); a == c {
		t.Error("seeds 3 and 4 gave the same output")
	}
	lines := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want the shared Bundle and 5 families", len(lines))
	}
	total := 0
	for i := range 5 {
		f, err := family.Generate(3, i)
		if err != nil {
			t.Fatal(err)
		}
		total += len(f.Resources)
		if lines[i+1] != string(f.Transaction()) {
			t.Errorf("line %d is not family %d", i+1, i)
		}
	}
	// -first continues where a run stopped.
	if tail := ouderctl(t, "gen", "-families", "2", "-seed", "3", "-first", "3"); tail != lines[0]+"\n"+lines[4]+"\n"+lines[5]+"\n" {
		t.Error("-first 3 does not give families 3 and 4")
	}
	nd := ouderctl(t, "gen", "-families", "5", "-seed", "3", "-format", "ndjson")
	if n := strings.Count(nd, "\n"); n != total+1 {
		t.Errorf("ndjson has %d lines, want %d resources and the shared form", n, total+1)
	}
}

func TestGenLoad(t *testing.T) {
	url, pool := database(t)
	var progress bytes.Buffer
	old := stderr
	stderr = &progress
	t.Cleanup(func() { stderr = old })
	out := ouderctl(t, "-database-url", url, "gen", "-families", "12", "-seed", "9", "-load", "-workers", "3")
	want := 1 // the shared evaluation form
	for i := range 12 {
		f, err := family.Generate(9, i)
		if err != nil {
			t.Fatal(err)
		}
		want += len(f.Resources)
	}
	versions, _ := stored(t, pool)
	if len(versions) != want {
		t.Errorf("%d resources stored, want %d", len(versions), want)
	}
	if !strings.Contains(out, "loaded 12 families") || !strings.Contains(progress.String(), "12/12 families") {
		t.Errorf("output %q, progress %q", out, progress.String())
	}
	ouderctl(t, "-database-url", url, "gen", "-families", "12", "-seed", "9", "-load")
	if again, _ := stored(t, pool); len(again) != want {
		t.Errorf("%d resources after loading twice, want %d", len(again), want)
	}
}

func TestDemoGenErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"demo without subcommand", []string{"demo"}, "expected load or bundle"},
		{"demo unknown", []string{"demo", "show"}, "unknown subcommand"},
		{"demo load without database", []string{"demo", "load"}, "set DATABASE_URL"},
		{"demo bad date", []string{"demo", "bundle", "-date", "1-5-2026"}, "want YYYY-MM-DD"},
		{"gen without families", []string{"gen"}, "-families must be at least 1"},
		{"gen bad format", []string{"gen", "-families", "1", "-format", "xml"}, "want bundle or ndjson"},
		{"gen negative first", []string{"gen", "-families", "1", "-first", "-2"}, "must not be negative"},
		{"gen load without database", []string{"gen", "-families", "1", "-load"}, "set DATABASE_URL"},
		{"gen stray argument", []string{"gen", "-families", "1", "extra"}, "bad arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := run(context.Background(), tt.args, func(string) string { return "" }, &out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
