package mapping

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"github.com/google/go-cmp/cmp"

	"github.com/digitaleouder/ouder/fhir"
)

var (
	unmarshallerOnce sync.Once
	unmarshaller     *jsonformat.Unmarshaller
	unmarshallerErr  error
)

// validR4 fails the test unless b is a valid FHIR R4 resource according to
// google/fhir's validating unmarshaller (structure, cardinality, required
// elements, primitive formats, required code bindings, reference types).
func validR4(tb testing.TB, b []byte) {
	tb.Helper()
	unmarshallerOnce.Do(func() {
		unmarshaller, unmarshallerErr = jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	})
	if unmarshallerErr != nil {
		tb.Fatalf("NewUnmarshaller: %v", unmarshallerErr)
	}
	if _, err := unmarshaller.Unmarshal(b); err != nil {
		tb.Fatalf("not valid R4: %v\n%s", err, b)
	}
}

// categoriesOf returns the flattened category codings of a resource as
// SectionOf expects them (Task: its code).
func categoriesOf(tb testing.TB, b []byte) (string, []Coding) {
	tb.Helper()
	var r struct {
		ResourceType string          `json:"resourceType"`
		Category     json.RawMessage `json:"category"`
		Code         codeableConcept `json:"code"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		tb.Fatal(err)
	}
	if r.ResourceType == "Task" {
		return r.ResourceType, r.Code.Coding
	}
	var ccs []codeableConcept
	if len(r.Category) > 0 {
		if err := json.Unmarshal(r.Category, &ccs); err != nil {
			tb.Fatal(err)
		}
	}
	return r.ResourceType, codings(ccs)
}

func intp(i int) *int    { return &i }
func boolp(b bool) *bool { return &b }

// roundTrip is one domain value: its conversion, its reading back, the
// section the produced resource must be in, and JSON members the produced
// resource must contain.
type roundTrip struct {
	name     string
	toFHIR   func() ([]byte, error)
	fromFHIR func([]byte) (any, error)
	value    any
	section  Section
	contains []string
}

func roundTrips() []roundTrip {
	plan := Plan{
		ID: "pp-1", Kind: ParentingPlan, Status: PlanActive, Title: "Ouderschapsplan Jansen",
		Description: "Afspraken na de scheiding", Subject: "Group/gezin-jansen",
		Period: Period{Start: "2026-01-01"}, Replaces: "CarePlan/pp-0",
		Addresses: []string{"Condition/hv-1"}, Goals: []string{"Goal/doel-1"},
	}
	vop := Plan{ID: "vop-1", Kind: VOP, Status: PlanDraft, Title: "VOP", Subject: "Group/gezin-jansen", PartOf: "CarePlan/pp-1"}
	childPlan := Plan{ID: "kp-1", Kind: ChildPlan, Status: PlanActive, Subject: "Patient/sara", Period: Period{Start: "2026-01-01T00:00:00+01:00", End: "2026-12-31T23:59:59+01:00"}}
	devPlan := Plan{ID: "pop-1", Kind: DevelopmentPlan, Status: PlanCompleted, Subject: "Patient/ouder-anna"}
	agreement := Agreement{
		ID: "afs-1", Plan: "CarePlan/kp-1", PlanKind: ChildPlan, Status: PlanDraft,
		Title: "Bijhouden wat opvalt bij lezen", Description: "Vermoeden van dyslexie: school en logopedie schrijven bevindingen bij.",
		Subject: "Patient/sara", Period: Period{Start: "2026-02-01", End: "2026-07-01"}, Replaces: "CarePlan/afs-0",
	}
	goal := Goal{
		ID: "doel-1", PlanKind: ChildPlan, Domain: DomainPersonalDevelopment, Status: GoalProposed,
		Description: "Sara leest 15 minuten per dag", Subject: "Patient/sara", TargetDate: "2026-07-01",
	}
	help := HelpQuestion{
		ID: "hv-1", PlanKind: ChildPlan, Domain: DomainEmotionalWellbeing, Status: "active",
		Question: "Hoe helpen we Sara met de overgang tussen twee huizen?", Subject: "Patient/sara",
		Asker: "RelatedPerson/anna", Recorded: "2026-01-10T09:30:00+01:00",
	}
	note := Note{
		ID: "not-1", About: "CarePlan/afs-1", PlanKind: ChildPlan, Subject: "Patient/sara",
		Author: "Practitioner/logopedist-1", Sent: "2026-03-02T15:04:05+01:00",
		Text: "Letters b en d worden nog verwisseld.", Status: "completed",
	}
	diary := DiaryEntry{ID: "dag-1", Subject: "Patient/sara", Author: "RelatedPerson/anna", Sent: "2026-03-01T20:00:00+01:00", Text: "Rustige overdracht.", Status: "completed"}
	msg := Message{
		ID: "ber-1", Subject: "Patient/sara", Sender: "RelatedPerson/anna",
		Recipients: []string{"RelatedPerson/bram", "Practitioner/dossierhouder-1"},
		Sent:       "2026-03-03T08:00:00Z", Text: "Zwemles verschuift naar woensdag.", InResponseTo: "Communication/ber-0", Status: "completed",
	}
	appt := Appointment{
		ID: "agd-1", Status: "booked", Description: "Oudergesprek school",
		Start: "2026-03-10T15:00:00+01:00", End: "2026-03-10T15:30:00+01:00", Comment: "Lokaal 4",
		Participants: []Participant{
			{Actor: "Patient/sara", Status: "accepted"},
			{Actor: "RelatedPerson/anna", Status: "accepted"},
			{Actor: "Practitioner/leerkracht-1", Status: "tentative"},
		},
	}
	proposedAppt := Appointment{ID: "agd-2", Status: "proposed", Participants: []Participant{{Actor: "RelatedPerson/bram", Status: "needs-action"}}}
	eval := Evaluation{
		ID: "eva-1", Questionnaire: "https://digitaleouder.nl/fhir/Questionnaire/evaluatie-afspraak",
		BasedOn: "CarePlan/afs-1", Status: "completed", Subject: "Patient/sara", Author: "RelatedPerson/anna",
		Authored: "2026-07-01T10:00:00+02:00",
		Items: []EvaluationItem{
			{LinkID: "gelopen", Text: "Hoe is het gegaan?", Answers: []EvaluationAnswer{{String: "Goed, met hulp van school."}}},
			{LinkID: "cijfer", Text: "Cijfer", Answers: []EvaluationAnswer{{Integer: intp(8)}}},
			{LinkID: "doorgaan", Answers: []EvaluationAnswer{{Boolean: boolp(true)}}},
			{LinkID: "domein", Answers: []EvaluationAnswer{{Coding: &Coding{System: DomainSystem, Code: string(DomainPersonalDevelopment)}}}},
			{LinkID: "leeg"},
		},
	}
	team := Team{
		ID: "team-sara", Status: "active", Name: "Team Sara", Subject: "Patient/sara",
		Members: []TeamMember{
			{Member: "Practitioner/dossierhouder-1", Role: Dossierhouder, Period: Period{Start: "2026-01-01"}},
			{Member: "RelatedPerson/anna", Role: ParentWithAuthority},
			{Member: "RelatedPerson/bram", Role: ParentWithAuthority},
			{Member: "Patient/sara", Role: Child},
			{Member: "Practitioner/logopedist-1", Role: SpeechTherapist, OnBehalfOf: "Organization/logopedie-west", Period: Period{Start: "2026-02-01", End: "2026-12-31"}},
			{Member: "Organization/school-1", Role: SchoolSystem},
		},
	}
	grant := Grant{
		ID: "toe-1", Status: ConsentProposed, Patient: "Patient/sara",
		ConsentedBy: []string{"Patient/sara", "RelatedPerson/anna"}, DateTime: "2026-02-01T12:00:00+01:00",
		Grantee: "Practitioner/logopedist-1", Sections: []Section{SectionChildPlan, SectionEvaluations},
		Items: []string{"CarePlan/afs-1"}, Interactions: []Interaction{Read, WriteOwnNotes},
		Period: Period{Start: "2026-02-01", End: "2026-12-31"}, Source: "DocumentReference/doc-toestemming",
	}
	change := ChangeRequest{
		ID: "wv-1", Status: TaskCompleted, Decision: DecisionRejected, Reason: "Eerst met beide ouders bespreken",
		Focus: "CarePlan/afs-1", For: "Patient/sara", AuthoredOn: "2026-02-01T12:00:00+01:00",
		Requester: "RelatedPerson/anna", Owner: "Practitioner/dossierhouder-1",
	}
	pending := ChangeRequest{ID: "wv-2", Status: TaskRequested, Focus: "Consent/toe-1", Requester: "RelatedPerson/anna"}

	return []roundTrip{
		{"parenting plan", plan.ToFHIR, func(b []byte) (any, error) { return PlanFromFHIR(b) }, plan, SectionParentingPlan,
			[]string{`"intent":"plan"`, `"code":"parenting-plan"`, `"replaces":[{"reference":"CarePlan/pp-0"}]`}},
		{"vop", vop.ToFHIR, func(b []byte) (any, error) { return PlanFromFHIR(b) }, vop, SectionParentingPlan,
			[]string{`"partOf":[{"reference":"CarePlan/pp-1"}]`, `"status":"draft"`}},
		{"child plan", childPlan.ToFHIR, func(b []byte) (any, error) { return PlanFromFHIR(b) }, childPlan, SectionChildPlan, nil},
		{"development plan", devPlan.ToFHIR, func(b []byte) (any, error) { return PlanFromFHIR(b) }, devPlan, SectionDevelopmentPlan, nil},
		{"agreement", agreement.ToFHIR, func(b []byte) (any, error) { return AgreementFromFHIR(b) }, agreement, SectionChildPlan,
			[]string{`"code":"agreement"`, `"code":"child-plan"`, `"partOf":[{"reference":"CarePlan/kp-1"}]`}},
		{"goal", goal.ToFHIR, func(b []byte) (any, error) { return GoalFromFHIR(b) }, goal, SectionChildPlan,
			[]string{`"lifecycleStatus":"proposed"`, `"description":{"text":"Sara leest 15 minuten per dag"}`, `"target":[{"dueDate":"2026-07-01"}]`}},
		{"help question", help.ToFHIR, func(b []byte) (any, error) { return HelpQuestionFromFHIR(b) }, help, SectionChildPlan,
			[]string{`"code":"help-question"`, `"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]}`}},
		{"note", note.ToFHIR, func(b []byte) (any, error) { return NoteFromFHIR(b) }, note, SectionChildPlan,
			[]string{`"about":[{"reference":"CarePlan/afs-1"}]`, `"code":"note"`}},
		{"diary entry", diary.ToFHIR, func(b []byte) (any, error) { return DiaryEntryFromFHIR(b) }, diary, SectionDiary, nil},
		{"message", msg.ToFHIR, func(b []byte) (any, error) { return MessageFromFHIR(b) }, msg, SectionMessages,
			[]string{`"inResponseTo":[{"reference":"Communication/ber-0"}]`}},
		{"appointment", appt.ToFHIR, func(b []byte) (any, error) { return AppointmentFromFHIR(b) }, appt, SectionAgenda, nil},
		{"proposed appointment", proposedAppt.ToFHIR, func(b []byte) (any, error) { return AppointmentFromFHIR(b) }, proposedAppt, SectionAgenda, nil},
		{"evaluation", eval.ToFHIR, func(b []byte) (any, error) { return EvaluationFromFHIR(b) }, eval, SectionEvaluations,
			[]string{`"basedOn":[{"reference":"CarePlan/afs-1"}]`, `"valueInteger":8`, `"valueBoolean":true`}},
		{"team", team.ToFHIR, func(b []byte) (any, error) { return TeamFromFHIR(b) }, team, SectionTeam,
			[]string{`"onBehalfOf":{"reference":"Organization/logopedie-west"}`, `"code":"speech-therapist"`}},
		{"grant", grant.ToFHIR, func(b []byte) (any, error) { return GrantFromFHIR(b) }, grant, SectionTeam,
			[]string{`"code":"patient-privacy"`, `"code":"OPTIN"`, `"meaning":"dependents"`, `"code":"IRCP"`, `"type":"permit"`}},
		{"decided change request", change.ToFHIR, func(b []byte) (any, error) { return ChangeRequestFromFHIR(b) }, change, SectionChangeRequests,
			[]string{`"intent":"order"`, `"focus":{"reference":"CarePlan/afs-1"}`, `"businessStatus":{"coding":[{"system":"` + DecisionSystem + `","code":"rejected","display":"Afgewezen"}]}`}},
		{"pending change request", pending.ToFHIR, func(b []byte) (any, error) { return ChangeRequestFromFHIR(b) }, pending, SectionChangeRequests, nil},
	}
}

