package rest_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rest"
	"github.com/digitaleouder/ouder/mapping"
	"github.com/digitaleouder/ouder/mapping/family"
)

// The scenarios of issue #7, on the demo family (Anna and Bram with
// authority over Sara, 14, and Daan, 9; Marieke the dossierhouder; Fatima the
// youth-care worker of both children, Kees Daan's teacher, Lisa Sara's
// mentor) and on the matrix family, through the HTTP API with the full
// policy.

// demoPeople are the callers of the scenarios on the demo family.
func demoPeople() map[string]*auth.Principal {
	user := mustScopes("user/*.cruds")
	p := func(ref string) *auth.Principal {
		return &auth.Principal{Subject: ref, ClientID: "app", FHIRUser: ref, Scopes: user}
	}
	return map[string]*auth.Principal{
		"operator":  {Subject: "test-operator", Operator: true},
		"anna":      p("Person/demo-anna"),
		"bram":      p("Person/demo-bram"),
		"sara":      p("Patient/demo-sara"),
		"marieke":   p("Practitioner/demo-marieke"),
		"fatima":    p("Practitioner/demo-fatima"),
		"kees":      p("Practitioner/demo-kees"),
		"logopedie": p("Practitioner/demo-logopedie"),
		"coach":     p("Practitioner/demo-coach"),
		"school":    {Subject: "school", ClientID: "school", Organization: "Organization/demo-obs-de-regenboog", Scopes: mustScopes("system/Observation.crs system/Communication.rs")},
	}
}

// newDemoServer is the API with the full policy on the demo family as it is
// on now, with the callers of demoPeople.
func newDemoServer(tb testing.TB, now time.Time) *testServer {
	tb.Helper()
	people := demoPeople()
	ts := newServer(tb, func(c *rest.Config) {
		c.Authenticate = func(r *http.Request) (*auth.Principal, error) {
			p := people[r.Header.Get("X-Test-As")]
			if p == nil {
				return nil, fhir.Errorf(fhir.Unauthorized, "", "unknown test caller %q", r.Header.Get("X-Test-As"))
			}
			return p, nil
		}
		c.Now = func() time.Time { return now }
	})
	f, err := family.Demo(now)
	if err != nil {
		tb.Fatal(err)
	}
	ts.load(tb, f)
	return ts
}

// as sends a request as the named caller and checks the status.
func (ts *testServer) as(tb testing.TB, who string, want int, method, path, body string) response {
	tb.Helper()
	res := ts.do(tb, method, path, body, "X-Test-As: "+who)
	if res.status != want {
		tb.Fatalf("%s %s %s: status %d, want %d: %s", who, method, path, res.status, want, res.body)
	}
	return res
}

// load writes family f as an operator (one transaction Bundle).
func (ts *testServer) load(tb testing.TB, f *family.Family) {
	tb.Helper()
	if res := ts.do(tb, "POST", "/fhir", string(f.Transaction()), "X-Test-As: operator"); res.status != http.StatusOK {
		tb.Fatalf("load %s: %d %s", f.Name, res.status, res.body)
	}
}

// withdraw has who set the active Consent id inactive (a performer's
// withdrawal, which takes effect at once).
func (ts *testServer) withdraw(tb testing.TB, who, id string) {
	tb.Helper()
	c := ts.as(tb, who, http.StatusOK, "GET", "/fhir/Consent/"+id, "").json(tb)
	c["status"] = mapping.ConsentInactive
	delete(c, "meta")
	b, err := json.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	ts.as(tb, who, http.StatusOK, "PUT", "/fhir/Consent/"+id, string(b))
}

// ids returns the Type/id of the entries of a search as who.
func (ts *testServer) ids(tb testing.TB, who, query string) []string {
	tb.Helper()
	return bundleIDs(tb, ts.as(tb, who, http.StatusOK, "GET", "/fhir/"+query, ""))
}

// rendered returns a function that turns a mapping conversion's result
// into its JSON, failing tb on an error.
func rendered(tb testing.TB) func([]byte, error) string {
	return func(b []byte, err error) string {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return string(b)
	}
}

