package policy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/policy"
	"github.com/digitaleouder/ouder/auth/smart"
	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/ig"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/mapping"
	"github.com/digitaleouder/ouder/mapping/family"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
)

// amsterdam is the policy's default zone, in which the tests' days begin.
var amsterdam = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		panic(err)
	}
	return loc
}()

// testNow is the moment every decision of these tests is made at.
var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, amsterdam)

// world is a database with the demo family (as it is on testNow) and
// whatever a test adds, and a policy deciding on it.
type world struct {
	store  *postgres.Store
	parser *conformance.Parser
	reg    *searchparam.Registry
	pol    *policy.Policy
	now    time.Time
}

func newWorld(tb testing.TB) *world {
	tb.Helper()
	parser, err := conformance.NewParser()
	if err != nil {
		tb.Fatal(err)
	}
	// The guide's search parameters (Communication.about among them), as
	// ouderd installs them.
	reg, err := searchparam.Builtin()
	if err != nil {
		tb.Fatal(err)
	}
	parser.Registry = func() *searchparam.Registry { return reg }
	w := &world{store: postgres.New(pgtest.Pool(tb)), parser: parser, reg: reg, now: testNow}
	guide, err := ig.Resources()
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range guide {
		if r.Type == "SearchParameter" {
			w.put(tb, r.Type, r.ID, string(r.JSON))
		}
	}
	custom, err := w.store.CustomSearchParams(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if w.reg, err = searchparam.New(custom); err != nil {
		tb.Fatal(err)
	}
	reg = w.reg
	w.pol = policy.New(policy.Config{
		Registry: parser.Registry,
		Facts:    w.store.PolicyResources,
		Now:      func() time.Time { return w.now },
	})
	w.store.OnPolicyChange = w.pol.Changed
	f, err := family.Demo(testNow)
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range f.Resources {
		w.put(tb, r.Type, r.ID, string(r.JSON))
	}
	return w
}

// put writes a resource as the server itself.
func (w *world) put(tb testing.TB, typ, id, body string) {
	tb.Helper()
	res, err := w.parser.Parse([]byte(body), typ)
	if err != nil {
		tb.Fatalf("parse %s/%s: %v", typ, id, err)
	}
	ctx := search.WithAccess(context.Background(), search.Unrestricted())
	if _, err := w.store.Update(ctx, fhir.Write{Type: typ, ID: id, Render: res.Render, Index: res.Index}); err != nil {
		tb.Fatalf("put %s/%s: %v", typ, id, err)
	}
}

// del deletes a resource as the server itself.
func (w *world) del(tb testing.TB, typ, id string) {
	tb.Helper()
	ctx := search.WithAccess(context.Background(), search.Unrestricted())
	if _, err := w.store.Delete(ctx, typ, id, 0); err != nil {
		tb.Fatal(err)
	}
}

// visible returns Type/id of every resource of typ that a search under a
// finds, sorted.
func (w *world) visible(tb testing.TB, a *search.Access, typ string) []string {
	tb.Helper()
	p := search.Parser{Registry: w.reg}
	q, err := p.Parse([]string{typ}, map[string][]string{"_count": {"1000"}}, true)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := w.store.Search(search.WithAccess(context.Background(), a), q)
	if err != nil {
		tb.Fatalf("search %s: %v", typ, err)
	}
	out := []string{}
	for _, m := range res.Matches {
		out = append(out, m.Type+"/"+m.ID)
	}
	slices.Sort(out)
	return out
}

// principal is a caller: "Person/x" and friends are users, "Organization/x"
// a backend client acting for it, "op" an operator, "" a backend client
// without either.
func principal(tb testing.TB, who, scopes, patient string) *auth.Principal {
	tb.Helper()
	ss, err := smart.Parse(scopes)
	if err != nil {
		tb.Fatal(err)
	}
	p := &auth.Principal{Scopes: ss, Patient: patient}
	switch {
	case who == "op":
		p.Operator = true
	case strings.HasPrefix(who, "Organization/"):
		p.Organization = who
	case who != "":
		p.FHIRUser = who
	}
	return p
}

func (w *world) decide(tb testing.TB, p *auth.Principal, in auth.Interaction, types ...string) (*search.Access, error) {
	tb.Helper()
	return w.pol.Decide(context.Background(), p, in, types...)
}

// has reports which of want are among got ("-X" in want: X must not be).
func has(tb testing.TB, got []string, want ...string) {
	tb.Helper()
	for _, x := range want {
		if not, ok := strings.CutPrefix(x, "-"); ok {
			if slices.Contains(got, not) {
				tb.Errorf("%s is visible; it must not be (got %v)", not, got)
			}
		} else if !slices.Contains(got, x) {
			tb.Errorf("%s is not visible (got %v)", x, got)
		}
	}
}

// TestDecideDemo: what each member of the demo family sees, by search.
func TestDecideDemo(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name    string
		who     string
		scopes  string
		patient string
		typ     string
		want    []string // visible (or, with "-", not)
		exactly bool     // want is everything visible
	}{
		{name: "parent reads both children's plans", who: "Person/demo-anna", scopes: "user/*.rs", typ: "CarePlan",
			want: []string{"CarePlan/demo-ouderschapsplan", "CarePlan/demo-kindplan-sara", "CarePlan/demo-kindplan-daan", "CarePlan/demo-afspraak-sport", "CarePlan/demo-afspraak-daan-lezen"}},
		{name: "parent with patient scope: that child and the family", who: "Person/demo-anna", scopes: "patient/*.rs", patient: "demo-sara", typ: "CarePlan",
			want: []string{"CarePlan/demo-ouderschapsplan", "CarePlan/demo-kindplan-sara", "-CarePlan/demo-kindplan-daan"}},
		{name: "parent sees the helpers in the team", who: "Person/demo-bram", scopes: "user/*.rs", typ: "Practitioner",
			want: []string{"Practitioner/demo-marieke", "Practitioner/demo-kees", "Practitioner/demo-lisa", "Practitioner/demo-fatima"}},
		{name: "child 14 reads own plan, not the sibling's", who: "Patient/demo-sara", scopes: "user/*.rs", typ: "CarePlan",
			want: []string{"CarePlan/demo-kindplan-sara", "CarePlan/demo-ouderschapsplan", "-CarePlan/demo-kindplan-daan"}},
		{name: "child 9 has no own access", who: "Patient/demo-daan", scopes: "user/*.rs", typ: "CarePlan", exactly: true},
		{name: "teacher: observations of their pupil only", who: "Practitioner/demo-kees", scopes: "user/*.rs", typ: "Observation",
			want: []string{"Observation/demo-observatie-kees-1", "-Observation/demo-observatie-lisa-1", "-Observation/demo-voortgang-daan-1"}},
		{name: "teacher: no plans", who: "Practitioner/demo-kees", scopes: "user/*.rs", typ: "CarePlan", exactly: true},
		{name: "youth-care worker: the child plans", who: "Practitioner/demo-fatima", scopes: "user/*.rs", typ: "CarePlan",
			want: []string{"CarePlan/demo-kindplan-sara", "CarePlan/demo-kindplan-daan", "CarePlan/demo-afspraak-daan-lezen", "-CarePlan/demo-ouderschapsplan", "-CarePlan/demo-afspraak-zorgverdeling"}},
		{name: "youth-care worker: goal progress but no school observations", who: "Practitioner/demo-fatima", scopes: "user/*.rs", typ: "Observation",
			want: []string{"Observation/demo-voortgang-sara-1", "-Observation/demo-observatie-lisa-1"}},
		{name: "dossierhouder: everything of the family", who: "Practitioner/demo-marieke", scopes: "user/*.rs", typ: "CarePlan",
			want: []string{"CarePlan/demo-ouderschapsplan", "CarePlan/demo-kindplan-sara", "CarePlan/demo-kindplan-daan", "CarePlan/demo-afspraak-sport"}},
		{name: "dossierhouder: the Consents", who: "Practitioner/demo-marieke", scopes: "user/*.rs", typ: "Consent",
			want: []string{"Consent/demo-toestemming-kees-daan", "Consent/demo-toestemming-fatima-sara"}},
		{name: "stranger sees nothing", who: "Person/nobody", scopes: "user/*.rs", typ: "CarePlan", exactly: true},
		{name: "backend client without organisation sees nothing", who: "", scopes: "system/*.rs", typ: "Patient", exactly: true},
		{name: "operator sees everything", who: "op", scopes: "", typ: "Patient", want: []string{"Patient/demo-sara", "Patient/demo-daan"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := w.decide(t, principal(t, tt.who, tt.scopes, tt.patient), auth.SearchType, tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			got := w.visible(t, a, tt.typ)
			if tt.exactly {
				if !slices.Equal(got, append([]string{}, tt.want...)) {
					t.Errorf("visible %v, want exactly %v", got, tt.want)
				}
				return
			}
			has(t, got, tt.want...)
		})
	}
}

// ageFixture adds a child of the given birth date with its team (a parent
// with authority, Person/pp linking RelatedPerson/par; a helper
// Practitioner/help; the dossierhouder) and a Consent for the helper
// given by performers, plus one for the parent by the child.
func ageFixture(tb testing.TB, w *world, birthDate string, helperConsentBy []string) {
	tb.Helper()
	w.put(tb, "Patient", "kid", fmt.Sprintf(`{"resourceType":"Patient","id":"kid","birthDate":%q}`, birthDate))
	w.put(tb, "RelatedPerson", "par", `{"resourceType":"RelatedPerson","id":"par","patient":{"reference":"Patient/kid"}}`)
	w.put(tb, "Person", "pp", `{"resourceType":"Person","id":"pp","link":[{"target":{"reference":"RelatedPerson/par"}}]}`)
	w.put(tb, "Practitioner", "help", `{"resourceType":"Practitioner","id":"help"}`)
	w.put(tb, "Group", "kidfam", `{"resourceType":"Group","id":"kidfam","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/kid"}}]}`)
	role := func(code string) string {
		return `[{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/team-role","code":"` + code + `"}]}]`
	}
	w.put(tb, "CareTeam", "kidteam", `{"resourceType":"CareTeam","id":"kidteam","status":"active","subject":{"reference":"Patient/kid"},"participant":[`+
		`{"role":`+role("parent-with-authority")+`,"member":{"reference":"RelatedPerson/par"}},`+
		`{"role":`+role("child")+`,"member":{"reference":"Patient/kid"}},`+
		`{"role":`+role("coach")+`,"member":{"reference":"Practitioner/help"}},`+
		`{"role":`+role("dossierhouder")+`,"member":{"reference":"Practitioner/demo-marieke"}}]}`)
	w.put(tb, "Consent", "kidhelp", grantJSON("kidhelp", "Practitioner/help", helperConsentBy, "child-plan", ""))
	w.put(tb, "Consent", "kidparent", grantJSON("kidparent", "RelatedPerson/par", []string{"Patient/kid"}, "diary", ""))
	w.put(tb, "CarePlan", "kidplan", `{"resourceType":"CarePlan","id":"kidplan","status":"active","intent":"plan",`+
		`"category":[{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/plan-category","code":"child-plan"}]}],"subject":{"reference":"Patient/kid"}}`)
	w.put(tb, "Communication", "kiddiary", `{"resourceType":"Communication","id":"kiddiary","status":"completed",`+
		`"category":[{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/communication-category","code":"diary"}]}],"subject":{"reference":"Patient/kid"},`+
		`"sender":{"reference":"Patient/kid"},"payload":[{"contentString":"Vandaag"}]}`)
}

// grantJSON is a Consent granting actor read on section (and, when not
// "", only item with its dependents), given by performers; extra is JSON
// added to its provision.
func grantJSON(id, actor string, performers []string, section, extra string) string {
	var ps []string
	for _, p := range performers {
		ps = append(ps, `{"reference":"`+p+`"}`)
	}
	s := `{"resourceType":"Consent","id":"` + id + `","status":"active",` +
		`"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},` +
		`"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/kid"},` +
		`"performer":[` + strings.Join(ps, ",") + `],` +
		`"policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},` +
		`"provision":{"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},"reference":{"reference":"` + actor + `"}}],` +
		`"action":[{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/interaction","code":"read"}]}]`
	if section != "" {
		s += `,"code":[{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/record-section","code":"` + section + `"}]}]`
	}
	return s + extra + `}}`
}

// TestAgeBands: the parent's, the child's and a helper's access by the
// child's age, on the day before and on the birthdays that matter.
func TestAgeBands(t *testing.T) {
	both := []string{"Patient/kid", "RelatedPerson/par"}
	parentOnly := []string{"RelatedPerson/par"}
	childOnly := []string{"Patient/kid"}
	tests := []struct {
		name      string
		birthDate string
		helperBy  []string
		parent    []string // what Person/pp sees of CarePlan and Communication
		child     []string
		helper    []string
	}{
		{"11, day before 12", "2014-11-24", parentOnly,
			[]string{"CarePlan/kidplan", "Communication/kiddiary"}, nil, []string{"CarePlan/kidplan"}},
		{"12 on the birthday: parents' consent lapses", "2014-11-23", parentOnly,
			[]string{"CarePlan/kidplan", "Communication/kiddiary"}, []string{"CarePlan/kidplan", "Communication/kiddiary"}, nil},
		{"12 with both consents", "2014-11-23", both,
			[]string{"CarePlan/kidplan", "Communication/kiddiary"}, []string{"CarePlan/kidplan", "Communication/kiddiary"}, []string{"CarePlan/kidplan"}},
		{"15, day before 16", "2010-11-24", both,
			[]string{"CarePlan/kidplan", "Communication/kiddiary"}, []string{"CarePlan/kidplan", "Communication/kiddiary"}, []string{"CarePlan/kidplan"}},
		{"16 on the birthday: parent only what the child grants", "2010-11-23", both,
			[]string{"Communication/kiddiary"}, []string{"CarePlan/kidplan", "Communication/kiddiary"}, []string{"CarePlan/kidplan"}},
		{"16: the child alone may share", "2010-11-23", childOnly,
			[]string{"Communication/kiddiary"}, []string{"CarePlan/kidplan", "Communication/kiddiary"}, []string{"CarePlan/kidplan"}},
		{"18: parental access ends but for the grant", "2008-11-23", childOnly,
			[]string{"Communication/kiddiary"}, []string{"CarePlan/kidplan", "Communication/kiddiary"}, []string{"CarePlan/kidplan"}},
		{"partial birth date 2014: the stricter band", "2014", both,
			[]string{"CarePlan/kidplan", "Communication/kiddiary"}, nil, []string{"CarePlan/kidplan"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			ageFixture(t, w, tt.birthDate, tt.helperBy)
			for _, c := range []struct {
				who  string
				want []string
			}{{"Person/pp", tt.parent}, {"Patient/kid", tt.child}, {"Practitioner/help", tt.helper}} {
				var got []string
				for _, typ := range []string{"CarePlan", "Communication"} {
					a, err := w.decide(t, principal(t, c.who, "user/*.rs", ""), auth.SearchType, typ)
					if err != nil {
						t.Fatal(err)
					}
					for _, x := range w.visible(t, a, typ) {
						if strings.Contains(x, "/kid") {
							got = append(got, x)
						}
					}
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("%s sees %v, want %v", c.who, got, c.want)
				}
			}
		})
	}
}

// write runs a write of body as typ/id (a create when id is "") under the
// access p gets for interaction in, and returns its error.
func (w *world) write(tb testing.TB, p *auth.Principal, in auth.Interaction, typ, id string, body []byte) error {
	tb.Helper()
	a, err := w.decide(tb, p, in, typ)
	if err != nil {
		return err
	}
	ctx := search.WithAccess(context.Background(), a)
	if in == auth.Delete {
		_, err := w.store.Delete(ctx, typ, id, 0)
		return err
	}
	res, err := w.parser.Parse(body, typ)
	if err != nil {
		tb.Fatalf("parse %s: %v", body, err)
	}
	wr := fhir.Write{Type: typ, ID: id, Render: res.Render, Index: res.Index}
	if in == auth.Create {
		_, err = w.store.Create(ctx, wr)
	} else {
		_, err = w.store.Update(ctx, wr)
	}
	return err
}

// kindOf is the kind of a write's outcome: "ok" or the fhir.Kind.
func kindOf(err error) string {
	if err == nil {
		return "ok"
	}
	if k := fhir.KindOf(err); k >= 0 {
		return fmt.Sprint(k)
	}
	return err.Error()
}

func mustJSON(tb testing.TB) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
}

