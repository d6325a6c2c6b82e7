package mapping

// carePlan is the JSON of the CarePlan elements plans and agreements use, in
// R4 element order.
type carePlan struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id,omitempty"`
	Replaces     []reference       `json:"replaces,omitempty"`
	PartOf       []reference       `json:"partOf,omitempty"`
	Status       string            `json:"status"`
	Intent       string            `json:"intent"`
	Category     []codeableConcept `json:"category,omitempty"`
	Title        string            `json:"title,omitempty"`
	Description  string            `json:"description,omitempty"`
	Subject      reference         `json:"subject"`
	Period       Period            `json:"period,omitzero"`
	Addresses    []reference       `json:"addresses,omitempty"`
	Goal         []reference       `json:"goal,omitempty"`
}

// carePlanIntent is the intent of every plan and agreement: a proposal is a
// draft plan, not a CarePlan with intent "proposal", so approval changes only
// the status.
const carePlanIntent = "plan"

// planSubjectTypes returns the resource types the subject of a plan of kind k
// may have: the family Group for the parenting plan and its VOP, the child's
// (or, for a development plan, the parent's) Patient otherwise.
func planSubjectTypes(k PlanCategory) []string {
	switch k {
	case ParentingPlan, VOP:
		return []string{"Group"}
	case ChildPlan, DevelopmentPlan:
		return []string{"Patient"}
	}
	return []string{"Patient", "Group"}
}

// Plan is a plan of the record: the parenting plan (ouderschapsplan), its
// deepening (VOP), a child plan (kindplan) or a parent's personal development
// plan. It is carried by a CarePlan with the plan kind as category and intent
// "plan".
type Plan struct {
	ID          string       // logical id; empty for a resource still to be created
	Kind        PlanCategory // ParentingPlan, VOP, ChildPlan or DevelopmentPlan
	Status      string       // CarePlan.status: PlanDraft while proposed, then PlanActive, PlanRevoked, PlanCompleted
	Title       string
	Description string
	Subject     string   // Group/… for the parenting plan and VOP, Patient/… for the child or development plan
	Period      Period   // when the plan is in force
	PartOf      string   // CarePlan/… of the parenting plan; required for a VOP
	Replaces    string   // CarePlan/… of the version this proposal replaces
	Addresses   []string // Condition/… of the help questions the plan answers
	Goals       []string // Goal/… of the plan's goals
}

// check validates p against the domain rules and R4.
func (p Plan) check(c *checker) {
	c.id("CarePlan.id", p.ID)
	checkPlanKind(c, "CarePlan.category", p.Kind)
	c.oneOf("CarePlan.status", p.Status, carePlanStatuses)
	c.required("CarePlan.subject", p.Subject)
	c.ref("CarePlan.subject", p.Subject, planSubjectTypes(p.Kind)...)
	c.period("CarePlan.period", p.Period)
	c.ref("CarePlan.partOf", p.PartOf, "CarePlan")
	if p.Kind == VOP && p.PartOf == "" {
		c.addf("CarePlan.partOf", "a VOP is part of the parenting plan")
	}
	c.ref("CarePlan.replaces", p.Replaces, "CarePlan")
	c.refs("CarePlan.addresses", p.Addresses, "Condition")
	c.refs("CarePlan.goal", p.Goals, "Goal")
}

// ToFHIR returns p as a CarePlan in FHIR R4 JSON. It returns an error of kind
// fhir.Invalid, with one issue per problem, when p breaks a domain rule
// (unknown kind or status, missing or wrong-typed subject, a VOP without the
// plan it deepens, malformed dates or references).
func (p Plan) ToFHIR() ([]byte, error) {
	return produce("plan to FHIR", p.check, carePlan{
		ResourceType: "CarePlan",
		ID:           p.ID,
		Replaces:     refs(p.Replaces),
		PartOf:       refs(p.PartOf),
		Status:       p.Status,
		Intent:       carePlanIntent,
		Category:     concepts(p.Kind.Coding()),
		Title:        p.Title,
		Description:  p.Description,
		Subject:      ref(p.Subject),
		Period:       p.Period,
		Addresses:    refs(p.Addresses...),
		Goal:         refs(p.Goals...),
	})
}

