// Package policy is the access decision point: the one function (Decide)
// that answers, for the caller of a request, an interaction and the
// resource types it acts on, whether it is allowed and, if so, which
// resources the request may see and write. The answer is a search.Access,
// a plain value that the store compiles into every read and write it does.
// It never runs SQL itself: the facts it decides with come through
// Config.Facts.
//
// The decision is what the caller's SMART scopes allow
// (http://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html)
// intersected with what the caller's roles allow now (docs/access-policy.md):
//
//   - the scopes first: an interaction no usable scope permits on a type is
//     Forbidden; patient/ scopes confine to the record of the patient in
//     context, user/ scopes to what the user's roles allow, system/ scopes
//     to the types granted; granular v2 scopes (?category=...) are parsed
//     strictly, a constraint that cannot be parsed admits nothing;
//   - then the roles: the caller's CareTeam memberships (mapping.RoleInfo
//     defaults per section, over the records of mapping.Scope), the
//     children's age bands today (mapping.Rights), the Consents in force
//     (within what the role may be granted, with their deny exceptions) and
//     the items withheld from the caller (mapping.WithheldSystem);
//   - an operator (auth.Principal.Operator) may do everything.
//
// The facts are cached per caller, and decisions per caller, scopes and
// interaction, while Watch listens for writes of the facts' types on any
// instance; Changed drops them after this instance's own writes.
// Config.ScopesOnly decides with the scopes alone (user/ scopes then
// confined to the user's own compartment), to measure the policy and test
// the scope layer.
package policy

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/smart"
	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
)

// Config configures a Policy.
type Config struct {
	// Registry returns the search parameters in force, with which the
	// constraints of granular scopes are parsed. Required.
	Registry func() *searchparam.Registry
	// Base is the server's FHIR base URL: an absolute reference under it in
	// a scope constraint is read as a local one.
	Base string
	// Facts returns the resources the decision for a caller rests on,
	// given the caller's own references (fhirUser, Organization):
	// postgres.Store.PolicyResources. Required unless ScopesOnly.
	Facts func(ctx context.Context, refs []string) ([]fhir.Resource, error)
	// Now is the clock (age bands, periods); nil means time.Now.
	Now func() time.Time
	// Location is the time zone of birthdays and of dates in periods;
	// nil means Europe/Amsterdam.
	Location *time.Location
	// ScopesOnly decides with the SMART scopes alone, without roles,
	// Consents, age rules or withheld labels: user/ scopes confined to
	// the user's own compartment, system/ scopes to the types granted. It
	// exists to measure what the policy costs and to test the scope layer
	// on its own; a server must never run with it.
	ScopesOnly bool
	// Logger receives the warnings of Watch; nil means slog.Default().
	Logger *slog.Logger
}

// Policy decides access. It is safe for concurrent use.
type Policy struct {
	registry     func() *searchparam.Registry
	base         string
	compartments map[string]map[string][]string // owner type -> resource type -> parameters
	// one holds, for each owner type, the Params of a Confinement to
	// owners of that type alone (made once: Decide runs per request).
	one map[string]map[string]map[string][]string

	mu      sync.Mutex
	filters map[filterKey][]search.Rule // parsed scope constraints

	facts      func(ctx context.Context, refs []string) ([]fhir.Resource, error)
	now        func() time.Time
	loc        *time.Location
	scopesOnly bool
	log        *slog.Logger
	cache      factCache
	decisions  decisionCache
	// recordParams are the compartment definitions of a child's records:
	// the Patient compartment and the family Group's.
	recordParams map[string]map[string][]string
	carrierReg   *searchparam.Registry // the registry carrierRules were made with
	carrierRules []carrierRule
}

// filterKey names the parsed form of one scope constraint on one type ("*"
// for a wildcard scope) under one registry.
type filterKey struct {
	reg    *searchparam.Registry
	typ    string
	params string
}

// maxCachedFilters bounds the cache of parsed constraints; it is emptied
// when full (a new registry, after custom SearchParameters change, makes
// the old entries useless anyway).
const maxCachedFilters = 4096

