package ig

import (
	"fmt"
	"strings"

	"github.com/digitaleouder/ouder/conformance/ig/internal/sd"
	"github.com/digitaleouder/ouder/mapping"
)

// source is the source of one StructureDefinition: a constraint on an R4
// type given by its differential. The snapshot is generated from the base
// definition (see snapshot).
type source struct {
	url         string // mapping.Profile…
	name        string // computable name
	title       string // English title
	dutch       string // the Dutch term of the concept
	typ         string // the R4 type constrained
	description string
	// context is where an extension may be used (extensions only).
	context []string
	diff    []sd.Element
}

// id returns the StructureDefinition id: the last part of the url.
func (p source) id() string { return p.url[strings.LastIndexByte(p.url, '/')+1:] }

const corePrefix = "http://hl7.org/fhir/StructureDefinition/"

// Short names of the code systems in invariants.
var (
	planSystem   = mapping.PlanCategorySystem
	domainSystem = mapping.DomainSystem
)

func intp(n int) *int { return &n }

// card is a differential element with a cardinality.
func card(id string, min int, max string) sd.Element {
	return sd.Element{ID: id, Min: intp(min), Max: max}
}

// required makes an element mandatory (min 1, max kept).
func required(id string) sd.Element { return sd.Element{ID: id, Min: intp(1)} }

// one makes an element mandatory and single.
func one(id string) sd.Element { return card(id, 1, "1") }

// ref restricts an element to references to the given types (R4 type names
// or the guide's profile URLs).
func ref(id string, min int, max string, targets ...string) sd.Element {
	e := card(id, min, max)
	t := sd.Type{Code: "Reference"}
	for _, x := range targets {
		if !strings.HasPrefix(x, "http") {
			x = corePrefix + x
		}
		t.TargetProfile = append(t.TargetProfile, x)
	}
	e.Type = []sd.Type{t}
	return e
}

// typed restricts an element to some of the types its base allows.
func typed(id string, min int, max string, codes ...string) sd.Element {
	e := card(id, min, max)
	for _, c := range codes {
		e.Type = append(e.Type, sd.Type{Code: c})
	}
	return e
}

// fixedCode fixes the code of an element.
func fixedCode(id, code string) sd.Element { return sd.Element{ID: id, FixedCode: code} }

// withMin sets the min cardinality of e.
func withMin(e sd.Element, min int) sd.Element { e.Min = intp(min); return e }

// withFixedCode fixes the code of e.
func withFixedCode(e sd.Element, code string) sd.Element { e.FixedCode = code; return e }

// pattern requires the CodeableConcept of an element to hold the coding c.
func pattern(id string, min int, max string, c mapping.Coding) sd.Element {
	e := card(id, min, max)
	e.PatternCC = &sd.CodeableConcept{Coding: []sd.Coding{{System: c.System, Code: c.Code}}}
	return e
}

// bound binds e to one of the guide's value sets, required.
func bound(e sd.Element, valueSet, description string) sd.Element {
	e.Binding = &sd.Binding{Strength: "required", Description: description, ValueSet: valueSetURL(valueSet)}
	return e
}

// slicedByPattern opens slicing on a repeating CodeableConcept element,
// discriminated by the pattern of each slice; min is the element's min.
func slicedByPattern(id string, min int, description string) sd.Element {
	return sd.Element{ID: id, Min: intp(min), Slicing: &sd.Slicing{
		Discriminator: []sd.Discriminator{{Type: "pattern", Path: "$this"}},
		Description:   description,
		Rules:         "open",
	}}
}

// slicedByURL slices extensions by their url, as FHIR slices extensions.
func slicedByURL(id string) sd.Element {
	return sd.Element{ID: id, Slicing: &sd.Slicing{
		Discriminator: []sd.Discriminator{{Type: "value", Path: "url"}},
		Description:   "Extensions are told by their url",
		Rules:         "open",
	}}
}

// slice is a slice of a sliced CodeableConcept element that holds the
// coding c.
func slice(id, name string, min int, max string, c mapping.Coding, short string) sd.Element {
	e := pattern(id+":"+name, min, max, c)
	e.Short = short
	return e
}

// root describes the constrained type and carries the invariants.
func root(typ, short string, cs ...sd.Constraint) sd.Element {
	return sd.Element{ID: typ, Short: short, Constraint: cs}
}

