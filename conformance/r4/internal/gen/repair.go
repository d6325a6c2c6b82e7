package main

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// repair returns the snapshot elements of sd, corrected against its differential.
//
// The shared definition files are not pristine 4.0.1: some snapshots carry elements of later
// FHIR versions or of a vendor (DeviceDefinition.classification, ResearchStudy.label,
// Meta.project), lack R4 elements (EvidenceVariable.characteristic.definition[x]) or have
// other types and target profiles (Bundle.entry.response.outcome, MeasureReport.subject).
// For a specialization the differential states every element the type defines itself, and
// there it is the original, so:
//   - an element the type defines itself (base.path == path) that is not in the
//     differential is dropped with everything below it;
//   - an element of the differential missing from the snapshot is restored in differential
//     order, with the id, extension and modifierExtension children of a backbone element;
//   - cardinality, types, flags and bindings come from the differential, except when the
//     differential binds some element to a value set of another FHIR version
//     (publication-status|5.0.0): then it has been edited too, and the snapshot's bindings
//     are kept for that type;
//   - the few foreign elements that are in both (foreignElements) are dropped.
//
// Every change is listed on report. TestAgainstGoogleFHIRProtos checks the result against
// the R4 protos of google/fhir, which were generated from the pristine 4.0.1 package.
func repair(sd *structureDefinition, report io.Writer) ([]rawElement, error) {
	snap := sd.Snapshot.Element
	if sd.Derivation != "specialization" || len(sd.Differential.Element) == 0 {
		return snap, nil
	}
	diff := map[string]*rawElement{}
	editedBindings := false
	for i := range sd.Differential.Element {
		d := &sd.Differential.Element[i]
		diff[d.Path] = d
		if d.Binding != nil && isForeign(d.Binding.ValueSet) {
			editedBindings = true
			fmt.Fprintf(report, "keep the snapshot bindings of %s: its differential binds %s to %s\n", sd.Type, d.Path, d.Binding.ValueSet)
		}
	}
	var out []rawElement
	var dropped []string
	for _, el := range snap {
		if slices.ContainsFunc(dropped, func(p string) bool { return strings.HasPrefix(el.Path, p+".") }) {
			continue
		}
		own := el.Base.Path == el.Path && el.Path != sd.Type
		d, inDiff := diff[el.Path]
		if why, ok := foreignElements[el.Path]; ok {
			dropped = append(dropped, el.Path)
			fmt.Fprintf(report, "drop %s: %s\n", el.Path, why)
			continue
		}
		switch {
		case own && !inDiff:
			dropped = append(dropped, el.Path)
			fmt.Fprintf(report, "drop %s: defined in the snapshot only, not in the differential\n", el.Path)
			continue
		case own:
			el = merge(el, d, !editedBindings, report)
		}
		out = append(out, el)
	}

	present := map[string]bool{}
	for _, e := range out {
		present[e.Path] = true
	}
	for i, d := range sd.Differential.Element {
		if present[d.Path] || slices.ContainsFunc(dropped, func(p string) bool { return d.Path == p || strings.HasPrefix(d.Path, p+".") }) {
			continue
		}
		parent := parentPath(d.Path)
		if d.Min == nil || d.Max == "" || !present[parent] {
			return nil, fmt.Errorf("StructureDefinition %s: cannot restore %s from the differential", sd.ID, d.Path)
		}
		at := -1
		for j := i - 1; j >= 0 && at < 0; j-- {
			if q := sd.Differential.Element[j].Path; parentPath(q) == parent && present[q] {
				at = endOfSubtree(out, q)
			}
		}
		if at < 0 {
			at = slices.IndexFunc(out, func(e rawElement) bool { return e.Path == parent }) + 1
			for at < len(out) && slices.Contains([]string{parent + ".id", parent + ".extension", parent + ".modifierExtension"}, out[at].Path) {
				at++
			}
		}
		d.Base.Path = d.Path
		ins := append([]rawElement{d}, inheritedChildren(&d)...)
		out = slices.Insert(out, at, ins...)
		for _, e := range ins {
			present[e.Path] = true
		}
		fmt.Fprintf(report, "restore %s: in the differential, not in the snapshot\n", d.Path)
	}
	return out, nil
}

