package rest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/smart"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rest"
	"github.com/digitaleouder/ouder/mapping"
	"github.com/digitaleouder/ouder/mapping/family"
	"github.com/digitaleouder/ouder/store/postgres"
)

// matrixNow is the day the policy matrix is run on: the matrix family's
// children are 11, 12, 15, 16, 17 and 18 on it.
var matrixNow = time.Date(2026, 11, 23, 12, 0, 0, 0, amsterdam)

var amsterdam = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		panic(err)
	}
	return loc
}()

// policyRow is one case of testdata/policy/matrix.txt.
type policyRow struct {
	line                             int
	who, interaction, target, expect string
}

func (r policyRow) String() string {
	return fmt.Sprintf("line %d: %s %s %s", r.line, r.who, r.interaction, r.target)
}

func readPolicyMatrix(tb testing.TB, path string) []policyRow {
	tb.Helper()
	var rows []policyRow
	tableLines(tb, path, func(n int, line string) {
		fs := strings.Fields(line)
		if len(fs) != 4 {
			tb.Fatalf("%s:%d: want 4 columns, got %q", path, n, line)
		}
		rows = append(rows, policyRow{line: n, who: fs[0], interaction: fs[1], target: fs[2], expect: fs[3]})
	})
	return rows
}

// matrixPeople are the callers of the matrix, as the authentication
// middleware would make them from their tokens.
func matrixPeople() map[string]*auth.Principal {
	user := mustScopes("user/*.cruds")
	people := map[string]*auth.Principal{
		"anna":     {Subject: "anna", ClientID: "app", FHIRUser: "Person/m-anna", Scopes: user},
		"bram":     {Subject: "bram", ClientID: "app", FHIRUser: "Person/m-bram", Scopes: user},
		"marieke":  {Subject: "marieke", ClientID: "app", FHIRUser: "Practitioner/m-marieke", Scopes: user},
		"stranger": {Subject: "stranger", ClientID: "app", FHIRUser: "Person/m-nobody", Scopes: user},
		"school":   {Subject: "school", ClientID: "school", Organization: "Organization/m-school-admin", Scopes: mustScopes("system/Observation.cru system/Patient.rs")},
		"ecd":      {Subject: "ecd", ClientID: "ecd", Organization: "Organization/m-ecd", Scopes: mustScopes("system/*.rs")},
		"auditor":  {Subject: "auditor", ClientID: "auditor", Organization: "Organization/m-audit", Scopes: mustScopes("system/*.rs")},
	}
	for _, h := range []string{"coach", "teacher", "mediator", "expired", "kim"} {
		people[h] = &auth.Principal{Subject: h, ClientID: "app", FHIRUser: "Practitioner/m-" + h, Scopes: user}
	}
	for _, c := range family.MatrixChildren {
		people[c.Key] = &auth.Principal{Subject: c.Key, ClientID: "app", FHIRUser: "Patient/m-" + c.Key, Scopes: user}
	}
	return people
}

func mustScopes(s string) smart.Scopes {
	ss, err := smart.Parse(s)
	if err != nil {
		panic(err)
	}
	return ss
}

// identity is whom who writes as about child c.
func identity(who, c string) string {
	switch {
	case who == "anna" || who == "bram":
		return "RelatedPerson/m-" + who + "-" + c
	case strings.HasPrefix(who, "c") && len(who) == 3:
		return "Patient/m-" + who
	case who == "school":
		return "Organization/m-school-admin"
	case who == "ecd":
		return "Organization/m-ecd"
	case who == "stranger":
		return "RelatedPerson/m-nobody"
	}
	return "Practitioner/m-" + who
}

