package mapping

// observationResource is the JSON of the Observation elements the domain
// uses, in R4 order.
type observationResource struct {
	ResourceType      string            `json:"resourceType"`
	ID                string            `json:"id,omitempty"`
	Status            string            `json:"status"`
	Category          []codeableConcept `json:"category,omitempty"`
	Code              codeableConcept   `json:"code"`
	Subject           reference         `json:"subject,omitzero"`
	Focus             []reference       `json:"focus,omitempty"`
	EffectiveDateTime string            `json:"effectiveDateTime,omitempty"`
	Performer         []reference       `json:"performer,omitempty"`
	ValueString       string            `json:"valueString,omitempty"`
}

// observationStatuses is the R4 observation-status value set.
var observationStatuses = []string{"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}

// observationPerformerTypes are the types Observation.performer allows.
var observationPerformerTypes = []string{"Practitioner", "PractitionerRole", "Organization", "CareTeam", "Patient", "RelatedPerson"}

// Observation is something someone noticed about a child: a school
// observation by the teacher (observatie van school), a parent's or a
// helper's observation, an early signal (signaal) or progress on a goal
// (voortgang doel). It is carried by an Observation whose code text says
// what was observed and whose valueString says what was seen.
//
// The category decides the section: none or a school observation
// (SchoolCategory) are in the observations section, an early signal
// (SignalCategory) in the signals section, and goal progress
// (GoalProgressCategory) in the section of its plan, so it carries the plan
// kind, and it points at the Goal with Observation.focus.
type Observation struct {
	ID        string              // logical id; empty for a resource still to be created
	Status    string              // Observation.status: final once recorded, amended, entered-in-error…
	Category  ObservationCategory // "", SchoolCategory, SignalCategory or GoalProgressCategory
	PlanKind  PlanCategory        // the plan kind of the goal; only, and required, for goal progress
	Domain    Domain              // the quality-of-life domain; optional
	Topic     string              // what was observed (Observation.code.text); required
	Subject   string              // Patient/… of the child (or Group/… of the family); required
	Goal      string              // Goal/… the progress is on (Observation.focus); only, and required, for goal progress
	Effective string              // FHIR dateTime of the observation; optional
	Observers []string            // who observed (Observation.performer)
	Text      string              // what was seen (Observation.valueString)
}

func (o Observation) check(c *checker) {
	c.id("Observation.id", o.ID)
	c.oneOf("Observation.status", o.Status, observationStatuses)
	switch o.Category {
	case "", SignalCategory, SchoolCategory:
		if o.PlanKind != "" {
			c.addf("Observation.category", "only goal progress carries a plan kind")
		}
		if o.Goal != "" {
			c.addf("Observation.focus", "only goal progress points at a goal")
		}
	case GoalProgressCategory:
		checkPlanKind(c, "Observation.category", o.PlanKind)
		c.required("Observation.focus", o.Goal)
		c.ref("Observation.focus", o.Goal, "Goal")
	default:
		c.addf("Observation.category", "%q is not a code of %s", o.Category, ObservationCategorySystem)
	}
	o.Domain.check(c, "Observation.category")
	c.required("Observation.code.text", o.Topic)
	c.required("Observation.subject", o.Subject)
	c.ref("Observation.subject", o.Subject, "Patient", "Group")
	c.dateTime("Observation.effectiveDateTime", o.Effective)
	c.refs("Observation.performer", o.Observers, observationPerformerTypes...)
}

// ToFHIR returns o as an Observation in FHIR R4 JSON. It returns an error of
// kind fhir.Invalid when o breaks a domain rule (no topic or subject,
// unknown status, category or domain, goal progress without plan kind or
// goal, a plan kind or goal on another observation, malformed dates or
// references).
func (o Observation) ToFHIR() ([]byte, error) {
	var cat Coding
	if o.Category != "" {
		cat = o.Category.Coding()
	}
	var kind Coding
	if o.PlanKind != "" {
		kind = o.PlanKind.Coding()
	}
	return produce("observation to FHIR", o.check, observationResource{
		ResourceType:      "Observation",
		ID:                o.ID,
		Status:            o.Status,
		Category:          concepts(cat, kind, o.Domain.category()),
		Code:              codeableConcept{Text: o.Topic},
		Subject:           ref(o.Subject),
		Focus:             refs(o.Goal),
		EffectiveDateTime: o.Effective,
		Performer:         refs(o.Observers...),
		ValueString:       o.Text,
	})
}

// ObservationFromFHIR reads an observation from an Observation in FHIR R4
// JSON. Elements the domain does not carry are ignored. It returns an error
// of kind fhir.Invalid when b is not an Observation, has more than one code
// of the project's observation categories, plan kinds or domains, or more
// than one focus, or breaks a rule of Observation.ToFHIR.
func ObservationFromFHIR(b []byte) (Observation, error) {
	var in observationResource
	if err := decode(b, "Observation", &in); err != nil {
		return Observation{}, wrap("observation from FHIR", err)
	}
	var c checker
	cats := codings(in.Category)
	kind, agreement := planKindIn(&c, "Observation.category", cats)
	if agreement {
		c.addf("Observation.category", "an observation is not an agreement")
	}
	o := Observation{
		ID:        in.ID,
		Status:    in.Status,
		Category:  ObservationCategory(codeIn(&c, "Observation.category", ObservationCategorySystem, cats)),
		PlanKind:  kind,
		Domain:    Domain(codeIn(&c, "Observation.category", DomainSystem, cats)),
		Topic:     in.Code.Text,
		Subject:   in.Subject.Reference,
		Goal:      one(&c, "Observation.focus", refStrings(in.Focus)),
		Effective: in.EffectiveDateTime,
		Observers: refStrings(in.Performer),
		Text:      in.ValueString,
	}
	return checked("observation from FHIR", &c, o, Observation.check)
}
