package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runBench runs "ouderbench run args..." and returns the exit code, stdout,
// stderr and the decoded -json result (nil if none was written).
func runBench(tb testing.TB, args ...string) (int, string, string, *Result) {
	tb.Helper()
	jsonPath := filepath.Join(tb.TempDir(), "out.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"run", "-json", jsonPath}, args...), &stdout, &stderr)
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return code, stdout.String(), stderr.String(), nil
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		tb.Fatalf("decode %s: %v", jsonPath, err)
	}
	return code, stdout.String(), stderr.String(), &res
}

// preloaded returns what preloading n families of seed writes: the number of
// resources (with the shared evaluation form) and the children's ids.
func preloaded(tb testing.TB, seed int64, n int) (resources int, children []string) {
	tb.Helper()
	resources = 1
	for i := range n {
		f := newGen(seed, preloadStream+uint64(i)).family()
		resources += len(f.Resources)
		children = append(children, f.Children...)
	}
	return resources, children
}

// opCounts returns requests per operation.
func opCounts(r *Result) map[string]uint64 {
	m := map[string]uint64{}
	for _, s := range r.Operations {
		m[s.Name] = s.Requests
	}
	return m
}

func TestRunRead(t *testing.T) {
	t.Parallel()
	fake, srv := newFakeFHIR(t, "secret")
	dir := t.TempDir()
	idsPath, mdPath := filepath.Join(dir, "ids.txt"), filepath.Join(dir, "out.md")
	code, stdout, stderr, res := runBench(t, "-base", srv.URL+"/fhir/", "-token", "secret", "-scenario", "read",
		"-requests", "200", "-preload", "20", "-concurrency", "4", "-warmup", "100ms",
		"-ids-out", idsPath, "-md", mdPath)
	if code != exitOK || res == nil {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	counts, _, stored, problems := fake.snapshot()
	if len(problems) > 0 {
		t.Errorf("the server refused requests: %q", problems)
	}
	if res.Total.Requests != 200 || res.Total.Errors != 0 || res.Stopped != stopRequests {
		t.Errorf("requests %d, errors %d, stopped by %q; want 200, 0, requests", res.Total.Requests, res.Total.Errors, res.Stopped)
	}
	if diff := cmp.Diff(map[string]uint64{"200": 200}, res.Total.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	wantStored, children := preloaded(t, 1, 20)
	if counts["transaction"] != 21 || stored != wantStored || res.Preloaded != len(children) {
		t.Errorf("preload: %d transactions, %d stored, %d Patients reported; want 21, %d, %d", counts["transaction"], stored, res.Preloaded, wantStored, len(children))
	}
	if counts["GET Patient"] <= 200 {
		t.Errorf("server saw %d reads; want more than the 200 measured (warm-up)", counts["GET Patient"])
	}
	if res.Total.Latency.P50 <= 0 || res.Total.Latency.P99 < res.Total.Latency.P50 || res.Total.RequestsPerSec <= 0 {
		t.Errorf("implausible figures: %+v", res.Total)
	}
	if res.Base != srv.URL+"/fhir" || res.Mode != "fhir" || res.Scenario != "read" {
		t.Errorf("base %q mode %q scenario %q", res.Base, res.Mode, res.Scenario)
	}
	md, err := os.ReadFile(mdPath)
	if err != nil || string(md) != stdout {
		t.Errorf("-md file differs from stdout (err %v):\n%s\n---\n%s", err, md, stdout)
	}
	if strings.Contains(stdout+stderr, "secret") {
		t.Error("the token was printed")
	}
	ids, err := readIDs(idsPath)
	if err != nil || !cmp.Equal(ids, children) {
		t.Errorf("-ids-out wrote %v (err %v), want the children %v", ids, err, children)
	}
}

func TestRunCRUD(t *testing.T) {
	t.Parallel()
	fake, srv := newFakeFHIR(t, "")
	code, _, stderr, res := runBench(t, "-base", srv.URL+"/fhir", "-scenario", "crud",
		"-duration", "300ms", "-warmup", "100ms", "-concurrency", "4")
	if code != exitOK || res == nil {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	counts, _, stored, problems := fake.snapshot()
	if len(problems) > 0 {
		t.Errorf("the server refused requests: %q", problems)
	}
	if res.Total.Errors != 0 || res.Stopped != stopDuration {
		t.Errorf("errors %d (%v), stopped by %q; want 0, duration", res.Total.Errors, res.Total.Status, res.Stopped)
	}
	got := opCounts(res)
	n := got["create"]
	if n == 0 || n%3 != 0 {
		t.Fatalf("%d creates; want a positive multiple of 3", n)
	}
	if diff := cmp.Diff(map[string]uint64{"create": n, "read": n, "update": n, "delete": n}, got); diff != "" {
		t.Errorf("every created resource is read, updated and deleted once (-want +got):\n%s", diff)
	}
	if names := opNames(res.Operations); !cmp.Equal(names, []string{"create", "read", "update", "delete"}) {
		t.Errorf("operations in order %v", names)
	}
	// Every iteration, warm-up ones too, ran to its end: nothing is left.
	if stored != 0 {
		t.Errorf("%d resources left on the server; want 0", stored)
	}
	for _, typ := range []string{"Patient", "RelatedPerson", "Goal"} {
		if counts["POST "+typ] == 0 || counts["POST "+typ] != counts["DELETE "+typ] || counts["PUT "+typ] != counts["GET "+typ] {
			t.Errorf("%s: counts %v", typ, counts)
		}
	}
}

func TestRunSearch(t *testing.T) {
	t.Parallel()
	fake, srv := newFakeFHIR(t, "")
	code, _, stderr, res := runBench(t, "-base", srv.URL+"/fhir", "-scenario", "search",
		"-requests", "120", "-preload", "10", "-concurrency", "2", "-warmup", "0")
	if code != exitOK || res == nil {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	counts, searches, stored, problems := fake.snapshot()
	if len(problems) > 0 {
		t.Errorf("the server refused requests: %q", problems)
	}
	if want, _ := preloaded(t, 1, 10); stored != want || counts["transaction"] != 11 {
		t.Errorf("preload stored %d resources in %d transactions, want %d in 11", stored, counts["transaction"], want)
	}
	want := []string{
		"Goal?_count,category",
		"Patient?_count,identifier",
		"Communication?_count,_sort,sent,subject",
		"Goal?_count,subject:Patient.name",
		"Patient?_count,_has:Goal:subject:category",
		"Patient?_count,name",
	}
	for _, shape := range want {
		if searches[shape] == 0 {
			t.Errorf("no %s search; searches %v", shape, searches)
		}
	}
	if len(searches) != len(want) || res.Total.Requests != 120 || res.Total.Errors != 0 {
		t.Errorf("searches %v, %d requests, %d errors; want the 6 shapes, 120, 0", searches, res.Total.Requests, res.Total.Errors)
	}
}

func TestRunEverythingAndIngest(t *testing.T) {
	t.Parallel()
	fake, srv := newFakeFHIR(t, "")
	code, _, stderr, res := runBench(t, "-base", srv.URL+"/fhir", "-scenario", "everything",
		"-requests", "20", "-preload", "5", "-warmup", "0")
	if code != exitOK || res == nil {
		t.Fatalf("everything: exit %d, stderr:\n%s", code, stderr)
	}
	_, searches, stored, problems := fake.snapshot()
	if want, _ := preloaded(t, 1, 5); stored != want || searches["CarePlan?_include,_revinclude,subject"] != 20 || res.Total.Errors != 0 {
		t.Errorf("everything: stored %d, searches %v, errors %d; want %d, 20 CarePlan includes, 0", stored, searches, res.Total.Errors, want)
	}

	code, stdout, stderr, res := runBench(t, "-base", srv.URL+"/fhir", "-scenario", "ingest",
		"-requests", "10", "-batch", "7", "-warmup", "0", "-concurrency", "2")
	if code != exitOK || res == nil {
		t.Fatalf("ingest: exit %d, stderr:\n%s", code, stderr)
	}
	counts, _, stored2, problems2 := fake.snapshot()
	// Each Bundle holds whole families, at least 7 entries: one family.
	if res.Resources < 70 || res.ResourcesPerSec <= 0 || int64(stored2-stored) != res.Resources || counts["transaction"] != 6+10 {
		t.Errorf("ingest: %d resources reported (%v/s), %d stored, %d transactions; want at least 70, as many stored, 10 more",
			res.Resources, res.ResourcesPerSec, stored2-stored, counts["transaction"])
	}
	if !strings.Contains(stdout, fmt.Sprintf("Resources written: %d", res.Resources)) {
		t.Errorf("ingest report lacks resources written:\n%s", stdout)
	}
	if problems = append(problems, problems2...); len(problems) > 0 {
		t.Errorf("the server refused requests: %q", problems)
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	_, srv := newFakeFHIR(t, "secret")
	idsPath := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(idsPath, []byte("# ids\nPatient/1\n2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := srv.URL + "/fhir"
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"remote base", []string{"-base", "http://192.0.2.1/fhir"}, exitUsage, "-allow-remote"},
		{"no base", []string{"-scenario", "read"}, exitUsage, "-base is required"},
		{"unknown scenario", []string{"-base", base, "-scenario", "soak"}, exitUsage, "unknown scenario"},
		{"bad flag", []string{"-base", base, "-concurrency", "x"}, exitUsage, "invalid value"},
		{"too long", []string{"-base", base, "-duration", "11m"}, exitUsage, "at most 10m0s"},
		{"ids-from for search", []string{"-base", base, "-scenario", "search", "-ids-from", idsPath}, exitUsage, "-ids-from is for"},
		{"ids-from for crud against FHIR", []string{"-base", base, "-scenario", "crud", "-ids-from", idsPath}, exitUsage, "for the raw server"},
		{"ids-out for crud", []string{"-base", base, "-scenario", "crud", "-ids-out", idsPath}, exitUsage, "-ids-out needs"},
		{"less than one crud iteration", []string{"-base", base, "-token", "secret", "-scenario", "crud", "-requests", "5"}, exitUsage, "less than one crud iteration"},
		{"missing ids file", []string{"-base", base, "-ids-from", idsPath + ".none"}, exitFail, "read ids"},
		{"wrong token fails the preload", []string{"-base", base, "-token", "wrong", "-preload", "3", "-requests", "5"}, exitFail, "HTTP 401"},
		{"nothing to read", []string{"-base", base, "-token", "secret", "-preload", "0"}, exitFail, "-preload must be at least 1"},
		{"search on the raw server", []string{"-base", srv.URL + "/raw", "-scenario", "search"}, exitFail, "raw server has no search"},
		{"raw read without ids", []string{"-base", base, "-raw", "-scenario", "read"}, exitFail, "needs -ids-from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr, _ := runBench(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestRunReadFromIDs(t *testing.T) {
	t.Parallel()
	fake, srv := newFakeFHIR(t, "")
	idsPath := filepath.Join(t.TempDir(), "ids.txt")
	// Ids of resources that do not exist: every read is a 404, the report
	// says so, and the exit code says the run measured nothing useful.
	if err := os.WriteFile(idsPath, []byte("Patient/x1\nx2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr, res := runBench(t, "-base", srv.URL+"/fhir", "-ids-from", idsPath, "-requests", "30", "-warmup", "0")
	if code != exitFail || res == nil || !strings.Contains(stderr, "every measured request failed (status 404)") {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1, a report, and every measured request failed", code, stderr)
	}
	counts, _, _, _ := fake.snapshot()
	if counts["POST Patient"] != 0 || res.Preloaded != 0 {
		t.Errorf("preloaded %d Patients with -ids-from", counts["POST Patient"])
	}
	if res.Total.Errors != 30 || res.Total.Status["404"] != 30 {
		t.Errorf("errors %d, status %v; want 30 404s", res.Total.Errors, res.Total.Status)
	}
	if !strings.Contains(stdout, "| 404 | 30 |") {
		t.Errorf("report lacks the 404s:\n%s", stdout)
	}
}

func TestRunCreate(t *testing.T) {
	t.Parallel()
	fake, srv := newFakeFHIR(t, "")
	code, _, stderr, res := runBench(t, "-base", srv.URL+"/fhir", "-scenario", "create",
		"-requests", "40", "-warmup", "0", "-concurrency", "3")
	if code != exitOK || res == nil {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	counts, _, stored, problems := fake.snapshot()
	if len(problems) > 0 {
		t.Errorf("the server refused requests: %q", problems)
	}
	if diff := cmp.Diff(map[string]int{"POST Patient": 40}, counts); diff != "" || stored != 40 {
		t.Errorf("%d stored; requests the server saw (-want +got):\n%s", stored, diff)
	}
	if diff := cmp.Diff(map[string]uint64{"create": 40}, opCounts(res)); diff != "" || res.Total.Errors != 0 {
		t.Errorf("%d errors; operations (-want +got):\n%s", res.Total.Errors, diff)
	}
}
