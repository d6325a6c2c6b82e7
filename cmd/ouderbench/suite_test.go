package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digitaleouder/ouder/store/pgcluster"
)

// TestSuite runs the whole suite, briefly, against a freshly built ouderd:
// a cluster, ouderd as a child, the raw server, every scenario, the report
// merged into a file that has notes of its own, and nothing left behind.
func TestSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ouderd and runs every scenario (about 30 s); not with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ouderd")
	build := exec.Command("go", "build", "-o", bin, "github.com/digitaleouder/ouder/cmd/ouderd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ouderd: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "docs", "performance.md")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	old := "# Performance\n\nNotes before.\n\n" + genBegin + "\nstale figures\n" + genEnd + "\n\n## Notes after\n"
	if err := os.WriteFile(out, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(ctx, []string{"suite", "-ouderd", bin, "-out", out,
		"-duration", "1s", "-warmup", "0", "-preload", "20", "-concurrency", "4"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("suite: exit %d after %v, stderr:\n%s", code, time.Since(start), stderr.String())
	}
	t.Logf("suite took %v", time.Since(start))

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	_, children := preloaded(t, 1, 20) // the children of 20 families
	if !strings.HasPrefix(doc, "# Performance\n\nNotes before.\n\n"+genBegin+"\n") ||
		!strings.HasSuffix(doc, genEnd+"\n\n## Notes after\n") || strings.Contains(doc, "stale figures") {
		t.Errorf("the hand-written text around the markers was not kept, or the old block not replaced:\n%s", doc)
	}
	for _, want := range []string{
		"make bench",
		"bin/ouderbench suite -ouderd bin/ouderd -out docs/performance.md",
		"| CPUs (`nproc`) |",
		"| PostgreSQL | 1",
		"`synchronous_commit=off`",
		"`fsync=on`",
		"The load generator runs on the same",
		"### read", "| ouderd | read |", "| raw | read |", fmt.Sprintf("%d Patients preloaded.", len(children)),
		"### create", "| ouderd | create |", "| raw | create |",
		"### crud", "| ouderd | update |", "| ouderd | delete |",
		"### search", "### ingest", "### everything",
		"### Finding where time goes", "-cpuprofile",
		"CPU time taken by other processes: ",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// The profiling advice matches the ouderd measured.
	if has := ouderdHasFlag(ctx, bin, "pprof-addr"); has != strings.Contains(doc, "`-pprof-addr 127.0.0.1:6060`") {
		t.Errorf("ouderd has -pprof-addr: %v, but the report says otherwise", has)
	}
	// Scenarios ouderd does not support yet are reported, not fatal.
	for _, sc := range []string{"search", "ingest", "everything"} {
		section := doc[strings.Index(doc, "### "+sc+"\n"):]
		section = section[:strings.Index(section[4:], "### ")+4]
		if !strings.Contains(section, "Not supported yet") && !strings.Contains(section, "| ouderd |") {
			t.Errorf("%s section has neither figures nor a reason:\n%s", sc, section)
		}
	}
	for _, ratio := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\| read \| \d+ \| \d+ \| \d+\.\d% \| >= 70% \| (met|\*\*not met\*\*)( \(disturbed\))? \|$`),
		regexp.MustCompile(`(?m)^\| create \| \d+ \| \d+ \| \d+\.\d% \| >= 60% \| (met|\*\*not met\*\*)( \(disturbed\))? \|$`),
	} {
		if !ratio.MatchString(doc) {
			t.Errorf("report lacks a ratio line matching %s", ratio)
		}
		if !ratio.MatchString(stdout.String()) {
			t.Errorf("stdout lacks a ratio line matching %s:\n%s", ratio, stdout.String())
		}
	}
	if left, _ := filepath.Glob(filepath.Join(shortTempDir(), suiteDirPrefix+"*")); len(left) > 0 {
		for _, d := range left {
			if pgcluster.PIDFromFile(filepath.Join(d, suiteOwnerFile)) == os.Getpid() {
				t.Errorf("temporary directory %s left behind", d)
			}
		}
	}
}

func TestSuiteFlags(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "ouderd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(t.TempDir(), "ouderd.txt")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	type settings struct {
		Duration, Warmup     time.Duration
		Preload, Concurrency int
	}
	tests := []struct {
		name    string
		args    []string
		want    settings
		wantErr string
	}{
		{"defaults", []string{"-ouderd", bin}, settings{20 * time.Second, 3 * time.Second, 400, 16}, ""},
		{"quick", []string{"-ouderd", bin, "-quick"}, settings{5 * time.Second, time.Second, 80, 16}, ""},
		{"quick with explicit flags", []string{"-ouderd", bin, "-quick", "-duration", "2s", "-preload", "7", "-concurrency", "3"},
			settings{2 * time.Second, time.Second, 7, 3}, ""},
		{"no ouderd", nil, settings{}, "-ouderd is required"},
		{"ouderd missing", []string{"-ouderd", bin + ".none"}, settings{}, "not an executable file"},
		{"ouderd not executable", []string{"-ouderd", notExec}, settings{}, "not an executable file"},
		{"zero duration", []string{"-ouderd", bin, "-duration", "0s"}, settings{}, "-duration"},
		{"long duration", []string{"-ouderd", bin, "-duration", "6m"}, settings{}, "-duration"},
		{"no preload", []string{"-ouderd", bin, "-preload", "0"}, settings{}, "-preload"},
		{"extra argument", []string{"-ouderd", bin, "now"}, settings{}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			o, err := parseSuiteFlags(tt.args, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := settings{o.duration, o.warmup, o.preload, o.concurrency}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
			if o.out != "docs/performance.md" || !filepath.IsAbs(o.ouderd) {
				t.Errorf("out %q, ouderd %q; want docs/performance.md and an absolute path", o.out, o.ouderd)
			}
		})
	}
	// The default run must fit well inside 15 minutes.
	o, err := parseSuiteFlags([]string{"-ouderd", bin}, &bytes.Buffer{})
	if err != nil || o.limit() > 10*time.Minute {
		t.Errorf("default limit %v (err %v); want at most 10m", o.limit(), err)
	}
}

func TestMergeReport(t *testing.T) {
	t.Parallel()
	block := genBegin + "\nnew\n" + genEnd
	tests := []struct {
		name, old, want string
	}{
		{"new file", "", newReportHead + block + "\n"},
		{"no markers", "# Mine\n\nnotes\n\n\n", "# Mine\n\nnotes\n\n" + block + "\n"},
		{"markers", "# Mine\n\n" + genBegin + "\nold\nlines\n" + genEnd + "\n\nafter\n", "# Mine\n\n" + block + "\n\nafter\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, mergeReport(tt.old, "new\n")); diff != "" {
				t.Errorf("mergeReport (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReportFileMarkers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, text string
		wantErr    bool
	}{
		{"no markers", "# notes\n", false},
		{"both", "a\n" + genBegin + "\nx\n" + genEnd + "\n", false},
		{"begin only", genBegin + "\n", true},
		{"end before begin", genEnd + "\n" + genBegin + "\n", true},
		{"two blocks", strings.Repeat(genBegin+"\n"+genEnd+"\n", 2), true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, fmt.Sprintf("perf%d.md", i))
			if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			err := writeReport(path, "gen\n")
			if (err != nil) != tt.wantErr {
				t.Fatalf("writeReport: %v; want error %v", err, tt.wantErr)
			}
			b, _ := os.ReadFile(path)
			if tt.wantErr && string(b) != tt.text {
				t.Errorf("a file with broken markers was changed:\n%s", b)
			}
			if !tt.wantErr && !strings.Contains(string(b), genBegin+"\ngen\n"+genEnd) {
				t.Errorf("report not written:\n%s", b)
			}
		})
	}
	// A missing directory is created.
	path := filepath.Join(dir, "docs", "performance.md")
	if err := writeReport(path, "gen\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "# Performance") {
		t.Errorf("new report:\n%s", b)
	}
}

func TestRatioTable(t *testing.T) {
	t.Parallel()
	result := func(ok float64) *Result { return &Result{Total: Stats{OKPerSec: ok}} }
	rep := &suiteReport{runs: []*suiteRun{
		{suiteStep: suiteStep{"read", "ouderd", false}, res: result(700)},
		{suiteStep: suiteStep{"read", "raw", false}, res: result(1000)},
		{suiteStep: suiteStep{"create", "ouderd", false}, res: result(500)},
		{suiteStep: suiteStep{"create", "raw", false}, res: result(1000)},
	}}
	want := "| scenario | ouderd req/s | raw req/s | ouderd / raw | target | |\n|---|--:|--:|--:|--:|---|\n" +
		"| read | 700 | 1000 | 70.0% | >= 70% | met |\n" +
		"| create | 500 | 1000 | 50.0% | >= 60% | **not met** |\n"
	if diff := cmp.Diff(want, rep.ratioTable()); diff != "" {
		t.Errorf("ratio table (-want +got):\n%s", diff)
	}
	rep.runs[3].others, rep.runs[3].othersOK = 0.3, true
	if got := rep.ratioTable(); !strings.Contains(got, "| create | 500 | 1000 | 50.0% | >= 60% | **not met** (disturbed) |") {
		t.Errorf("with a disturbed raw create:\n%s", got)
	}
	rep.runs = rep.runs[:3]
	if got := rep.ratioTable(); !strings.Contains(got, "| create | | | not measured | >= 60% | |") {
		t.Errorf("without a raw create:\n%s", got)
	}
}

func TestListeningAddr(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ouderd.log")
	log := `{"time":"x","level":"INFO","msg":"database ready"}` + "\n" +
		`not json` + "\n" +
		`{"time":"x","level":"INFO","msg":"listening","addr":"127.0.0.1:4321","fhir_base":"http://127.0.0.1:4321/fhir"}` + "\n"
	if got := listeningAddr(path); got != "" {
		t.Errorf("no file: %q", got)
	}
	if err := os.WriteFile(path, []byte(log[:60]), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := listeningAddr(path); got != "" {
		t.Errorf("before the line: %q", got)
	}
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := listeningAddr(path); got != "127.0.0.1:4321" {
		t.Errorf("listeningAddr = %q, want 127.0.0.1:4321", got)
	}
}
