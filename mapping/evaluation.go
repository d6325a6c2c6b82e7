package mapping

import (
	"fmt"
	"regexp"
)

// questionnaireResponse is the JSON of the QuestionnaireResponse elements an
// evaluation uses, in R4 order.
type questionnaireResponse struct {
	ResourceType  string         `json:"resourceType"`
	ID            string         `json:"id,omitempty"`
	BasedOn       []reference    `json:"basedOn,omitempty"`
	Questionnaire string         `json:"questionnaire,omitempty"`
	Status        string         `json:"status"`
	Subject       reference      `json:"subject,omitzero"`
	Authored      string         `json:"authored,omitempty"`
	Author        reference      `json:"author,omitzero"`
	Item          []responseItem `json:"item,omitempty"`
}

type responseItem struct {
	LinkID string           `json:"linkId"`
	Text   string           `json:"text,omitempty"`
	Answer []responseAnswer `json:"answer,omitempty"`
}

type responseAnswer struct {
	ValueString  string  `json:"valueString,omitempty"`
	ValueInteger *int    `json:"valueInteger,omitempty"`
	ValueBoolean *bool   `json:"valueBoolean,omitempty"`
	ValueCoding  *Coding `json:"valueCoding,omitempty"`
}

// Evaluation is an evaluation (evaluatie) of an agreement or a plan: the
// per-agreement evaluation or the yearly one. It is carried by a
// QuestionnaireResponse basedOn the agreement or plan, answering the
// evaluation Questionnaire. All evaluations are in the evaluations section
// (QuestionnaireResponse has no category in R4); to let a helper evaluate one
// agreement, a grant names the evaluations section and that agreement.
type Evaluation struct {
	ID            string           // logical id; empty for a resource still to be created
	Questionnaire string           // canonical URL of the evaluation form; optional
	BasedOn       string           // CarePlan/… of the agreement or plan evaluated
	Status        string           // in-progress, completed, amended, entered-in-error or stopped
	Subject       string           // Patient/… or Group/… the evaluation is about; optional
	Author        string           // who filled it in; optional
	Authored      string           // FHIR dateTime it was filled in
	Items         []EvaluationItem // the answers, in form order
}

// EvaluationItem is one answered question of an evaluation.
type EvaluationItem struct {
	LinkID  string             // the question's linkId in the form
	Text    string             // the question as shown
	Answers []EvaluationAnswer // zero or more answers
}

// EvaluationAnswer is one answer. Exactly one of its fields is set; String
// counts as set when it is not empty.
type EvaluationAnswer struct {
	String  string
	Integer *int
	Boolean *bool
	Coding  *Coding
}

// canonicalRE is the FHIR canonical (a uri): no whitespace.
var canonicalRE = regexp.MustCompile(`^\S+$`)

func (e Evaluation) check(c *checker) {
	c.id("QuestionnaireResponse.id", e.ID)
	if e.Questionnaire != "" && !canonicalRE.MatchString(e.Questionnaire) {
		c.addf("QuestionnaireResponse.questionnaire", "%q is not a canonical URL", e.Questionnaire)
	}
	c.required("QuestionnaireResponse.basedOn", e.BasedOn)
	c.ref("QuestionnaireResponse.basedOn", e.BasedOn, "CarePlan")
	c.oneOf("QuestionnaireResponse.status", e.Status, responseStatuses)
	c.ref("QuestionnaireResponse.subject", e.Subject, "Patient", "Group")
	c.ref("QuestionnaireResponse.author", e.Author, "Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Organization", "Device")
	c.dateTime("QuestionnaireResponse.authored", e.Authored)
	for i, it := range e.Items {
		expr := fmt.Sprintf("QuestionnaireResponse.item[%d]", i)
		c.required(expr+".linkId", it.LinkID)
		for j, a := range it.Answers {
			n := 0
			for _, set := range []bool{a.String != "", a.Integer != nil, a.Boolean != nil, a.Coding != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				c.addf(fmt.Sprintf("%s.answer[%d]", expr, j), "an answer has exactly one value, got %d", n)
			}
		}
	}
}

// ToFHIR returns e as a QuestionnaireResponse in FHIR R4 JSON. It returns an
// error of kind fhir.Invalid when e breaks a domain rule (no agreement or
// plan, unknown status, an item without linkId, an answer without exactly one
// value, malformed dates or references).
func (e Evaluation) ToFHIR() ([]byte, error) {
	out := questionnaireResponse{
		ResourceType:  "QuestionnaireResponse",
		ID:            e.ID,
		BasedOn:       refs(e.BasedOn),
		Questionnaire: e.Questionnaire,
		Status:        e.Status,
		Subject:       ref(e.Subject),
		Authored:      e.Authored,
		Author:        ref(e.Author),
	}
	for _, it := range e.Items {
		ri := responseItem{LinkID: it.LinkID, Text: it.Text}
		for _, a := range it.Answers {
			ri.Answer = append(ri.Answer, responseAnswer{
				ValueString: a.String, ValueInteger: a.Integer, ValueBoolean: a.Boolean, ValueCoding: a.Coding,
			})
		}
		out.Item = append(out.Item, ri)
	}
	return produce("evaluation to FHIR", e.check, out)
}

// EvaluationFromFHIR reads an evaluation from a QuestionnaireResponse in FHIR
// R4 JSON. Elements the domain does not carry (nested items, other answer
// types) are ignored, except that an answer whose value is of another type
// counts as an answer without a value. It returns an error of kind
// fhir.Invalid when b is not a QuestionnaireResponse basedOn one CarePlan, or
// breaks a rule of Evaluation.ToFHIR.
func EvaluationFromFHIR(b []byte) (Evaluation, error) {
	var in questionnaireResponse
	if err := decode(b, "QuestionnaireResponse", &in); err != nil {
		return Evaluation{}, wrap("evaluation from FHIR", err)
	}
	var c checker
	e := Evaluation{
		ID:            in.ID,
		Questionnaire: in.Questionnaire,
		BasedOn:       one(&c, "QuestionnaireResponse.basedOn", refStrings(in.BasedOn)),
		Status:        in.Status,
		Subject:       in.Subject.Reference,
		Authored:      in.Authored,
		Author:        in.Author.Reference,
	}
	for _, ri := range in.Item {
		it := EvaluationItem{LinkID: ri.LinkID, Text: ri.Text}
		for _, a := range ri.Answer {
			it.Answers = append(it.Answers, EvaluationAnswer{
				String: a.ValueString, Integer: a.ValueInteger, Boolean: a.ValueBoolean, Coding: a.ValueCoding,
			})
		}
		e.Items = append(e.Items, it)
	}
	return checked("evaluation from FHIR", &c, e, Evaluation.check)
}
