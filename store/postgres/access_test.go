package postgres_test

import (
	"context"
	"testing"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
)

// accessStore is a store on a fresh database and a way to write to it.
type accessStore struct {
	*postgres.Store
	parser *conformance.Parser
	reg    *searchparam.Registry
}

func newAccessStore(tb testing.TB) *accessStore {
	tb.Helper()
	parser, err := conformance.NewParser()
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := searchparam.Builtin()
	if err != nil {
		tb.Fatal(err)
	}
	parser.Registry = func() *searchparam.Registry { return reg }
	return &accessStore{Store: postgres.New(pgtest.Pool(tb)), parser: parser, reg: reg}
}

// put writes body as typ/id under ctx's access.
func (s *accessStore) put(ctx context.Context, tb testing.TB, typ, id, body string) error {
	tb.Helper()
	res, err := s.parser.Parse([]byte(body), typ)
	if err != nil {
		tb.Fatalf("parse %s: %v", body, err)
	}
	_, err = s.Update(ctx, fhir.Write{Type: typ, ID: id, Render: res.Render, Index: res.Index})
	return err
}

// ids searches typ under ctx and returns the ids of the matches.
func (s *accessStore) ids(ctx context.Context, tb testing.TB, typ string) []string {
	tb.Helper()
	p := search.Parser{Registry: s.reg}
	q, err := p.Parse([]string{typ}, nil, true)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := s.Search(ctx, q)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, m := range res.Matches {
		out = append(out, m.ID)
	}
	return out
}