// New returns a Policy. It panics if c.Registry is nil (a Policy without one
// could not parse any constraint), or c.Facts is nil without ScopesOnly,
// or Europe/Amsterdam is needed and unknown to the system.
func New(c Config) *Policy {
	if c.Registry == nil {
		panic("policy.New: Config.Registry is nil")
	}
	if c.Facts == nil && !c.ScopesOnly {
		panic("policy.New: Config.Facts is nil")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Location == nil {
		loc, err := time.LoadLocation("Europe/Amsterdam")
		if err != nil {
			panic("policy.New: " + err.Error())
		}
		c.Location = loc
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	pol := &Policy{
		facts:      c.Facts,
		now:        c.Now,
		loc:        c.Location,
		scopesOnly: c.ScopesOnly,
		log:        c.Logger,
		recordParams: map[string]map[string][]string{
			"Patient": r4.PatientCompartment(),
			"Group":   groupCompartment,
		},
		registry: c.Registry,
		base:     strings.TrimSuffix(c.Base, "/"),
		compartments: map[string]map[string][]string{
			"Patient":       r4.PatientCompartment(),
			"RelatedPerson": relatedPersonCompartment,
			"Practitioner":  practitionerCompartment,
		},
		one:     map[string]map[string]map[string][]string{},
		filters: map[filterKey][]search.Rule{},
	}
	for typ, def := range pol.compartments {
		pol.one[typ] = map[string]map[string][]string{typ: def}
	}
	return pol
}

// opOf is the SMART permission an interaction needs (smart: "Scopes for
// requesting clinical data"): r for read, vread and instance history, s for
// type and system search and history, c, u (also patch) and d for writes.
// An operation needs some permission on its type, any of them.
func opOf(in auth.Interaction) (smart.Op, bool) {
	switch in {
	case auth.Read, auth.VRead, auth.HistoryInstance:
		return smart.Read, true
	case auth.SearchType, auth.SearchSystem, auth.HistoryType, auth.HistorySystem:
		return smart.Search, true
	case auth.Create:
		return smart.Create, true
	case auth.Update, auth.Patch:
		return smart.Update, true
	case auth.Delete:
		return smart.Delete, true
	case auth.Operation:
		return smart.Create | smart.Read | smart.Update | smart.Delete | smart.Search, true
	}
	return 0, false
}

// Decide is the access decision for one interaction of the caller p on
// resources of types (none: a whole-system interaction; a write names
// exactly one). It returns the request's Access: Read, what every read path
// of the request may return (whatever the caller may read or search for,
// across all types, since includes, chains and _has reach other types), and
// for a write, Write: what the interaction may replace and write, for its
// one type; Approve, the dossierhouder's rules for approving and for writing
// what needs approval in its approved status; Basis, the CareTeams and
// Consents the decision rests on.
//
// The scopes decide first: an interaction that no usable scope of p
// permits on one of the types is Forbidden (403), whatever p's roles. What
// the scopes permit is then intersected with what p's roles, Consents and
// the children's ages allow now (docs/access-policy.md), read from the
// database per request (cached until one of the facts' types is written);
// an operator gets everything. A caller whose roles allow nothing gets an
// Access that admits nothing: reads answer 404, searches are empty.
//
// The error is a *fhir.Error: Forbidden as above, Unauthorized when p is
// nil, Unavailable when the facts cannot be read now, Internal for a
// misuse (an unknown interaction, a write with other than one type).
func (pol *Policy) Decide(ctx context.Context, p *auth.Principal, in auth.Interaction, types ...string) (*search.Access, error) {
	if p == nil {
		return nil, fhir.Errorf(fhir.Unauthorized, "", "the request carries no credentials")
	}
	op, ok := opOf(in)
	if !ok {
		return nil, &fhir.Error{Kind: fhir.Internal, Err: fmt.Errorf("policy: unknown interaction %q", in)}
	}
	if in.Write() && len(types) != 1 {
		return nil, &fhir.Error{Kind: fhir.Internal, Err: fmt.Errorf("policy: %s needs exactly one resource type, not %q", in, types)}
	}
	if p.Operator {
		return search.Unrestricted(), nil
	}
	reg := pol.registry()
	scoped := func(k smart.Kind) (*search.Confinement, bool) { return pol.confinement(p, k) }
	if len(types) == 0 {
		if len(pol.rules(p, reg, op, "", scoped)) == 0 {
			return nil, pol.forbidden(p, in, "")
		}
	}
	for _, t := range types {
		if len(pol.rules(p, reg, op, t, scoped)) == 0 {
			return nil, pol.forbidden(p, in, t)
		}
	}
	if pol.scopesOnly {
		a := &search.Access{Read: pol.rules(p, reg, smart.Read|smart.Search, "", scoped)}
		if in.Write() {
			a.Write = pol.rules(p, reg, op, types[0], scoped)
		}
		return a, nil
	}

	refs := callerRefs(p)
	now := pol.now()
	key := decisionKey(p, refs, in, types)
	gen := pol.cache.gen.Load()
	if a, ok := pol.decisions.get(key, gen, reg, now); ok {
		return a, nil
	}
	f := &facts{ident: map[string]bool{}, children: map[string]*child{}}
	if len(refs) > 0 {
		var err error
		if f, err = pol.factsOf(ctx, refs); err != nil {
			return nil, err
		}
	}
	clk := newClock(now, pol.loc)
	d := pol.decideRoles(f, clk)
	// The scopes' levels: patient/ confined to the record of the patient
	// in context (the child's compartment and the family's), user/ and
	// system/ to what the roles allow.
	var patient, patientTeam *search.Confinement
	if validID.MatchString(p.Patient) {
		patient = pol.records(f, []string{p.Patient}, nil)
		var teams []string
		for _, t := range f.teams {
			if t.Subject == "Patient/"+p.Patient {
				teams = append(teams, t.ref)
			}
		}
		patientTeam = pol.records(f, []string{p.Patient}, teams)
	}
	level := func(k smart.Kind) (*search.Confinement, bool) {
		switch k {
		case smart.Patient:
			return patient, patient != nil
		case smart.User:
			_, ok := pol.confinement(p, k)
			return nil, ok
		case smart.System:
			return nil, true
		}
		return nil, false
	}
	var typ string
	if in.Write() {
		typ = types[0]
	}
	read, write, approve := pol.roleRules(reg, d, in, typ)
	a := &search.Access{
		Read:  intersect(pol.rules(p, reg, smart.Read|smart.Search, "", level), read, patient, patientTeam),
		Basis: d.basis,
	}
	if in.Write() {
		a.Write = intersect(pol.rules(p, reg, op, typ, level), write, patient, patientTeam)
	}
	if in.Write() || in == auth.Operation {
		a.Approve = intersect(pol.rules(p, reg, smart.Create|smart.Update, typ, level), approve, patient, patientTeam)
	}
	if pol.cache.trusted.Load() {
		pol.decisions.put(key, decided{gen: gen, reg: reg, until: clk.until, access: a})
	}
	return a, nil
}

// within reports whether every resource inside a is inside b: both are
// made of owners and ReferencedBy with the same compartment definitions,
// and a's are among b's.
func within(a, b *search.Confinement) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil || a.Person != "" || b.Person != "" || a.Referrers != b.Referrers ||
		reflect.ValueOf(a.Params).Pointer() != reflect.ValueOf(b.Params).Pointer() {
		return false
	}
	for _, o := range a.Owners {
		if !slices.Contains(b.Owners, o) {
			return false
		}
	}
	for _, o := range a.ReferencedBy {
		if !slices.Contains(b.ReferencedBy, o) {
			return false
		}
	}
	return true
}

// decisionKey names a decision: the caller's facts, scopes and patient
// in context, the interaction and its types.
func decisionKey(p *auth.Principal, refs []string, in auth.Interaction, types []string) string {
	var b strings.Builder
	b.WriteString(strings.Join(refs, " "))
	b.WriteByte('|')
	for _, s := range p.Scopes {
		b.WriteString(s.String())
		b.WriteByte(' ')
	}
	b.WriteByte('|')
	b.WriteString(p.Patient)
	b.WriteByte('|')
	b.WriteString(string(in))
	b.WriteByte('|')
	b.WriteString(strings.Join(types, ","))
	return b.String()
}

// decided is a decision kept for reuse: valid while the facts' generation
// and the registry are those it was made with, until the first moment
// its outcome could change with time (clock.until).
type decided struct {
	gen    uint64
	reg    *searchparam.Registry
	until  time.Time
	access *search.Access
}

// decisionCache keeps recent decisions, like the facts they rest on only
// while the policy listens for changes (Watch). An Access is read-only
// once made, so one can serve many requests.
type decisionCache struct {
	mu      sync.Mutex
	entries map[string]decided
}

// maxCachedDecisions bounds the cache; it is emptied when full.
const maxCachedDecisions = 20000

func (c *decisionCache) get(key string, gen uint64, reg *searchparam.Registry, now time.Time) (*search.Access, bool) {
	c.mu.Lock()
	d, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || d.gen != gen || d.reg != reg || !now.Before(d.until) {
		return nil, false
	}
	return d.access, true
}

func (c *decisionCache) put(key string, d decided) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCachedDecisions {
		c.entries = map[string]decided{}
	}
	c.entries[key] = d
}