// approveTaskFor finds the approve-change Task of focus and has the
// dossierhouder approve it.
func (ts *testServer) approveTaskFor(tb testing.TB, focus string) {
	tb.Helper()
	tasks := ts.ids(tb, "marieke", "Task?focus="+focus)
	if len(tasks) != 1 {
		tb.Fatalf("approve-change Tasks for %s: %v, want one", focus, tasks)
	}
	ts.as(tb, "marieke", http.StatusOK, "POST", "/fhir/"+tasks[0]+"/$approve", "")
}

// TestScenarioDyslexia is the dyslexia case of the source document: a
// speech therapist, a coach and the school are invited to one agreement of
// Daan's child plan (reading together), each adds findings, the parents read
// all of it and the helpers see nothing else.
func TestScenarioDyslexia(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, amsterdam)
	ts := newDemoServer(t, now)
	const agreement = "CarePlan/demo-afspraak-daan-lezen"
	day := now.Format(time.DateOnly)

	// The professionals are in the directory; they join Daan's team, which
	// the dossierhouder writes.
	for _, p := range []struct{ id, name string }{{"demo-logopedie", "Lotte"}, {"demo-coach", "Cor"}} {
		body := rendered(t)(mapping.Professional{ID: p.id, Name: mapping.Name{Given: []string{p.name}, Family: "Helper"}}.ToFHIR())
		ts.as(t, "operator", http.StatusCreated, "PUT", "/fhir/Practitioner/"+p.id, body)
	}
	teamRes := ts.as(t, "marieke", http.StatusOK, "GET", "/fhir/CareTeam/demo-team-daan", "")
	team, err := mapping.TeamFromFHIR(teamRes.body)
	if err != nil {
		t.Fatal(err)
	}
	team.Members = append(team.Members,
		mapping.TeamMember{Member: "Practitioner/demo-logopedie", Role: mapping.SpeechTherapist, Period: mapping.Period{Start: day}},
		mapping.TeamMember{Member: "Practitioner/demo-coach", Role: mapping.Coach, Period: mapping.Period{Start: day}},
		mapping.TeamMember{Member: "Organization/demo-obs-de-regenboog", Role: mapping.SchoolSystem, Period: mapping.Period{Start: day}},
	)
	ts.as(t, "marieke", http.StatusOK, "PUT", "/fhir/CareTeam/demo-team-daan", rendered(t)(team.ToFHIR()))

	// The parents grant each of them the one agreement (Daan is 9: the
	// parents consent); the grants are proposals until the dossierhouder
	// approves them.
	for _, grantee := range []string{"Practitioner/demo-logopedie", "Practitioner/demo-coach", "Organization/demo-obs-de-regenboog"} {
		g := mapping.Grant{
			Status: mapping.ConsentProposed, Patient: "Patient/demo-daan",
			ConsentedBy: []string{"RelatedPerson/demo-anna-daan", "RelatedPerson/demo-bram-daan"}, DateTime: now.Format(time.RFC3339),
			Grantee: grantee, Items: []string{agreement}, Interactions: []mapping.Interaction{mapping.Read, mapping.WriteOwnNotes},
			Period: mapping.Period{Start: day},
		}
		res := ts.as(t, "anna", http.StatusCreated, "POST", "/fhir/Consent", rendered(t)(g.ToFHIR()))
		id, _ := res.json(t)["id"].(string)
		// Not in force before approval.
		who := map[string]string{"Practitioner/demo-logopedie": "logopedie", "Practitioner/demo-coach": "coach", "Organization/demo-obs-de-regenboog": "school"}[grantee]
		if got := ts.ids(t, who, "Communication?about="+agreement); len(got) != 0 {
			t.Fatalf("%s sees %v before the grant is approved", who, got)
		}
		ts.approveTaskFor(t, "Consent/"+id)
	}

	// Each adds a finding on the agreement.
	note := func(author, text string) string {
		return rendered(t)(mapping.Note{About: agreement, PlanKind: mapping.ChildPlan, Subject: "Patient/demo-daan", Author: author, Sent: now.Format(time.RFC3339), Text: text}.ToFHIR())
	}
	n1 := ts.as(t, "logopedie", http.StatusCreated, "POST", "/fhir/Communication", note("Practitioner/demo-logopedie", "Fonologisch bewustzijn zwak; oefenen met klanken.")).json(t)["id"].(string)
	n2 := ts.as(t, "coach", http.StatusCreated, "POST", "/fhir/Communication", note("Practitioner/demo-coach", "Daan leest liever samen; beloning na tien minuten werkt.")).json(t)["id"].(string)
	obs := `{"resourceType":"Observation","status":"final","basedOn":[{"reference":"` + agreement + `"}],"code":{"text":"Leesvordering"},"subject":{"reference":"Patient/demo-daan"},"effectiveDateTime":"` + now.Format(time.RFC3339) + `","performer":[{"reference":"Organization/demo-obs-de-regenboog"}],"valueString":"AVI E4 gehaald."}`
	o1 := ts.as(t, "school", http.StatusCreated, "POST", "/fhir/Observation", obs).json(t)["id"].(string)
	findings := []string{"Communication/" + n1, "Communication/" + n2, "Observation/" + o1}

	// The parents read all of it.
	for _, parent := range []string{"anna", "bram"} {
		got := append(ts.ids(t, parent, "Communication?about="+agreement), ts.ids(t, parent, "Observation?based-on="+agreement)...)
		for _, f := range findings {
			if !slices.Contains(got, f) {
				t.Errorf("%s does not see %s: %v", parent, f, got)
			}
		}
	}
	// The helpers see the agreement and what refers to it, nothing else.
	for _, helper := range []string{"logopedie", "coach", "school"} {
		if helper != "school" {
			ts.as(t, helper, http.StatusOK, "GET", "/fhir/"+agreement, "")
			ts.as(t, helper, http.StatusNotFound, "GET", "/fhir/CarePlan/demo-kindplan-daan", "")
			ts.as(t, helper, http.StatusNotFound, "GET", "/fhir/Patient/demo-daan", "")
			ts.as(t, helper, http.StatusNotFound, "GET", "/fhir/Communication/demo-dagboek-1", "")
			ts.as(t, helper, http.StatusNotFound, "GET", "/fhir/CarePlan/demo-afspraak-sara-gesprekken", "")
		}
		for _, c := range ts.ids(t, helper, "Communication") {
			if !strings.HasPrefix(c, "Communication/demo-afspraak-daan-lezen-notitie-") && !slices.Contains(findings, c) {
				t.Errorf("%s sees %s, which is not about the agreement", helper, c)
			}
		}
		for _, o := range ts.ids(t, helper, "Observation") {
			if !slices.Contains(findings, o) {
				t.Errorf("%s sees %s, which is not about the agreement", helper, o)
			}
		}
	}
	// A helper cannot add a finding elsewhere.
	other := rendered(t)(mapping.Note{About: "CarePlan/demo-afspraak-sara-gesprekken", PlanKind: mapping.ChildPlan, Subject: "Patient/demo-sara",
		Author: "Practitioner/demo-coach", Sent: now.Format(time.RFC3339), Text: "Mag niet."}.ToFHIR())
	ts.as(t, "coach", http.StatusForbidden, "POST", "/fhir/Communication", other)
}

