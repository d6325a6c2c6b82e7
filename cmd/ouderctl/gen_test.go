package main

import (
	"context"
	"io"
	"testing"

	"github.com/digitaleouder/ouder/mapping/family"
)

// BenchmarkGenLoad loads b.N generated families through the in-process API
// (as ouderctl gen -load does, 4 workers) into a test database (pgtest: a
// throwaway cluster without fsync, so the figures are an upper bound of a
// durable database's), and reports families/s and resources/s.
func BenchmarkGenLoad(b *testing.B) {
	_, pool := database(b)
	l, err := newLoader(context.Background(), pool, "http://127.0.0.1:8080/fhir")
	if err != nil {
		b.Fatal(err)
	}
	resources := 0
	for i := range b.N {
		f, err := family.Generate(1, i)
		if err != nil {
			b.Fatal(err)
		}
		resources += len(f.Resources)
	}
	old := stderr
	stderr = io.Discard
	defer func() { stderr = old }()
	b.ResetTimer()
	if err := genLoad(context.Background(), l, family.Generator{Seed: 1}, 0, b.N, 4, io.Discard); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "families/s")
	b.ReportMetric(float64(resources)/b.Elapsed().Seconds(), "resources/s")
}
