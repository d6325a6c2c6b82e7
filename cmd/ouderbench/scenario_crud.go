package main

import (
	"context"
	"net/http"
)

// crudScenario is shaped like the CRUD test of the public HealthSamurai FHIR
// server benchmark (k6/crud.js in fhir-server-performance-benchmark), so
// figures can be set beside theirs: each iteration creates three linked
// resources in dependency order, here from a generated family: a child
// (Patient), then a parent of the child (RelatedPerson) and a goal of the
// child (Goal), both referring to the new Patient. It reads each, updates
// each with a small change (the Patient's and RelatedPerson's active flag,
// the Goal's lifecycleStatus), then deletes each in reverse order. A failed
// create ends the iteration for what depends on it. Figures are reported
// per operation: create, read, update, delete.
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
	update []byte // the body of the update, with the small change
}

func (s *crudScenario) step(ctx context.Context, w *worker) {
	set := w.gen.crudSet()
	child := set.child.ID
	patient := w.gen.fresh(set.child)
	pid, ok := s.create(ctx, w, "Patient", rebind(patient, child, "", "", ""))
	if !ok {
		return
	}
	items := []crudItem{{typ: "Patient", id: pid, update: toggleActive(rebind(patient, child, pid, "", ""))}}
	if id, ok := s.create(ctx, w, "RelatedPerson", rebind(set.parent.JSON, set.parent.ID, "", child, pid)); ok {
		items = append(items, crudItem{typ: "RelatedPerson", id: id, update: toggleActive(rebind(set.parent.JSON, set.parent.ID, id, child, pid))})
	}
	if id, ok := s.create(ctx, w, "Goal", rebind(set.goal.JSON, set.goal.ID, "", child, pid)); ok {
		items = append(items, crudItem{typ: "Goal", id: id, update: toggleGoal(rebind(set.goal.JSON, set.goal.ID, id, child, pid))})
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
		w.do(ctx, "update", http.MethodPut, it.typ+"/"+it.id, it.update, false)
	}
	for i := len(items) - 1; i >= 0; i-- {
		w.do(ctx, "delete", http.MethodDelete, items[i].typ+"/"+items[i].id, nil, false)
	}
}

// create POSTs body as operation "create" and returns the new id.
func (s *crudScenario) create(ctx context.Context, w *worker, typ string, body []byte) (string, bool) {
	r, ok := w.do(ctx, "create", http.MethodPost, typ, body, true)
	if !ok {
		return "", false
	}
	id := createdID(typ, r)
	return id, id != ""
}
