package mapping

import (
	"slices"
	"strings"
	"testing"
)

// carrier is a resource of a DOMAIN.md row: its type and category codings.
type carrier struct {
	resourceType string
	categories   []Coding
}

func c(resourceType string, categories ...Coding) carrier { return carrier{resourceType, categories} }

// domainRows is DOMAIN.md's table "The record", one entry per row (rows whose
// concept lives in several plans are listed once per plan kind), plus the
// audit records of "Access that can be audited". Each carrier must be in
// exactly the row's section.
var domainRows = []struct {
	dutch    string
	carriers []carrier
	want     Section
}{
	{"kind", []carrier{c("Patient")}, SectionPersonalDetails},
	{"ouder / verzorger", []carrier{c("RelatedPerson"), c("Person")}, SectionPersonalDetails},
	{"gezin", []carrier{c("Group")}, SectionPersonalDetails},
	{"ouderschapsplan", []carrier{c("CarePlan", ParentingPlan.Coding())}, SectionParentingPlan},
	{"kindplan", []carrier{c("CarePlan", ChildPlan.Coding())}, SectionChildPlan},
	{"persoonlijk ontwikkelingsplan", []carrier{c("CarePlan", DevelopmentPlan.Coding())}, SectionDevelopmentPlan},
	{"verdieping ouderschapsplan (VOP)", []carrier{c("CarePlan", VOP.Coding())}, SectionParentingPlan},
	{"afspraak (ouderschapsplan)", []carrier{c("CarePlan", AgreementCategory.Coding(), ParentingPlan.Coding())}, SectionParentingPlan},
	{"afspraak (VOP)", []carrier{c("CarePlan", AgreementCategory.Coding(), VOP.Coding())}, SectionParentingPlan},
	{"afspraak (kindplan)", []carrier{c("CarePlan", AgreementCategory.Coding(), ChildPlan.Coding())}, SectionChildPlan},
	{"afspraak (ontwikkelingsplan)", []carrier{c("CarePlan", AgreementCategory.Coding(), DevelopmentPlan.Coding())}, SectionDevelopmentPlan},
	{"notitieblad per afspraak (ouderschapsplan)", []carrier{c("Communication", NoteCategory.Coding(), ParentingPlan.Coding())}, SectionParentingPlan},
	{"notitieblad per afspraak (kindplan)", []carrier{c("Communication", NoteCategory.Coding(), ChildPlan.Coding())}, SectionChildPlan},
	{"doel (kindplan)", []carrier{
		c("Goal", ChildPlan.Coding(), DomainPersonalDevelopment.Coding()),
		c("Observation", GoalProgressCategory.Coding(), ChildPlan.Coding()),
	}, SectionChildPlan},
	{"doel (ontwikkelingsplan)", []carrier{
		c("Goal", DevelopmentPlan.Coding(), DomainSelfDetermination.Coding()),
		c("Observation", GoalProgressCategory.Coding(), DevelopmentPlan.Coding()),
	}, SectionDevelopmentPlan},
	{"hulpvraag (kindplan)", []carrier{c("Condition", HelpQuestionCategory.Coding(), ChildPlan.Coding(), DomainEmotionalWellbeing.Coding())}, SectionChildPlan},
	{"hulpvraag (ouderschapsplan)", []carrier{c("Condition", HelpQuestionCategory.Coding(), ParentingPlan.Coding())}, SectionParentingPlan},
	{"dagboek", []carrier{c("Communication", DiaryCategory.Coding())}, SectionDiary},
	{"communicatiekanaal", []carrier{c("Communication", MessageCategory.Coding())}, SectionMessages},
	{"agenda", []carrier{c("Appointment")}, SectionAgenda},
	{"documentenmap", []carrier{c("DocumentReference"), c("Binary")}, SectionDocuments},
	{"evaluatie", []carrier{c("Questionnaire"), c("QuestionnaireResponse"), c("Task", TaskYearlyEvaluation.Coding())}, SectionEvaluations},
	{"observatie van school", []carrier{c("Observation"), c("Observation", Coding{System: "http://terminology.hl7.org/CodeSystem/observation-category", Code: "survey"})}, SectionObservations},
	{"toestemming / machtiging", []carrier{c("Consent")}, SectionTeam},
	{"team, uitgenodigde ondersteuners", []carrier{c("CareTeam"), c("Task", TaskInvitation.Coding())}, SectionTeam},
	{"dossierhouder", []carrier{c("Practitioner"), c("PractitionerRole"), c("Organization")}, SectionTeam},
	{"wijzigingsverzoek", []carrier{c("Task", TaskApproveChange.Coding())}, SectionChangeRequests},
	{"signaal", []carrier{c("Flag"), c("Observation", SignalCategory.Coding())}, SectionSignals},
	{"jaarovereenkomst, kostenverdeling", []carrier{c("Contract"), c("Invoice")}, SectionContract},
	{"inzagelog", []carrier{c("AuditEvent"), c("Provenance")}, SectionAudit},
}

