package mapping

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// The code systems of an invitation.
const (
	// InvitationStatusSystem: Task.businessStatus of an invitation, the
	// status the inviter sees.
	InvitationStatusSystem = BaseURL + "/CodeSystem/invitation-status"
	// InvitationInputSystem: Task.input.type of an invitation.
	InvitationInputSystem = BaseURL + "/CodeSystem/invitation-input"
	// InvitationTokenSystem is the identifier system of an invitation
	// Task whose value is InvitationTokenHash of its acceptance token: the
	// server finds the invitation of a link by it and never stores the
	// token itself.
	InvitationTokenSystem = BaseURL + "/NamingSystem/invitation-token-sha256"
)

// InvitationStatus is a code of InvitationStatusSystem.
type InvitationStatus string

// The invitation statuses.
const (
	InvitationNotSent  InvitationStatus = "not-sent" // made, the e-mail not (yet) sent
	InvitationSent     InvitationStatus = "sent"     // the e-mail with the link went out
	InvitationAccepted InvitationStatus = "accepted" // the helper accepted: bound and in the team
	InvitationExpired  InvitationStatus = "expired"  // the link was used after it expired
)

// Coding returns s as a Coding with its Dutch display.
func (s InvitationStatus) Coding() Coding { return coding(InvitationStatusSystem, string(s)) }

// InvitationInput is a code of InvitationInputSystem.
type InvitationInput string

// The invitation inputs.
const (
	InputEmail InvitationInput = "email" // valueString: where the link was sent
	InputRole  InvitationInput = "role"  // valueCoding of RoleSystem: the helper's team role
	InputGrant InvitationInput = "grant" // valueReference: the proposed Consent with the sections
)

// Coding returns i as a Coding with its Dutch display.
func (i InvitationInput) Coding() Coding { return coding(InvitationInputSystem, string(i)) }

// InvitationTokenHash returns the identifier value that stands for an
// acceptance token: "sha256:" and the hex SHA-256 of the token. The token
// is 32 random bytes, so the hash cannot be reversed or guessed.
func InvitationTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// invitationTask is the JSON of the Task elements an invitation uses, in R4
// order.
type invitationTask struct {
	ResourceType   string          `json:"resourceType"`
	ID             string          `json:"id,omitempty"`
	Identifier     []Identifier    `json:"identifier,omitempty"`
	Status         string          `json:"status"`
	BusinessStatus codeableConcept `json:"businessStatus,omitzero"`
	Intent         string          `json:"intent"`
	Code           codeableConcept `json:"code,omitzero"`
	Focus          reference       `json:"focus,omitzero"`
	For            reference       `json:"for,omitzero"`
	AuthoredOn     string          `json:"authoredOn,omitempty"`
	LastModified   string          `json:"lastModified,omitempty"`
	Requester      reference       `json:"requester,omitzero"`
	Owner          reference       `json:"owner,omitzero"`
	Restriction    *taskRestrict   `json:"restriction,omitempty"`
	Input          []taskInput     `json:"input,omitempty"`
}

type taskRestrict struct {
	Period Period `json:"period,omitzero"`
}

type taskInput struct {
	Type           codeableConcept `json:"type"`
	ValueString    string          `json:"valueString,omitempty"`
	ValueCoding    *Coding         `json:"valueCoding,omitempty"`
	ValueReference *reference      `json:"valueReference,omitempty"`
}

// invitationIntent: an invitation proposes a member; the team changes only
// when the invitee accepts.
const invitationIntent = "proposal"

