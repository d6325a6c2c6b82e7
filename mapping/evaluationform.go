package mapping

import (
	"fmt"
	"regexp"
	"slices"
)

// questionnaire is the JSON of the Questionnaire elements an evaluation form
// uses, in R4 order.
type questionnaire struct {
	ResourceType string              `json:"resourceType"`
	ID           string              `json:"id,omitempty"`
	URL          string              `json:"url,omitempty"`
	Name         string              `json:"name,omitempty"`
	Title        string              `json:"title,omitempty"`
	Status       string              `json:"status"`
	Date         string              `json:"date,omitempty"`
	Description  string              `json:"description,omitempty"`
	Item         []questionnaireItem `json:"item,omitempty"`
}

type questionnaireItem struct {
	LinkID   string `json:"linkId"`
	Text     string `json:"text,omitempty"`
	Type     string `json:"type"`
	Required *bool  `json:"required,omitempty"`
}

// Statuses and item types of an evaluation form. The item types are those
// an EvaluationAnswer can answer, plus display for text without an answer.
var (
	formStatuses  = []string{"draft", "active", "retired", "unknown"}
	formItemTypes = []string{"display", "boolean", "integer", "string", "text", "choice"}
	// formNameRE is R4's que-0: a name usable by machines.
	formNameRE = regexp.MustCompile(`^[A-Z]([A-Za-z0-9_]){0,254}$`)
)

// EvaluationForm is the form of an evaluation (evaluatieformulier): the
// questions of the per-agreement or the yearly evaluation. It is carried by
// a Questionnaire, which evaluations (QuestionnaireResponse, see Evaluation)
// answer by its canonical URL.
type EvaluationForm struct {
	ID          string // logical id; empty for a resource still to be created
	URL         string // canonical URL, which Evaluation.Questionnaire names; required
	Name        string // machine name (R4 que-0: a capital, then letters, digits, _); optional
	Title       string
	Status      string // draft, active, retired or unknown
	Date        string // FHIR dateTime it was last changed; optional
	Description string
	Questions   []FormQuestion // in form order
}

// FormQuestion is one question of an evaluation form.
type FormQuestion struct {
	LinkID   string // unique in the form; answers name it
	Text     string // the question as shown
	Type     string // display, boolean, integer, string, text or choice
	Required bool
}

func (f EvaluationForm) check(c *checker) {
	c.id("Questionnaire.id", f.ID)
	c.required("Questionnaire.url", f.URL)
	if f.URL != "" && !canonicalRE.MatchString(f.URL) {
		c.addf("Questionnaire.url", "%q is not a canonical URL", f.URL)
	}
	if f.Name != "" && !formNameRE.MatchString(f.Name) {
		c.addf("Questionnaire.name", "%q is not a machine name (que-0: a capital, then letters, digits and _)", f.Name)
	}
	c.oneOf("Questionnaire.status", f.Status, formStatuses)
	c.dateTime("Questionnaire.date", f.Date)
	var seen []string
	for i, q := range f.Questions {
		expr := fmt.Sprintf("Questionnaire.item[%d]", i)
		c.required(expr+".linkId", q.LinkID)
		if q.LinkID != "" && slices.Contains(seen, q.LinkID) {
			c.addf(expr+".linkId", "linkId %q is used twice (que-2)", q.LinkID)
		}
		seen = append(seen, q.LinkID)
		c.oneOf(expr+".type", q.Type, formItemTypes)
		if q.Type == "display" && q.Required {
			c.addf(expr+".required", "a display item is never required (que-6)")
		}
	}
}

// ToFHIR returns f as a Questionnaire in FHIR R4 JSON. It returns an error of
// kind fhir.Invalid when f breaks a domain rule or an R4 invariant (no URL,
// unknown status or item type, a linkId missing or used twice, a required
// display item, a malformed name or date).
func (f EvaluationForm) ToFHIR() ([]byte, error) {
	out := questionnaire{
		ResourceType: "Questionnaire",
		ID:           f.ID,
		URL:          f.URL,
		Name:         f.Name,
		Title:        f.Title,
		Status:       f.Status,
		Date:         f.Date,
		Description:  f.Description,
	}
	for _, q := range f.Questions {
		it := questionnaireItem{LinkID: q.LinkID, Text: q.Text, Type: q.Type}
		if q.Required {
			req := true
			it.Required = &req
		}
		out.Item = append(out.Item, it)
	}
	return produce("evaluation form to FHIR", f.check, out)
}

// EvaluationFormFromFHIR reads an evaluation form from a Questionnaire in
// FHIR R4 JSON. Elements the domain does not carry (nested items, answer
// options, enableWhen) are ignored. It returns an error of kind
// fhir.Invalid when b is not a Questionnaire or breaks a rule of
// EvaluationForm.ToFHIR.
func EvaluationFormFromFHIR(b []byte) (EvaluationForm, error) {
	var in questionnaire
	if err := decode(b, "Questionnaire", &in); err != nil {
		return EvaluationForm{}, wrap("evaluation form from FHIR", err)
	}
	f := EvaluationForm{
		ID: in.ID, URL: in.URL, Name: in.Name, Title: in.Title, Status: in.Status,
		Date: in.Date, Description: in.Description,
	}
	for _, it := range in.Item {
		f.Questions = append(f.Questions, FormQuestion{
			LinkID: it.LinkID, Text: it.Text, Type: it.Type, Required: it.Required != nil && *it.Required,
		})
	}
	var c checker
	return checked("evaluation form from FHIR", &c, f, EvaluationForm.check)
}
