package mapping

import (
	"slices"
	"testing"
)

func TestNeedsApproval(t *testing.T) {
	t.Parallel()
	agreement := []Coding{AgreementCategory.Coding(), ChildPlan.Coding()}
	tests := []struct {
		name         string
		resourceType string
		categories   []Coding
		role         Role
		want         bool
	}{
		{"agreement by a parent", "CarePlan", agreement, ParentWithAuthority, true},
		{"agreement by a helper", "CarePlan", agreement, YouthCareWorker, true},
		{"agreement by the child", "CarePlan", agreement, Child, true},
		{"agreement by the dossierhouder", "CarePlan", agreement, Dossierhouder, false},
		{"plan by a parent", "CarePlan", []Coding{ParentingPlan.Coding()}, ParentWithAuthority, true},
		{"goal by a parent", "Goal", []Coding{ChildPlan.Coding()}, ParentWithAuthority, true},
		{"consent by a parent", "Consent", nil, ParentWithAuthority, true},
		{"consent by the child", "Consent", nil, Child, true},
		{"consent by the dossierhouder", "Consent", nil, Dossierhouder, false},
		{"team by a parent", "CareTeam", nil, ParentWithAuthority, true},
		{"agreement by an unknown role", "CarePlan", agreement, "neighbour", true},
		{"note", "Communication", []Coding{NoteCategory.Coding(), ChildPlan.Coding()}, ParentWithAuthority, false},
		{"diary", "Communication", []Coding{DiaryCategory.Coding()}, Child, false},
		{"message", "Communication", []Coding{MessageCategory.Coding()}, ParentWithoutAuthority, false},
		{"school observation", "Observation", nil, SchoolSystem, false},
		{"goal progress", "Observation", []Coding{GoalProgressCategory.Coding(), ChildPlan.Coding()}, SpeechTherapist, false},
		{"signal", "Observation", []Coding{SignalCategory.Coding()}, Teacher, false},
		{"document", "DocumentReference", nil, ParentWithAuthority, false},
		{"binary", "Binary", nil, ParentWithAuthority, false},
		{"help question", "Condition", []Coding{HelpQuestionCategory.Coding(), ChildPlan.Coding()}, ParentWithAuthority, false},
		{"appointment", "Appointment", nil, ParentWithAuthority, false},
		{"evaluation", "QuestionnaireResponse", nil, ParentWithAuthority, false},
		{"invitation task", "Task", []Coding{TaskInvitation.Coding()}, ParentWithAuthority, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := NeedsApproval(tt.resourceType, tt.categories, tt.role); got != tt.want {
				t.Errorf("NeedsApproval = %v, want %v", got, tt.want)
			}
			wantClass := WriteOwnNotes
			if NeedsApproval(tt.resourceType, tt.categories, ParentWithAuthority) {
				wantClass = Propose
			}
			if got := WriteClass(tt.resourceType, tt.categories); got != wantClass {
				t.Errorf("WriteClass = %s, want %s", got, wantClass)
			}
		})
	}
}

// TestLifecycles checks that every lifecycle uses the resource type's R4
// status codes and the workflow constants.
func TestLifecycles(t *testing.T) {
	t.Parallel()
	statuses := map[string][]string{"CarePlan": carePlanStatuses, "Goal": goalStatuses, "Consent": consentStatuses}
	for typ, valid := range statuses {
		l, ok := LifecycleOf(typ)
		if !ok {
			t.Fatalf("no lifecycle for %s", typ)
		}
		for _, s := range []string{l.Proposed, l.Approved, l.Rejected} {
			if !slices.Contains(valid, s) {
				t.Errorf("%s: %q is not an R4 status", typ, s)
			}
		}
		if l.Replaced != "" && !slices.Contains(valid, l.Replaced) {
			t.Errorf("%s: %q is not an R4 status", typ, l.Replaced)
		}
		if !NeedsApproval(typ, nil, ParentWithAuthority) {
			t.Errorf("%s has a lifecycle but needs no approval", typ)
		}
	}
	if l, _ := LifecycleOf("CarePlan"); l.Proposed != PlanDraft || l.Approved != PlanActive || l.Replaced != PlanRevoked {
		t.Errorf("CarePlan lifecycle = %+v", l)
	}
	if l, _ := LifecycleOf("Consent"); l.Proposed != ConsentProposed || l.Approved != ConsentActive || l.Rejected != ConsentRejected || l.Replaced != ConsentInactive {
		t.Errorf("Consent lifecycle = %+v", l)
	}
	if _, ok := LifecycleOf("CareTeam"); ok {
		t.Error("CareTeam is proposed through a Task, not as a draft")
	}
	if _, ok := LifecycleOf("Communication"); ok {
		t.Error("Communication has a lifecycle")
	}
	for _, s := range []string{TaskRequested, TaskCompleted, TaskCancelled} {
		if !slices.Contains(taskStatuses, s) {
			t.Errorf("%q is not an R4 Task status", s)
		}
	}
}
