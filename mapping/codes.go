package mapping

// BaseURL is the canonical base of every conformance resource the project
// publishes (code systems, value sets, profiles, extensions).
const BaseURL = "https://digitaleouder.nl/fhir"

// The canonical URLs of the Digitale Ouder code systems. This block is the one
// place that names them; the implementation guide publishes each as a
// CodeSystem (and a ValueSet with all its codes) at exactly this URL.
const (
	// PlanCategorySystem: CarePlan.category for plans and agreements; also
	// the plan-kind category that places goals, help questions, notes and
	// goal progress in the section of the plan they belong to.
	PlanCategorySystem = BaseURL + "/CodeSystem/plan-category"
	// DomainSystem: Schalock's eight quality-of-life domains, for
	// Goal.category, Condition.category and Observation.category.
	DomainSystem = BaseURL + "/CodeSystem/quality-of-life-domain"
	// RoleSystem: CareTeam.participant.role.
	RoleSystem = BaseURL + "/CodeSystem/team-role"
	// SectionSystem: the record sections, granted in Consent.provision.code.
	SectionSystem = BaseURL + "/CodeSystem/record-section"
	// TaskCodeSystem: Task.code.
	TaskCodeSystem = BaseURL + "/CodeSystem/task-code"
	// CommunicationCategorySystem: Communication.category.
	CommunicationCategorySystem = BaseURL + "/CodeSystem/communication-category"
	// ConditionCategorySystem: Condition.category.
	ConditionCategorySystem = BaseURL + "/CodeSystem/condition-category"
	// ObservationCategorySystem: Observation.category (and Flag.category).
	ObservationCategorySystem = BaseURL + "/CodeSystem/observation-category"
	// InteractionSystem: the interaction classes a role has per section;
	// Consent.provision.action of a grant.
	InteractionSystem = BaseURL + "/CodeSystem/interaction"
	// DecisionSystem: the dossierhouder's decision on a change request,
	// Task.businessStatus.
	DecisionSystem = BaseURL + "/CodeSystem/change-decision"
)

// WithheldSystem marks an item the dossierhouder withholds from a party
// because sharing it would harm the child (DOMAIN.md, "Dossierhouder"): a
// resource carrying the meta.security coding WithheldSystem|<party> is
// hidden from that party by the access policy, on every read path, while
// the label itself stays visible to everyone else who may read the item.
// <party> is a relative reference to the person or organisation
// ("RelatedPerson/123", "Practitioner/7", "Organization/4", "Patient/9",
// "Person/2") or a team role code of RoleSystem ("teacher"), which hides
// the item from everyone holding that role in the child's team. The codes
// are open (references), so the system is not one of CodeSystems; see
// docs/access-policy.md.
const WithheldSystem = BaseURL + "/CodeSystem/withheld"

// ParentalAuthorityExtension is the URL of the complex extension on
// RelatedPerson that records whether the parent has parental authority
// (ouderlijk gezag) over the patient, where that was established and when it
// was last verified. Its sub-extensions are named by the constants below.
// Extensions are StructureDefinitions, so the URL lives under
// /StructureDefinition/, not /CodeSystem/.
const ParentalAuthorityExtension = BaseURL + "/StructureDefinition/parental-authority"

// The sub-extensions of ParentalAuthorityExtension (relative URLs, as FHIR
// requires for the parts of a complex extension).
const (
	// ParentalAuthorityHas: valueBoolean, whether the parent has authority.
	ParentalAuthorityHas = "hasAuthority"
	// ParentalAuthoritySource: valueCoding or valueString, where it was
	// established (for example the Centraal Gezagsregister, a court order).
	ParentalAuthoritySource = "source"
	// ParentalAuthorityVerified: valueDate, when the dossierhouder last
	// verified it.
	ParentalAuthorityVerified = "verified"
)

