package mapping

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestProfilesFor(t *testing.T) {
	t.Parallel()
	cat := func(cs ...Coding) string {
		b, _ := json.Marshal(concepts(cs...))
		return string(b)
	}
	tests := []struct {
		name     string
		resource string
		want     []string
	}{
		{"plain Patient", `{"resourceType":"Patient"}`, nil},
		{"parenting plan", `{"resourceType":"CarePlan","category":` + cat(ParentingPlan.Coding()) + `}`, []string{ProfileParentingPlan}},
		{"agreement wins over its plan kind", `{"resourceType":"CarePlan","category":` + cat(ChildPlan.Coding(), AgreementCategory.Coding()) + `}`, []string{ProfileAgreement}},
		{"two plan kinds: both", `{"resourceType":"CarePlan","category":` + cat(VOP.Coding(), DevelopmentPlan.Coding()) + `}`, []string{ProfileVOP, ProfileDevelopmentPlan}},
		{"CarePlan of another system", `{"resourceType":"CarePlan","category":[{"coding":[{"system":"http://snomed.info/sct","code":"1"}]}]}`, nil},
		{"goal by domain only", `{"resourceType":"Goal","category":` + cat(DomainRights.Coding()) + `}`, []string{ProfileGoal}},
		{"goal by plan kind", `{"resourceType":"Goal","category":` + cat(ChildPlan.Coding()) + `}`, []string{ProfileGoal}},
		{"help question", `{"resourceType":"Condition","category":` + cat(HelpQuestionCategory.Coding()) + `}`, []string{ProfileHelpQuestion}},
		{"condition with a plan kind", `{"resourceType":"Condition","category":` + cat(VOP.Coding()) + `}`, []string{ProfileHelpQuestion}},
		{"diary and message", `{"resourceType":"Communication","category":` + cat(MessageCategory.Coding(), DiaryCategory.Coding()) + `}`, []string{ProfileDiaryEntry, ProfileMessage}},
		{"communication with a plan kind is a note", `{"resourceType":"Communication","category":` + cat(ChildPlan.Coding()) + `}`, []string{ProfileNote}},
		{"school observation", `{"resourceType":"Observation","category":` + cat(SchoolCategory.Coding()) + `}`, []string{ProfileSchoolObservation}},
		{"observation with a plan kind is progress", `{"resourceType":"Observation","category":` + cat(ParentingPlan.Coding()) + `}`, []string{ProfileGoalProgress}},
		{"signal observation", `{"resourceType":"Observation","category":` + cat(SignalCategory.Coding(), DomainRights.Coding()) + `}`, []string{ProfileSignalObservation}},
		{"signal flag", `{"resourceType":"Flag","category":` + cat(SignalCategory.Coding()) + `}`, []string{ProfileSignalFlag}},
		{"change request", `{"resourceType":"Task","code":{"coding":[{"system":"` + TaskCodeSystem + `","code":"approve-change"}]}}`, []string{ProfileChangeRequest}},
		{"yearly evaluation", `{"resourceType":"Task","code":{"coding":[{"system":"` + TaskCodeSystem + `","code":"yearly-evaluation"}]}}`, []string{ProfileYearlyEvaluation}},
		{"invitation", `{"resourceType":"Task","code":{"coding":[{"system":"` + TaskCodeSystem + `","code":"invitation"}]}}`, []string{ProfileInvitation}},
		{"care team", `{"resourceType":"CareTeam","participant":[{"role":[{"text":"x"}]},{"role":` + cat(Teacher.Coding()) + `}]}`, []string{ProfileCareTeam}},
		{"grant by section", `{"resourceType":"Consent","provision":{"code":` + cat(SectionDiary.Coding()) + `}}`, []string{ProfileGrant}},
		{"grant by action", `{"resourceType":"Consent","provision":{"action":` + cat(Read.Coding()) + `}}`, []string{ProfileGrant}},
		{"other consent", `{"resourceType":"Consent","provision":{"action":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentaction","code":"access"}]}]}}`, nil},
		{"dossierhouder role", `{"resourceType":"PractitionerRole","code":` + cat(Dossierhouder.Coding()) + `}`, []string{ProfileDossierhouderRole}},
		{"teacher role", `{"resourceType":"PractitionerRole","code":` + cat(Teacher.Coding()) + `}`, nil},
		{"parent", `{"resourceType":"RelatedPerson","extension":[{"url":"x"},{"url":"` + ParentalAuthorityExtension + `"}]}`, []string{ProfileParent}},
		{"evaluation form", `{"resourceType":"Questionnaire","url":"` + QuestionnaireBase + `x"}`, []string{ProfileEvaluationQuestionnaire}},
		{"other form", `{"resourceType":"Questionnaire","url":"http://example.org/Questionnaire/x"}`, nil},
		{"evaluation", `{"resourceType":"QuestionnaireResponse","questionnaire":"` + QuestionnaireBase + `x"}`, []string{ProfileEvaluation}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(tc.resource), &m); err != nil {
				t.Fatal(err)
			}
			if got := ProfilesFor(m); !slices.Equal(got, tc.want) {
				t.Errorf("ProfilesFor = %v, want %v", got, tc.want)
			}
		})
	}
	if !IsGuideSystem(SectionSystem) || IsGuideSystem("http://loinc.org") {
		t.Error("IsGuideSystem is wrong")
	}
}
