package rest_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/token"
	"github.com/digitaleouder/ouder/auth/token/tokentest"
	"github.com/digitaleouder/ouder/fhir/rest"
)

// testAudience is the audience of the test issuer's tokens.
const testAudience = "https://fhir.test/fhir"

// withTokens makes the server authenticate requests with tokens of is, as
// ouderd does: is plays the server's own authorization server (its tokens
// may carry "operator": true) and a token whose jti revoked reports is
// refused.
func withTokens(tb testing.TB, is *tokentest.Issuer, revoked func(jti string) bool) serverOption {
	tb.Helper()
	v, err := token.New(context.Background(), token.Config{
		Issuers: []token.Issuer{{URL: is.URL(), Audience: testAudience, Operator: true}},
		// Discovery failures are retried at once, so a test can bring
		// its issuer back.
		DiscoveryRetry: time.Nanosecond,
		MinKeyRefresh:  time.Nanosecond,
	})
	if err != nil {
		tb.Fatal(err)
	}
	a := &auth.Authenticator{Verifier: v, OwnIssuer: is.URL(), Revoked: func(_ context.Context, jti string) (bool, error) {
		return revoked != nil && revoked(jti), nil
	}}
	return func(c *rest.Config) { c.Authenticate = a.Authenticate }
}

// bearer is the Authorization header of a token.
func bearer(tok string) string { return "Authorization: Bearer " + tok }

// operator is a token of the own issuer for an operator.
func operator(tb testing.TB, is *tokentest.Issuer) string {
	tb.Helper()
	return bearer(is.Token(tb, testAudience, "", map[string]any{"operator": true}))
}

// accessFixture is the data the scope matrix runs on (see its file).
var accessFixture = []struct{ path, body string }{
	{"Practitioner/doc", `{"resourceType":"Practitioner","id":"doc","name":[{"family":"Dokter"}]}`},
	{"Organization/ecd", `{"resourceType":"Organization","id":"ecd","name":"Jeugdzorg ECD"}`},
	{"Patient/pa", `{"resourceType":"Patient","id":"pa","birthDate":"2016-05-01"}`},
	{"Patient/pb", `{"resourceType":"Patient","id":"pb","birthDate":"2012-01-01","generalPractitioner":[{"reference":"Practitioner/doc"}]}`},
	{"RelatedPerson/rpa", `{"resourceType":"RelatedPerson","id":"rpa","patient":{"reference":"Patient/pa"}}`},
	{"RelatedPerson/rpb", `{"resourceType":"RelatedPerson","id":"rpb","patient":{"reference":"Patient/pb"}}`},
	{"Person/parent", `{"resourceType":"Person","id":"parent","link":[{"target":{"reference":"RelatedPerson/rpa"}}]}`},
	{"Condition/ca", `{"resourceType":"Condition","id":"ca","subject":{"reference":"Patient/pa"},"code":{"text":"Lezen"},` +
		`"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},"category":[` +
		`{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/condition-category","code":"help-question"}]},` +
		`{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/plan-category","code":"child-plan"}]}]}`},
	{"Condition/cb", `{"resourceType":"Condition","id":"cb","subject":{"reference":"Patient/pb"},"code":{"text":"Rekenen"},` +
		`"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"resolved"}]},"category":[` +
		`{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/condition-category","code":"help-question"}]},` +
		`{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/plan-category","code":"child-plan"}]}]}`},
	{"Observation/oa1", obsJSON("oa1", "pa", "vital-signs", "RelatedPerson/rpa")},
	{"Observation/oa2", obsJSON("oa2", "pa", "laboratory", "Practitioner/doc")},
	{"Observation/ob1", obsJSON("ob1", "pb", "vital-signs", "Practitioner/doc")},
	// The teams: rpa is pa's parent with authority; pb (14) has own
	// access, rpb is their parent and doc their dossierhouder; the ECD
	// organisation is in both teams and consented for the child plans.
	{"CareTeam/ta", teamJSON("ta", "pa", "RelatedPerson/rpa parent-with-authority", "Organization/ecd ecd-system")},
	{"CareTeam/tb", teamJSON("tb", "pb", "Patient/pb child", "RelatedPerson/rpb parent-with-authority",
		"Practitioner/doc dossierhouder", "Organization/ecd ecd-system")},
	{"Consent/cea", consentJSON("cea", "pa", "Organization/ecd", "RelatedPerson/rpa", "personal-details child-plan")},
	{"Consent/ceb", consentJSON("ceb", "pb", "Organization/ecd", "Patient/pb RelatedPerson/rpb", "personal-details child-plan")},
}

