package mapping

import "strings"

// ProfileBase is the canonical base of the guide's StructureDefinitions
// (profiles and extensions).
const ProfileBase = BaseURL + "/StructureDefinition/"

// The canonical URLs of the implementation guide's profiles, one per
// concept of the record (docs/mapping.md). The guide (conformance/ig)
// publishes a StructureDefinition at each; ProfilesFor picks the ones a
// resource must conform to.
const (
	ProfileChild                   = ProfileBase + "child"                    // kind: Patient
	ProfileParent                  = ProfileBase + "parent"                   // ouder/verzorger: RelatedPerson
	ProfileLoginPerson             = ProfileBase + "login-person"             // login identity: Person
	ProfileFamily                  = ProfileBase + "family"                   // gezin: Group
	ProfileParentingPlan           = ProfileBase + "parenting-plan"           // ouderschapsplan: CarePlan
	ProfileVOP                     = ProfileBase + "vop"                      // verdieping ouderschapsplan: CarePlan
	ProfileChildPlan               = ProfileBase + "child-plan"               // kindplan: CarePlan
	ProfileDevelopmentPlan         = ProfileBase + "development-plan"         // persoonlijk ontwikkelingsplan: CarePlan
	ProfileAgreement               = ProfileBase + "agreement"                // afspraak: CarePlan
	ProfileNote                    = ProfileBase + "note"                     // notitie: Communication
	ProfileDiaryEntry              = ProfileBase + "diary-entry"              // dagboek: Communication
	ProfileMessage                 = ProfileBase + "message"                  // bericht: Communication
	ProfileGoal                    = ProfileBase + "goal"                     // doel: Goal
	ProfileGoalProgress            = ProfileBase + "goal-progress"            // voortgang doel: Observation
	ProfileHelpQuestion            = ProfileBase + "help-question"            // hulpvraag: Condition
	ProfileAppointment             = ProfileBase + "appointment"              // agenda: Appointment
	ProfileDocument                = ProfileBase + "document"                 // documentenmap: DocumentReference
	ProfileDocumentBinary          = ProfileBase + "document-binary"          // the document's bytes: Binary
	ProfileEvaluationQuestionnaire = ProfileBase + "evaluation-questionnaire" // evaluatieformulier: Questionnaire
	ProfileEvaluation              = ProfileBase + "evaluation"               // evaluatie: QuestionnaireResponse
	ProfileYearlyEvaluation        = ProfileBase + "yearly-evaluation"        // jaarlijkse evaluatie: Task
	ProfileSchoolObservation       = ProfileBase + "school-observation"       // observatie van school: Observation
	ProfileGrant                   = ProfileBase + "grant"                    // toestemming, machtiging: Consent
	ProfileCareTeam                = ProfileBase + "care-team"                // team: CareTeam
	ProfileDossierhouder           = ProfileBase + "dossierhouder"            // dossierhouder: Practitioner
	ProfileDossierhouderRole       = ProfileBase + "dossierhouder-role"       // dossierhouder: PractitionerRole
	ProfileChangeRequest           = ProfileBase + "change-request"           // wijzigingsverzoek: Task
	ProfileInvitation              = ProfileBase + "invitation"               // uitnodiging: Task
	ProfileSignalObservation       = ProfileBase + "signal-observation"       // signaal: Observation
	ProfileSignalFlag              = ProfileBase + "signal-flag"              // signaal: Flag
	ProfileYearlyContract          = ProfileBase + "yearly-contract"          // jaarovereenkomst: Contract
	ProfileCostShare               = ProfileBase + "cost-share"               // kostenverdeling: Invoice
)

// QuestionnaireBase is the canonical base of the guide's evaluation forms
// (Questionnaire.url, QuestionnaireResponse.questionnaire).
const QuestionnaireBase = BaseURL + "/Questionnaire/"

// IsGuideSystem reports whether system is the URL of one of the project's
// code systems. Those code systems are complete: a coding of one of them
// whose code it does not define is an error wherever it appears.
func IsGuideSystem(system string) bool { return guideSystems[system] }

// guideSystems is the set of the URLs of codeSystems.
var guideSystems = func() map[string]bool {
	m := make(map[string]bool, len(codeSystems))
	for _, cs := range codeSystems {
		m[cs.URL] = true
	}
	return m
}()

