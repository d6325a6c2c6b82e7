package rest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/policy"
	"github.com/digitaleouder/ouder/auth/token/tokentest"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir/rest"
)

// BenchmarkReadAuth reads one stored Patient by id through the full HTTP
// stack, as BenchmarkReadHTTP does, in three ways taken in turn by every
// worker, so that each meets the same load from the rest of the machine:
//
//   - off: no authentication cost (an operator principal injected, no token;
//     only this benchmark's server allows that);
//   - system-token: a real bearer token verified on every request, decided
//     by the policy and enforced in the store, for a backend client
//     (system/Patient.rs: the same SQL as the operator);
//   - patient-token: the same for a patient app (patient/*.rs: the
//     compartment predicate), reading its Patient (patient-%) and one of
//     the patient's Observations (patient-obs-%, against an operator's
//     read of it: the compartment test runs in the SQL).
//
// It reports the median time of a read each way (off-ns, system-ns,
// patient-ns) and what authentication and authorisation add to it
// (system-%, patient-%); the target is less than 10% of the read
// throughput.
//
//	go test -run '^$' -bench BenchmarkReadAuth -benchtime 20000x ./fhir/rest
func BenchmarkReadAuth(b *testing.B) {
	is := tokentest.New(b)
	// One server for the three, so that they share the connections and
	// the database pool: a request without a token is an operator's,
	// with no token to verify.
	// The scopes alone decide here (BenchmarkReadPolicy measures the
	// access policy on top of them): the tokens name no user.
	ts := newServer(b, withTokens(b, is, nil), func(c *rest.Config) {
		reg, err := searchparam.Builtin()
		if err != nil {
			b.Fatal(err)
		}
		c.Authorize = policy.New(policy.Config{Registry: func() *searchparam.Registry { return reg }, ScopesOnly: true}).Decide
		withToken := c.Authenticate
		c.Authenticate = func(r *http.Request) (*auth.Principal, error) {
			if r.Header.Get("Authorization") == "" {
				return &auth.Principal{Operator: true}, nil
			}
			return withToken(r)
		}
	})
	id := ts.create(b, "Patient", patient)
	obs := ts.create(b, "Observation", obsJSON("", id, "vital-signs", ""))
	app := "Bearer " + is.Token(b, testAudience, "patient/*.rs", map[string]any{"patient": id})
	modes := []struct {
		ts           *testServer
		path, header string
	}{
		{ts, "/fhir/Patient/" + id, ""},
		{ts, "/fhir/Patient/" + id, "Bearer " + is.Token(b, testAudience, "system/Patient.rs", nil)},
		{ts, "/fhir/Patient/" + id, app},
		{ts, "/fhir/Observation/" + obs, ""},
		{ts, "/fhir/Observation/" + obs, app},
	}
	var mu sync.Mutex
	var times [5][]time.Duration
	var turn atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine [5][]time.Duration
		for pb.Next() {
			m := int(turn.Add(1) % 5)
			mode := modes[m]
			req, err := http.NewRequest("GET", mode.ts.URL+mode.path, nil)
			if err != nil {
				b.Fatal(err)
			}
			if mode.header != "" {
				req.Header.Set("Authorization", mode.header)
			}
			start := time.Now()
			res, err := mode.ts.Client().Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			mine[m] = append(mine[m], time.Since(start))
			if res.StatusCode != http.StatusOK {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
		mu.Lock()
		for m := range mine {
			times[m] = append(times[m], mine[m]...)
		}
		mu.Unlock()
	})
	b.StopTimer()
	// Medians: the machine's other work shows up as outliers, which the
	// median of each way ignores alike.
	median := func(m int) float64 {
		if len(times[m]) == 0 {
			return 0
		}
		slices.Sort(times[m])
		return float64(times[m][len(times[m])/2])
	}
	off, system, patient := median(0), median(1), median(2)
	b.ReportMetric(off, "off-ns")
	b.ReportMetric(system, "system-ns")
	b.ReportMetric(patient, "patient-ns")
	b.ReportMetric(100*(system-off)/off, "system-%")
	b.ReportMetric(100*(patient-off)/off, "patient-%")
	obsOff, obsPatient := median(3), median(4)
	b.ReportMetric(100*(obsPatient-obsOff)/obsOff, "patient-obs-%")
}

// BenchmarkAuthCPU is the processor time authentication and the access
// decision take per request, without HTTP or the database: a remembered
// token checked, its Principal made, the interaction decided.
//
//	go test -run '^$' -bench BenchmarkAuthCPU ./fhir/rest
func BenchmarkAuthCPU(b *testing.B) {
	is := tokentest.New(b)
	var cfg rest.Config
	withTokens(b, is, nil)(&cfg)
	reg, err := searchparam.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	pol := policy.New(policy.Config{Registry: func() *searchparam.Registry { return reg }, ScopesOnly: true})
	for _, bc := range []struct{ name, scope string }{
		{"system", "system/Patient.rs"},
		{"patient", "patient/*.rs"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/fhir/Patient/p1", nil)
			req.Header.Set("Authorization", "Bearer "+is.Token(b, testAudience, bc.scope, map[string]any{"patient": "p1"}))
			b.ReportAllocs()
			for b.Loop() {
				p, err := cfg.Authenticate(req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := pol.Decide(context.Background(), p, auth.Read, "Patient"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
