package rest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/store/pgtest"
)

// benchBundle is a transaction of n new resources: pairs of a Patient and
// an Observation that refers to it by its urn:uuid fullUrl.
func benchBundle(n int, seed int) string {
	entries := make([]string, 0, n)
	for i := 0; len(entries) < n; i++ {
		pat := fmt.Sprintf("urn:uuid:00000000-0000-4000-8000-%012d", i)
		entries = append(entries, entry(pat, "POST", "Patient", fmt.Sprintf(
			`{"resourceType":"Patient","identifier":[{"system":"urn:bench","value":"%d-%d"}],"active":true,`+
				`"name":[{"use":"official","family":"Jansen%d","given":["Anna","Maria"]}],"telecom":[{"system":"phone","value":"+31 6 %08d","use":"mobile"}],`+
				`"gender":"female","birthDate":"2012-03-%02d","address":[{"line":["Oudegracht %d"],"city":"Utrecht","postalCode":"3511 AB","country":"NL"}]}`,
			seed, i, i, i, 1+i%28, i)))
		if len(entries) == n {
			break
		}
		entries = append(entries, entry("", "POST", "Observation", fmt.Sprintf(
			`{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],`+
				`"code":{"coding":[{"system":"http://loinc.org","code":"29463-7","display":"Body weight"}]},"subject":{"reference":%q},`+
				`"effectiveDateTime":"2024-05-%02dT10:00:00Z","valueQuantity":{"value":%d.%d,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}`,
			pat, 1+i%28, 20+i%40, i%10)))
	}
	return bundleOf("transaction", entries...)
}

// BenchmarkTransaction posts transaction Bundles of new Patients and
// Observations through the full HTTP stack, every R4 search parameter
// indexed: one client sending 1,000-entry Bundles, and 8 clients sending
// 100-entry Bundles at once. resources/s counts the resources stored.
//
//	go test ./fhir/rest -run '^$' -bench BenchmarkTransaction -benchtime 20x
func BenchmarkTransaction(b *testing.B) {
	for _, bc := range []struct {
		name             string
		clients, entries int
	}{
		{"entries=1000/clients=1", 1, 1000},
		{"entries=100/clients=8", 8, 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// A pool as large as ouderd's (16), not pgtest's default.
			cfg, err := pgxpool.ParseConfig(pgtest.URL(b))
			if err != nil {
				b.Fatal(err)
			}
			cfg.MaxConns = 16
			pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pool.Close)
			ts := newServerOn(b, pool)
			tr := ts.Client().Transport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = bc.clients
			client := &http.Client{Transport: tr}
			bodies := make([]string, bc.clients)
			for i := range bodies {
				bodies[i] = benchBundle(bc.entries, i)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for c := range bc.clients {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						res, err := client.Post(ts.URL+"/fhir", fhirJSON, strings.NewReader(bodies[c]))
						if err != nil {
							b.Error(err)
							return
						}
						body, _ := io.ReadAll(res.Body)
						res.Body.Close()
						if res.StatusCode != http.StatusOK {
							b.Errorf("status %d: %.300s", res.StatusCode, body)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*bc.entries)/elapsed.Seconds(), "resources/s")
		})
	}
}
