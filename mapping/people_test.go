package mapping

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// peopleRoundTrips are the conversions of people.go, professional.go,
// observation.go and evaluationform.go, in the shape of roundTrips.
func peopleRoundTrips() []roundTrip {
	child := ChildDetails{
		ID: "sara", Identifiers: []Identifier{{System: "urn:example:child", Value: "123"}},
		Name: Name{Given: []string{"Sara"}, Family: "de Vries"}, Gender: "female", BirthDate: "2012-03-04",
	}
	parent := Parent{
		ID: "anna", Child: "Patient/sara", Relationship: RelMother,
		Name: Name{Given: []string{"Anna"}, Family: "Jansen"}, Gender: "female",
		Authority: &ParentalAuthority{Has: true, Source: "Centraal Gezagsregister", Verified: "2026-01-05"},
	}
	noAuthority := Parent{ID: "opa", Child: "Patient/sara", Relationship: RelGrandparent, Name: Name{Family: "Jansen"}}
	login := LoginIdentity{
		ID: "p-anna", Identifiers: []Identifier{{System: "https://idp.example/", Value: "sub-1"}},
		Name: Name{Given: []string{"Anna", "Maria"}, Family: "Jansen"}, Gender: "female",
		Links: []string{"RelatedPerson/anna", "RelatedPerson/anna-2"},
	}
	family := FamilyGroup{ID: "gezin", Name: "Gezin De Vries", Children: []string{"Patient/sara", "Patient/daan"}}
	pro := Professional{ID: "kees", Name: Name{Given: []string{"Kees"}, Family: "Bakker"}, Gender: "male", Qualification: "Leerkracht groep 6"}
	role := ProfessionalRole{ID: "dh-role", Professional: "Practitioner/marieke", Organization: "Organization/stichting", Role: Dossierhouder, Period: Period{Start: "2025-01-01"}}
	org := Organization{ID: "school", Identifiers: []Identifier{{System: "urn:example:brin", Value: "12AB"}}, Name: "OBS De Regenboog", Kind: "Basisschool"}
	schoolObs := Observation{
		ID: "obs-1", Status: "final", Category: SchoolCategory, Domain: DomainSocialInclusion, Topic: "Observatie in de klas", Subject: "Patient/sara",
		Effective: "2026-03-01T10:00:00+01:00", Observers: []string{"Practitioner/kees"}, Text: "Speelt goed samen.",
	}
	signal := Observation{ID: "sig-1", Status: "final", Category: SignalCategory, Topic: "Buitensluiting", Subject: "Patient/sara", Observers: []string{"Practitioner/kees"}, Text: "Speelt alleen."}
	progress := Observation{
		ID: "vg-1", Status: "final", Category: GoalProgressCategory, PlanKind: ChildPlan, Topic: "Voortgang lezen",
		Subject: "Patient/sara", Goal: "Goal/doel-1", Effective: "2026-04-01T16:00:00+02:00", Text: "Leest 10 minuten.",
	}
	form := EvaluationForm{
		ID: "eval-form", URL: "https://digitaleouder.nl/fhir/Questionnaire/evaluatie-afspraak", Name: "EvaluatieAfspraak",
		Title: "Evaluatie van een afspraak", Status: "active", Date: "2026-01-01T00:00:00+01:00",
		Questions: []FormQuestion{
			{LinkID: "intro", Text: "Kijk terug op de afspraak.", Type: "display"},
			{LinkID: "gelopen", Text: "Hoe is het gegaan?", Type: "text", Required: true},
			{LinkID: "cijfer", Text: "Cijfer", Type: "integer"},
		},
	}
	return []roundTrip{
		{"child", child.ToFHIR, func(b []byte) (any, error) { return ChildDetailsFromFHIR(b) }, child, SectionPersonalDetails,
			[]string{`"birthDate":"2012-03-04"`, `"text":"Sara de Vries"`}},
		{"parent with authority", parent.ToFHIR, func(b []byte) (any, error) { return ParentFromFHIR(b) }, parent, SectionPersonalDetails,
			[]string{`"url":"` + ParentalAuthorityExtension + `"`, `{"url":"hasAuthority","valueBoolean":true}`, `"patient":{"reference":"Patient/sara"}`, `"code":"MTH"`}},
		{"relative without authority recorded", noAuthority.ToFHIR, func(b []byte) (any, error) { return ParentFromFHIR(b) }, noAuthority, SectionPersonalDetails, nil},
		{"login identity", login.ToFHIR, func(b []byte) (any, error) { return LoginIdentityFromFHIR(b) }, login, SectionPersonalDetails,
			[]string{`"link":[{"target":{"reference":"RelatedPerson/anna"}}`}},
		{"family", family.ToFHIR, func(b []byte) (any, error) { return FamilyGroupFromFHIR(b) }, family, SectionPersonalDetails,
			[]string{`"type":"person","actual":true`, `"quantity":2`}},
		{"professional", pro.ToFHIR, func(b []byte) (any, error) { return ProfessionalFromFHIR(b) }, pro, SectionTeam, nil},
		{"professional role", role.ToFHIR, func(b []byte) (any, error) { return ProfessionalRoleFromFHIR(b) }, role, SectionTeam,
			[]string{`"code":"dossierhouder"`}},
		{"organization", org.ToFHIR, func(b []byte) (any, error) { return OrganizationFromFHIR(b) }, org, SectionTeam, nil},
		{"school observation", schoolObs.ToFHIR, func(b []byte) (any, error) { return ObservationFromFHIR(b) }, schoolObs, SectionObservations,
			[]string{`"valueString":"Speelt goed samen."`, `"code":"school"`}},
		{"signal", signal.ToFHIR, func(b []byte) (any, error) { return ObservationFromFHIR(b) }, signal, SectionSignals, nil},
		{"goal progress", progress.ToFHIR, func(b []byte) (any, error) { return ObservationFromFHIR(b) }, progress, SectionChildPlan,
			[]string{`"focus":[{"reference":"Goal/doel-1"}]`}},
		{"evaluation form", form.ToFHIR, func(b []byte) (any, error) { return EvaluationFormFromFHIR(b) }, form, SectionEvaluations,
			[]string{`"required":true`}},
	}
}

func TestPeopleRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range peopleRoundTrips() {
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
			var typ string
			var cats []Coding
			if strings.Contains(string(b), `"resourceType":"PractitionerRole"`) {
				typ = "PractitionerRole" // its code is a list, which categoriesOf does not read; it has no category
			} else {
				typ, cats = categoriesOf(t, b)
			}
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

func TestPeopleToFHIRRefusesInvalid(t *testing.T) {
	t.Parallel()
	name := Name{Given: []string{"A"}, Family: "B"}
	tests := []struct {
		name string
		to   func() ([]byte, error)
		expr string
	}{
		{"child without birth date", ChildDetails{Name: name}.ToFHIR, "Patient.birthDate"},
		{"child with a birth time", ChildDetails{Name: name, BirthDate: "2012-03-04T10:00:00Z"}.ToFHIR, "Patient.birthDate"},
		{"child without family name", ChildDetails{Name: Name{Given: []string{"A"}}, BirthDate: "2012"}.ToFHIR, "Patient.name.family"},
		{"child with unknown gender", ChildDetails{Name: name, BirthDate: "2012", Gender: "f"}.ToFHIR, "Patient.gender"},
		{"identifier without system", ChildDetails{Name: name, BirthDate: "2012", Identifiers: []Identifier{{Value: "1"}}}.ToFHIR, "Patient.identifier[0].system"},
		{"parent without child", Parent{Name: name}.ToFHIR, "RelatedPerson.patient"},
		{"parent of a group", Parent{Name: name, Child: "Group/g"}.ToFHIR, "RelatedPerson.patient"},
		{"parent with unknown relationship", Parent{Name: name, Child: "Patient/p", Relationship: "NEPHEW"}.ToFHIR, "RelatedPerson.relationship"},
		{"login linking a group", LoginIdentity{Name: name, Links: []string{"Group/g"}}.ToFHIR, "Person.link.target[0]"},
		{"family without children", FamilyGroup{Name: "x"}.ToFHIR, "Group.member"},
		{"family with a parent member", FamilyGroup{Children: []string{"RelatedPerson/r"}}.ToFHIR, "Group.member.entity[0]"},
		{"professional without name", Professional{}.ToFHIR, "Practitioner.name.family"},
		{"role without role", ProfessionalRole{Professional: "Practitioner/p"}.ToFHIR, "PractitionerRole.code"},
		{"role a professional cannot hold", ProfessionalRole{Professional: "Practitioner/p", Role: Child}.ToFHIR, "PractitionerRole.code"},
		{"role of a patient", ProfessionalRole{Professional: "Patient/p", Role: Teacher}.ToFHIR, "PractitionerRole.practitioner"},
		{"organization without name", Organization{}.ToFHIR, "Organization.name"},
		{"observation without topic", Observation{Status: "final", Subject: "Patient/p"}.ToFHIR, "Observation.code.text"},
		{"observation with unknown status", Observation{Status: "done", Topic: "x", Subject: "Patient/p"}.ToFHIR, "Observation.status"},
		{"progress without goal", Observation{Status: "final", Category: GoalProgressCategory, PlanKind: ChildPlan, Topic: "x", Subject: "Patient/p"}.ToFHIR, "Observation.focus"},
		{"progress without plan kind", Observation{Status: "final", Category: GoalProgressCategory, Goal: "Goal/g", Topic: "x", Subject: "Patient/p"}.ToFHIR, "Observation.category"},
		{"school observation with plan kind", Observation{Status: "final", PlanKind: ChildPlan, Topic: "x", Subject: "Patient/p"}.ToFHIR, "Observation.category"},
		{"form without url", EvaluationForm{Status: "active"}.ToFHIR, "Questionnaire.url"},
		{"form with lower-case name", EvaluationForm{URL: "u", Name: "evaluatie", Status: "active"}.ToFHIR, "Questionnaire.name"},
		{"form with a linkId twice", EvaluationForm{URL: "u", Status: "active", Questions: []FormQuestion{{LinkID: "a", Type: "string"}, {LinkID: "a", Type: "string"}}}.ToFHIR, "Questionnaire.item[1].linkId"},
		{"form with a group item", EvaluationForm{URL: "u", Status: "active", Questions: []FormQuestion{{LinkID: "a", Type: "group"}}}.ToFHIR, "Questionnaire.item[0].type"},
		{"form with a required display", EvaluationForm{URL: "u", Status: "active", Questions: []FormQuestion{{LinkID: "a", Type: "display", Required: true}}}.ToFHIR, "Questionnaire.item[0].required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.to()
			assertInvalidAt(t, err, tt.expr)
		})
	}
}

func TestPeopleFromFHIRRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		from func([]byte) error
		body string
		expr string
	}{
		{"authority without hasAuthority", func(b []byte) error { _, err := ParentFromFHIR(b); return err },
			`{"resourceType":"RelatedPerson","patient":{"reference":"Patient/p"},"name":[{"family":"B"}],"extension":[{"url":"` + ParentalAuthorityExtension + `","extension":[{"url":"source","valueString":"x"}]}]}`,
			"RelatedPerson.extension('" + ParentalAuthorityExtension + "')"},
		{"group of devices", func(b []byte) error { _, err := FamilyGroupFromFHIR(b); return err },
			`{"resourceType":"Group","type":"device","actual":true,"member":[{"entity":{"reference":"Patient/p"}}]}`, "Group.type"},
		{"two goals in focus", func(b []byte) error { _, err := ObservationFromFHIR(b); return err },
			`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p"},"focus":[{"reference":"Goal/a"},{"reference":"Goal/b"}]}`, "Observation.focus"},
		{"role with two team roles", func(b []byte) error { _, err := ProfessionalRoleFromFHIR(b); return err },
			`{"resourceType":"PractitionerRole","practitioner":{"reference":"Practitioner/p"},"code":[{"coding":[{"system":"` + RoleSystem + `","code":"teacher"}]},{"coding":[{"system":"` + RoleSystem + `","code":"coach"}]}]}`, "PractitionerRole.code"},
		{"not a Patient", func(b []byte) error { _, err := ChildDetailsFromFHIR(b); return err },
			`{"resourceType":"Person","name":[{"family":"B"}]}`, "Patient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assertInvalidAt(t, tt.from([]byte(tt.body)), tt.expr)
		})
	}
}