// TestDomainRowsInOneSection enforces that every carrier of every DOMAIN.md
// row is in exactly one section, the row's: by SectionOf, and by the coverage
// Sections() publishes.
func TestDomainRowsInOneSection(t *testing.T) {
	t.Parallel()
	for _, row := range domainRows {
		t.Run(row.dutch, func(t *testing.T) {
			t.Parallel()
			for _, cr := range row.carriers {
				got, ok := SectionOf(cr.resourceType, cr.categories)
				if !ok || got != row.want {
					t.Errorf("SectionOf(%s, %v) = %q, %v; want %q", cr.resourceType, cr.categories, got, ok, row.want)
				}
				if in := mostSpecific(cr); len(in) == 0 || slices.ContainsFunc(in, func(s Section) bool { return s != row.want }) {
					t.Errorf("%s %v: the most specific carriers of Sections() are in %v; want only %q", cr.resourceType, cr.categories, in, row.want)
				}
			}
		})
	}
}

// mostSpecific returns the sections of the carriers listed by Sections()
// that match cr with the most codes: the published coverage, read
// independently of SectionOf.
func mostSpecific(cr carrier) []Section {
	var out []Section
	best := -1
	for _, si := range Sections() {
		for _, sc := range si.Carriers {
			if sc.ResourceType != cr.resourceType ||
				slices.ContainsFunc(sc.Codes, func(x Coding) bool { return !hasCoding(cr.categories, x) }) {
				continue
			}
			switch {
			case len(sc.Codes) > best:
				best, out = len(sc.Codes), []Section{si.Section}
			case len(sc.Codes) == best:
				out = append(out, si.Section)
			}
		}
	}
	return out
}

// TestSectionsConsistent checks that Sections lists every section once, in
// the code system's order, that each has carriers, that each carrier is
// claimed by SectionOf for its own section, and that no carrier appears twice.
func TestSectionsConsistent(t *testing.T) {
	t.Parallel()
	sections := Sections()
	cs, ok := LookupCodeSystem(SectionSystem)
	if !ok {
		t.Fatal("no section code system")
	}
	if len(sections) != len(cs.Concepts) {
		t.Fatalf("Sections() has %d sections, the code system %d", len(sections), len(cs.Concepts))
	}
	seen := map[string]Section{}
	for i, si := range sections {
		if string(si.Section) != cs.Concepts[i].Code || si.Display == "" || si.DisplayEN == "" {
			t.Errorf("section %d = %+v, want code %q with displays", i, si, cs.Concepts[i].Code)
		}
		if len(si.Carriers) == 0 {
			t.Errorf("section %s covers nothing", si.Section)
		}
		for _, cr := range si.Carriers {
			var codes []string
			for _, x := range cr.Codes {
				codes = append(codes, x.System+"|"+x.Code)
			}
			key := cr.ResourceType + " " + strings.Join(codes, ",")
			if prev, dup := seen[key]; dup {
				t.Errorf("carrier %s is in %s and %s", key, prev, si.Section)
			}
			seen[key] = si.Section
			if got, ok := SectionOf(cr.ResourceType, cr.Codes); !ok || got != si.Section {
				t.Errorf("SectionOf(%s) = %q, %v; want %q", key, got, ok, si.Section)
			}
		}
	}
	want := []string{
		"CarePlan " + PlanCategorySystem + "|parenting-plan",
		"CarePlan " + PlanCategorySystem + "|vop",
		"Condition " + ConditionCategorySystem + "|help-question," + PlanCategorySystem + "|child-plan",
		"Task " + TaskCodeSystem + "|approve-change",
		"Observation ",
	}
	for _, k := range want {
		if _, ok := seen[k]; !ok {
			t.Errorf("Sections() lacks carrier %q", k)
		}
	}
}