// TestRoundTrip converts each domain value to FHIR, checks that the result is
// valid R4 and in the expected section, and reads it back unchanged.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range roundTrips() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := tt.toFHIR()
			if err != nil {
				t.Fatalf("ToFHIR: %v", err)
			}
			validR4(t, b)
			for _, want := range tt.contains {
				if !strings.Contains(string(b), want) {
					t.Errorf("FHIR lacks %s:\n%s", want, b)
				}
			}
			typ, cats := categoriesOf(t, b)
			if got, ok := SectionOf(typ, cats); !ok || got != tt.section {
				t.Errorf("SectionOf = %q, %v; want %q", got, ok, tt.section)
			}
			got, err := tt.fromFHIR(b)
			if err != nil {
				t.Fatalf("FromFHIR: %v\n%s", err, b)
			}
			if diff := cmp.Diff(tt.value, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDocumentRoundTrip checks the two resources of a document: both valid R4,
// pointing at each other, the bytes intact, and readable without the Binary.
func TestDocumentRoundTrip(t *testing.T) {
	t.Parallel()
	doc := Document{
		ID: "doc-1", BinaryID: "bin-1", Status: "current", Subject: "Patient/sara",
		Author: "RelatedPerson/anna", Date: "2026-03-01T10:00:00+01:00", Title: "verslag-logopedie.pdf",
		Description: "Verslag logopedie maart", ContentType: "application/pdf", Data: []byte("%PDF-1.7 ..."),
	}
	dr, bin, err := doc.ToFHIR()
	if err != nil {
		t.Fatalf("ToFHIR: %v", err)
	}
	validR4(t, dr)
	validR4(t, bin)
	for _, want := range []string{`"url":"Binary/bin-1"`, `"size":12`, `"hash":"`} {
		if !strings.Contains(string(dr), want) {
			t.Errorf("DocumentReference lacks %s:\n%s", want, dr)
		}
	}
	if !strings.Contains(string(bin), `"securityContext":{"reference":"DocumentReference/doc-1"}`) {
		t.Errorf("Binary lacks its security context:\n%s", bin)
	}
	if s, ok := SectionOf("DocumentReference", nil); !ok || s != SectionDocuments {
		t.Errorf("DocumentReference section = %q", s)
	}
	if s, ok := SectionOf("Binary", nil); !ok || s != SectionDocuments {
		t.Errorf("Binary section = %q", s)
	}

	got, err := DocumentFromFHIR(dr, bin)
	if err != nil {
		t.Fatalf("DocumentFromFHIR: %v", err)
	}
	if diff := cmp.Diff(doc, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	meta, err := DocumentFromFHIR(dr, nil)
	if err != nil {
		t.Fatalf("DocumentFromFHIR without Binary: %v", err)
	}
	want := doc
	want.Data = nil
	if diff := cmp.Diff(want, meta); diff != "" {
		t.Errorf("metadata only (-want +got):\n%s", diff)
	}

	tampered := strings.Replace(string(bin), `"data":"`, `"data":"QUJD`, 1)
	if _, err := DocumentFromFHIR(dr, []byte(tampered)); !fhir.IsKind(err, fhir.Invalid) {
		t.Errorf("tampered Binary: err = %v, want Invalid", err)
	}
	other := strings.Replace(string(bin), `"id":"bin-1"`, `"id":"bin-2"`, 1)
	if _, err := DocumentFromFHIR(dr, []byte(other)); !fhir.IsKind(err, fhir.Invalid) {
		t.Errorf("another Binary: err = %v, want Invalid", err)
	}
}

// TestToFHIRRefusesInvalid checks that domain values breaking a rule are
// refused with an Invalid error whose issue points at the element.
func TestToFHIRRefusesInvalid(t *testing.T) {
	t.Parallel()
	okPlan := Plan{Kind: ChildPlan, Status: PlanDraft, Subject: "Patient/sara"}
	okAgreement := Agreement{Plan: "CarePlan/kp-1", PlanKind: ChildPlan, Status: PlanDraft, Title: "x", Subject: "Patient/sara"}
	okGrant := Grant{Status: ConsentProposed, Patient: "Patient/sara", Grantee: "Practitioner/p", Sections: []Section{SectionDiary}, Interactions: []Interaction{Read}}
	tests := []struct {
		name string
		to   func() ([]byte, error)
		expr string
	}{
		{"plan without subject", func() ([]byte, error) { p := okPlan; p.Subject = ""; return p.ToFHIR() }, "CarePlan.subject"},
		{"plan with agreement kind", func() ([]byte, error) { p := okPlan; p.Kind = AgreementCategory; return p.ToFHIR() }, "CarePlan.category"},
		{"plan with unknown status", func() ([]byte, error) { p := okPlan; p.Status = "approved"; return p.ToFHIR() }, "CarePlan.status"},
		{"child plan about a group", func() ([]byte, error) { p := okPlan; p.Subject = "Group/g"; return p.ToFHIR() }, "CarePlan.subject"},
		{"vop without parenting plan", func() ([]byte, error) {
			return Plan{Kind: VOP, Status: PlanDraft, Subject: "Group/g"}.ToFHIR()
		}, "CarePlan.partOf"},
		{"plan with bad id", func() ([]byte, error) { p := okPlan; p.ID = "a b"; return p.ToFHIR() }, "CarePlan.id"},
		{"plan ending before it starts", func() ([]byte, error) {
			p := okPlan
			p.Period = Period{Start: "2026-02-01", End: "2026-01-01"}
			return p.ToFHIR()
		}, "CarePlan.period"},
		{"plan with time without zone", func() ([]byte, error) {
			p := okPlan
			p.Period = Period{Start: "2026-02-01T10:00:00"}
			return p.ToFHIR()
		}, "CarePlan.period.start"},
		{"agreement without plan", func() ([]byte, error) { a := okAgreement; a.Plan = ""; return a.ToFHIR() }, "CarePlan.partOf"},
		{"agreement part of a goal", func() ([]byte, error) { a := okAgreement; a.Plan = "Goal/g"; return a.ToFHIR() }, "CarePlan.partOf"},
		{"agreement without plan kind", func() ([]byte, error) { a := okAgreement; a.PlanKind = ""; return a.ToFHIR() }, "CarePlan.category"},
		{"agreement without title", func() ([]byte, error) { a := okAgreement; a.Title = ""; return a.ToFHIR() }, "CarePlan.title"},
		{"goal without description", func() ([]byte, error) {
			return Goal{PlanKind: ChildPlan, Status: GoalProposed, Subject: "Patient/sara"}.ToFHIR()
		}, "Goal.description"},
		{"goal with unknown domain", func() ([]byte, error) {
			return Goal{PlanKind: ChildPlan, Domain: "happiness", Status: GoalProposed, Description: "x", Subject: "Patient/sara"}.ToFHIR()
		}, "Goal.category"},
		{"goal with dateTime target", func() ([]byte, error) {
			return Goal{PlanKind: ChildPlan, Status: GoalProposed, Description: "x", Subject: "Patient/sara", TargetDate: "2026-01-01T00:00:00Z"}.ToFHIR()
		}, "Goal.target.dueDate"},
		{"help question without question", func() ([]byte, error) {
			return HelpQuestion{PlanKind: ChildPlan, Status: "active", Subject: "Patient/sara"}.ToFHIR()
		}, "Condition.code.text"},
		{"note without agreement", func() ([]byte, error) {
			return Note{PlanKind: ChildPlan, Author: "RelatedPerson/anna", Text: "x"}.ToFHIR()
		}, "Communication.about"},
		{"note without plan kind", func() ([]byte, error) {
			return Note{About: "CarePlan/afs-1", Author: "RelatedPerson/anna", Text: "x"}.ToFHIR()
		}, "Communication.category"},
		{"diary entry without subject", func() ([]byte, error) {
			return DiaryEntry{Author: "RelatedPerson/anna", Text: "x"}.ToFHIR()
		}, "Communication.subject"},
		{"message without recipient", func() ([]byte, error) {
			return Message{Sender: "RelatedPerson/anna", Text: "x"}.ToFHIR()
		}, "Communication.recipient"},
		{"message from a group", func() ([]byte, error) {
			return Message{Sender: "Group/g", Recipients: []string{"RelatedPerson/bram"}, Text: "x"}.ToFHIR()
		}, "Communication.sender"},
		{"booked appointment without time", func() ([]byte, error) {
			return Appointment{Status: "booked", Participants: []Participant{{Actor: "Patient/sara", Status: "accepted"}}}.ToFHIR()
		}, "Appointment.start"},
		{"appointment without participants", func() ([]byte, error) {
			return Appointment{Status: "proposed"}.ToFHIR()
		}, "Appointment.participant"},
		{"appointment with local time", func() ([]byte, error) {
			return Appointment{Status: "booked", Start: "2026-03-10T15:00:00", End: "2026-03-10T16:00:00Z", Participants: []Participant{{Actor: "Patient/sara", Status: "accepted"}}}.ToFHIR()
		}, "Appointment.start"},
		{"document without binary id", func() ([]byte, error) {
			_, _, err := Document{ID: "d", Status: "current", ContentType: "text/plain"}.ToFHIR()
			return nil, err
		}, "Binary.id"},
		{"document with bad content type", func() ([]byte, error) {
			_, _, err := Document{ID: "d", BinaryID: "b", Status: "current", ContentType: "pdf"}.ToFHIR()
			return nil, err
		}, "DocumentReference.content.attachment.contentType"},
		{"evaluation without agreement", func() ([]byte, error) {
			return Evaluation{Status: "completed"}.ToFHIR()
		}, "QuestionnaireResponse.basedOn"},
		{"evaluation answer with two values", func() ([]byte, error) {
			return Evaluation{Status: "completed", BasedOn: "CarePlan/afs-1", Items: []EvaluationItem{{LinkID: "q", Answers: []EvaluationAnswer{{String: "x", Integer: intp(1)}}}}}.ToFHIR()
		}, "QuestionnaireResponse.item[0].answer[0]"},
		{"team with unknown role", func() ([]byte, error) {
			return Team{Status: "active", Subject: "Patient/sara", Members: []TeamMember{{Member: "Practitioner/p", Role: "nanny"}}}.ToFHIR()
		}, "CareTeam.participant[0].role"},
		{"dossierhouder as related person", func() ([]byte, error) {
			return Team{Status: "active", Subject: "Patient/sara", Members: []TeamMember{{Member: "RelatedPerson/x", Role: Dossierhouder}}}.ToFHIR()
		}, "CareTeam.participant[0].member"},
		{"onBehalfOf for a related person", func() ([]byte, error) {
			return Team{Status: "active", Subject: "Patient/sara", Members: []TeamMember{{Member: "RelatedPerson/x", Role: Coach, OnBehalfOf: "Organization/o"}}}.ToFHIR()
		}, "CareTeam.participant[0].onBehalfOf"},
		{"grant of approve", func() ([]byte, error) { g := okGrant; g.Interactions = []Interaction{Read, Approve}; return g.ToFHIR() }, "Consent.provision.action[1]"},
		{"grant of nothing", func() ([]byte, error) { g := okGrant; g.Sections = nil; return g.ToFHIR() }, "Consent.provision"},
		{"grant of unknown section", func() ([]byte, error) { g := okGrant; g.Sections = []Section{"everything"}; return g.ToFHIR() }, "Consent.provision.code[0]"},
		{"grant of a section twice", func() ([]byte, error) {
			g := okGrant
			g.Sections = []Section{SectionDiary, SectionDiary}
			return g.ToFHIR()
		}, "Consent.provision.code[1]"},
		{"grant without child", func() ([]byte, error) { g := okGrant; g.Patient = ""; return g.ToFHIR() }, "Consent.patient"},
		{"grant without interactions", func() ([]byte, error) { g := okGrant; g.Interactions = nil; return g.ToFHIR() }, "Consent.provision.action"},
		{"decision on a pending request", func() ([]byte, error) {
			return ChangeRequest{Status: TaskRequested, Decision: DecisionApproved, Focus: "CarePlan/x"}.ToFHIR()
		}, "Task.businessStatus"},
		{"completed request without decision", func() ([]byte, error) {
			return ChangeRequest{Status: TaskCompleted, Focus: "CarePlan/x"}.ToFHIR()
		}, "Task.businessStatus"},
		{"change request about a diary entry", func() ([]byte, error) {
			return ChangeRequest{Status: TaskRequested, Focus: "Communication/x"}.ToFHIR()
		}, "Task.focus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.to()
			assertInvalidAt(t, err, tt.expr)
		})
	}
}

// assertInvalidAt fails unless err is an Invalid *fhir.Error with an issue at
// expr.
func assertInvalidAt(tb testing.TB, err error, expr string) {
	tb.Helper()
	if !fhir.IsKind(err, fhir.Invalid) {
		tb.Fatalf("err = %v, want kind Invalid", err)
	}
	if !strings.HasPrefix(err.Error(), "mapping: ") {
		tb.Errorf("error %q does not say where it comes from", err)
	}
	var fe *fhir.Error
	if !errors.As(err, &fe) {
		tb.Fatalf("err = %T, want *fhir.Error in its chain", err)
	}
	for _, is := range fe.Issues {
		for _, e := range is.Expression {
			if e == expr {
				return
			}
		}
	}
	tb.Errorf("no issue at %s: %v", expr, err)
}

// TestFromFHIRRefuses checks that resources which are not the domain concept,
// or break its rules, are refused with an Invalid error at the element.
func TestFromFHIRRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		from func([]byte) error
		in   string
		expr string
	}{
		{"plan from an agreement", planFrom,
			`{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/sara"},"category":[{"coding":[{"system":"` + PlanCategorySystem + `","code":"agreement"}]},{"coding":[{"system":"` + PlanCategorySystem + `","code":"child-plan"}]}]}`,
			"CarePlan.category"},
		{"plan without kind", planFrom,
			`{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/sara"}}`,
			"CarePlan.category"},
		{"plan with two kinds", planFrom,
			`{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/sara"},"category":[{"coding":[{"system":"` + PlanCategorySystem + `","code":"child-plan"},{"system":"` + PlanCategorySystem + `","code":"development-plan"}]}]}`,
			"CarePlan.category"},
		{"plan with intent proposal", planFrom,
			`{"resourceType":"CarePlan","status":"draft","intent":"proposal","subject":{"reference":"Patient/sara"},"category":[{"coding":[{"system":"` + PlanCategorySystem + `","code":"child-plan"}]}]}`,
			"CarePlan.intent"},
		{"plan part of two plans", planFrom,
			`{"resourceType":"CarePlan","status":"draft","intent":"plan","subject":{"reference":"Patient/sara"},"partOf":[{"reference":"CarePlan/a"},{"reference":"CarePlan/b"}],"category":[{"coding":[{"system":"` + PlanCategorySystem + `","code":"child-plan"}]}]}`,
			"CarePlan.partOf"},
		{"plan that is a Goal", planFrom, `{"resourceType":"Goal"}`, "CarePlan"},
		{"plan that is not JSON", planFrom, `{"resourceType":`, "CarePlan"},
		{"agreement from a plan", agreementFrom,
			`{"resourceType":"CarePlan","status":"active","intent":"plan","title":"x","partOf":[{"reference":"CarePlan/kp"}],"subject":{"reference":"Patient/sara"},"category":[{"coding":[{"system":"` + PlanCategorySystem + `","code":"child-plan"}]}]}`,
			"CarePlan.category"},
		{"help question from another condition", helpFrom,
			`{"resourceType":"Condition","clinicalStatus":{"coding":[{"system":"` + ConditionClinicalSystem + `","code":"active"}]},"code":{"text":"x"},"subject":{"reference":"Patient/sara"},"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":"problem-list-item"}]}]}`,
			"Condition.category"},
		{"note that is a diary entry", noteFrom,
			`{"resourceType":"Communication","status":"completed","about":[{"reference":"CarePlan/afs"}],"sender":{"reference":"RelatedPerson/anna"},"payload":[{"contentString":"x"}],"category":[{"coding":[{"system":"` + CommunicationCategorySystem + `","code":"diary"}]},{"coding":[{"system":"` + PlanCategorySystem + `","code":"child-plan"}]}]}`,
			"Communication.category"},
		{"diary entry with two texts", diaryFrom,
			`{"resourceType":"Communication","status":"completed","subject":{"reference":"Patient/sara"},"sender":{"reference":"RelatedPerson/anna"},"payload":[{"contentString":"x"},{"contentString":"y"}],"category":[{"coding":[{"system":"` + CommunicationCategorySystem + `","code":"diary"}]}]}`,
			"Communication.payload"},
		{"grant with nested provisions", grantFrom,
			`{"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"` + ConsentScopeSystem + `","code":"patient-privacy"}]},"category":[{"text":"x"}],"patient":{"reference":"Patient/sara"},"policyRule":{"text":"x"},"provision":{"type":"permit","actor":[{"role":{"text":"x"},"reference":{"reference":"Practitioner/p"}}],"action":[{"coding":[{"system":"` + InteractionSystem + `","code":"read"}]}],"code":[{"coding":[{"system":"` + SectionSystem + `","code":"diary"}]}],"provision":[{"type":"deny"}]}}`,
			"Consent.provision.provision"},
		{"grant that denies", grantFrom,
			`{"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"` + ConsentScopeSystem + `","code":"patient-privacy"}]},"category":[{"text":"x"}],"patient":{"reference":"Patient/sara"},"policyRule":{"text":"x"},"provision":{"type":"deny","actor":[{"role":{"text":"x"},"reference":{"reference":"Practitioner/p"}}],"action":[{"coding":[{"system":"` + InteractionSystem + `","code":"read"}]}],"code":[{"coding":[{"system":"` + SectionSystem + `","code":"diary"}]}]}}`,
			"Consent.provision.type"},
		{"grant for research", grantFrom,
			`{"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"` + ConsentScopeSystem + `","code":"research"}]},"category":[{"text":"x"}],"patient":{"reference":"Patient/sara"},"policyRule":{"text":"x"},"provision":{"type":"permit","actor":[{"role":{"text":"x"},"reference":{"reference":"Practitioner/p"}}],"action":[{"coding":[{"system":"` + InteractionSystem + `","code":"read"}]}],"code":[{"coding":[{"system":"` + SectionSystem + `","code":"diary"}]}]}}`,
			"Consent.scope"},
		{"grant of an item as instance", grantFrom,
			`{"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"` + ConsentScopeSystem + `","code":"patient-privacy"}]},"category":[{"text":"x"}],"patient":{"reference":"Patient/sara"},"policyRule":{"text":"x"},"provision":{"type":"permit","actor":[{"role":{"text":"x"},"reference":{"reference":"Practitioner/p"}}],"action":[{"coding":[{"system":"` + InteractionSystem + `","code":"read"}]}],"data":[{"meaning":"instance","reference":{"reference":"CarePlan/afs"}}]}}`,
			"Consent.provision.data[0].meaning"},
		{"change request that is an invitation", changeFrom,
			`{"resourceType":"Task","status":"requested","intent":"order","code":{"coding":[{"system":"` + TaskCodeSystem + `","code":"invitation"}]},"focus":{"reference":"CarePlan/x"}}`,
			"Task.code"},
		{"team member without role", teamFrom,
			`{"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/sara"},"participant":[{"member":{"reference":"Practitioner/p"}}]}`,
			"CareTeam.participant[0].role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assertInvalidAt(t, tt.from([]byte(tt.in)), tt.expr)
		})
	}
}

