// Package policy is the access decision point: the one function (Decide)
// that answers, for the caller of a request, an interaction and the
// resource types it acts on, whether it is allowed and, if so, which
// resources the request may see and write. The answer is a search.Access,
// a plain value that the store compiles into every read and write it does.
//
// Today the decision follows the caller's SMART scopes
// (http://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):
//
//   - patient/ scopes admit the resources in the Patient compartment of the
//     patient in context (auth.Principal.Patient), and that Patient;
//   - user/ scopes admit the resources in the user's own compartment: the
//     Patient, RelatedPerson or Practitioner compartment of the fhirUser, and
//     for a Person the compartments of the resources it links to with
//     Person.link (and the Person itself);
//   - system/ scopes admit every resource of the types granted;
//   - a granular v2 scope (?category=...) admits only the resources that
//     match its search parameters, parsed strictly: a constraint that cannot
//     be parsed makes its scope admit nothing, never more;
//   - an operator (auth.Principal.Operator) may do everything.
//
// A caller with scopes on several levels gets the union. The care-team and
// consent policy of the Digitale Ouder record (issue #7: what a parent with
// parental authority, a child of 12 and older, an invited helper or the
// dossierhouder may see) extends the user/ level through this same
// function: more rules in the Access it returns, compiled by the same store
// code.
package policy

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"strings"
	"sync"

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

// New returns a Policy. It panics if c.Registry is nil: a Policy without one
// could not parse any constraint.
func New(c Config) *Policy {
	if c.Registry == nil {
		panic("policy.New: Config.Registry is nil")
	}
	pol := &Policy{
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
// one type.
//
// The error is a *fhir.Error: Forbidden when the caller has no usable scope
// that permits the interaction on one of the types (or, for a whole-system
// interaction, on any type), Unauthorized when p is nil, Internal for a
// misuse (an unknown interaction, a write with other than one type).
func (pol *Policy) Decide(p *auth.Principal, in auth.Interaction, types ...string) (*search.Access, error) {
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
	if len(types) == 0 {
		if len(pol.rules(p, reg, op, "")) == 0 {
			return nil, pol.forbidden(p, in, "")
		}
	}
	a := &search.Access{}
	for _, t := range types {
		rules := pol.rules(p, reg, op, t)
		if len(rules) == 0 {
			return nil, pol.forbidden(p, in, t)
		}
		if in.Write() {
			a.Write = rules
		}
	}
	a.Read = pol.rules(p, reg, smart.Read|smart.Search, "")
	return a, nil
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
// resources of type typ ("" for any type), on every level p can use.
func (pol *Policy) rules(p *auth.Principal, reg *searchparam.Registry, ops smart.Op, typ string) []search.Rule {
	var out []search.Rule
	for _, s := range p.Scopes {
		if !s.Clinical() || s.Ops&ops == 0 || (typ != "" && s.Type != "*" && s.Type != typ) {
			continue
		}
		in, ok := pol.confinement(p, s.Kind)
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