// counts are the rows of every table a write touches.
func (s *accessStore) counts(tb testing.TB) [3]int {
	tb.Helper()
	var c [3]int
	err := s.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM resources), (SELECT count(*) FROM resource_history),
		(SELECT count(*) FROM idx_reference) + (SELECT count(*) FROM idx_token)`).Scan(&c[0], &c[1], &c[2])
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func unrestrictedCtx() context.Context {
	return search.WithAccess(context.Background(), search.Unrestricted())
}

// TestNoAccessNoData: a context without an Access sees nothing and writes
// nothing, on every path of the store.
func TestNoAccessNoData(t *testing.T) {
	t.Parallel()
	s := newAccessStore(t)
	if err := s.put(unrestrictedCtx(), t, "Patient", "p1", `{"resourceType":"Patient","id":"p1"}`); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Read(ctx, "Patient", "p1"); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("Read: %v, want NotFound", err)
	}
	if _, err := s.VRead(ctx, "Patient", "p1", 1); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("VRead: %v, want NotFound", err)
	}
	if _, err := s.History(ctx, fhir.HistoryQuery{Type: "Patient", ID: "p1", Count: 10}); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("History: %v, want NotFound", err)
	}
	if page, err := s.History(ctx, fhir.HistoryQuery{Count: 10}); err != nil || len(page.Entries) != 0 {
		t.Errorf("system history: %d entries, %v; want none", len(page.Entries), err)
	}
	if got := s.ids(ctx, t, "Patient"); len(got) != 0 {
		t.Errorf("Search: %v, want nothing", got)
	}
	before := s.counts(t)
	if err := s.put(ctx, t, "Patient", "p1", `{"resourceType":"Patient","id":"p1","active":true}`); !fhir.IsKind(err, fhir.Forbidden) {
		t.Errorf("Update: %v, want Forbidden", err)
	}
	res, _ := s.parser.Parse([]byte(`{"resourceType":"Patient"}`), "Patient")
	if _, err := s.Create(ctx, fhir.Write{Type: "Patient", Render: res.Render, Index: res.Index}); !fhir.IsKind(err, fhir.Forbidden) {
		t.Errorf("Create: %v, want Forbidden", err)
	}
	if _, err := s.Delete(ctx, "Patient", "p1", 0); !fhir.IsKind(err, fhir.Forbidden) {
		t.Errorf("Delete: %v, want Forbidden", err)
	}
	if after := s.counts(t); after != before {
		t.Errorf("rows %v after refused writes, want %v", after, before)
	}
	if got := s.ids(unrestrictedCtx(), t, "Patient"); len(got) != 1 {
		t.Errorf("unrestricted search: %v", got)
	}
}

// TestPersonLinks: a user whose fhirUser is a Person sees the compartments
// of what the Person links to, as the Person is now: a link removed hides
// them at once.
func TestPersonLinks(t *testing.T) {
	t.Parallel()
	s := newAccessStore(t)
	op := unrestrictedCtx()
	for _, w := range [][3]string{
		{"Patient", "c1", `{"resourceType":"Patient","id":"c1"}`},
		{"RelatedPerson", "r1", `{"resourceType":"RelatedPerson","id":"r1","patient":{"reference":"Patient/c1"}}`},
		{"Person", "u1", `{"resourceType":"Person","id":"u1","link":[{"target":{"reference":"RelatedPerson/r1"}}]}`},
		{"Communication", "m1", `{"resourceType":"Communication","id":"m1","status":"completed","sender":{"reference":"RelatedPerson/r1"}}`},
		{"Communication", "m2", `{"resourceType":"Communication","id":"m2","status":"completed","sender":{"reference":"Patient/c1"}}`},
	} {
		if err := s.put(op, t, w[0], w[1], w[2]); err != nil {
			t.Fatal(err)
		}
	}
	user := search.WithAccess(context.Background(), &search.Access{Read: []search.Rule{{
		In: &search.Confinement{Person: "u1", Params: map[string]map[string][]string{
			"RelatedPerson": {"Communication": {"sender", "recipient"}},
			"Patient":       r4.PatientCompartment(),
		}},
	}}})
	if got := s.ids(user, t, "Communication"); len(got) != 1 || got[0] != "m1" {
		t.Errorf("linked: %v, want [m1]", got)
	}
	for _, typ := range []string{"Person", "RelatedPerson"} {
		if got := s.ids(user, t, typ); len(got) != 1 {
			t.Errorf("%s: %v, want the user's own", typ, got)
		}
	}
	if err := s.put(op, t, "Person", "u1", `{"resourceType":"Person","id":"u1"}`); err != nil {
		t.Fatal(err)
	}
	if got := s.ids(user, t, "Communication"); len(got) != 0 {
		t.Errorf("after the link was removed: %v, want nothing", got)
	}
	if _, err := s.Read(user, "RelatedPerson", "r1"); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("read after the link was removed: %v, want NotFound", err)
	}
}

// TestConfinedWrites: a write confined to a patient's compartment checks
// the version it replaces and the version it writes inside its
// transaction, and a refused write leaves nothing behind.
func TestConfinedWrites(t *testing.T) {
	t.Parallel()
	s := newAccessStore(t)
	op := unrestrictedCtx()
	obs := func(id, patient string) string {
		return `{"resourceType":"Observation","id":"` + id + `","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/` + patient + `"}}`
	}
	for _, w := range [][3]string{
		{"Patient", "a", `{"resourceType":"Patient","id":"a"}`},
		{"Patient", "b", `{"resourceType":"Patient","id":"b"}`},
		{"Observation", "oa", obs("oa", "a")},
		{"Observation", "ob", obs("ob", "b")},
	} {
		if err := s.put(op, t, w[0], w[1], w[2]); err != nil {
			t.Fatal(err)
		}
	}
	inA := &search.Confinement{Owners: []search.Owner{{Type: "Patient", ID: "a"}}, Params: map[string]map[string][]string{"Patient": r4.PatientCompartment()}}
	rule := []search.Rule{{Type: "Observation", In: inA}}
	app := search.WithAccess(context.Background(), &search.Access{Read: rule, Write: rule})
	writeOnly := search.WithAccess(context.Background(), &search.Access{Write: rule})

	tests := []struct {
		name string
		ctx  context.Context
		id   string
		body string
		want fhir.Kind // -1: written
	}{
		{"own", app, "oa", obs("oa", "a"), -1},
		{"new own", app, "n1", obs("n1", "a"), -1},
		{"new outside", app, "n2", obs("n2", "b"), fhir.Forbidden},
		{"moves out", app, "oa", obs("oa", "b"), fhir.Forbidden},
		{"other's", app, "ob", obs("ob", "a"), fhir.NotFound},
		{"other's, write only", writeOnly, "ob", obs("ob", "a"), fhir.NotFound},
	}
	for _, tt := range tests {
		before := s.counts(t)
		err := s.put(tt.ctx, t, "Observation", tt.id, tt.body)
		if tt.want < 0 {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if !fhir.IsKind(err, tt.want) {
			t.Errorf("%s: %v, want kind %v", tt.name, err, tt.want)
		}
		if after := s.counts(t); after != before {
			t.Errorf("%s: rows %v after a refused write, want %v", tt.name, after, before)
		}
	}
	if _, err := s.Delete(app, "Observation", "ob", 0); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("delete other's: %v, want NotFound", err)
	}
	if _, err := s.Delete(app, "Observation", "oa", 0); err != nil {
		t.Errorf("delete own: %v", err)
	}
	// The tombstone has no index rows: a confined reader cannot tell it
	// was in its compartment, so it is not known (not Gone); an operator
	// sees it deleted.
	if _, err := s.Read(app, "Observation", "oa"); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("confined read of a deleted resource: %v, want NotFound", err)
	}
	if _, err := s.Read(op, "Observation", "oa"); !fhir.IsKind(err, fhir.Gone) {
		t.Errorf("operator read of a deleted resource: %v, want Gone", err)
	}
	// Deleting it again reveals nothing either.
	if out, err := s.Delete(app, "Observation", "oa", 0); err != nil || !out.Unchanged || out.Resource.VersionID != 0 {
		t.Errorf("delete again: %+v %v, want unchanged without a version", out, err)
	}
}
