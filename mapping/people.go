package mapping

import (
	"fmt"
	"strings"
)

// This file holds the people of a family situation and the family itself,
// all in the personal-details section: the child (Patient), a parent or
// carer of one child (RelatedPerson, with the parental-authority
// extension), the login identity that links a person's resources (Person)
// and the family (Group).

// RoleCodeSystem is HL7 v3 RoleCode, the system of RelatedPerson.relationship
// for a parent or carer.
const RoleCodeSystem = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

// Relationship is a code of RoleCodeSystem naming how a parent or carer is
// related to the child.
type Relationship string

// The relationships of parents and carers.
const (
	RelMother        Relationship = "MTH"
	RelFather        Relationship = "FTH"
	RelParent        Relationship = "PRN"    // parent, when mother or father does not fit
	RelStepMother    Relationship = "STPMTH" // in a blended family
	RelStepFather    Relationship = "STPFTH"
	RelStepParent    Relationship = "STPPRN"
	RelFosterParent  Relationship = "PRNFOST"
	RelGuardian      Relationship = "GUARD" // voogd
	RelGrandparent   Relationship = "GRPRN"
	RelOtherRelative Relationship = "EXT" // extended family member
)

// relationshipDisplays are the HL7 displays of the relationships.
var relationshipDisplays = map[Relationship]string{
	RelMother: "mother", RelFather: "father", RelParent: "parent", RelStepMother: "stepmother",
	RelStepFather: "stepfather", RelStepParent: "step parent", RelFosterParent: "foster parent",
	RelGuardian: "guardian", RelGrandparent: "grandparent", RelOtherRelative: "extended family member",
}

// Coding returns r as a Coding with its HL7 display.
func (r Relationship) Coding() Coding {
	return Coding{System: RoleCodeSystem, Code: string(r), Display: relationshipDisplays[r]}
}

// Valid reports whether r is one of the relationships above.
func (r Relationship) Valid() bool { _, ok := relationshipDisplays[r]; return ok }

// genders is the R4 administrative-gender value set.
var genders = []string{"male", "female", "other", "unknown"}

// Name is a person's name: given names and family name. It is carried by
// one HumanName with use "official" and a text that joins the parts, so a
// screen can show it without knowing Dutch name order.
type Name struct {
	Given  []string
	Family string // with its prefix ("de Vries", "van den Berg")
}

// Text returns the name as it is written: the given names, then the family
// name.
func (n Name) Text() string {
	return strings.Join(append(append([]string(nil), n.Given...), n.Family), " ")
}

func (n Name) check(c *checker, expr string) {
	c.required(expr+".family", n.Family)
	for i, g := range n.Given {
		c.required(fmt.Sprintf("%s.given[%d]", expr, i), g)
	}
}

type humanName struct {
	Use    string   `json:"use,omitempty"`
	Text   string   `json:"text,omitempty"`
	Family string   `json:"family,omitempty"`
	Given  []string `json:"given,omitempty"`
}

func (n Name) json() []humanName {
	return []humanName{{Use: "official", Text: n.Text(), Family: n.Family, Given: n.Given}}
}

// nameIn reads the name from HumanNames: the official one, else the first.
func nameIn(ns []humanName) Name {
	if len(ns) == 0 {
		return Name{}
	}
	pick := ns[0]
	for _, n := range ns {
		if n.Use == "official" {
			pick = n
			break
		}
	}
	return Name{Given: pick.Given, Family: pick.Family}
}

// Identifier is a business identifier: a value in a naming system.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

func checkIdentifiers(c *checker, expr string, ids []Identifier) {
	for i, id := range ids {
		e := fmt.Sprintf("%s[%d]", expr, i)
		c.required(e+".system", id.System)
		c.required(e+".value", id.Value)
		if strings.ContainsAny(id.System, " \t\r\n") {
			c.addf(e+".system", "%q is not a URI", id.System)
		}
	}
}

// patient is the JSON of the Patient elements a child uses, in R4 order.
type patient struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id,omitempty"`
	Identifier   []Identifier `json:"identifier,omitempty"`
	Active       *bool        `json:"active,omitempty"`
	Name         []humanName  `json:"name,omitempty"`
	Gender       string       `json:"gender,omitempty"`
	BirthDate    string       `json:"birthDate,omitempty"`
}

// ChildDetails is a child's personal details (persoonsgegevens): the child
// is a Patient, whose birthDate is required because the child's age decides
// who may do what (see AgeAt and RightsAt).
type ChildDetails struct {
	ID          string // logical id; empty for a resource still to be created
	Identifiers []Identifier
	Name        Name
	Gender      string // male, female, other or unknown; optional
	BirthDate   string // FHIR date (YYYY, YYYY-MM or YYYY-MM-DD); required
}