// TestDecideWrites: who may create, amend and propose what.
func TestDecideWrites(t *testing.T) {
	w := newWorld(t)
	must := mustJSON(t)
	note := func(id, author string) []byte {
		return must(mapping.Note{ID: id, About: "CarePlan/demo-afspraak-daan-lezen", PlanKind: mapping.ChildPlan,
			Subject: "Patient/demo-daan", Author: author, Sent: "2026-11-20T10:00:00+01:00", Text: "Goed gelezen."}.ToFHIR())
	}
	agreement := func(id, status string) []byte {
		return must(mapping.Agreement{ID: id, Plan: "CarePlan/demo-kindplan-daan", PlanKind: mapping.ChildPlan, Status: status,
			Title: "Zwemles", Description: "Daan gaat op zwemles.", Subject: "Patient/demo-daan"}.ToFHIR())
	}
	const fatima, kees, bram = "Practitioner/demo-fatima", "Practitioner/demo-kees", "Person/demo-bram"
	const marieke = "Practitioner/demo-marieke"
	forbidden, notFound := fmt.Sprint(fhir.Forbidden), fmt.Sprint(fhir.NotFound)
	tests := []struct {
		name   string
		who    string
		in     auth.Interaction
		typ    string
		id     string
		body   []byte
		result string
	}{
		{"helper adds a note on a granted section", fatima, auth.Create, "Communication", "", note("", fatima), "ok"},
		{"helper cannot write as someone else", fatima, auth.Create, "Communication", "", note("", "RelatedPerson/demo-bram-daan"), forbidden},
		{"helper amends own note", fatima, auth.Update, "Communication", "demo-afspraak-daan-lezen-notitie-1", note("demo-afspraak-daan-lezen-notitie-1", fatima), "ok"},
		{"helper cannot amend a parent's note", fatima, auth.Update, "Communication", "demo-afspraak-daan-lezen-notitie-2", note("demo-afspraak-daan-lezen-notitie-2", "RelatedPerson/demo-bram-daan"), forbidden},
		{"helper cannot take over a parent's note", fatima, auth.Update, "Communication", "demo-afspraak-daan-lezen-notitie-2", note("demo-afspraak-daan-lezen-notitie-2", fatima), forbidden},
		{"teacher without the section adds no note", kees, auth.Create, "Communication", "", note("", kees), forbidden},
		{"helper cannot delete a parent's note", fatima, auth.Delete, "Communication", "demo-afspraak-daan-lezen-notitie-2", nil, forbidden},
		{"teacher without the section deletes no note", kees, auth.Delete, "Communication", "demo-afspraak-daan-lezen-notitie-2", nil, forbidden},
		{"parent cannot see, so cannot delete, a note about another family", "Person/nobody", auth.Delete, "Communication", "demo-afspraak-daan-lezen-notitie-2", nil, forbidden},
		{"helper cannot see, so cannot amend, a parenting-plan note", fatima, auth.Update, "Communication", "demo-afspraak-zorgverdeling-notitie-1", note("demo-afspraak-zorgverdeling-notitie-1", fatima), notFound},
		{"parent proposes an agreement", bram, auth.Create, "CarePlan", "", agreement("", mapping.PlanDraft), "ok"},
		{"parent cannot write an active agreement", bram, auth.Create, "CarePlan", "", agreement("", mapping.PlanActive), forbidden},
		{"parent cannot activate an agreement", bram, auth.Update, "CarePlan", "demo-afspraak-daan-lezen", agreement("demo-afspraak-daan-lezen", mapping.PlanActive), forbidden},
		{"dossierhouder writes an active agreement", marieke, auth.Create, "CarePlan", "", agreement("", mapping.PlanActive), "ok"},
		{"helper without propose in the grant proposes nothing", fatima, auth.Create, "CarePlan", "", agreement("", mapping.PlanDraft), forbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := w.write(t, principal(t, tt.who, "user/*.cruds", ""), tt.in, tt.typ, tt.id, tt.body)
			if got := kindOf(err); got != tt.result {
				t.Errorf("%s: %v, want %s", tt.name, err, tt.result)
			}
		})
	}
	// Approve goes to the dossierhouder only.
	for _, c := range []struct {
		who  string
		want bool
	}{{marieke, true}, {bram, false}, {fatima, false}} {
		a, err := w.decide(t, principal(t, c.who, "user/*.cruds", ""), auth.Update, "CarePlan")
		if err != nil {
			t.Fatal(err)
		}
		if got := len(a.Approve) > 0; got != c.want {
			t.Errorf("%s: approve rules %v, want %v", c.who, got, c.want)
		}
	}
}