// teamJSON is an active CareTeam for patient with members ("Type/id role").
func teamJSON(id, patient string, members ...string) string {
	var ps []string
	for _, m := range members {
		ref, role, _ := strings.Cut(m, " ")
		ps = append(ps, `{"role":[{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/team-role","code":"`+role+`"}]}],"member":{"reference":"`+ref+`"}}`)
	}
	return `{"resourceType":"CareTeam","id":"` + id + `","status":"active","subject":{"reference":"Patient/` + patient + `"},"participant":[` + strings.Join(ps, ",") + `]}`
}

// consentJSON is an active grant of read on sections (space-separated)
// of patient's record to actor, given by performers (space-separated).
func consentJSON(id, patient, actor, performers, sections string) string {
	var by, codes []string
	for _, p := range strings.Fields(performers) {
		by = append(by, `{"reference":"`+p+`"}`)
	}
	for _, s := range strings.Fields(sections) {
		codes = append(codes, `{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/record-section","code":"`+s+`"}]}`)
	}
	return `{"resourceType":"Consent","id":"` + id + `","status":"active",` +
		`"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},` +
		`"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/` + patient + `"},` +
		`"performer":[` + strings.Join(by, ",") + `],` +
		`"policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},` +
		`"provision":{"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},"reference":{"reference":"` + actor + `"}}],` +
		`"action":[{"coding":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/interaction","code":"read"}]}],"code":[` + strings.Join(codes, ",") + `]}}`
}

// obsJSON is an Observation of patient in category, by performer
// (none when ""); id "" leaves the id out.
func obsJSON(id, patient, category, performer string) string {
	s := `{"resourceType":"Observation",`
	if id != "" {
		s += `"id":"` + id + `",`
	}
	s += `"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"` + category + `"}]}],` +
		`"code":{"text":"length"},"subject":{"reference":"Patient/` + patient + `"}`
	if performer != "" {
		s += `,"performer":[{"reference":"` + performer + `"}]`
	}
	return s + "}"
}

