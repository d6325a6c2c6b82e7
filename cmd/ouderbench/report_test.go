package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixedMeasurement is a small crud run with known latencies and errors.
func fixedMeasurement() *measurement {
	rec := newRecorder()
	for i := 1; i <= 100; i++ {
		d := time.Duration(i) * time.Millisecond
		rec.record("create", d, 201)
		rec.record("read", d/2, 200)
	}
	rec.record("read", 3*time.Millisecond, 404)
	rec.record("delete", 4*time.Millisecond, 200)
	rec.record("delete", 0, transportError)
	rec.record("delete", 5*time.Millisecond, 500)
	rec.record("update", 6*time.Millisecond, 200)
	return &measurement{rec: rec, elapsed: 2 * time.Second, stopped: stopDuration}
}

func fixedResult() *Result {
	r := &Result{
		Tool: "ouderbench", Scenario: "crud", Base: "http://127.0.0.1:8080/fhir", Mode: "fhir",
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Seed: 1, Concurrency: 8, WarmupSec: 3,
	}
	r.summarise(fixedMeasurement(), (&crudScenario{}).ops())
	return r
}

func TestMarkdownGolden(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := writeMarkdown(&buf, fixedResult()); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.md", buf.Bytes())
}

func TestMarkdownIngestGolden(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	rec.record("transaction", 250*time.Millisecond, 200)
	rec.record("transaction", 350*time.Millisecond, 200)
	r := &Result{
		Tool: "ouderbench", Scenario: "ingest", Base: "http://[::1]:8080/fhir", Mode: "fhir",
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Seed: 7, Concurrency: 2, WarmupSec: 0.5, Batch: 100,
	}
	r.summarise(&measurement{rec: rec, elapsed: time.Second, stopped: stopRequests, resources: 200}, (&ingestScenario{}).ops())
	var buf bytes.Buffer
	if err := writeMarkdown(&buf, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "report_ingest.md", buf.Bytes())
}

func TestResultFigures(t *testing.T) {
	t.Parallel()
	r := fixedResult()
	if got, want := opNames(r.Operations), []string{"create", "read", "update", "delete"}; !cmp.Equal(got, want) {
		t.Errorf("operations %v, want %v", got, want)
	}
	if r.Total.Requests != 205 || r.Total.Errors != 3 {
		t.Errorf("total requests, errors = %d, %d; want 205, 3", r.Total.Requests, r.Total.Errors)
	}
	if r.Total.RequestsPerSec != 102.5 || r.Total.OKPerSec != 101 {
		t.Errorf("total req/s, ok/s = %v, %v; want 102.5, 101", r.Total.RequestsPerSec, r.Total.OKPerSec)
	}
	create := r.Operations[0]
	near := func(got, want float64) bool { return math.Abs(got-want) <= want*0.004 }
	if !near(create.Latency.P50, 50) || !near(create.Latency.P99, 99) || create.Latency.Max != 100 {
		t.Errorf("create p50, p99, max = %v, %v, %v ms; want within bucket precision of 50, 99, 100",
			create.Latency.P50, create.Latency.P99, create.Latency.Max)
	}
	wantStatus := map[string]uint64{"200": 1, "500": 1, "transport": 1}
	if diff := cmp.Diff(wantStatus, r.Operations[3].Status); diff != "" {
		t.Errorf("delete status (-want +got):\n%s", diff)
	}
	// The JSON round-trips.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, &back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}

func opNames(ss []Stats) []string {
	var names []string
	for _, s := range ss {
		names = append(names, s.Name)
	}
	return names
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s (-want +got):\n%s", path, diff)
	}
}
