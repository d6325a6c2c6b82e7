package rest_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/digitaleouder/ouder/auth/policy"
	"github.com/digitaleouder/ouder/auth/token/tokentest"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir/rest"
	"github.com/digitaleouder/ouder/mapping/family"
)

// policyBench is the demo family among generated ones on one database,
// served twice: with the full access policy (as ouderd runs it, facts
// cached and kept current by LISTEN/NOTIFY) and with the SMART scopes
// alone (policy.Config.ScopesOnly), for the same tokens.
type policyBench struct {
	full, scopes *testServer
	is           *tokentest.Issuer
}

// policyBenchFamilies is how many generated families share the database
// with the demo family.
const policyBenchFamilies = 40

func newPolicyBench(b *testing.B) *policyBench {
	b.Helper()
	is := tokentest.New(b)
	full := newServer(b, withTokens(b, is, nil))
	scopes := newServerOn(b, full.pool, withTokens(b, is, nil), func(c *rest.Config) {
		reg, err := searchparam.Builtin()
		if err != nil {
			b.Fatal(err)
		}
		c.Authorize = policy.New(policy.Config{Registry: func() *searchparam.Registry { return reg }, Base: c.BaseURL, ScopesOnly: true}).Decide
	})
	op := operator(b, is)
	demo, err := family.Demo(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	if err != nil {
		b.Fatal(err)
	}
	load := func(f *family.Family) {
		if res := full.do(b, "POST", "/fhir", string(f.Transaction()), op); res.status != http.StatusOK {
			b.Fatalf("load %s: %d %s", f.Name, res.status, res.body)
		}
	}
	load(demo)
	for i := range policyBenchFamilies {
		f, err := family.Generate(1, i)
		if err != nil {
			b.Fatal(err)
		}
		load(f)
	}
	// Fresh planner statistics, as ouderd's statistics refresher keeps
	// them after a burst of writes.
	if _, err := full.pool.Exec(context.Background(), "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	return &policyBench{full: full, scopes: scopes, is: is}
}

// compare runs GET path with token on both servers in turn and reports
// the median time of each (scopes-ns, policy-ns) and what the policy adds
// (policy-%): interleaving them lets both meet the same load from the
// rest of the machine.
func (pb *policyBench) compare(b *testing.B, path, token string) {
	b.Helper()
	header := bearer(token)[len("Authorization: "):]
	get := func(ts *testServer) time.Duration {
		req, err := http.NewRequest("GET", ts.URL+path, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", header)
		start := time.Now()
		res, err := ts.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		d := time.Since(start)
		if res.StatusCode != http.StatusOK {
			b.Fatalf("%s: status %d", path, res.StatusCode)
		}
		return d
	}
	// Warm both (connections, plans, the policy's cache).
	for range 20 {
		get(pb.full)
		get(pb.scopes)
	}
	var full, scopes []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			scopes = append(scopes, get(pb.scopes))
		} else {
			full = append(full, get(pb.full))
		}
	}
	b.StopTimer()
	median := func(ds []time.Duration) float64 {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return float64(ds[len(ds)/2])
	}
	s, f := median(scopes), median(full)
	b.ReportMetric(s, "scopes-ns")
	b.ReportMetric(f, "policy-ns")
	if s > 0 {
		b.ReportMetric(100*(f-s)/s, "policy-%")
	}
}

// BenchmarkReadPolicy: a direct read with the full access policy against
// the same read with the scopes alone, for the same token: a parent
// (Person/demo-anna, patient/*.rs with Sara in context) reading Sara's
// child plan, and a youth-care worker (Practitioner/demo-fatima,
// patient/*.rs with Daan in context) reading an agreement of Daan's plan,
// which her Consent grants. The target is policy-% below 25.
//
//	go test -run '^$' -bench 'BenchmarkReadPolicy|BenchmarkSearchPolicy' -count 5 ./fhir/rest
func BenchmarkReadPolicy(b *testing.B) {
	pb := newPolicyBench(b)
	parent := pb.is.Token(b, testAudience, "patient/*.rs", map[string]any{"fhirUser": "Person/demo-anna", "patient": "demo-sara"})
	helper := pb.is.Token(b, testAudience, "patient/*.rs", map[string]any{"fhirUser": "Practitioner/demo-fatima", "patient": "demo-daan"})
	b.Run("parent-careplan", func(b *testing.B) { pb.compare(b, "/fhir/CarePlan/demo-kindplan-sara", parent) })
	b.Run("helper-agreement", func(b *testing.B) { pb.compare(b, "/fhir/CarePlan/demo-afspraak-daan-lezen", helper) })
}

// BenchmarkSearchPolicy: a search with includes with the full access
// policy against the same search with the scopes alone: the parent's
// search of Sara's plans with their goals and help questions.
//
//	go test -run '^$' -bench 'BenchmarkSearchPolicy' -count 5 ./fhir/rest
func BenchmarkSearchPolicy(b *testing.B) {
	pb := newPolicyBench(b)
	parent := pb.is.Token(b, testAudience, "patient/*.rs", map[string]any{"fhirUser": "Person/demo-anna", "patient": "demo-sara"})
	b.Run("parent-careplan-include", func(b *testing.B) {
		pb.compare(b, "/fhir/CarePlan?_include=CarePlan:goal&_include=CarePlan:condition", parent)
	})
}
