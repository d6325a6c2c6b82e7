package fhirpath

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
)

// examplesDir holds the HL7 R4 examples (/work/shared/fhir-r4/examples), relative to this
// package directory; FHIR_R4_EXAMPLES overrides it.
const examplesDir = "../../../shared/fhir-r4/examples"

// example is one HL7 example resource: a file, or a resource inside a Bundle of one.
type example struct {
	name     string // file name, with #entry[i] for Bundle entries
	resource map[string]any
}

var loadExamples = sync.OnceValues(func() (map[string][]example, error) {
	dir := examplesDir
	if d := os.Getenv("FHIR_R4_EXAMPLES"); d != "" {
		dir = d
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no examples in %s: the HL7 FHIR R4 examples are expected at /work/shared/fhir-r4/examples (or set FHIR_R4_EXAMPLES)", dir)
	}
	sort.Strings(files)
	byType := map[string][]example{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var r map[string]any
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		name := filepath.Base(f)
		rt, _ := r["resourceType"].(string)
		byType[rt] = append(byType[rt], example{name, r})
		// Resources inside Bundles are examples too.
		if rt == "Bundle" {
			entries, _ := r["entry"].([]any)
			for i, e := range entries {
				em, _ := e.(map[string]any)
				res, ok := em["resource"].(map[string]any)
				if !ok {
					continue
				}
				ert, _ := res["resourceType"].(string)
				byType[ert] = append(byType[ert], example{fmt.Sprintf("%s#entry[%d]", name, i), res})
			}
		}
	}
	return byType, nil
})

func examples(tb testing.TB) map[string][]example {
	tb.Helper()
	ex, err := loadExamples()
	if err != nil {
		tb.Fatal(err)
	}
	return ex
}

// exampleResource returns the example in the named file.
func exampleResource(tb testing.TB, file string) map[string]any {
	tb.Helper()
	for _, list := range examples(tb) {
		for _, e := range list {
			if e.name == file {
				return e.resource
			}
		}
	}
	tb.Fatalf("no example %s", file)
	return nil
}