// TestScenarioConsentWithdrawnMidSession: a helper reading with a token
// already issued loses access on the next request once the Consent is
// withdrawn.
func TestScenarioConsentWithdrawnMidSession(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, amsterdam)
	ts := newDemoServer(t, now)
	ts.as(t, "fatima", http.StatusOK, "GET", "/fhir/CarePlan/demo-kindplan-sara", "")
	ts.as(t, "fatima", http.StatusOK, "GET", "/fhir/CarePlan/demo-kindplan-daan", "")

	// Sara (14, one of the Consent's performers) withdraws it.
	ts.withdraw(t, "sara", "demo-toestemming-fatima-sara")

	ts.as(t, "fatima", http.StatusNotFound, "GET", "/fhir/CarePlan/demo-kindplan-sara", "")
	if got := ts.ids(t, "fatima", "CarePlan?subject=Patient/demo-sara"); len(got) != 0 {
		t.Errorf("after the withdrawal fatima still finds %v", got)
	}
	// Daan's Consent is untouched.
	ts.as(t, "fatima", http.StatusOK, "GET", "/fhir/CarePlan/demo-kindplan-daan", "")
}

// TestScenarioApprovalRoundTrip: a parent proposes a change of an active
// agreement, cannot put it in force, the dossierhouder approves it; the old
// version ends and every version stays in history.
func TestScenarioApprovalRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, amsterdam)
	ts := newDemoServer(t, now)
	const old = "CarePlan/demo-afspraak-vakanties"
	a := mapping.Agreement{
		Plan: "CarePlan/demo-ouderschapsplan", PlanKind: mapping.ParentingPlan, Status: mapping.PlanActive,
		Title: "Vakanties en feestdagen", Description: "De zomervakantie in drie blokken van twee weken.",
		Subject: "Group/demo-gezin", Period: mapping.Period{Start: now.Format(time.DateOnly)}, Replaces: old,
	}
	// Straight into force: refused, with how to propose it.
	res := ts.as(t, "anna", http.StatusForbidden, "POST", "/fhir/CarePlan", rendered(t)(a.ToFHIR()))
	if !strings.Contains(string(res.body), "draft") {
		t.Errorf("the refusal does not say how to propose: %s", res.body)
	}
	// Changing the active agreement in place: refused.
	cur := ts.as(t, "anna", http.StatusOK, "GET", "/fhir/"+old, "").json(t)
	cur["description"] = "Stilletjes veranderd."
	delete(cur, "meta")
	b, _ := json.Marshal(cur)
	ts.as(t, "anna", http.StatusForbidden, "PUT", "/fhir/"+old, string(b))

	a.Status = mapping.PlanDraft
	id := ts.as(t, "anna", http.StatusCreated, "POST", "/fhir/CarePlan", rendered(t)(a.ToFHIR())).json(t)["id"].(string)
	tasks := ts.ids(t, "anna", "Task?focus=CarePlan/"+id)
	if len(tasks) != 1 {
		t.Fatalf("change requests: %v", tasks)
	}
	ts.as(t, "anna", http.StatusForbidden, "POST", "/fhir/"+tasks[0]+"/$approve", "")
	ts.as(t, "marieke", http.StatusOK, "POST", "/fhir/"+tasks[0]+"/$approve", "")

	if got := ts.as(t, "anna", http.StatusOK, "GET", "/fhir/CarePlan/"+id, "").json(t)["status"]; got != mapping.PlanActive {
		t.Errorf("approved proposal has status %v", got)
	}
	if got := ts.as(t, "anna", http.StatusOK, "GET", "/fhir/"+old, "").json(t)["status"]; got != mapping.PlanRevoked {
		t.Errorf("replaced agreement has status %v", got)
	}
	hist := ts.as(t, "anna", http.StatusOK, "GET", "/fhir/"+old+"/_history", "").json(t)
	if n, _ := hist["total"].(float64); n < 2 {
		t.Errorf("history of the replaced agreement has %v versions, want 2", hist["total"])
	}
	// Every write carries its Provenance.
	if got := ts.ids(t, "operator", "Provenance?target=CarePlan/"+id); len(got) < 2 {
		t.Errorf("Provenance of the proposal: %v, want one per version", got)
	}
}