// PlanFromFHIR reads a plan from a CarePlan in FHIR R4 JSON. Elements the
// domain does not carry are ignored. It returns an error of kind
// fhir.Invalid when b is not a CarePlan, is an agreement, has no single plan
// kind, has an intent other than "plan", or breaks a rule of Plan.ToFHIR.
func PlanFromFHIR(b []byte) (Plan, error) {
	var cp carePlan
	if err := decode(b, "CarePlan", &cp); err != nil {
		return Plan{}, wrap("plan from FHIR", err)
	}
	var c checker
	kind, agreement := planKindIn(&c, "CarePlan.category", codings(cp.Category))
	if agreement {
		c.addf("CarePlan.category", "the CarePlan is an agreement, not a plan")
	}
	checkIntent(&c, cp.Intent)
	p := Plan{
		ID:          cp.ID,
		Kind:        kind,
		Status:      cp.Status,
		Title:       cp.Title,
		Description: cp.Description,
		Subject:     cp.Subject.Reference,
		Period:      cp.Period,
		PartOf:      one(&c, "CarePlan.partOf", refStrings(cp.PartOf)),
		Replaces:    one(&c, "CarePlan.replaces", refStrings(cp.Replaces)),
		Addresses:   refStrings(cp.Addresses),
		Goals:       refStrings(cp.Goal),
	}
	return checked("plan from FHIR", &c, p, Plan.check)
}

func checkIntent(c *checker, intent string) {
	if intent != carePlanIntent {
		c.addf("CarePlan.intent", "intent is %q; plans and agreements have intent %q", intent, carePlanIntent)
	}
}

// Agreement is an agreement (afspraak) of a plan. It is its own CarePlan,
// partOf its plan, so that it has its own identity, versions, approval,
// permissions, notes and evaluations. It carries two categories: agreement
// and the kind of its plan; the plan kind puts it in its plan's section
// (see SectionOf) and must equal the kind of the plan it is part of, which
// the write path checks.
type Agreement struct {
	ID          string       // logical id; empty for a resource still to be created
	Plan        string       // CarePlan/… of the plan it belongs to (CarePlan.partOf)
	PlanKind    PlanCategory // the kind of that plan
	Status      string       // CarePlan.status: PlanDraft while proposed, then PlanActive, PlanRevoked, PlanCompleted
	Title       string
	Description string
	Subject     string // the plan's subject: Group/… or Patient/…
	Period      Period // when the agreement is in force
	Replaces    string // CarePlan/… of the earlier version of this agreement
}

func (a Agreement) check(c *checker) {
	c.id("CarePlan.id", a.ID)
	checkPlanKind(c, "CarePlan.category", a.PlanKind)
	c.oneOf("CarePlan.status", a.Status, carePlanStatuses)
	c.required("CarePlan.title", a.Title)
	c.required("CarePlan.subject", a.Subject)
	c.ref("CarePlan.subject", a.Subject, planSubjectTypes(a.PlanKind)...)
	c.required("CarePlan.partOf", a.Plan)
	c.ref("CarePlan.partOf", a.Plan, "CarePlan")
	c.period("CarePlan.period", a.Period)
	c.ref("CarePlan.replaces", a.Replaces, "CarePlan")
}

// ToFHIR returns a as a CarePlan in FHIR R4 JSON. It returns an error of kind
// fhir.Invalid when a breaks a domain rule (no plan, plan kind, title or
// subject; unknown status; malformed dates or references).
func (a Agreement) ToFHIR() ([]byte, error) {
	return produce("agreement to FHIR", a.check, carePlan{
		ResourceType: "CarePlan",
		ID:           a.ID,
		Replaces:     refs(a.Replaces),
		PartOf:       refs(a.Plan),
		Status:       a.Status,
		Intent:       carePlanIntent,
		Category:     concepts(AgreementCategory.Coding(), a.PlanKind.Coding()),
		Title:        a.Title,
		Description:  a.Description,
		Subject:      ref(a.Subject),
		Period:       a.Period,
	})
}

// AgreementFromFHIR reads an agreement from a CarePlan in FHIR R4 JSON.
// Elements the domain does not carry are ignored. It returns an error of
// kind fhir.Invalid when b is not a CarePlan with the agreement category and
// one plan kind, or breaks a rule of Agreement.ToFHIR.
func AgreementFromFHIR(b []byte) (Agreement, error) {
	var cp carePlan
	if err := decode(b, "CarePlan", &cp); err != nil {
		return Agreement{}, wrap("agreement from FHIR", err)
	}
	var c checker
	kind, agreement := planKindIn(&c, "CarePlan.category", codings(cp.Category))
	if !agreement {
		c.addf("CarePlan.category", "the CarePlan is not an agreement (no category %s|%s)", PlanCategorySystem, AgreementCategory)
	}
	checkIntent(&c, cp.Intent)
	a := Agreement{
		ID:          cp.ID,
		Plan:        one(&c, "CarePlan.partOf", refStrings(cp.PartOf)),
		PlanKind:    kind,
		Status:      cp.Status,
		Title:       cp.Title,
		Description: cp.Description,
		Subject:     cp.Subject.Reference,
		Period:      cp.Period,
		Replaces:    one(&c, "CarePlan.replaces", refStrings(cp.Replaces)),
	}
	return checked("agreement from FHIR", &c, a, Agreement.check)
}