// callerRefs are the caller's own references the facts start from: a
// local fhirUser, and the Organization behind a backend client.
func callerRefs(p *auth.Principal) []string {
	var refs []string
	if typ, id, ok := strings.Cut(p.FHIRUser, "/"); ok && validID.MatchString(id) && typ != "" {
		refs = append(refs, p.FHIRUser)
	}
	if id, ok := strings.CutPrefix(p.Organization, "Organization/"); ok && validID.MatchString(id) {
		refs = append(refs, p.Organization)
	}
	return refs
}

// intersect returns the rules that admit what a scope rule and a role rule
// both admit: the role rule's type (where the scope's allows it), both
// filters, and both confinements. A patient/ scope's confinement (patient)
// becomes patientTeam on the team section's people, which no compartment
// holds.
func intersect(scopes, roles []search.Rule, patient, patientTeam *search.Confinement) []search.Rule {
	var out []search.Rule
	for _, s := range scopes {
		for _, r := range roles {
			if s.Type != "" && s.Type != r.Type {
				continue
			}
			x := r
			if len(s.Where) > 0 {
				x.Where = slices.Concat(s.Where, r.Where)
			}
			if s.In != nil {
				in := s.In
				if in == patient && slices.Contains(teamTypes, r.Type) {
					in = patientTeam
				}
				if within(in, r.In) {
					// The scope's records are among the role's: their
					// intersection is the scope's, one confinement less
					// to test.
					x.In = in
				} else {
					x.And = append(slices.Clone(r.And), in)
				}
			}
			out = append(out, x)
		}
	}
	return out
}