// Invitation is the invitation of a helper into a child's team. It is
// carried by a Task with code invitation: focus the child's CareTeam, for
// the child, requester who invited, owner the invitee's Practitioner,
// restriction.period.end the expiry, inputs the e-mail address, the role
// and the proposed Consent with the sections, and an identifier holding
// the hash of the acceptance token. While it waits it is requested; once
// accepted it is completed; its businessStatus (InvitationStatus) says how
// far it got.
type Invitation struct {
	ID         string           // logical id; empty for a resource still to be created
	Status     string           // Task.status: TaskRequested, TaskCompleted, TaskCancelled
	Progress   InvitationStatus // Task.businessStatus
	Team       string           // CareTeam/… of the child
	For        string           // Patient/… of the child
	AuthoredOn string           // FHIR dateTime it was made
	Modified   string           // FHIR dateTime of its last change; optional
	Requester  string           // who invited
	Invitee    string           // Practitioner/… of the invitee
	Email      string           // where the link was sent
	Role       Role             // the team role the invitee gets
	Grant      string           // Consent/… proposed with the sections; optional
	TokenHash  string           // InvitationTokenHash of the acceptance token
	Expires    string           // FHIR dateTime after which the link no longer works
}

func (i Invitation) check(c *checker) {
	c.id("Task.id", i.ID)
	c.oneOf("Task.status", i.Status, taskStatuses)
	switch i.Progress {
	case InvitationNotSent, InvitationSent, InvitationAccepted, InvitationExpired:
	case "":
		c.required("Task.businessStatus", "")
	default:
		c.addf("Task.businessStatus", "%q is not an invitation status", i.Progress)
	}
	c.required("Task.focus", i.Team)
	c.ref("Task.focus", i.Team, "CareTeam")
	c.required("Task.for", i.For)
	c.ref("Task.for", i.For, "Patient")
	c.dateTime("Task.authoredOn", i.AuthoredOn)
	c.dateTime("Task.lastModified", i.Modified)
	c.ref("Task.requester", i.Requester, "Patient", "RelatedPerson", "Practitioner", "PractitionerRole")
	c.required("Task.owner", i.Invitee)
	c.ref("Task.owner", i.Invitee, "Practitioner")
	c.required("Task.input.where(type.coding.code = 'email')", i.Email)
	if i.Email != "" && !ValidEmail(i.Email) {
		c.addf("Task.input.where(type.coding.code = 'email')", "%q is not an e-mail address", i.Email)
	}
	if info, ok := i.Role.Info(); !ok || !info.Helper {
		c.addf("Task.input.where(type.coding.code = 'role')", "%q is not a helper's role", i.Role)
	}
	c.ref("Task.input.where(type.coding.code = 'grant')", i.Grant, "Consent")
	c.required("Task.identifier", i.TokenHash)
	if i.TokenHash != "" && !strings.HasPrefix(i.TokenHash, "sha256:") {
		c.addf("Task.identifier", "the token is kept only as its sha256: hash")
	}
	c.required("Task.restriction.period.end", i.Expires)
	c.dateTime("Task.restriction.period.end", i.Expires)
}

// ValidEmail reports whether s looks like one e-mail address (local@domain,
// no spaces, no display name). It is a sanity check, not RFC 5322.
func ValidEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.ContainsAny(s, " \t\r\n<>,;\"") &&
		!strings.Contains(domain, "@") && len(s) <= 254
}

// ToFHIR returns i as a Task in FHIR R4 JSON. It returns an error of kind
// fhir.Invalid when i breaks a domain rule (no team, child, invitee,
// e-mail address, token hash or expiry; a role that is not a helper's;
// malformed dates or references).
func (i Invitation) ToFHIR() ([]byte, error) {
	role := i.Role.Coding()
	out := invitationTask{
		ResourceType:   "Task",
		ID:             i.ID,
		Identifier:     []Identifier{{System: InvitationTokenSystem, Value: i.TokenHash}},
		Status:         i.Status,
		BusinessStatus: codeableConcept{Coding: []Coding{i.Progress.Coding()}},
		Intent:         invitationIntent,
		Code:           codeableConcept{Coding: []Coding{TaskInvitation.Coding()}},
		Focus:          ref(i.Team),
		For:            ref(i.For),
		AuthoredOn:     i.AuthoredOn,
		LastModified:   i.Modified,
		Requester:      ref(i.Requester),
		Owner:          ref(i.Invitee),
		Restriction:    &taskRestrict{Period: Period{End: i.Expires}},
		Input: []taskInput{
			{Type: codeableConcept{Coding: []Coding{InputEmail.Coding()}}, ValueString: i.Email},
			{Type: codeableConcept{Coding: []Coding{InputRole.Coding()}}, ValueCoding: &role},
		},
	}
	if i.Grant != "" {
		g := ref(i.Grant)
		out.Input = append(out.Input, taskInput{Type: codeableConcept{Coding: []Coding{InputGrant.Coding()}}, ValueReference: &g})
	}
	return produce("invitation to FHIR", i.check, out)
}

