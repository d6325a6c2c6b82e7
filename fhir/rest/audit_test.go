package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rest"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/postgres"
)

// withAudit turns auditing on, writing through the AuditWriter *w.
func withAudit(tb testing.TB, w **postgres.AuditWriter) serverOption {
	return func(c *rest.Config) {
		*w = c.Store.(*postgres.Store).NewAuditWriter(64, func(err error) { tb.Error(err) })
		tb.Cleanup((*w).Close)
		c.Audit = *w
	}
}

// withCallers authenticates "X-Test-Who: name" as a practitioner using the
// app "app" (no header: 401), and refuses every interaction of "denied".
func withCallers() serverOption {
	return func(c *rest.Config) {
		c.Authenticate = func(r *http.Request) (*auth.Principal, error) {
			who := r.Header.Get("X-Test-Who")
			if who == "" {
				return nil, fhir.Errorf(fhir.Unauthorized, "", "no token")
			}
			return &auth.Principal{Issuer: "https://as", Subject: who, ClientID: "app", FHIRUser: "Practitioner/" + who}, nil
		}
		c.Authorize = func(_ context.Context, p *auth.Principal, in auth.Interaction, types ...string) (*search.Access, error) {
			if p.Subject == "denied" {
				return nil, fhir.Errorf(fhir.Forbidden, "", "denied")
			}
			return search.Unrestricted(), nil
		}
	}
}

