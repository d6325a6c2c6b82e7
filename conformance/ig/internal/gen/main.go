// Command gen writes the base definitions the implementation guide builds
// its profiles on: the snapshot elements of the R4 resource types the guide
// profiles and of every complex datatype (to expand an element's children
// when a profile constrains them), taken from the official HL7 definition
// files. It is run by `go generate` in conformance/ig:
//
//	go run ./internal/gen -shared ../../../shared/fhir-r4 -out data/base.json.gz
//
// The shared files are not pristine 4.0.1 (see conformance/r4), so every
// element is checked against the repaired R4 model of package r4: elements
// that R4 does not define are left out, and cardinality, types and bindings
// that differ from it are taken from it; each change is listed on standard
// error. Mappings, comments, requirements, aliases, examples and the XPath of
// constraints are left out to keep the binary small; they are informative.
// The output is deterministic.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/digitaleouder/ouder/conformance/ig/internal/sd"
	"github.com/digitaleouder/ouder/conformance/r4"
)

// Resources are the resource types the guide profiles.
var Resources = []string{
	"Appointment", "Binary", "CarePlan", "CareTeam", "Communication", "Condition", "Consent", "Contract",
	"DocumentReference", "Flag", "Goal", "Group", "Invoice", "Observation", "Patient", "Person",
	"Practitioner", "PractitionerRole", "Questionnaire", "QuestionnaireResponse", "RelatedPerson", "Task",
}

const (
	corePrefix     = "http://hl7.org/fhir/StructureDefinition/"
	systemPrefix   = "http://hl7.org/fhirpath/System."
	fhirTypeExtURL = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
)

func main() {
	shared := flag.String("shared", "../../../shared/fhir-r4", "directory with the HL7 FHIR R4 definition files")
	out := flag.String("out", "data/base.json.gz", "output file")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("gen: ")
	b, err := generate(*shared, os.Stderr)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		log.Fatal(err)
	}
}

type bundle struct {
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

type head struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	URL          string `json:"url"`
	Kind         string `json:"kind"`
	Abstract     bool   `json:"abstract"`
	Type         string `json:"type"`
	Derivation   string `json:"derivation"`
	Snapshot     struct {
		Element []json.RawMessage `json:"element"`
	} `json:"snapshot"`
}

// dropped are the ElementDefinition members left out (informative only).
var dropped = []string{"mapping", "comment", "requirements", "alias", "example", "extension"}

// generate returns the gzipped JSON of the base definitions, one per line,
// sorted by type.
func generate(shared string, report io.Writer) ([]byte, error) {
	var defs []sd.Definition
	for _, file := range []string{"profiles-resources.json", "profiles-types.json"} {
		b, err := os.ReadFile(filepath.Join(shared, file))
		if err != nil {
			return nil, fmt.Errorf("read definitions: %w", err)
		}
		var bd bundle
		if err := json.Unmarshal(b, &bd); err != nil {
			return nil, fmt.Errorf("decode %s: %w", file, err)
		}
		for _, e := range bd.Entry {
			var rt struct {
				ResourceType string `json:"resourceType"`
			}
			if err := json.Unmarshal(e.Resource, &rt); err != nil {
				return nil, fmt.Errorf("decode %s: %w", file, err)
			}
			if rt.ResourceType != "StructureDefinition" {
				continue
			}
			var h head
			if err := json.Unmarshal(e.Resource, &h); err != nil {
				return nil, fmt.Errorf("decode %s: %w", file, err)
			}
			if h.Derivation != "specialization" {
				continue
			}
			wanted := h.Kind == r4.KindComplexType || (h.Kind == r4.KindResource && slices.Contains(Resources, h.Type))
			if !wanted {
				continue
			}
			td, ok := r4.Type(h.Type)
			if !ok {
				fmt.Fprintf(report, "skip %s: not an R4 type\n", h.Type)
				continue
			}
			d, err := definition(h, td, report)
			if err != nil {
				return nil, err
			}
			defs = append(defs, d)
		}
	}
	for _, r := range Resources {
		if !slices.ContainsFunc(defs, func(d sd.Definition) bool { return d.Type == r }) {
			return nil, fmt.Errorf("no definition of %s", r)
		}
	}
	sort.Slice(defs, func(i, j int) bool { return defs[i].Type < defs[j].Type })
	var buf bytes.Buffer
	for _, d := range defs {
		b, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", d.Type, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return gz(buf.Bytes())
}

// definition reads the snapshot of h, checked against the R4 model td.
func definition(h head, td *r4.TypeDef, report io.Writer) (sd.Definition, error) {
	d := sd.Definition{Type: h.Type, URL: h.URL, Kind: h.Kind}
	seen := map[string]bool{}
	for _, raw := range h.Snapshot.Element {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return d, fmt.Errorf("%s: %w", h.Type, err)
		}
		for _, k := range dropped {
			delete(m, k)
		}
		if err := trimConstraints(m); err != nil {
			return d, fmt.Errorf("%s: %w", h.Type, err)
		}
		trimmed, _ := json.Marshal(m)
		var el sd.Element
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&el); err != nil {
			return d, fmt.Errorf("%s: element %s: %w", h.Type, m["id"], err)
		}
		for i := range el.Constraint {
			el.Constraint[i].Source = strings.TrimSpace(el.Constraint[i].Source)
		}
		if el.Binding != nil {
			el.Binding = &sd.Binding{Strength: el.Binding.Strength, Description: el.Binding.Description, ValueSet: el.Binding.ValueSet}
		}
		want, ok := td.Element(el.Path)
		if !ok {
			fmt.Fprintf(report, "drop %s: not an R4 element\n", el.Path)
			continue
		}
		repair(&el, want, report)
		seen[el.Path] = true
		d.Elements = append(d.Elements, el)
	}
	for _, e := range td.Elements {
		if !seen[e.Path] {
			return d, fmt.Errorf("%s: R4 element %s is missing from the snapshot", h.Type, e.Path)
		}
	}
	return d, nil
}

