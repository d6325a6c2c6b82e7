package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"testing"
)

// sharedDir holds the HL7 definition files, relative to this package
// directory (/work/shared/fhir-r4 next to the repository).
const sharedDir = "../../../../../shared/fhir-r4"

// TestGenerateFresh checks that the committed base definitions are what the
// generator writes now, and that two runs agree.
func TestGenerateFresh(t *testing.T) {
	if _, err := os.Stat(sharedDir); err != nil {
		t.Fatalf("the HL7 definitions are expected at %s (../shared/fhir-r4 next to the repository): %v", sharedDir, err)
	}
	first, err := generate(sharedDir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	second, err := generate(sharedDir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Error("two runs of the generator differ")
	}
	committed, err := os.ReadFile("../../data/base.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gunzip(t, first), gunzip(t, committed)) {
		t.Error("data/base.json.gz is stale: run go generate in conformance/ig")
	}
}

func gunzip(tb testing.TB, b []byte) []byte {
	tb.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
