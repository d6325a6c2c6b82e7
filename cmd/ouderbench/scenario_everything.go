package main

import (
	"context"
	"errors"
	"net/http"
)

// everythingScenario fetches a patient's care plans with what hangs off them
// in one search: CarePlan?subject=Patient/x&_include=CarePlan:goal
// &_revinclude=CarePlan:part-of. Each of the -preload Patients gets a Goal,
// a CarePlan pursuing it, and a sub-plan that is partOf that CarePlan, so
// every answer holds two CarePlans and one included Goal.
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
	s.ids = make([]string, e.preload)
	return forEach(ctx, e, "Patient+Goal+2 CarePlan", e.preload, func(ctx context.Context, i int) error {
		g := newGen(e.seed, preloadStream+uint64(i))
		id, err := e.client.create(ctx, "Patient", mustJSON(g.Patient()))
		if err != nil {
			return err
		}
		s.ids[i] = id
		subject := "Patient/" + id
		goal, err := e.client.create(ctx, "Goal", mustJSON(g.Goal(subject)))
		if err != nil {
			return err
		}
		plan, err := e.client.create(ctx, "CarePlan", mustJSON(g.CarePlan(subject, []string{"Goal/" + goal}, "")))
		if err != nil {
			return err
		}
		_, err = e.client.create(ctx, "CarePlan", mustJSON(g.CarePlan(subject, nil, "CarePlan/"+plan)))
		return err
	})
}

// patientIDs returns the preloaded Patient ids, for -ids-out.
func (s *everythingScenario) patientIDs() []string { return s.ids }

func (s *everythingScenario) step(ctx context.Context, w *worker) {
	id := s.ids[w.rng.IntN(len(s.ids))]
	w.do(ctx, "careplan-includes", http.MethodGet,
		"CarePlan?subject=Patient/"+id+"&_include=CarePlan:goal&_revinclude=CarePlan:part-of", nil, false)
}
