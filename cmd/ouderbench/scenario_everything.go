package main

import (
	"context"
	"errors"
	"net/http"
)

// everythingScenario fetches a child's plan with what hangs off it in one
// search: CarePlan?subject=Patient/x&_include=CarePlan:goal
// &_revinclude=CarePlan:part-of. The children of -preload generated families
// each have a child plan with one to three goals, and about half of them an
// agreement that is part of it.
type everythingScenario struct {
	ids []string
}

func (s *everythingScenario) ops() []string { return []string{"careplan-includes"} }
func (s *everythingScenario) cost() int     { return 1 }

func (s *everythingScenario) prepare(ctx context.Context, e *env) error {
	if e.raw {
		return errors.New("the raw server has no search: run everything against the FHIR server")
	}
	if e.preload < 1 {
		return errors.New("nothing to fetch: -preload must be at least 1")
	}
	fams, err := preloadFamilies(ctx, e, "families")
	if err != nil {
		return err
	}
	s.ids = childIDs(fams)
	return nil
}

// patientIDs returns the preloaded Patient ids, for -ids-out.
func (s *everythingScenario) patientIDs() []string { return s.ids }

func (s *everythingScenario) step(ctx context.Context, w *worker) {
	id := s.ids[w.rng.IntN(len(s.ids))]
	w.do(ctx, "careplan-includes", http.MethodGet,
		"CarePlan?subject=Patient/"+id+"&_include=CarePlan:goal&_revinclude=CarePlan:part-of", nil, false)
}
