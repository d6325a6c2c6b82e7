package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/digitaleouder/ouder/auth/token/tokentest"
	"github.com/digitaleouder/ouder/store/pgtest"
)

// testAudience is the audience the test issuer's tokens carry and the
// trusted-issuers file names for it.
const testAudience = "https://ouderd.test/fhir"

// testIssuer is an external authorization server shared by the tests of
// this package; it lives as long as the test binary.
var testIssuer = sync.OnceValue(func() *tokentest.Issuer {
	is, err := tokentest.Start()
	if err != nil {
		panic(err)
	}
	return is
})

// trustedIssuersFile writes a -trusted-issuers file naming the test issuer.
func trustedIssuersFile(tb testing.TB) string {
	tb.Helper()
	b, err := json.Marshal([]map[string]any{{"url": testIssuer().URL(), "audience": testAudience}})
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "issuers.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestExternalIssuer runs ouderd trusting an external authorization server
// (configured through the environment, as an operator would) and checks
// what its tokens may do end to end: a backend client with system scopes
// but no organisation (which an external issuer cannot name) may do
// nothing, a parent's app sees their child's data and nothing else, and
// the refusals carry the right status, challenge and OperationOutcome.
func TestExternalIssuer(t *testing.T) {
	t.Parallel()
	db := pgtest.URL(t)
	p := startProc(t, "DATABASE_URL="+db)
	defer p.stop(t)
	fhir := p.base + "/fhir"
	is := testIssuer()
	as := func(scope string, extra map[string]any) string {
		return "Authorization: Bearer " + is.Token(t, testAudience, scope, extra)
	}

	// The CapabilityStatement needs no token; the data does.
	if status, _, cs := call(t, "GET", fhir+"/metadata", "", "Authorization:"); status != 200 || cs["resourceType"] != "CapabilityStatement" {
		t.Fatalf("metadata without a token: %d %v", status, cs)
	}
	status, h, oo := call(t, "GET", fhir+"/Patient", "", "Authorization:")
	if status != 401 || h.Get("WWW-Authenticate") != `Bearer realm="fhir"` || oo["resourceType"] != "OperationOutcome" {
		t.Errorf("no token: %d %q %v", status, h.Get("WWW-Authenticate"), oo)
	}

	backend := as("system/Patient.cruds system/Observation.cruds", nil)
	if status, _, _ := call(t, "POST", fhir+"/Patient", `{"resourceType":"Patient","birthDate":"2016-05-01"}`, backend); status != 403 {
		t.Errorf("a backend client without organisation creates a Patient: %d, want 403", status)
	}

	// The family, written by the server's operator: a child with a
	// parent in its team, and another child.
	op := useOperator(t, fhir, db)
	const childID, otherID = "kind1", "kind2"
	for _, r := range [][2]string{
		{"Patient/" + childID, `{"resourceType":"Patient","id":"kind1","birthDate":"2016-05-01"}`},
		{"Patient/" + otherID, `{"resourceType":"Patient","id":"kind2","birthDate":"2015-01-01"}`},
		{"RelatedPerson/ouder1", `{"resourceType":"RelatedPerson","id":"ouder1","patient":{"reference":"Patient/kind1"}}`},
		{"Person/ouder1", `{"resourceType":"Person","id":"ouder1","link":[{"target":{"reference":"RelatedPerson/ouder1"}}]}`},
		{"CareTeam/team1", `{"resourceType":"CareTeam","id":"team1","status":"active","subject":{"reference":"Patient/kind1"},"participant":[` +
			`{"role":[{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/team-role","code":"parent-with-authority"}]}],"member":{"reference":"RelatedPerson/ouder1"}}]}`},
		{"Observation/obs1", `{"resourceType":"Observation","id":"obs1","status":"final","code":{"text":"length"},"subject":{"reference":"Patient/kind1"}}`},
		{"Observation/obs2", `{"resourceType":"Observation","id":"obs2","status":"final","code":{"text":"length"},"subject":{"reference":"Patient/kind2"}}`},
	} {
		if status, _, body := call(t, "PUT", fhir+"/"+r[0], r[1], op); status != 201 {
			t.Fatalf("create %s: %d %v", r[0], status, body)
		}
	}

	// Without a user, a patient app sees nothing; the parent's app sees
	// the child's data only.
	if status, _, _ := call(t, "GET", fhir+"/Patient/"+childID, "", as("patient/*.rs", map[string]any{"patient": childID})); status != 404 {
		t.Errorf("patient app without a user reads the child: %d, want 404", status)
	}
	app := as("patient/*.rs", map[string]any{"patient": childID, "fhirUser": "Person/ouder1"})
	status, _, bundle := call(t, "GET", fhir+"/Observation?_total=accurate", "", app)
	if status != 200 || bundle["total"] != 1.0 {
		t.Errorf("patient app search: %d total %v, want 1", status, bundle["total"])
	}
	if status, _, _ := call(t, "GET", fhir+"/Patient/"+otherID, "", app); status != 404 {
		t.Errorf("patient app reads another child: %d, want 404", status)
	}
	if status, _, _ := call(t, "GET", fhir+"/Patient/"+childID, "", app); status != 200 {
		t.Errorf("patient app reads its child: %d, want 200", status)
	}
	// It may not write (403), and a backend client may not act as an
	// operator, even if its token says so.
	if status, _, oo := call(t, "POST", fhir+"/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`, app); status != 403 || !strings.Contains(oo["issue"].([]any)[0].(map[string]any)["code"].(string), "forbidden") {
		t.Errorf("patient app writes: %d %v, want 403", status, oo)
	}
	fake := as("system/Observation.rs", map[string]any{"operator": true})
	if status, _, _ := call(t, "GET", fhir+"/Patient/"+childID, "", fake); status != 403 {
		t.Errorf(`external token with "operator": true reads a Patient: %d, want 403`, status)
	}

	// A token for another audience, or expired: 401 with the reason.
	wrongAud := "Authorization: Bearer " + is.Token(t, "https://elsewhere.test/fhir", "system/*.rs", nil)
	status, h, _ = call(t, "GET", fhir+"/Patient", "", wrongAud)
	if status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token", error_description="wrong audience"`) {
		t.Errorf("wrong audience: %d %q", status, h.Get("WWW-Authenticate"))
	}
}

// TestTrustedIssuersFile: a file that is not a list of issuers, or that
// tries to make an external issuer an operator, stops the start.
func TestTrustedIssuersFile(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, content string
	}{
		{"not JSON", "issuers"},
		{"operator", `[{"url":"https://idp.example","audience":"https://fhir.example/fhir","operator":true}]`},
		{"no audience", `[{"url":"https://idp.example"}]`},
		{"http elsewhere", `[{"url":"http://idp.example","audience":"https://fhir.example/fhir"}]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "issuers.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			m := NewMain()
			m.Config.Addr = "127.0.0.1:0"
			m.Config.DatabaseURL = pgtest.URL(t)
			m.Config.TrustedIssuers = path
			m.LogOutput = io.Discard
			err := m.Run(context.Background())
			_ = m.Close()
			if err == nil {
				t.Fatal("Run accepted the file")
			}
		})
	}
}
