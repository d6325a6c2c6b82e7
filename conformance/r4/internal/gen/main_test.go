package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// sharedDir holds the HL7 definition files, relative to this package directory.
const sharedDir = "../../../../../shared/fhir-r4"

// TestGenerateDeterministicAndFresh checks that two runs give identical bytes and that the
// committed data in ../../data is what the generator writes now.
func TestGenerateDeterministicAndFresh(t *testing.T) {
	if _, err := os.Stat(sharedDir); err != nil {
		t.Skipf("HL7 definitions not available (%v); they are expected at %s, i.e. /work/shared/fhir-r4", err, sharedDir)
	}
	first, err := generate(sharedDir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	second, err := generate(sharedDir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(second) {
		t.Fatalf("runs gave %d and %d files", len(first), len(second))
	}
	for name, b := range first {
		if !bytes.Equal(b, second[name]) {
			t.Errorf("%s differs between two runs", name)
		}
		committed, err := os.ReadFile(filepath.Join("../../data", name))
		if err != nil {
			t.Errorf("committed data: %v (run go generate in conformance/r4)", err)
			continue
		}
		if !bytes.Equal(b, committed) {
			t.Errorf("committed data/%s is stale; run go generate in conformance/r4", name)
		}
	}
	committed, _ := filepath.Glob("../../data/*.json*")
	if len(committed) != len(first) {
		t.Errorf("data/ holds %d files, the generator writes %d", len(committed), len(first))
	}
}
