package rest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/smart"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rest"
	"github.com/digitaleouder/ouder/mapping"
	"github.com/digitaleouder/ouder/mapping/family"
)

// The approval workflow and invitations are tested with the demo family's
// people: Anna (Person/demo-anna, a parent with authority over Sara and
// Daan) proposes, Marieke (Practitioner/demo-marieke) is the dossierhouder
// of both children's teams. Their access comes from the access policy
// (auth/policy) as ouderd decides it; the "As" header of a request picks
// the caller.

// workflowNow is the test server's clock (helpers_test.go).
var workflowNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// callers are the principals of the workflow tests by name.
func callers(tb testing.TB) map[string]*auth.Principal {
	tb.Helper()
	user, err := smart.Parse("openid fhirUser user/*.cruds")
	if err != nil {
		tb.Fatal(err)
	}
	return map[string]*auth.Principal{
		"operator": {Subject: "test-operator", Operator: true},
		"anna":     {Subject: "Person/demo-anna", ClientID: "app", FHIRUser: "Person/demo-anna", Scopes: user},
		"bram":     {Subject: "Person/demo-bram", ClientID: "app", FHIRUser: "Person/demo-bram", Scopes: user},
		"marieke":  {Subject: "Practitioner/demo-marieke", ClientID: "app", FHIRUser: "Practitioner/demo-marieke", Scopes: user},
		"kees":     {Subject: "Practitioner/demo-kees", ClientID: "app", FHIRUser: "Practitioner/demo-kees", Scopes: user},
	}
}

// workflowServer is the REST API with the demo family loaded, callers
// chosen by the "As" header (default: the operator), and invitation
// e-mail collected in mails.
type workflowServer struct {
	*testServer
	api   func() *rest.Server
	mu    sync.Mutex
	mails []rest.InvitationMail
	clock *time.Time
}

func newWorkflowServer(t *testing.T) *workflowServer {
	t.Helper()
	ws := &workflowServer{}
	now := workflowNow
	ws.clock = &now
	people := callers(t)
	var cfg *rest.Config
	ws.testServer = newServer(t, func(c *rest.Config) {
		cfg = c
		c.Now = func() time.Time { return *ws.clock }
		c.Authenticate = func(r *http.Request) (*auth.Principal, error) {
			as := r.Header.Get("As")
			if as == "" {
				as = "operator"
			}
			p := people[as]
			if p == nil {
				return nil, fhir.Errorf(fhir.Unauthorized, "", "unknown test caller %q", as)
			}
			return p, nil
		}
		c.SendInvitation = func(_ context.Context, m rest.InvitationMail) error {
			ws.mu.Lock()
			defer ws.mu.Unlock()
			ws.mails = append(ws.mails, m)
			return nil
		}
	})
	// A second Server on the same database and configuration, for the
	// acceptance calls the authorization server makes in process.
	var api *rest.Server
	ws.api = func() *rest.Server {
		if api == nil {
			var err error
			if api, err = rest.New(*cfg); err != nil {
				t.Fatal(err)
			}
		}
		return api
	}
	f, err := family.Demo(workflowNow)
	if err != nil {
		t.Fatal(err)
	}
	if res := ws.do(t, "POST", "/fhir", string(f.Transaction())); res.status != http.StatusOK {
		t.Fatalf("load the demo family: %d %s", res.status, res.body)
	}
	return ws
}

// as sends a request as the named caller.
func (ws *workflowServer) as(tb testing.TB, who, method, path, body string, headers ...string) response {
	tb.Helper()
	return ws.do(tb, method, path, body, append(headers, "As: "+who)...)
}

// resource reads Type/id as the operator.
func (ws *workflowServer) resource(tb testing.TB, ref string) map[string]any {
	tb.Helper()
	res := ws.do(tb, "GET", "/fhir/"+ref, "")
	if res.status != http.StatusOK {
		tb.Fatalf("read %s: %d %s", ref, res.status, res.body)
	}
	return res.json(tb)
}

// versions returns the statuses of every version of ref, oldest first,
// read with the element of its lifecycle.
func (ws *workflowServer) versions(tb testing.TB, ref, element string) []string {
	tb.Helper()
	res := ws.do(tb, "GET", "/fhir/"+ref+"/_history", "")
	if res.status != http.StatusOK {
		tb.Fatalf("history %s: %d %s", ref, res.status, res.body)
	}
	var out []string
	entries, _ := res.json(tb)["entry"].([]any)
	for i := len(entries) - 1; i >= 0; i-- {
		r, _ := entries[i].(map[string]any)["resource"].(map[string]any)
		s, _ := r[element].(string)
		out = append(out, s)
	}
	return out
}