func planFrom(b []byte) error      { _, err := PlanFromFHIR(b); return err }
func agreementFrom(b []byte) error { _, err := AgreementFromFHIR(b); return err }
func helpFrom(b []byte) error      { _, err := HelpQuestionFromFHIR(b); return err }
func noteFrom(b []byte) error      { _, err := NoteFromFHIR(b); return err }
func diaryFrom(b []byte) error     { _, err := DiaryEntryFromFHIR(b); return err }
func grantFrom(b []byte) error     { _, err := GrantFromFHIR(b); return err }
func changeFrom(b []byte) error    { _, err := ChangeRequestFromFHIR(b); return err }
func teamFrom(b []byte) error      { _, err := TeamFromFHIR(b); return err }

// TestCommunicationStatusDefault checks that an empty status is written as
// completed (a written note exists).
func TestCommunicationStatusDefault(t *testing.T) {
	t.Parallel()
	b, err := DiaryEntry{Subject: "Patient/sara", Author: "RelatedPerson/anna", Text: "x"}.ToFHIR()
	if err != nil {
		t.Fatal(err)
	}
	validR4(t, b)
	d, err := DiaryEntryFromFHIR(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "completed" {
		t.Errorf("Status = %q, want completed", d.Status)
	}
}

// TestGrantFits checks grants against the most each role may be granted.
func TestGrantFits(t *testing.T) {
	t.Parallel()
	g := func(sections []Section, in ...Interaction) Grant {
		return Grant{Sections: sections, Interactions: in}
	}
	tests := []struct {
		name  string
		grant Grant
		role  Role
		ok    bool
	}{
		{"speech therapist reads and notes on the child plan", g([]Section{SectionChildPlan}, Read, WriteOwnNotes), SpeechTherapist, true},
		{"teacher proposes in the child plan", g([]Section{SectionChildPlan}, Propose), Teacher, true},
		{"coach reads the access log", g([]Section{SectionAudit}, Read), Coach, false},
		{"mediator reads the contract", g([]Section{SectionContract}, Read), Mediator, false},
		{"school system writes observations", g([]Section{SectionObservations}, WriteOwnNotes), SchoolSystem, true},
		{"school system reads observations", g([]Section{SectionObservations}, Read), SchoolSystem, false},
		{"ECD reads the child plan", g([]Section{SectionChildPlan}, Read), ECDSystem, true},
		{"ECD reads the diary", g([]Section{SectionDiary}, Read), ECDSystem, false},
		{"auditor is granted content", g([]Section{SectionChildPlan}, Read), Auditor, false},
		{"child of 16 shares the diary with a parent", g([]Section{SectionDiary}, Read), ParentWithAuthority, true},
		{"parent without authority reads the child plan", g([]Section{SectionChildPlan}, Read), ParentWithoutAuthority, true},
		{"parent without authority proposes", g([]Section{SectionChildPlan}, Propose), ParentWithoutAuthority, false},
		{"unknown role", g([]Section{SectionDiary}, Read), "neighbour", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.grant.Fits(tt.role)
			if (err == nil) != tt.ok {
				t.Errorf("Fits(%s) = %v, want ok %v", tt.role, err, tt.ok)
			}
			if err != nil && !fhir.IsKind(err, fhir.Invalid) {
				t.Errorf("Fits error kind = %v, want Invalid", fhir.KindOf(err))
			}
		})
	}
}

