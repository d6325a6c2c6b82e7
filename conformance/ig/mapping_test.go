package ig_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/ig"
	"github.com/digitaleouder/ouder/conformance/profile"
	"github.com/digitaleouder/ouder/mapping"
	"github.com/digitaleouder/ouder/mapping/family"
)

func generic(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("%v: %s", err, b)
	}
	return m
}

func validator(tb testing.TB) *profile.Set {
	tb.Helper()
	s, err := ig.Validator()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestMappingConversionsConform checks that what the mapping package's
// ToFHIR conversions produce conforms to the profile of its concept, both
// when validated against that profile explicitly and as a write is (the
// profiles it selects).
func TestMappingConversionsConform(t *testing.T) {
	t.Parallel()
	s := validator(t)
	p, err := conformance.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	eight := 8
	name := mapping.Name{Given: []string{"Anna"}, Family: "Jansen"}
	doc, bin, err := mapping.Document{
		ID: "doc-1", BinaryID: "bin-1", Status: "current", Subject: "Patient/sara", Author: "RelatedPerson/anna",
		Date: "2026-03-01T10:00:00+01:00", Title: "verslag.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.7"),
	}.ToFHIR()
	if err != nil {
		t.Fatal(err)
	}
	type conversion interface{ ToFHIR() ([]byte, error) }
	tests := []struct {
		profile string
		value   conversion
	}{
		{mapping.ProfileParentingPlan, mapping.Plan{Kind: mapping.ParentingPlan, Status: "active", Title: "Ouderschapsplan", Subject: "Group/gezin",
			Period: mapping.Period{Start: "2026-01-01"}, Addresses: []string{"Condition/hv-1"}, Goals: []string{"Goal/doel-1"}}},
		{mapping.ProfileVOP, mapping.Plan{Kind: mapping.VOP, Status: "draft", Subject: "Group/gezin", PartOf: "CarePlan/pp-1"}},
		{mapping.ProfileChildPlan, mapping.Plan{Kind: mapping.ChildPlan, Status: "active", Subject: "Patient/sara", Replaces: "CarePlan/kp-0"}},
		{mapping.ProfileDevelopmentPlan, mapping.Plan{Kind: mapping.DevelopmentPlan, Status: "active", Subject: "Patient/anna"}},
		{mapping.ProfileAgreement, mapping.Agreement{Plan: "CarePlan/kp-1", PlanKind: mapping.ChildPlan, Status: "draft", Title: "Lezen", Subject: "Patient/sara"}},
		{mapping.ProfileAgreement, mapping.Agreement{Plan: "CarePlan/pp-1", PlanKind: mapping.ParentingPlan, Status: "active", Title: "Wisselen op vrijdag", Subject: "Group/gezin",
			Period: mapping.Period{Start: "2026-01-01", End: "2026-12-31"}, Replaces: "CarePlan/afs-0"}},
		{mapping.ProfileNote, mapping.Note{About: "CarePlan/afs-1", PlanKind: mapping.ChildPlan, Author: "Practitioner/logo", Sent: "2026-03-02T15:04:05+01:00", Text: "b en d"}},
		{mapping.ProfileDiaryEntry, mapping.DiaryEntry{Subject: "Patient/sara", Author: "RelatedPerson/anna", Text: "Rustig"}},
		{mapping.ProfileMessage, mapping.Message{Sender: "RelatedPerson/anna", Recipients: []string{"RelatedPerson/bram"}, Text: "Woensdag", InResponseTo: "Communication/ber-0"}},
		{mapping.ProfileGoal, mapping.Goal{PlanKind: mapping.ChildPlan, Domain: mapping.DomainRights, Status: "proposed", Description: "Sara leest", Subject: "Patient/sara", TargetDate: "2026-07-01"}},
		{mapping.ProfileGoal, mapping.Goal{PlanKind: mapping.ParentingPlan, Status: "active", Description: "Rust bij de wissel", Subject: "Group/gezin"}},
		{mapping.ProfileHelpQuestion, mapping.HelpQuestion{PlanKind: mapping.ChildPlan, Domain: mapping.DomainEmotionalWellbeing, Status: "active", Question: "Hoe?",
			Subject: "Patient/sara", Asker: "RelatedPerson/anna", Recorded: "2026-01-10T09:30:00+01:00"}},
		{mapping.ProfileAppointment, mapping.Appointment{Status: "booked", Start: "2026-03-10T15:00:00+01:00", End: "2026-03-10T15:30:00+01:00",
			Participants: []mapping.Participant{{Actor: "Patient/sara", Status: "accepted"}, {Actor: "Location/school", Status: "accepted"}}}},
		{mapping.ProfileAppointment, mapping.Appointment{Status: "proposed", Participants: []mapping.Participant{{Actor: "RelatedPerson/anna", Status: "needs-action"}}}},
		{mapping.ProfileEvaluation, mapping.Evaluation{Questionnaire: family.EvaluationFormURL, BasedOn: "CarePlan/afs-1", Status: "completed", Subject: "Patient/sara",
			Items: []mapping.EvaluationItem{{LinkID: "cijfer", Answers: []mapping.EvaluationAnswer{{Integer: &eight}}}}}},
		{mapping.ProfileCareTeam, mapping.Team{Status: "active", Subject: "Patient/sara", Members: []mapping.TeamMember{
			{Member: "Practitioner/dh", Role: mapping.Dossierhouder}, {Member: "Practitioner/logo", Role: mapping.SpeechTherapist, OnBehalfOf: "Organization/praktijk"},
			{Member: "RelatedPerson/anna", Role: mapping.ParentWithAuthority}, {Member: "Patient/sara", Role: mapping.Child}}}},
		{mapping.ProfileGrant, mapping.Grant{Status: "proposed", Patient: "Patient/sara", ConsentedBy: []string{"Patient/sara", "RelatedPerson/anna"}, Grantee: "Practitioner/logo",
			Sections: []mapping.Section{mapping.SectionChildPlan}, Items: []string{"CarePlan/afs-1"}, Interactions: []mapping.Interaction{mapping.Read, mapping.WriteOwnNotes},
			Period: mapping.Period{Start: "2026-02-01"}, Source: "DocumentReference/doc-1"}},
		{mapping.ProfileGrant, mapping.Grant{Status: "active", Patient: "Patient/sara", Grantee: "Organization/school", Sections: []mapping.Section{mapping.SectionObservations},
			Interactions: []mapping.Interaction{mapping.WriteOwnNotes}}},
		{mapping.ProfileChangeRequest, mapping.ChangeRequest{Status: mapping.TaskRequested, Focus: "CarePlan/afs-1", For: "Patient/sara", Requester: "RelatedPerson/anna"}},
		{mapping.ProfileChangeRequest, mapping.ChangeRequest{Status: mapping.TaskCompleted, Decision: mapping.DecisionApproved, Reason: "Akkoord", Focus: "Consent/toe-1",
			Owner: "Practitioner/dh", AuthoredOn: "2026-02-01T12:00:00+01:00"}},
		{mapping.ProfileChild, mapping.ChildDetails{Name: mapping.Name{Given: []string{"Sara"}, Family: "de Vries"}, BirthDate: "2012-03-04", Gender: "female"}},
		{mapping.ProfileParent, mapping.Parent{Child: "Patient/sara", Relationship: mapping.RelMother, Name: name,
			Authority: &mapping.ParentalAuthority{Has: true, Source: "Centraal Gezagsregister", Verified: "2026-01-05"}}},
		{mapping.ProfileLoginPerson, mapping.LoginIdentity{Name: name, Links: []string{"RelatedPerson/anna-sara", "RelatedPerson/anna-daan"}}},
		{mapping.ProfileFamily, mapping.FamilyGroup{Name: "Gezin De Vries-Jansen", Children: []string{"Patient/sara", "Patient/daan"}}},
		{mapping.ProfileDossierhouderRole, mapping.ProfessionalRole{Professional: "Practitioner/dh", Organization: "Organization/jeugdteam", Role: mapping.Dossierhouder}},
		{mapping.ProfileGoalProgress, mapping.Observation{Status: "final", Category: mapping.GoalProgressCategory, PlanKind: mapping.ChildPlan, Topic: "Lezen",
			Subject: "Patient/sara", Goal: "Goal/doel-1", Effective: "2026-04-01T16:00:00+02:00", Observers: []string{"Practitioner/logo"}, Text: "10 minuten"}},
		{mapping.ProfileSignalObservation, mapping.Observation{Status: "final", Category: mapping.SignalCategory, Domain: mapping.DomainSocialInclusion, Topic: "Buitensluiting",
			Subject: "Patient/sara", Effective: "2026-04-12T12:00:00+02:00", Observers: []string{"Practitioner/leerkracht"}, Text: "Speelt alleen"}},
		{mapping.ProfileEvaluationQuestionnaire, mapping.EvaluationForm{URL: family.EvaluationFormURL, Name: "EvaluatieAfspraak", Title: "Evaluatie", Status: "active",
			Questions: []mapping.FormQuestion{{LinkID: "gelopen", Text: "Hoe is het gegaan?", Type: "text", Required: true}}}},
	}
	for _, tc := range tests {
		b, err := tc.value.ToFHIR()
		if err != nil {
			t.Errorf("%T: %v", tc.value, err)
			continue
		}
		res := s.ValidateAgainst(generic(t, b), tc.profile)
		if !res.Valid() || len(res.Issues) > 0 {
			t.Errorf("%T against %s: %v\n%s", tc.value, tc.profile, res.Issues, b)
		}
		if _, err := p.Parse(b, ""); err != nil {
			t.Errorf("%T as written: %v\n%s", tc.value, err, b)
		}
	}
	for _, x := range []struct {
		profile string
		body    []byte
	}{{mapping.ProfileDocument, doc}, {mapping.ProfileDocumentBinary, bin}} {
		if res := s.ValidateAgainst(generic(t, x.body), x.profile); len(res.Issues) > 0 {
			t.Errorf("document against %s: %v\n%s", x.profile, res.Issues, x.body)
		}
	}
}

