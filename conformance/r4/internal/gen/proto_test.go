package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	annotations "github.com/google/fhir/go/proto/google/fhir/proto/annotations_go_proto"
	r4pb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestAgainstGoogleFHIRProtos checks the generated resource definitions against an
// independent source: the R4 protos of google/fhir, generated from the pristine 4.0.1
// package. Since the shared files are not pristine (see repair), this proves that the
// repaired data has, for every element of every resource, the same names, cardinality
// (repeating, required), choice types, reference targets and required value sets.
func TestAgainstGoogleFHIRProtos(t *testing.T) {
	if _, err := os.Stat(sharedDir); err != nil {
		t.Skipf("HL7 definitions not available (%v); they are expected at %s, i.e. /work/shared/fhir-r4", err, sharedDir)
	}
	types, err := readTypes(sharedDir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*typeDef{}
	for _, td := range types {
		byName[td.Name] = td
	}
	oneof := (&r4pb.ContainedResource{}).ProtoReflect().Descriptor().Oneofs().ByName("oneof_resource")
	var protoNames []string
	for i := range oneof.Fields().Len() {
		md := oneof.Fields().Get(i).Message()
		name := string(md.Name())
		protoNames = append(protoNames, name)
		td, ok := byName[name]
		if !ok {
			t.Errorf("%s: in the protos, not in the data", name)
			continue
		}
		for _, problem := range compareMessage(td, name, md) {
			t.Error(problem)
		}
	}
	var dataNames []string
	for _, td := range types {
		if td.Kind == "resource" && !td.Abstract {
			dataNames = append(dataNames, td.Name)
		}
	}
	sort.Strings(protoNames)
	if !slices.Equal(protoNames, dataNames) {
		t.Errorf("resource types differ:\nprotos: %v\ndata:   %v", protoNames, dataNames)
	}
}

// compareMessage compares the children of path with the fields of md, recursing into
// backbone elements.
func compareMessage(td *typeDef, path string, md protoreflect.MessageDescriptor) []string {
	var problems []string
	children := map[string]element{}
	for _, e := range td.Elements {
		if parentPath(e.Path) == path && e.Path != path {
			children[strings.TrimSuffix(e.Path[len(path)+1:], "[x]")] = e
		}
	}
	seen := map[string]bool{}
	fields := md.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		name := f.JSONName()
		seen[name] = true
		e, ok := children[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s.%s: in the protos, not in the data", path, name))
			continue
		}
		if rep := f.Cardinality() == protoreflect.Repeated; rep != (e.Max == "*") {
			problems = append(problems, fmt.Sprintf("%s: max %s, proto repeated %v", e.Path, e.Max, rep))
		}
		req := proto.GetExtension(f.Options(), annotations.E_ValidationRequirement).(annotations.Requirement) == annotations.Requirement_REQUIRED_BY_FHIR
		if req != (e.Min >= 1) {
			problems = append(problems, fmt.Sprintf("%s: min %d, proto required %v", e.Path, e.Min, req))
		}
		if refs := proto.GetExtension(f.Options(), annotations.E_ValidReferenceType).([]string); len(refs) > 0 {
			var targets []string
			for _, et := range e.Types {
				targets = append(targets, et.Targets...)
			}
			if !sameSet(refs, targets) && !(len(refs) == 1 && refs[0] == "Resource" && len(targets) == 0) {
				problems = append(problems, fmt.Sprintf("%s: targets %v, proto %v", e.Path, targets, refs))
			}
		}
		fm := f.Message()
		if fm == nil {
			continue
		}
		if proto.GetExtension(fm.Options(), annotations.E_IsChoiceType).(bool) {
			var protoTypes, dataTypes []string
			for j := range fm.Fields().Len() {
				protoTypes = append(protoTypes, strings.ToLower(fm.Fields().Get(j).JSONName()))
			}
			for _, et := range e.Types {
				dataTypes = append(dataTypes, strings.ToLower(et.Code))
			}
			if !e.choice() || !sameSet(protoTypes, dataTypes) {
				problems = append(problems, fmt.Sprintf("%s: choice of %v, proto %v", e.Path, dataTypes, protoTypes))
			}
			continue
		}
		if e.choice() {
			problems = append(problems, fmt.Sprintf("%s: a choice in the data, not in the protos", e.Path))
		}
		if vs := proto.GetExtension(fm.Options(), annotations.E_FhirValuesetUrl).(string); vs != "" {
			got := ""
			if e.Binding != nil && e.Binding.Strength == "required" {
				got, _, _ = strings.Cut(e.Binding.ValueSet, "|")
			}
			if got != vs {
				problems = append(problems, fmt.Sprintf("%s: required binding %q, proto %q", e.Path, got, vs))
			}
		}
		// Recurse into backbone elements, which are messages nested in the resource's.
		if e.ContentReference == "" && strings.HasPrefix(string(fm.FullName()), string(md.FullName())+".") &&
			len(e.Types) == 1 && (e.Types[0].Code == "BackboneElement" || e.Types[0].Code == "Element") {
			problems = append(problems, compareMessage(td, e.Path, fm)...)
		}
	}
	for name, e := range children {
		if !seen[name] {
			problems = append(problems, fmt.Sprintf("%s: in the data, not in the protos", e.Path))
		}
	}
	sort.Strings(problems)
	return problems
}

func (e element) choice() bool { return strings.HasSuffix(e.Path, "[x]") }

func sameSet(a, b []string) bool {
	a, b = sorted(a), sorted(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
