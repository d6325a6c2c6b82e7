package mapping

import "slices"

// This file holds the professionals around a family, all in the team
// section: a professional (Practitioner) such as the dossierhouder, a
// teacher or a youth-care worker; the role they hold for an organisation
// (PractitionerRole); and the organisation (Organization).

// practitioner is the JSON of the Practitioner elements a professional uses.
type practitioner struct {
	ResourceType  string              `json:"resourceType"`
	ID            string              `json:"id,omitempty"`
	Identifier    []Identifier        `json:"identifier,omitempty"`
	Active        *bool               `json:"active,omitempty"`
	Name          []humanName         `json:"name,omitempty"`
	Gender        string              `json:"gender,omitempty"`
	Qualification []qualificationJSON `json:"qualification,omitempty"`
}

type qualificationJSON struct {
	Code codeableConcept `json:"code"`
}

// Professional is a professional around a family: the dossierhouder, an
// invited helper (teacher, youth-care worker, mediator, …) or someone at an
// external system's organisation. It is carried by a Practitioner. What the
// professional does for a family is their CareTeam role; what they may see
// comes from Consents.
type Professional struct {
	ID            string // logical id; empty for a resource still to be created
	Identifiers   []Identifier
	Name          Name
	Gender        string // male, female, other or unknown; optional
	Qualification string // profession as text, for example "Leerkracht groep 6"; optional
}

func (p Professional) check(c *checker) {
	c.id("Practitioner.id", p.ID)
	checkIdentifiers(c, "Practitioner.identifier", p.Identifiers)
	p.Name.check(c, "Practitioner.name")
	if p.Gender != "" {
		c.oneOf("Practitioner.gender", p.Gender, genders)
	}
}

// ToFHIR returns p as a Practitioner in FHIR R4 JSON. It returns an error of
// kind fhir.Invalid when p breaks a domain rule (no family name, unknown
// gender, malformed identifiers).
func (p Professional) ToFHIR() ([]byte, error) {
	active := true
	out := practitioner{
		ResourceType: "Practitioner",
		ID:           p.ID,
		Identifier:   p.Identifiers,
		Active:       &active,
		Name:         p.Name.json(),
		Gender:       p.Gender,
	}
	if p.Qualification != "" {
		out.Qualification = []qualificationJSON{{Code: codeableConcept{Text: p.Qualification}}}
	}
	return produce("professional to FHIR", p.check, out)
}

// ProfessionalFromFHIR reads a professional from a Practitioner in FHIR R4
// JSON. Elements the domain does not carry are ignored. It returns an error
// of kind fhir.Invalid when b is not a Practitioner, has more than one
// qualification, or breaks a rule of Professional.ToFHIR.
func ProfessionalFromFHIR(b []byte) (Professional, error) {
	var in practitioner
	if err := decode(b, "Practitioner", &in); err != nil {
		return Professional{}, wrap("professional from FHIR", err)
	}
	var c checker
	var quals []string
	for _, q := range in.Qualification {
		quals = append(quals, q.Code.Text)
	}
	p := Professional{
		ID:            in.ID,
		Identifiers:   in.Identifier,
		Name:          nameIn(in.Name),
		Gender:        in.Gender,
		Qualification: one(&c, "Practitioner.qualification", quals),
	}
	return checked("professional from FHIR", &c, p, Professional.check)
}

// practitionerRole is the JSON of the PractitionerRole elements a
// professional role uses.
type practitionerRole struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id,omitempty"`
	Active       *bool             `json:"active,omitempty"`
	Period       Period            `json:"period,omitzero"`
	Practitioner reference         `json:"practitioner"`
	Organization reference         `json:"organization,omitzero"`
	Code         []codeableConcept `json:"code,omitempty"`
}

// ProfessionalRole is the role a professional holds for an organisation,
// for example the dossierhouder of a foundation. It is carried by a
// PractitionerRole whose code is the team role (RoleSystem); a CareTeam or
// a Consent may name the PractitionerRole instead of the Practitioner when
// the organisation matters.
type ProfessionalRole struct {
	ID           string // logical id; empty for a resource still to be created
	Professional string // Practitioner/…; required
	Organization string // Organization/…; optional
	Role         Role   // the team role held; required
	Period       Period // when the role is held; open ends are open
}