// forbidden is the 403 of a denied interaction, with a hint when scopes that
// would have permitted it cannot be used.
func (pol *Policy) forbidden(p *auth.Principal, in auth.Interaction, typ string) error {
	what := typ + " resources"
	if typ == "" {
		what = "any resource type"
	}
	msg := fmt.Sprintf("the token's scopes do not permit %s on %s", in, what)
	op, _ := opOf(in)
	for _, s := range p.Scopes {
		if !s.Clinical() || s.Ops&op == 0 || (typ != "" && s.Type != "*" && s.Type != typ) {
			continue
		}
		if _, ok := pol.confinement(p, s.Kind); !ok {
			switch s.Kind {
			case smart.Patient:
				msg += "; patient/ scopes need a patient in context (the token has none)"
			case smart.User:
				msg += "; user/ scopes need a fhirUser on this server (Patient, RelatedPerson, Practitioner or Person; the token has none)"
			}
			break
		}
	}
	return fhir.Errorf(fhir.Forbidden, "", "%s", msg)
}

// validID is the R4 id datatype.
var validID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// confinement returns the compartments scopes of level k are confined to
// for p: nil for system/ scopes, and ok false when the level cannot be used
// (patient/ without a patient in context, user/ without a usable fhirUser).
func (pol *Policy) confinement(p *auth.Principal, k smart.Kind) (*search.Confinement, bool) {
	switch k {
	case smart.System:
		return nil, true
	case smart.Patient:
		if !validID.MatchString(p.Patient) {
			return nil, false
		}
		return &search.Confinement{
			Owners: []search.Owner{{Type: "Patient", ID: p.Patient}},
			Params: pol.one["Patient"],
		}, true
	case smart.User:
		typ, id, ok := strings.Cut(p.FHIRUser, "/")
		if !ok || !validID.MatchString(id) {
			return nil, false
		}
		switch typ {
		case "Patient", "RelatedPerson", "Practitioner":
			return &search.Confinement{
				Owners: []search.Owner{{Type: typ, ID: id}},
				Params: pol.one[typ],
			}, true
		case "Person":
			return &search.Confinement{Person: id, Params: pol.compartments}, true
		}
	}
	return nil, false
}

