package mapping

import "slices"

// Role is a code of RoleSystem: the part someone (or a system) plays in a
// child's team. A person's role comes from their CareTeam participation; it
// is carried in CareTeam.participant.role.
type Role string

// The roles.
const (
	ParentWithAuthority    Role = "parent-with-authority"    // ouder met gezag
	ParentWithoutAuthority Role = "parent-without-authority" // ouder zonder gezag
	Child                  Role = "child"                    // the child themself
	Dossierhouder          Role = "dossierhouder"            // the licensed file holder
	Mediator               Role = "mediator"                 // invited helper
	YouthCareWorker        Role = "youth-care-worker"        // invited helper (jeugdhulpverlener)
	Teacher                Role = "teacher"                  // invited helper (leerkracht)
	Coach                  Role = "coach"                    // invited helper
	Childcare              Role = "childcare"                // invited helper (kinderopvang)
	SpeechTherapist        Role = "speech-therapist"         // invited helper (logopedist)
	SchoolSystem           Role = "school-system"            // external system posting observations
	ECDSystem              Role = "ecd-system"               // youth-care client record system reading plans
	Auditor                Role = "auditor"                  // reads Consent and AuditEvent, never content
)

// Coding returns r as a Coding with its Dutch display.
func (r Role) Coding() Coding { return coding(RoleSystem, string(r)) }

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return known(RoleSystem, string(r)) }

// Interaction is a code of InteractionSystem: a class of things one can do
// in a section. The classes are ordered by weight but do not imply each
// other; a role lists every class it has.
type Interaction string

// The interaction classes.
const (
	// Read: read and search the section's resources.
	Read Interaction = "read"
	// WriteOwnNotes: create the section's resources that never need approval
	// (notes, diary entries, messages, observations, goal progress,
	// documents, appointments, evaluations, help questions), and read and
	// amend the ones one wrote oneself.
	WriteOwnNotes Interaction = "write-own-notes"
	// Propose: create proposals of the section's resources that need
	// approval (plans, agreements, goals, Consents): they are stored in
	// their proposed status with an approve-change Task (see NeedsApproval).
	Propose Interaction = "propose"
	// Approve: decide on change requests, and write resources that need
	// approval directly in their approved status. Only the dossierhouder has
	// it, and no Consent can grant it.
	Approve Interaction = "approve"
)

// Coding returns i as a Coding with its Dutch display.
func (i Interaction) Coding() Coding { return coding(InteractionSystem, string(i)) }

// Valid reports whether i is one of the interaction classes.
func (i Interaction) Valid() bool { return known(InteractionSystem, string(i)) }

// Scope says whose records an Access applies to.
type Scope int

// The scopes.
const (
	// ScopeChildren: the records of the children the actor has parental
	// authority over, and of their family, limited by each child's age band
	// (Rights) and by withheld items.
	ScopeChildren Scope = iota + 1
	// ScopeSelf: records about the actor themself (for a child: their own
	// record and their family's; for a parent: their own development plan),
	// and records the actor wrote, sent or received.
	ScopeSelf
	// ScopeEnvironment: every record of the environments the actor holds the
	// file of (dossierhouder) or audits (auditor).
	ScopeEnvironment
	// ScopeGranted: only what an active Consent grants the actor, for the
	// period it grants.
	ScopeGranted
)

// Access is what a role may do in one section, for the records of Scope.
type Access struct {
	Section Section
	Allow   []Interaction
	Scope   Scope
}

// RoleInfo is everything the domain says about a role.
type RoleInfo struct {
	Role      Role
	Display   string // Dutch
	DisplayEN string // English
	// Helper: an invited helper, who has only what a Consent grants.
	Helper bool
	// System: an external system acting through a client, not a person.
	System bool
	// Actors are the resource types that can hold the role in
	// CareTeam.participant.member.
	Actors []string
	// Defaults is what the role may do without any Consent. It is only the
	// start: the policy applies the child's age band (Rights), the period of
	// the team membership and withheld items on top.
	Defaults []Access
	// Grantable is the most a Consent may grant the role (Scope is
	// ScopeGranted). A grant beyond it is refused.
	Grantable []Access
}

// Allow lists for the tables below.
var (
	readOnly         = []Interaction{Read}
	writeOnly        = []Interaction{WriteOwnNotes}
	readWrite        = []Interaction{Read, WriteOwnNotes}
	readPropose      = []Interaction{Read, Propose}
	readWritePropose = []Interaction{Read, WriteOwnNotes, Propose}
	readWriteApprove = []Interaction{Read, WriteOwnNotes, Approve}
	readApprove      = []Interaction{Read, Approve}
)

