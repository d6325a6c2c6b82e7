package main

import (
	"context"
	"net/http"
)

// createScenario POSTs a new Patient (a generated family's child, with a
// fresh identifier) per step: the write path alone, with nothing read back. Against the raw server it inserts into raw_resources,
// so the two figures side by side are what the FHIR layer costs a create.
type createScenario struct{}

func (s *createScenario) ops() []string                       { return []string{"create"} }
func (s *createScenario) cost() int                           { return 1 }
func (s *createScenario) prepare(context.Context, *env) error { return nil }

func (s *createScenario) step(ctx context.Context, w *worker) {
	w.do(ctx, "create", http.MethodPost, "Patient", w.gen.Patient(), false)
}
