package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/digitaleouder/ouder/mapping"
	"github.com/digitaleouder/ouder/mapping/family"
)

// searchScenario runs a uniform mix of search shapes over -preload generated
// families (children, parents, plans, goals on the quality-of-life domains,
// diary entries, ...). Every shape asks for _count=20 so that servers with
// different default page sizes return comparable pages.
type searchScenario struct {
	patients []searchPatient
}

// searchPatient is what the search shapes need of a preloaded child.
type searchPatient struct {
	id, family string
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
	fams, err := preloadFamilies(ctx, e, "families")
	if err != nil {
		return err
	}
	for _, f := range fams {
		for _, id := range f.Children {
			child, err := mapping.ChildDetailsFromFHIR(find(f, "Patient/"+id).JSON)
			if err != nil {
				return err
			}
			s.patients = append(s.patients, searchPatient{id: id, family: child.Name.Family})
		}
	}
	return nil
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

// domains are the quality-of-life domain codes goals are categorised by.
var domains = func() []string {
	cs, _ := mapping.LookupCodeSystem(mapping.DomainSystem)
	var out []string
	for _, c := range cs.Concepts {
		out = append(out, c.Code)
	}
	return out
}()

// query returns the search (path and query) for shape op with values drawn
// from w's stream.
func (s *searchScenario) query(op string, w *worker) string {
	p := s.patients[w.rng.IntN(len(s.patients))]
	domain := mapping.DomainSystem + "|" + domains[w.rng.IntN(len(domains))]
	switch op {
	case "token":
		return "Goal?category=" + esc(domain) + "&_count=20"
	case "identifier":
		return "Patient?identifier=" + esc(family.IdentifierSystem+"|"+p.id) + "&_count=20"
	case "reference-date-sort":
		return "Communication?subject=Patient/" + p.id + "&sent=ge2020-01-01&_sort=-sent&_count=20"
	case "chained":
		return "Goal?subject:Patient.name=" + esc(w.gen.familyName()) + "&_count=20"
	case "has":
		return "Patient?_has:Goal:subject:category=" + esc(domain) + "&_count=20"
	default: // string
		return "Patient?name=" + esc(w.gen.familyName()) + "&_count=20"
	}
}

// esc escapes a search parameter value, spaces as %20 (not "+", which not
// every server decodes in a query).
func esc(v string) string {
	return strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
}
