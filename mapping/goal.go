package mapping

// goal is the JSON of the Goal elements the domain uses, in R4 order.
type goal struct {
	ResourceType    string            `json:"resourceType"`
	ID              string            `json:"id,omitempty"`
	LifecycleStatus string            `json:"lifecycleStatus"`
	Category        []codeableConcept `json:"category,omitempty"`
	Description     codeableConcept   `json:"description"`
	Subject         reference         `json:"subject"`
	Target          []goalTarget      `json:"target,omitempty"`
}

type goalTarget struct {
	DueDate string `json:"dueDate,omitempty"`
}

// Goal is a goal (doel) of a plan, categorised by a Schalock quality-of-life
// domain. It is carried by a Goal whose categories are the plan kind (which
// places it in its plan's section) and the domain. Progress is recorded as
// Observations with category goal-progress that point at the goal with
// Observation.focus, so reporting progress never changes the goal (which
// would need approval).
type Goal struct {
	ID          string       // logical id; empty for a resource still to be created
	PlanKind    PlanCategory // the kind of the plan the goal belongs to
	Domain      Domain       // the quality-of-life domain; optional
	Status      string       // Goal.lifecycleStatus: GoalProposed while proposed, then GoalActive, GoalRejected, completed, cancelled…
	Description string       // what the goal is (Goal.description.text)
	Subject     string       // Patient/… (the child, or the parent for a development plan) or Group/…
	TargetDate  string       // FHIR date by which the goal should be reached (Goal.target.dueDate)
}

func (g Goal) check(c *checker) {
	c.id("Goal.id", g.ID)
	checkPlanKind(c, "Goal.category", g.PlanKind)
	g.Domain.check(c, "Goal.category")
	c.oneOf("Goal.lifecycleStatus", g.Status, goalStatuses)
	c.required("Goal.description", g.Description)
	c.required("Goal.subject", g.Subject)
	c.ref("Goal.subject", g.Subject, "Patient", "Group")
	c.date("Goal.target.dueDate", g.TargetDate)
}

// ToFHIR returns g as a Goal in FHIR R4 JSON. It returns an error of kind
// fhir.Invalid when g breaks a domain rule (no plan kind, description or
// subject; unknown status or domain; malformed date or reference).
func (g Goal) ToFHIR() ([]byte, error) {
	out := goal{
		ResourceType:    "Goal",
		ID:              g.ID,
		LifecycleStatus: g.Status,
		Category:        concepts(g.PlanKind.Coding(), g.Domain.category()),
		Description:     codeableConcept{Text: g.Description},
		Subject:         ref(g.Subject),
	}
	if g.TargetDate != "" {
		out.Target = []goalTarget{{DueDate: g.TargetDate}}
	}
	return produce("goal to FHIR", g.check, out)
}

// GoalFromFHIR reads a goal from a Goal in FHIR R4 JSON. Elements the domain
// does not carry are ignored. It returns an error of kind fhir.Invalid when b
// is not a Goal with one plan kind, at most one domain and a description
// text, or breaks a rule of Goal.ToFHIR.
func GoalFromFHIR(b []byte) (Goal, error) {
	var in goal
	if err := decode(b, "Goal", &in); err != nil {
		return Goal{}, wrap("goal from FHIR", err)
	}
	var c checker
	cats := codings(in.Category)
	kind, agreement := planKindIn(&c, "Goal.category", cats)
	if agreement {
		c.addf("Goal.category", "a goal is not an agreement")
	}
	var due []string
	for _, t := range in.Target {
		if t.DueDate != "" {
			due = append(due, t.DueDate)
		}
	}
	g := Goal{
		ID:          in.ID,
		PlanKind:    kind,
		Domain:      Domain(codeIn(&c, "Goal.category", DomainSystem, cats)),
		Status:      in.LifecycleStatus,
		Description: in.Description.Text,
		Subject:     in.Subject.Reference,
		TargetDate:  one(&c, "Goal.target.dueDate", due),
	}
	return checked("goal from FHIR", &c, g, Goal.check)
}

// condition is the JSON of the Condition elements a help question uses.
type condition struct {
	ResourceType   string            `json:"resourceType"`
	ID             string            `json:"id,omitempty"`
	ClinicalStatus codeableConcept   `json:"clinicalStatus,omitzero"`
	Category       []codeableConcept `json:"category,omitempty"`
	Code           codeableConcept   `json:"code,omitzero"`
	Subject        reference         `json:"subject"`
	RecordedDate   string            `json:"recordedDate,omitempty"`
	Asserter       reference         `json:"asserter,omitzero"`
}

