package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/perf/benchfmt"
)

// "ouderbench gobench" turns the output of the store's Go benchmarks (the
// search shapes of BenchmarkSearch on a million resources, and
// BenchmarkIngest) into the search section of the performance report,
// between markers of its own, so that make bench records them next to the
// load scenarios.

// Markers of the search section in the report.
const (
	searchBegin = "<!-- generated:search:begin -->"
	searchEnd   = "<!-- generated:search:end -->"
)

// searchBenchCommands are the commands of make bench-search, as the report
// shows them (TestSearchBenchCommandsInMakefile keeps them in step with the
// Makefile).
var searchBenchCommands = []string{
	"go build -o bin/ ./cmd/ouderbench",
	"go test ./store/postgres -run '^$' -bench BenchmarkIngest -benchtime 20000x -timeout 30m > bin/bench-ingest.txt",
	"OUDER_BENCH_RESOURCES=1000000 go test ./store/postgres -run '^$' -bench BenchmarkSearch -benchtime 1000x -timeout 60m > bin/bench-search.txt",
	"bin/ouderbench gobench -out docs/performance.md bin/bench-ingest.txt bin/bench-search.txt",
}

// searchShapeDoc describes a shape of BenchmarkSearch for the report: the
// request (values drawn at random for each search) and the p95 target of
// the search issue in ms (0: none).
type searchShapeDoc struct {
	name, request string
	target        float64
}

// searchShapeDocs are the shapes in report order.
var searchShapeDocs = []searchShapeDoc{
	{"token", "Observation?code=http://loinc.org\\|{code}", 20},
	{"identifier", "Patient?identifier={bsn system}\\|{bsn}", 20},
	{"reference", "Observation?subject=Patient/{id}", 20},
	{"date-range", "Observation?date=ge{month}&date=lt{next month}", 20},
	{"string-prefix", "Patient?name={3 letters}", 20},
	{"reference-date-sort", "Observation?subject=Patient/{id}&date=ge{year}&_sort=-date", 20},
	{"chained", "Observation?subject:Patient.identifier={bsn system}\\|{bsn}", 50},
	{"has", "Patient?_has:Observation:subject:code={code}", 50},
	{"revinclude", "CarePlan?_id={id}&_revinclude=CarePlan:part-of", 0},
	{"plan-includes", "CarePlan?subject=Patient/{id}&_include=CarePlan:goal&_revinclude=CarePlan:part-of", 50},
}

// ingestDocs describe the sub-benchmarks of BenchmarkIngest.
var ingestDocs = []struct{ name, about string }{
	{"create", "the API's path: parse and validate (conformance.Parser), then Store.Create, 16 writers"},
	{"copy", "the bulk loader that seeds the search benchmark (COPY, the same rows as Store.Create)"},
}

// goBench is what the benchmark output holds: each result by its name
// (BenchmarkSearch/token) without the GOMAXPROCS suffix, and the
// configuration lines (cpu, pkg).
type goBench struct {
	results map[string]*benchfmt.Result
	config  map[string]string
}

// readGoBench reads the output of go test -bench from the named files. It
// refuses output of a failed run, and output without a benchmark result.
func readGoBench(paths []string) (*goBench, error) {
	gb := &goBench{results: map[string]*benchfmt.Result{}, config: map[string]string{}}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("gobench: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "panic:") {
				return nil, fmt.Errorf("gobench: %s is the output of a failed run (%q)", path, line)
			}
		}
		r := benchfmt.NewReader(bytes.NewReader(b), path)
		for r.Scan() {
			switch rec := r.Result().(type) {
			case *benchfmt.Result:
				// benchfmt leaves out the "Benchmark" of the name.
				full := "Benchmark" + strings.TrimSuffix(rec.Name.String(), gomaxprocsSuffix(rec.Name))
				gb.results[full] = rec.Clone()
				for _, c := range rec.Config {
					if c.File {
						gb.config[c.Key] = string(c.Value)
					}
				}
			}
			// Other lines (*benchfmt.SyntaxError) are the benchmarks'
			// own messages, such as the seeding progress.
		}
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("gobench: read %s: %w", path, err)
		}
	}
	if len(gb.results) == 0 {
		return nil, fmt.Errorf("gobench: no benchmark results in %s", strings.Join(paths, ", "))
	}
	return gb, nil
}

// gomaxprocsSuffix returns the "-N" that ends a benchmark name, or "".
func gomaxprocsSuffix(n benchfmt.Name) string {
	_, parts := n.Parts()
	if len(parts) > 0 && strings.HasPrefix(string(parts[len(parts)-1]), "-") {
		return string(parts[len(parts)-1])
	}
	return ""
}

// value returns the metric unit (as written, e.g. "p95-ms") of result name.
func (gb *goBench) value(name, unit string) (float64, bool) {
	r, ok := gb.results[name]
	if !ok {
		return 0, false
	}
	// Values are kept in the unit written when benchfmt has no tidier one
	// (OrigUnit is then empty).
	for _, v := range r.Values {
		switch {
		case v.OrigUnit == unit:
			return v.OrigValue, true
		case v.OrigUnit == "" && v.Unit == unit:
			return v.Value, true
		}
	}
	return 0, false
}

