package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGoBenchGolden renders the search section of the benchmark outputs in
// testdata (a run on a million resources, with a _has p95 made to miss its
// target) and compares it with the golden file.
func TestGoBenchGolden(t *testing.T) {
	t.Parallel()
	gb, err := readGoBench([]string{"testdata/gobench-ingest.txt", "testdata/gobench-search.txt"})
	if err != nil {
		t.Fatal(err)
	}
	md := gb.searchMarkdown(time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC), "1.50, 2.25, 3.00", 2)
	golden(t, "gobench.md", []byte(md))
	for _, want := range []string{
		"| token | `Observation?code=http://loinc.org\\|{code}` | 1.00 | 5.70 | 20 | met | 20.0 |",
		"| has | `Patient?_has:Observation:subject:code={code}` | 3.39 | 58.43 | 50 | **not met** | 20.0 |",
		"| plan-includes | `CarePlan?subject=Patient/{id}&_include=CarePlan:goal&_revinclude=CarePlan:part-of` | 1.52 | 3.01 | 50 | met | 2.0 + 1.0 included |",
		"on 1,001,000 generated resources",
		"| create: the API's path",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the search section lacks %q:\n%s", want, md)
		}
	}
}

// TestGoBenchCommand writes the section into a report that already holds
// hand-written text and the suite's block, twice: both are kept, and the
// second run replaces the first one's section.
func TestGoBenchCommand(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "performance.md")
	hand := "# Performance\n\nNotes by hand.\n\n" + genBegin + "\nthe suite's figures\n" + genEnd + "\n\nMore notes.\n"
	if err := os.WriteFile(out, []byte(hand), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-out", out, "testdata/gobench-ingest.txt", "testdata/gobench-search.txt"}
	for range 2 {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), append([]string{"gobench"}, args...), &stdout, &stderr); code != exitOK {
			t.Fatalf("ouderbench gobench: exit %d: %s", code, stderr.String())
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{"Notes by hand.", "the suite's figures", "More notes.", "## Search on a million resources"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, searchBegin); n != 1 {
		t.Errorf("report has %d search sections, want 1:\n%s", n, got)
	}
}

// TestGoBenchRefuses checks that the output of a failed run, or one without
// results, is not written into the report.
func TestGoBenchRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct{ name, output string }{
		{"failed", "BenchmarkSearch/token-2 300 1700846 ns/op 1.0 p50-ms 2.0 p95-ms\n--- FAIL: BenchmarkSearch/has\nFAIL\n"},
		{"panicked", "BenchmarkSearch/token-2 300 1700846 ns/op 1.0 p50-ms 2.0 p95-ms\npanic: oops\n"},
		{"empty", "PASS\nok  \tgithub.com/digitaleouder/ouder/store/postgres\t1.0s\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(dir, tc.name+".txt")
			if err := os.WriteFile(in, []byte(tc.output), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, tc.name+".md")
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), []string{"gobench", "-out", out, in}, &stdout, &stderr); code != exitFail {
				t.Errorf("exit %d, want %d (stderr %s)", code, exitFail, stderr.String())
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was written", out)
			}
		})
	}
}

// TestSearchBenchCommandsInMakefile keeps the commands the report shows in
// step with what make bench-search runs.
func TestSearchBenchCommandsInMakefile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	_, recipe, ok := strings.Cut(string(b), "\nbench-search:")
	if !ok {
		t.Fatal("the Makefile has no bench-search target")
	}
	if i := strings.Index(recipe, "\n\n"); i >= 0 {
		recipe = recipe[:i]
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(recipe), "\n") {
		l = strings.ReplaceAll(strings.TrimSpace(l), "$(GO)", "go")
		lines = append(lines, strings.ReplaceAll(l, "$$", "$"))
	}
	if strings.Join(lines, "\n") != strings.Join(searchBenchCommands, "\n") {
		t.Errorf("make bench-search runs\n%s\nbut the report says it runs\n%s", strings.Join(lines, "\n"), strings.Join(searchBenchCommands, "\n"))
	}
}