// withheldFrom returns body with meta.security WithheldSystem|party for
// each party.
func withheldFrom(tb testing.TB, body []byte, parties ...string) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		tb.Fatal(err)
	}
	var sec []any
	for _, p := range parties {
		sec = append(sec, map[string]any{"system": mapping.WithheldSystem, "code": p})
	}
	m["meta"] = map[string]any{"security": sec}
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestDecideFacts: Consents (items, deny exceptions, periods, status),
// memberships, organisations, auditors, parents without authority and
// withheld items, each through what a search then shows.
func TestDecideFacts(t *testing.T) {
	must := mustJSON(t)
	obs := func(id, subject, observer string) string {
		return string(must(mapping.Observation{ID: id, Status: "final", Topic: "Lezen", Subject: subject,
			Observers: []string{observer}, Text: "Gezien."}.ToFHIR()))
	}
	role := func(code string) string {
		return `[{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/team-role","code":"` + code + `"}]}]`
	}
	// The kid of ageFixture is 10; a coach (Practitioner/help) and more.
	setup := func(t *testing.T, extra func(*testing.T, *world)) *world {
		w := newWorld(t)
		ageFixture(t, w, "2016-05-01", []string{"RelatedPerson/par"})
		w.put(t, "Organization", "ecd", `{"resourceType":"Organization","id":"ecd","name":"ECD"}`)
		w.put(t, "Organization", "audit", `{"resourceType":"Organization","id":"audit","name":"Toezicht"}`)
		w.put(t, "RelatedPerson", "nogezag", `{"resourceType":"RelatedPerson","id":"nogezag","patient":{"reference":"Patient/kid"}}`)
		w.put(t, "CareTeam", "kidteam2", `{"resourceType":"CareTeam","id":"kidteam2","status":"active","subject":{"reference":"Patient/kid"},"participant":[`+
			`{"role":`+role("ecd-system")+`,"member":{"reference":"Organization/ecd"}},`+
			`{"role":`+role("auditor")+`,"member":{"reference":"Organization/audit"}},`+
			`{"role":`+role("parent-without-authority")+`,"member":{"reference":"RelatedPerson/nogezag"}},`+
			`{"role":`+role("parent-with-authority")+`,"member":{"reference":"RelatedPerson/par"}}]}`)
		w.put(t, "Observation", "kidobs", obs("kidobs", "Patient/kid", "RelatedPerson/par"))
		if extra != nil {
			extra(t, w)
		}
		return w
	}
	period := func(start, end string) string {
		return `,"period":{"start":"` + start + `","end":"` + end + `"}`
	}
	deny := func(what string) string { return `,"provision":[{"type":"deny",` + what + `}]` }
	tests := []struct {
		name   string
		extra  func(*testing.T, *world)
		who    string
		scopes string
		typ    string
		want   []string // of the kid's resources ("/kid" in the id)
		basis  []string // must be among Access.Basis
		err    fhir.Kind
	}{
		{name: "coach with the child-plan consent", who: "Practitioner/help", typ: "CarePlan", want: []string{"CarePlan/kidplan"},
			basis: []string{"Consent/kidhelp", "CareTeam/kidteam"}},
		{name: "coach: consent inactive", who: "Practitioner/help", typ: "CarePlan", extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidhelp", strings.Replace(grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/par"}, "child-plan", ""), `"active"`, `"inactive"`, 1))
		}},
		{name: "coach: consent expired", who: "Practitioner/help", typ: "CarePlan", extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidhelp", grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/par"}, "child-plan", period("2025-01-01", "2026-11-22")))
		}},
		{name: "coach: consent ends today, still in force", who: "Practitioner/help", typ: "CarePlan", want: []string{"CarePlan/kidplan"}, extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidhelp", grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/par"}, "child-plan", period("2025-01-01", "2026-11-23")))
		}},
		{name: "coach: consent not yet in force", who: "Practitioner/help", typ: "CarePlan", extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidhelp", grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/par"}, "child-plan", period("2026-11-24", "2027-11-24")))
		}},
		{name: "coach: consent by a parent without authority", who: "Practitioner/help", typ: "CarePlan", extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidhelp", grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/nogezag"}, "child-plan", ""))
		}},
		{name: "coach: membership removed", who: "Practitioner/help", typ: "CarePlan", extra: func(t *testing.T, w *world) {
			w.put(t, "CareTeam", "kidteam", `{"resourceType":"CareTeam","id":"kidteam","status":"active","subject":{"reference":"Patient/kid"},"participant":[`+
				`{"role":`+role("parent-with-authority")+`,"member":{"reference":"RelatedPerson/par"}}]}`)
		}},
		{name: "coach: team inactive", who: "Practitioner/help", typ: "CarePlan", extra: func(t *testing.T, w *world) {
			w.put(t, "CareTeam", "kidteam", `{"resourceType":"CareTeam","id":"kidteam","status":"inactive","subject":{"reference":"Patient/kid"},"participant":[`+
				`{"role":`+role("coach")+`,"member":{"reference":"Practitioner/help"}}]}`)
		}},
		{name: "coach: grant beyond the role is cut to it", who: "Practitioner/help", typ: "Task", extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidhelp", grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/par"}, "change-requests", ""))
			w.put(t, "Task", "kidtask", `{"resourceType":"Task","id":"kidtask","status":"requested","intent":"order",`+
				`"code":{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/task-code","code":"approve-change"}]},"for":{"reference":"Patient/kid"},"focus":{"reference":"CarePlan/kidplan"}}`)
		}},
		{name: "coach: one item with its dependents", who: "Practitioner/help", typ: "Communication", want: []string{"Communication/kidnote"}, extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidhelp", grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/par"}, "",
				`,"data":[{"meaning":"dependents","reference":{"reference":"CarePlan/kidplan"}}]`))
			w.put(t, "Communication", "kidnote", string(must(mapping.Note{ID: "kidnote", About: "CarePlan/kidplan", PlanKind: mapping.ChildPlan,
				Subject: "Patient/kid", Author: "RelatedPerson/par", Sent: "2026-11-20T10:00:00+01:00", Text: "Afgesproken."}.ToFHIR())))
		}},
		{name: "coach: items and a section, both must hold", who: "Practitioner/help", typ: "Communication", extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidhelp", grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/par"}, "diary",
				`,"data":[{"meaning":"dependents","reference":{"reference":"CarePlan/kidplan"}}]`))
		}},
		{name: "coach: a deny exception of the section", who: "Practitioner/help", typ: "CarePlan", extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidhelp", grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/par"}, "child-plan",
				deny(`"code":[{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/record-section","code":"child-plan"}]}]`)))
		}},
		{name: "coach: a deny exception of an item", who: "Practitioner/help", typ: "CarePlan", want: []string{"CarePlan/kidplan2"}, extra: func(t *testing.T, w *world) {
			w.put(t, "CarePlan", "kidplan2", `{"resourceType":"CarePlan","id":"kidplan2","status":"active","intent":"plan",`+
				`"category":[{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/plan-category","code":"child-plan"}]}],"subject":{"reference":"Patient/kid"}}`)
			w.put(t, "Consent", "kidhelp", grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/par"}, "child-plan",
				deny(`"data":[{"meaning":"dependents","reference":{"reference":"CarePlan/kidplan"}}]`)))
		}},
		{name: "coach: a deny exception for someone else", who: "Practitioner/help", typ: "CarePlan", want: []string{"CarePlan/kidplan"}, extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidhelp", grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/par"}, "child-plan",
				deny(`"actor":[{"role":{"text":"x"},"reference":{"reference":"Practitioner/other"}}],"data":[{"meaning":"dependents","reference":{"reference":"CarePlan/kidplan"}}]`)))
		}},
		{name: "ECD system without a consent", who: "Organization/ecd", scopes: "system/*.rs", typ: "CarePlan"},
		{name: "ECD system with a consent", who: "Organization/ecd", scopes: "system/*.rs", typ: "CarePlan", want: []string{"CarePlan/kidplan"}, extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidecd", grantJSON("kidecd", "Organization/ecd", []string{"RelatedPerson/par"}, "child-plan", ""))
		}},
		{name: "ECD system: a consent to its team", who: "Organization/ecd", scopes: "system/*.rs", typ: "CarePlan", want: []string{"CarePlan/kidplan"}, extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidecd", grantJSON("kidecd", "CareTeam/kidteam2", []string{"RelatedPerson/par"}, "child-plan", ""))
		}},
		{name: "ECD system: never the diary", who: "Organization/ecd", scopes: "system/*.rs", typ: "Communication", extra: func(t *testing.T, w *world) {
			w.put(t, "Consent", "kidecd", grantJSON("kidecd", "Organization/ecd", []string{"RelatedPerson/par"}, "diary", ""))
		}},
		{name: "auditor reads Consents", who: "Organization/audit", scopes: "system/*.rs", typ: "Consent", want: []string{"Consent/kidhelp", "Consent/kidparent"}},
		{name: "auditor reads no content", who: "Organization/audit", scopes: "system/*.rs", typ: "CarePlan"},
		{name: "auditor reads no people", who: "Organization/audit", scopes: "system/*.rs", typ: "Patient"},
		{name: "parent without authority reads nothing", who: "RelatedPerson/nogezag", typ: "Observation"},
		{name: "parent reads the observation", who: "Person/pp", typ: "Observation", want: []string{"Observation/kidobs"}},
		{name: "withheld from the parent", who: "Person/pp", typ: "Observation", extra: func(t *testing.T, w *world) {
			w.put(t, "Observation", "kidobs", string(withheldFrom(t, []byte(obs("kidobs", "Patient/kid", "RelatedPerson/par")), "RelatedPerson/par")))
		}},
		{name: "withheld from the parent's Person", who: "Person/pp", typ: "Observation", extra: func(t *testing.T, w *world) {
			w.put(t, "Observation", "kidobs", string(withheldFrom(t, []byte(obs("kidobs", "Patient/kid", "RelatedPerson/par")), "Person/pp")))
		}},
		{name: "withheld from a role", who: "Person/pp", typ: "Observation", extra: func(t *testing.T, w *world) {
			w.put(t, "Observation", "kidobs", string(withheldFrom(t, []byte(obs("kidobs", "Patient/kid", "RelatedPerson/par")), "parent-with-authority")))
		}},
		{name: "withheld from someone else", who: "Person/pp", typ: "Observation", want: []string{"Observation/kidobs"}, extra: func(t *testing.T, w *world) {
			w.put(t, "Observation", "kidobs", string(withheldFrom(t, []byte(obs("kidobs", "Patient/kid", "RelatedPerson/par")), "teacher", "RelatedPerson/other")))
		}},
		{name: "dossierhouder sees what is withheld from the parent", who: "Practitioner/demo-marieke", typ: "Observation", want: []string{"Observation/kidobs"}, extra: func(t *testing.T, w *world) {
			w.put(t, "Observation", "kidobs", string(withheldFrom(t, []byte(obs("kidobs", "Patient/kid", "RelatedPerson/par")), "RelatedPerson/par")))
		}},
		{name: "scopes that do not cover the type", who: "Person/pp", scopes: "user/Observation.rs", typ: "CarePlan", err: fhir.Forbidden},
		{name: "stranger with covering scopes", who: "Person/nobody", typ: "Observation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := setup(t, tt.extra)
			scopes := tt.scopes
			if scopes == "" {
				scopes = "user/*.rs"
			}
			a, err := w.decide(t, principal(t, tt.who, scopes, ""), auth.SearchType, tt.typ)
			if tt.err != 0 {
				if fhir.KindOf(err) != tt.err {
					t.Fatalf("err %v, want kind %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, x := range w.visible(t, a, tt.typ) {
				if strings.Contains(x, "/kid") {
					got = append(got, x)
				}
			}
			if want := append([]string{}, tt.want...); !slices.Equal(got, want) {
				t.Errorf("visible %v, want %v", got, want)
			}
			for _, b := range tt.basis {
				if !slices.Contains(a.Basis, b) {
					t.Errorf("basis %v lacks %s", a.Basis, b)
				}
			}
		})
	}
}

