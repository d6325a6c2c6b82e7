package rest_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/digitaleouder/ouder/store/postgres"
)

// BenchmarkReadAudit measures read throughput with auditing off and on:
// parallel reads of one stored Patient by id through the full HTTP stack,
// on two servers sharing one database, the second writing an AuditEvent
// per read through the batch writer. The audit sub-benchmark waits for the
// writer to finish before it stops the clock, so ns/op includes the
// inserts (they run on the same database and cores). Compare the medians
// of -count runs:
//
//	go test -run '^$' -bench BenchmarkReadAudit -benchtime 20000x -count 5 ./fhir/rest
func BenchmarkReadAudit(b *testing.B) {
	var w *postgres.AuditWriter
	on := newServer(b, withAudit(b, &w))
	off := newServerOn(b, on.pool)
	id := on.create(b, "Patient", patient)
	for _, bc := range []struct {
		name string
		ts   *testServer
	}{{"off", off}, {"audit", on}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := bc.ts.Client().Get(bc.ts.URL + "/fhir/Patient/" + id)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Fatalf("status %d", res.StatusCode)
					}
				}
			})
			w.Flush()
		})
	}
}
