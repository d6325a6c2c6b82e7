package ig

import (
	"strings"

	"github.com/digitaleouder/ouder/mapping"
)

// The JSON shapes of the terminology resources, in R4 element order.
type (
	codeSystem struct {
		ResourceType  string    `json:"resourceType"`
		ID            string    `json:"id"`
		Language      string    `json:"language"`
		URL           string    `json:"url"`
		Version       string    `json:"version"`
		Name          string    `json:"name"`
		Title         string    `json:"title"`
		Status        string    `json:"status"`
		Publisher     string    `json:"publisher"`
		Description   string    `json:"description,omitempty"`
		CaseSensitive bool      `json:"caseSensitive"`
		ValueSet      string    `json:"valueSet"`
		Content       string    `json:"content"`
		Count         int       `json:"count"`
		Concept       []concept `json:"concept"`
	}
	concept struct {
		Code        string        `json:"code"`
		Display     string        `json:"display"`
		Designation []designation `json:"designation,omitempty"`
	}
	designation struct {
		Language string `json:"language"`
		Value    string `json:"value"`
	}
	valueSet struct {
		ResourceType string  `json:"resourceType"`
		ID           string  `json:"id"`
		Language     string  `json:"language"`
		URL          string  `json:"url"`
		Version      string  `json:"version"`
		Name         string  `json:"name"`
		Title        string  `json:"title"`
		Status       string  `json:"status"`
		Publisher    string  `json:"publisher"`
		Description  string  `json:"description,omitempty"`
		Compose      compose `json:"compose"`
	}
	compose struct {
		Include []include `json:"include"`
	}
	include struct {
		System  string      `json:"system"`
		Concept []vsConcept `json:"concept,omitempty"`
	}
	vsConcept struct {
		Code    string `json:"code"`
		Display string `json:"display,omitempty"`
	}
)

// idOf returns the last part of a canonical URL.
func idOf(url string) string { return url[strings.LastIndexByte(url, '/')+1:] }

func valueSetURL(id string) string { return mapping.BaseURL + "/ValueSet/" + id }

// codeSystems returns the guide's CodeSystems, one per system of
// mapping.CodeSystems(): complete, in Dutch with English designations.
func codeSystems() []codeSystem {
	var out []codeSystem
	for _, cs := range mapping.CodeSystems() {
		c := codeSystem{
			ResourceType: "CodeSystem", ID: idOf(cs.URL), Language: "nl", URL: cs.URL, Version: Version,
			Name: cs.Name, Title: cs.Title, Status: "active", Publisher: publisher,
			Description:   cs.Title + " of the Digitale Ouder implementation guide.",
			CaseSensitive: true, ValueSet: valueSetURL(idOf(cs.URL)), Content: "complete", Count: len(cs.Concepts),
		}
		for _, k := range cs.Concepts {
			c.Concept = append(c.Concept, concept{Code: k.Code, Display: k.Display, Designation: []designation{{Language: "en", Value: k.DisplayEN}}})
		}
		out = append(out, c)
	}
	return out
}

// valueSets returns a ValueSet with all codes of each code system, and the
// narrower value sets the profiles bind to.
func valueSets() []valueSet {
	var out []valueSet
	vs := func(id, name, title, description string, inc ...include) valueSet {
		return valueSet{
			ResourceType: "ValueSet", ID: id, Language: "nl", URL: valueSetURL(id), Version: Version,
			Name: name, Title: title, Status: "active", Publisher: publisher, Description: description,
			Compose: compose{Include: inc},
		}
	}
	for _, cs := range mapping.CodeSystems() {
		out = append(out, vs(idOf(cs.URL), cs.Name, cs.Title, "Every code of "+cs.Title+".", include{System: cs.URL}))
	}
	codes := func(system string, cs ...string) include {
		inc := include{System: system}
		for _, c := range cs {
			inc.Concept = append(inc.Concept, vsConcept{Code: c})
		}
		return inc
	}
	out = append(out,
		vs("plan-kind", "PlanKind", "Plan kinds", "The kinds of plan: every plan category but agreement.",
			codes(mapping.PlanCategorySystem, string(mapping.ParentingPlan), string(mapping.ChildPlan), string(mapping.DevelopmentPlan), string(mapping.VOP))),
		vs("grantable-interaction", "GrantableInteraction", "Grantable interactions", "What a Consent may grant: every interaction class but approve, which only the dossierhouder has.",
			codes(mapping.InteractionSystem, string(mapping.Read), string(mapping.WriteOwnNotes), string(mapping.Propose))),
		vs("help-question-status", "HelpQuestionStatus", "Help question status", "Whether a help question is open (active), inactive or resolved.",
			codes(mapping.ConditionClinicalSystem, "active", "inactive", "resolved")),
	)
	return out
}