func (d ChildDetails) check(c *checker) {
	c.id("Patient.id", d.ID)
	checkIdentifiers(c, "Patient.identifier", d.Identifiers)
	d.Name.check(c, "Patient.name")
	if d.Gender != "" {
		c.oneOf("Patient.gender", d.Gender, genders)
	}
	c.required("Patient.birthDate", d.BirthDate)
	c.date("Patient.birthDate", d.BirthDate)
}

// ToFHIR returns d as a Patient in FHIR R4 JSON. It returns an error of kind
// fhir.Invalid when d breaks a domain rule (no family name or birth date,
// unknown gender, malformed date or identifiers).
func (d ChildDetails) ToFHIR() ([]byte, error) {
	active := true
	return produce("child to FHIR", d.check, patient{
		ResourceType: "Patient",
		ID:           d.ID,
		Identifier:   d.Identifiers,
		Active:       &active,
		Name:         d.Name.json(),
		Gender:       d.Gender,
		BirthDate:    d.BirthDate,
	})
}

// ChildDetailsFromFHIR reads a child's details from a Patient in FHIR R4
// JSON. Elements the domain does not carry are ignored. It returns an error
// of kind fhir.Invalid when b is not a Patient or breaks a rule of
// ChildDetails.ToFHIR.
func ChildDetailsFromFHIR(b []byte) (ChildDetails, error) {
	var in patient
	if err := decode(b, "Patient", &in); err != nil {
		return ChildDetails{}, wrap("child from FHIR", err)
	}
	var c checker
	d := ChildDetails{
		ID:          in.ID,
		Identifiers: in.Identifier,
		Name:        nameIn(in.Name),
		Gender:      in.Gender,
		BirthDate:   in.BirthDate,
	}
	return checked("child from FHIR", &c, d, ChildDetails.check)
}

// extension is the JSON of a FHIR extension with the value types the
// project's extensions use.
type extension struct {
	URL          string      `json:"url"`
	Extension    []extension `json:"extension,omitempty"`
	ValueBoolean *bool       `json:"valueBoolean,omitempty"`
	ValueString  string      `json:"valueString,omitempty"`
	ValueDate    string      `json:"valueDate,omitempty"`
	ValueCoding  *Coding     `json:"valueCoding,omitempty"`
}

// relatedPerson is the JSON of the RelatedPerson elements a parent uses.
type relatedPerson struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id,omitempty"`
	Extension    []extension       `json:"extension,omitempty"`
	Identifier   []Identifier      `json:"identifier,omitempty"`
	Active       *bool             `json:"active,omitempty"`
	Patient      reference         `json:"patient"`
	Relationship []codeableConcept `json:"relationship,omitempty"`
	Name         []humanName       `json:"name,omitempty"`
	Gender       string            `json:"gender,omitempty"`
}

// ParentalAuthority is what the parental-authority extension records:
// whether the parent has parental authority (ouderlijk gezag) over the child,
// where that was established and when the dossierhouder last verified it.
type ParentalAuthority struct {
	Has      bool
	Source   string // for example "Centraal Gezagsregister" or a court order; optional
	Verified string // FHIR date of the last verification; optional
}

// Parent is a parent or carer in relation to one child: a RelatedPerson
// whose patient is the child, with the relationship and, when known, the
// parental-authority extension. A parent of two children has two Parent
// values (two RelatedPersons), linked by one LoginIdentity.
type Parent struct {
	ID           string // logical id; empty for a resource still to be created
	Identifiers  []Identifier
	Child        string // Patient/… of the child (RelatedPerson.patient); required
	Relationship Relationship
	Name         Name
	Gender       string             // male, female, other or unknown; optional
	Authority    *ParentalAuthority // nil when not (yet) recorded
}

func (p Parent) check(c *checker) {
	c.id("RelatedPerson.id", p.ID)
	checkIdentifiers(c, "RelatedPerson.identifier", p.Identifiers)
	c.required("RelatedPerson.patient", p.Child)
	c.ref("RelatedPerson.patient", p.Child, "Patient")
	if p.Relationship != "" && !p.Relationship.Valid() {
		c.addf("RelatedPerson.relationship", "%q is not a parent or carer relationship of %s", p.Relationship, RoleCodeSystem)
	}
	p.Name.check(c, "RelatedPerson.name")
	if p.Gender != "" {
		c.oneOf("RelatedPerson.gender", p.Gender, genders)
	}
	if p.Authority != nil {
		c.date("RelatedPerson.extension('"+ParentalAuthorityExtension+"').extension('"+ParentalAuthorityVerified+"').value", p.Authority.Verified)
	}
}

