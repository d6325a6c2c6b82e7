package conformance

import (
	"bytes"
	"encoding/json"
	"flag"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testCapabilities is a fixed description of a server, as the REST layer
// would give it (rest.TypeInteractions and rest.SystemInteractions; the REST
// package's own test checks that it serves them).
// testCapabilities is a statement with the search parameter registry, so
// the golden file also pins the searchParam, searchInclude and
// searchRevInclude lists.
var testCapabilities = func() Capabilities {
	reg, err := searchparam.Builtin()
	if err != nil {
		panic(err)
	}
	p, err := NewParser()
	if err != nil {
		panic(err)
	}
	c := baseCapabilities
	c.Search = reg
	c.SupportedProfiles = p.SupportedProfiles()
	c.ImplementationGuides = p.ImplementationGuides()
	c.Operations = []Operation{ValidateOperation}
	return c
}()

var baseCapabilities = Capabilities{
	Software:           "Digitale Ouder ouderd",
	Version:            "1.2.3",
	BaseURL:            "https://fhir.example.nl/fhir",
	Date:               time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	TypeInteractions:   []string{"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"},
	SystemInteractions: []string{"transaction", "batch", "history-system", "search-system"},
	ConditionalRead:    "full-support",
	ConditionalCreate:  true,
	ConditionalUpdate:  true,
	ConditionalDelete:  "single",
	Formats:            []string{"application/fhir+json", "application/json"},
}

// TestCapabilityStatement checks that the generated statement is valid R4,
// lists every resource type with the interactions given, and matches the
// golden file (go test -update rewrites it).
func TestCapabilityStatement(t *testing.T) {
	b, err := CapabilityStatement(testCapabilities)
	if err != nil {
		t.Fatal(err)
	}

	p, err := NewParser()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(b, "CapabilityStatement"); err != nil {
		t.Errorf("not a valid R4 CapabilityStatement: %v", err)
	}

	var cs struct {
		Rest []struct {
			Resource []struct {
				Type        string
				Interaction []struct{ Code string }
			}
		}
	}
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	if len(cs.Rest) != 1 {
		t.Fatalf("%d rest entries, want 1", len(cs.Rest))
	}
	var types []string
	for _, r := range cs.Rest[0].Resource {
		types = append(types, r.Type)
		var codes []string
		for _, i := range r.Interaction {
			codes = append(codes, i.Code)
		}
		if diff := cmp.Diff(testCapabilities.TypeInteractions, codes); diff != "" {
			t.Errorf("%s interactions (-want +got):\n%s", r.Type, diff)
		}
	}
	if diff := cmp.Diff(ResourceTypes(), types); diff != "" {
		t.Errorf("resource types (-ResourceTypes() +statement):\n%s", diff)
	}

	var pretty bytes.Buffer
	if err := json.Indent(&pretty, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	golden(t, filepath.Join("testdata", "capability.golden.json"), pretty.Bytes())
}

// golden compares got with the file at path, or rewrites the file when the
// test runs with -update.
func golden(tb testing.TB, path string, got []byte) {
	tb.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s differs (-golden +got); run go test -update if the change is intended:\n%s", path, diff)
	}
}