// External code systems the mapping uses.
const (
	// ConsentScopeSystem and ConsentScopePrivacy: Consent.scope of a grant.
	ConsentScopeSystem  = "http://terminology.hl7.org/CodeSystem/consentscope"
	ConsentScopePrivacy = "patient-privacy"
	// LOINCSystem and LOINCPatientConsent: Consent.category of a grant, as in
	// the R4 examples.
	LOINCSystem         = "http://loinc.org"
	LOINCPatientConsent = "59284-0"
	// ActCodeSystem and ActCodeOptIn: Consent.policyRule of a grant: nothing
	// is shared unless a Consent permits it.
	ActCodeSystem = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	ActCodeOptIn  = "OPTIN"
	// ParticipationTypeSystem and ParticipationRecipient: the role of the
	// grantee in Consent.provision.actor (information recipient).
	ParticipationTypeSystem = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	ParticipationRecipient  = "IRCP"
	// ConditionClinicalSystem: Condition.clinicalStatus of a help question.
	ConditionClinicalSystem = "http://terminology.hl7.org/CodeSystem/condition-clinical"
)

// Coding is a FHIR Coding: a code in a code system. It is both the domain's
// representation of a code and its JSON form. Display is informative only:
// codings are compared by System and Code.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// Is reports whether c and o name the same concept (same system and code).
func (c Coding) Is(o Coding) bool { return c.System == o.System && c.Code == o.Code }

// IsZero reports whether c names no concept.
func (c Coding) IsZero() bool { return c.System == "" && c.Code == "" }

// hasCoding reports whether cs contains a coding for the concept of c.
func hasCoding(cs []Coding, c Coding) bool {
	for _, x := range cs {
		if x.Is(c) {
			return true
		}
	}
	return false
}

// Concept is one code of a code system with its Dutch display (the system's
// language) and its English designation.
type Concept struct {
	Code      string
	Display   string // Dutch
	DisplayEN string // English
}

// CodeSystem is one of the project's code systems: its canonical URL, a
// computable name, a title and its concepts in a stable order.
type CodeSystem struct {
	URL      string
	Name     string
	Title    string
	Concepts []Concept
}

// Lookup returns the concept with the given code, and whether there is one.
func (cs CodeSystem) Lookup(code string) (Concept, bool) {
	for _, c := range cs.Concepts {
		if c.Code == code {
			return c, true
		}
	}
	return Concept{}, false
}

