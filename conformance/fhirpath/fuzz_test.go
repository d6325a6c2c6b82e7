package fhirpath

import (
	"testing"

	"github.com/digitaleouder/ouder/conformance/r4"
)

// FuzzCompile checks that no input makes Compile or Evaluate panic.
func FuzzCompile(f *testing.F) {
	for i, p := range r4.SearchParams() {
		if p.Expression != "" && i%7 == 0 {
			f.Add(p.Expression)
		}
	}
	for _, s := range []string{"Patient.name.where(given.startsWith('J')).family", "%resource.id", "(1 | 'a')[0]", "`div`.x", "@2020-01-01T10:00 > @2019", "{}.exists()"} {
		f.Add(s)
	}
	resources := []map[string]any{
		decode(f, patientJSON),
		decode(f, observationJSON),
		decode(f, bundleJSON),
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Compile(src)
		if err != nil {
			return
		}
		for _, r := range resources {
			_, _ = e.Evaluate(r)
		}
	})
}