// rules returns the rules under which p's scopes permit one of ops on
// resources of type typ ("" for any type), on every level p can use;
// level gives each level's confinement, and false when p cannot use it.
func (pol *Policy) rules(p *auth.Principal, reg *searchparam.Registry, ops smart.Op, typ string, level func(smart.Kind) (*search.Confinement, bool)) []search.Rule {
	var out []search.Rule
	for _, s := range p.Scopes {
		if !s.Clinical() || s.Ops&ops == 0 || (typ != "" && s.Type != "*" && s.Type != typ) {
			continue
		}
		in, ok := level(s.Kind)
		if !ok {
			continue
		}
		ruleType := typ
		if ruleType == "" && s.Type != "*" {
			ruleType = s.Type
		}
		if len(s.Params) == 0 {
			out = append(out, search.Rule{Type: ruleType, In: in})
			continue
		}
		for _, r := range pol.filter(reg, ruleType, s.Params) {
			r.In = in
			out = append(out, r)
		}
	}
	return out
}

// filter returns the rules that admit the resources of type typ ("" for
// every type) matching a scope's constraint: one rule, or for a wildcard
// whose constraint uses parameters not common to all types, one rule per
// type on which it parses. A constraint that does not parse on a type gives
// no rule for it: the scope then admits nothing there.
func (pol *Policy) filter(reg *searchparam.Registry, typ string, params url.Values) []search.Rule {
	key := filterKey{reg: reg, typ: typ, params: params.Encode()}
	pol.mu.Lock()
	rules, ok := pol.filters[key]
	pol.mu.Unlock()
	if ok {
		return rules
	}
	if typ != "" {
		if where, ok := pol.parse(reg, []string{typ}, params); ok {
			rules = []search.Rule{{Type: typ, Where: where}}
		}
	} else if where, ok := pol.parse(reg, nil, params); ok {
		rules = []search.Rule{{Where: where}}
	} else {
		for _, t := range r4.ResourceTypes() {
			if where, ok := pol.parse(reg, []string{t}, params); ok {
				rules = append(rules, search.Rule{Type: t, Where: where})
			}
		}
	}
	pol.mu.Lock()
	if len(pol.filters) >= maxCachedFilters {
		clear(pol.filters)
	}
	pol.filters[key] = rules
	pol.mu.Unlock()
	return rules
}

// parse reads a scope constraint as search clauses on types, strictly: ok
// is false when a parameter is unknown, not indexed or malformed, or when
// the constraint would be anything but a filter.
func (pol *Policy) parse(reg *searchparam.Registry, types []string, params url.Values) ([]search.Clause, bool) {
	p := search.Parser{Registry: reg, Fold: searchparam.Fold, Base: pol.base}
	q, err := p.Parse(types, params, true)
	if err != nil || len(q.Where) == 0 || len(q.Include)+len(q.RevInclude)+len(q.Sort)+len(q.Elements) > 0 ||
		q.Summary != "" || q.Total != "none" || q.Cursor != "" {
		return nil, false
	}
	return q.Where, true
}

// Compartments returns the compartment definitions the policy confines
// patient/ and user/ scopes with: owner type (Patient, RelatedPerson,
// Practitioner) -> resource type -> reference parameters. For tests and
// documentation; the caller must not change it.
func (pol *Policy) Compartments() map[string]map[string][]string {
	return maps.Clone(pol.compartments)
}
