package main

import (
	"context"
	"errors"
	"net/http"
)

// ingestScenario POSTs transaction Bundles of at least -batch entries to the
// base: whole generated families (about 55 resources each, written with PUT
// at their stable ids, every reference naming another entry), never written
// before. A successful Bundle counts its entries as resources written, so the
// report gives resources per second beside requests per second.
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
	body, n := w.gen.transaction(s.batch)
	if _, ok := w.do(ctx, "transaction", http.MethodPost, "", body, false); ok {
		w.wrote(n)
	}
}
