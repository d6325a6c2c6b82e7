package mapping

// Section is a code of SectionSystem: a part of a child's record that
// permissions are granted for. Every resource in an environment is in
// exactly one section, decided by SectionOf from its type and category
// codings alone, so the access policy never has to follow references to
// decide.
type Section string

// The record sections.
const (
	// SectionPersonalDetails: the child, parents, family and login identities
	// (Patient, RelatedPerson, Person, Group).
	SectionPersonalDetails Section = "personal-details"
	// SectionParentingPlan: the parenting plan and its VOP with everything
	// that belongs to them (agreements, goals, help questions, notes, goal
	// progress).
	SectionParentingPlan Section = "parenting-plan"
	// SectionChildPlan: a child plan with its agreements, goals, help
	// questions, notes and goal progress.
	SectionChildPlan Section = "child-plan"
	// SectionDevelopmentPlan: a parent's personal development plan with
	// everything that belongs to it.
	SectionDevelopmentPlan Section = "development-plan"
	// SectionDiary: diary entries.
	SectionDiary Section = "diary"
	// SectionMessages: messages.
	SectionMessages Section = "messages"
	// SectionAgenda: appointments.
	SectionAgenda Section = "agenda"
	// SectionDocuments: the document folder (DocumentReference and the Binary
	// it points at).
	SectionDocuments Section = "documents"
	// SectionEvaluations: evaluation forms and answers, and the yearly
	// evaluation task.
	SectionEvaluations Section = "evaluations"
	// SectionObservations: observations by school, parents and helpers
	// (every Observation that is not a signal or goal progress).
	SectionObservations Section = "observations"
	// SectionSignals: early signals (Flag, Observation category signal).
	SectionSignals Section = "signals"
	// SectionTeam: the team and its permissions (CareTeam, Consent,
	// practitioners and organisations, invitations).
	SectionTeam Section = "team"
	// SectionChangeRequests: the approve-change tasks of the dossierhouder.
	SectionChangeRequests Section = "change-requests"
	// SectionContract: the yearly contract and the invoices (cost split).
	SectionContract Section = "contract"
	// SectionAudit: who saw and changed what (AuditEvent, Provenance).
	SectionAudit Section = "audit"
)

// Coding returns s as a Coding with its Dutch display.
func (s Section) Coding() Coding { return coding(SectionSystem, string(s)) }

// Valid reports whether s is one of the sections.
func (s Section) Valid() bool { return known(SectionSystem, string(s)) }

// sectionRule places resources of one type, optionally only those carrying
// one category coding, in a section. A rule with an empty section places
// them in the section of the plan they belong to, named by the plan-kind
// category (PlanCategorySystem) the resource carries.
type sectionRule struct {
	resourceType string
	category     Coding  // zero: every resource of the type no category rule claims
	section      Section // empty: the section of the resource's plan kind
}

// sectionRules is the one table that places resources in sections. It is
// read by SectionOf and rendered by Sections; keep it in the order of
// docs/mapping.md.
var sectionRules = []sectionRule{
	{"Patient", Coding{}, SectionPersonalDetails},
	{"RelatedPerson", Coding{}, SectionPersonalDetails},
	{"Person", Coding{}, SectionPersonalDetails},
	{"Group", Coding{}, SectionPersonalDetails},

	// Plans and agreements: an agreement carries AgreementCategory and the
	// kind of its plan, so both land in the plan's section.
	{"CarePlan", Coding{}, ""},
	{"Goal", Coding{}, ""},
	{"Condition", HelpQuestionCategory.Coding(), ""},
	{"Communication", NoteCategory.Coding(), ""},
	{"Observation", GoalProgressCategory.Coding(), ""},

	{"Communication", DiaryCategory.Coding(), SectionDiary},
	{"Communication", MessageCategory.Coding(), SectionMessages},
	{"Appointment", Coding{}, SectionAgenda},
	{"DocumentReference", Coding{}, SectionDocuments},
	{"Binary", Coding{}, SectionDocuments},
	{"Questionnaire", Coding{}, SectionEvaluations},
	{"QuestionnaireResponse", Coding{}, SectionEvaluations},
	{"Task", TaskYearlyEvaluation.Coding(), SectionEvaluations},
	{"Observation", SignalCategory.Coding(), SectionSignals},
	{"Flag", Coding{}, SectionSignals},
	{"Observation", Coding{}, SectionObservations},
	{"CareTeam", Coding{}, SectionTeam},
	{"Consent", Coding{}, SectionTeam},
	{"Practitioner", Coding{}, SectionTeam},
	{"PractitionerRole", Coding{}, SectionTeam},
	{"Organization", Coding{}, SectionTeam},
	{"Task", TaskInvitation.Coding(), SectionTeam},
	{"Task", TaskApproveChange.Coding(), SectionChangeRequests},
	{"Contract", Coding{}, SectionContract},
	{"Invoice", Coding{}, SectionContract},
	{"AuditEvent", Coding{}, SectionAudit},
	{"Provenance", Coding{}, SectionAudit},
}

