package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/postgres"
)

// putAll writes resources (type, id, body) as the server itself.
func (s *accessStore) putAll(tb testing.TB, rs [][3]string) {
	tb.Helper()
	for _, r := range rs {
		if err := s.put(unrestrictedCtx(), tb, r[0], r[1], r[2]); err != nil {
			tb.Fatalf("%s/%s: %v", r[0], r[1], err)
		}
	}
}

// TestPolicyResources: the facts of a caller are the caller, what their
// Person links to, their PractitionerRoles, the teams they are in, the
// Consents naming them or those teams, the children of both and the
// children's Groups; nothing of other families, nothing deleted.
func TestPolicyResources(t *testing.T) {
	t.Parallel()
	s := newAccessStore(t)
	s.putAll(t, [][3]string{
		{"Patient", "k", `{"resourceType":"Patient","id":"k","birthDate":"2014-01-01"}`},
		{"Patient", "k2", `{"resourceType":"Patient","id":"k2"}`},
		{"Patient", "other", `{"resourceType":"Patient","id":"other"}`},
		{"RelatedPerson", "r", `{"resourceType":"RelatedPerson","id":"r","patient":{"reference":"Patient/k"}}`},
		{"Person", "p", `{"resourceType":"Person","id":"p","link":[{"target":{"reference":"RelatedPerson/r"}}]}`},
		{"Practitioner", "doc", `{"resourceType":"Practitioner","id":"doc"}`},
		{"PractitionerRole", "docrole", `{"resourceType":"PractitionerRole","id":"docrole","practitioner":{"reference":"Practitioner/doc"}}`},
		{"CareTeam", "t", `{"resourceType":"CareTeam","id":"t","subject":{"reference":"Patient/k"},"participant":[{"member":{"reference":"RelatedPerson/r"}}]}`},
		{"CareTeam", "t2", `{"resourceType":"CareTeam","id":"t2","subject":{"reference":"Patient/k2"},"participant":[{"member":{"reference":"PractitionerRole/docrole"}}]}`},
		{"CareTeam", "gone", `{"resourceType":"CareTeam","id":"gone","subject":{"reference":"Patient/other"},"participant":[{"member":{"reference":"RelatedPerson/r"}}]}`},
		{"CareTeam", "theirs", `{"resourceType":"CareTeam","id":"theirs","subject":{"reference":"Patient/other"}}`},
		{"Consent", "c", `{"resourceType":"Consent","id":"c","status":"active","scope":{"text":"x"},"category":[{"text":"x"}],"patient":{"reference":"Patient/k"},"provision":{"actor":[{"role":{"text":"x"},"reference":{"reference":"CareTeam/t"}}]}}`},
		{"Consent", "c2", `{"resourceType":"Consent","id":"c2","status":"active","scope":{"text":"x"},"category":[{"text":"x"}],"patient":{"reference":"Patient/other"},"provision":{"actor":[{"role":{"text":"x"},"reference":{"reference":"Practitioner/doc"}}]}}`},
		{"Consent", "theirs", `{"resourceType":"Consent","id":"theirs","status":"active","scope":{"text":"x"},"category":[{"text":"x"}],"patient":{"reference":"Patient/k"}}`},
		{"Group", "g", `{"resourceType":"Group","id":"g","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/k"}}]}`},
		{"Group", "g2", `{"resourceType":"Group","id":"g2","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/nobody"}}]}`},
	})
	if _, err := s.Delete(unrestrictedCtx(), "CareTeam", "gone", 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		refs []string
		want []string
	}{
		{"a parent's Person", []string{"Person/p"}, []string{"CareTeam/t", "Consent/c", "Group/g", "Patient/k", "Person/p", "RelatedPerson/r"}},
		{"a practitioner through their role", []string{"Practitioner/doc"}, []string{"CareTeam/t2", "Consent/c2", "Patient/k2", "Patient/other", "Practitioner/doc", "PractitionerRole/docrole"}},
		{"the child", []string{"Patient/k"}, []string{"Group/g", "Patient/k"}},
		{"a stranger", []string{"Person/nobody"}, nil},
		{"malformed refs", []string{"Person", "/x", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := s.PolicyResources(context.Background(), tt.refs)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				if len(r.Body) == 0 || r.VersionID == 0 {
					t.Errorf("%s/%s without body or version", r.Type, r.ID)
				}
				got = append(got, r.Type+"/"+r.ID)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPolicyChanges: every committed write of a policy type is announced
// on PolicyChannel and to OnPolicyChange (a transaction's once, after
// commit); other types, failed writes and rolled-back transactions are
// not.
func TestPolicyChanges(t *testing.T) {
	t.Parallel()
	s := newAccessStore(t)
	var local atomic.Int64
	s.OnPolicyChange = func() { local.Add(1) }
	heard := make(chan string, 100)
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.ListenPolicy(ctx, func(context.Context) error { close(listening); return nil }, func(typ string) { heard <- typ })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("ListenPolicy ended with %v", err)
		}
	})
	<-listening
	expect := func(what string, wantLocal int64, want []string) {
		t.Helper()
		if got := local.Swap(0); got != wantLocal {
			t.Errorf("%s: OnPolicyChange called %d times, want %d", what, got, wantLocal)
		}
		// A marker write: notifications arrive in commit order, so once
		// its own is heard, every earlier one has been.
		if err := s.put(unrestrictedCtx(), t, "Organization", "marker", `{"resourceType":"Organization","id":"marker","name":"`+what+`"}`); err != nil {
			t.Fatal(err)
		}
		local.Swap(0)
		got := []string{}
		for {
			select {
			case typ := <-heard:
				if typ == "Organization" {
					if !slices.Equal(got, want) {
						t.Errorf("%s: heard %v, want %v", what, got, want)
					}
					return
				}
				got = append(got, typ)
			case <-time.After(30 * time.Second):
				t.Fatalf("%s: the marker's notification never came", what)
			}
		}
	}
	expect("nothing", 0, []string{})
	if err := s.put(unrestrictedCtx(), t, "CareTeam", "t", `{"resourceType":"CareTeam","id":"t"}`); err != nil {
		t.Fatal(err)
	}
	expect("a CareTeam written", 1, []string{"CareTeam"})
	if err := s.put(unrestrictedCtx(), t, "Observation", "o", `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"}}`); err != nil {
		t.Fatal(err)
	}
	expect("an Observation written", 0, []string{})
	if _, err := s.Delete(unrestrictedCtx(), "CareTeam", "t", 0); err != nil {
		t.Fatal(err)
	}
	expect("a CareTeam deleted", 1, []string{"CareTeam"})
	rollback := errors.New("roll back")
	err := s.Transaction(unrestrictedCtx(), func(tx *postgres.Store) error {
		res, _ := s.parser.Parse([]byte(`{"resourceType":"Consent","id":"c","status":"active","scope":{"text":"x"},"category":[{"text":"x"}]}`), "Consent")
		if _, err := tx.Update(unrestrictedCtx(), fhir.Write{Type: "Consent", ID: "c", Render: res.Render, Index: res.Index}); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatal(err)
	}
	expect("a rolled-back transaction", 0, []string{})
	err = s.Transaction(unrestrictedCtx(), func(tx *postgres.Store) error {
		for _, id := range []string{"c1", "c2"} {
			res, _ := s.parser.Parse([]byte(`{"resourceType":"Consent","id":"`+id+`","status":"active","scope":{"text":"x"},"category":[{"text":"x"}]}`), "Consent")
			if _, err := tx.Update(unrestrictedCtx(), fhir.Write{Type: "Consent", ID: id, Render: res.Render, Index: res.Index}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expect("a committed transaction (two Consents, one notification)", 1, []string{"Consent"})
}

// TestPolicyConfinements: the confinements the access policy adds (items
// with their dependents, what a CareTeam names, several that must all
// hold, and ones that must not) hide what they leave out from every read
// path: totals, includes, revincludes, _has, chains and history.
func TestPolicyConfinements(t *testing.T) {
	t.Parallel()
	s := newAccessStore(t)
	obs := func(id, patient, extra string) string {
		return `{"resourceType":"Observation","id":"` + id + `","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/` + patient + `"}` + extra + `}`
	}
	s.putAll(t, [][3]string{
		{"Patient", "a", `{"resourceType":"Patient","id":"a"}`},
		{"Patient", "b", `{"resourceType":"Patient","id":"b"}`},
		{"Practitioner", "named", `{"resourceType":"Practitioner","id":"named"}`},
		{"Practitioner", "unnamed", `{"resourceType":"Practitioner","id":"unnamed"}`},
		{"CareTeam", "ta", `{"resourceType":"CareTeam","id":"ta","subject":{"reference":"Patient/a"},"participant":[{"member":{"reference":"Practitioner/named"}}]}`},
		{"Observation", "item", obs("item", "a", "")},
		{"Observation", "dep", obs("dep", "a", `,"derivedFrom":[{"reference":"Observation/item"}],"performer":[{"reference":"Practitioner/unnamed"}]`)},
		{"Observation", "other", obs("other", "a", `,"performer":[{"reference":"Practitioner/named"}]`)},
		{"Observation", "denied", obs("denied", "a", `,"derivedFrom":[{"reference":"Observation/item"}]`)},
		{"Observation", "foreign", obs("foreign", "b", `,"derivedFrom":[{"reference":"Observation/item"}]`)},
	})
	inA := &search.Confinement{Owners: []search.Owner{{Type: "Patient", ID: "a"}}, Params: map[string]map[string][]string{"Patient": r4.PatientCompartment()},
		ReferencedBy: []search.Owner{{Type: "CareTeam", ID: "ta"}}}
	item := &search.Confinement{Owners: []search.Owner{{Type: "Observation", ID: "item"}}, Referrers: true}
	denied := &search.Confinement{Owners: []search.Owner{{Type: "Observation", ID: "denied"}}}
	access := &search.Access{Read: []search.Rule{
		{Type: "Observation", In: inA, And: []*search.Confinement{item}, Not: []*search.Confinement{denied}},
		{Type: "Practitioner", In: inA},
		{Type: "Patient", In: inA},
	}}
	ctx := search.WithAccess(context.Background(), access)
	find := func(typ, query string) (matches, included []string, total int) {
		t.Helper()
		v, err := url.ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		v.Set("_total", "accurate")
		p := search.Parser{Registry: s.reg}
		q, err := p.Parse([]string{typ}, v, true)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Search(ctx, q)
		if err != nil {
			t.Fatalf("%s?%s: %v", typ, query, err)
		}
		for _, m := range res.Matches {
			matches = append(matches, m.Type+"/"+m.ID)
		}
		for _, m := range res.Included {
			included = append(included, m.Type+"/"+m.ID)
		}
		slices.Sort(matches)
		slices.Sort(included)
		return matches, included, int(res.Total)
	}
	tests := []struct {
		typ, query     string
		want, included []string
	}{
		{"Observation", "", []string{"Observation/dep", "Observation/item"}, nil},
		{"Practitioner", "", []string{"Practitioner/named"}, nil},
		{"Observation", "_include=Observation:performer", []string{"Observation/dep", "Observation/item"}, nil},
		{"Practitioner", "_revinclude=Observation:performer", []string{"Practitioner/named"}, nil},
		{"Observation", "_revinclude=Observation:derived-from", []string{"Observation/dep", "Observation/item"}, nil},
		{"Patient", "_has:Observation:subject:_id=other,denied,foreign", nil, nil},
		{"Patient", "_has:Observation:subject:_id=dep", []string{"Patient/a"}, nil},
		{"Observation", "derived-from:Observation._id=item", []string{"Observation/dep"}, nil},
		{"Observation", "performer:Practitioner._id=unnamed", nil, nil},
	}
	for _, tt := range tests {
		got, included, total := find(tt.typ, tt.query)
		if !slices.Equal(got, tt.want) || total != len(tt.want) || !slices.Equal(included, tt.included) {
			t.Errorf("%s?%s: %v (total %d) including %v, want %v including %v", tt.typ, tt.query, got, total, included, tt.want, tt.included)
		}
	}
	for _, id := range []string{"other", "denied", "foreign"} {
		if _, err := s.Read(ctx, "Observation", id); !fhir.IsKind(err, fhir.NotFound) {
			t.Errorf("read Observation/%s: %v, want NotFound", id, err)
		}
		if _, err := s.History(ctx, fhir.HistoryQuery{Type: "Observation", ID: id, Count: 10}); !fhir.IsKind(err, fhir.NotFound) {
			t.Errorf("history of Observation/%s: %v, want NotFound", id, err)
		}
	}
	page, err := s.History(ctx, fhir.HistoryQuery{Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	var hist []string
	for _, e := range page.Entries {
		hist = append(hist, e.Type+"/"+e.ID)
	}
	slices.Sort(hist)
	if want := []string{"Observation/dep", "Observation/item", "Patient/a", "Practitioner/named"}; !slices.Equal(hist, want) {
		t.Errorf("system history: %v, want %v", hist, want)
	}
}