// claimOnly maps the types the selection rule never picks a profile for to
// the profile a family's resource of that type must conform to.
func claimOnly(r family.Resource) string {
	switch r.Type {
	case "Patient":
		return mapping.ProfileChild
	case "Person":
		return mapping.ProfileLoginPerson
	case "Group":
		return mapping.ProfileFamily
	case "Appointment":
		return mapping.ProfileAppointment
	case "DocumentReference":
		return mapping.ProfileDocument
	case "Binary":
		return mapping.ProfileDocumentBinary
	}
	return ""
}

// TestFamiliesConform checks that the demo family and generated families
// are accepted by the write path and conform to the profiles of their
// concepts.
func TestFamiliesConform(t *testing.T) {
	t.Parallel()
	s := validator(t)
	p, err := conformance.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	demo, err := family.Demo(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	families := []*family.Family{demo}
	for i := range 20 {
		f, err := family.Generate(42, i)
		if err != nil {
			t.Fatal(err)
		}
		families = append(families, f)
	}
	selected := map[string]int{}
	for _, f := range families {
		for _, r := range f.Resources {
			res, err := p.Parse(r.JSON, r.Type)
			if err != nil {
				t.Errorf("%s of %s: %v", r.Ref(), f.Name, err)
				continue
			}
			for _, u := range res.Profiles {
				selected[u]++
			}
			if url := claimOnly(r); url != "" {
				if v := s.ValidateAgainst(generic(t, r.JSON), url); len(v.Issues) > 0 {
					t.Errorf("%s of %s against %s: %v", r.Ref(), f.Name, url, v.Issues)
				}
			}
		}
	}
	t.Logf("profiles selected: %v", selected)
}