// ToFHIR returns p as a RelatedPerson in FHIR R4 JSON. It returns an error
// of kind fhir.Invalid when p breaks a domain rule (no child or family name,
// unknown relationship or gender, malformed dates or references).
func (p Parent) ToFHIR() ([]byte, error) {
	active := true
	out := relatedPerson{
		ResourceType: "RelatedPerson",
		ID:           p.ID,
		Identifier:   p.Identifiers,
		Active:       &active,
		Patient:      ref(p.Child),
		Name:         p.Name.json(),
		Gender:       p.Gender,
	}
	if p.Relationship != "" {
		out.Relationship = concepts(p.Relationship.Coding())
	}
	if a := p.Authority; a != nil {
		has := a.Has
		ext := extension{URL: ParentalAuthorityExtension, Extension: []extension{{URL: ParentalAuthorityHas, ValueBoolean: &has}}}
		if a.Source != "" {
			ext.Extension = append(ext.Extension, extension{URL: ParentalAuthoritySource, ValueString: a.Source})
		}
		if a.Verified != "" {
			ext.Extension = append(ext.Extension, extension{URL: ParentalAuthorityVerified, ValueDate: a.Verified})
		}
		out.Extension = []extension{ext}
	}
	return produce("parent to FHIR", p.check, out)
}

// ParentFromFHIR reads a parent from a RelatedPerson in FHIR R4 JSON.
// Elements the domain does not carry are ignored. It returns an error of
// kind fhir.Invalid when b is not a RelatedPerson, has more than one
// relationship of RoleCodeSystem or parental-authority extension, the
// extension has no hasAuthority boolean, or it breaks a rule of
// Parent.ToFHIR.
func ParentFromFHIR(b []byte) (Parent, error) {
	var in relatedPerson
	if err := decode(b, "RelatedPerson", &in); err != nil {
		return Parent{}, wrap("parent from FHIR", err)
	}
	var c checker
	p := Parent{
		ID:           in.ID,
		Identifiers:  in.Identifier,
		Child:        in.Patient.Reference,
		Relationship: Relationship(codeIn(&c, "RelatedPerson.relationship", RoleCodeSystem, codings(in.Relationship))),
		Name:         nameIn(in.Name),
		Gender:       in.Gender,
	}
	for _, e := range in.Extension {
		if e.URL != ParentalAuthorityExtension {
			continue
		}
		if p.Authority != nil {
			c.addf("RelatedPerson.extension", "more than one %s extension", ParentalAuthorityExtension)
			break
		}
		a := &ParentalAuthority{}
		hasSet := false
		for _, sub := range e.Extension {
			switch sub.URL {
			case ParentalAuthorityHas:
				if sub.ValueBoolean != nil {
					a.Has, hasSet = *sub.ValueBoolean, true
				}
			case ParentalAuthoritySource:
				a.Source = sub.ValueString
				if a.Source == "" && sub.ValueCoding != nil {
					a.Source = sub.ValueCoding.Code
				}
			case ParentalAuthorityVerified:
				a.Verified = sub.ValueDate
			}
		}
		if !hasSet {
			c.addf("RelatedPerson.extension('"+ParentalAuthorityExtension+"')", "the extension has no %s boolean", ParentalAuthorityHas)
		}
		p.Authority = a
	}
	return checked("parent from FHIR", &c, p, Parent.check)
}

// person is the JSON of the Person elements a login identity uses.
type person struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id,omitempty"`
	Identifier   []Identifier `json:"identifier,omitempty"`
	Name         []humanName  `json:"name,omitempty"`
	Gender       string       `json:"gender,omitempty"`
	Active       *bool        `json:"active,omitempty"`
	Link         []personLink `json:"link,omitempty"`
}

type personLink struct {
	Target reference `json:"target"`
}

// personLinkTypes are the types Person.link.target allows.
var personLinkTypes = []string{"Patient", "Practitioner", "RelatedPerson", "Person"}

// LoginIdentity is the identity someone logs in as (SMART fhirUser): a
// Person that links the resources that are the same human being, such as a
// parent's RelatedPerson for each of their children (and their own Patient
// when they have a development plan). Upstream logins are bound to it by
// an identifier.
type LoginIdentity struct {
	ID          string // logical id; empty for a resource still to be created
	Identifiers []Identifier
	Name        Name
	Gender      string   // male, female, other or unknown; optional
	Links       []string // Patient/…, Practitioner/…, RelatedPerson/… or Person/… that are this person
}

func (l LoginIdentity) check(c *checker) {
	c.id("Person.id", l.ID)
	checkIdentifiers(c, "Person.identifier", l.Identifiers)
	l.Name.check(c, "Person.name")
	if l.Gender != "" {
		c.oneOf("Person.gender", l.Gender, genders)
	}
	c.refs("Person.link.target", l.Links, personLinkTypes...)
}