// auditRows returns one line per audit row, in order: subtype, action,
// outcome, agents, entities and patients.
func auditRows(tb testing.TB, ts *testServer) []string {
	tb.Helper()
	rows, err := ts.pool.Query(context.Background(), `SELECT subtype, action, outcome, array_to_string(agents, ','),
		array_to_string(entities, ','), array_to_string(patients, ',') FROM audit_events ORDER BY seq`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var f [6]string
		if err := rows.Scan(&f[0], &f[1], &f[2], &f[3], &f[4], &f[5]); err != nil {
			tb.Fatal(err)
		}
		out = append(out, strings.Join(f[:], " "))
	}
	return out
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	var w *postgres.AuditWriter
	ts := newServer(t, withCallers(), withAudit(t, &w))
	who := "X-Test-Who: kees"
	agent := "Practitioner/kees,https://digitaleouder.nl/fhir/NamingSystem/client-id|app"
	var id, obs string
	steps := []struct {
		name         string
		method, path string
		body         string
		headers      []string
		status       int
		want         []string // the audit rows the step adds; "$p" is the patient's id, "$o" the Observation's
	}{
		{name: "create", method: "POST", path: "/fhir/Patient", body: `{"resourceType":"Patient"}`, status: 201,
			want: []string{"create C 0 " + agent + " Patient/$p Patient/$p"}},
		{name: "create about the patient", method: "POST", path: "/fhir/Observation", body: `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/$p"}}`, status: 201,
			want: []string{"create C 0 " + agent + " Observation/$o Patient/$p"}},
		{name: "read", method: "GET", path: "/fhir/Patient/$p", status: 200,
			want: []string{"read R 0 " + agent + " Patient/$p Patient/$p"}},
		{name: "search", method: "GET", path: "/fhir/Observation?subject=Patient/$p", status: 200,
			want: []string{"search-type E 0 " + agent + " Observation/$o Patient/$p"}},
		{name: "read of nothing", method: "GET", path: "/fhir/Patient/nope", status: 404,
			want: []string{"read R 4 " + agent + " Patient/nope "}},
		{name: "failed update", method: "PUT", path: "/fhir/Patient/$p", body: `{"resourceType":"Patient","id":"$p"}`, headers: []string{`If-Match: W/"9"`}, status: 412,
			want: []string{"update U 4 " + agent + " Patient/$p Patient/$p"}},
		{name: "delete of nothing", method: "DELETE", path: "/fhir/Patient/nope", status: 204,
			want: []string{"delete D 0 " + agent + " Patient/nope "}},
		{name: "Provenance by a client", method: "POST", path: "/fhir/Provenance", body: `{"resourceType":"Provenance"}`, status: 405,
			want: []string{"create C 4 " + agent + "  "}},
		{name: "AuditEvent by a client", method: "PUT", path: "/fhir/AuditEvent/a1", body: `{"resourceType":"AuditEvent"}`, status: 405,
			want: []string{"update U 4 " + agent + " AuditEvent/a1 "}},
		{name: "refused", method: "GET", path: "/fhir/Patient/$p", headers: []string{"X-Test-Who: denied"}, status: 403,
			want: []string{"read R 4 Practitioner/denied,https://digitaleouder.nl/fhir/NamingSystem/client-id|app Patient/$p Patient/$p"}},
		{name: "unauthenticated", method: "GET", path: "/fhir/Observation/$o", headers: []string{"X-Test-Who:"}, status: 401,
			want: []string{"read R 4  Observation/$o Patient/$p"}},
		{name: "transaction", method: "POST", path: "/fhir", status: 200, body: `{"resourceType":"Bundle","type":"transaction","entry":[
			{"request":{"method":"GET","url":"Patient/$p"}},
			{"request":{"method":"DELETE","url":"Observation/$o"}}]}`,
			want: []string{"delete D 0 " + agent + " Observation/$o Patient/$p", "read R 0 " + agent + " Patient/$p Patient/$p"}},
		{name: "failed transaction", method: "POST", path: "/fhir", status: 400, body: `{"resourceType":"Bundle","type":"transaction","entry":[
			{"request":{"method":"POST","url":"Patient"},"resource":{"resourceType":"Patient","birthDate":"never"}}]}`,
			want: []string{"transaction E 4 " + agent + "  "}},
		{name: "batch", method: "POST", path: "/fhir", status: 200, body: `{"resourceType":"Bundle","type":"batch","entry":[
			{"request":{"method":"GET","url":"Patient/$p"}},
			{"request":{"method":"POST","url":"Provenance"},"resource":{"resourceType":"Provenance"}}]}`,
			want: []string{"read R 0 " + agent + " Patient/$p Patient/$p", "create C 4 " + agent + "  "}},
	}
	var rows int
	for _, st := range steps {
		subst := func(s string) string { return strings.NewReplacer("$p", id, "$o", obs).Replace(s) }
		headers := []string{who}
		for _, h := range st.headers {
			headers = append(headers, subst(h))
		}
		res := ts.do(t, st.method, subst(st.path), subst(st.body), headers...)
		if res.status != st.status {
			t.Fatalf("%s: status %d, want %d: %s", st.name, res.status, st.status, res.body)
		}
		switch st.name {
		case "create":
			id = res.json(t)["id"].(string)
		case "create about the patient":
			obs = res.json(t)["id"].(string)
		}
		w.Flush()
		all := auditRows(t, ts)
		got := all[rows:]
		rows = len(all)
		var want []string
		for _, s := range st.want {
			want = append(want, subst(s))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: audit rows\n got %q\nwant %q", st.name, got, want)
		}
	}

	// The trail answers "who saw this child's data" through the API.
	res := ts.do(t, "GET", "/fhir/AuditEvent?patient=Patient/"+id+"&agent=Practitioner/kees&action=R&_total=accurate", "", who)
	var b struct {
		Total int `json:"total"`
		Entry []struct {
			Resource struct {
				ID    string `json:"id"`
				Agent []struct {
					Who struct{ Reference string } `json:"who"`
				} `json:"agent"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(res.body, &b); err != nil || res.status != 200 {
		t.Fatalf("AuditEvent search: %d %s", res.status, res.body)
	}
	if b.Total != 3 || len(b.Entry) != 3 || b.Entry[0].Resource.Agent[0].Who.Reference != "Practitioner/kees" {
		t.Errorf("AuditEvent?patient=...&action=R: total %d: %s", b.Total, res.body)
	}
	if res := ts.do(t, "GET", "/fhir/AuditEvent/"+b.Entry[0].Resource.ID, "", who); res.status != 200 {
		t.Errorf("read of an AuditEvent: %d %s", res.status, res.body)
	}
	res = ts.do(t, "GET", "/fhir/AuditEvent?entity-type=2", "", who)
	if got := issues(t, res); res.status != 400 || !strings.Contains(fmt.Sprint(got), "entity-type") {
		t.Errorf("unsupported AuditEvent parameter: %d %v", res.status, got)
	}

	// One Provenance per version written: the create of the patient and
	// of the Observation, and the Observation's deletion.
	res = ts.do(t, "GET", "/fhir/Provenance?_total=accurate&_sort=_lastUpdated", "", who)
	var pb struct {
		Total int `json:"total"`
		Entry []struct {
			Resource struct {
				Target   []struct{ Reference string } `json:"target"`
				Activity struct {
					Coding []struct{ Code string } `json:"coding"`
				} `json:"activity"`
				Agent []struct {
					Who        map[string]any `json:"who"`
					OnBehalfOf map[string]any `json:"onBehalfOf"`
				} `json:"agent"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(res.body, &pb); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range pb.Entry {
		r := e.Resource
		got = append(got, fmt.Sprintf("%s %s %v %v", r.Activity.Coding[0].Code, r.Target[0].Reference, r.Agent[0].Who["reference"], r.Agent[1].OnBehalfOf["reference"]))
	}
	want := []string{
		"CREATE Patient/" + id + "/_history/1 Practitioner/kees Practitioner/kees",
		"CREATE Observation/" + obs + "/_history/1 Practitioner/kees Practitioner/kees",
		"DELETE Observation/" + obs + "/_history/2 Practitioner/kees Practitioner/kees",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Provenances\n got %q\nwant %q", got, want)
	}
}
