package dataset

import (
	"bytes"
	"testing"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/searchparam"
)

// TestChartsAreValid parses charts with the server's parser: every resource
// is valid R4 and is indexed.
func TestChartsAreValid(t *testing.T) {
	parser, err := conformance.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	registry, err := searchparam.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	parser.Registry = func() *searchparam.Registry { return registry }
	pop := Population{Seed: 7, Patients: 50}
	entries := map[string]int{}
	for i := range pop.Patients {
		for _, r := range pop.Chart(i) {
			res, err := parser.Parse(r.JSON, r.Type)
			if err != nil {
				t.Fatalf("%s/%s: %v\n%s", r.Type, r.ID, err, r.JSON)
			}
			if res.ID != r.ID {
				t.Errorf("%s/%s: parsed id %q", r.Type, r.ID, res.ID)
			}
			entries[r.Type] += res.Index.Len()
		}
	}
	for typ, n := range entries {
		t.Logf("%s: %.1f index entries per resource", typ, float64(n)/float64(pop.Patients))
	}
}

func TestDeterministic(t *testing.T) {
	a, b := Population{Seed: 3, Patients: 20}, Population{Seed: 3, Patients: 1000}
	for _, i := range []int{0, 7, 19} {
		ca, cb := a.Chart(i), b.Chart(i)
		if len(ca) != PerPatient || len(cb) != PerPatient {
			t.Fatalf("chart %d has %d and %d resources, want %d", i, len(ca), len(cb), PerPatient)
		}
		for k := range ca {
			if ca[k].ID != cb[k].ID || !bytes.Equal(ca[k].JSON, cb[k].JSON) {
				t.Errorf("chart %d resource %d differs between populations of one seed", i, k)
			}
		}
		if ca[0].ID != a.PatientID(i) {
			t.Errorf("chart %d starts with %s, want Patient %s", i, ca[0].ID, a.PatientID(i))
		}
		if !bytes.Contains(ca[0].JSON, []byte(`"family":"`+a.Family(i)+`"`)) {
			t.Errorf("Family(%d) = %q is not in %s", i, a.Family(i), ca[0].JSON)
		}
	}
	if c := (Population{Seed: 4, Patients: 20}).Chart(7); bytes.Equal(c[0].JSON, a.Chart(7)[0].JSON) {
		t.Error("seeds 3 and 4 give the same Patient")
	}
}

func TestUniqueIDs(t *testing.T) {
	pop := Population{Seed: 1, Patients: 20000}
	ids, bsns := map[string]bool{}, map[string]bool{}
	for i := range pop.Patients {
		for _, id := range []string{pop.PatientID(i), pop.GoalID(i, 0), pop.CarePlanID(i, 0), pop.CarePlanID(i, 1), pop.ObservationID(i, 0), pop.ObservationID(i, 5)} {
			if ids[id] {
				t.Fatalf("id %s made twice", id)
			}
			ids[id] = true
		}
		bsn := pop.Identifier(i)
		if bsns[bsn] || len(bsn) != 9 {
			t.Fatalf("BSN %q of patient %d repeated or not nine digits", bsn, i)
		}
		bsns[bsn] = true
	}
}
