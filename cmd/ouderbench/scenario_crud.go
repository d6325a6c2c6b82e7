package main

import (
	"context"
	"net/http"
)

// crudScenario is shaped like the CRUD test of the public HealthSamurai FHIR
// server benchmark (k6/crud.js in fhir-server-performance-benchmark), so
// figures can be set beside theirs: each iteration creates linked resources
// in dependency order (here Patient, then an Observation and a CarePlan about
// it), reads each, updates each with a small change (Patient.gender,
// Observation.issued, CarePlan.created, as they do), then deletes each in
// reverse order. A failed create ends the iteration for what depends on it.
// Figures are reported per operation: create, read, update, delete.
//
// Against the raw server, which has no update or delete, an iteration
// creates the same three resources and, when -ids-from is given, reads three
// of those Patients: raw figures exist for create and read only.
type crudScenario struct {
	raw bool
	ids []string // raw mode reads
}

func (s *crudScenario) ops() []string { return []string{"create", "read", "update", "delete"} }

func (s *crudScenario) cost() int {
	if !s.raw {
		return 12
	}
	if len(s.ids) > 0 {
		return 6
	}
	return 3
}

func (s *crudScenario) prepare(_ context.Context, e *env) error {
	s.raw = e.raw
	s.ids = e.ids
	return nil
}

// crudItem is one resource created in an iteration.
type crudItem struct {
	typ    string
	id     string
	res    any    // the generated resource; its ID is set once created
	change func() // the update's change
}

func (s *crudScenario) step(ctx context.Context, w *worker) {
	p := w.gen.Patient()
	pid, ok := s.create(ctx, w, "Patient", p)
	if !ok {
		return
	}
	p.ID = pid
	subject := "Patient/" + pid
	o := w.gen.Observation(subject)
	cp := w.gen.CarePlan(subject, nil, "")
	items := []crudItem{{typ: "Patient", id: pid, res: p, change: func() {
		if p.Gender == "unknown" {
			p.Gender = "other"
		} else {
			p.Gender = "unknown"
		}
	}}}
	if id, ok := s.create(ctx, w, "Observation", o); ok {
		o.ID = id
		items = append(items, crudItem{typ: "Observation", id: id, res: o, change: func() { o.Issued = w.gen.instant() }})
	}
	if id, ok := s.create(ctx, w, "CarePlan", cp); ok {
		cp.ID = id
		items = append(items, crudItem{typ: "CarePlan", id: id, res: cp, change: func() { cp.Created = w.gen.instant() }})
	}

	if s.raw {
		if len(s.ids) == 0 {
			return
		}
		for range 3 {
			w.do(ctx, "read", http.MethodGet, "Patient/"+s.ids[w.rng.IntN(len(s.ids))], nil, false)
		}
		return
	}
	for _, it := range items {
		w.do(ctx, "read", http.MethodGet, it.typ+"/"+it.id, nil, false)
	}
	for _, it := range items {
		it.change()
		w.do(ctx, "update", http.MethodPut, it.typ+"/"+it.id, mustJSON(it.res), false)
	}
	for i := len(items) - 1; i >= 0; i-- {
		w.do(ctx, "delete", http.MethodDelete, items[i].typ+"/"+items[i].id, nil, false)
	}
}

// create POSTs res as operation "create" and returns the new id.
func (s *crudScenario) create(ctx context.Context, w *worker, typ string, res any) (string, bool) {
	r, ok := w.do(ctx, "create", http.MethodPost, typ, mustJSON(res), true)
	if !ok {
		return "", false
	}
	id := createdID(typ, r)
	return id, id != ""
}
