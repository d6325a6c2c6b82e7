package mapping

import (
	"encoding/json"
	"fmt"
	"slices"
)

// consent is the JSON of the Consent elements a grant uses, in R4 order.
type consent struct {
	ResourceType    string            `json:"resourceType"`
	ID              string            `json:"id,omitempty"`
	Status          string            `json:"status"`
	Scope           codeableConcept   `json:"scope"`
	Category        []codeableConcept `json:"category"`
	Patient         reference         `json:"patient,omitzero"`
	DateTime        string            `json:"dateTime,omitempty"`
	Performer       []reference       `json:"performer,omitempty"`
	SourceReference reference         `json:"sourceReference,omitzero"`
	PolicyRule      codeableConcept   `json:"policyRule,omitzero"`
	Provision       *consentProvision `json:"provision,omitempty"`
}

type consentProvision struct {
	Type      string            `json:"type,omitempty"`
	Period    Period            `json:"period,omitzero"`
	Actor     []consentActor    `json:"actor,omitempty"`
	Action    []codeableConcept `json:"action,omitempty"`
	Code      []codeableConcept `json:"code,omitempty"`
	Data      []consentData     `json:"data,omitempty"`
	Provision []json.RawMessage `json:"provision,omitempty"` // nested rules: not used by grants
}

type consentActor struct {
	Role      codeableConcept `json:"role"`
	Reference reference       `json:"reference"`
}

type consentData struct {
	Meaning   string    `json:"meaning"`
	Reference reference `json:"reference"`
}

// grantDataMeaning is the meaning of a grant's items: the item and the
// resources that refer to it (the notes on an agreement, its evaluations).
const grantDataMeaning = "dependents"

// Reference types of the Consent elements a grant fills.
var (
	consentPerformerTypes = []string{"Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Organization"}
	consentActorTypes     = []string{"Practitioner", "PractitionerRole", "RelatedPerson", "Patient", "Organization", "Device", "Group", "CareTeam"}
)

// Grant is a permission: it grants one actor some interactions on sections of
// a child's record (and optionally only on some items in them) for a period.
// It is carried by a Consent with scope patient-privacy, category LOINC
// 59284-0 and policy rule OPTIN (nothing is shared unless permitted), whose
// one permit provision names the actor (role IRCP, information recipient),
// the sections (provision.code), the interactions (provision.action), the
// items (provision.data, meaning "dependents") and the period. When both
// sections and items are given, both must match (FHIR provision criteria are
// conjunctive). A grant is proposed (ConsentProposed) and takes effect when
// the dossierhouder approves it (ConsentActive); revoking it makes it
// ConsentInactive.
type Grant struct {
	ID           string        // logical id; empty for a resource still to be created
	Status       string        // Consent.status: ConsentProposed, ConsentActive, ConsentRejected, ConsentInactive…
	Patient      string        // Patient/… of the child whose record is shared
	ConsentedBy  []string      // Consent.performer: who agreed (the child and/or a parent, as Rights require)
	DateTime     string        // FHIR dateTime the consent was given
	Grantee      string        // who receives access (Consent.provision.actor)
	Sections     []Section     // the sections granted
	Items        []string      // specific resources granted, with the resources that refer to them
	Interactions []Interaction // what the grantee may do; never Approve
	Period       Period        // when the grant holds
	Source       string        // DocumentReference/… of the signed consent form; optional
}

func (g Grant) check(c *checker) {
	c.id("Consent.id", g.ID)
	c.oneOf("Consent.status", g.Status, consentStatuses)
	c.required("Consent.patient", g.Patient)
	c.ref("Consent.patient", g.Patient, "Patient")
	c.refs("Consent.performer", g.ConsentedBy, consentPerformerTypes...)
	c.dateTime("Consent.dateTime", g.DateTime)
	c.ref("Consent.sourceReference", g.Source, "DocumentReference")
	c.required("Consent.provision.actor", g.Grantee)
	c.ref("Consent.provision.actor", g.Grantee, consentActorTypes...)
	if len(g.Sections) == 0 && len(g.Items) == 0 {
		c.addf("Consent.provision", "a grant names at least one section or item")
	}
	for i, s := range g.Sections {
		expr := fmt.Sprintf("Consent.provision.code[%d]", i)
		if !s.Valid() {
			c.addf(expr, "%q is not a section", s)
		} else if slices.Index(g.Sections, s) != i {
			c.addf(expr, "section %q is granted twice", s)
		}
	}
	c.refs("Consent.provision.data", g.Items)
	if len(g.Interactions) == 0 {
		c.required("Consent.provision.action", "")
	}
	for i, in := range g.Interactions {
		expr := fmt.Sprintf("Consent.provision.action[%d]", i)
		switch {
		case !in.Valid():
			c.addf(expr, "%q is not an interaction", in)
		case in == Approve:
			c.addf(expr, "approve is never granted: only the dossierhouder approves")
		}
	}
	c.period("Consent.provision.period", g.Period)
}

