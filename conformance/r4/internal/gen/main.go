// Command gen derives the compact definitions embedded by package r4 from the official HL7
// FHIR R4 definition files. It is run by `go generate` in conformance/r4:
//
//	go run ./internal/gen -shared ../../../shared/fhir-r4 -out data
//
// The output is deterministic: the same input gives the same bytes. Entries of the input that
// are not FHIR 4.0.1 (the shared files carry a few from later versions) and target profiles
// outside the core specification are left out and listed on standard error.
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
)

const (
	fhirVersion    = "4.0.1"
	corePrefix     = "http://hl7.org/fhir/StructureDefinition/"
	systemPrefix   = "http://hl7.org/fhirpath/System."
	fhirTypeExtURL = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
	// gzipOver is the size above which a data file is stored gzipped.
	gzipOver = 3 << 20
)

func main() {
	shared := flag.String("shared", "../../../shared/fhir-r4", "directory with the HL7 FHIR R4 definition files")
	out := flag.String("out", "data", "output directory")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("gen: ")
	if err := run(*shared, *out, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

// run reads the definitions in shared and writes the data files into out, reporting what it
// left out to report.
func run(shared, out string, report io.Writer) error {
	files, err := generate(shared, report)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	// Remove stale outputs (a file may switch between plain and gzipped).
	old, _ := filepath.Glob(filepath.Join(out, "*.json*"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("remove stale %s: %w", f, err)
		}
	}
	for _, name := range sortedKeys(files) {
		if err := os.WriteFile(filepath.Join(out, name), files[name], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// generate returns the data files by name.
func generate(shared string, report io.Writer) (map[string][]byte, error) {
	types, err := readTypes(shared, report)
	if err != nil {
		return nil, err
	}
	params, err := readSearchParams(shared, report)
	if err != nil {
		return nil, err
	}
	comp, err := readCompartment(shared)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for name, v := range map[string]any{
		"types.json":               types,
		"searchparameters.json":    params,
		"compartment-patient.json": comp,
	} {
		b, err := encode(v)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", name, err)
		}
		if len(b) > gzipOver {
			if b, err = gz(b); err != nil {
				return nil, fmt.Errorf("gzip %s: %w", name, err)
			}
			name += ".gz"
		}
		files[name] = b
	}
	return files, nil
}

// encode writes one JSON value per line for arrays, so diffs of the committed data stay
// readable, and is otherwise compact.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := func(x any) error {
		b, err := json.Marshal(x)
		if err != nil {
			return err
		}
		buf.Write(b)
		return nil
	}
	switch s := v.(type) {
	case []*typeDef:
		buf.WriteString("[\n")
		for i, x := range s {
			if err := enc(x); err != nil {
				return nil, err
			}
			if i < len(s)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString("]\n")
	case []searchParam:
		buf.WriteString("[\n")
		for i, x := range s {
			if err := enc(x); err != nil {
				return nil, err
			}
			if i < len(s)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString("]\n")
	default:
		if err := enc(v); err != nil {
			return nil, err
		}
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

func gz(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	// A zero header (no name, no modification time) keeps the output deterministic.
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

// Output shapes; they mirror the exported types of package r4.
type (
	typeDef struct {
		Name     string    `json:"name"`
		Kind     string    `json:"kind"`
		Abstract bool      `json:"abstract,omitempty"`
		Base     string    `json:"base,omitempty"`
		Elements []element `json:"elements"`
	}
	element struct {
		Path             string        `json:"path"`
		Types            []elementType `json:"types,omitempty"`
		Min              int           `json:"min"`
		Max              string        `json:"max"`
		Summary          bool          `json:"summary,omitempty"`
		Modifier         bool          `json:"modifier,omitempty"`
		ContentReference string        `json:"contentReference,omitempty"`
		Binding          *binding      `json:"binding,omitempty"`
	}
	elementType struct {
		Code    string   `json:"code"`
		Targets []string `json:"targets,omitempty"`
	}
	binding struct {
		Strength string `json:"strength"`
		ValueSet string `json:"valueSet,omitempty"`
	}
	searchParam struct {
		ID          string      `json:"id"`
		URL         string      `json:"url"`
		Code        string      `json:"code"`
		Base        []string    `json:"base"`
		Type        string      `json:"type"`
		Expression  string      `json:"expression,omitempty"`
		Target      []string    `json:"target,omitempty"`
		Component   []component `json:"component,omitempty"`
		Modifier    []string    `json:"modifier,omitempty"`
		Comparator  []string    `json:"comparator,omitempty"`
		MultipleOr  *bool       `json:"multipleOr,omitempty"`
		MultipleAnd *bool       `json:"multipleAnd,omitempty"`
	}
	component struct {
		Definition string `json:"definition"`
		Expression string `json:"expression"`
	}
)

// Input shapes: only the fields used.
type (
	bundle struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	extension struct {
		URL      string `json:"url"`
		ValueURL string `json:"valueUrl"`
	}
	structureDefinition struct {
		ResourceType   string `json:"resourceType"`
		ID             string `json:"id"`
		URL            string `json:"url"`
		Version        string `json:"version"`
		Name           string `json:"name"`
		Type           string `json:"type"`
		Kind           string `json:"kind"`
		Abstract       bool   `json:"abstract"`
		Derivation     string `json:"derivation"`
		BaseDefinition string `json:"baseDefinition"`
		Snapshot       struct {
			Element []rawElement `json:"element"`
		} `json:"snapshot"`
		Differential struct {
			Element []rawElement `json:"element"`
		} `json:"differential"`
	}
	rawElement struct {
		Path string `json:"path"`
		Base struct {
			Path string `json:"path"`
		} `json:"base"`
		SliceName  string    `json:"sliceName"`
		Min        *int      `json:"min"`
		Max        string    `json:"max"`
		IsSummary  bool      `json:"isSummary"`
		IsModifier bool      `json:"isModifier"`
		ContentRef string    `json:"contentReference"`
		Type       []rawType `json:"type"`
		Binding    *struct {
			Strength string `json:"strength"`
			ValueSet string `json:"valueSet"`
		} `json:"binding"`
	}
	rawType struct {
		Code          string      `json:"code"`
		Extension     []extension `json:"extension"`
		TargetProfile []string    `json:"targetProfile"`
	}
	searchParameter struct {
		ResourceType string      `json:"resourceType"`
		ID           string      `json:"id"`
		URL          string      `json:"url"`
		Version      string      `json:"version"`
		Code         string      `json:"code"`
		Base         []string    `json:"base"`
		Type         string      `json:"type"`
		Expression   string      `json:"expression"`
		Target       []string    `json:"target"`
		Component    []component `json:"component"`
		Modifier     []string    `json:"modifier"`
		Comparator   []string    `json:"comparator"`
		MultipleOr   *bool       `json:"multipleOr"`
		MultipleAnd  *bool       `json:"multipleAnd"`
	}
	compartmentDefinition struct {
		Code     string `json:"code"`
		Version  string `json:"version"`
		Resource []struct {
			Code  string   `json:"code"`
			Param []string `json:"param"`
		} `json:"resource"`
	}
)

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// readEntries appends the resources of type resourceType in the Bundle at path to out.
func readEntries[T any](path, resourceType string, out *[]T) error {
	var b bundle
	if err := readJSON(path, &b); err != nil {
		return err
	}
	for i, e := range b.Entry {
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		if err := json.Unmarshal(e.Resource, &head); err != nil {
			return fmt.Errorf("%s: entry %d: %w", path, i, err)
		}
		if head.ResourceType != resourceType {
			continue
		}
		var v T
		if err := json.Unmarshal(e.Resource, &v); err != nil {
			return fmt.Errorf("%s: entry %d: %w", path, i, err)
		}
		*out = append(*out, v)
	}
	return nil
}

func readTypes(shared string, report io.Writer) ([]*typeDef, error) {
	var sds []structureDefinition
	for _, f := range []string{"profiles-types.json", "profiles-resources.json"} {
		if err := readEntries(filepath.Join(shared, f), "StructureDefinition", &sds); err != nil {
			return nil, fmt.Errorf("read types: %w", err)
		}
	}
	var out []*typeDef
	for _, sd := range sds {
		switch {
		case sd.Version != fhirVersion:
			fmt.Fprintf(report, "skip StructureDefinition %s: version %s is not %s\n", sd.ID, sd.Version, fhirVersion)
			continue
		case sd.Kind != "resource" && sd.Kind != "complex-type" && sd.Kind != "primitive-type":
			continue // logical models (MetadataResource)
		case sd.Derivation == "constraint":
			continue // profiles such as SimpleQuantity, not types
		case sd.URL != corePrefix+sd.Type || sd.ID != sd.Type:
			return nil, fmt.Errorf("StructureDefinition %s: unexpected url %s for type %s", sd.ID, sd.URL, sd.Type)
		}
		td := &typeDef{
			Name:     sd.Type,
			Kind:     sd.Kind,
			Abstract: sd.Abstract,
			Base:     strings.TrimPrefix(sd.BaseDefinition, corePrefix),
		}
		elements, err := repair(&sd, report)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, el := range elements {
			if el.SliceName != "" || seen[el.Path] {
				return nil, fmt.Errorf("StructureDefinition %s: sliced or repeated element %s", sd.ID, el.Path)
			}
			seen[el.Path] = true
			e := element{
				Path:             el.Path,
				Min:              *el.Min,
				Max:              el.Max,
				Summary:          el.IsSummary,
				Modifier:         el.IsModifier,
				ContentReference: el.ContentRef,
			}
			for _, t := range el.Type {
				et := elementType{Code: t.Code}
				if strings.HasPrefix(t.Code, systemPrefix) && el.Path != td.Name+".value" {
					for _, x := range t.Extension {
						if x.URL == fhirTypeExtURL {
							et.Code = x.ValueURL
						}
					}
				}
				for _, p := range t.TargetProfile {
					name, ok := strings.CutPrefix(p, corePrefix)
					if !ok {
						fmt.Fprintf(report, "skip target profile %s of %s: not a core type\n", p, el.Path)
						continue
					}
					et.Targets = append(et.Targets, name)
				}
				e.Types = append(e.Types, et)
			}
			if b := el.Binding; b != nil {
				e.Binding = &binding{Strength: b.Strength, ValueSet: b.ValueSet}
			}
			td.Elements = append(td.Elements, e)
		}
		if len(td.Elements) == 0 || td.Elements[0].Path != td.Name {
			return nil, fmt.Errorf("StructureDefinition %s: snapshot does not start with the root element", sd.ID)
		}
		out = append(out, td)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			return nil, fmt.Errorf("type %s defined twice", out[i].Name)
		}
	}
	// Targets and bases must name known types.
	known := map[string]bool{}
	for _, td := range out {
		known[td.Name] = true
	}
	for _, td := range out {
		if td.Base != "" && td.Base != "Base" && !known[td.Base] {
			return nil, fmt.Errorf("type %s: unknown base %s", td.Name, td.Base)
		}
		if td.Base == "Base" {
			td.Base = ""
		}
		for i := range td.Elements {
			for j := range td.Elements[i].Types {
				t := &td.Elements[i].Types[j]
				t.Targets = slices.DeleteFunc(t.Targets, func(n string) bool {
					if known[n] {
						return false
					}
					fmt.Fprintf(report, "skip target %s of %s: not an R4 type\n", n, td.Elements[i].Path)
					return true
				})
			}
		}
	}
	return out, nil
}

func readSearchParams(shared string, report io.Writer) ([]searchParam, error) {
	var sps []searchParameter
	if err := readEntries(filepath.Join(shared, "search-parameters.json"), "SearchParameter", &sps); err != nil {
		return nil, fmt.Errorf("read search parameters: %w", err)
	}
	var out []searchParam
	for _, p := range sps {
		if p.Version != fhirVersion {
			fmt.Fprintf(report, "skip SearchParameter %s: version %s is not %s\n", p.ID, p.Version, fhirVersion)
			continue
		}
		out = append(out, searchParam{
			ID:          p.ID,
			URL:         p.URL,
			Code:        p.Code,
			Base:        p.Base,
			Type:        p.Type,
			Expression:  p.Expression,
			Target:      sorted(p.Target),
			Component:   p.Component,
			Modifier:    p.Modifier,
			Comparator:  p.Comparator,
			MultipleOr:  p.MultipleOr,
			MultipleAnd: p.MultipleAnd,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	for i := 1; i < len(out); i++ {
		if out[i].ID == out[i-1].ID {
			return nil, fmt.Errorf("search parameter %s defined twice", out[i].ID)
		}
	}
	return out, nil
}

func readCompartment(shared string) (map[string][]string, error) {
	var cd compartmentDefinition
	if err := readJSON(filepath.Join(shared, "compartmentdefinition-patient.json"), &cd); err != nil {
		return nil, fmt.Errorf("read patient compartment: %w", err)
	}
	if cd.Code != "Patient" || cd.Version != fhirVersion {
		return nil, fmt.Errorf("read patient compartment: got code %q version %q", cd.Code, cd.Version)
	}
	out := map[string][]string{}
	for _, r := range cd.Resource {
		if len(r.Param) > 0 {
			out[r.Code] = sorted(r.Param)
		}
	}
	return out, nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
