package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digitaleouder/ouder/fhir/rest"
)

// withIdentifier is a Patient with one identifier in system urn:t.
func withIdentifier(value string, more ...string) string {
	extra := ""
	for _, m := range more {
		extra += "," + m
	}
	return `{"resourceType":"Patient","identifier":[{"system":"urn:t","value":"` + value + `"}]` + extra + `}`
}

// countOf counts the current (not deleted) resources of typ whose body has
// identifier urn:t|value.
func (ts *testServer) countOf(tb testing.TB, typ, value string) int {
	tb.Helper()
	var n int
	err := ts.pool.QueryRow(context.Background(), `SELECT count(*) FROM resources WHERE type = $1 AND NOT deleted
		AND convert_from(body, 'UTF8')::jsonb->'identifier' @> jsonb_build_array(jsonb_build_object('system', 'urn:t', 'value', $2::text))`, typ, value).Scan(&n)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestConditionalCreate checks If-None-Exist: no match creates, one match
// answers 200 with it and writes nothing, several answer 412.
func TestConditionalCreate(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	first := ts.do(t, "POST", "/fhir/Patient", withIdentifier("a"), "If-None-Exist: identifier=urn:t|a")
	if first.status != http.StatusCreated {
		t.Fatalf("first conditional create: status %d: %s", first.status, first.body)
	}
	id, _ := first.json(t)["id"].(string)
	res, versions := ts.rows(t)
	again := ts.do(t, "POST", "/fhir/Patient", withIdentifier("a", `"gender":"male"`), "If-None-Exist: identifier=urn:t|a")
	if again.status != http.StatusOK || again.json(t)["id"] != id || again.json(t)["gender"] != nil || again.header.Get("ETag") != `W/"1"` {
		t.Errorf("second conditional create: status %d, ETag %q: %s; want 200 with the existing %s as stored", again.status, again.header.Get("ETag"), again.body, id)
	}
	// The criteria may also be written Type?query, and match in any form.
	if r := ts.do(t, "POST", "/fhir/Patient", withIdentifier("a"), "If-None-Exist: Patient?identifier=urn%3At%7Ca"); r.status != http.StatusOK {
		t.Errorf("Patient?identifier=...: status %d, want 200: %s", r.status, r.body)
	}
	if r2, v2 := ts.rows(t); r2 != res || v2 != versions {
		t.Errorf("matching conditional creates wrote: %d/%d rows, want %d/%d", r2, v2, res, versions)
	}
	// A "?" inside a value is not a Type? prefix.
	if r := ts.do(t, "POST", "/fhir/Patient", withIdentifier("q?x"), "If-None-Exist: identifier=urn:t|q?x"); r.status != http.StatusCreated {
		t.Errorf("value with a question mark: status %d, want 201: %s", r.status, r.body)
	}
	ts.create(t, "Patient", withIdentifier("a"))
	tests := []struct {
		name, header string
		status       int
		issues       []string
	}{
		{"several matches", "identifier=urn:t|a", 412, []string{"conflict@"}},
		{"unknown parameter", "colour=blue", 400, []string{"invalid@colour"}},
		{"no parameter", "_count=1", 400, []string{"invalid@If-None-Exist"}},
		{"criteria for another type", "Observation?code=x", 400, []string{"invalid@If-None-Exist"}},
		{"malformed value", "birthdate=someday", 400, []string{"invalid@birthdate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(t, "POST", "/fhir/Patient", withIdentifier("a"), "If-None-Exist: "+tt.header)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if diff := cmp.Diff(tt.issues, issues(t, r)); diff != "" {
				t.Errorf("issues (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConditionalCreateConcurrent checks that concurrent conditional
// creates with the same criteria, as requests and inside transactions,
// create exactly one resource between them.
func TestConditionalCreateConcurrent(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	const clients = 16
	for round := range 3 {
		value := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		created := make([]bool, clients)
		ids := make([]string, clients)
		for i := range clients {
			wg.Go(func() {
				if i%2 == 0 {
					r := ts.do(t, "POST", "/fhir/Patient", withIdentifier(value), "If-None-Exist: identifier=urn:t|"+value)
					if r.status != http.StatusCreated && r.status != http.StatusOK {
						t.Errorf("client %d: status %d: %s", i, r.status, r.body)
						return
					}
					created[i] = r.status == http.StatusCreated
					ids[i], _ = r.json(t)["id"].(string)
					return
				}
				r := ts.do(t, "POST", "/fhir", bundleOf("transaction",
					entry("", "POST", "Patient", withIdentifier(value), `"ifNoneExist":"identifier=urn:t|`+value+`"`)))
				var rb responseBundle
				if r.status != http.StatusOK || json.Unmarshal(r.body, &rb) != nil || len(rb.Entry) != 1 {
					t.Errorf("client %d: status %d: %s", i, r.status, r.body)
					return
				}
				created[i] = rb.Entry[0].Response.Status == "201 Created"
				ids[i] = idFrom(t, rb.Entry[0].Response.Location, "Patient")
			})
		}
		wg.Wait()
		if n := ts.countOf(t, "Patient", value); n != 1 {
			t.Errorf("round %d: %d Patients with identifier urn:t|%s, want exactly 1", round, n, value)
		}
		if n := len(slices.DeleteFunc(slices.Clone(created), func(c bool) bool { return !c })); n != 1 {
			t.Errorf("round %d: %d clients were told they created the Patient, want 1", round, n)
		}
		if len(slices.Compact(slices.Clone(ids))) != 1 {
			t.Errorf("round %d: the clients were given different Patients: %v", round, ids)
		}
	}
}

// TestConditionalUpdate checks PUT [type]?[criteria].
func TestConditionalUpdate(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	// No match, no id: created with a new id.
	r := ts.do(t, "PUT", "/fhir/Patient?identifier=urn:t|u1", withIdentifier("u1"))
	if r.status != http.StatusCreated || r.header.Get("Location") == "" {
		t.Fatalf("no match: status %d, Location %q: %s", r.status, r.header.Get("Location"), r.body)
	}
	id, _ := r.json(t)["id"].(string)
	// One match: updated.
	r = ts.do(t, "PUT", "/fhir/Patient?identifier=urn:t|u1", withIdentifier("u1", `"gender":"female"`))
	if r.status != http.StatusOK || r.json(t)["id"] != id || r.header.Get("ETag") != `W/"2"` {
		t.Errorf("one match: status %d, ETag %q: %s; want 200, version 2 of %s", r.status, r.header.Get("ETag"), r.body, id)
	}
	// One match, the body carries its id: fine.
	r = ts.do(t, "PUT", "/fhir/Patient?identifier=urn:t|u1", `{"resourceType":"Patient","id":"`+id+`","identifier":[{"system":"urn:t","value":"u1"}]}`, `If-Match: W/"2"`)
	if r.status != http.StatusOK || r.header.Get("ETag") != `W/"3"` {
		t.Errorf("one match with its id and If-Match: status %d, ETag %q: %s", r.status, r.header.Get("ETag"), r.body)
	}
	// No match, id in the body: update as create with that id.
	r = ts.do(t, "PUT", "/fhir/Patient?identifier=urn:t|u2", `{"resourceType":"Patient","id":"chosen","identifier":[{"system":"urn:t","value":"u2"}]}`)
	if r.status != http.StatusCreated || r.json(t)["id"] != "chosen" {
		t.Errorf("no match with an id: status %d: %s; want 201 as Patient/chosen", r.status, r.body)
	}
	ts.create(t, "Patient", withIdentifier("u2"))
	before := ts.snapshot(t)
	tests := []struct {
		name, path, body string
		headers          []string
		status           int
		issues           []string
	}{
		{"several matches", "/fhir/Patient?identifier=urn:t|u2", withIdentifier("u2"), nil, 412, []string{"conflict@"}},
		{"body id differs from the match", "/fhir/Patient?identifier=urn:t|u1", `{"resourceType":"Patient","id":"other"}`, nil, 400, []string{"invalid@Patient.id"}},
		{"stale If-Match", "/fhir/Patient?identifier=urn:t|u1", withIdentifier("u1"), []string{`If-Match: W/"1"`}, 412, []string{"conflict@"}},
		{"If-Match and no match", "/fhir/Patient?identifier=urn:t|none", withIdentifier("none"), []string{`If-Match: W/"1"`}, 412, []string{"conflict@"}},
		{"unknown parameter", "/fhir/Patient?colour=blue", withIdentifier("x"), nil, 400, []string{"invalid@colour"}},
		{"only result parameters", "/fhir/Patient?_count=5", withIdentifier("x"), nil, 400, []string{"invalid@"}},
		{"invalid body", "/fhir/Patient?identifier=urn:t|u1", `{"resourceType":"Patient","gender":"purple"}`, nil, 400, []string{"structure@Patient.gender"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(t, "PUT", tt.path, tt.body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if diff := cmp.Diff(tt.issues, issues(t, r)); diff != "" {
				t.Errorf("issues (-want +got):\n%s", diff)
			}
		})
	}
	if diff := cmp.Diff(before, ts.snapshot(t)); diff != "" {
		t.Errorf("refused conditional updates changed the database (-before +after):\n%s", diff)
	}
}

// TestConditionalDelete checks DELETE [type]?[criteria], with and without
// ConditionalDeleteMultiple.
func TestConditionalDelete(t *testing.T) {
	t.Parallel()
	t.Run("single", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t)
		if r := ts.do(t, "DELETE", "/fhir/Patient?identifier=urn:t|none", ""); r.status != http.StatusNoContent {
			t.Errorf("no match: status %d, want 204: %s", r.status, r.body)
		}
		id := ts.create(t, "Patient", withIdentifier("one"))
		r := ts.do(t, "DELETE", "/fhir/Patient?identifier=urn:t|one", "")
		if r.status != http.StatusNoContent || r.header.Get("ETag") != `W/"2"` {
			t.Errorf("one match: status %d, ETag %q, want 204 and the tombstone's W/\"2\": %s", r.status, r.header.Get("ETag"), r.body)
		}
		if g := ts.do(t, "GET", "/fhir/Patient/"+id, ""); g.status != http.StatusGone {
			t.Errorf("after the conditional delete: status %d, want 410", g.status)
		}
		ts.create(t, "Patient", withIdentifier("two"))
		ts.create(t, "Patient", withIdentifier("two"))
		before := ts.snapshot(t)
		r = ts.do(t, "DELETE", "/fhir/Patient?identifier=urn:t|two", "")
		if r.status != http.StatusPreconditionFailed {
			t.Errorf("two matches: status %d, want 412: %s", r.status, r.body)
		}
		if diff := cmp.Diff(before, ts.snapshot(t)); diff != "" {
			t.Errorf("the refused delete changed the database (-before +after):\n%s", diff)
		}
		if r := ts.do(t, "DELETE", "/fhir/Patient?_count=1", ""); r.status != http.StatusBadRequest {
			t.Errorf("no criteria: status %d, want 400: %s", r.status, r.body)
		}
	})
	t.Run("multiple", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, func(c *rest.Config) { c.ConditionalDeleteMultiple = true })
		var entries []string
		for range rest.MaxConditionalDeletes + 1 {
			entries = append(entries, entry("", "POST", "Patient", withIdentifier("many")))
		}
		ts.post(t, bundleOf("transaction", entries[:3]...))
		r := ts.do(t, "DELETE", "/fhir/Patient?identifier=urn:t|many", "", "Prefer: return=OperationOutcome")
		if r.status != http.StatusOK {
			t.Fatalf("three matches: status %d, want 200 with an OperationOutcome: %s", r.status, r.body)
		}
		if n := ts.countOf(t, "Patient", "many"); n != 0 {
			t.Errorf("%d Patients left, want all three deleted", n)
		}
		ts.post(t, bundleOf("transaction", entries...))
		before := ts.snapshot(t)
		if r := ts.do(t, "DELETE", "/fhir/Patient?identifier=urn:t|many", ""); r.status != http.StatusPreconditionFailed {
			t.Errorf("%d matches: status %d, want 412: %s", rest.MaxConditionalDeletes+1, r.status, r.body)
		}
		if diff := cmp.Diff(before, ts.snapshot(t)); diff != "" {
			t.Errorf("the refused delete changed the database (-before +after):\n%s", diff)
		}
	})
}