func (r ProfessionalRole) check(c *checker) {
	c.id("PractitionerRole.id", r.ID)
	c.required("PractitionerRole.practitioner", r.Professional)
	c.ref("PractitionerRole.practitioner", r.Professional, "Practitioner")
	c.ref("PractitionerRole.organization", r.Organization, "Organization")
	switch info, ok := r.Role.Info(); {
	case r.Role == "":
		c.required("PractitionerRole.code", "")
	case !ok:
		c.addf("PractitionerRole.code", "%q is not a team role", r.Role)
	default:
		if !slices.Contains(info.Actors, "PractitionerRole") {
			c.addf("PractitionerRole.code", "the role %s is not held by a professional", r.Role)
		}
	}
	c.period("PractitionerRole.period", r.Period)
}

// ToFHIR returns r as a PractitionerRole in FHIR R4 JSON. It returns an
// error of kind fhir.Invalid when r breaks a domain rule (no professional or
// role, a role no professional holds, malformed period or references).
func (r ProfessionalRole) ToFHIR() ([]byte, error) {
	active := true
	return produce("professional role to FHIR", r.check, practitionerRole{
		ResourceType: "PractitionerRole",
		ID:           r.ID,
		Active:       &active,
		Period:       r.Period,
		Practitioner: ref(r.Professional),
		Organization: ref(r.Organization),
		Code:         concepts(r.Role.Coding()),
	})
}

// ProfessionalRoleFromFHIR reads a professional role from a PractitionerRole
// in FHIR R4 JSON. Elements the domain does not carry are ignored. It
// returns an error of kind fhir.Invalid when b is not a PractitionerRole
// with one code of RoleSystem, or breaks a rule of ProfessionalRole.ToFHIR.
func ProfessionalRoleFromFHIR(b []byte) (ProfessionalRole, error) {
	var in practitionerRole
	if err := decode(b, "PractitionerRole", &in); err != nil {
		return ProfessionalRole{}, wrap("professional role from FHIR", err)
	}
	var c checker
	r := ProfessionalRole{
		ID:           in.ID,
		Professional: in.Practitioner.Reference,
		Organization: in.Organization.Reference,
		Role:         Role(codeIn(&c, "PractitionerRole.code", RoleSystem, codings(in.Code))),
		Period:       in.Period,
	}
	return checked("professional role from FHIR", &c, r, ProfessionalRole.check)
}

// organization is the JSON of the Organization elements the domain uses.
type organization struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id,omitempty"`
	Identifier   []Identifier      `json:"identifier,omitempty"`
	Active       *bool             `json:"active,omitempty"`
	Type         []codeableConcept `json:"type,omitempty"`
	Name         string            `json:"name,omitempty"`
}

// Organization is an organisation around a family: a school, a youth-care
// team, the dossierhouder's foundation, a childcare centre. It is carried by
// an Organization.
type Organization struct {
	ID          string // logical id; empty for a resource still to be created
	Identifiers []Identifier
	Name        string // required (R4 org-1 asks for a name or an identifier; the domain shows names)
	Kind        string // what kind of organisation, as text ("Basisschool", "Jeugdteam"); optional
}

func (o Organization) check(c *checker) {
	c.id("Organization.id", o.ID)
	checkIdentifiers(c, "Organization.identifier", o.Identifiers)
	c.required("Organization.name", o.Name)
}

// ToFHIR returns o as an Organization in FHIR R4 JSON. It returns an error
// of kind fhir.Invalid when o has no name or malformed identifiers.
func (o Organization) ToFHIR() ([]byte, error) {
	active := true
	out := organization{ResourceType: "Organization", ID: o.ID, Identifier: o.Identifiers, Active: &active, Name: o.Name}
	if o.Kind != "" {
		out.Type = []codeableConcept{{Text: o.Kind}}
	}
	return produce("organization to FHIR", o.check, out)
}

// OrganizationFromFHIR reads an organisation from an Organization in FHIR
// R4 JSON. Elements the domain does not carry are ignored. It returns an
// error of kind fhir.Invalid when b is not an Organization, has more than
// one type, or has no name.
func OrganizationFromFHIR(b []byte) (Organization, error) {
	var in organization
	if err := decode(b, "Organization", &in); err != nil {
		return Organization{}, wrap("organization from FHIR", err)
	}
	var c checker
	var kinds []string
	for _, t := range in.Type {
		kinds = append(kinds, t.Text)
	}
	o := Organization{ID: in.ID, Identifiers: in.Identifier, Name: in.Name, Kind: one(&c, "Organization.type", kinds)}
	return checked("organization from FHIR", &c, o, Organization.check)
}
