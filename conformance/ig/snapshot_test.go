package ig

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/digitaleouder/ouder/conformance/ig/internal/sd"
	"github.com/digitaleouder/ouder/mapping"
)

// TestSnapshots checks every profile's snapshot: it keeps every element of
// its base in order, holds every element of the differential, and says
// what the differential says.
func TestSnapshots(t *testing.T) {
	t.Parallel()
	defs, err := baseDefinitions()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range profiles() {
		d, err := p.structureDefinition()
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]sd.Element{}
		for _, e := range d.Snapshot.Element {
			if _, dup := byID[e.ID]; dup {
				t.Errorf("%s: element %s twice", p.id(), e.ID)
			}
			byID[e.ID] = e
			if e.Path != pathOf(e.ID) {
				t.Errorf("%s: element %s has path %s", p.id(), e.ID, e.Path)
			}
			if e.Min == nil || e.Max == "" || e.Definition == "" {
				t.Errorf("%s: element %s lacks min, max or definition (sdf-3)", p.id(), e.ID)
			}
		}
		i := 0
		for _, b := range defs[p.typ].Elements {
			for i < len(d.Snapshot.Element) && d.Snapshot.Element[i].ID != b.ID {
				i++
			}
			if i == len(d.Snapshot.Element) {
				t.Errorf("%s: base element %s missing or out of order", p.id(), b.ID)
				break
			}
		}
		diffIDs := map[string]bool{}
		for _, e := range d.Differential.Element {
			if diffIDs[e.ID] {
				t.Errorf("%s: differential element %s twice", p.id(), e.ID)
			}
			diffIDs[e.ID] = true
			got, ok := byID[e.ID]
			switch {
			case !ok:
				t.Errorf("%s: differential element %s not in the snapshot", p.id(), e.ID)
			case e.Min != nil && *got.Min != *e.Min, e.Max != "" && got.Max != e.Max, e.FixedCode != got.FixedCode:
				t.Errorf("%s: %s is %d..%s %q in the snapshot, the differential says %v..%s %q", p.id(), e.ID, *got.Min, got.Max, got.FixedCode, e.Min, e.Max, e.FixedCode)
			}
		}
	}
}

// TestSnapshotRefusesLoosening checks that a differential can only
// constrain its base.
func TestSnapshotRefusesLoosening(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		diff sd.Element
		want string
	}{
		{"max above the base", card("Patient.birthDate", 0, "*"), "max * is above"},
		{"min below the base", card("Patient.link.other", 0, "1"), "min 0 is below"},
		{"a type the base does not allow", typed("Patient.deceased[x]", 0, "1", "string"), "type string is not allowed"},
		{"an unknown element", card("Patient.nickname", 0, "1"), "unknown element"},
		{"a slice of an unknown element", card("Patient.nickname:x", 0, "1"), "slice Patient.nickname:x of an unknown element"},
		{"below an element of several types", card("Patient.deceased[x].value", 0, "1"), "has 2 types"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := snapshot("Patient", []sd.Element{tc.diff})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("snapshot: %v, want an error with %q", err, tc.want)
			}
		})
	}
	snap, err := snapshot("Patient", []sd.Element{one("Patient.name.family"), slicedByPattern("Patient.identifier", 0, ""), card("Patient.identifier:bsn", 1, "1"), one("Patient.identifier:bsn.system")})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range snap {
		if strings.HasPrefix(e.ID, "Patient.identifier") || strings.HasPrefix(e.ID, "Patient.name.f") {
			ids = append(ids, e.ID)
		}
	}
	got := strings.Join(ids, " ")
	if !strings.HasPrefix(got, "Patient.identifier Patient.identifier:bsn Patient.identifier:bsn.id") ||
		!strings.Contains(got, "Patient.identifier:bsn.system") || !strings.Contains(got, "Patient.name.family") {
		t.Errorf("expanded snapshot ids: %s", got)
	}
}

// TestTerminology checks that every code system of mapping is published
// complete with its value set, and that every value set a profile binds to
// exists.
func TestTerminology(t *testing.T) {
	t.Parallel()
	rs, err := Resources()
	if err != nil {
		t.Fatal(err)
	}
	byURL := map[string]Resource{}
	for _, r := range rs {
		byURL[r.URL] = r
	}
	for _, cs := range mapping.CodeSystems() {
		r, ok := byURL[cs.URL]
		if !ok || r.Type != "CodeSystem" {
			t.Errorf("no CodeSystem %s", cs.URL)
			continue
		}
		var got codeSystem
		if err := json.Unmarshal(r.JSON, &got); err != nil {
			t.Fatal(err)
		}
		if got.Count != len(cs.Concepts) || len(got.Concept) != len(cs.Concepts) || got.Content != "complete" {
			t.Errorf("%s: %d concepts (count %d, %s), mapping has %d", cs.URL, len(got.Concept), got.Count, got.Content, len(cs.Concepts))
		}
		for i, c := range cs.Concepts {
			if i < len(got.Concept) && (got.Concept[i].Code != c.Code || got.Concept[i].Display != c.Display || got.Concept[i].Designation[0].Value != c.DisplayEN) {
				t.Errorf("%s: concept %d is %+v, mapping has %+v", cs.URL, i, got.Concept[i], c)
			}
		}
		if _, ok := byURL[got.ValueSet]; !ok {
			t.Errorf("%s: its value set %s is not published", cs.URL, got.ValueSet)
		}
	}
	for _, p := range profiles() {
		for _, e := range p.diff {
			if e.Binding != nil {
				if r, ok := byURL[e.Binding.ValueSet]; !ok || r.Type != "ValueSet" {
					t.Errorf("%s binds %s to %s, which is not published", p.id(), e.ID, e.Binding.ValueSet)
				}
			}
		}
	}
}