// ToFHIR returns g as a Consent in FHIR R4 JSON. It returns an error of kind
// fhir.Invalid when g breaks a domain rule (no child or grantee, neither
// sections nor items, no interactions, Approve granted, unknown codes,
// malformed dates or references).
func (g Grant) ToFHIR() ([]byte, error) {
	p := &consentProvision{
		Type:   "permit",
		Period: g.Period,
		Actor: []consentActor{{
			Role:      codeableConcept{Coding: []Coding{{System: ParticipationTypeSystem, Code: ParticipationRecipient, Display: "information recipient"}}},
			Reference: ref(g.Grantee),
		}},
	}
	for _, in := range g.Interactions {
		p.Action = append(p.Action, codeableConcept{Coding: []Coding{in.Coding()}})
	}
	for _, s := range g.Sections {
		p.Code = append(p.Code, codeableConcept{Coding: []Coding{s.Coding()}})
	}
	for _, it := range g.Items {
		p.Data = append(p.Data, consentData{Meaning: grantDataMeaning, Reference: ref(it)})
	}
	return produce("grant to FHIR", g.check, consent{
		ResourceType:    "Consent",
		ID:              g.ID,
		Status:          g.Status,
		Scope:           codeableConcept{Coding: []Coding{{System: ConsentScopeSystem, Code: ConsentScopePrivacy, Display: "Privacy Consent"}}},
		Category:        []codeableConcept{{Coding: []Coding{{System: LOINCSystem, Code: LOINCPatientConsent, Display: "Patient Consent"}}}},
		Patient:         ref(g.Patient),
		DateTime:        g.DateTime,
		Performer:       refs(g.ConsentedBy...),
		SourceReference: ref(g.Source),
		PolicyRule:      codeableConcept{Coding: []Coding{{System: ActCodeSystem, Code: ActCodeOptIn, Display: "opt-in"}}},
		Provision:       p,
	})
}

// GrantFromFHIR reads a grant from a Consent in FHIR R4 JSON. Elements the
// domain does not carry are ignored. It returns an error of kind
// fhir.Invalid when b is not a Consent with scope patient-privacy and one
// permit provision for one actor without nested provisions, when a section
// or action coding is not of the project's systems, when an item's meaning
// is not "dependents", or when it breaks a rule of Grant.ToFHIR.
func GrantFromFHIR(b []byte) (Grant, error) {
	var in consent
	if err := decode(b, "Consent", &in); err != nil {
		return Grant{}, wrap("grant from FHIR", err)
	}
	var c checker
	if codeIn(&c, "Consent.scope", ConsentScopeSystem, in.Scope.Coding) != ConsentScopePrivacy {
		c.addf("Consent.scope", "a grant has scope %s|%s", ConsentScopeSystem, ConsentScopePrivacy)
	}
	g := Grant{
		ID:          in.ID,
		Status:      in.Status,
		Patient:     in.Patient.Reference,
		ConsentedBy: refStrings(in.Performer),
		DateTime:    in.DateTime,
		Source:      in.SourceReference.Reference,
	}
	p := in.Provision
	switch {
	case p == nil:
		c.addf("Consent.provision", "a grant has a provision")
	case p.Type != "permit":
		c.addf("Consent.provision.type", "a grant permits; got %q", p.Type)
	case len(p.Provision) > 0:
		c.addf("Consent.provision.provision", "a grant has no nested provisions")
	case len(p.Actor) != 1:
		c.addf("Consent.provision.actor", "a grant has exactly one actor, got %d", len(p.Actor))
	}
	if p != nil {
		if len(p.Actor) > 0 {
			g.Grantee = p.Actor[0].Reference.Reference
		}
		g.Period = p.Period
		for i, a := range p.Action {
			code := codeIn(&c, fmt.Sprintf("Consent.provision.action[%d]", i), InteractionSystem, a.Coding)
			g.Interactions = append(g.Interactions, Interaction(code))
		}
		for i, s := range p.Code {
			code := codeIn(&c, fmt.Sprintf("Consent.provision.code[%d]", i), SectionSystem, s.Coding)
			g.Sections = append(g.Sections, Section(code))
		}
		for i, d := range p.Data {
			if d.Meaning != grantDataMeaning {
				c.addf(fmt.Sprintf("Consent.provision.data[%d].meaning", i), "a grant's items have meaning %q, got %q", grantDataMeaning, d.Meaning)
			}
			g.Items = append(g.Items, d.Reference.Reference)
		}
	}
	return checked("grant from FHIR", &c, g, Grant.check)
}

// Fits reports whether a Consent may grant g to someone in role r: every
// granted section and interaction must be within the role's Grantable. It
// returns nil when it fits, and an error of kind fhir.Invalid naming each
// (section, interaction) beyond it otherwise. Items without sections are
// not checked here: their sections are known only once the items are read.
func (g Grant) Fits(r Role) error {
	var c checker
	if _, ok := r.Info(); !ok {
		c.addf("Consent.provision.actor", "%q is not a team role", r)
		return wrap("grant fits role", c.err())
	}
	for _, s := range g.Sections {
		for _, in := range g.Interactions {
			if !r.MayBeGranted(s, in) {
				c.addf("Consent.provision", "a %s may not be granted %s on %s", r, in, s)
			}
		}
	}
	return wrap("grant fits role", c.err())
}