// bundle is a transaction or batch of entries ("METHOD url" and, for a
// write, a resource).
func bundle(typ string, entries ...[2]string) string {
	var parts []string
	for _, e := range entries {
		method, u, _ := strings.Cut(e[0], " ")
		p := `{"request":{"method":"` + method + `","url":"` + u + `"}`
		if e[1] != "" {
			p += `,"resource":` + e[1]
		}
		parts = append(parts, p+"}")
	}
	return `{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(parts, ",") + `]}`
}

// accessBodies are the request bodies of the scope matrix, by name.
var accessBodies = map[string]string{
	"obs-pa-vital":   obsJSON("", "pa", "vital-signs", ""),
	"obs-pa-lab":     obsJSON("", "pa", "laboratory", "RelatedPerson/rpa"),
	"obs-pb-vital":   obsJSON("", "pb", "vital-signs", "RelatedPerson/rpa"),
	"obs-pa-by-rpa":  obsJSON("", "pa", "vital-signs", "RelatedPerson/rpa"),
	"put-oa1-pa":     obsJSON("oa1", "pa", "vital-signs", ""),
	"put-oa1-by-rpa": obsJSON("oa1", "pa", "vital-signs", "RelatedPerson/rpa"),
	"put-oa1-pb-rpa": obsJSON("oa1", "pb", "vital-signs", "RelatedPerson/rpa"),
	"put-new1-rpa":   obsJSON("new1", "pa", "vital-signs", "RelatedPerson/rpa"),
	"put-oa2-pa":     obsJSON("oa2", "pa", "laboratory", ""),
	"put-oa2-pb":     obsJSON("oa2", "pb", "laboratory", ""),
	"put-ob1-pa":     obsJSON("ob1", "pa", "vital-signs", ""),
	"put-new1-pa":    obsJSON("new1", "pa", "vital-signs", ""),
	"put-new1-pb":    obsJSON("new1", "pb", "vital-signs", ""),
	"patch-status":   `[{"op":"replace","path":"/status","value":"amended"}]`,
	"tx-pa-pb":       bundle("transaction", [2]string{"POST Observation", obsJSON("", "pa", "vital-signs", "RelatedPerson/rpa")}, [2]string{"POST Observation", obsJSON("", "pb", "vital-signs", "")}),
	"tx-pa-read-ob1": bundle("transaction", [2]string{"POST Observation", obsJSON("", "pa", "vital-signs", "RelatedPerson/rpa")}, [2]string{"GET Observation/ob1", ""}),
	"tx-pa-read-oa1": bundle("transaction", [2]string{"POST Observation", obsJSON("", "pa", "vital-signs", "RelatedPerson/rpa")}, [2]string{"GET Observation/oa1", ""}),
	"batch-pa-pb":    bundle("batch", [2]string{"POST Observation", obsJSON("", "pa", "vital-signs", "RelatedPerson/rpa")}, [2]string{"POST Observation", obsJSON("", "pb", "vital-signs", "")}, [2]string{"GET Observation/oa1", ""}, [2]string{"GET Observation/ob1", ""}),
	"batch-reads":    bundle("batch", [2]string{"GET Observation/oa1", ""}, [2]string{"GET Observation/ob1", ""}, [2]string{"GET Patient/pb", ""}, [2]string{"GET Observation?category=vital-signs", ""}),
}

// newAccessServer is a server that authenticates with is, holding the
// fixture.
func newAccessServer(tb testing.TB, is *tokentest.Issuer) *testServer {
	tb.Helper()
	ts := newServer(tb, withTokens(tb, is, nil))
	op := operator(tb, is)
	for _, f := range accessFixture {
		if res := ts.do(tb, "PUT", "/fhir/"+f.path, f.body, op); res.status != http.StatusCreated {
			tb.Fatalf("fixture %s: %d %s", f.path, res.status, res.body)
		}
	}
	return ts
}

// matrixRow is one line of testdata/scope_matrix.txt.
type matrixRow struct {
	line                 int
	name, scopes, claims string
	method, path, body   string
	status               int
	want                 []string
	after                string
}

func readMatrix(tb testing.TB, path string) []matrixRow {
	tb.Helper()
	var rows []matrixRow
	tableLines(tb, path, func(n int, line string) {
		var err error
		cols := strings.Split(line, "|")
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		if len(cols) < 6 || len(cols) > 7 {
			tb.Fatalf("%s:%d: want 6 or 7 columns, got %d", path, n, len(cols))
		}
		r := matrixRow{line: n, name: cols[0], scopes: cols[1], claims: cols[2]}
		req := strings.Fields(cols[3])
		if len(req) < 2 {
			tb.Fatalf("%s:%d: request %q", path, n, cols[3])
		}
		r.method, r.path = req[0], req[1]
		if len(req) == 3 {
			name := strings.TrimPrefix(req[2], "@")
			body, ok := accessBodies[name]
			if !ok {
				tb.Fatalf("%s:%d: no body %q", path, n, name)
			}
			r.body = name + "\x00" + body
		}
		if r.status, err = strconv.Atoi(cols[4]); err != nil {
			tb.Fatalf("%s:%d: status %q", path, n, cols[4])
		}
		for _, w := range strings.Fields(cols[5]) {
			if w != "-" {
				r.want = append(r.want, w)
			}
		}
		if len(cols) == 7 {
			r.after = cols[6]
		}
		rows = append(rows, r)
	})
	return rows
}

// tableLines calls fn with each line of the test table at path that is
// neither blank nor a # comment, trimmed, and its line number.
func tableLines(tb testing.TB, path string, fn func(n int, line string)) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			fn(n, line)
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
}

// claimsOf reads the claims column: patient=..., fhirUser=...,
// organization=..., operator=true or -.
func claimsOf(tb testing.TB, s string) map[string]any {
	tb.Helper()
	out := map[string]any{}
	for _, kv := range strings.Fields(s) {
		if kv == "-" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			tb.Fatalf("claim %q", kv)
		}
		if v == "true" {
			out[k] = true // operator=true
			continue
		}
		out[k] = v
	}
	return out
}

// entriesOf returns what a response shows, in the matrix's terms: for a
// searchset or history Bundle, total=N (when present) and the Type/id of
// each entry's resource, sorted; for a transaction or batch response, the
// entries' status codes in order; for a resource, its Type/id.
func entriesOf(tb testing.TB, res response) []string {
	tb.Helper()
	if len(res.body) == 0 {
		return nil
	}
	m := res.json(tb)
	if m["resourceType"] == "OperationOutcome" {
		return nil
	}
	if m["resourceType"] != "Bundle" {
		return []string{fmt.Sprintf("%s/%s", m["resourceType"], m["id"])}
	}
	entries, _ := m["entry"].([]any)
	var out []string
	switch m["type"] {
	case "transaction-response", "batch-response":
		for _, e := range entries {
			status := e.(map[string]any)["response"].(map[string]any)["status"].(string)
			code, _, _ := strings.Cut(status, " ")
			out = append(out, code)
		}
		return out
	}
	for _, e := range entries {
		if r, ok := e.(map[string]any)["resource"].(map[string]any); ok && r["resourceType"] != "OperationOutcome" {
			out = append(out, fmt.Sprintf("%s/%s", r["resourceType"], r["id"]))
		}
	}
	slices.Sort(out)
	if total, ok := m["total"].(float64); ok {
		out = append([]string{"total=" + strconv.Itoa(int(total))}, out...)
	}
	return out
}

// matches reports whether an entry is what the matrix wants: equal, or of
// the type of a "Type/*".
func matches(got, want string) bool {
	if typ, ok := strings.CutSuffix(want, "/*"); ok {
		return strings.HasPrefix(got, typ+"/")
	}
	return got == want
}

// TestScopeMatrix runs testdata/scope_matrix.txt: every scope form (v1, v2,
// granular; patient, user, system) against every interaction, including
// includes, chains, _has and Bundle entries that reach outside the scope,
// with real tokens through the whole server. A row that is not a GET runs
// on a fresh copy of the fixture.
func TestScopeMatrix(t *testing.T) {
	t.Parallel()
	is := tokentest.New(t)
	rows := readMatrix(t, "testdata/scope_matrix.txt")
	shared := newAccessServer(t, is)
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			ts := shared
			if row.method != "GET" {
				ts = newAccessServer(t, is)
			}
			tok := is.Token(t, testAudience, row.scopes, claimsOf(t, row.claims))
			headers := []string{bearer(tok)}
			name, body, _ := strings.Cut(row.body, "\x00")
			if strings.HasPrefix(name, "patch-") {
				headers = append(headers, "Content-Type: application/json-patch+json")
			}
			res := ts.do(t, row.method, "/fhir"+row.path, body, headers...)
			if res.status != row.status {
				if res.status >= 500 {
					t.Logf("server log:\n%s", ts.logs)
				}
				t.Fatalf("line %d: %s %s with %q: status %d, want %d\n%s", row.line, row.method, row.path, row.scopes, res.status, row.status, res.body)
			}
			if res.status >= 400 {
				if issues(t, res) == nil {
					t.Errorf("line %d: a refusal without issues", row.line)
				}
			} else if got := entriesOf(t, res); !slices.EqualFunc(got, row.want, matches) {
				t.Errorf("line %d: %s %s with %q:\n got  %v\n want %v", row.line, row.method, row.path, row.scopes, got, row.want)
			}
			if row.after != "" {
				typ, n, _ := strings.Cut(row.after, "=")
				check := ts.do(t, "GET", "/fhir/"+typ+"?_total=accurate&_count=0", "", operator(t, is))
				if got := fmt.Sprint(check.json(t)["total"]); got != n {
					t.Errorf("line %d: afterwards an operator finds %s %s, want %s", row.line, got, typ, n)
				}
			}
		})
	}
}

// TestAccessPaging: the pages and the total of a confined search count
// only what the caller may see, and the next link leads to the rest of it.
func TestAccessPaging(t *testing.T) {
	t.Parallel()
	is := tokentest.New(t)
	ts := newAccessServer(t, is)
	tok := bearer(is.Token(t, testAudience, "patient/Observation.rs", map[string]any{"patient": "pa", "fhirUser": "Person/parent"}))
	var got []string
	next := "/fhir/Observation?_count=1&_total=accurate"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("more pages than resources")
		}
		res := ts.do(t, "GET", next, "", tok)
		if res.status != 200 {
			t.Fatalf("page %d: %d %s", pages, res.status, res.body)
		}
		m := res.json(t)
		if m["total"] != 2.0 {
			t.Errorf("page %d: total %v, want 2", pages, m["total"])
		}
		for _, e := range m["entry"].([]any) {
			got = append(got, e.(map[string]any)["resource"].(map[string]any)["id"].(string))
		}
		next = ""
		for _, l := range m["link"].([]any) {
			if l.(map[string]any)["relation"] == "next" {
				u, err := url.Parse(l.(map[string]any)["url"].(string))
				if err != nil {
					t.Fatal(err)
				}
				next = u.RequestURI()
			}
		}
	}
	if !slices.Equal(got, []string{"oa1", "oa2"}) {
		t.Errorf("pages show %v, want [oa1 oa2]", got)
	}
}

// TestAuthentication: what is refused before any access decision, at the
// HTTP level, with real tokens: 401 with an RFC 6750 challenge and an
// OperationOutcome for a missing or unusable token (every forgery in the
// issue's list among them), 503 when the issuer cannot be reached, and
// the public routes that need no token.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	is := tokentest.New(t)
	other := tokentest.New(t) // the same key under another issuer URL
	revokedJTI := "revoked-jti"
	ts := newServer(t, withTokens(t, is, func(jti string) bool { return jti == revokedJTI }))
	good := func() map[string]any { return is.Claims(testAudience, "system/*.rs") }
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	hmacKey := is.PublicKeyPEM(t)
	tests := []struct {
		name      string
		header    string // the Authorization header; "" for none
		challenge string // the WWW-Authenticate header
	}{
		{"no token", "", `Bearer realm="fhir"`},
		{"not bearer", "Basic dXNlcjpwYXNz", `Bearer realm="fhir", error="invalid_token", error_description="the Authorization header is not \"Bearer <token>\""`},
		{"malformed", "Bearer not-a-jwt", `Bearer realm="fhir", error="invalid_token", error_description="malformed token or algorithm not allowed"`},
		{"alg none", "Bearer " + is.Unsigned(t, good()), `Bearer realm="fhir", error="invalid_token", error_description="malformed token or algorithm not allowed"`},
		{"HS256 with the public key", "Bearer " + tokentest.SignWith(t, jose.HS256, hmacKey, "test-key-1", good()), `Bearer realm="fhir", error="invalid_token", error_description="malformed token or algorithm not allowed"`},
		{"expired", "Bearer " + is.Sign(t, with("exp", time.Now().Add(-time.Hour).Unix())), `Bearer realm="fhir", error="invalid_token", error_description="token expired"`},
		{"not yet valid", "Bearer " + is.Sign(t, with("nbf", time.Now().Add(time.Hour).Unix())), `Bearer realm="fhir", error="invalid_token", error_description="token not yet valid"`},
		{"wrong audience", "Bearer " + is.Sign(t, with("aud", "https://elsewhere.test/fhir")), `Bearer realm="fhir", error="invalid_token", error_description="wrong audience"`},
		{"wrong issuer", "Bearer " + is.Sign(t, with("iss", other.URL())), `Bearer realm="fhir", error="invalid_token", error_description="unknown issuer"`},
		{"unknown kid", "Bearer " + tokentest.SignWith(t, jose.RS256, is.SigningKey(), "other-kid", good()), `Bearer realm="fhir", error="invalid_token", error_description="unknown signing key"`},
		{"revoked", "Bearer " + is.Sign(t, with("jti", revokedJTI)), `Bearer realm="fhir", error="invalid_token", error_description="token revoked"`},
		{"no jti from own issuer", "Bearer " + is.Sign(t, with("jti", nil)), `Bearer realm="fhir", error="invalid_token", error_description="token has no jti"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ts.do(t, "GET", "/fhir/Patient", "", "Authorization: "+tt.header)
			if res.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", res.status, res.body)
			}
			if got := res.header.Get("WWW-Authenticate"); got != strings.ReplaceAll(tt.challenge, `\"`, ``) {
				t.Errorf("WWW-Authenticate:\n got  %s\n want %s", got, strings.ReplaceAll(tt.challenge, `\"`, ``))
			}
			if got := issues(t, res); !slices.Equal(got, []string{"login@"}) {
				t.Errorf("issues %v, want [login@]", got)
			}
		})
	}

	// The token is good: 200, and the same token with a scope that does
	// not cover the interaction: 403.
	if res := ts.do(t, "GET", "/fhir/Patient", "", bearer(is.Sign(t, good()))); res.status != 200 {
		t.Errorf("good token: %d %s", res.status, res.body)
	}
	res := ts.do(t, "POST", "/fhir/Patient", `{"resourceType":"Patient"}`, bearer(is.Sign(t, good())))
	if got := issues(t, res); res.status != 403 || !slices.Equal(got, []string{"forbidden@"}) {
		t.Errorf("create with read scopes: %d %v", res.status, got)
	}

	// Public routes: the CapabilityStatement and the discovery documents.
	if res := ts.do(t, "GET", "/fhir/metadata", "", "Authorization:"); res.status != 200 {
		t.Errorf("metadata without a token: %d", res.status)
	}
}

