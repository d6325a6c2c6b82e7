package mapping

import (
	"fmt"
	"strings"
)

// careTeam is the JSON of the CareTeam elements a team uses, in R4 order.
type careTeam struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id,omitempty"`
	Status       string            `json:"status,omitempty"`
	Name         string            `json:"name,omitempty"`
	Subject      reference         `json:"subject,omitzero"`
	Participant  []teamParticipant `json:"participant,omitempty"`
}

type teamParticipant struct {
	Role       []codeableConcept `json:"role,omitempty"`
	Member     reference         `json:"member"`
	OnBehalfOf reference         `json:"onBehalfOf,omitzero"`
	Period     Period            `json:"period,omitzero"`
}

// Team is the team around a child: everyone involved, each with their role
// and the period they take part. It is carried by one CareTeam per child. The
// dossierhouder is a member of every team and is the only one who writes it:
// others propose members with an invitation Task (see NeedsApproval).
// Membership gives a helper nothing by itself; what they may see comes from
// the Consents (grants).
type Team struct {
	ID      string       // logical id; empty for a resource still to be created
	Status  string       // CareTeam.status: proposed, active, suspended, inactive or entered-in-error
	Name    string       // optional
	Subject string       // Patient/… of the child
	Members []TeamMember // the participants
}

// TeamMember is one participant of a team: who, in which role, for whom, and
// from when to when.
type TeamMember struct {
	Member     string // who: a reference of one of the role's Actors types
	Role       Role
	OnBehalfOf string // Organization/… the member works for; only for a Practitioner
	Period     Period // when the membership holds; open ends are open
}

func (t Team) check(c *checker) {
	c.id("CareTeam.id", t.ID)
	c.oneOf("CareTeam.status", t.Status, careTeamStatuses)
	c.required("CareTeam.subject", t.Subject)
	c.ref("CareTeam.subject", t.Subject, "Patient")
	for i, m := range t.Members {
		expr := fmt.Sprintf("CareTeam.participant[%d]", i)
		c.required(expr+".member", m.Member)
		info, ok := m.Role.Info()
		if !ok {
			c.addf(expr+".role", "%q is not a team role", m.Role)
			c.ref(expr+".member", m.Member)
		} else {
			c.ref(expr+".member", m.Member, info.Actors...)
		}
		c.ref(expr+".onBehalfOf", m.OnBehalfOf, "Organization")
		if m.OnBehalfOf != "" && refType(m.Member) != "Practitioner" && !strings.HasPrefix(m.Member, "urn:uuid:") {
			c.addf(expr+".onBehalfOf", "only a Practitioner member acts on behalf of an organisation (ctm-1)")
		}
		c.period(expr+".period", m.Period)
	}
}

// ToFHIR returns t as a CareTeam in FHIR R4 JSON. It returns an error of kind
// fhir.Invalid when t breaks a domain rule (no child, unknown status or role,
// a member whose resource type cannot hold the role, onBehalfOf for a
// non-Practitioner, malformed periods or references).
func (t Team) ToFHIR() ([]byte, error) {
	out := careTeam{ResourceType: "CareTeam", ID: t.ID, Status: t.Status, Name: t.Name, Subject: ref(t.Subject)}
	for _, m := range t.Members {
		out.Participant = append(out.Participant, teamParticipant{
			Role:       concepts(m.Role.Coding()),
			Member:     ref(m.Member),
			OnBehalfOf: ref(m.OnBehalfOf),
			Period:     m.Period,
		})
	}
	return produce("team to FHIR", t.check, out)
}

// TeamFromFHIR reads a team from a CareTeam in FHIR R4 JSON. Elements the
// domain does not carry are ignored. It returns an error of kind
// fhir.Invalid when b is not a CareTeam, a participant has not exactly one
// role of RoleSystem, or it breaks a rule of Team.ToFHIR.
func TeamFromFHIR(b []byte) (Team, error) {
	var in careTeam
	if err := decode(b, "CareTeam", &in); err != nil {
		return Team{}, wrap("team from FHIR", err)
	}
	var c checker
	t := Team{ID: in.ID, Status: in.Status, Name: in.Name, Subject: in.Subject.Reference}
	for i, p := range in.Participant {
		expr := fmt.Sprintf("CareTeam.participant[%d].role", i)
		role := codeIn(&c, expr, RoleSystem, codings(p.Role))
		if role == "" {
			c.addf(expr, "no role of %s", RoleSystem)
		}
		t.Members = append(t.Members, TeamMember{
			Member:     p.Member.Reference,
			Role:       Role(role),
			OnBehalfOf: p.OnBehalfOf.Reference,
			Period:     p.Period,
		})
	}
	return checked("team from FHIR", &c, t, Team.check)
}

// MembersWithRole returns the members of t that have role r, in order.
func (t Team) MembersWithRole(r Role) []TeamMember {
	var out []TeamMember
	for _, m := range t.Members {
		if m.Role == r {
			out = append(out, m)
		}
	}
	return out
}
