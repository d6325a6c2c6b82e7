package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/audit"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rawjson"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/postgres"
)

// testRecorder records every write as a Provenance and an AuditEvent, as
// the REST layer does, or fails when fail is set.
type testRecorder struct {
	s    *accessStore
	fail error
}

func (r *testRecorder) Record(ctx context.Context, w fhir.Written) (fhir.Record, error) {
	if r.fail != nil {
		return fhir.Record{}, r.fail
	}
	p := &auth.Principal{FHIRUser: "Practitioner/x", ClientID: "app"}
	body, err := audit.Provenance(p, w, "http://example.org/fhir")
	if err != nil {
		return fhir.Record{}, err
	}
	members, err := rawjson.Members(body)
	if err != nil {
		return fhir.Record{}, err
	}
	x, err := r.s.parser.IndexOf("Provenance", body)
	if err != nil {
		return fhir.Record{}, err
	}
	ev := audit.Event{Principal: p, Interaction: "update", Outcome: audit.Success, Recorded: w.Resource.LastUpdated,
		Entities: []fhir.Entity{{Type: w.Resource.Type, ID: w.Resource.ID, Version: w.Resource.VersionID}}}
	ae := ev.AuditEvent(uuid.NewString())
	return fhir.Record{
		Provenance: &fhir.Write{Type: "Provenance", Index: x, Render: func(m fhir.Meta) ([]byte, error) {
			return rawjson.Stamp(members, "Provenance", m.ID, m.VersionID, m.LastUpdated)
		}},
		Audit: &ae,
	}, nil
}

