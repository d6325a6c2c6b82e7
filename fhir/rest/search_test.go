package rest_test

import (
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ids returns the ids of the entries of a searchset with the given mode.
func ids(tb testing.TB, r response, mode string) []string {
	tb.Helper()
	m := r.json(tb)
	if m["resourceType"] != "Bundle" || m["type"] != "searchset" {
		tb.Fatalf("want a searchset Bundle, got %d %s", r.status, r.body)
	}
	var out []string
	entries, _ := m["entry"].([]any)
	for _, e := range entries {
		em := e.(map[string]any)
		if em["search"].(map[string]any)["mode"] != mode {
			continue
		}
		res := em["resource"].(map[string]any)
		out = append(out, res["id"].(string))
	}
	return out
}

func linkOf(tb testing.TB, r response, rel string) string {
	tb.Helper()
	links, _ := r.json(tb)["link"].([]any)
	for _, l := range links {
		lm := l.(map[string]any)
		if lm["relation"] == rel {
			return lm["url"].(string)
		}
	}
	return ""
}

func TestSearchBasics(t *testing.T) {
	t.Parallel()
	ts := newServer(t)
	put := func(typ, id, body string) {
		t.Helper()
		if res := ts.do(t, "PUT", "/fhir/"+typ+"/"+id, body); res.status != 201 {
			t.Fatalf("PUT %s/%s: %d %s", typ, id, res.status, res.body)
		}
	}
	put("Organization", "school", `{"resourceType":"Organization","id":"school","name":"De Regenboog"}`)
	put("Patient", "anna", `{"resourceType":"Patient","id":"anna","identifier":[{"system":"urn:bsn","value":"111"}],"name":[{"family":"Jansen","given":["Anna"]}],"gender":"female","birthDate":"2012-03-04","managingOrganization":{"reference":"Organization/school"}}`)
	put("Patient", "zoe", `{"resourceType":"Patient","id":"zoe","identifier":[{"system":"urn:bsn","value":"222"}],"name":[{"family":"de Vries","given":["Zoë"]}],"gender":"female","birthDate":"2017-09-30"}`)
	put("Patient", "sem", `{"resourceType":"Patient","id":"sem","name":[{"family":"Jansen","given":["Sem"]}],"gender":"male","birthDate":"2014-11-23"}`)
	put("Observation", "o1", `{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":"Patient/anna"},"effectiveDateTime":"2024-05-01","valueQuantity":{"value":152.5,"unit":"cm","system":"http://unitsofmeasure.org","code":"cm"}}`)
	put("Observation", "o2", `{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":"Patient/sem"},"effectiveDateTime":"2025-01-10","valueQuantity":{"value":131,"unit":"cm","system":"http://unitsofmeasure.org","code":"cm"}}`)
	put("Observation", "o3", `{"resourceType":"Observation","id":"o3","status":"preliminary","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"subject":{"reference":"Patient/anna"},"effectiveDateTime":"2025-02-01"}`)

	tests := []struct {
		query string
		want  []string
	}{
		{"Patient?name=jan", []string{"anna", "sem"}},
		{"Patient?name=zoe", []string{"zoe"}},
		{"Patient?name:exact=Jansen", []string{"anna", "sem"}},
		{"Patient?name:exact=jansen", nil},
		{"Patient?name:contains=vri", []string{"zoe"}},
		{"Patient?identifier=urn:bsn|222", []string{"zoe"}},
		{"Patient?identifier=111", []string{"anna"}},
		{"Patient?gender=male", []string{"sem"}},
		{"Patient?gender:not=male", []string{"anna", "zoe"}},
		{"Patient?birthdate=2014", []string{"sem"}},
		{"Patient?birthdate=lt2014", []string{"anna"}},
		{"Patient?birthdate=ge2014-11-23", []string{"sem", "zoe"}},
		{"Patient?birthdate=ge2013&birthdate=lt2016", []string{"sem"}},
		{"Patient?gender=female&name=jansen", []string{"anna"}},
		{"Patient?name=sem,zoe", []string{"sem", "zoe"}},
		{"Patient?_id=anna,zoe", []string{"anna", "zoe"}},
		{"Patient?organization=Organization/school", []string{"anna"}},
		{"Patient?organization:missing=true", []string{"sem", "zoe"}},
		{"Observation?subject=Patient/anna", []string{"o1", "o3"}},
		{"Observation?patient=sem", []string{"o2"}},
		{"Observation?code=http://loinc.org|8302-2", []string{"o1", "o2"}},
		{"Observation?value-quantity=gt140|http://unitsofmeasure.org|cm", []string{"o1"}},
		{"Observation?value-quantity=131", []string{"o2"}},
		{"Observation?date=2025", []string{"o2", "o3"}},
		{"Observation?subject.name=sem", []string{"o2"}},
		{"Observation?subject:Patient.organization.name=de%20regen", []string{"o1", "o3"}},
		{"Observation?subject:Patient.organization.name=regenboog", nil},
		{"Patient?_has:Observation:subject:code=29463-7", []string{"anna"}},
		{"Observation?code-value-quantity=http://loinc.org|8302-2$gt150", []string{"o1"}},
		{"Observation?code-value-quantity=http://loinc.org|29463-7$gt150", nil},
		{"Patient?_sort=birthdate", []string{"anna", "sem", "zoe"}},
		{"Patient?_sort=-birthdate", []string{"zoe", "sem", "anna"}},
		{"Patient?_sort=family,-given", []string{"zoe", "sem", "anna"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			res := ts.do(t, "GET", "/fhir/"+tt.query, "")
			if res.status != 200 {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			got := ids(t, res, "match")
			want := tt.want
			if !slices.Contains([]string{"_sort"}, "") && !containsSort(tt.query) {
				slices.Sort(got)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("matches (-want +got):\n%s", diff)
			}
		})
	}

	// Includes.
	res := ts.do(t, "GET", "/fhir/Observation?code=29463-7&_include=Observation:subject&_include:iterate=Patient:organization", "")
	if got := ids(t, res, "include"); !cmp.Equal(got, []string{"anna", "school"}) {
		t.Errorf("includes = %v, want [anna school]", got)
	}
	res = ts.do(t, "GET", "/fhir/Patient?_id=sem&_revinclude=Observation:subject", "")
	if got := ids(t, res, "include"); !cmp.Equal(got, []string{"o2"}) {
		t.Errorf("revincludes = %v, want [o2]", got)
	}

	// Paging: 3 patients, 2 a page, forth and back.
	first := ts.do(t, "GET", "/fhir/Patient?_count=2&_sort=birthdate&_total=accurate", "")
	if got := first.json(t)["total"]; got != float64(3) {
		t.Errorf("total = %v, want 3", got)
	}
	next := linkOf(t, first, "next")
	if next == "" {
		t.Fatalf("no next link: %s", first.body)
	}
	u, _ := url.Parse(next)
	second := ts.do(t, "GET", u.RequestURI(), "")
	if got := ids(t, second, "match"); !cmp.Equal(got, []string{"zoe"}) {
		t.Errorf("page 2 = %v, want [zoe]", got)
	}
	prev := linkOf(t, second, "previous")
	u, _ = url.Parse(prev)
	back := ts.do(t, "GET", u.RequestURI(), "")
	if got := ids(t, back, "match"); !cmp.Equal(got, []string{"anna", "sem"}) {
		t.Errorf("previous page = %v, want [anna sem]", got)
	}
	if got := ts.do(t, "GET", "/fhir/Patient?_summary=count", "").json(t); got["total"] != float64(3) || got["entry"] != nil {
		t.Errorf("_summary=count = %v", got)
	}
	// Unknown parameters warn, or fail with handling=strict.
	lenient := ts.do(t, "GET", "/fhir/Patient?colour=blue", "")
	if lenient.status != 200 || len(ids(t, lenient, "match")) != 3 {
		t.Errorf("lenient unknown parameter: %d %s", lenient.status, lenient.body)
	}
	if strict := ts.do(t, "GET", "/fhir/Patient?colour=blue", "", "Prefer: handling=strict"); strict.status != 400 {
		t.Errorf("strict unknown parameter: %d", strict.status)
	}
	if bad := ts.do(t, "GET", "/fhir/Patient?birthdate=yesterday", ""); bad.status != 400 || fmt.Sprint(issues(t, bad)) != "[invalid@birthdate]" {
		t.Errorf("bad date: %d %s", bad.status, bad.body)
	}
	// POST _search with a form body.
	form := ts.do(t, "POST", "/fhir/Patient/_search", "gender=male", "Content-Type: application/x-www-form-urlencoded")
	if got := ids(t, form, "match"); !cmp.Equal(got, []string{"sem"}) {
		t.Errorf("POST _search = %v (%d %s)", got, form.status, form.body)
	}
	// Compartment search.
	comp := ts.do(t, "GET", "/fhir/Patient/anna/Observation?code=8302-2", "")
	if got := ids(t, comp, "match"); !cmp.Equal(got, []string{"o1"}) {
		t.Errorf("compartment search = %v (%s)", got, comp.body)
	}
	if res := ts.do(t, "GET", "/fhir/Patient/anna/Organization", ""); res.status != 404 {
		t.Errorf("type outside the compartment: %d, want 404", res.status)
	}
	// System search.
	sys := ts.do(t, "GET", "/fhir/?_type=Patient,Organization&_id=school,sem", "")
	got := ids(t, sys, "match")
	slices.Sort(got)
	if !cmp.Equal(got, []string{"school", "sem"}) {
		t.Errorf("system search = %v (%s)", got, sys.body)
	}
}

func containsSort(q string) bool { return len(q) > 0 && (contains(q, "_sort=")) }

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