// helperGrantable is the most a Consent may grant an invited helper: any
// content section, never the change requests, the contract or the access
// log, and never Approve.
var helperGrantable = []Access{
	{SectionPersonalDetails, readOnly, ScopeGranted},
	{SectionParentingPlan, readWritePropose, ScopeGranted},
	{SectionChildPlan, readWritePropose, ScopeGranted},
	{SectionDevelopmentPlan, readWritePropose, ScopeGranted},
	{SectionDiary, readWrite, ScopeGranted},
	{SectionMessages, readWrite, ScopeGranted},
	{SectionAgenda, readWrite, ScopeGranted},
	{SectionDocuments, readWrite, ScopeGranted},
	{SectionEvaluations, readWrite, ScopeGranted},
	{SectionObservations, readWrite, ScopeGranted},
	{SectionSignals, readWrite, ScopeGranted},
	{SectionTeam, readOnly, ScopeGranted},
}

// helperActors are the resource types an invited helper is recorded as: a
// professional, or a RelatedPerson for an informal helper.
var helperActors = []string{"Practitioner", "PractitionerRole", "RelatedPerson"}

// parentDefaults is what a parent with authority may do. When the child is
// 16 or older (Rights.ParentReadsOnlyConsented) the same becomes the most
// the child can grant the parent.
var parentDefaults = []Access{
	{SectionPersonalDetails, readOnly, ScopeChildren},
	{SectionParentingPlan, readWritePropose, ScopeChildren},
	{SectionChildPlan, readWritePropose, ScopeChildren},
	{SectionDevelopmentPlan, readWritePropose, ScopeSelf}, // a parent's own plan; the other parent needs a Consent
	{SectionDiary, readWrite, ScopeChildren},
	{SectionMessages, readWrite, ScopeChildren},
	{SectionAgenda, readWrite, ScopeChildren},
	{SectionDocuments, readWrite, ScopeChildren},
	{SectionEvaluations, readWrite, ScopeChildren},
	{SectionObservations, readWrite, ScopeChildren},
	{SectionSignals, readWrite, ScopeChildren},
	{SectionTeam, readPropose, ScopeChildren}, // invites helpers and grants sections as proposals
	{SectionChangeRequests, readOnly, ScopeChildren},
	{SectionContract, readOnly, ScopeChildren},
	{SectionAudit, readOnly, ScopeChildren}, // "who saw my child's data"
}

// childDefaults is what a child may do in their own record. It applies from
// the band that gives own access (Rights.OwnAccess); earlier only through a
// grant by a parent or the dossierhouder (Rights.OwnAccessWithConsent).
var childDefaults = []Access{
	{SectionPersonalDetails, readOnly, ScopeSelf},
	{SectionParentingPlan, readWrite, ScopeSelf},
	{SectionChildPlan, readWritePropose, ScopeSelf},
	{SectionDiary, readWrite, ScopeSelf},
	{SectionMessages, readWrite, ScopeSelf},
	{SectionAgenda, readWrite, ScopeSelf},
	{SectionDocuments, readWrite, ScopeSelf},
	{SectionEvaluations, readWrite, ScopeSelf},
	{SectionObservations, readOnly, ScopeSelf},
	{SectionSignals, readWrite, ScopeSelf},
	{SectionTeam, readPropose, ScopeSelf}, // consents to sharing from 12
	{SectionChangeRequests, readOnly, ScopeSelf},
	{SectionAudit, readOnly, ScopeSelf}, // "who saw my data"
}

// parentWithoutAuthorityGrantable is the most a Consent may grant a parent
// without authority: reading the content sections, and messages.
var parentWithoutAuthorityGrantable = []Access{
	{SectionPersonalDetails, readOnly, ScopeGranted},
	{SectionParentingPlan, readOnly, ScopeGranted},
	{SectionChildPlan, readOnly, ScopeGranted},
	{SectionDiary, readOnly, ScopeGranted},
	{SectionMessages, readWrite, ScopeGranted},
	{SectionAgenda, readOnly, ScopeGranted},
	{SectionDocuments, readOnly, ScopeGranted},
	{SectionEvaluations, readOnly, ScopeGranted},
	{SectionObservations, readOnly, ScopeGranted},
}

// asGranted returns as with every scope ScopeGranted.
func asGranted(as []Access) []Access {
	out := cloneAccess(as)
	for i := range out {
		out[i].Scope = ScopeGranted
	}
	return out
}