// inv is an invariant of severity error; the profile's URL becomes its
// source when the StructureDefinition is built.
func inv(key, human, expr string) sd.Constraint {
	return sd.Constraint{Key: key, Severity: "error", Human: human, Expression: expr}
}

// warning lowers an invariant to a warning: it is reported, the write is
// not refused.
func warning(c sd.Constraint) sd.Constraint { c.Severity = "warning"; return c }

func short(e sd.Element, s string) sd.Element { e.Short = s; return e }

// The invariants several profiles share.
var (
	onePlanKind = inv("do-kind-1",
		"Exactly one plan kind (a code of the plan-category system other than agreement) places the resource in its plan's section",
		fmt.Sprintf("category.coding.where(system = '%s').count() = 1 and category.coding.where(system = '%s' and code = 'agreement').empty()", planSystem, planSystem))
	atMostOneDomain = inv("do-dom-1",
		"At most one quality-of-life domain",
		fmt.Sprintf("category.coding.where(system = '%s').count() <= 1", domainSystem))
	oneCommunicationCategory = inv("do-com-1",
		"Exactly one communication category: a note, a diary entry or a message",
		fmt.Sprintf("category.coding.where(system = '%s').count() = 1", mapping.CommunicationCategorySystem))
	oneObservationCategory = inv("do-obs-1",
		"Exactly one observation category of the guide: signal, goal progress or school observation",
		fmt.Sprintf("category.coding.where(system = '%s').count() = 1", mapping.ObservationCategorySystem))
	valueOrNote = inv("do-obs-2",
		"An observation records what was observed: a value or a note",
		"value.exists() or note.exists()")
)

// planProfile is the profile of one plan kind.
func planProfile(url, name, title, dutch string, kind mapping.PlanCategory, subject []string, description string, extra ...sd.Element) source {
	diff := []sd.Element{
		root("CarePlan", title, inv("do-plan-1",
			"A plan carries exactly one code of the plan-category system: its plan kind",
			fmt.Sprintf("category.coding.where(system = '%s').count() = 1", planSystem))),
	}
	diff = append(diff, extra...)
	diff = append(diff,
		fixedCode("CarePlan.intent", "plan"),
		slicedByPattern("CarePlan.category", 1, "The plan kind, a code of the plan-category system"),
		slice("CarePlan.category", "planKind", 1, "1", kind.Coding(), "The plan kind: "+string(kind)),
		ref("CarePlan.subject", 1, "1", subject...),
		ref("CarePlan.addresses", 0, "*", mapping.ProfileHelpQuestion),
		ref("CarePlan.goal", 0, "*", mapping.ProfileGoal),
	)
	return source{url: url, name: name, title: title, dutch: dutch, typ: "CarePlan", description: description, diff: diff}
}