// planKinds lists the plan kinds in the order of PlanCategorySystem.
var planKinds = []PlanCategory{ParentingPlan, ChildPlan, DevelopmentPlan, VOP}

// SectionOf returns the section a resource of the given type with the given
// category codings is in. categories are the codings of the resource's
// category element (all of them, flattened); for a Task they are the codings
// of Task.code. Display values are ignored.
//
// The rule, in order:
//  1. The rules for the type that name a category the resource carries
//     decide. If they name different sections, the resource is ambiguous.
//  2. Otherwise the type's fallback rule (no category) decides, if it has one.
//  3. A rule "by plan kind" (CarePlan, Goal, help-question Condition, note
//     Communication, goal-progress Observation) takes the section of the
//     plan-kind codings (PlanCategorySystem) the resource carries; they must
//     name exactly one section (VOP and parenting plan share one).
//
// It reports false when the type is not part of the record, when no rule
// applies (for example a Condition that is not a help question, a CarePlan
// without a plan kind) or when the resource is ambiguous: the write path
// refuses such resources and the policy denies them.
func SectionOf(resourceType string, categories []Coding) (Section, bool) {
	var matched []sectionRule
	var fallback []sectionRule
	for _, r := range sectionRules {
		switch {
		case r.resourceType != resourceType:
		case r.category.IsZero():
			fallback = append(fallback, r)
		case hasCoding(categories, r.category):
			matched = append(matched, r)
		}
	}
	if len(matched) == 0 {
		matched = fallback
	}
	var out Section
	for _, r := range matched {
		s := r.section
		if s == "" {
			var ok bool
			if s, ok = planSection(categories); !ok {
				return "", false
			}
		}
		if out != "" && s != out {
			return "", false
		}
		out = s
	}
	return out, out != ""
}

// planSection returns the one section that the plan-kind codings among cs
// name, and false if they name none or several.
func planSection(cs []Coding) (Section, bool) {
	var out Section
	for _, c := range cs {
		if c.System != PlanCategorySystem {
			continue
		}
		s, ok := PlanCategory(c.Code).Section()
		if !ok {
			continue
		}
		if out != "" && s != out {
			return "", false
		}
		out = s
	}
	return out, out != ""
}

// Carrier is one kind of resource a section covers: a resource type and the
// codings it must carry among its categories (Task: its code). A carrier
// without codes covers every resource of the type that no carrier with codes
// claims.
type Carrier struct {
	ResourceType string
	Codes        []Coding
}

// SectionInfo describes a section: its code, its displays and the resources
// it covers.
type SectionInfo struct {
	Section   Section
	Display   string // Dutch
	DisplayEN string // English
	Carriers  []Carrier
}

// Sections returns every section with the carriers it covers, in the order of
// SectionSystem. A carrier "by plan kind" is listed once per plan kind of the
// section (the parenting plan lists both parenting-plan and vop). For each
// carrier c of section s, SectionOf(c.ResourceType, c.Codes) returns s.
func Sections() []SectionInfo {
	cs, _ := LookupCodeSystem(SectionSystem)
	out := make([]SectionInfo, 0, len(cs.Concepts))
	for _, c := range cs.Concepts {
		s := Section(c.Code)
		info := SectionInfo{Section: s, Display: c.Display, DisplayEN: c.DisplayEN}
		for _, r := range sectionRules {
			var codes []Coding
			if !r.category.IsZero() {
				codes = append(codes, r.category)
			}
			if r.section == s {
				info.Carriers = append(info.Carriers, Carrier{ResourceType: r.resourceType, Codes: codes})
				continue
			}
			if r.section != "" {
				continue
			}
			for _, k := range planKinds {
				if ks, _ := k.Section(); ks == s {
					info.Carriers = append(info.Carriers, Carrier{
						ResourceType: r.resourceType,
						Codes:        append(append([]Coding(nil), codes...), k.Coding()),
					})
				}
			}
		}
		out = append(out, info)
	}
	return out
}