// ProfilesFor returns the profiles the selection rule picks for a resource
// from its content, in a stable order; nil when it picks none. resource is
// the resource as decoded by encoding/json (objects are map[string]any).
// Profiles a resource claims in meta.profile apply as well; they are the
// caller's to add.
//
// The rule looks only at the codes and markers the domain defines, so a
// resource that carries none of them is a plain R4 resource and is not a
// domain resource:
//
//   - CarePlan: category agreement picks the agreement profile; otherwise
//     each plan kind (parenting-plan, vop, child-plan, development-plan) in
//     category picks that plan's profile.
//   - Goal: a plan kind or a quality-of-life domain in category.
//   - Condition: help-question or a plan kind in category.
//   - Communication: each of note, diary and message in category picks its
//     profile; a plan kind without one of them picks note.
//   - Observation: signal, goal-progress or school in category picks its
//     profile; a plan kind without one of them picks goal-progress.
//   - Flag: a code of the observation-category system in category.
//   - Task: approve-change, yearly-evaluation or invitation in code.
//   - CareTeam: a team role in participant.role.
//   - Consent: a record section in provision.code or an interaction in
//     provision.action.
//   - PractitionerRole: the dossierhouder team role in code.
//   - RelatedPerson: the parental-authority extension.
//   - Questionnaire: a url under QuestionnaireBase; QuestionnaireResponse:
//     a questionnaire under QuestionnaireBase.
//
// Patient, Person, Group, Practitioner, Appointment, DocumentReference,
// Binary, Contract and Invoice carry no domain code in R4's shape: they are
// validated against a profile only when they claim it in meta.profile.
func ProfilesFor(resource map[string]any) []string {
	typ, _ := resource["resourceType"].(string)
	var out []string
	add := func(url string) {
		for _, u := range out {
			if u == url {
				return
			}
		}
		out = append(out, url)
	}
	cats := codingsAt(resource, "category")
	switch typ {
	case "CarePlan":
		if hasCoding(cats, AgreementCategory.Coding()) {
			add(ProfileAgreement)
			break
		}
		for _, k := range []struct {
			kind    PlanCategory
			profile string
		}{{ParentingPlan, ProfileParentingPlan}, {VOP, ProfileVOP}, {ChildPlan, ProfileChildPlan}, {DevelopmentPlan, ProfileDevelopmentPlan}} {
			if hasCoding(cats, k.kind.Coding()) {
				add(k.profile)
			}
		}
	case "Goal":
		if hasSystem(cats, PlanCategorySystem) || hasSystem(cats, DomainSystem) {
			add(ProfileGoal)
		}
	case "Condition":
		if hasCoding(cats, HelpQuestionCategory.Coding()) || hasSystem(cats, PlanCategorySystem) {
			add(ProfileHelpQuestion)
		}
	case "Communication":
		for _, c := range []struct {
			cat     CommunicationCategory
			profile string
		}{{NoteCategory, ProfileNote}, {DiaryCategory, ProfileDiaryEntry}, {MessageCategory, ProfileMessage}} {
			if hasCoding(cats, c.cat.Coding()) {
				add(c.profile)
			}
		}
		if len(out) == 0 && hasSystem(cats, PlanCategorySystem) {
			add(ProfileNote)
		}
	case "Observation":
		for _, c := range []struct {
			cat     ObservationCategory
			profile string
		}{{SignalCategory, ProfileSignalObservation}, {GoalProgressCategory, ProfileGoalProgress}, {SchoolCategory, ProfileSchoolObservation}} {
			if hasCoding(cats, c.cat.Coding()) {
				add(c.profile)
			}
		}
		if len(out) == 0 && hasSystem(cats, PlanCategorySystem) {
			add(ProfileGoalProgress)
		}
	case "Flag":
		if hasSystem(cats, ObservationCategorySystem) {
			add(ProfileSignalFlag)
		}
	case "Task":
		code := codingsAt(resource, "code")
		for _, c := range []struct {
			code    TaskCode
			profile string
		}{{TaskApproveChange, ProfileChangeRequest}, {TaskYearlyEvaluation, ProfileYearlyEvaluation}, {TaskInvitation, ProfileInvitation}} {
			if hasCoding(code, c.code.Coding()) {
				add(c.profile)
			}
		}
	case "CareTeam":
		for _, p := range objects(resource["participant"]) {
			if hasSystem(codingsAt(p, "role"), RoleSystem) {
				add(ProfileCareTeam)
			}
		}
	case "Consent":
		if p, ok := resource["provision"].(map[string]any); ok {
			if hasSystem(codingsAt(p, "code"), SectionSystem) || hasSystem(codingsAt(p, "action"), InteractionSystem) {
				add(ProfileGrant)
			}
		}
	case "PractitionerRole":
		if hasCoding(codingsAt(resource, "code"), Dossierhouder.Coding()) {
			add(ProfileDossierhouderRole)
		}
	case "RelatedPerson":
		for _, x := range objects(resource["extension"]) {
			if x["url"] == ParentalAuthorityExtension {
				add(ProfileParent)
			}
		}
	case "Questionnaire":
		if u, _ := resource["url"].(string); strings.HasPrefix(u, QuestionnaireBase) {
			add(ProfileEvaluationQuestionnaire)
		}
	case "QuestionnaireResponse":
		if u, _ := resource["questionnaire"].(string); strings.HasPrefix(u, QuestionnaireBase) {
			add(ProfileEvaluation)
		}
	}
	return out
}

// hasSystem reports whether a coding of cs is of system.
func hasSystem(cs []Coding, system string) bool {
	for _, c := range cs {
		if c.System == system {
			return true
		}
	}
	return false
}

// objects returns v as a list of JSON objects: the objects of an array, or
// v itself when it is one object.
func objects(v any) []map[string]any {
	switch x := v.(type) {
	case map[string]any:
		return []map[string]any{x}
	case []any:
		out := make([]map[string]any, 0, len(x))
		for _, it := range x {
			if m, ok := it.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// codingsAt returns the codings of the CodeableConcept (or list of them) at
// the member name of obj.
func codingsAt(obj map[string]any, name string) []Coding {
	var out []Coding
	for _, cc := range objects(obj[name]) {
		for _, c := range objects(cc["coding"]) {
			s, _ := c["system"].(string)
			code, _ := c["code"].(string)
			out = append(out, Coding{System: s, Code: code})
		}
	}
	return out
}