// trimConstraints removes the extensions of the binding of the element m,
// and the XPath, extensions and requirements of its constraints.
func trimConstraints(m map[string]json.RawMessage) error {
	if raw, ok := m["binding"]; ok {
		var b map[string]json.RawMessage
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("binding: %w", err)
		}
		delete(b, "extension")
		m["binding"], _ = json.Marshal(b)
	}
	raw, ok := m["constraint"]
	if !ok {
		return nil
	}
	var cs []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cs); err != nil {
		return fmt.Errorf("constraint: %w", err)
	}
	for _, c := range cs {
		delete(c, "xpath")
		delete(c, "extension")
		delete(c, "requirements")
	}
	b, err := json.Marshal(cs)
	if err != nil {
		return err
	}
	m["constraint"] = b
	return nil
}

// repair makes el agree with the R4 model in cardinality, types and binding.
func repair(el *sd.Element, want r4.Element, report io.Writer) {
	if el.Min == nil || *el.Min != want.Min {
		fmt.Fprintf(report, "change %s min to %d\n", el.Path, want.Min)
		m := want.Min
		el.Min = &m
	}
	if el.Max != want.Max {
		fmt.Fprintf(report, "change %s max from %s to %s\n", el.Path, el.Max, want.Max)
		el.Max = want.Max
	}
	if want.ContentReference == "" && !sameTypes(el.Type, want.Types) {
		fmt.Fprintf(report, "change %s types to those of R4\n", el.Path)
		var ts []sd.Type
		for _, t := range want.Types {
			st := sd.Type{Code: t.Code}
			for _, target := range t.Targets {
				st.TargetProfile = append(st.TargetProfile, corePrefix+target)
			}
			ts = append(ts, st)
		}
		el.Type = ts
	}
	switch {
	case want.Binding == nil && el.Binding != nil:
		fmt.Fprintf(report, "drop the binding of %s\n", el.Path)
		el.Binding = nil
	case want.Binding != nil && (el.Binding == nil || el.Binding.Strength != want.Binding.Strength || el.Binding.ValueSet != want.Binding.ValueSet):
		fmt.Fprintf(report, "change the binding of %s to that of R4\n", el.Path)
		b := &sd.Binding{Strength: want.Binding.Strength, ValueSet: want.Binding.ValueSet}
		if el.Binding != nil {
			b.Description = el.Binding.Description
		}
		el.Binding = b
	}
}

// sameTypes reports whether ts names the types and targets of want, with
// FHIRPath system types named by their FHIR type as r4 does.
func sameTypes(ts []sd.Type, want []r4.ElementType) bool {
	if len(ts) != len(want) {
		return false
	}
	for i, t := range ts {
		code := t.Code
		if strings.HasPrefix(code, systemPrefix) {
			for _, x := range t.Extension {
				if x.URL == fhirTypeExtURL {
					code = x.ValueURL
				}
			}
		}
		if code != want[i].Code && t.Code != want[i].Code {
			return false
		}
		var targets []string
		for _, p := range t.TargetProfile {
			targets = append(targets, strings.TrimPrefix(p, corePrefix))
		}
		if !slices.Equal(targets, want[i].Targets) {
			return false
		}
	}
	return true
}

func gz(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
