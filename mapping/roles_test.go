package mapping

import (
	"slices"
	"testing"
)

// TestRolesMatchCodeSystem checks that every role of the code system has its
// table entry, in the same order, with displays and actor types.
func TestRolesMatchCodeSystem(t *testing.T) {
	t.Parallel()
	cs, _ := LookupCodeSystem(RoleSystem)
	rs := Roles()
	if len(rs) != len(cs.Concepts) {
		t.Fatalf("%d roles, %d codes", len(rs), len(cs.Concepts))
	}
	for i, ri := range rs {
		if string(ri.Role) != cs.Concepts[i].Code {
			t.Errorf("role %d = %s, code system has %s", i, ri.Role, cs.Concepts[i].Code)
		}
		if ri.Display == "" || ri.DisplayEN == "" || len(ri.Actors) == 0 {
			t.Errorf("role %s lacks displays or actors: %+v", ri.Role, ri)
		}
		for _, as := range [][]Access{ri.Defaults, ri.Grantable} {
			for _, a := range as {
				if !a.Section.Valid() || len(a.Allow) == 0 || a.Scope < ScopeChildren || a.Scope > ScopeGranted {
					t.Errorf("role %s: bad access %+v", ri.Role, a)
				}
				for _, in := range a.Allow {
					if !in.Valid() {
						t.Errorf("role %s: unknown interaction %q", ri.Role, in)
					}
				}
			}
		}
		for _, a := range ri.Grantable {
			if a.Scope != ScopeGranted {
				t.Errorf("role %s: grantable access %+v is not ScopeGranted", ri.Role, a)
			}
		}
	}
}

// TestRoleRules checks DOMAIN.md's "Roles and what they may do" as
// properties of the table.
func TestRoleRules(t *testing.T) {
	t.Parallel()
	for _, ri := range Roles() {
		t.Run(string(ri.Role), func(t *testing.T) {
			t.Parallel()
			for _, a := range ri.Grantable {
				if slices.Contains(a.Allow, Approve) {
					t.Errorf("Approve is grantable in %s", a.Section)
				}
			}
			for _, a := range ri.Defaults {
				if slices.Contains(a.Allow, Approve) && ri.Role != Dossierhouder {
					t.Errorf("only the dossierhouder approves; %s has Approve in %s", ri.Role, a.Section)
				}
			}
			if ri.Helper || ri.System {
				if len(ri.Defaults) != 0 {
					t.Errorf("an invited helper or system has only what a Consent grants; defaults %+v", ri.Defaults)
				}
				if len(ri.Grantable) == 0 {
					t.Error("nothing can be granted")
				}
			}
			if ri.Role == Auditor {
				if len(ri.Grantable) != 0 {
					t.Errorf("an auditor is never granted content: %+v", ri.Grantable)
				}
				for _, a := range ri.Defaults {
					if (a.Section != SectionTeam && a.Section != SectionAudit) || !slices.Equal(a.Allow, []Interaction{Read}) {
						t.Errorf("an auditor reads Consent and AuditEvent only: %+v", a)
					}
				}
			}
			if ri.Role == ParentWithoutAuthority {
				for _, a := range ri.Defaults {
					if slices.Contains(a.Allow, Read) {
						t.Errorf("a parent without authority has no direct access: %+v", a)
					}
				}
			}
		})
	}
}

func TestMayByDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		role    Role
		section Section
		in      Interaction
		want    bool
	}{
		{ParentWithAuthority, SectionChildPlan, Read, true},
		{ParentWithAuthority, SectionChildPlan, Propose, true},
		{ParentWithAuthority, SectionChildPlan, Approve, false},
		{ParentWithAuthority, SectionDiary, WriteOwnNotes, true},
		{ParentWithAuthority, SectionTeam, Propose, true},
		{ParentWithAuthority, SectionContract, WriteOwnNotes, false},
		{ParentWithAuthority, SectionAudit, Read, true},
		{ParentWithoutAuthority, SectionChildPlan, Read, false},
		{ParentWithoutAuthority, SectionMessages, WriteOwnNotes, true},
		{Child, SectionChildPlan, Read, true},
		{Child, SectionDevelopmentPlan, Read, false},
		{Child, SectionContract, Read, false},
		{Dossierhouder, SectionChangeRequests, Approve, true},
		{Dossierhouder, SectionTeam, Approve, true},
		{Dossierhouder, SectionContract, WriteOwnNotes, true},
		{SpeechTherapist, SectionChildPlan, Read, false},
		{SchoolSystem, SectionObservations, WriteOwnNotes, false},
		{Auditor, SectionAudit, Read, true},
		{Auditor, SectionTeam, Read, true},
		{Auditor, SectionChildPlan, Read, false},
		{"neighbour", SectionDiary, Read, false},
	}
	for _, tt := range tests {
		if got := tt.role.MayByDefault(tt.section, tt.in); got != tt.want {
			t.Errorf("%s.MayByDefault(%s, %s) = %v, want %v", tt.role, tt.section, tt.in, got, tt.want)
		}
	}
}

func TestMayBeGranted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		role    Role
		section Section
		in      Interaction
		want    bool
	}{
		{SpeechTherapist, SectionChildPlan, WriteOwnNotes, true},
		{Mediator, SectionParentingPlan, Propose, true},
		{Teacher, SectionChangeRequests, Read, false},
		{YouthCareWorker, SectionChildPlan, Approve, false},
		{ECDSystem, SectionChildPlan, Read, true},
		{ECDSystem, SectionChildPlan, WriteOwnNotes, false},
		{SchoolSystem, SectionObservations, WriteOwnNotes, true},
		{Child, SectionChildPlan, Read, true}, // own access before 12, with consent
		{Auditor, SectionAudit, Read, false},
		{Dossierhouder, SectionDiary, Read, false}, // has it by default; nothing to grant
		{"neighbour", SectionDiary, Read, false},
	}
	for _, tt := range tests {
		if got := tt.role.MayBeGranted(tt.section, tt.in); got != tt.want {
			t.Errorf("%s.MayBeGranted(%s, %s) = %v, want %v", tt.role, tt.section, tt.in, got, tt.want)
		}
	}
}

// TestRoleInfoIsACopy checks that callers cannot change the table.
func TestRoleInfoIsACopy(t *testing.T) {
	t.Parallel()
	ri, ok := Teacher.Info()
	if !ok {
		t.Fatal("no teacher")
	}
	ri.Grantable[0].Allow[0] = Approve
	ri.Actors[0] = "Device"
	rs := Roles()
	rs[0].Defaults[0].Allow[0] = Approve
	if Teacher.MayBeGranted(ri.Grantable[0].Section, Approve) || ParentWithAuthority.MayByDefault(rs[0].Defaults[0].Section, Approve) {
		t.Error("changing a returned RoleInfo changed the table")
	}
	if again, _ := Teacher.Info(); again.Actors[0] == "Device" {
		t.Error("changing returned actors changed the table")
	}
	if _, ok := Role("neighbour").Info(); ok {
		t.Error("unknown role has info")
	}
}