// auditRows returns "entities patients" of every audit row, in order.
func auditRows(tb testing.TB, s *accessStore) []string {
	tb.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT array_to_string(entities, ','), array_to_string(patients, ',') FROM audit_events ORDER BY seq`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e, p string
		if err := rows.Scan(&e, &p); err != nil {
			tb.Fatal(err)
		}
		out = append(out, e+" "+p)
	}
	return out
}

func TestWritesRecordProvenanceAndAudit(t *testing.T) {
	t.Parallel()
	s := newAccessStore(t)
	ctx := fhir.WithRecorder(unrestrictedCtx(), &testRecorder{s: s})
	steps := []struct{ typ, id, body string }{
		{"Patient", "p1", `{"resourceType":"Patient"}`},
		{"Patient", "p2", `{"resourceType":"Patient"}`},
		{"Group", "fam", `{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/p1"}},{"entity":{"reference":"Patient/p2"}}]}`},
		{"CarePlan", "plan", `{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Group/fam"}}`},
		{"Observation", "o1", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`},
		// Moved to another child: both children are concerned.
		{"Observation", "o1", `{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p2"}}`},
	}
	for _, st := range steps {
		if err := s.put(ctx, t, st.typ, st.id, st.body); err != nil {
			t.Fatalf("put %s/%s: %v", st.typ, st.id, err)
		}
	}
	if _, err := s.Delete(ctx, "Observation", "o1", 0); err != nil {
		t.Fatal(err)
	}
	// Deleting again writes nothing, so records nothing.
	if _, err := s.Delete(ctx, "Observation", "o1", 0); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Patient/p1 Patient/p1",
		"Patient/p2 Patient/p2",
		"Group/fam Patient/p1,Patient/p2",
		"CarePlan/plan Patient/p1,Patient/p2",
		"Observation/o1 Patient/p1",
		"Observation/o1 Patient/p1,Patient/p2",
		"Observation/o1 Patient/p2",
	}
	if got := auditRows(t, s); !slices.Equal(got, want) {
		t.Errorf("audit rows:\n got %q\nwant %q", got, want)
	}
	// One Provenance per version, found by its target; none for the
	// Provenances themselves.
	if got := s.ids(unrestrictedCtx(), t, "Provenance"); len(got) != len(want) {
		t.Errorf("%d Provenances, want %d", len(got), len(want))
	}
	p := search.Parser{Registry: s.reg}
	q, err := p.Parse([]string{"Provenance"}, url.Values{"target": {"Observation/o1"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Search(unrestrictedCtx(), q)
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, m := range res.Matches {
		i := strings.Index(string(m.Body), `"target":[{"reference":"`)
		targets = append(targets, strings.SplitN(string(m.Body[i+24:]), `"`, 2)[0])
	}
	slices.Sort(targets)
	if want := []string{"Observation/o1/_history/1", "Observation/o1/_history/2", "Observation/o1/_history/3"}; !slices.Equal(targets, want) {
		t.Errorf("Provenance targets of Observation/o1 = %q, want %q", targets, want)
	}
}

func TestRecorderFailureRollsBack(t *testing.T) {
	t.Parallel()
	s := newAccessStore(t)
	if err := s.put(unrestrictedCtx(), t, "Patient", "p1", `{"resourceType":"Patient"}`); err != nil {
		t.Fatal(err)
	}
	before := s.counts(t)
	ctx := fhir.WithRecorder(unrestrictedCtx(), &testRecorder{s: s, fail: errors.New("recorder down")})
	for _, tt := range []struct {
		name  string
		write func() error
	}{
		{"create", func() error { return s.put(ctx, t, "Patient", "p2", `{"resourceType":"Patient"}`) }},
		{"update", func() error {
			return s.put(ctx, t, "Patient", "p1", `{"resourceType":"Patient","id":"p1","active":true}`)
		}},
		{"delete", func() error { _, err := s.Delete(ctx, "Patient", "p1", 0); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.write(); err == nil || !strings.Contains(err.Error(), "recorder down") {
				t.Fatalf("write error = %v, want the recorder's", err)
			}
			if got := s.counts(t); got != before {
				t.Errorf("rows %v after a failed write, want %v", got, before)
			}
		})
	}
}

func TestAuditEventsNotWritable(t *testing.T) {
	t.Parallel()
	s := newAccessStore(t)
	ctx := unrestrictedCtx()
	_, errCreate := s.Create(ctx, fhir.Write{Type: "AuditEvent", Render: func(fhir.Meta) ([]byte, error) { return []byte(`{}`), nil }})
	_, errUpdate := s.Update(ctx, fhir.Write{Type: "AuditEvent", ID: "a", Render: func(fhir.Meta) ([]byte, error) { return []byte(`{}`), nil }})
	_, errDelete := s.Delete(ctx, "AuditEvent", "a", 0)
	for i, err := range []error{errCreate, errUpdate, errDelete} {
		if !fhir.IsKind(err, fhir.MethodNotAllowed) {
			t.Errorf("write %d: error %v, want MethodNotAllowed", i, err)
		}
	}
	// Row triggers need rows.
	appendEvents(t, s, "e", []audit.Event{{Interaction: "read", Outcome: audit.Minor, Recorded: time.Now()}})
	if n, err := s.SealAudit(ctx); err != nil || n != 1 {
		t.Fatalf("seal: %d, %v", n, err)
	}
	for _, stmt := range []string{
		`UPDATE audit_events SET outcome = '0'`, `DELETE FROM audit_events`, `TRUNCATE audit_events`,
		`UPDATE audit_chain SET pos = 0`, `DELETE FROM audit_chain`, `TRUNCATE audit_chain`,
	} {
		if _, err := s.Pool().Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: error %v, want append-only", stmt, err)
		}
	}
}

// appendEvents writes events through an AuditWriter, and returns their ids.
func appendEvents(tb testing.TB, s *accessStore, prefix string, events []audit.Event) []string {
	tb.Helper()
	w := s.NewAuditWriter(2, func(err error) { tb.Error(err) })
	defer w.Close()
	var ids []string
	for i := range events {
		id := fmt.Sprintf("%s%d", prefix, i+1)
		ids = append(ids, id)
		w.Append(events[i].AuditEvent(id))
	}
	w.Flush()
	return ids
}

func TestAuditSearch(t *testing.T) {
	t.Parallel()
	s := newAccessStore(t)
	ctx := unrestrictedCtx()
	for _, st := range []struct{ typ, id, body string }{
		{"Patient", "p1", `{"resourceType":"Patient"}`},
		{"Patient", "p2", `{"resourceType":"Patient"}`},
		{"Group", "fam", `{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/p1"}},{"entity":{"reference":"Patient/p2"}}]}`},
		{"CarePlan", "plan", `{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Group/fam"}}`},
		{"Observation", "o1", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`},
	} {
		if err := s.put(ctx, t, st.typ, st.id, st.body); err != nil {
			t.Fatal(err)
		}
	}
	day := func(d int) time.Time { return time.Date(2026, 1, d, 12, 0, 0, 0, time.UTC) }
	teacher := &auth.Principal{FHIRUser: "Practitioner/kees", ClientID: "school"}
	parent := &auth.Principal{FHIRUser: "RelatedPerson/anna", ClientID: "app"}
	appendEvents(t, s, "e", []audit.Event{
		{Principal: teacher, Interaction: "read", Outcome: audit.Success, Recorded: day(1), Entities: []fhir.Entity{{Type: "Observation", ID: "o1", Version: 1}}},
		{Principal: parent, Interaction: "read", Outcome: audit.Success, Recorded: day(2), Entities: []fhir.Entity{{Type: "CarePlan", ID: "plan", Version: 1}}},
		{Principal: teacher, Interaction: "search-type", Outcome: audit.Minor, Recorded: day(3), Entities: []fhir.Entity{{Type: "Patient", ID: "p2"}}, Query: "name=x"},
		{Principal: nil, Interaction: "read", Outcome: audit.Minor, Recorded: day(4), Entities: []fhir.Entity{{Type: "Patient", ID: "p1"}}},
	})
	p := search.Parser{Registry: s.reg}
	only := func(rules ...search.Rule) context.Context {
		return search.WithAccess(context.Background(), &search.Access{Read: rules})
	}
	owners := func(os ...search.Owner) *search.Confinement { return &search.Confinement{Owners: os} }
	tests := []struct {
		name    string
		ctx     context.Context
		query   string
		want    string // ids in order, or the parameter an error names
		wantErr bool
	}{
		{name: "all newest first", ctx: ctx, query: "", want: "e4 e3 e2 e1"},
		{name: "sort by date", ctx: ctx, query: "_sort=date", want: "e1 e2 e3 e4"},
		{name: "patient", ctx: ctx, query: "patient=Patient/p1", want: "e4 e2 e1"},
		{name: "patient bare id", ctx: ctx, query: "patient=p2", want: "e3 e2"},
		{name: "family plan concerns both children", ctx: ctx, query: "entity=CarePlan/plan&patient=p2", want: "e2"},
		{name: "agent reference", ctx: ctx, query: "agent=Practitioner/kees", want: "e3 e1"},
		{name: "agent client identifier", ctx: ctx, query: "agent:identifier=" + audit.ClientSystem + "|app", want: "e2"},
		{name: "date ge", ctx: ctx, query: "date=ge2026-01-03", want: "e4 e3"},
		{name: "date lt", ctx: ctx, query: "date=lt2026-01-02", want: "e1"},
		{name: "date eq day", ctx: ctx, query: "date=2026-01-02", want: "e2"},
		{name: "outcome", ctx: ctx, query: "outcome=4", want: "e4 e3"},
		{name: "action and subtype", ctx: ctx, query: "action=E&subtype=http://hl7.org/fhir/restful-interaction|search-type", want: "e3"},
		{name: "type", ctx: ctx, query: "type=rest&_id=e2,e3", want: "e3 e2"},
		{name: "unsupported parameter", ctx: ctx, query: "entity-type=2", want: "entity-type", wantErr: true},
		{name: "unsupported modifier", ctx: ctx, query: "patient:missing=true", want: "patient", wantErr: true},
		{name: "unsupported sort", ctx: ctx, query: "_sort=action", want: "_sort", wantErr: true},
		{name: "no access", ctx: context.Background(), query: "", want: ""},
		// e2 (the family's plan) concerns both children: only whom may see
		// both sees it; a family Group owner opens no child's rows.
		{name: "rule for the child", ctx: only(search.Rule{Type: "AuditEvent", In: owners(search.Owner{Type: "Patient", ID: "p2"})}), query: "", want: "e3"},
		{name: "rule for both children", ctx: only(search.Rule{Type: "AuditEvent", In: owners(search.Owner{Type: "Patient", ID: "p1"}, search.Owner{Type: "Patient", ID: "p2"})}), query: "", want: "e4 e3 e2 e1"},
		{name: "rule for the family", ctx: only(search.Rule{In: owners(search.Owner{Type: "Group", ID: "fam"})}), query: "", want: ""},
		{name: "withheld labels hold for audit rows", ctx: only(search.Rule{Type: "AuditEvent", Where: []search.Clause{{Param: securityParam(t, s), Modifier: search.ModNot}}, In: owners(search.Owner{Type: "Patient", ID: "p2"})}), query: "", want: "e3"},
		{name: "rule for another type", ctx: only(search.Rule{Type: "Patient"}), query: "", want: ""},
		{name: "rule with a filter admits nothing", ctx: only(search.Rule{Type: "AuditEvent", Where: []search.Clause{{}}}), query: "", want: ""},
		{name: "rule without confinement", ctx: only(search.Rule{Type: "AuditEvent"}), query: "patient=p1", want: "e4 e2 e1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := p.Parse([]string{"AuditEvent"}, v, true)
			if err != nil {
				t.Fatalf("parse %q: %v", tt.query, err)
			}
			res, err := s.Search(tt.ctx, q)
			if tt.wantErr {
				var fe *fhir.Error
				if !errors.As(err, &fe) || fe.Kind != fhir.Invalid || !slices.Contains(fe.Issues[0].Expression, tt.want) {
					t.Fatalf("error = %v, want Invalid naming %s", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range res.Matches {
				got = append(got, m.ID)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("ids = %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
	t.Run("paging", func(t *testing.T) {
		q, _ := p.Parse([]string{"AuditEvent"}, url.Values{"_count": {"3"}, "_total": {"accurate"}}, true)
		res, err := s.Search(ctx, q)
		if err != nil || res.Total != 4 || len(res.Matches) != 3 || res.Next == "" || res.Prev != "" {
			t.Fatalf("page 1: %v, total %d, %d matches, next %q prev %q", err, res.Total, len(res.Matches), res.Next, res.Prev)
		}
		q.Cursor = res.Next
		res, err = s.Search(ctx, q)
		if err != nil || len(res.Matches) != 1 || res.Matches[0].ID != "e1" || res.Next != "" || res.Prev == "" {
			t.Fatalf("page 2: %v, %d matches, next %q prev %q", err, len(res.Matches), res.Next, res.Prev)
		}
		q.Cursor = res.Prev
		res, err = s.Search(ctx, q)
		if err != nil || len(res.Matches) != 3 || res.Matches[0].ID != "e4" {
			t.Fatalf("back to page 1: %v, %d matches", err, len(res.Matches))
		}
	})
	t.Run("read", func(t *testing.T) {
		r, err := s.Read(ctx, "AuditEvent", "e2")
		if err != nil || !strings.Contains(string(r.Body), `"id":"e2"`) || !strings.Contains(string(r.Body), `"reference":"Patient/p1"`) {
			t.Fatalf("read e2: %v %s", err, r.Body)
		}
		if _, err := s.Read(only(search.Rule{Type: "AuditEvent", In: owners(search.Owner{Type: "Patient", ID: "p2"})}), "AuditEvent", "e1"); !fhir.IsKind(err, fhir.NotFound) {
			t.Errorf("read of a hidden AuditEvent: %v, want NotFound", err)
		}
	})
}

func TestVerifyAudit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tamper string // SQL run with triggers off; "" for none
		kind   string // the problem found, "" for none
		seq    int64
	}{
		{name: "intact"},
		{name: "row altered", tamper: `UPDATE audit_events SET outcome = '0' WHERE seq = 2`, kind: "altered", seq: 2},
		{name: "body altered", tamper: `UPDATE audit_events SET body = convert_to(replace(convert_from(body, 'UTF8'), 'Practitioner/kees', 'Practitioner/other'), 'UTF8') WHERE seq = 3`, kind: "altered", seq: 3},
		{name: "row deleted", tamper: `DELETE FROM audit_events WHERE seq = 2`, kind: "deleted", seq: 2},
		{name: "link altered", tamper: `UPDATE audit_chain SET hash = sha256('x') WHERE seq = 1`, kind: "altered", seq: 1},
		{name: "row inserted", tamper: `INSERT INTO audit_events (id, recorded, type, subtype, action, outcome, agents, entities, patients, body, xid)
			SELECT 'forged', recorded, type, subtype, action, outcome, agents, entities, patients, body, '3'::xid8 FROM audit_events WHERE seq = 1`, kind: "inserted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newAccessStore(t)
			teacher := &auth.Principal{FHIRUser: "Practitioner/kees", ClientID: "school"}
			var events []audit.Event
			for i := range 4 {
				events = append(events, audit.Event{Principal: teacher, Interaction: "read", Outcome: audit.Minor,
					Recorded: time.Date(2026, 1, i+1, 0, 0, 0, 0, time.UTC), Entities: []fhir.Entity{{Type: "Patient", ID: "p1"}}})
			}
			appendEvents(t, s, "e", events)
			ctx := context.Background()
			if n, err := s.SealAudit(ctx); err != nil || n != 4 {
				t.Fatalf("seal: %d, %v", n, err)
			}
			// A row written after the seal is not a problem: the next
			// seal links it.
			appendEvents(t, s, "late", events[:1])
			if tt.tamper != "" {
				conn, err := s.Pool().Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				_, err = conn.Exec(ctx, `SET session_replication_role = replica`)
				if err == nil {
					_, err = conn.Exec(ctx, tt.tamper)
				}
				conn.Release()
				if err != nil {
					t.Fatalf("tamper: %v", err)
				}
			}
			v, err := postgres.VerifyAudit(ctx, s.Pool())
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.kind == "" && v.Problem != nil:
				t.Fatalf("intact trail reported %s", v.Problem)
			case tt.kind == "":
				if v.Sealed != 4 || v.Unsealed != 1 || len(v.Head) != 32 {
					t.Errorf("verification %+v, want 4 sealed, 1 unsealed", v)
				}
				return
			case v.Problem == nil:
				t.Fatalf("tampering (%s) not detected", tt.tamper)
			case v.Problem.Kind != tt.kind || (tt.seq != 0 && v.Problem.Seq != tt.seq):
				t.Fatalf("problem %s, want %s at seq %d", v.Problem, tt.kind, tt.seq)
			}
			if tt.kind == "inserted" && v.Problem.ID != "forged" {
				t.Errorf("inserted row named %q, want forged", v.Problem.ID)
			}
			if !strings.Contains(v.Problem.String(), fmt.Sprint(v.Problem.Seq)) {
				t.Errorf("report %q does not name the row", v.Problem)
			}
		})
	}
}

// securityParam is AuditEvent's _security search parameter.
func securityParam(tb testing.TB, s *accessStore) *searchparam.Param {
	tb.Helper()
	p, ok := s.reg.Lookup("AuditEvent", "_security")
	if !ok {
		tb.Fatal("no AuditEvent _security parameter")
	}
	return p
}
