package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// searchObsPerPatient is how many Observations each preloaded Patient gets.
const searchObsPerPatient = 3

// searchScenario runs a uniform mix of search shapes over preloaded data:
// -preload Patients, each with searchObsPerPatient vital-sign Observations
// and one CarePlan. Every shape asks for _count=20 so that servers with
// different default page sizes return comparable pages.
type searchScenario struct {
	patients []searchPatient
}

// searchPatient is what the search shapes need of a preloaded Patient.
type searchPatient struct {
	id, identifier, family string
}

// searchShapes are the operations in report order; step picks one uniformly.
var searchShapes = []string{"token", "identifier", "reference-date-sort", "chained", "has", "string"}

func (s *searchScenario) ops() []string { return searchShapes }
func (s *searchScenario) cost() int     { return 1 }

func (s *searchScenario) prepare(ctx context.Context, e *env) error {
	if e.raw {
		return errors.New("the raw server has no search: run search against the FHIR server")
	}
	if e.preload < 1 {
		return errors.New("nothing to search: -preload must be at least 1")
	}
	s.patients = make([]searchPatient, e.preload)
	return forEach(ctx, e, "Patient+3 Observation+CarePlan", e.preload, func(ctx context.Context, i int) error {
		g := newGen(e.seed, preloadStream+uint64(i))
		p := g.Patient()
		id, err := e.client.create(ctx, "Patient", mustJSON(p))
		if err != nil {
			return err
		}
		s.patients[i] = searchPatient{id: id, identifier: p.Identifier[0].Value, family: p.Name[0].Family}
		subject := "Patient/" + id
		for range searchObsPerPatient {
			if _, err := e.client.create(ctx, "Observation", mustJSON(g.Observation(subject))); err != nil {
				return err
			}
		}
		_, err = e.client.create(ctx, "CarePlan", mustJSON(g.CarePlan(subject, nil, "")))
		return err
	})
}

// patientIDs returns the preloaded Patient ids, for -ids-out.
func (s *searchScenario) patientIDs() []string {
	ids := make([]string, len(s.patients))
	for i, p := range s.patients {
		ids[i] = p.id
	}
	return ids
}

func (s *searchScenario) step(ctx context.Context, w *worker) {
	op := searchShapes[w.rng.IntN(len(searchShapes))]
	w.do(ctx, op, http.MethodGet, s.query(op, w), nil, false)
}

// query returns the search (path and query) for shape op with values drawn
// from w's stream.
func (s *searchScenario) query(op string, w *worker) string {
	p := s.patients[w.rng.IntN(len(s.patients))]
	code := loincSystem + "|" + w.gen.vital().code
	switch op {
	case "token":
		return "Observation?code=" + esc(code) + "&_count=20"
	case "identifier":
		return "Patient?identifier=" + esc(patientIDSystem+"|"+p.identifier) + "&_count=20"
	case "reference-date-sort":
		return "Observation?subject=Patient/" + p.id + "&date=ge2020-01-01&_sort=-date&_count=20"
	case "chained":
		return "Observation?subject:Patient.name=" + esc(w.gen.family()) + "&_count=20"
	case "has":
		return "Patient?_has:Observation:subject:code=" + esc(code) + "&_count=20"
	default: // string
		return "Patient?name=" + esc(w.gen.family()) + "&_count=20"
	}
}

// esc escapes a search parameter value, spaces as %20 (not "+", which not
// every server decodes in a query).
func esc(v string) string {
	return strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
}