// TestScenarioSixteenRefusesParent: from 16 the child decides; when the
// 16-year-old withdraws what they shared, the parent reads nothing of it.
func TestScenarioSixteenRefusesParent(t *testing.T) {
	ts := newPolicyServer(t, matrixNow)
	f, err := family.Matrix(matrixNow)
	if err != nil {
		t.Fatal(err)
	}
	ts.load(t, f)
	ts.as(t, "anna", http.StatusOK, "GET", "/fhir/Communication/m-dagboek-4", "")
	ts.as(t, "anna", http.StatusNotFound, "GET", "/fhir/CarePlan/m-kindplan-c16", "")
	// The day before, at 15, Anna read it all.
	ts15 := newPolicyServer(t, matrixNow.AddDate(0, 0, -1))
	ts15.load(t, f)
	ts15.as(t, "anna", http.StatusOK, "GET", "/fhir/CarePlan/m-kindplan-c16", "")

	ts.withdraw(t, "c16", "m-toestemming-c16-anna")
	ts.as(t, "anna", http.StatusNotFound, "GET", "/fhir/Communication/m-dagboek-4", "")
	if got := ts.ids(t, "anna", "Communication?subject=Patient/m-c16"); len(got) != 0 {
		t.Errorf("after the refusal anna finds %v", got)
	}
}