// searchMarkdown writes the search section. loadavg is /proc/loadavg's
// first three fields ("" when unknown), cpus the machine's CPUs.
func (gb *goBench) searchMarkdown(written time.Time, loadavg string, cpus int) string {
	var b strings.Builder
	b.WriteString("## Search on a million resources\n\n")
	b.WriteString("Generated by `make bench-search` (the last step of `make bench`), which runs\n\n```sh\n")
	b.WriteString(strings.Join(searchBenchCommands, "\n"))
	b.WriteString("\n```\n\n")
	fmt.Fprintf(&b, "This run: report written %s", written.UTC().Format(time.RFC3339))
	if n, ok := gb.value("BenchmarkSearch/token", "resources"); ok {
		fmt.Fprintf(&b, ", on %s generated resources (`store/postgres/internal/dataset`: patient charts of a Patient, 6 Observations over 12 LOINC codes from common to rare, a Goal, a CarePlan and its sub-plan; every search parameter indexed)", thousands(n))
	}
	if cpu := gb.config["cpu"]; cpu != "" {
		fmt.Fprintf(&b, ", CPU %s", strings.TrimSpace(cpu))
	}
	fmt.Fprintf(&b, ", %d CPUs", cpus)
	if loadavg != "" {
		fmt.Fprintf(&b, "; load average (1, 5, 15 minutes) when it was written: %s", loadavg)
	}
	b.WriteString(".\n\n")
	b.WriteString("Each figure times `Store.Search` (compile, run, includes; not HTTP or Bundle rendering), one search at a time, 1000 searches per shape with values drawn uniformly (a random patient, code, month), pages of 20, on the test cluster's settings (`shared_buffers` 128 MB). Other work on the machine shows in p95 first: see the load average.\n\n")
	b.WriteString("| shape | request | p50 ms | p95 ms | target (p95) | | matches per page |\n|---|---|--:|--:|--:|---|--:|\n")
	seen := map[string]bool{}
	row := func(name, request string, target float64) {
		full := "BenchmarkSearch/" + name
		p50, ok50 := gb.value(full, "p50-ms")
		p95, ok95 := gb.value(full, "p95-ms")
		if !ok50 || !ok95 {
			fmt.Fprintf(&b, "| %s | `%s` | | | %s | not measured | |\n", name, request, targetCell(target))
			return
		}
		verdict := ""
		switch {
		case target > 0 && p95 < target:
			verdict = "met"
		case target > 0:
			verdict = "**not met**"
		}
		matches, _ := gb.value(full, "matches/op")
		cell := fmt.Sprintf("%.1f", matches)
		if inc, ok := gb.value(full, "included/op"); ok {
			cell += fmt.Sprintf(" + %.1f included", inc)
		}
		fmt.Fprintf(&b, "| %s | `%s` | %.2f | %.2f | %s | %s | %s |\n", name, request, p50, p95, targetCell(target), verdict, cell)
	}
	for _, sh := range searchShapeDocs {
		seen["BenchmarkSearch/"+sh.name] = true
		row(sh.name, sh.request, sh.target)
	}
	for _, name := range slices.Sorted(maps.Keys(gb.results)) {
		if strings.HasPrefix(name, "BenchmarkSearch/") && !seen[name] {
			row(strings.TrimPrefix(name, "BenchmarkSearch/"), "", 0)
		}
	}

	b.WriteString("\n### Indexing cost\n\nResources written per second with every built-in search parameter indexed (`BenchmarkIngest`, on an empty database):\n\n")
	b.WriteString("| path | resources/s | index rows per resource |\n|---|--:|--:|\n")
	for _, in := range ingestDocs {
		full := "BenchmarkIngest/" + in.name
		rate, ok := gb.value(full, "resources/s")
		if !ok {
			fmt.Fprintf(&b, "| %s: %s | not measured | |\n", in.name, in.about)
			continue
		}
		rows, _ := gb.value(full, "index-rows/resource")
		fmt.Fprintf(&b, "| %s: %s | %s | %.1f |\n", in.name, in.about, thousands(rate), rows)
	}
	return b.String()
}

func targetCell(target float64) string {
	if target <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f", target)
}

// thousands formats v rounded to an integer with commas: 1,000,000.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// loadAverage returns the 1, 5 and 15 minute load averages of Linux's
// /proc/loadavg, or "" elsewhere.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], ", ")
}

// gobenchCmd is "ouderbench gobench".
func gobenchCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ouderbench gobench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "docs/performance.md", "Markdown file to write; text outside its search markers is kept")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() == 0 {
		return usagef("gobench: give the files with the output of go test -bench (BenchmarkSearch, BenchmarkIngest)")
	}
	if _, err := readBlockFile(*out, searchBegin, searchEnd); err != nil {
		return err
	}
	gb, err := readGoBench(fs.Args())
	if err != nil {
		return err
	}
	if err := writeBlockFile(*out, searchBegin, searchEnd, gb.searchMarkdown(time.Now(), loadAverage(), runtime.NumCPU())); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Wrote the search figures into %s.\n", *out)
	return nil
}