// codeSystems is the registry of every code system of the project. Codes are
// lower-case kebab-case and never change meaning once published; displays may
// be improved.
var codeSystems = []CodeSystem{
	{URL: PlanCategorySystem, Name: "PlanCategory", Title: "Digitale Ouder plan categories", Concepts: []Concept{
		{string(ParentingPlan), "Ouderschapsplan", "Parenting plan"},
		{string(ChildPlan), "Kindplan", "Child plan"},
		{string(DevelopmentPlan), "Persoonlijk ontwikkelingsplan", "Personal development plan"},
		{string(VOP), "Verdieping ouderschapsplan (VOP)", "Deepened parenting plan (VOP)"},
		{string(AgreementCategory), "Afspraak", "Agreement"},
	}},
	{URL: DomainSystem, Name: "QualityOfLifeDomain", Title: "Quality-of-life domains (Schalock)", Concepts: []Concept{
		{string(DomainPersonalDevelopment), "Persoonlijke ontwikkeling", "Personal development"},
		{string(DomainSelfDetermination), "Zelfbepaling", "Self-determination"},
		{string(DomainInterpersonalRelations), "Interpersoonlijke relaties", "Interpersonal relations"},
		{string(DomainSocialInclusion), "Sociale inclusie", "Social inclusion"},
		{string(DomainRights), "Rechten", "Rights"},
		{string(DomainEmotionalWellbeing), "Emotioneel welbevinden", "Emotional well-being"},
		{string(DomainPhysicalWellbeing), "Lichamelijk welbevinden", "Physical well-being"},
		{string(DomainMaterialWellbeing), "Materieel welbevinden", "Material well-being"},
	}},
	{URL: RoleSystem, Name: "TeamRole", Title: "Digitale Ouder team roles", Concepts: []Concept{
		{string(ParentWithAuthority), "Ouder met gezag", "Parent with parental authority"},
		{string(ParentWithoutAuthority), "Ouder zonder gezag", "Parent without parental authority"},
		{string(Child), "Kind", "Child"},
		{string(Dossierhouder), "Dossierhouder", "Licensed file holder (dossierhouder)"},
		{string(Mediator), "Mediator", "Mediator"},
		{string(YouthCareWorker), "Jeugdhulpverlener", "Youth-care worker"},
		{string(Teacher), "Leerkracht", "Teacher"},
		{string(Coach), "Coach", "Coach"},
		{string(Childcare), "Kinderopvang", "Childcare"},
		{string(SpeechTherapist), "Logopedist", "Speech therapist"},
		{string(SchoolSystem), "Schoolsysteem", "School system"},
		{string(ECDSystem), "Elektronisch cliëntdossier (ECD)", "Youth-care client record system (ECD)"},
		{string(Auditor), "Auditor", "Auditor"},
	}},
	{URL: SectionSystem, Name: "RecordSection", Title: "Digitale Ouder record sections", Concepts: []Concept{
		{string(SectionPersonalDetails), "Persoonsgegevens", "Personal details"},
		{string(SectionParentingPlan), "Ouderschapsplan", "Parenting plan"},
		{string(SectionChildPlan), "Kindplan", "Child plan"},
		{string(SectionDevelopmentPlan), "Persoonlijk ontwikkelingsplan", "Personal development plan"},
		{string(SectionDiary), "Dagboek", "Diary"},
		{string(SectionMessages), "Berichten", "Messages"},
		{string(SectionAgenda), "Agenda", "Agenda"},
		{string(SectionDocuments), "Documenten", "Documents"},
		{string(SectionEvaluations), "Evaluaties", "Evaluations"},
		{string(SectionObservations), "Observaties", "Observations"},
		{string(SectionSignals), "Signalen", "Signals"},
		{string(SectionTeam), "Team en machtigingen", "Team and permissions"},
		{string(SectionChangeRequests), "Wijzigingsverzoeken", "Change requests"},
		{string(SectionContract), "Jaarovereenkomst en kosten", "Yearly contract and costs"},
		{string(SectionAudit), "Inzagelog", "Access log"},
	}},
	{URL: TaskCodeSystem, Name: "TaskCode", Title: "Digitale Ouder task codes", Concepts: []Concept{
		{string(TaskApproveChange), "Wijziging beoordelen", "Approve change"},
		{string(TaskYearlyEvaluation), "Jaarlijkse evaluatie", "Yearly evaluation"},
		{string(TaskInvitation), "Uitnodiging", "Invitation"},
	}},
	{URL: CommunicationCategorySystem, Name: "CommunicationCategory", Title: "Digitale Ouder communication categories", Concepts: []Concept{
		{string(NoteCategory), "Notitie", "Note"},
		{string(DiaryCategory), "Dagboek", "Diary entry"},
		{string(MessageCategory), "Bericht", "Message"},
	}},
	{URL: ConditionCategorySystem, Name: "ConditionCategory", Title: "Digitale Ouder condition categories", Concepts: []Concept{
		{string(HelpQuestionCategory), "Hulpvraag", "Help question"},
	}},
	{URL: ObservationCategorySystem, Name: "ObservationCategory", Title: "Digitale Ouder observation categories", Concepts: []Concept{
		{string(SignalCategory), "Signaal", "Early signal"},
		{string(GoalProgressCategory), "Voortgang doel", "Goal progress"},
		{string(SchoolCategory), "Observatie van school", "School observation"},
	}},
	{URL: InteractionSystem, Name: "Interaction", Title: "Digitale Ouder interaction classes", Concepts: []Concept{
		{string(Read), "Lezen", "Read"},
		{string(WriteOwnNotes), "Eigen aantekeningen schrijven", "Write own notes"},
		{string(Propose), "Voorstellen", "Propose"},
		{string(Approve), "Goedkeuren", "Approve"},
	}},
	{URL: DecisionSystem, Name: "ChangeDecision", Title: "Decisions on change requests", Concepts: []Concept{
		{string(DecisionApproved), "Goedgekeurd", "Approved"},
		{string(DecisionRejected), "Afgewezen", "Rejected"},
	}},
	{URL: InvitationStatusSystem, Name: "InvitationStatus", Title: "Digitale Ouder invitation status", Concepts: []Concept{
		{string(InvitationNotSent), "Niet verstuurd", "Not sent"},
		{string(InvitationSent), "Verstuurd", "Sent"},
		{string(InvitationAccepted), "Geaccepteerd", "Accepted"},
		{string(InvitationExpired), "Verlopen", "Expired"},
	}},
	{URL: InvitationInputSystem, Name: "InvitationInput", Title: "Digitale Ouder invitation inputs", Concepts: []Concept{
		{string(InputEmail), "E-mailadres", "E-mail address"},
		{string(InputRole), "Rol", "Role"},
		{string(InputGrant), "Toestemming", "Grant"},
	}},
}