// roles is the one table of what each role may do by default, following
// DOMAIN.md "Roles and what they may do".
var roles = []RoleInfo{
	{Role: ParentWithAuthority, Actors: []string{"RelatedPerson"}, Defaults: parentDefaults, Grantable: asGranted(parentDefaults)},
	{
		// No direct access: may ask for information, which goes to the
		// dossierhouder as a message. What a Consent may add: reading the
		// content sections (for example when a child of 16 or older shares).
		Role: ParentWithoutAuthority, Actors: []string{"RelatedPerson"},
		Defaults:  []Access{{SectionMessages, writeOnly, ScopeSelf}},
		Grantable: parentWithoutAuthorityGrantable,
	},
	{Role: Child, Actors: []string{"Patient"}, Defaults: childDefaults, Grantable: asGranted(childDefaults)},
	{
		Role: Dossierhouder, Actors: []string{"Practitioner", "PractitionerRole"},
		Defaults: []Access{
			{SectionPersonalDetails, readWrite, ScopeEnvironment}, // verifies parental authority
			{SectionParentingPlan, readWriteApprove, ScopeEnvironment},
			{SectionChildPlan, readWriteApprove, ScopeEnvironment},
			{SectionDevelopmentPlan, readWriteApprove, ScopeEnvironment},
			{SectionDiary, readWrite, ScopeEnvironment},
			{SectionMessages, readWrite, ScopeEnvironment},
			{SectionAgenda, readWrite, ScopeEnvironment},
			{SectionDocuments, readWrite, ScopeEnvironment},
			{SectionEvaluations, readWrite, ScopeEnvironment}, // schedules the yearly evaluation
			{SectionObservations, readWrite, ScopeEnvironment},
			{SectionSignals, readWrite, ScopeEnvironment},
			{SectionTeam, readWriteApprove, ScopeEnvironment},
			{SectionChangeRequests, readApprove, ScopeEnvironment},
			{SectionContract, readWrite, ScopeEnvironment}, // records the cost split
			{SectionAudit, readOnly, ScopeEnvironment},
		},
	},
	{Role: Mediator, Helper: true, Actors: helperActors, Grantable: helperGrantable},
	{Role: YouthCareWorker, Helper: true, Actors: helperActors, Grantable: helperGrantable},
	{Role: Teacher, Helper: true, Actors: helperActors, Grantable: helperGrantable},
	{Role: Coach, Helper: true, Actors: helperActors, Grantable: helperGrantable},
	{Role: Childcare, Helper: true, Actors: helperActors, Grantable: helperGrantable},
	{Role: SpeechTherapist, Helper: true, Actors: helperActors, Grantable: helperGrantable},
	{
		// Posts observations for its pupils, as consented.
		Role: SchoolSystem, System: true, Actors: []string{"Organization"},
		Grantable: []Access{
			{SectionPersonalDetails, readOnly, ScopeGranted},
			{SectionObservations, writeOnly, ScopeGranted},
		},
	},
	{
		// Reads a child's plan for the children its organisation is
		// consented for.
		Role: ECDSystem, System: true, Actors: []string{"Organization"},
		Grantable: []Access{
			{SectionPersonalDetails, readOnly, ScopeGranted},
			{SectionChildPlan, readOnly, ScopeGranted},
		},
	},
	{
		// Consent and AuditEvent records, never content.
		Role: Auditor, Actors: []string{"Practitioner", "PractitionerRole", "Organization"},
		Defaults: []Access{
			{SectionTeam, readOnly, ScopeEnvironment},
			{SectionAudit, readOnly, ScopeEnvironment},
		},
	},
}

// Roles returns every role with what it may do, in the order of RoleSystem.
// The result is a copy; callers may modify it.
func Roles() []RoleInfo {
	out := make([]RoleInfo, len(roles))
	for i, ri := range roles {
		out[i] = ri.clone()
	}
	return out
}

// Info returns what the domain says about r, and false for an unknown role.
func (r Role) Info() (RoleInfo, bool) {
	for _, ri := range roles {
		if ri.Role == r {
			return ri.clone(), true
		}
	}
	return RoleInfo{}, false
}

// MayByDefault reports whether r may do i in section s without any Consent
// (before age rules, scope and withheld items). It is false for an unknown
// role.
func (r Role) MayByDefault(s Section, i Interaction) bool {
	for _, ri := range roles {
		if ri.Role == r {
			return allows(ri.Defaults, s, i)
		}
	}
	return false
}

// MayBeGranted reports whether a Consent may grant r the interaction i in
// section s. Approve is never grantable. It is false for an unknown role.
func (r Role) MayBeGranted(s Section, i Interaction) bool {
	for _, ri := range roles {
		if ri.Role == r {
			return allows(ri.Grantable, s, i)
		}
	}
	return false
}

func allows(as []Access, s Section, i Interaction) bool {
	for _, a := range as {
		if a.Section == s && slices.Contains(a.Allow, i) {
			return true
		}
	}
	return false
}

// clone returns a deep copy of ri with the displays of RoleSystem filled in
// (they are written once, in the code system).
func (ri RoleInfo) clone() RoleInfo {
	c, _ := concept(RoleSystem, string(ri.Role))
	ri.Display, ri.DisplayEN = c.Display, c.DisplayEN
	ri.Actors = slices.Clone(ri.Actors)
	ri.Defaults = cloneAccess(ri.Defaults)
	ri.Grantable = cloneAccess(ri.Grantable)
	return ri
}

func cloneAccess(as []Access) []Access {
	if as == nil {
		return nil
	}
	out := make([]Access, len(as))
	for i, a := range as {
		a.Allow = slices.Clone(a.Allow)
		out[i] = a
	}
	return out
}