func TestMembersWithRole(t *testing.T) {
	t.Parallel()
	team := Team{Members: []TeamMember{
		{Member: "Practitioner/d", Role: Dossierhouder},
		{Member: "RelatedPerson/a", Role: ParentWithAuthority},
		{Member: "RelatedPerson/b", Role: ParentWithAuthority},
	}}
	got := team.MembersWithRole(ParentWithAuthority)
	if len(got) != 2 || got[0].Member != "RelatedPerson/a" || got[1].Member != "RelatedPerson/b" {
		t.Errorf("MembersWithRole = %v", got)
	}
	if got := team.MembersWithRole(Teacher); len(got) != 0 {
		t.Errorf("MembersWithRole(teacher) = %v", got)
	}
}

// TestValidatorIsStrict guards the validity checks above: the validating
// unmarshaller must refuse resources that lack required elements or use
// unknown codes, or "valid R4" would prove nothing.
func TestValidatorIsStrict(t *testing.T) {
	t.Parallel()
	unmarshallerOnce.Do(func() {
		unmarshaller, unmarshallerErr = jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	})
	if unmarshallerErr != nil {
		t.Fatal(unmarshallerErr)
	}
	for _, in := range []string{
		`{"resourceType":"CarePlan","status":"active","subject":{"reference":"Patient/p"}}`,                   // no intent
		`{"resourceType":"CarePlan","status":"approved","intent":"plan","subject":{"reference":"Patient/p"}}`, // unknown status
		`{"resourceType":"Goal","lifecycleStatus":"active","subject":{"reference":"Patient/p"}}`,              // no description
		`{"resourceType":"Consent","status":"active","scope":{"text":"x"}}`,                                   // no category
		`{"resourceType":"Task","status":"requested"}`,                                                        // no intent
		`{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Goal/g"}}`,      // wrong reference type
	} {
		if _, err := unmarshaller.Unmarshal([]byte(in)); err == nil {
			t.Errorf("accepted %s", in)
		}
	}
}