// profiles returns the sources of every profile and extension of the guide,
// in the order of docs/mapping.md.
func profiles() []source {
	helpers := []string{"Practitioner", "PractitionerRole", "RelatedPerson", "Patient"}
	people := []string{"Patient", "RelatedPerson", "Practitioner", "PractitionerRole"}
	return []source{
		{
			url: mapping.ProfileChild, name: "DOChild", title: "Child", dutch: "kind", typ: "Patient",
			description: "A child of a Digitale Ouder environment. The birth date is required: the child's age decides the rights of the child and the parents (see the age rules).",
			diff: []sd.Element{
				root("Patient", "A child of the family"),
				short(one("Patient.birthDate"), "Required: age drives rights"),
			},
		},
		{
			url: mapping.ParentalAuthorityExtension, name: "ParentalAuthority", title: "Parental authority", dutch: "ouderlijk gezag", typ: "Extension",
			description: "Whether a parent (RelatedPerson) has parental authority over the child (Patient), where that was established and when the dossierhouder last verified it.",
			context:     []string{"RelatedPerson"},
			diff: []sd.Element{
				root("Extension", "Parental authority (ouderlijk gezag)"),
				withMin(slicedByURL("Extension.extension"), 1),
				short(one("Extension.extension:"+mapping.ParentalAuthorityHas), "Whether the parent has parental authority"),
				card("Extension.extension:"+mapping.ParentalAuthorityHas+".extension", 0, "0"),
				{ID: "Extension.extension:" + mapping.ParentalAuthorityHas + ".url", FixedURI: mapping.ParentalAuthorityHas},
				typed("Extension.extension:"+mapping.ParentalAuthorityHas+".value[x]", 1, "1", "boolean"),
				short(card("Extension.extension:"+mapping.ParentalAuthoritySource, 0, "1"), "Where it was established (Centraal Gezagsregister, a court order)"),
				card("Extension.extension:"+mapping.ParentalAuthoritySource+".extension", 0, "0"),
				{ID: "Extension.extension:" + mapping.ParentalAuthoritySource + ".url", FixedURI: mapping.ParentalAuthoritySource},
				typed("Extension.extension:"+mapping.ParentalAuthoritySource+".value[x]", 1, "1", "Coding", "string"),
				short(card("Extension.extension:"+mapping.ParentalAuthorityVerified, 0, "1"), "When the dossierhouder last verified it"),
				card("Extension.extension:"+mapping.ParentalAuthorityVerified+".extension", 0, "0"),
				{ID: "Extension.extension:" + mapping.ParentalAuthorityVerified + ".url", FixedURI: mapping.ParentalAuthorityVerified},
				typed("Extension.extension:"+mapping.ParentalAuthorityVerified+".value[x]", 1, "1", "date"),
				{ID: "Extension.url", FixedURI: mapping.ParentalAuthorityExtension},
				card("Extension.value[x]", 0, "0"),
			},
		},
		{
			url: mapping.ReplacesExtension, name: "Replaces", title: "Replaces", dutch: "vervangt", typ: "Extension",
			description: "On a proposed Consent: the Consent it replaces. When the dossierhouder approves the proposal, the replaced Consent becomes inactive (a CarePlan says the same with CarePlan.replaces).",
			context:     []string{"Consent"},
			diff: []sd.Element{
				root("Extension", "The Consent this proposal replaces"),
				card("Extension.extension", 0, "0"),
				{ID: "Extension.url", FixedURI: mapping.ReplacesExtension},
				ref("Extension.value[x]", 1, "1", mapping.ProfileGrant),
			},
		},
		{
			url: mapping.ProfileParent, name: "DOParent", title: "Parent or carer", dutch: "ouder / verzorger", typ: "RelatedPerson",
			description: "A parent or carer of one child: one RelatedPerson per child, with the parental-authority extension. The parent's login identity is a Person linking their RelatedPersons.",
			diff: []sd.Element{
				root("RelatedPerson", "A parent or carer of the child"),
				slicedByURL("RelatedPerson.extension"),
				{ID: "RelatedPerson.extension:parentalAuthority", Min: intp(1), Max: "1", Short: "Parental authority over the child",
					Type: []sd.Type{{Code: "Extension", Profile: []string{mapping.ParentalAuthorityExtension}}}},
				ref("RelatedPerson.patient", 1, "1", mapping.ProfileChild),
				required("RelatedPerson.name"),
			},
		},
		{
			url: mapping.ProfileLoginPerson, name: "DOLoginPerson", title: "Login identity", dutch: "inlogidentiteit", typ: "Person",
			description: "The login identity of a person (SMART fhirUser): it links the person's RelatedPersons (one per child), their Patient (a child or a parent with a development plan) or their Practitioner.",
			diff: []sd.Element{
				root("Person", "Who logs in"),
				required("Person.name"),
				ref("Person.link.target", 1, "1", "Patient", "RelatedPerson", "Practitioner"),
			},
		},
		{
			url: mapping.ProfileFamily, name: "DOFamily", title: "Family", dutch: "gezin", typ: "Group",
			description: "The family of an environment: an actual group of persons whose members are the children; the parents relate to the children through RelatedPerson. The parenting plan's subject.",
			diff: []sd.Element{
				root("Group", "The family"),
				fixedCode("Group.type", "person"),
				{ID: "Group.actual", FixedBoolean: boolp(true)},
				ref("Group.member.entity", 1, "1", mapping.ProfileChild),
			},
		},
		planProfile(mapping.ProfileParentingPlan, "DOParentingPlan", "Parenting plan", "ouderschapsplan", mapping.ParentingPlan,
			[]string{mapping.ProfileFamily},
			"The parenting plan (ouderschapsplan) of the family: a CarePlan with plan kind parenting-plan whose subject is the family Group. Its agreements are CarePlans partOf it."),
		planProfile(mapping.ProfileVOP, "DOVOP", "Deepened parenting plan (VOP)", "verdieping ouderschapsplan", mapping.VOP,
			[]string{mapping.ProfileFamily},
			"The deepening of the parenting plan (VOP): a CarePlan with plan kind vop, partOf the parenting plan, about the family Group.",
			ref("CarePlan.partOf", 1, "1", mapping.ProfileParentingPlan)),
		planProfile(mapping.ProfileChildPlan, "DOChildPlan", "Child plan", "kindplan", mapping.ChildPlan,
			[]string{mapping.ProfileChild},
			"A child plan (kindplan): a CarePlan with plan kind child-plan about one child."),
		planProfile(mapping.ProfileDevelopmentPlan, "DODevelopmentPlan", "Personal development plan", "persoonlijk ontwikkelingsplan", mapping.DevelopmentPlan,
			[]string{"Patient"},
			"A parent's personal development plan: a CarePlan with plan kind development-plan whose subject is the parent as a Patient."),
		{
			url: mapping.ProfileAgreement, name: "DOAgreement", title: "Agreement", dutch: "afspraak", typ: "CarePlan",
			description: "An agreement (afspraak) of a plan: its own CarePlan, partOf the plan, with the categories agreement and the plan kind of its plan, so that it has its own identity, versions, approval, permissions, notes and evaluations.",
			diff: []sd.Element{
				root("CarePlan", "An agreement of a plan", inv("do-agr-1",
					"An agreement carries exactly one plan kind next to the agreement category",
					fmt.Sprintf("category.coding.where(system = '%s' and code != 'agreement').count() = 1", planSystem))),
				ref("CarePlan.partOf", 1, "1", mapping.ProfileParentingPlan, mapping.ProfileVOP, mapping.ProfileChildPlan, mapping.ProfileDevelopmentPlan),
				fixedCode("CarePlan.intent", "plan"),
				slicedByPattern("CarePlan.category", 2, "The agreement category and the plan kind of the agreement's plan"),
				slice("CarePlan.category", "agreement", 1, "1", mapping.AgreementCategory.Coding(), "The agreement category"),
				one("CarePlan.title"),
				ref("CarePlan.subject", 1, "1", mapping.ProfileFamily, mapping.ProfileChild, "Patient"),
			},
		},
		{
			url: mapping.ProfileNote, name: "DONote", title: "Note on an agreement", dutch: "notitie (notitieblad per afspraak)", typ: "Communication",
			description: "A note on an agreement's note sheet: a Communication with category note and the plan kind of the agreement's plan, about the agreement. Adding a note never needs approval.",
			diff: []sd.Element{
				root("Communication", "A note on an agreement", onePlanKind, oneCommunicationCategory),
				slicedByPattern("Communication.category", 2, "The note category and the plan kind"),
				slice("Communication.category", "note", 1, "1", mapping.NoteCategory.Coding(), "The note category"),
				ref("Communication.about", 1, "1", mapping.ProfileAgreement),
				one("Communication.sender"),
				one("Communication.payload"),
				typed("Communication.payload.content[x]", 1, "1", "string"),
			},
		},
		{
			url: mapping.ProfileDiaryEntry, name: "DODiaryEntry", title: "Diary entry", dutch: "dagboek", typ: "Communication",
			description: "An entry in the diary of a child or the family: a Communication with category diary.",
			diff: []sd.Element{
				root("Communication", "A diary entry", oneCommunicationCategory),
				slicedByPattern("Communication.category", 1, "The diary category"),
				slice("Communication.category", "diary", 1, "1", mapping.DiaryCategory.Coding(), "The diary category"),
				ref("Communication.subject", 1, "1", mapping.ProfileChild, mapping.ProfileFamily),
				one("Communication.sender"),
				one("Communication.payload"),
				typed("Communication.payload.content[x]", 1, "1", "string"),
			},
		},
		{
			url: mapping.ProfileMessage, name: "DOMessage", title: "Message", dutch: "bericht (communicatiekanaal)", typ: "Communication",
			description: "A message in the environment's channel: a Communication with category message, a sender and at least one recipient. A parent without authority asks the dossierhouder for information with a message.",
			diff: []sd.Element{
				root("Communication", "A message", oneCommunicationCategory),
				slicedByPattern("Communication.category", 1, "The message category"),
				slice("Communication.category", "message", 1, "1", mapping.MessageCategory.Coding(), "The message category"),
				required("Communication.recipient"),
				one("Communication.sender"),
				one("Communication.payload"),
				typed("Communication.payload.content[x]", 1, "1", "string"),
			},
		},
		{
			url: mapping.ProfileGoal, name: "DOGoal", title: "Goal", dutch: "doel", typ: "Goal",
			description: "A goal of a plan: its categories are the plan kind of the plan and, optionally, one of Schalock's quality-of-life domains. Progress is recorded as goal-progress Observations that point at the goal.",
			diff: []sd.Element{
				root("Goal", "A goal of a plan", onePlanKind, atMostOneDomain),
				required("Goal.category"),
				one("Goal.description.text"),
				ref("Goal.subject", 1, "1", mapping.ProfileChild, mapping.ProfileFamily, "Patient"),
			},
		},
		{
			url: mapping.ProfileGoalProgress, name: "DOGoalProgress", title: "Goal progress", dutch: "voortgang doel", typ: "Observation",
			description: "Progress on a goal: an Observation with categories goal-progress and the plan kind, whose focus is the Goal, so reporting progress never changes the goal.",
			diff: []sd.Element{
				root("Observation", "Progress on a goal", onePlanKind, oneObservationCategory, valueOrNote),
				slicedByPattern("Observation.category", 2, "The goal-progress category and the plan kind"),
				slice("Observation.category", "goalProgress", 1, "1", mapping.GoalProgressCategory.Coding(), "The goal-progress category"),
				one("Observation.subject"),
				ref("Observation.focus", 1, "*", mapping.ProfileGoal),
				required("Observation.effective[x]"),
			},
		},
		{
			url: mapping.ProfileHelpQuestion, name: "DOHelpQuestion", title: "Help question", dutch: "hulpvraag", typ: "Condition",
			description: "A help question: what a parent, child or helper asks help with, in their own words. A Condition with categories help-question, the plan kind and optionally a quality-of-life domain; plans point at it with CarePlan.addresses.",
			diff: []sd.Element{
				root("Condition", "A help question", onePlanKind, atMostOneDomain),
				bound(one("Condition.clinicalStatus"), "help-question-status", "Open (active), inactive or resolved"),
				slicedByPattern("Condition.category", 2, "The help-question category, the plan kind and optionally a domain"),
				slice("Condition.category", "helpQuestion", 1, "1", mapping.HelpQuestionCategory.Coding(), "The help-question category"),
				one("Condition.code"),
				short(one("Condition.code.text"), "The question in the asker's words"),
				ref("Condition.subject", 1, "1", mapping.ProfileChild, mapping.ProfileFamily, "Patient"),
				ref("Condition.asserter", 0, "1", people...),
			},
		},
		{
			url: mapping.ProfileAppointment, name: "DOAppointment", title: "Agenda entry", dutch: "agenda", typ: "Appointment",
			description: "An entry in the agenda: a handover, a school meeting, a session with a helper. Its participants are the child, the parents and the helpers concerned.",
			diff: []sd.Element{
				root("Appointment", "An agenda entry",
					inv("do-app-1", "Start and end are given together or not at all (R4 app-2)", "start.exists() = end.exists()"),
					inv("do-app-2", "Only a proposed, cancelled or waitlist appointment may have no start and end (R4 app-3)",
						"(start.exists() and end.exists()) or (status in ('proposed' | 'cancelled' | 'waitlist'))"),
					inv("do-app-3", "The appointment does not end before it starts", "(start.exists() and end.exists()) implies end >= start")),
				ref("Appointment.participant.actor", 1, "1", append(people, "Device", "HealthcareService", "Location")...),
			},
		},
		{
			url: mapping.ProfileDocument, name: "DODocument", title: "Document", dutch: "documentenmap", typ: "DocumentReference",
			description: "A document in the document folder (a scan, a signed form, a report): the DocumentReference holds the metadata and points at the Binary with the bytes, whose securityContext is this DocumentReference.",
			diff: []sd.Element{
				root("DocumentReference", "A document of the folder",
					inv("do-doc-1", "The attachment points at a Binary of this server (Binary/id)", "content.attachment.url.where(startsWith('Binary/').not()).empty()")),
				ref("DocumentReference.subject", 0, "1", mapping.ProfileChild, mapping.ProfileFamily),
				one("DocumentReference.content"),
				one("DocumentReference.content.attachment.contentType"),
				one("DocumentReference.content.attachment.url"),
			},
		},
		{
			url: mapping.ProfileDocumentBinary, name: "DODocumentBinary", title: "Document content", dutch: "documentinhoud", typ: "Binary",
			description: "The bytes of a document of the folder; access to them follows access to the DocumentReference named in securityContext.",
			diff: []sd.Element{
				root("Binary", "The bytes of a document"),
				ref("Binary.securityContext", 1, "1", mapping.ProfileDocument),
			},
		},
		{
			url: mapping.ProfileEvaluationQuestionnaire, name: "DOEvaluationQuestionnaire", title: "Evaluation form", dutch: "evaluatieformulier", typ: "Questionnaire",
			description: "An evaluation form of the guide (per agreement, yearly), at a canonical URL under " + mapping.QuestionnaireBase + ".",
			diff: []sd.Element{
				root("Questionnaire", "An evaluation form",
					inv("do-eq-1", "An evaluation form has its canonical URL under "+mapping.QuestionnaireBase,
						fmt.Sprintf("url.startsWith('%s')", mapping.QuestionnaireBase))),
				one("Questionnaire.url"),
				one("Questionnaire.title"),
				required("Questionnaire.item"),
			},
		},
		{
			url: mapping.ProfileEvaluation, name: "DOEvaluation", title: "Evaluation", dutch: "evaluatie", typ: "QuestionnaireResponse",
			description: "An evaluation of an agreement or a plan (the per-agreement one or the yearly one): a QuestionnaireResponse basedOn the agreement or plan, answering an evaluation form.",
			diff: []sd.Element{
				root("QuestionnaireResponse", "An evaluation"),
				ref("QuestionnaireResponse.basedOn", 1, "1", mapping.ProfileAgreement, mapping.ProfileParentingPlan, mapping.ProfileVOP, mapping.ProfileChildPlan, mapping.ProfileDevelopmentPlan),
				ref("QuestionnaireResponse.subject", 0, "1", mapping.ProfileChild, mapping.ProfileFamily),
			},
		},
		{
			url: mapping.ProfileYearlyEvaluation, name: "DOYearlyEvaluation", title: "Yearly evaluation", dutch: "jaarlijkse evaluatie", typ: "Task",
			description: "The yearly evaluation, scheduled by the dossierhouder: a Task with code yearly-evaluation for the child or family, focused on the plan to evaluate.",
			diff: []sd.Element{
				root("Task", "The yearly evaluation"),
				pattern("Task.code", 1, "1", mapping.TaskYearlyEvaluation.Coding()),
				fixedCode("Task.intent", "order"),
				ref("Task.focus", 1, "1", mapping.ProfileParentingPlan, mapping.ProfileVOP, mapping.ProfileChildPlan, mapping.ProfileDevelopmentPlan),
				ref("Task.for", 1, "1", mapping.ProfileChild, mapping.ProfileFamily),
				one("Task.executionPeriod"),
				ref("Task.owner", 0, "1", mapping.ProfileDossierhouder, mapping.ProfileDossierhouderRole),
			},
		},
		{
			url: mapping.ProfileSchoolObservation, name: "DOSchoolObservation", title: "School observation", dutch: "observatie van school", typ: "Observation",
			description: "An observation by the child's school: an Observation with category school about the child, performed by the teacher or the school.",
			diff: []sd.Element{
				root("Observation", "An observation by the school", oneObservationCategory, valueOrNote),
				slicedByPattern("Observation.category", 1, "The school category"),
				slice("Observation.category", "school", 1, "1", mapping.SchoolCategory.Coding(), "The school category"),
				ref("Observation.subject", 1, "1", mapping.ProfileChild),
				required("Observation.effective[x]"),
				ref("Observation.performer", 1, "*", "Practitioner", "PractitionerRole", "Organization"),
			},
		},
		{
			url: mapping.ProfileGrant, name: "DOGrant", title: "Grant (permission)", dutch: "toestemming / machtiging", typ: "Consent",
			description: "A permission: it grants one actor some interactions on sections of a child's record, and optionally only on some items, for a period. Nothing is shared unless a Consent permits it (policy rule OPTIN). A grant is proposed and takes effect when the dossierhouder approves it.",
			diff: []sd.Element{
				root("Consent", "A permission on a child's record",
					inv("do-grant-1", "A grant names at least one section or item", "provision.code.exists() or provision.data.exists()"),
					inv("do-grant-2", "Nested provisions are exceptions that deny, one level deep", "provision.provision.where(type != 'deny' or provision.exists()).empty()")),
				pattern("Consent.scope", 1, "1", mapping.Coding{System: mapping.ConsentScopeSystem, Code: mapping.ConsentScopePrivacy}),
				slicedByPattern("Consent.category", 1, "The LOINC patient-consent category"),
				slice("Consent.category", "patientConsent", 1, "1", mapping.Coding{System: mapping.LOINCSystem, Code: mapping.LOINCPatientConsent}, "Patient consent"),
				ref("Consent.patient", 1, "1", mapping.ProfileChild),
				ref("Consent.performer", 0, "*", mapping.ProfileChild, mapping.ProfileParent, "Patient", "RelatedPerson", "Practitioner", "PractitionerRole"),
				ref("Consent.source[x]", 0, "1", mapping.ProfileDocument),
				pattern("Consent.policyRule", 1, "1", mapping.Coding{System: mapping.ActCodeSystem, Code: mapping.ActCodeOptIn}),
				one("Consent.provision"),
				withFixedCode(one("Consent.provision.type"), "permit"),
				one("Consent.provision.actor"),
				pattern("Consent.provision.actor.role", 1, "1", mapping.Coding{System: mapping.ParticipationTypeSystem, Code: mapping.ParticipationRecipient}),
				bound(required("Consent.provision.action"), "grantable-interaction", "What the grantee may do; never approve"),
				bound(sd.Element{ID: "Consent.provision.code"}, "record-section", "The sections granted"),
				fixedCode("Consent.provision.data.meaning", "dependents"),
			},
		},
		{
			url: mapping.ProfileCareTeam, name: "DOCareTeam", title: "Team", dutch: "team, uitgenodigde ondersteuners", typ: "CareTeam",
			description: "The team around a child: everyone involved, each with one team role and the period they take part. The dossierhouder is a member of every team.",
			diff: []sd.Element{
				root("CareTeam", "The team around a child",
					warning(inv("do-team-1", "The dossierhouder is a member of every team",
						fmt.Sprintf("participant.where(role.coding.where(system = '%s' and code = '%s').exists()).exists()", mapping.RoleSystem, mapping.Dossierhouder)))),
				ref("CareTeam.subject", 1, "1", mapping.ProfileChild),
				bound(one("CareTeam.participant.role"), "team-role", "The member's role in the team"),
				one("CareTeam.participant.member"),
			},
		},
		{
			url: mapping.ProfileDossierhouder, name: "DODossierhouder", title: "Dossierhouder", dutch: "dossierhouder", typ: "Practitioner",
			description: "The licensed file holder (dossierhouder): a registered professional who approves changes to plans, agreements and permissions, schedules the yearly evaluation and records the cost split.",
			diff: []sd.Element{
				root("Practitioner", "The licensed file holder"),
				short(required("Practitioner.identifier"), "The registration that licenses them (for example SKJ or BIG)"),
				required("Practitioner.name"),
			},
		},
		{
			url: mapping.ProfileDossierhouderRole, name: "DODossierhouderRole", title: "Dossierhouder role", dutch: "rol dossierhouder", typ: "PractitionerRole",
			description: "The dossierhouder role of a practitioner, optionally on behalf of an organisation.",
			diff: []sd.Element{
				root("PractitionerRole", "The dossierhouder role"),
				ref("PractitionerRole.practitioner", 1, "1", mapping.ProfileDossierhouder),
				slicedByPattern("PractitionerRole.code", 1, "The dossierhouder team role"),
				slice("PractitionerRole.code", "dossierhouder", 1, "1", mapping.Dossierhouder.Coding(), "The dossierhouder role"),
			},
		},
		{
			url: mapping.ProfileChangeRequest, name: "DOChangeRequest", title: "Change request", dutch: "wijzigingsverzoek", typ: "Task",
			description: "A change request: the dossierhouder's task to approve or reject a proposal (a draft plan or agreement, a proposed goal or grant), with the decision in businessStatus once completed.",
			diff: []sd.Element{
				root("Task", "A change request",
					inv("do-cr-1", "A completed change request records the decision", "status = 'completed' implies businessStatus.exists()"),
					inv("do-cr-2", "A decision is recorded only on a completed change request", "businessStatus.exists() implies status = 'completed'")),
				bound(sd.Element{ID: "Task.businessStatus"}, "change-decision", "The dossierhouder's decision"),
				pattern("Task.code", 1, "1", mapping.TaskApproveChange.Coding()),
				fixedCode("Task.intent", "order"),
				ref("Task.focus", 1, "1", "CarePlan", "Goal", "Consent"),
				ref("Task.for", 0, "1", mapping.ProfileChild, mapping.ProfileFamily),
				ref("Task.requester", 0, "1", append(people, "Organization", "Device")...),
				ref("Task.owner", 0, "1", mapping.ProfileDossierhouder, mapping.ProfileDossierhouderRole),
			},
		},
		{
			url: mapping.ProfileInvitation, name: "DOInvitation", title: "Invitation", dutch: "uitnodiging", typ: "Task",
			description: "An invitation of a helper into a child's team by e-mail, made by a parent with authority or the dossierhouder ($invite): focus the child's team, owner the invitee's Practitioner, the expiry in restriction.period.end, the e-mail address, role and proposed Consent as inputs, and the hash of the acceptance token as identifier (never the token). Its businessStatus says how far it got; the server adds the invitee to the team when they accept.",
			diff: []sd.Element{
				root("Task", "An invitation of a helper"),
				one("Task.identifier"),
				bound(one("Task.businessStatus"), "invitation-status", "How far the invitation got"),
				pattern("Task.code", 1, "1", mapping.TaskInvitation.Coding()),
				fixedCode("Task.intent", "proposal"),
				ref("Task.focus", 1, "1", mapping.ProfileCareTeam),
				ref("Task.for", 1, "1", mapping.ProfileChild),
				ref("Task.requester", 1, "1", people...),
				ref("Task.owner", 1, "1", "Practitioner"),
				short(one("Task.restriction.period.end"), "When the invitation expires"),
				bound(required("Task.input.type"), "invitation-input", "E-mail address, role, proposed grant"),
			},
		},
		{
			url: mapping.ProfileSignalObservation, name: "DOSignalObservation", title: "Early signal", dutch: "signaal", typ: "Observation",
			description: "An early signal (bullying, exclusion) recorded as an Observation with category signal; it notifies the dossierhouder.",
			diff: []sd.Element{
				root("Observation", "An early signal", oneObservationCategory, valueOrNote),
				slicedByPattern("Observation.category", 1, "The signal category, optionally a domain"),
				slice("Observation.category", "signal", 1, "1", mapping.SignalCategory.Coding(), "The signal category"),
				ref("Observation.subject", 1, "1", mapping.ProfileChild, mapping.ProfileFamily),
				required("Observation.effective[x]"),
				ref("Observation.performer", 1, "*", append(helpers, "Organization")...),
			},
		},
		{
			url: mapping.ProfileSignalFlag, name: "DOSignalFlag", title: "Early signal (flag)", dutch: "signaal", typ: "Flag",
			description: "An early signal recorded as a Flag with category signal, shown while it is active.",
			diff: []sd.Element{
				root("Flag", "An early signal"),
				slicedByPattern("Flag.category", 1, "The signal category"),
				slice("Flag.category", "signal", 1, "1", mapping.SignalCategory.Coding(), "The signal category"),
				ref("Flag.subject", 1, "1", mapping.ProfileChild, mapping.ProfileFamily),
				ref("Flag.author", 1, "1", "Practitioner", "PractitionerRole", "Patient", "Organization"),
			},
		},
		{
			url: mapping.ProfileYearlyContract, name: "DOYearlyContract", title: "Yearly contract", dutch: "jaarovereenkomst", typ: "Contract",
			description: "The yearly contract of the family with the dossierhouder's organisation, for one year; its costs are split between the parents with one cost-share Invoice per parent.",
			diff: []sd.Element{
				root("Contract", "The yearly contract"),
				one("Contract.status"),
				one("Contract.issued"),
				one("Contract.applies"),
				ref("Contract.subject", 1, "1", mapping.ProfileFamily),
				one("Contract.title"),
				ref("Contract.author", 0, "1", mapping.ProfileDossierhouder, mapping.ProfileDossierhouderRole, "Organization"),
			},
		},
		{
			url: mapping.ProfileCostShare, name: "DOCostShare", title: "Cost share", dutch: "kostenverdeling", typ: "Invoice",
			description: "A parent's share of the yearly contract's costs: one Invoice per parent. The split is 50/50 unless the dossierhouder recorded another; the shares are the ratio of the parents' invoices.",
			diff: []sd.Element{
				root("Invoice", "A parent's share of the costs"),
				ref("Invoice.subject", 1, "1", mapping.ProfileFamily),
				ref("Invoice.recipient", 1, "1", mapping.ProfileParent, "RelatedPerson"),
				one("Invoice.date"),
				one("Invoice.totalGross"),
			},
		},
	}
}

func boolp(b bool) *bool { return &b }