// tasksFor returns the approve-change Tasks whose focus is ref.
func (ws *workflowServer) tasksFor(tb testing.TB, ref string) []map[string]any {
	tb.Helper()
	res := ws.do(tb, "GET", "/fhir/Task?code="+mapping.TaskCodeSystem+"|approve-change&focus="+ref, "")
	if res.status != http.StatusOK {
		tb.Fatalf("search tasks: %d %s", res.status, res.body)
	}
	var out []map[string]any
	entries, _ := res.json(tb)["entry"].([]any)
	for _, e := range entries {
		out = append(out, e.(map[string]any)["resource"].(map[string]any))
	}
	return out
}

func refOf(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["reference"].(string)
	return s
}

func codeOf(v any) string {
	m, _ := v.(map[string]any)
	cs, _ := m["coding"].([]any)
	if len(cs) == 0 {
		return ""
	}
	c, _ := cs[0].(map[string]any)["code"].(string)
	return c
}

// proposal is a new agreement of the parenting plan replacing old: a copy
// of it, in draft, with another description.
func (ws *workflowServer) proposal(tb testing.TB, old, description string) string {
	tb.Helper()
	m := ws.resource(tb, old)
	delete(m, "id")
	delete(m, "meta")
	m["status"] = mapping.PlanDraft
	m["description"] = description
	m["replaces"] = []any{map[string]any{"reference": old}}
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

const activeAgreement = "CarePlan/demo-afspraak-telefoon"

// TestApprovalRoundTrip: a parent proposes a change of an active agreement,
// the server asks the dossierhouder, who approves; the new version is in
// force, the old one revoked, and history keeps every version.
func TestApprovalRoundTrip(t *testing.T) {
	ws := newWorkflowServer(t)
	res := ws.as(t, "anna", "POST", "/fhir/CarePlan", ws.proposal(t, activeAgreement, "Om tien uur in het weekend, half tien doordeweeks."))
	if res.status != http.StatusCreated {
		t.Fatalf("propose: %d %s", res.status, res.body)
	}
	proposal := "CarePlan/" + res.json(t)["id"].(string)
	tasks := ws.tasksFor(t, proposal)
	if len(tasks) != 1 {
		t.Fatalf("%d change requests for %s, want 1", len(tasks), proposal)
	}
	task := tasks[0]
	for what, got := range map[string]string{
		"status":    task["status"].(string),
		"focus":     refOf(task["focus"]),
		"for":       refOf(task["for"]),
		"owner":     refOf(task["owner"]),
		"requester": refOf(task["requester"]),
	} {
		want := map[string]string{
			"status": "requested", "focus": proposal + "/_history/1", "for": "Group/demo-gezin",
			"owner": "Practitioner/demo-marieke", "requester": "RelatedPerson/demo-anna-sara",
		}[what]
		if what == "requester" && strings.HasPrefix(got, "RelatedPerson/demo-anna-") {
			continue // either of Anna's RelatedPersons speaks for the family
		}
		if got != want {
			t.Errorf("change request %s = %q, want %q", what, got, want)
		}
	}
	taskRef := "Task/" + task["id"].(string)

	// Someone who is not the dossierhouder cannot decide.
	if res := ws.as(t, "bram", "POST", "/fhir/"+taskRef+"/$approve", ""); res.status != http.StatusForbidden && res.status != http.StatusNotFound {
		t.Errorf("approve by a parent: %d %s, want 403 or 404", res.status, res.body)
	}
	res = ws.as(t, "marieke", "POST", "/fhir/"+taskRef+"/$approve", "")
	if res.status != http.StatusOK {
		t.Fatalf("approve: %d %s", res.status, res.body)
	}
	done := res.json(t)
	if done["status"] != "completed" || codeOf(done["businessStatus"]) != "approved" {
		t.Errorf("the decided Task: status %v, businessStatus %v", done["status"], done["businessStatus"])
	}
	if got := ws.resource(t, proposal)["status"]; got != mapping.PlanActive {
		t.Errorf("%s after approval: %v, want active", proposal, got)
	}
	if got := ws.resource(t, activeAgreement)["status"]; got != mapping.PlanRevoked {
		t.Errorf("%s after approval of its replacement: %v, want revoked", activeAgreement, got)
	}
	for ref, want := range map[string]string{proposal: "draft active", activeAgreement: "active revoked", taskRef: "requested completed"} {
		if got := strings.Join(ws.versions(t, ref, "status"), " "); got != want {
			t.Errorf("history of %s: %q, want %q", ref, got, want)
		}
	}
	// Deciding again is a conflict.
	if res := ws.as(t, "marieke", "POST", "/fhir/"+taskRef+"/$approve", ""); res.status != http.StatusConflict {
		t.Errorf("approve twice: %d %s, want 409", res.status, res.body)
	}
}

// reason is a Parameters body with a reason.
func reason(text string) string {
	return `{"resourceType":"Parameters","parameter":[{"name":"reason","valueString":"` + text + `"}]}`
}

func TestRejectWithReason(t *testing.T) {
	ws := newWorkflowServer(t)
	res := ws.as(t, "anna", "POST", "/fhir/CarePlan", ws.proposal(t, activeAgreement, "Geen telefoon na negen uur."))
	if res.status != http.StatusCreated {
		t.Fatalf("propose: %d %s", res.status, res.body)
	}
	proposal := "CarePlan/" + res.json(t)["id"].(string)
	tasks := ws.tasksFor(t, proposal)
	if len(tasks) != 1 {
		t.Fatalf("%d change requests, want 1", len(tasks))
	}
	taskRef := "Task/" + tasks[0]["id"].(string)
	if res := ws.as(t, "marieke", "POST", "/fhir/"+taskRef+"/$reject", ""); res.status != http.StatusBadRequest {
		t.Errorf("reject without a reason: %d %s, want 400", res.status, res.body)
	}
	res = ws.as(t, "marieke", "POST", "/fhir/"+taskRef+"/$reject", reason("Eerst samen bespreken bij de evaluatie."))
	if res.status != http.StatusOK {
		t.Fatalf("reject: %d %s", res.status, res.body)
	}
	done := res.json(t)
	if done["status"] != "completed" || codeOf(done["businessStatus"]) != "rejected" {
		t.Errorf("the decided Task: %v %v", done["status"], done["businessStatus"])
	}
	if got, _ := done["statusReason"].(map[string]any)["text"].(string); got != "Eerst samen bespreken bij de evaluatie." {
		t.Errorf("statusReason %q", got)
	}
	if got := ws.resource(t, proposal)["status"]; got != mapping.PlanRevoked {
		t.Errorf("the rejected proposal: %v, want revoked", got)
	}
	if got := ws.resource(t, activeAgreement)["status"]; got != mapping.PlanActive {
		t.Errorf("the agreement a rejected proposal would replace: %v, want still active", got)
	}
}

// TestDirectChangeRefused: only the dossierhouder changes an active
// agreement; anyone else is told how to propose it, and nothing is stored.
func TestDirectChangeRefused(t *testing.T) {
	ws := newWorkflowServer(t)
	current := ws.resource(t, activeAgreement)
	current["description"] = "Stiekem aangepast."
	changed, _ := json.Marshal(current)
	draft := ws.resource(t, activeAgreement)
	draft["status"] = mapping.PlanDraft
	drafted, _ := json.Marshal(draft)
	newActive := ws.proposal(t, activeAgreement, "Direct actief?")
	newActive = strings.Replace(newActive, `"status":"draft"`, `"status":"active"`, 1)
	patch := `[{"op":"replace","path":"/description","value":"Gepatcht."}]`
	resources, versions := ws.rows(t)
	for _, c := range []struct {
		name, method, path, body string
		headers                  []string
	}{
		{"update in place", "PUT", "/fhir/" + activeAgreement, string(changed), nil},
		{"update to draft", "PUT", "/fhir/" + activeAgreement, string(drafted), nil},
		{"patch", "PATCH", "/fhir/" + activeAgreement, patch, []string{"Content-Type: application/json-patch+json"}},
		{"delete", "DELETE", "/fhir/" + activeAgreement, "", nil},
		{"create active", "POST", "/fhir/CarePlan", newActive, nil},
		{"in a transaction", "POST", "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":` + string(changed) +
			`,"request":{"method":"PUT","url":"` + activeAgreement + `"}}]}`, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := ws.as(t, "anna", c.method, c.path, c.body, c.headers...)
			if res.status != http.StatusForbidden {
				t.Fatalf("%d %s, want 403", res.status, res.body)
			}
			body := string(res.body)
			if !strings.Contains(body, "CarePlan.status") || !strings.Contains(body, "replaces") || !strings.Contains(body, "draft") {
				t.Errorf("the OperationOutcome does not say how to propose the change: %s", body)
			}
		})
	}
	if r, v := ws.rows(t); r != resources || v != versions {
		t.Errorf("refused writes stored something: %d/%d resources/versions, was %d/%d", r, v, resources, versions)
	}
	// The dossierhouder may.
	if res := ws.as(t, "marieke", "PUT", "/fhir/"+activeAgreement, string(changed)); res.status != http.StatusOK {
		t.Errorf("the dossierhouder's update: %d %s", res.status, res.body)
	}
}

// TestConsentWithdrawal: whoever gave a consent may withdraw it directly
// (and change nothing else that way); others may not.
func TestConsentWithdrawal(t *testing.T) {
	ws := newWorkflowServer(t)
	const ref = "Consent/demo-toestemming-kees-daan"
	c := ws.resource(t, ref)
	c["status"] = mapping.ConsentInactive
	withdrawn, _ := json.Marshal(c)
	c["provision"].(map[string]any)["period"] = map[string]any{"start": "2020-01-01"}
	more, _ := json.Marshal(c)
	if res := ws.as(t, "kees", "PUT", "/fhir/"+ref, string(withdrawn)); res.status != http.StatusForbidden && res.status != http.StatusNotFound {
		t.Errorf("withdrawal by the grantee: %d %s, want 403 or 404", res.status, res.body)
	}
	if res := ws.as(t, "anna", "PUT", "/fhir/"+ref, string(more)); res.status != http.StatusForbidden {
		t.Errorf("withdrawal with another change: %d %s, want 403", res.status, res.body)
	}
	if res := ws.as(t, "anna", "PUT", "/fhir/"+ref, string(withdrawn)); res.status != http.StatusOK {
		t.Fatalf("withdrawal by a performer: %d %s", res.status, res.body)
	}
	if got := strings.Join(ws.versions(t, ref, "status"), " "); got != "active inactive" {
		t.Errorf("history of %s: %q", ref, got)
	}
}

// TestDecisionConflicts: decisions on what is not a requested change
// request, or on a proposal that changed since, are refused.
func TestDecisionConflicts(t *testing.T) {
	ws := newWorkflowServer(t)
	res := ws.as(t, "anna", "POST", "/fhir/CarePlan", ws.proposal(t, activeAgreement, "Versie 1."))
	if res.status != http.StatusCreated {
		t.Fatalf("propose: %d %s", res.status, res.body)
	}
	proposal := res.json(t)
	ref := "CarePlan/" + proposal["id"].(string)
	taskRef := "Task/" + ws.tasksFor(t, ref)[0]["id"].(string)

	// The proposer amends the proposal: the open request follows it.
	proposal["description"] = "Versie 2."
	b, _ := json.Marshal(proposal)
	if res := ws.as(t, "anna", "PUT", "/fhir/"+ref, string(b)); res.status != http.StatusOK {
		t.Fatalf("amend the proposal: %d %s", res.status, res.body)
	}
	if tasks := ws.tasksFor(t, ref); len(tasks) != 1 || refOf(tasks[0]["focus"]) != ref+"/_history/2" {
		t.Fatalf("after the amendment: %v", tasks)
	}
	// An operator changes it outside the workflow: the request is stale.
	proposal["description"] = "Versie 3."
	b, _ = json.Marshal(proposal)
	if res := ws.do(t, "PUT", "/fhir/"+ref, string(b)); res.status != http.StatusOK {
		t.Fatalf("operator update: %d %s", res.status, res.body)
	}
	for _, c := range []struct {
		name, path, body string
		status           int
	}{
		{"focus changed since", "/fhir/" + taskRef + "/$approve", "", http.StatusConflict},
		{"not a change request", "/fhir/Task/demo-afspraak-sport-wijzigingsverzoek-not-there/$approve", "", http.StatusNotFound},
		{"not a Task", "/fhir/CarePlan/demo-afspraak-sport/$approve", "", http.StatusNotFound},
		{"unknown parameter", "/fhir/" + taskRef + "/$approve", `{"resourceType":"Parameters","parameter":[{"name":"why","valueString":"x"}]}`, http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			if res := ws.as(t, "marieke", "POST", c.path, c.body); res.status != c.status {
				t.Errorf("%d %s, want %d", res.status, res.body, c.status)
			}
		})
	}
	// Withdrawing the proposal (deleting it) cancels its request.
	if res := ws.as(t, "anna", "DELETE", "/fhir/"+ref, ""); res.status != http.StatusNoContent {
		t.Fatalf("withdraw: %d %s", res.status, res.body)
	}
	if got := ws.resource(t, taskRef)["status"]; got != mapping.TaskCancelled {
		t.Errorf("the request of a withdrawn proposal: %v, want cancelled", got)
	}
	if res := ws.as(t, "marieke", "POST", "/fhir/"+taskRef+"/$approve", ""); res.status != http.StatusConflict {
		t.Errorf("approve a cancelled request: %d %s, want 409", res.status, res.body)
	}
	// The invitation-free demo: a Task that is no change request.
	yearly := `{"resourceType":"Task","status":"requested","intent":"order","code":{"coding":[{"system":"` + mapping.TaskCodeSystem + `","code":"yearly-evaluation"}]},` +
		`"focus":{"reference":"CarePlan/demo-ouderschapsplan"},"for":{"reference":"Group/demo-gezin"},"executionPeriod":{"start":"2026-12-01"}}`
	id := ws.create(t, "Task", yearly)
	if res := ws.as(t, "marieke", "POST", "/fhir/Task/"+id+"/$approve", ""); res.status != http.StatusUnprocessableEntity {
		t.Errorf("approve a yearly evaluation: %d %s, want 422", res.status, res.body)
	}
}

// invite is the Parameters of an invitation of a speech therapist for Sara.
const invite = `{"resourceType":"Parameters","parameter":[
 {"name":"email","valueString":"logopedie@example.org"},
 {"name":"name","valueString":"Eva Smit"},
 {"name":"role","valueCode":"speech-therapist"},
 {"name":"section","valueCode":"observations"},
 {"name":"section","valueCode":"child-plan"},
 {"name":"end","valueDate":"2027-06-30"}]}`

// TestInvitation: a parent invites a helper; the e-mail goes out with the
// link's token, never stored; accepting binds the login, adds the helper
// to the team and completes the invitation; a used or expired link is
// refused.
func TestInvitation(t *testing.T) {
	ws := newWorkflowServer(t)
	res := ws.as(t, "anna", "POST", "/fhir/Patient/demo-sara/$invite", invite)
	if res.status != http.StatusCreated {
		t.Fatalf("invite: %d %s\n%s", res.status, res.body, ws.logs)
	}
	task := res.json(t)
	taskRef := "Task/" + task["id"].(string)
	if codeOf(task["businessStatus"]) != "sent" || task["status"] != "requested" || refOf(task["focus"]) != "CareTeam/demo-team-sara" {
		t.Errorf("the invitation: %s", res.body)
	}
	if len(ws.mails) != 1 || ws.mails[0].To != "logopedie@example.org" || len(ws.mails[0].Token) < 40 {
		t.Fatalf("mails: %+v", ws.mails)
	}
	token := ws.mails[0].Token
	if strings.Contains(string(res.body), token) {
		t.Error("the Task holds the token")
	}
	var versions int
	if err := ws.pool.QueryRow(context.Background(), `SELECT count(*) FROM resource_history WHERE body::text LIKE '%' || $1 || '%'`, token).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if versions != 0 {
		t.Errorf("%d stored versions hold the token", versions)
	}
	invitee := refOf(task["owner"])
	if p := ws.resource(t, invitee); !strings.Contains(string(mustJSON(t, p)), "logopedie@example.org") {
		t.Errorf("the invitee %s has no e-mail address: %v", invitee, p)
	}
	var grant string
	for _, in := range task["input"].([]any) {
		if v := refOf(in.(map[string]any)["valueReference"]); v != "" {
			grant = v
		}
	}
	if c := ws.resource(t, grant); c["status"] != mapping.ConsentProposed {
		t.Errorf("the grant %s: %v, want proposed", grant, c["status"])
	}
	if tasks := ws.tasksFor(t, grant); len(tasks) != 1 || refOf(tasks[0]["owner"]) != "Practitioner/demo-marieke" {
		t.Errorf("the grant's change request: %v", tasks)
	}

	api := ws.api()
	ctx := context.Background()
	if _, err := api.LookupInvitation(ctx, "not-a-token"); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("an unknown token: %v, want NotFound", err)
	}
	inv, err := api.LookupInvitation(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Task != taskRef || inv.Child == "" || inv.Invitee != "Eva Smit" || inv.Role != "Logopedist" {
		t.Errorf("the invitation as the page shows it: %+v", inv)
	}
	if _, err := api.AcceptInvitation(ctx, inv.Task, "https://idp.example", "eva-123"); err != nil {
		t.Fatalf("accept: %v", err)
	}
	p := mustJSON(t, ws.resource(t, invitee))
	if !strings.Contains(string(p), `{"system":"https://idp.example","value":"eva-123"}`) {
		t.Errorf("the invitee is not bound to the login: %s", p)
	}
	team := mustJSON(t, ws.resource(t, "CareTeam/demo-team-sara"))
	if !strings.Contains(string(team), `"member":{"reference":"`+invitee+`"}`) || !strings.Contains(string(team), `"end":"2027-06-30"`) {
		t.Errorf("the team has no member %s until 2027-06-30: %s", invitee, team)
	}
	if got := ws.resource(t, taskRef); got["status"] != "completed" || codeOf(got["businessStatus"]) != "accepted" {
		t.Errorf("the accepted invitation: %v %v", got["status"], got["businessStatus"])
	}
	if _, err := api.LookupInvitation(ctx, token); !fhir.IsKind(err, fhir.Gone) {
		t.Errorf("a used link: %v, want Gone", err)
	}
	if _, err := api.AcceptInvitation(ctx, inv.Task, "https://idp.example", "eva-123"); !fhir.IsKind(err, fhir.Gone) {
		t.Errorf("accepting twice: %v, want Gone", err)
	}
}

func TestInvitationExpires(t *testing.T) {
	ws := newWorkflowServer(t)
	res := ws.as(t, "anna", "POST", "/fhir/Patient/demo-sara/$invite", invite)
	if res.status != http.StatusCreated {
		t.Fatalf("invite: %d %s", res.status, res.body)
	}
	taskRef := "Task/" + res.json(t)["id"].(string)
	*ws.clock = workflowNow.Add(rest.DefaultInvitationLifetime + time.Minute)
	api := ws.api()
	if _, err := api.LookupInvitation(context.Background(), ws.mails[0].Token); !fhir.IsKind(err, fhir.Gone) {
		t.Fatalf("an expired link: %v, want Gone", err)
	}
	if got := ws.resource(t, taskRef); codeOf(got["businessStatus"]) != "expired" {
		t.Errorf("the expired invitation: %v", got["businessStatus"])
	}
	if _, err := api.AcceptInvitation(context.Background(), taskRef, "https://idp.example", "x"); !fhir.IsKind(err, fhir.Gone) {
		t.Errorf("accepting an expired invitation: %v, want Gone", err)
	}
	// Bad invitations are refused before anything is written.
	resources, versions := ws.rows(t)
	for _, body := range []string{
		strings.Replace(invite, "logopedie@example.org", "not-an-address", 1),
		strings.Replace(invite, "speech-therapist", "dossierhouder", 1),
		strings.Replace(invite, "child-plan", "audit", 1),
	} {
		if res := ws.as(t, "anna", "POST", "/fhir/Patient/demo-sara/$invite", body); res.status != http.StatusBadRequest {
			t.Errorf("bad invitation: %d %s, want 400", res.status, res.body)
		}
	}
	if r, v := ws.rows(t); r != resources || v != versions {
		t.Errorf("refused invitations stored something")
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestApproveDemoChangeRequest: the demo family's change request names its
// proposal without a version; the dossierhouder decides on it as it is.
func TestApproveDemoChangeRequest(t *testing.T) {
	ws := newWorkflowServer(t)
	res := ws.as(t, "marieke", "POST", "/fhir/Task/demo-afspraak-sport-wijzigingsverzoek/$approve", reason("Akkoord, zo afgesproken in het gesprek."))
	if res.status != http.StatusOK {
		t.Fatalf("approve: %d %s", res.status, res.body)
	}
	if got := ws.resource(t, "CarePlan/demo-afspraak-sport")["status"]; got != mapping.PlanActive {
		t.Errorf("the approved demo proposal: %v", got)
	}
}