// template makes the body of a create row: kind:child.
func template(tb testing.TB, who, target string) (typ string, body []byte) {
	tb.Helper()
	kind, c, ok := strings.Cut(target, ":")
	if !ok {
		tb.Fatalf("template %q: want kind:child", target)
	}
	child, me, sent := "Patient/m-"+c, identity(who, c), matrixNow.Format(time.RFC3339)
	var err error
	switch kind {
	case "diary":
		typ = "Communication"
		body, err = mapping.DiaryEntry{Subject: child, Author: me, Sent: sent, Text: "Nieuw dagboekbericht."}.ToFHIR()
	case "note":
		typ = "Communication"
		body, err = mapping.Note{About: "CarePlan/m-afspraak-" + c, PlanKind: mapping.ChildPlan, Subject: child, Author: me, Sent: sent, Text: "Nieuwe notitie."}.ToFHIR()
	case "message":
		typ = "Communication"
		body, err = mapping.Message{Subject: child, Sender: me, Recipients: []string{"Practitioner/m-marieke"}, Sent: sent, Text: "Mag ik het rapport zien?"}.ToFHIR()
	case "observation":
		typ = "Observation"
		body, err = mapping.Observation{Status: "final", Topic: "Observatie", Subject: child, Effective: sent, Observers: []string{me}, Text: "Gaat goed."}.ToFHIR()
	case "agreement-draft", "agreement-active":
		typ = "CarePlan"
		status := mapping.PlanDraft
		if kind == "agreement-active" {
			status = mapping.PlanActive
		}
		body, err = mapping.Agreement{
			Plan: "CarePlan/m-kindplan-" + c, PlanKind: mapping.ChildPlan, Status: status, Title: "Nieuwe afspraak",
			Description: "Voorstel.", Subject: child, Period: mapping.Period{Start: matrixNow.Format(time.DateOnly)},
		}.ToFHIR()
	default:
		tb.Fatalf("template %q: unknown kind %q", target, kind)
	}
	if err != nil {
		tb.Fatalf("template %q: %v", target, err)
	}
	return typ, body
}

// bundleIDs returns the Type/id of every entry of a Bundle.
func bundleIDs(tb testing.TB, r response) []string {
	tb.Helper()
	var b struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil {
		tb.Fatalf("not a Bundle: %v: %s", err, r.body)
	}
	var out []string
	for _, e := range b.Entry {
		if e.Resource.ResourceType != "OperationOutcome" {
			out = append(out, e.Resource.ResourceType+"/"+e.Resource.ID)
		}
	}
	slices.Sort(out)
	return out
}

// entryStatus returns the status code of the first entry of a batch or
// transaction response.
func entryStatus(tb testing.TB, r response) int {
	tb.Helper()
	var b struct {
		Entry []struct {
			Response struct {
				Status string `json:"status"`
			} `json:"response"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil || len(b.Entry) == 0 {
		tb.Fatalf("not a response Bundle with entries: %v: %s", err, r.body)
	}
	code, _ := strconv.Atoi(strings.Fields(b.Entry[0].Response.Status)[0])
	return code
}

// TestPolicyMatrix runs every row of testdata/policy/matrix.txt through the
// HTTP API.
func TestPolicyMatrix(t *testing.T) {
	ts := newPolicyServer(t, matrixNow)
	f, err := family.Matrix(matrixNow)
	if err != nil {
		t.Fatal(err)
	}
	ts.load(t, f)
	rows := readPolicyMatrix(t, "../../testdata/policy/matrix.txt")
	people := matrixPeople()
	for _, row := range rows {
		if people[row.who] == nil {
			t.Fatalf("%s: unknown caller %q", row, row.who)
		}
	}
	for i, row := range rows {
		t.Run(fmt.Sprintf("%03d-%s-%s", row.line, row.who, row.interaction), func(t *testing.T) {
			as := "X-Test-As: " + row.who
			switch row.interaction {
			case "read", "vread", "history":
				path := "/fhir/" + row.target
				if row.interaction == "history" {
					path += "/_history"
				}
				res := ts.do(t, "GET", path, "", as)
				wantStatus(t, row, res.status, res.body)
			case "batch":
				b := `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"` + row.target + `"}}]}`
				res := ts.do(t, "POST", "/fhir", b, as)
				if res.status != http.StatusOK {
					t.Fatalf("%s: batch answered %d: %s", row, res.status, res.body)
				}
				wantStatus(t, row, entryStatus(t, res), res.body)
			case "search", "include", "revinclude":
				res := ts.do(t, "GET", "/fhir/"+row.target, "", as)
				if res.status != http.StatusOK {
					t.Fatalf("%s: search answered %d: %s", row, res.status, res.body)
				}
				if row.expect == "any" {
					if len(bundleIDs(t, res)) == 0 {
						t.Errorf("%s: no resources, want some", row)
					}
					return
				}
				want, ok := strings.CutPrefix(row.expect, "ids=")
				if !ok {
					t.Fatalf("%s: expect ids=…", row)
				}
				var wantIDs []string
				if want != "" {
					wantIDs = strings.Split(want, ",")
				}
				slices.Sort(wantIDs)
				if got := bundleIDs(t, res); !slices.Equal(got, wantIDs) {
					t.Errorf("%s: got %v, want %v", row, got, wantIDs)
				}
			case "create":
				typ, body := template(t, row.who, row.target)
				res := ts.do(t, "POST", "/fhir/"+typ, string(body), as)
				wantStatus(t, row, res.status, res.body)
			case "transaction":
				typ, body := template(t, row.who, row.target)
				b := `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":` + string(body) + `,"request":{"method":"POST","url":"` + typ + `"}}]}`
				res := ts.do(t, "POST", "/fhir", b, as)
				wantStatus(t, row, res.status, res.body)
			case "update", "delete":
				typ, _, _ := strings.Cut(row.target, "/")
				orig := ts.do(t, "GET", "/fhir/"+row.target, "", "X-Test-As: operator")
				if orig.status != http.StatusOK {
					t.Fatalf("%s: read %s as operator: %d", row, row.target, orig.status)
				}
				var m map[string]any
				if err := json.Unmarshal(orig.body, &m); err != nil {
					t.Fatal(err)
				}
				id := fmt.Sprintf("copy-%d", i)
				m["id"] = id
				delete(m, "meta")
				copyBody, _ := json.Marshal(m)
				if res := ts.do(t, "PUT", "/fhir/"+typ+"/"+id, string(copyBody), "X-Test-As: operator"); res.status != http.StatusCreated {
					t.Fatalf("%s: copy: %d %s", row, res.status, res.body)
				}
				var res response
				if row.interaction == "update" {
					res = ts.do(t, "PUT", "/fhir/"+typ+"/"+id, string(copyBody), as)
				} else {
					res = ts.do(t, "DELETE", "/fhir/"+typ+"/"+id, "", as)
				}
				wantStatus(t, row, res.status, res.body)
			default:
				t.Fatalf("%s: unknown interaction", row)
			}
		})
	}
}

