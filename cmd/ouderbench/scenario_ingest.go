package main

import (
	"context"
	"errors"
	"net/http"
)

// ingestScenario POSTs transaction Bundles of -batch entries to the base:
// Patients, each followed by Observations that reference it through its
// urn:uuid fullUrl. A successful Bundle counts its entries as resources
// written, so the report gives resources per second beside requests per
// second.
type ingestScenario struct {
	batch int
}

func (s *ingestScenario) ops() []string { return []string{"transaction"} }
func (s *ingestScenario) cost() int     { return 1 }

func (s *ingestScenario) prepare(_ context.Context, e *env) error {
	if e.raw {
		return errors.New("the raw server has no transactions: run ingest against the FHIR server")
	}
	if e.batch < 1 {
		return errors.New("-batch must be at least 1")
	}
	s.batch = e.batch
	return nil
}

func (s *ingestScenario) step(ctx context.Context, w *worker) {
	if _, ok := w.do(ctx, "transaction", http.MethodPost, "", mustJSON(w.gen.Transaction(s.batch)), false); ok {
		w.wrote(s.batch)
	}
}
