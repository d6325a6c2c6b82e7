package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Result is what one run measured, written as JSON (-json) and rendered as
// a Markdown table (-md, and stdout). Warm-up requests are not in it.
type Result struct {
	Tool        string    `json:"tool"`
	Scenario    string    `json:"scenario"`
	Base        string    `json:"base"`
	Mode        string    `json:"mode"` // "fhir", or "raw" for the raw server
	Started     time.Time `json:"started"`
	Seed        int64     `json:"seed"`
	Concurrency int       `json:"concurrency"`
	Preloaded   int       `json:"preloaded_patients"`
	Batch       int       `json:"batch,omitempty"` // ingest entries per Bundle
	WarmupSec   float64   `json:"warmup_s"`
	ElapsedSec  float64   `json:"elapsed_s"` // measured time
	Stopped     string    `json:"stopped"`   // duration, requests, hard cap or interrupted
	// Resources and ResourcesPerSec count resources written by successful
	// ingest Bundles; zero for other scenarios.
	Resources       int64   `json:"resources,omitempty"`
	ResourcesPerSec float64 `json:"resources_per_second,omitempty"`
	Total           Stats   `json:"total"`
	Operations      []Stats `json:"operations"`
}

// Stats are the figures of one operation, or of all of them.
type Stats struct {
	Name     string `json:"name"`
	Requests uint64 `json:"requests"`
	// Errors counts transport errors and non-2xx responses.
	Errors         uint64  `json:"errors"`
	RequestsPerSec float64 `json:"requests_per_second"`
	OKPerSec       float64 `json:"ok_per_second"`
	// Latency covers every request that got an HTTP response, whatever its
	// status; transport errors have no latency.
	Latency Latency `json:"latency_ms"`
	// Status counts responses by HTTP status ("transport" for none).
	Status map[string]uint64 `json:"status"`
}

// Latency summarises a latency distribution, in milliseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// stats summarises s as operation name over elapsed.
func stats(name string, s *opStats, elapsed time.Duration) Stats {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	out := Stats{
		Name:     name,
		Requests: s.requests,
		Errors:   s.errors,
		Status:   map[string]uint64{},
		Latency: Latency{
			Mean: ms(s.hist.mean()), Min: ms(s.hist.min),
			P50: ms(s.hist.quantile(0.50)), P95: ms(s.hist.quantile(0.95)),
			P99: ms(s.hist.quantile(0.99)), Max: ms(s.hist.max),
		},
	}
	if sec := elapsed.Seconds(); sec > 0 {
		out.RequestsPerSec = float64(s.requests) / sec
		out.OKPerSec = float64(s.requests-s.errors) / sec
	}
	for st, c := range s.statuses {
		out.Status[statusKey(st)] += c
	}
	return out
}

// summarise fills the figures of r from m, with operations in order.
func (r *Result) summarise(m *measurement, order []string) {
	r.ElapsedSec = m.elapsed.Seconds()
	r.Stopped = m.stopped
	all := &opStats{statuses: map[int]uint64{}}
	r.Operations = []Stats{}
	for _, op := range sortedOps(m.rec, order) {
		s := m.rec.ops[op]
		r.Operations = append(r.Operations, stats(op, s, m.elapsed))
		all.hist.merge(&s.hist)
		for st, c := range s.statuses {
			all.statuses[st] += c
		}
		all.requests += s.requests
		all.errors += s.errors
	}
	r.Total = stats("all", all, m.elapsed)
	r.Resources = m.resources
	if sec := m.elapsed.Seconds(); sec > 0 && m.resources > 0 {
		r.ResourcesPerSec = float64(m.resources) / sec
	}
}

// writeJSON writes r, indented, to path.
func writeJSON(path string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// writeMarkdown renders r as a Markdown section: a heading, one line about
// the run, a table with a row per operation and a total row, then the errors
// by status.
func writeMarkdown(w io.Writer, r *Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## ouderbench %s\n\n", r.Scenario)
	fmt.Fprintf(&b, "Target `%s` (%s), %d workers, seed %d, %s warm-up, %.2f s measured (stopped: %s), started %s.",
		r.Base, r.Mode, r.Concurrency, r.Seed, seconds(r.WarmupSec), r.ElapsedSec, r.Stopped,
		r.Started.UTC().Format(time.RFC3339))
	if r.Preloaded > 0 {
		fmt.Fprintf(&b, " %d Patients preloaded.", r.Preloaded)
	}
	b.WriteString("\n\n")
	b.WriteString("| operation | requests | errors | req/s | mean ms | p50 ms | p95 ms | p99 ms | max ms |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	row := func(name string, s Stats) {
		l := s.Latency
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
			name, s.Requests, s.Errors, s.RequestsPerSec, l.Mean, l.P50, l.P95, l.P99, l.Max)
	}
	for _, s := range r.Operations {
		row(s.Name, s)
	}
	if len(r.Operations) != 1 {
		row("**all**", r.Total)
	}
	if r.Resources > 0 {
		fmt.Fprintf(&b, "\nResources written: %d (%.1f per second", r.Resources, r.ResourcesPerSec)
		if r.Batch > 0 {
			fmt.Fprintf(&b, ", %d per Bundle", r.Batch)
		}
		b.WriteString(").\n")
	}
	b.WriteString("\n")
	errs := errorsByStatus(r.Total.Status)
	if len(errs) == 0 {
		b.WriteString("No errors.\n")
	} else {
		b.WriteString("| error status | count |\n|---|--:|\n")
		for _, k := range errs {
			fmt.Fprintf(&b, "| %s | %d |\n", k, r.Total.Status[k])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// errorsByStatus returns the failing statuses of a status count, numeric
// ones in order and "transport" last.
func errorsByStatus(status map[string]uint64) []string {
	var keys []string
	for k := range status {
		if n, err := strconv.Atoi(k); err == nil && n >= 200 && n < 300 {
			continue
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, errA := strconv.Atoi(keys[i])
		c, errC := strconv.Atoi(keys[j])
		if errA != nil || errC != nil {
			return errA == nil // numbers before words
		}
		return a < c
	})
	return keys
}

// seconds formats a number of seconds compactly ("3s", "0.5s").
func seconds(s float64) string {
	return strconv.FormatFloat(s, 'f', -1, 64) + "s"
}

// writeMarkdownFile writes the Markdown report to path.
func writeMarkdownFile(path string, r *Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write Markdown report: %w", err)
	}
	if err := writeMarkdown(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write Markdown report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write Markdown report: %w", err)
	}
	return nil
}
