package searchparam

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/fhir"
)

// examplesDir holds the HL7 R4 examples, relative to this package directory.
const examplesDir = "../../../shared/fhir-r4/examples"

// example is one HL7 example resource: a file, or a resource inside a Bundle
// of one.
type example struct {
	name     string // file name, with #entry[i] for Bundle entries
	resource map[string]any
}

var loadExamples = sync.OnceValues(func() ([]example, error) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no examples in %s: the HL7 FHIR R4 examples are expected at /work/shared/fhir-r4/examples", examplesDir)
	}
	var out []example
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		r, err := decode(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		name := filepath.Base(f)
		out = append(out, example{name, r})
		if r["resourceType"] == "Bundle" {
			entries, _ := r["entry"].([]any)
			for i, e := range entries {
				em, _ := e.(map[string]any)
				if res, ok := em["resource"].(map[string]any); ok {
					out = append(out, example{fmt.Sprintf("%s#entry[%d]", name, i), res})
				}
			}
		}
	}
	return out, nil
})

func decode(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var r map[string]any
	err := dec.Decode(&r)
	return r, err
}

func examples(tb testing.TB) []example {
	tb.Helper()
	ex, err := loadExamples()
	if err != nil {
		tb.Fatal(err)
	}
	return ex
}

func exampleResource(tb testing.TB, file string) map[string]any {
	tb.Helper()
	for _, e := range examples(tb) {
		if e.name == file {
			return e.resource
		}
	}
	tb.Fatalf("no example %s", file)
	return nil
}