// TestWellKnownAndUnavailable: /fhir/.well-known/ is served by the
// configured handler without a token; a token whose issuer cannot be
// reached answers 503 (not 401), and the same token works once it can.
func TestWellKnownAndUnavailable(t *testing.T) {
	t.Parallel()
	is := tokentest.New(t)
	is.SetDown(true)
	wellKnown := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	})
	ts := newServer(t, withTokens(t, is, nil), func(c *rest.Config) { c.WellKnown = wellKnown })
	res := ts.do(t, "GET", "/fhir/.well-known/smart-configuration", "", "Authorization:")
	if res.status != 200 || res.json(t)["path"] != "/fhir/.well-known/smart-configuration" {
		t.Errorf("well-known: %d %s", res.status, res.body)
	}
	tok := bearer(is.Token(t, testAudience, "system/*.rs", nil))
	res = ts.do(t, "GET", "/fhir/Patient", "", tok)
	if got := issues(t, res); res.status != http.StatusServiceUnavailable || !slices.Equal(got, []string{"transient@"}) {
		t.Errorf("issuer down: %d %v, want 503 [transient@]", res.status, got)
	}
	if res.header.Get("WWW-Authenticate") != "" {
		t.Errorf("a 503 with a challenge: %q", res.header.Get("WWW-Authenticate"))
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, "token cannot be checked") || strings.Contains(logs, strings.TrimPrefix(tok, "Authorization: Bearer ")) {
		t.Errorf("the log should say why, without the token:\n%s", logs)
	}
	is.SetDown(false)
	if res := ts.do(t, "GET", "/fhir/Patient", "", tok); res.status != 200 {
		t.Errorf("issuer back: %d %s", res.status, res.body)
	}
}