// CodeSystems returns every code system of the project with its concepts, in
// a stable order. The implementation guide publishes them as CodeSystem and
// ValueSet resources. The result is a copy; callers may modify it.
func CodeSystems() []CodeSystem {
	out := make([]CodeSystem, len(codeSystems))
	for i, cs := range codeSystems {
		cs.Concepts = append([]Concept(nil), cs.Concepts...)
		out[i] = cs
	}
	return out
}

// LookupCodeSystem returns the code system with the given canonical URL, and
// whether it is one of the project's.
func LookupCodeSystem(url string) (CodeSystem, bool) {
	for _, cs := range CodeSystems() {
		if cs.URL == url {
			return cs, true
		}
	}
	return CodeSystem{}, false
}

// concept returns the concept of code in system, and whether it exists.
func concept(system, code string) (Concept, bool) {
	for _, cs := range codeSystems {
		if cs.URL == system {
			return cs.Lookup(code)
		}
	}
	return Concept{}, false
}

// coding returns the Coding of code in system with its Dutch display; an
// unknown code gets no display.
func coding(system, code string) Coding {
	c, _ := concept(system, code)
	return Coding{System: system, Code: code, Display: c.Display}
}

// known reports whether code is a concept of system.
func known(system, code string) bool {
	_, ok := concept(system, code)
	return ok
}

// PlanCategory is a code of PlanCategorySystem: the kind of a plan, or
// AgreementCategory for an agreement.
type PlanCategory string

// The plan categories. The first four are plan kinds; an agreement carries
// AgreementCategory and the kind of the plan it belongs to.
const (
	ParentingPlan     PlanCategory = "parenting-plan"   // ouderschapsplan
	ChildPlan         PlanCategory = "child-plan"       // kindplan
	DevelopmentPlan   PlanCategory = "development-plan" // persoonlijk ontwikkelingsplan of a parent
	VOP               PlanCategory = "vop"              // verdieping ouderschapsplan, partOf the parenting plan
	AgreementCategory PlanCategory = "agreement"        // afspraak
)

// Coding returns c as a Coding with its Dutch display.
func (c PlanCategory) Coding() Coding { return coding(PlanCategorySystem, string(c)) }

// IsPlanKind reports whether c is the kind of a plan (not AgreementCategory
// and not an unknown code).
func (c PlanCategory) IsPlanKind() bool {
	return c != AgreementCategory && known(PlanCategorySystem, string(c))
}

// Section returns the section a plan of kind c (and everything that belongs
// to it) is in: the VOP deepens the parenting plan and shares its section.
// It reports false for AgreementCategory and unknown codes.
func (c PlanCategory) Section() (Section, bool) {
	switch c {
	case ParentingPlan, VOP:
		return SectionParentingPlan, true
	case ChildPlan:
		return SectionChildPlan, true
	case DevelopmentPlan:
		return SectionDevelopmentPlan, true
	}
	return "", false
}