// quietFeed is a ChangeFeed that listens and hears nothing: the cache is
// trusted, and only the policy's own Changed calls make it stale.
type quietFeed struct{ listening chan struct{} }

func (f quietFeed) ListenPolicy(ctx context.Context, ready func(context.Context) error, _ func(string)) error {
	if err := ready(ctx); err != nil {
		return err
	}
	close(f.listening)
	<-ctx.Done()
	return ctx.Err()
}

// TestFactCache: facts are cached while the policy watches, a write
// through the store that the policy is wired to makes them stale at once,
// and a write it does not hear of (another instance, before its
// notification arrives) does not.
func TestFactCache(t *testing.T) {
	w := newWorld(t)
	ageFixture(t, w, "2016-05-01", []string{"RelatedPerson/par"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	feed := quietFeed{listening: make(chan struct{})}
	go func() { defer close(done); w.pol.Watch(ctx, feed) }()
	t.Cleanup(func() { cancel(); <-done })
	<-feed.listening
	coach := principal(t, "Practitioner/help", "user/*.rs", "")
	sees := func() bool {
		t.Helper()
		a, err := w.decide(t, coach, auth.SearchType, "CarePlan")
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(w.visible(t, a, "CarePlan"), "CarePlan/kidplan")
	}
	if !sees() {
		t.Fatal("the coach does not see the plan to begin with")
	}
	revoked := strings.Replace(grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/par"}, "child-plan", ""), `"active"`, `"inactive"`, 1)
	// Another instance's write: not heard of yet.
	elsewhere := &world{store: postgres.New(w.store.Pool()), parser: w.parser, reg: w.reg}
	elsewhere.put(t, "Consent", "kidhelp", revoked)
	if !sees() {
		t.Error("a change not announced was seen: the facts are not cached")
	}
	w.pol.Changed() // its notification arrives
	if sees() {
		t.Error("after the change was announced, the revoked Consent still counts")
	}
	// A write through the store the policy is wired to counts at once.
	w.put(t, "Consent", "kidhelp", grantJSON("kidhelp", "Practitioner/help", []string{"RelatedPerson/par"}, "child-plan", ""))
	if !sees() {
		t.Error("after this instance restored the Consent, the coach does not see the plan")
	}
	w.put(t, "Consent", "kidhelp", revoked)
	if sees() {
		t.Error("after this instance revoked the Consent, the coach still sees the plan")
	}
}