// ToFHIR returns l as a Person in FHIR R4 JSON. It returns an error of kind
// fhir.Invalid when l breaks a domain rule (no family name, unknown gender,
// malformed identifiers or links).
func (l LoginIdentity) ToFHIR() ([]byte, error) {
	active := true
	out := person{
		ResourceType: "Person",
		ID:           l.ID,
		Identifier:   l.Identifiers,
		Name:         l.Name.json(),
		Gender:       l.Gender,
		Active:       &active,
	}
	for _, t := range l.Links {
		out.Link = append(out.Link, personLink{Target: ref(t)})
	}
	return produce("login identity to FHIR", l.check, out)
}

// LoginIdentityFromFHIR reads a login identity from a Person in FHIR R4
// JSON. Elements the domain does not carry are ignored. It returns an error
// of kind fhir.Invalid when b is not a Person or breaks a rule of
// LoginIdentity.ToFHIR.
func LoginIdentityFromFHIR(b []byte) (LoginIdentity, error) {
	var in person
	if err := decode(b, "Person", &in); err != nil {
		return LoginIdentity{}, wrap("login identity from FHIR", err)
	}
	var c checker
	l := LoginIdentity{
		ID:          in.ID,
		Identifiers: in.Identifier,
		Name:        nameIn(in.Name),
		Gender:      in.Gender,
	}
	for _, k := range in.Link {
		l.Links = append(l.Links, k.Target.Reference)
	}
	return checked("login identity from FHIR", &c, l, LoginIdentity.check)
}

// group is the JSON of the Group elements a family uses.
type group struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Identifier   []Identifier  `json:"identifier,omitempty"`
	Active       *bool         `json:"active,omitempty"`
	Type         string        `json:"type"`
	Actual       bool          `json:"actual"`
	Name         string        `json:"name,omitempty"`
	Quantity     *int          `json:"quantity,omitempty"`
	Member       []groupMember `json:"member,omitempty"`
}

type groupMember struct {
	Entity reference `json:"entity"`
}

// FamilyGroup is a family (gezin): the Group whose members are the children
// (as Patients). The parents belong to it through their RelatedPersons,
// which R4 does not allow as Group members. The parenting plan and its VOP
// have the family as subject.
type FamilyGroup struct {
	ID          string // logical id; empty for a resource still to be created
	Identifiers []Identifier
	Name        string   // for example "Gezin De Vries-Jansen"
	Children    []string // Patient/… of the children; at least one
}

func (f FamilyGroup) check(c *checker) {
	c.id("Group.id", f.ID)
	checkIdentifiers(c, "Group.identifier", f.Identifiers)
	if len(f.Children) == 0 {
		c.required("Group.member", "")
	}
	c.refs("Group.member.entity", f.Children, "Patient")
}

// ToFHIR returns f as a Group (type person, actual) in FHIR R4 JSON. It
// returns an error of kind fhir.Invalid when f breaks a domain rule (no
// children, a member that is not a Patient, malformed identifiers).
func (f FamilyGroup) ToFHIR() ([]byte, error) {
	active := true
	n := len(f.Children)
	out := group{
		ResourceType: "Group",
		ID:           f.ID,
		Identifier:   f.Identifiers,
		Active:       &active,
		Type:         "person",
		Actual:       true,
		Name:         f.Name,
		Quantity:     &n,
	}
	for _, ch := range f.Children {
		out.Member = append(out.Member, groupMember{Entity: ref(ch)})
	}
	return produce("family to FHIR", f.check, out)
}

// FamilyGroupFromFHIR reads a family from a Group in FHIR R4 JSON. Elements
// the domain does not carry are ignored. It returns an error of kind
// fhir.Invalid when b is not an actual Group of persons or breaks a rule of
// FamilyGroup.ToFHIR.
func FamilyGroupFromFHIR(b []byte) (FamilyGroup, error) {
	var in group
	if err := decode(b, "Group", &in); err != nil {
		return FamilyGroup{}, wrap("family from FHIR", err)
	}
	var c checker
	if in.Type != "person" {
		c.addf("Group.type", "a family is a Group of type person, not %q", in.Type)
	}
	if !in.Actual {
		c.addf("Group.actual", "a family is an actual Group")
	}
	f := FamilyGroup{ID: in.ID, Identifiers: in.Identifier, Name: in.Name}
	for _, m := range in.Member {
		f.Children = append(f.Children, m.Entity.Reference)
	}
	return checked("family from FHIR", &c, f, FamilyGroup.check)
}
