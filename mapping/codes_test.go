package mapping

import (
	"regexp"
	"strings"
	"testing"
)

// TestCodeSystems checks the registry: canonical URLs under the project's
// base, unique names and URLs, kebab-case codes that are unique per system,
// and a Dutch and an English display for every code.
func TestCodeSystems(t *testing.T) {
	t.Parallel()
	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	urls, names := map[string]bool{}, map[string]bool{}
	for _, cs := range CodeSystems() {
		if !strings.HasPrefix(cs.URL, BaseURL+"/CodeSystem/") {
			t.Errorf("%s is not under %s/CodeSystem/", cs.URL, BaseURL)
		}
		if urls[cs.URL] || names[cs.Name] {
			t.Errorf("%s (%s) is listed twice", cs.URL, cs.Name)
		}
		urls[cs.URL], names[cs.Name] = true, true
		if cs.Title == "" || len(cs.Concepts) == 0 {
			t.Errorf("%s has no title or no concepts", cs.URL)
		}
		codes := map[string]bool{}
		for _, c := range cs.Concepts {
			if !kebab.MatchString(c.Code) {
				t.Errorf("%s: code %q is not kebab-case", cs.URL, c.Code)
			}
			if codes[c.Code] {
				t.Errorf("%s: code %q twice", cs.URL, c.Code)
			}
			codes[c.Code] = true
			if c.Display == "" || c.DisplayEN == "" {
				t.Errorf("%s|%s lacks a display", cs.URL, c.Code)
			}
		}
	}
}

// TestCodeCounts pins the sizes the domain fixes.
func TestCodeCounts(t *testing.T) {
	t.Parallel()
	want := map[string]int{
		PlanCategorySystem:          5,
		DomainSystem:                8, // Schalock's eight domains
		RoleSystem:                  13,
		SectionSystem:               15,
		TaskCodeSystem:              3,
		CommunicationCategorySystem: 3,
		ConditionCategorySystem:     1,
		ObservationCategorySystem:   3,
		InteractionSystem:           4,
		DecisionSystem:              2,
		InvitationStatusSystem:      4,
		InvitationInputSystem:       3,
	}
	for url, n := range want {
		cs, ok := LookupCodeSystem(url)
		if !ok {
			t.Errorf("no code system %s", url)
			continue
		}
		if len(cs.Concepts) != n {
			t.Errorf("%s has %d concepts, want %d", url, len(cs.Concepts), n)
		}
	}
	if len(CodeSystems()) != len(want) {
		t.Errorf("%d code systems, want %d", len(CodeSystems()), len(want))
	}
	if _, ok := LookupCodeSystem("http://example.org"); ok {
		t.Error("found an unknown code system")
	}
}

// TestConstantsAreConcepts checks that every Go constant is a concept of its
// system, so Coding() always has a display.
func TestConstantsAreConcepts(t *testing.T) {
	t.Parallel()
	var all []Coding
	for _, x := range []PlanCategory{ParentingPlan, ChildPlan, DevelopmentPlan, VOP, AgreementCategory} {
		all = append(all, x.Coding())
	}
	for _, x := range []Domain{DomainPersonalDevelopment, DomainSelfDetermination, DomainInterpersonalRelations, DomainSocialInclusion, DomainRights, DomainEmotionalWellbeing, DomainPhysicalWellbeing, DomainMaterialWellbeing} {
		all = append(all, x.Coding())
	}
	for _, x := range []Role{ParentWithAuthority, ParentWithoutAuthority, Child, Dossierhouder, Mediator, YouthCareWorker, Teacher, Coach, Childcare, SpeechTherapist, SchoolSystem, ECDSystem, Auditor} {
		all = append(all, x.Coding())
	}
	for _, x := range []Section{SectionPersonalDetails, SectionParentingPlan, SectionChildPlan, SectionDevelopmentPlan, SectionDiary, SectionMessages, SectionAgenda, SectionDocuments, SectionEvaluations, SectionObservations, SectionSignals, SectionTeam, SectionChangeRequests, SectionContract, SectionAudit} {
		all = append(all, x.Coding())
	}
	for _, x := range []TaskCode{TaskApproveChange, TaskYearlyEvaluation, TaskInvitation} {
		all = append(all, x.Coding())
	}
	for _, x := range []CommunicationCategory{NoteCategory, DiaryCategory, MessageCategory} {
		all = append(all, x.Coding())
	}
	all = append(all, HelpQuestionCategory.Coding(), SignalCategory.Coding(), GoalProgressCategory.Coding(), SchoolCategory.Coding())
	for _, x := range []Interaction{Read, WriteOwnNotes, Propose, Approve} {
		all = append(all, x.Coding())
	}
	all = append(all, DecisionApproved.Coding(), DecisionRejected.Coding())
	for _, c := range all {
		if c.Display == "" {
			t.Errorf("%s|%s is not a concept of its system", c.System, c.Code)
		}
	}
	if Domain("happiness").Valid() || Section("everything").Valid() || Role("neighbour").Valid() || Interaction("delete").Valid() {
		t.Error("an unknown code is valid")
	}
}

func TestCodingIs(t *testing.T) {
	t.Parallel()
	a := Coding{System: "s", Code: "c", Display: "one"}
	if !a.Is(Coding{System: "s", Code: "c", Display: "two"}) || a.Is(Coding{System: "t", Code: "c"}) || a.Is(Coding{System: "s", Code: "d"}) {
		t.Error("Is compares more or less than system and code")
	}
	if a.IsZero() || !(Coding{Display: "x"}).IsZero() {
		t.Error("IsZero")
	}
}

// TestCodeSystemsIsACopy checks that callers cannot change the registry.
func TestCodeSystemsIsACopy(t *testing.T) {
	t.Parallel()
	cs := CodeSystems()
	cs[0].Concepts[0].Display = "changed"
	if ParentingPlan.Coding().Display == "changed" {
		t.Error("changing CodeSystems() changed the registry")
	}
	if c, ok := cs[1].Lookup(string(DomainRights)); !ok || c.DisplayEN != "Rights" {
		t.Errorf("Lookup(rights) = %+v, %v", c, ok)
	}
}