// HelpQuestion is a help question (hulpvraag): what a parent, child or helper
// asks help with. It is carried by a Condition with categories help-question,
// the plan kind of the plan it belongs to (which places it in that plan's
// section) and optionally a quality-of-life domain; plans point at it with
// CarePlan.addresses. Asking a help question never needs approval.
type HelpQuestion struct {
	ID       string       // logical id; empty for a resource still to be created
	PlanKind PlanCategory // the kind of the plan it belongs to
	Domain   Domain       // the quality-of-life domain; optional
	Status   string       // Condition.clinicalStatus: active (open), inactive or resolved
	Question string       // the question in the asker's words (Condition.code.text)
	Subject  string       // Patient/… or Group/… the question is about
	Asker    string       // Condition.asserter: Patient/…, RelatedPerson/…, Practitioner/… or PractitionerRole/…
	Recorded string       // FHIR dateTime it was asked (Condition.recordedDate)
}

func (h HelpQuestion) check(c *checker) {
	c.id("Condition.id", h.ID)
	checkPlanKind(c, "Condition.category", h.PlanKind)
	h.Domain.check(c, "Condition.category")
	c.oneOf("Condition.clinicalStatus", h.Status, helpQuestionStatuses)
	c.required("Condition.code.text", h.Question)
	c.required("Condition.subject", h.Subject)
	c.ref("Condition.subject", h.Subject, "Patient", "Group")
	c.ref("Condition.asserter", h.Asker, "Patient", "RelatedPerson", "Practitioner", "PractitionerRole")
	c.dateTime("Condition.recordedDate", h.Recorded)
}

// ToFHIR returns h as a Condition in FHIR R4 JSON. It returns an error of
// kind fhir.Invalid when h breaks a domain rule (no plan kind, question or
// subject; unknown status or domain; malformed date or references).
func (h HelpQuestion) ToFHIR() ([]byte, error) {
	return produce("help question to FHIR", h.check, condition{
		ResourceType:   "Condition",
		ID:             h.ID,
		ClinicalStatus: codeableConcept{Coding: []Coding{{System: ConditionClinicalSystem, Code: h.Status}}},
		Category:       concepts(HelpQuestionCategory.Coding(), h.PlanKind.Coding(), h.Domain.category()),
		Code:           codeableConcept{Text: h.Question},
		Subject:        ref(h.Subject),
		RecordedDate:   h.Recorded,
		Asserter:       ref(h.Asker),
	})
}

// HelpQuestionFromFHIR reads a help question from a Condition in FHIR R4
// JSON. Elements the domain does not carry are ignored. It returns an error
// of kind fhir.Invalid when b is not a Condition with the help-question
// category and one plan kind, or breaks a rule of HelpQuestion.ToFHIR.
func HelpQuestionFromFHIR(b []byte) (HelpQuestion, error) {
	var in condition
	if err := decode(b, "Condition", &in); err != nil {
		return HelpQuestion{}, wrap("help question from FHIR", err)
	}
	var c checker
	cats := codings(in.Category)
	if !hasCoding(cats, HelpQuestionCategory.Coding()) {
		c.addf("Condition.category", "the Condition is not a help question (no category %s|%s)", ConditionCategorySystem, HelpQuestionCategory)
	}
	kind, agreement := planKindIn(&c, "Condition.category", cats)
	if agreement {
		c.addf("Condition.category", "a help question is not an agreement")
	}
	h := HelpQuestion{
		ID:       in.ID,
		PlanKind: kind,
		Domain:   Domain(codeIn(&c, "Condition.category", DomainSystem, cats)),
		Status:   codeIn(&c, "Condition.clinicalStatus", ConditionClinicalSystem, in.ClinicalStatus.Coding),
		Question: in.Code.Text,
		Subject:  in.Subject.Reference,
		Asker:    in.Asserter.Reference,
		Recorded: in.RecordedDate,
	}
	return checked("help question from FHIR", &c, h, HelpQuestion.check)
}

// category returns d as a category coding, or the zero Coding when d is
// empty (an optional domain).
func (d Domain) category() Coding {
	if d == "" {
		return Coding{}
	}
	return d.Coding()
}

// check adds an issue when d is set but not one of the domains.
func (d Domain) check(c *checker, expr string) {
	if d != "" && !d.Valid() {
		c.addf(expr, "%q is not a quality-of-life domain", d)
	}
}
