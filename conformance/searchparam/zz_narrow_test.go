package searchparam

import (
	"strings"
	"testing"

	"github.com/digitaleouder/ouder/conformance/fhirpath"
)

func splitUnion(s string) []string {
	var parts []string
	depth, start := 0, 0
	inStr := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr:
			if c == '\\' { i++ } else if c == '\'' { inStr = false }
		case c == '\'':
			inStr = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			parts = append(parts, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(parts, strings.TrimSpace(s[start:]))
}

func narrow(typ, expr string) string {
	var keep []string
	for _, p := range splitUnion(expr) {
		q := strings.TrimLeft(p, "(")
		if strings.HasPrefix(q, typ+".") || strings.HasPrefix(q, "Resource.") || strings.HasPrefix(q, "DomainResource.") || strings.HasPrefix(q, typ+" ") || q == typ || !startsWithUpper(q) {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, " | ")
}

func startsWithUpper(s string) bool { return s != "" && s[0] >= 'A' && s[0] <= 'Z' }

func BenchmarkZZNarrow(b *testing.B) {
	r := builtinRegistry(b)
	for _, f := range []string{"Patient-example.json", "Observation-example.json"} {
		res := exampleResource(b, f)
		typ := res["resourceType"].(string)
		var full, nar []*fhirpath.Expr
		for _, p := range r.Params(typ) {
			if p.Expr == nil { continue }
			full = append(full, p.Expr)
			nar = append(nar, fhirpath.MustCompile(narrow(typ, p.Expr.String())))
		}
		for i, set := range [][]*fhirpath.Expr{full, nar} {
			b.Run(f+[]string{"/full", "/narrow"}[i], func(b *testing.B) {
				for b.Loop() {
					for _, e := range set {
						if _, err := e.Evaluate(res); err != nil { b.Fatal(err) }
					}
				}
			})
		}
	}
}

func TestZZNarrowMin(t *testing.T) {
	r := builtinRegistry(t)
	for _, f := range []string{"Patient-example.json", "Observation-example.json", "Observation-blood-pressure.json"} {
		res := exampleResource(t, f)
		typ := res["resourceType"].(string)
		var full, nar []*fhirpath.Expr
		for _, p := range r.Params(typ) {
			if p.Expr == nil { continue }
			full = append(full, p.Expr)
			nar = append(nar, fhirpath.MustCompile(narrow(typ, p.Expr.String())))
		}
		mins := []float64{1e18, 1e18, 1e18}
		for range 15 {
			for i, set := range [][]*fhirpath.Expr{full, nar} {
				res := testing.Benchmark(func(b *testing.B) {
					for range b.N {
						for _, e := range set { e.Evaluate(res) }
					}
				})
				mins[i] = min(mins[i], float64(res.NsPerOp()))
			}
			res := testing.Benchmark(func(b *testing.B) {
				for range b.N { r.Extract(typ, res) }
			})
			mins[2] = min(mins[2], float64(res.NsPerOp()))
		}
		t.Logf("%s: full %.0f ns, narrowed %.0f ns, Extract %.0f ns", f, mins[0], mins[1], mins[2])
	}
}
