package rest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkReadHTTP reads one stored Patient by id through the full HTTP
// stack (router, negotiation, logging) and PostgreSQL.
func BenchmarkReadHTTP(b *testing.B) {
	ts := newServer(b)
	id := ts.create(b, "Patient", patient)
	url := ts.URL + "/fhir/Patient/" + id
	client := ts.Client()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Get(url)
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
}

// BenchmarkCreateHTTP creates Patients through the full stack: parse and
// validate once, stamp the bytes, write resource and history.
func BenchmarkCreateHTTP(b *testing.B) {
	ts := newServer(b)
	url := ts.URL + "/fhir/Patient"
	client := ts.Client()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Post(url, fhirJSON, strings.NewReader(patient))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
	})
}
