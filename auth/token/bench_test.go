package token

import (
	"context"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkVerify is the cost of verifying one access token once the
// issuer's keys are cached: signature, claims, scopes (full), and for a
// token verified before, within CacheTTL (remembered). It reports the
// median (p50-ns) and p99 of single verifications besides the mean.
//
//	go test -run '^$' -bench BenchmarkVerify ./auth/token
func BenchmarkVerify(b *testing.B) {
	for _, bc := range []struct {
		name string
		k    signingKey
		ttl  time.Duration
	}{
		{"RS256/full", rsaKey(0, "rs256", jose.RS256), -1},
		{"ES256/full", ecKey("P-256", "es256", jose.ES256), -1},
		{"RS256/remembered", rsaKey(0, "rs256", jose.RS256), 0},
	} {
		k := bc.k
		b.Run(bc.name, func(b *testing.B) {
			ti := newTestIssuer(b, k)
			clk := newClock()
			v, err := New(context.Background(), Config{Issuers: []Issuer{{URL: ti.URL(), Audience: fhirBase}}, Now: clk.Now, CacheTTL: bc.ttl})
			if err != nil {
				b.Fatal(err)
			}
			tok := sign(b, k, claims(ti, clk.Now(), nil))
			ctx := context.Background()
			if _, err := v.Verify(ctx, tok); err != nil { // fetch the keys
				b.Fatal(err)
			}
			times := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
				if len(times) < cap(times) {
					times = append(times, time.Since(start))
				}
			}
			b.StopTimer()
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