func builtinRegistry(tb testing.TB) *Registry {
	tb.Helper()
	r, err := Builtin()
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// skipKey is a kind of value that extraction leaves out: the kind it was read
// as, its FHIR type ("Resource" for any resource) and the reason beyond the
// type (see the why constants).
type skipKey struct{ kind, typ, why string }

func (k skipKey) String() string {
	if k.why == whyType {
		return k.kind + " / " + k.typ
	}
	return fmt.Sprintf("%s / %s (%s)", k.kind, k.typ, k.why)
}

// allowedSkips lists what extraction may leave out of the HL7 examples, with
// the reason. TestExtractExamples fails on any other value left out, and on
// an entry here that no example needs any more.
var allowedSkips = map[skipKey]string{
	{Date, "string", whyType}: "free text in a date choice (CarePlan.activity.detail.scheduledString, " +
		"Immunization.occurrenceString \"January 2012\") has no date to index",
	{Date, "Timing", whyEmpty}: "a Timing with only a repeat pattern (frequency, period, boundsDuration) or a code " +
		"and no event or boundsPeriod covers no range that can be computed without expanding the schedule",
	{Quantity, "Range", whyType}: "context-quantity and context-type-quantity find useContext.valueRange too; " +
		"R4 does not define how a quantity search matches a Range, so only Quantity values are indexed",
	{Quantity, "SampledData", whyType}: "the value-quantity parameters also find valueSampledData (a waveform), " +
		"which has no single value to compare",
	{Reference, "Attachment", whyType}: "Consent source-reference finds Consent.sourceAttachment too: a document, " +
		"not a reference to a resource",
	{Reference, "Resource", whyType}: "Bundle composition and message give the first entry's resource itself; " +
		"searching them is chaining into that resource's content, not matching a reference",
	{Reference, "Reference", whyContained}: "a reference to a contained resource (#id) is not searchable: contained " +
		"resources have no identity of their own on the server (R4 search 3.1.1.4.9)",
	{Reference, "canonical", whyContained}: "a canonical to a contained artifact (#id, as PlanDefinition and " +
		"ActivityDefinition use for their actions) names nothing outside the resource",
	{Reference, "Reference", whyEmpty}: "a Reference with only display (or type) names nothing a reference or " +
		":identifier search can match",
	{Token, "ContactPoint", whyEmpty}: "a ContactPoint without value (only use or system) has no token",
	{Token, "Identifier", whyEmpty}:   "an Identifier without system or value (only use) has no token",
	{Token, "Reference", whyType}: "Group characteristic-value takes its value component from Group.characteristic.value, " +
		"which can be a Reference, although the token parameter it names (Group-value) only covers CodeableConcept and " +
		"boolean: such a characteristic cannot match the composite",
}

// TestExtractExamples extracts the index of every HL7 R4 example (and every
// resource in an example Bundle), checks the entries, and checks that every
// value left out is allowed by allowedSkips.
func TestExtractExamples(t *testing.T) {
	t.Parallel()
	r := builtinRegistry(t)
	ex := examples(t)
	type skipStat struct {
		count   int
		example string // the first parameter and example that needed it
	}
	skips := map[skipKey]*skipStat{}
	var total fhir.Index
	files := 0
	for _, e := range ex {
		if !strings.Contains(e.name, "#") {
			files++
		}
		typ, _ := e.resource["resourceType"].(string)
		idx, err := r.extract(typ, e.resource, func(p *Param, kind, typ, why string) {
			if r4.IsResourceType(typ) {
				typ = "Resource"
			}
			k := skipKey{kind, typ, why}
			s := skips[k]
			if s == nil {
				s = &skipStat{example: fmt.Sprintf("%s %s in %s", p.Type, p.Code, e.name)}
				skips[k] = s
			}
			s.count++
		})
		if err != nil {
			t.Errorf("%s: %v", e.name, err)
			continue
		}
		if again, _ := r.Extract(typ, e.resource); !reflect.DeepEqual(idx, again) {
			t.Errorf("%s: two extractions differ", e.name)
		}
		checkIndex(t, e.name, idx)
		total.Strings = append(total.Strings, idx.Strings...)
		total.Tokens = append(total.Tokens, idx.Tokens...)
		total.References = append(total.References, idx.References...)
		total.Dates = append(total.Dates, idx.Dates...)
		total.Numbers = append(total.Numbers, idx.Numbers...)
		total.Quantities = append(total.Quantities, idx.Quantities...)
		total.URIs = append(total.URIs, idx.URIs...)
	}
	if files != 712 {
		t.Errorf("%d example files, want the 712 of R4", files)
	}
	t.Logf("%d resources (%d files): %d entries: %d strings, %d tokens, %d references, %d dates, %d numbers, %d quantities, %d uris",
		len(ex), files, total.Len(), len(total.Strings), len(total.Tokens), len(total.References), len(total.Dates),
		len(total.Numbers), len(total.Quantities), len(total.URIs))

	var b strings.Builder
	fmt.Fprintf(&b, "values left out, by (kind / type):\n")
	keys := slices.SortedFunc(maps.Keys(skips), func(a, b skipKey) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		s := skips[k]
		status := "allowed"
		if _, ok := allowedSkips[k]; !ok {
			status = "NOT ALLOWED"
			t.Errorf("%s is left out %d times (first: %s); convert it or add it to allowedSkips with the reason", k, s.count, s.example)
		}
		fmt.Fprintf(&b, "  %-40s %5d  %-11s e.g. %s\n", k, s.count, status, s.example)
	}
	t.Log(b.String())
	for k, reason := range allowedSkips {
		if reason == "" {
			t.Errorf("allowedSkips: %s has no reason", k)
		}
		if skips[k] == nil {
			t.Errorf("allowedSkips: no example leaves out %s any more: remove the entry", k)
		}
	}
}

// checkIndex checks what must hold for every entry.
func checkIndex(t *testing.T, name string, idx fhir.Index) {
	t.Helper()
	for _, e := range idx.Strings {
		if e.Param == 0 || e.Norm == "" || e.Norm != Fold(e.Exact) {
			t.Errorf("%s: bad string entry %+v", name, e)
		}
	}
	for _, e := range idx.Tokens {
		if e.Param == 0 || e.System == "" && e.Code == "" && e.Text == "" {
			t.Errorf("%s: bad token entry %+v", name, e)
		}
	}
	for _, e := range idx.References {
		if e.Param == 0 || (e.Type == "") != (e.ID == "") || e.Type == "" && e.URL == "" {
			t.Errorf("%s: bad reference entry %+v", name, e)
		}
	}
	for _, e := range idx.Dates {
		// A Period may end before it starts in invalid data; the examples have none.
		if e.Param == 0 || !e.Lo.Before(e.Hi) || e.Lo.Location() != fhir.MinTime.Location() {
			t.Errorf("%s: bad date entry %+v", name, e)
		}
	}
	for _, e := range idx.Numbers {
		if e.Param == 0 || !ordered(e.Lo, e.Value, e.Hi) {
			t.Errorf("%s: bad number entry %+v", name, e)
		}
	}
	for _, e := range idx.Quantities {
		if e.Param == 0 || !ordered(e.Lo, e.Value, e.Hi) {
			t.Errorf("%s: bad quantity entry %+v", name, e)
		}
	}
	for _, e := range idx.URIs {
		if e.Param == 0 || e.Value == "" {
			t.Errorf("%s: bad uri entry %+v", name, e)
		}
	}
	seen := map[any]bool{}
	for _, list := range []any{idx.Strings, idx.Tokens, idx.References, idx.Dates, idx.Numbers, idx.Quantities, idx.URIs} {
		v := reflect.ValueOf(list)
		for i := range v.Len() {
			e := v.Index(i).Interface()
			if seen[e] {
				t.Errorf("%s: duplicate entry %+v", name, e)
			}
			seen[e] = true
		}
	}
}

// ordered reports whether the decimals lo < v < hi.
func ordered(lo, v, hi string) bool {
	var l, x, h big.Rat
	if _, ok := l.SetString(lo); !ok {
		return false
	}
	if _, ok := x.SetString(v); !ok {
		return false
	}
	if _, ok := h.SetString(hi); !ok {
		return false
	}
	return l.Cmp(&x) < 0 && x.Cmp(&h) < 0
}

// BenchmarkExtract extracts the index of one HL7 example: the work the store
// does on every write, on top of decoding the JSON.
func BenchmarkExtract(b *testing.B) {
	r := builtinRegistry(b)
	for _, file := range []string{
		"Patient-example.json",
		"Observation-example.json",
		"Observation-blood-pressure.json",
		"Encounter-example.json",
		"MedicationRequest-medrx0302.json",
		"Questionnaire-3141.json",
	} {
		b.Run(strings.TrimSuffix(file, ".json"), func(b *testing.B) {
			res := exampleResource(b, file)
			typ := res["resourceType"].(string)
			b.ReportAllocs()
			var idx fhir.Index
			for b.Loop() {
				var err error
				if idx, err = r.Extract(typ, res); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(idx.Len()), "entries")
		})
	}
}