func TestSectionOf(t *testing.T) {
	t.Parallel()
	withDisplay := ChildPlan.Coding()
	withDisplay.Display = "anything"
	tests := []struct {
		name         string
		resourceType string
		categories   []Coding
		want         Section
		ok           bool
	}{
		{"agreement goes with its plan", "CarePlan", []Coding{AgreementCategory.Coding(), ChildPlan.Coding()}, SectionChildPlan, true},
		{"agreement of the VOP", "CarePlan", []Coding{VOP.Coding(), AgreementCategory.Coding()}, SectionParentingPlan, true},
		{"VOP and parenting plan agree", "CarePlan", []Coding{VOP.Coding(), ParentingPlan.Coding()}, SectionParentingPlan, true},
		{"display is ignored", "CarePlan", []Coding{withDisplay}, SectionChildPlan, true},
		{"other systems are ignored", "CarePlan", []Coding{{System: "http://snomed.info/sct", Code: "734163000"}, ChildPlan.Coding()}, SectionChildPlan, true},
		{"agreement without plan kind", "CarePlan", []Coding{AgreementCategory.Coding()}, "", false},
		{"plan of two kinds", "CarePlan", []Coding{ChildPlan.Coding(), ParentingPlan.Coding()}, "", false},
		{"CarePlan of another system", "CarePlan", []Coding{{System: "http://snomed.info/sct", Code: "734163000"}}, "", false},
		{"CarePlan with a code of another system", "CarePlan", []Coding{{System: "http://example.org", Code: "child-plan"}}, "", false},
		{"goal without plan kind", "Goal", []Coding{DomainRights.Coding()}, "", false},
		{"condition that is not a help question", "Condition", []Coding{ChildPlan.Coding()}, "", false},
		{"communication without category", "Communication", nil, "", false},
		{"note and diary at once", "Communication", []Coding{NoteCategory.Coding(), DiaryCategory.Coding(), ChildPlan.Coding()}, "", false},
		{"diary entry that names a plan", "Communication", []Coding{DiaryCategory.Coding(), ChildPlan.Coding()}, SectionDiary, true},
		{"goal progress without plan kind", "Observation", []Coding{GoalProgressCategory.Coding()}, "", false},
		{"signal and goal progress at once", "Observation", []Coding{SignalCategory.Coding(), GoalProgressCategory.Coding(), ChildPlan.Coding()}, "", false},
		{"signal that names a plan", "Observation", []Coding{SignalCategory.Coding(), ChildPlan.Coding()}, SectionSignals, true},
		{"task without code", "Task", nil, "", false},
		{"task of another code", "Task", []Coding{{System: "http://hl7.org/fhir/CodeSystem/task-code", Code: "fulfill"}}, "", false},
		{"type outside the record", "MedicationRequest", nil, "", false},
		{"empty type", "", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := SectionOf(tt.resourceType, tt.categories)
			if got != tt.want || ok != tt.ok {
				t.Errorf("SectionOf = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestPlanCategorySection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind PlanCategory
		want Section
		ok   bool
		plan bool
	}{
		{ParentingPlan, SectionParentingPlan, true, true},
		{VOP, SectionParentingPlan, true, true},
		{ChildPlan, SectionChildPlan, true, true},
		{DevelopmentPlan, SectionDevelopmentPlan, true, true},
		{AgreementCategory, "", false, false},
		{"holiday-plan", "", false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			got, ok := tt.kind.Section()
			if got != tt.want || ok != tt.ok {
				t.Errorf("Section() = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
			if tt.kind.IsPlanKind() != tt.plan {
				t.Errorf("IsPlanKind() = %v, want %v", !tt.plan, tt.plan)
			}
		})
	}
}