// InvitationFromFHIR reads an invitation from a Task in FHIR R4 JSON.
// Elements the domain does not carry are ignored. It returns an error of
// kind fhir.Invalid when b is not a Task with code invitation and intent
// proposal, or breaks a rule of Invitation.ToFHIR.
func InvitationFromFHIR(b []byte) (Invitation, error) {
	var in invitationTask
	if err := decode(b, "Task", &in); err != nil {
		return Invitation{}, wrap("invitation from FHIR", err)
	}
	var c checker
	if !hasCoding(in.Code.Coding, TaskInvitation.Coding()) {
		c.addf("Task.code", "the Task is not an invitation (no code %s|%s)", TaskCodeSystem, TaskInvitation)
	}
	if in.Intent != invitationIntent {
		c.addf("Task.intent", "intent is %q; an invitation has intent %q", in.Intent, invitationIntent)
	}
	i := Invitation{
		ID:         in.ID,
		Status:     in.Status,
		Progress:   InvitationStatus(codeIn(&c, "Task.businessStatus", InvitationStatusSystem, in.BusinessStatus.Coding)),
		Team:       in.Focus.Reference,
		For:        in.For.Reference,
		AuthoredOn: in.AuthoredOn,
		Modified:   in.LastModified,
		Requester:  in.Requester.Reference,
		Invitee:    in.Owner.Reference,
	}
	for _, id := range in.Identifier {
		if id.System == InvitationTokenSystem {
			i.TokenHash = id.Value
		}
	}
	if in.Restriction != nil {
		i.Expires = in.Restriction.Period.End
	}
	for n, x := range in.Input {
		expr := fmt.Sprintf("Task.input[%d]", n)
		switch InvitationInput(codeIn(&c, expr+".type", InvitationInputSystem, x.Type.Coding)) {
		case InputEmail:
			i.Email = x.ValueString
		case InputRole:
			if x.ValueCoding == nil || x.ValueCoding.System != RoleSystem {
				c.addf(expr+".valueCoding", "the role is a coding of %s", RoleSystem)
			} else {
				i.Role = Role(x.ValueCoding.Code)
			}
		case InputGrant:
			if x.ValueReference != nil {
				i.Grant = x.ValueReference.Reference
			}
		}
	}
	return checked("invitation from FHIR", &c, i, Invitation.check)
}

// Invitee is a helper invited by e-mail before they have an account: a
// Practitioner with a name as written and the e-mail address. Accepting
// the invitation adds the login's identifier to it.
type Invitee struct {
	ID    string // logical id; empty for a resource still to be created
	Name  string // as the inviter wrote it; required
	Email string // required
}

type inviteeJSON struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Active       bool          `json:"active"`
	Name         []humanName   `json:"name"`
	Telecom      []contactJSON `json:"telecom"`
}

type contactJSON struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

// ToFHIR returns p as a Practitioner in FHIR R4 JSON. It returns an error
// of kind fhir.Invalid when the name or a valid e-mail address is missing.
func (p Invitee) ToFHIR() ([]byte, error) {
	return produce("invitee to FHIR", func(c *checker) {
		c.id("Practitioner.id", p.ID)
		c.required("Practitioner.name", strings.TrimSpace(p.Name))
		c.required("Practitioner.telecom", p.Email)
		if p.Email != "" && !ValidEmail(p.Email) {
			c.addf("Practitioner.telecom", "%q is not an e-mail address", p.Email)
		}
	}, inviteeJSON{
		ResourceType: "Practitioner", ID: p.ID, Active: true,
		Name:    []humanName{{Text: strings.TrimSpace(p.Name)}},
		Telecom: []contactJSON{{System: "email", Value: p.Email}},
	})
}
