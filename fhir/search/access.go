package search

import "context"

// Access is what one request may read and write: the access predicate that
// the policy decision point (auth/policy) decides and the store enforces. It
// is a plain value, no SQL. The store compiles Read into the one predicate
// that every resource row it returns passes (direct reads, vreads, history,
// search matches, totals, paging, includes, chain and _has targets,
// conditional matching), and Write into the checks of its writes: the
// version a write replaces must be admitted by Write (update, patch,
// delete), and so must the version it writes (create, update, patch),
// judged inside the write's database transaction once its index rows are in
// place.
//
// Access travels in the request's context (WithAccess). A context without
// one, and the zero Access, grant nothing: a store that finds no Access
// returns no resources and refuses every write. Code that acts for the
// server itself (start-up installers, background reindexing, tools) says so
// explicitly with Unrestricted.
//
// An Access is shared by the goroutines of a request: treat it as
// read-only once made.
type Access struct {
	unrestricted bool
	// Read admits the resources the request may see: a resource is
	// visible when at least one rule admits it. Empty: nothing is.
	Read []Rule
	// Write admits the resources the request may write (create, replace
	// or delete), for the one interaction and type it was decided for.
	// Empty: no write is allowed.
	Write []Rule
	// Approve admits the resources the caller may write in their approved
	// status (an active agreement, plan, goal or Consent) and whose
	// proposals the caller may approve or reject: the dossierhouder's
	// rules. The write path uses them instead of Write when a resource of a
	// type that needs approval (mapping.LifecycleOf) is written in any
	// status but its proposed one. Empty: the caller approves nothing.
	Approve []Rule
	// Basis names the resources the decision rested on (the Consents and
	// CareTeams that granted access, such as "Consent/123"), for the audit
	// trail. Empty for scope-only and unrestricted decisions.
	Basis []string
}

// Unrestricted returns the Access of the server itself and of operators:
// every resource, every write.
func Unrestricted() *Access { return &Access{unrestricted: true} }

// IsUnrestricted reports whether a is the Access of Unrestricted. It is false
// for nil.
func (a *Access) IsUnrestricted() bool { return a != nil && a.unrestricted }

// Rule admits the resources of one type, or of every type, that satisfy a
// filter and lie inside a set of compartments. A rule with no Type, no
// Where and no In admits everything.
type Rule struct {
	// Type is the resource type admitted; "" admits every type.
	Type string
	// Where are clauses that an admitted resource satisfies, all of them
	// (the constraints of a granular SMART scope, parsed on Type, or on the
	// parameters common to every type when Type is ""). Nil: no filter.
	Where []Clause
	// In, when not nil, confines the rule to compartments.
	In *Confinement
	// And are further confinements: an admitted resource is inside each
	// of them as well as In (the compartment of a patient/ scope
	// intersected with what the access policy confines a role to).
	And []*Confinement
	// Not are confinements an admitted resource lies outside of, every
	// one (the items a Consent's nested deny provision excepts).
	Not []*Confinement
}

// Confinement is a set of compartments
// (http://hl7.org/fhir/R4/compartmentdefinition.html). A resource is inside
// when it is one of the owners itself, or when one of its reference search
// parameters that the owner's compartment definition names for the
// resource's type points to an owner.
type Confinement struct {
	// Owners are the compartment owners, such as Patient/123.
	Owners []Owner
	// Person, when not "", is the id of a Person whose Person.link targets
	// (Patient, RelatedPerson, Practitioner, Person) are owners too, as the
	// store holds them when the query runs; the Person itself is inside.
	Person string
	// Params are the compartment definitions: for each owner type, for
	// each resource type, the codes of the reference parameters that place
	// a resource of that type in an owner's compartment. An owner type
	// without an entry has only its owners themselves inside.
	Params map[string]map[string][]string
	// Referrers, when set, puts inside every resource that refers to an
	// owner through any of its reference search parameters (the
	// "dependents" of a Consent's provision.data: an agreement's notes,
	// evaluations and change requests).
	Referrers bool
	// ReferencedBy are resources whose references put what they point to
	// inside (through any reference search parameter): the Practitioners,
	// PractitionerRoles and Organizations a child's CareTeam names.
	ReferencedBy []Owner
}

// Owner is a compartment owner: a resource on this server.
type Owner struct {
	Type, ID string
}

type accessKey struct{}

// WithAccess returns ctx carrying a, the access of the request ctx belongs
// to.
func WithAccess(ctx context.Context, a *Access) context.Context {
	return context.WithValue(ctx, accessKey{}, a)
}

// AccessFrom returns the Access of ctx, or nil when it has none (which
// grants nothing).
func AccessFrom(ctx context.Context) *Access {
	a, _ := ctx.Value(accessKey{}).(*Access)
	return a
}
