package postgres_test

import (
	"context"
	"net/url"
	"slices"
	"testing"

	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
)

// TestConfinedReadsNarrowed: when every Read rule is confined, searches,
// includes and history add a redundant "inside one of the confinements"
// condition for the planner to start from (access.go, narrowing). It must
// never hide what a rule admits: each kind of confinement (owners through
// compartment parameters, the owners themselves, referrers, resources
// referenced by named ones, a Person's links), with And and Not, and mixed
// with unconfined rules.
func TestConfinedReadsNarrowed(t *testing.T) {
	t.Parallel()
	s := newAccessStore(t)
	op := unrestrictedCtx()
	for _, w := range [][3]string{
		{"Patient", "a", `{"resourceType":"Patient","id":"a"}`},
		{"Patient", "b", `{"resourceType":"Patient","id":"b"}`},
		{"Observation", "oa", `{"resourceType":"Observation","id":"oa","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/a"}}`},
		{"Observation", "ob", `{"resourceType":"Observation","id":"ob","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/b"}}`},
		{"Practitioner", "d1", `{"resourceType":"Practitioner","id":"d1"}`},
		{"Practitioner", "d2", `{"resourceType":"Practitioner","id":"d2"}`},
		{"CareTeam", "ct", `{"resourceType":"CareTeam","id":"ct","subject":{"reference":"Patient/a"},"participant":[{"member":{"reference":"Practitioner/d1"}}]}`},
		{"RelatedPerson", "r1", `{"resourceType":"RelatedPerson","id":"r1","patient":{"reference":"Patient/a"}}`},
		{"Person", "u1", `{"resourceType":"Person","id":"u1","link":[{"target":{"reference":"RelatedPerson/r1"}}]}`},
		{"Communication", "m1", `{"resourceType":"Communication","id":"m1","status":"completed","sender":{"reference":"RelatedPerson/r1"}}`},
		{"Communication", "m2", `{"resourceType":"Communication","id":"m2","status":"completed","sender":{"reference":"Patient/b"}}`},
	} {
		if err := s.put(op, t, w[0], w[1], w[2]); err != nil {
			t.Fatal(err)
		}
	}
	patient := map[string]map[string][]string{"Patient": r4.PatientCompartment()}
	inA := &search.Confinement{Owners: []search.Owner{{Type: "Patient", ID: "a"}}, Params: patient}
	inB := &search.Confinement{Owners: []search.Owner{{Type: "Patient", ID: "b"}}, Params: patient}
	referrersB := &search.Confinement{Owners: []search.Owner{{Type: "Patient", ID: "b"}}, Referrers: true}
	team := &search.Confinement{ReferencedBy: []search.Owner{{Type: "CareTeam", ID: "ct"}}}
	person := &search.Confinement{Person: "u1", Params: map[string]map[string][]string{
		"RelatedPerson": {"Communication": {"sender", "recipient"}},
	}}
	for _, tc := range []struct {
		name   string
		rules  []search.Rule
		types  []string
		params url.Values
		want   []string // matches, then included, as Type/id
	}{
		{"compartment", []search.Rule{{In: inA}}, []string{"Observation"}, nil, []string{"Observation/oa"}},
		{"owner itself", []search.Rule{{In: inA}}, []string{"Patient"}, nil, []string{"Patient/a"}},
		{"every type", []search.Rule{{In: inA}}, []string{"Patient", "Observation"}, nil, []string{"Patient/a", "Observation/oa"}},
		{"referrers", []search.Rule{{Type: "Observation", In: referrersB}}, []string{"Observation"}, nil, []string{"Observation/ob"}},
		{"referrers and owner", []search.Rule{{In: referrersB}}, []string{"Patient"}, nil, []string{"Patient/b"}},
		{"referenced by", []search.Rule{{In: team}}, []string{"Practitioner"}, nil, []string{"Practitioner/d1"}},
		{"referenced by, every type", []search.Rule{{In: team}}, []string{"Practitioner", "Patient"}, nil, []string{"Patient/a", "Practitioner/d1"}},
		{"person links", []search.Rule{{In: person}}, []string{"Communication"}, nil, []string{"Communication/m1"}},
		{"person itself", []search.Rule{{In: person}}, []string{"Person"}, nil, []string{"Person/u1"}},
		{"linked owner", []search.Rule{{In: person}}, []string{"RelatedPerson"}, nil, []string{"RelatedPerson/r1"}},
		{"two confinements, not", []search.Rule{{In: inA}, {In: inB, Not: []*search.Confinement{inA}}}, []string{"Observation"}, nil, []string{"Observation/oa", "Observation/ob"}},
		{"and", []search.Rule{{In: inA, And: []*search.Confinement{inB}}}, []string{"Observation"}, nil, nil},
		{"and, same", []search.Rule{{In: inA, And: []*search.Confinement{inA}}}, []string{"Observation"}, nil, []string{"Observation/oa"}},
		{"unconfined rule of another type", []search.Rule{{Type: "Observation", In: inA}, {Type: "Patient"}}, []string{"Observation"}, nil, []string{"Observation/oa"}},
		{"unconfined rule of the type", []search.Rule{{Type: "Observation", In: inA}, {Type: "Patient"}}, []string{"Patient"}, nil, []string{"Patient/a", "Patient/b"}},
		{"include", []search.Rule{{In: inA}}, []string{"Observation"}, url.Values{"_include": {"Observation:subject"}}, []string{"Observation/oa", "Patient/a"}},
		{"include outside", []search.Rule{{Type: "Observation", In: inA}, {Type: "Patient", In: inB}}, []string{"Observation"}, url.Values{"_include": {"Observation:subject"}}, []string{"Observation/oa"}},
		{"revinclude", []search.Rule{{In: inA}}, []string{"Patient"}, url.Values{"_revinclude": {"Observation:subject"}}, []string{"Patient/a", "Observation/oa"}},
		{"chain", []search.Rule{{Type: "Observation"}, {Type: "Patient", In: inA}}, []string{"Observation"}, url.Values{"subject:Patient._id": {"a,b"}}, []string{"Observation/oa"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := search.WithAccess(context.Background(), &search.Access{Read: tc.rules})
			p := search.Parser{Registry: s.reg}
			q, err := p.Parse(tc.types, tc.params, true)
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range slices.Concat(res.Matches, res.Included) {
				got = append(got, r.Type+"/"+r.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// History of every type: the versions of what the rules admit.
	ctx := search.WithAccess(context.Background(), &search.Access{Read: []search.Rule{{In: inA}, {In: person}}})
	page, err := s.History(ctx, fhir.HistoryQuery{Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range page.Entries {
		got = append(got, e.Type+"/"+e.ID)
	}
	slices.Sort(got)
	want := []string{"CareTeam/ct", "Communication/m1", "Observation/oa", "Patient/a", "Person/u1", "RelatedPerson/r1"}
	if !slices.Equal(got, want) {
		t.Errorf("history: %v, want %v", got, want)
	}
}