func wantStatus(tb testing.TB, row policyRow, got int, body []byte) {
	tb.Helper()
	want, err := strconv.Atoi(row.expect)
	if err != nil {
		tb.Fatalf("%s: expect is not a status: %q", row, row.expect)
	}
	if got != want {
		tb.Errorf("%s: status %d, want %d: %s", row, got, want, body)
	}
}

// newPolicyServer is the REST API with the full access policy on the clock
// now, authenticating the callers of matrixPeople (and "operator") by the
// X-Test-As header.
func newPolicyServer(tb testing.TB, now time.Time) *testServer {
	tb.Helper()
	people := matrixPeople()
	people["operator"] = &auth.Principal{Subject: "test-operator", Operator: true}
	var audit *postgres.AuditWriter
	return newServer(tb, withAudit(tb, &audit), func(c *rest.Config) {
		c.Authenticate = func(r *http.Request) (*auth.Principal, error) {
			p := people[r.Header.Get("X-Test-As")]
			if p == nil {
				return nil, fhir.Errorf(fhir.Unauthorized, "", "unknown test caller %q", r.Header.Get("X-Test-As"))
			}
			return p, nil
		}
		c.Now = func() time.Time { return now }
	})
}

// TestPolicyMatrixDocumented checks that docs/access-policy.md shows the
// policy matrix as it is in testdata/policy/matrix.txt (rewrite the block
// with OUDER_UPDATE_DOCS=1).
func TestPolicyMatrixDocumented(t *testing.T) {
	const doc, begin, end = "../../docs/access-policy.md", "<!-- policy-matrix:begin -->", "<!-- policy-matrix:end -->"
	src, err := os.ReadFile("../../testdata/policy/matrix.txt")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(begin + "\n")
	inTable, header := false, true // the file's own header is explained above the block
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			inTable, header = false, false
		case header:
		case strings.HasPrefix(line, "#"):
			if inTable {
				b.WriteString("\n")
				inTable = false
			}
			b.WriteString(strings.TrimSpace(strings.TrimPrefix(line, "#")) + "\n")
		default:
			if !inTable {
				b.WriteString("\n| who | interaction | target | expect |\n|---|---|---|---|\n")
				inTable = true
			}
			fs := strings.Fields(line)
			for i := range fs {
				fs[i] = "`" + strings.ReplaceAll(fs[i], "|", `\|`) + "`"
			}
			b.WriteString("| " + strings.Join(fs, " | ") + " |\n")
		}
	}
	b.WriteString("\n" + end)
	text, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	i, j := strings.Index(string(text), begin), strings.Index(string(text), end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %s … %s block", doc, begin, end)
	}
	have := string(text[i : j+len(end)])
	if have == b.String() {
		return
	}
	if os.Getenv("OUDER_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(doc, []byte(string(text[:i])+b.String()+string(text[j+len(end):])), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s does not show testdata/policy/matrix.txt as it is; run OUDER_UPDATE_DOCS=1 go test -run TestPolicyMatrixDocumented ./fhir/rest", doc)
}
