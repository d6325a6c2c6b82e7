package main

import (
	"context"
	"errors"
	"net/http"
)

// readScenario reads Patients by random id: GET {base}/Patient/{id}. The ids
// come from -ids-from or are the children of -preload generated families
// written through the target.
type readScenario struct {
	ids []string
}

func (s *readScenario) ops() []string { return []string{"read"} }
func (s *readScenario) cost() int     { return 1 }

func (s *readScenario) prepare(ctx context.Context, e *env) error {
	if e.ids != nil {
		s.ids = e.ids
		return nil
	}
	if e.raw {
		// The raw server creates into raw_resources but reads the FHIR
		// server's resources table, so ids it creates cannot be read back.
		return errors.New("read against the raw server needs -ids-from: preload through the FHIR server with -ids-out first")
	}
	if e.preload < 1 {
		return errors.New("nothing to read: -preload must be at least 1 (or give -ids-from)")
	}
	fams, err := preloadFamilies(ctx, e, "families")
	if err != nil {
		return err
	}
	s.ids = childIDs(fams)
	return nil
}

// patientIDs returns the Patient ids read, for -ids-out.
func (s *readScenario) patientIDs() []string { return s.ids }

func (s *readScenario) step(ctx context.Context, w *worker) {
	id := s.ids[w.rng.IntN(len(s.ids))]
	w.do(ctx, "read", http.MethodGet, "Patient/"+id, nil, false)
}
