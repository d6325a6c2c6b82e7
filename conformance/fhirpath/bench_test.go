package fhirpath

import (
	"testing"

	"github.com/digitaleouder/ouder/conformance/r4"
)

// BenchmarkSearchParams evaluates every search parameter of a resource type (with an
// expression) on one HL7 example: the work of indexing one resource at write time.
func BenchmarkSearchParams(b *testing.B) {
	benchmarks := []struct {
		name, resourceType, file string
	}{
		{"Patient", "Patient", "Patient-example.json"},
		{"Observation", "Observation", "Observation-example.json"},
		{"ObservationBloodPressure", "Observation", "Observation-blood-pressure.json"},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			res := exampleResource(b, bm.file)
			var exprs []*Expr
			for _, p := range r4.SearchParamsFor(bm.resourceType) {
				if p.Expression == "" {
					continue
				}
				exprs = append(exprs, MustCompile(p.Expression))
			}
			b.ReportAllocs()
			b.ResetTimer()
			values := 0
			for b.Loop() {
				values = 0
				for _, e := range exprs {
					out, err := e.Evaluate(res)
					if err != nil {
						b.Fatal(err)
					}
					values += len(out)
				}
			}
			b.ReportMetric(float64(len(exprs)), "params")
			b.ReportMetric(float64(values), "values")
		})
	}
}

// BenchmarkCompile compiles every R4 search parameter expression.
func BenchmarkCompile(b *testing.B) {
	var srcs []string
	for _, p := range r4.SearchParams() {
		if p.Expression != "" {
			srcs = append(srcs, p.Expression)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range srcs {
			if _, err := Compile(s); err != nil {
				b.Fatal(err)
			}
		}
	}
}