// Domain is a code of DomainSystem: one of Schalock's eight quality-of-life
// domains, used to categorise goals, help questions and observations.
type Domain string

// Schalock's quality-of-life domains.
const (
	DomainPersonalDevelopment    Domain = "personal-development"
	DomainSelfDetermination      Domain = "self-determination"
	DomainInterpersonalRelations Domain = "interpersonal-relations"
	DomainSocialInclusion        Domain = "social-inclusion"
	DomainRights                 Domain = "rights"
	DomainEmotionalWellbeing     Domain = "emotional-wellbeing"
	DomainPhysicalWellbeing      Domain = "physical-wellbeing"
	DomainMaterialWellbeing      Domain = "material-wellbeing"
)

// Coding returns d as a Coding with its Dutch display.
func (d Domain) Coding() Coding { return coding(DomainSystem, string(d)) }

// Valid reports whether d is one of the eight domains.
func (d Domain) Valid() bool { return known(DomainSystem, string(d)) }

// TaskCode is a code of TaskCodeSystem (Task.code).
type TaskCode string

// The task codes.
const (
	TaskApproveChange    TaskCode = "approve-change"    // the dossierhouder decides on a proposal (Task.focus)
	TaskYearlyEvaluation TaskCode = "yearly-evaluation" // the yearly evaluation, scheduled by the dossierhouder
	TaskInvitation       TaskCode = "invitation"        // invite a helper into the team (a proposal)
)

// Coding returns c as a Coding with its Dutch display.
func (c TaskCode) Coding() Coding { return coding(TaskCodeSystem, string(c)) }

// CommunicationCategory is a code of CommunicationCategorySystem.
type CommunicationCategory string

// The communication categories.
const (
	NoteCategory    CommunicationCategory = "note"    // a note on an agreement's note sheet
	DiaryCategory   CommunicationCategory = "diary"   // a diary entry
	MessageCategory CommunicationCategory = "message" // a message between participants
)

// Coding returns c as a Coding with its Dutch display.
func (c CommunicationCategory) Coding() Coding { return coding(CommunicationCategorySystem, string(c)) }

// ConditionCategory is a code of ConditionCategorySystem.
type ConditionCategory string

// HelpQuestionCategory marks a Condition as a help question (hulpvraag).
const HelpQuestionCategory ConditionCategory = "help-question"

// Coding returns c as a Coding with its Dutch display.
func (c ConditionCategory) Coding() Coding { return coding(ConditionCategorySystem, string(c)) }

// ObservationCategory is a code of ObservationCategorySystem.
type ObservationCategory string

// The observation categories.
const (
	// SignalCategory: an early signal (bullying, exclusion) that notifies the
	// dossierhouder.
	SignalCategory ObservationCategory = "signal"
	// GoalProgressCategory: progress on a goal; the Observation points at the
	// Goal with Observation.focus and carries the plan-kind category.
	GoalProgressCategory ObservationCategory = "goal-progress"
	// SchoolCategory: an observation by the child's school (a teacher or the
	// school's system); it is in the observations section like every
	// Observation that is not a signal or goal progress, and marks the
	// Observation as one the school-observation profile applies to.
	SchoolCategory ObservationCategory = "school"
)

// Coding returns c as a Coding with its Dutch display.
func (c ObservationCategory) Coding() Coding { return coding(ObservationCategorySystem, string(c)) }

// Decision is a code of DecisionSystem: what the dossierhouder decided on a
// change request.
type Decision string

// The decisions.
const (
	DecisionApproved Decision = "approved"
	DecisionRejected Decision = "rejected"
)

// Coding returns d as a Coding with its Dutch display.
func (d Decision) Coding() Coding { return coding(DecisionSystem, string(d)) }