// foreignElements are elements of later FHIR versions that the shared files carry in both
// the snapshot and the differential, found by TestAgainstGoogleFHIRProtos.
var foreignElements = map[string]string{
	"ResearchStudy.studyDesign": "an R5 element, not in 4.0.1 (it binds to the R5 value set study-design)",
}

// versionSuffix matches a value set version that is a FHIR release number.
var versionSuffix = regexp.MustCompile(`\|\d+\.\d+\.\d+(-[a-z0-9]+)?$`)

// isForeign reports whether a value set reference names another FHIR release.
func isForeign(vs string) bool {
	return versionSuffix.MatchString(vs) && !strings.HasSuffix(vs, "|"+fhirVersion)
}

func merge(el rawElement, d *rawElement, bindings bool, report io.Writer) rawElement {
	change := func(what string, from, to any) {
		fmt.Fprintf(report, "change %s %s: %v in the snapshot, %v in the differential\n", el.Path, what, from, to)
	}
	if d.Min != nil && *d.Min != *el.Min {
		change("min", *el.Min, *d.Min)
		el.Min = d.Min
	}
	if d.Max != "" && d.Max != el.Max {
		change("max", el.Max, d.Max)
		el.Max = d.Max
	}
	if d.Type != nil && typeString(d.Type) != typeString(el.Type) {
		change("type", typeString(el.Type), typeString(d.Type))
		el.Type = d.Type
	}
	if d.IsSummary != el.IsSummary {
		change("isSummary", el.IsSummary, d.IsSummary)
		el.IsSummary = d.IsSummary
	}
	if d.IsModifier != el.IsModifier {
		change("isModifier", el.IsModifier, d.IsModifier)
		el.IsModifier = d.IsModifier
	}
	if d.ContentRef != "" && d.ContentRef != el.ContentRef {
		change("contentReference", el.ContentRef, d.ContentRef)
		el.ContentRef = d.ContentRef
	}
	if b := d.Binding; bindings && b != nil && (el.Binding == nil || *b != *el.Binding) {
		change("binding", el.Binding, *b)
		el.Binding = b
	}
	return el
}

func typeString(ts []rawType) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, t.Code+"("+strings.Join(t.TargetProfile, ",")+")")
	}
	return strings.Join(parts, "|")
}

func parentPath(p string) string {
	return p[:max(strings.LastIndexByte(p, '.'), 0)]
}

// endOfSubtree returns the index just after the element at path p and its descendants.
func endOfSubtree(els []rawElement, p string) int {
	i := slices.IndexFunc(els, func(e rawElement) bool { return e.Path == p })
	for i++; i < len(els) && strings.HasPrefix(els[i].Path, p+"."); i++ {
	}
	return i
}

// inheritedChildren returns the elements a restored backbone element inherits: id and
// extension from Element, and modifierExtension from BackboneElement.
func inheritedChildren(d *rawElement) []rawElement {
	if len(d.Type) != 1 || (d.Type[0].Code != "BackboneElement" && d.Type[0].Code != "Element") {
		return nil
	}
	zero := 0
	mk := func(name, base, max, code string, modifier bool) rawElement {
		e := rawElement{Path: d.Path + "." + name, Min: &zero, Max: max, IsModifier: modifier}
		e.Base.Path = base
		t := rawType{Code: code}
		if code == systemPrefix+"String" {
			t.Extension = []extension{{URL: fhirTypeExtURL, ValueURL: "string"}}
		}
		e.Type = []rawType{t}
		return e
	}
	out := []rawElement{
		mk("id", "Element.id", "1", systemPrefix+"String", false),
		mk("extension", "Element.extension", "*", "Extension", false),
	}
	if d.Type[0].Code == "BackboneElement" {
		out = append(out, mk("modifierExtension", "BackboneElement.modifierExtension", "*", "Extension", true))
	}
	return out
}