// TestConditionalCreateHidden: If-None-Exist matches only what the caller
// may see, so criteria that match another patient's resource create a new
// one instead of answering with (and revealing) the hidden match.
func TestConditionalCreateHidden(t *testing.T) {
	t.Parallel()
	is := tokentest.New(t)
	ts := newAccessServer(t, is)
	app := bearer(is.Token(t, testAudience, "patient/Observation.crs", map[string]any{"patient": "pa", "fhirUser": "Person/parent"}))
	body := obsJSON("", "pa", "vital-signs", "RelatedPerson/rpa")
	res := ts.do(t, "POST", "/fhir/Observation", body, app, "If-None-Exist: _id=ob1")
	if res.status != http.StatusCreated || res.json(t)["id"] == "ob1" {
		t.Errorf("criteria matching a hidden resource: %d %s, want 201 and a new resource", res.status, res.body)
	}
	res = ts.do(t, "POST", "/fhir/Observation", body, app, "If-None-Exist: _id=oa1")
	if res.status != http.StatusOK || res.json(t)["id"] != "oa1" {
		t.Errorf("criteria matching a visible resource: %d %s, want 200 and oa1", res.status, res.body)
	}
}

// TestPolicyFreshness: a Consent revoked or a membership removed takes
// effect on the next request of a token issued before, on the server that
// wrote the change and on another server on the same database (which
// hears of it through LISTEN/NOTIFY and drops what it cached).
func TestPolicyFreshness(t *testing.T) {
	t.Parallel()
	is := tokentest.New(t)
	ts := newAccessServer(t, is)
	other := newServerOn(t, ts.pool, withTokens(t, is, nil))
	op := operator(t, is)
	ecd := bearer(is.Token(t, testAudience, "system/*.rs", map[string]any{"organization": "Organization/ecd"}))
	parent := bearer(is.Token(t, testAudience, "patient/*.rs", map[string]any{"patient": "pa", "fhirUser": "Person/parent"}))
	status := func(srv *testServer, path, tok string) int {
		t.Helper()
		return srv.do(t, "GET", "/fhir"+path, "", tok).status
	}
	put := func(srv *testServer, path, body string) {
		t.Helper()
		if res := srv.do(t, "PUT", "/fhir/"+path, body, op); res.status >= 300 {
			t.Fatalf("PUT %s: %d %s", path, res.status, res.body)
		}
	}
	// eventually waits until the other server shows want: notifications
	// are delivered asynchronously (typically within milliseconds); the
	// bound only keeps a broken listener from hanging the test.
	eventually := func(path, tok string, want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for status(other, path, tok) != want {
			if time.Now().After(deadline) {
				t.Fatalf("the other server still answers %s with %d, want %d", path, status(other, path, tok), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Both servers have decided (and cached) before the changes.
	for _, srv := range []*testServer{ts, other} {
		if got := status(srv, "/Condition/ca", ecd); got != 200 {
			t.Fatalf("before: ECD reads Condition/ca: %d", got)
		}
		if got := status(srv, "/Observation/oa1", parent); got != 200 {
			t.Fatalf("before: the parent reads Observation/oa1: %d", got)
		}
	}
	revoked := strings.Replace(consentJSON("cea", "pa", "Organization/ecd", "RelatedPerson/rpa", "personal-details child-plan"), `"status":"active"`, `"status":"inactive"`, 1)
	put(ts, "Consent/cea", revoked)
	if got := status(ts, "/Condition/ca", ecd); got != 404 {
		t.Errorf("after revoking the Consent, the ECD still reads Condition/ca: %d", got)
	}
	if got := status(ts, "/Condition/cb", ecd); got != 200 {
		t.Errorf("the other Consent stays in force: Condition/cb %d", got)
	}
	eventually("/Condition/ca", ecd, 404)

	put(ts, "CareTeam/ta", teamJSON("ta", "pa", "Organization/ecd ecd-system"))
	if got := status(ts, "/Observation/oa1", parent); got != 404 {
		t.Errorf("after removing the membership, the parent still reads Observation/oa1: %d", got)
	}
	eventually("/Observation/oa1", parent, 404)

	// And back, written on the other server this time.
	put(other, "CareTeam/ta", teamJSON("ta", "pa", "RelatedPerson/rpa parent-with-authority", "Organization/ecd ecd-system"))
	if got := status(other, "/Observation/oa1", parent); got != 200 {
		t.Errorf("after restoring the membership, the parent reads Observation/oa1: %d", got)
	}
	deadline := time.Now().Add(30 * time.Second)
	for status(ts, "/Observation/oa1", parent) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the first server did not hear of the restored membership")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
