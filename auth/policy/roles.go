package policy

import (
	"slices"
	"sort"
	"strings"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/mapping"
)

// This file turns the facts of a caller, at the time of a request, into
// rules: the roles they hold (CareTeam memberships), what each role may do
// in which section (mapping.RoleInfo), for whose records (mapping.Scope),
// limited by each child's age band (mapping.Rights) and widened only by
// the Consents in force. docs/access-policy.md states the rules.

// groupCompartment places resources in the compartment of a family Group:
// the records whose subject is the family (the parenting plan, its
// agreements and goals, the notes and evaluations on them, documents and
// change requests about the whole family). R4 defines no Group
// compartment; this is the project's.
var groupCompartment = map[string][]string{
	"CarePlan":              {"subject"},
	"Communication":         {"subject"},
	"Condition":             {"subject"},
	"DocumentReference":     {"subject"},
	"Flag":                  {"subject"},
	"Goal":                  {"subject"},
	"Observation":           {"subject"},
	"QuestionnaireResponse": {"subject"},
	"Task":                  {"subject"},
}

// authored places a resource in the compartment of who wrote, sent or
// performed it: what "update and delete only what one wrote" confines
// to, whatever the writer's resource type.
var authored = map[string][]string{
	"Appointment":           {"actor"},
	"Communication":         {"sender"},
	"Condition":             {"asserter"},
	"DocumentReference":     {"author"},
	"Flag":                  {"author"},
	"Observation":           {"performer"},
	"QuestionnaireResponse": {"author"},
	"Task":                  {"requester"},
}

// teamTypes are the resources of the team section that are in no
// compartment: they are readable when a CareTeam of the records names them.
var teamTypes = []string{"Practitioner", "PractitionerRole", "Organization"}

// definitionTypes are the conformance and definitional resources (the
// implementation guide, the evaluation forms), readable by every caller
// whose scopes cover them: they are about no one.
var definitionTypes = []string{"CapabilityStatement", "CodeSystem", "ImplementationGuide", "Questionnaire", "SearchParameter", "StructureDefinition", "ValueSet"}

// auditorTypes are all an auditor reads: permissions and the access log,
// never content.
var auditorTypes = []string{"Consent", "CareTeam", "AuditEvent", "Provenance"}

// grantOf is what one role (or one Consent) allows in one section, over
// one set of records.
type grantOf struct {
	section mapping.Section
	allow   []mapping.Interaction
	in      *search.Confinement   // the records
	team    *search.Confinement   // the records plus what their teams name (team section)
	also    []*search.Confinement // items a Consent names (both must hold)
	not     []*search.Confinement // items a deny exception names
	types   []string              // when set, only these resource types
}

// decision is what the roles and Consents of a caller allow now.
type decision struct {
	grants    []grantOf
	own       *search.Confinement // what the caller wrote
	parties   []string            // the caller's identities and roles, for withheld labels
	basis     []string
	dossier   bool // holds the dossierhouder role somewhere
	approveIn []grantOf
}

// membership is one active participation of the caller in a team.
type membership struct {
	team   *team
	member string
	role   mapping.Role
	child  string // the team's child (Patient id)
}

// decideRoles computes the caller's grants at the clock's now, and moves
// the clock's until to the first moment they could change.
func (pol *Policy) decideRoles(f *facts, clk *clock) *decision {
	d := &decision{}
	now, loc := clk.now, clk.loc
	// Active memberships.
	var ms []membership
	roles := map[mapping.Role]bool{}
	for i := range f.teams {
		t := &f.teams[i]
		child, ok := strings.CutPrefix(t.Subject, "Patient/")
		if t.Status != "active" || !ok {
			continue
		}
		for _, m := range t.Members {
			if f.ident[m.Member] && clk.covers(m.Period) {
				ms = append(ms, membership{team: t, member: m.Member, role: m.Role, child: child})
				roles[m.Role] = true
			}
		}
	}
	d.parties = slices.Clone(f.identities)
	for r := range roles {
		d.parties = append(d.parties, string(r))
	}
	sort.Strings(d.parties)
	d.own = &search.Confinement{Params: map[string]map[string][]string{}}
	for _, id := range f.identities {
		typ, rid, _ := strings.Cut(id, "/")
		d.own.Owners = append(d.own.Owners, search.Owner{Type: typ, ID: rid})
		d.own.Params[typ] = authored
	}
	rights := map[string]mapping.Rights{}
	rightsOf := func(childID string) mapping.Rights {
		if r, ok := rights[childID]; ok {
			return r
		}
		var r mapping.Rights
		ch := f.children[childID]
		if ch == nil {
			r = mapping.AgeBand(0).Rights()
		} else if x, err := mapping.RightsAt(ch.birthDate, now, loc); err == nil {
			r = x
		} else {
			// No or a bad birth date: the most restrictive reading.
			r = mapping.AgeBand(0).Rights()
		}
		rights[childID] = r
		return r
	}
	basis := map[string]bool{}
	// Defaults by role, grouped by (role, scope) over the children they
	// apply to.
	type key struct {
		role  mapping.Role
		scope mapping.Scope
	}
	owners := map[key][]string{}  // children whose records
	selfOf := map[key][]string{}  // the member refs (ScopeSelf)
	teamsOf := map[key][]string{} // the teams that name the team section's people
	for _, m := range ms {
		info, ok := m.role.Info()
		if !ok {
			continue
		}
		r := rightsOf(m.child)
		use := true
		switch m.role {
		case mapping.ParentWithAuthority:
			// From 16 a parent reads only what the child consents to;
			// from 18 parental access has ended.
			use = !r.ParentReadsOnlyConsented && !r.ParentalAccessEnds
		case mapping.Child:
			use = r.OwnAccess
		}
		for _, a := range info.Defaults {
			k := key{m.role, a.Scope}
			if a.Scope == mapping.ScopeChildren && !use {
				continue
			}
			if m.role == mapping.Child && !use {
				continue
			}
			basis[m.team.ref] = true
			owners[k] = appendNew(owners[k], m.child)
			selfOf[k] = appendNew(selfOf[k], m.member)
			teamsOf[k] = appendNew(teamsOf[k], m.team.ref)
		}
		if m.role == mapping.Dossierhouder {
			d.dossier = true
		}
	}
	keys := make([]key, 0, len(owners))
	for k := range owners {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].role != keys[j].role {
			return keys[i].role < keys[j].role
		}
		return keys[i].scope < keys[j].scope
	})
	for _, k := range keys {
		info, _ := k.role.Info()
		var in, withTeam *search.Confinement
		switch {
		case k.scope == mapping.ScopeSelf && k.role != mapping.Child:
			in = pol.selfRecords(selfOf[k])
			withTeam = in
		default: // ScopeChildren, ScopeEnvironment, a child's ScopeSelf
			in = pol.records(f, owners[k], nil)
			withTeam = pol.records(f, owners[k], teamsOf[k])
		}
		for _, a := range info.Defaults {
			if a.Scope != k.scope {
				continue
			}
			g := grantOf{section: a.Section, allow: a.Allow, in: in, team: withTeam}
			if k.role == mapping.Auditor {
				g.types = auditorTypes
			}
			d.grants = append(d.grants, g)
		}
	}
	// Consents in force: active, in their period, naming the caller (or a
	// team of theirs), given by whom the child's age band asks today, and
	// never beyond what the caller's role in the child's team may be
	// granted.
	for _, c := range f.consents {
		g := c.grant
		child, ok := strings.CutPrefix(g.Patient, "Patient/")
		if g.Status != mapping.ConsentActive || !ok || !clk.covers(g.Period) {
			continue
		}
		var held []membership
		for _, m := range ms {
			if m.child == child && (f.ident[g.Grantee] || g.Grantee == m.team.ref) {
				held = append(held, m)
			}
		}
		if len(held) == 0 || !consentedEnough(g, held[0].team, held, rightsOf(child), clk) {
			continue
		}
		used := false
		for _, m := range held {
			info, _ := m.role.Info()
			sections := g.Sections
			if len(sections) == 0 {
				sections = sectionCodes() // items only: in whatever section they are
			}
			for _, s := range sections {
				var allow []mapping.Interaction
				for _, in := range g.Interactions {
					if m.role.MayBeGranted(s, in) {
						allow = append(allow, in)
					}
				}
				if len(allow) == 0 || denied(c.deny, f, s, true) {
					continue
				}
				gr := grantOf{section: s, allow: allow, in: pol.records(f, []string{child}, nil), team: pol.records(f, []string{child}, []string{m.team.ref})}
				if len(g.Items) > 0 {
					gr.also = []*search.Confinement{dependents(g.Items)}
				}
				for _, dn := range c.deny {
					if len(dn.items) > 0 && appliesTo(dn, f) && (len(dn.sections) == 0 || slices.Contains(dn.sections, s)) {
						gr.not = append(gr.not, dependents(dn.items))
					}
				}
				if info.Role == mapping.Auditor {
					gr.types = auditorTypes
				}
				d.grants = append(d.grants, gr)
				used = true
			}
		}
		if used {
			basis[c.ref] = true
			for _, m := range held {
				basis[m.team.ref] = true
			}
		}
	}
	for b := range basis {
		d.basis = append(d.basis, b)
	}
	sort.Strings(d.basis)
	return d
}

// consentedEnough reports whether the performers of grant g satisfy the
// child's age band today: the child's consent when the band asks for it,
// a parent's with authority (a member of the child's team with that role)
// when it asks for that; a grant of own access to a child who has none
// yet needs a parent with authority or the dossierhouder. A Consent that
// does not is not in force, whatever its status: one given by the
// parents alone lapses on the child's 12th birthday.
func consentedEnough(g mapping.Grant, t *team, held []membership, r mapping.Rights, clk *clock) bool {
	by := func(want ...mapping.Role) bool {
		for _, p := range g.ConsentedBy {
			for _, m := range t.Members {
				if m.Member == p && slices.Contains(want, m.Role) && clk.covers(m.Period) {
					return true
				}
			}
		}
		return false
	}
	child := slices.Contains(g.ConsentedBy, t.Subject)
	for _, m := range held {
		if m.role == mapping.Child {
			if r.OwnAccess {
				return child || by(mapping.ParentWithAuthority, mapping.Dossierhouder)
			}
			return by(mapping.ParentWithAuthority, mapping.Dossierhouder)
		}
	}
	if r.SharingNeedsChildConsent && !child {
		return false
	}
	if r.SharingNeedsParentConsent && !by(mapping.ParentWithAuthority) {
		return false
	}
	return len(g.ConsentedBy) > 0
}

// denied reports whether a deny exception of a Consent takes section s
// away from the caller altogether (sections named without items).
func denied(ds []deny, f *facts, s mapping.Section, _ bool) bool {
	for _, d := range ds {
		if len(d.items) == 0 && appliesTo(d, f) && slices.Contains(d.sections, s) {
			return true
		}
	}
	return false
}

// appliesTo reports whether deny d is about the caller: it names no
// actors, or one of the caller's identities.
func appliesTo(d deny, f *facts) bool {
	if len(d.actors) == 0 {
		return true
	}
	for _, a := range d.actors {
		if f.ident[a] {
			return true
		}
	}
	return false
}

// dependents is the confinement of items with the resources that refer to
// them (Consent.provision.data meaning "dependents").
func dependents(items []string) *search.Confinement {
	c := &search.Confinement{Referrers: true}
	for _, it := range items {
		if typ, id, ok := strings.Cut(it, "/"); ok {
			c.Owners = append(c.Owners, search.Owner{Type: typ, ID: id})
		}
	}
	return c
}

// records is the confinement of the children's records: their Patient
// compartments and those of their family Groups, and with teams, the
// people and organisations those CareTeams name.
func (pol *Policy) records(f *facts, children []string, teams []string) *search.Confinement {
	c := &search.Confinement{Params: pol.recordParams}
	seen := map[string]bool{}
	for _, id := range children {
		c.Owners = append(c.Owners, search.Owner{Type: "Patient", ID: id})
		if ch := f.children[id]; ch != nil {
			for _, g := range ch.groups {
				if !seen[g] {
					seen[g] = true
					c.Owners = append(c.Owners, search.Owner{Type: "Group", ID: g})
				}
			}
		}
	}
	for _, t := range teams {
		typ, id, _ := strings.Cut(t, "/")
		c.ReferencedBy = append(c.ReferencedBy, search.Owner{Type: typ, ID: id})
	}
	return c
}

// selfRecords is the confinement of the records about and by the given
// members themselves (a parent's own development plan, their messages).
func (pol *Policy) selfRecords(members []string) *search.Confinement {
	c := &search.Confinement{Params: pol.compartments}
	for _, m := range members {
		if typ, id, ok := strings.Cut(m, "/"); ok {
			c.Owners = append(c.Owners, search.Owner{Type: typ, ID: id})
		}
	}
	return c
}

func appendNew(xs []string, x string) []string {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}

// carrierRules are the rules that admit the resources of one section,
// parsed on one registry: one per carrier, its codings as token clauses
// (category, or code for a Task), and for a carrier without codings,
// :not clauses for the codings of the type's other carriers.
type carrierRule struct {
	section mapping.Section
	typ     string
	where   []search.Clause
	codes   []mapping.Coding
}

// carriers returns the carrier rules of every section on reg, made once
// per registry.
func (pol *Policy) carriers(reg *searchparam.Registry) []carrierRule {
	pol.mu.Lock()
	defer pol.mu.Unlock()
	if pol.carrierReg == reg && pol.carrierRules != nil {
		return pol.carrierRules
	}
	coded := map[string][]mapping.Coding{} // type -> the first coding of its coded carriers
	for _, s := range mapping.Sections() {
		for _, c := range s.Carriers {
			if len(c.Codes) > 0 && !slices.ContainsFunc(coded[c.ResourceType], c.Codes[0].Is) {
				coded[c.ResourceType] = append(coded[c.ResourceType], c.Codes[0])
			}
		}
	}
	var out []carrierRule
	for _, s := range mapping.Sections() {
		for _, c := range s.Carriers {
			param := "category"
			if c.ResourceType == "Task" {
				param = "code"
			}
			cr := carrierRule{section: s.Section, typ: c.ResourceType, codes: c.Codes}
			ok := true
			if len(c.Codes) > 0 {
				for _, cd := range c.Codes {
					cl, found := tokenClause(reg, c.ResourceType, param, "", cd.System, cd.Code)
					ok = ok && found
					cr.where = append(cr.where, cl)
				}
			} else if others := coded[c.ResourceType]; len(others) > 0 {
				cl, found := tokenClause(reg, c.ResourceType, param, search.ModNot, "", "")
				cl.Values = nil
				for _, o := range others {
					cl.Values = append(cl.Values, search.Token{System: o.System, Code: o.Code, SystemGiven: true})
				}
				ok = ok && found
				cr.where = append(cr.where, cl)
			}
			if ok {
				out = append(out, cr)
			}
		}
	}
	pol.carrierReg, pol.carrierRules = reg, out
	return out
}

// tokenClause is the clause code[:mod]=system|value on typ; false when typ
// has no such token parameter.
func tokenClause(reg *searchparam.Registry, typ, code string, mod search.Modifier, system, value string) (search.Clause, bool) {
	p, ok := reg.Lookup(typ, code)
	if !ok || p.Kind != searchparam.Token {
		return search.Clause{}, false
	}
	return search.Clause{Param: p, Modifier: mod, Values: []search.Value{search.Token{System: system, Code: value, SystemGiven: true}}}, true
}

// withheld is the clause that leaves out what is withheld from the
// caller: _security:not=WithheldSystem|<party>, for each of parties.
func withheld(reg *searchparam.Registry, typ string, parties []string) (search.Clause, bool) {
	p, ok := reg.Lookup(typ, "_security")
	if !ok || len(parties) == 0 {
		return search.Clause{}, false
	}
	cl := search.Clause{Param: p, Modifier: search.ModNot}
	for _, party := range parties {
		cl.Values = append(cl.Values, search.Token{System: mapping.WithheldSystem, Code: party, SystemGiven: true})
	}
	return cl, true
}

// statusClause is the clause that keeps a lifecycle type (mapping.LifecycleOf)
// to its proposed status.
func statusClause(reg *searchparam.Registry, l mapping.Lifecycle) (search.Clause, bool) {
	code := "status"
	if l.ResourceType == "Goal" {
		code = "lifecycle-status"
	}
	p, ok := reg.Lookup(l.ResourceType, code)
	if !ok || p.Kind != searchparam.Token {
		return search.Clause{}, false
	}
	return search.Clause{Param: p, Values: []search.Value{search.Token{Code: l.Proposed}}}, true
}

// roleRules returns the rules of d for interaction in on resources of type
// typ ("" for every type, reads only): read rules for reads, write rules
// for writes, and the dossierhouder's approval rules.
func (pol *Policy) roleRules(reg *searchparam.Registry, d *decision, in auth.Interaction, typ string) (read, write, approve []search.Rule) {
	crs := pol.carriers(reg)
	withheldOf := map[string][]search.Clause{}
	hide := func(t string) []search.Clause {
		if w, ok := withheldOf[t]; ok {
			return w
		}
		var w []search.Clause
		if cl, ok := withheld(reg, t, d.parties); ok {
			w = []search.Clause{cl}
		}
		withheldOf[t] = w
		return w
	}
	rule := func(g grantOf, cr carrierRule, extra ...search.Clause) search.Rule {
		in := g.in
		if slices.Contains(teamTypes, cr.typ) {
			in = g.team
		}
		where := slices.Concat(cr.where, extra, hide(cr.typ))
		return search.Rule{Type: cr.typ, Where: where, In: in, And: g.also, Not: g.not}
	}
	// The definitions the server publishes hold no personal data:
	// whoever's scopes cover them may read them.
	for _, t := range definitionTypes {
		read = append(read, search.Rule{Type: t, Where: hide(t)})
	}
	// The caller's own resources (a Person, its RelatedPersons, a
	// Practitioner, the Organization behind a client) are always theirs
	// to read: an app shows whom it acts for.
	for _, o := range d.own.Owners {
		read = append(read, search.Rule{Type: o.Type, Where: hide(o.Type), In: &search.Confinement{Owners: []search.Owner{o}}})
	}
	for _, g := range d.grants {
		for _, cr := range crs {
			if cr.section != g.section || (g.types != nil && !slices.Contains(g.types, cr.typ)) {
				continue
			}
			if slices.Contains(g.allow, mapping.Read) {
				read = append(read, rule(g, cr))
			}
			if typ != "" && cr.typ != typ {
				continue
			}
			life, lifecycle := mapping.LifecycleOf(cr.typ)
			class := mapping.WriteClass(cr.typ, cr.codes)
			if slices.Contains(g.allow, mapping.Approve) && (class == mapping.Propose) {
				approve = append(approve, rule(g, cr))
			}
			if !in.Write() && in != auth.Operation {
				continue
			}
			switch {
			case slices.Contains(g.allow, mapping.Approve):
				// The dossierhouder writes every kind of the section.
				write = append(write, rule(g, cr))
			case class == mapping.WriteOwnNotes && slices.Contains(g.allow, mapping.WriteOwnNotes):
				// What one writes is one's own: a create names the caller
				// as its author (sender, performer...), and an update or
				// delete replaces only what the caller wrote. Types
				// without an author (Binary) are created freely and
				// amended by no one.
				r := rule(g, cr)
				if _, ok := authored[cr.typ]; ok || in != auth.Create {
					r.And = append(slices.Clone(r.And), d.own)
				}
				write = append(write, r)
			case class == mapping.Propose && lifecycle && slices.Contains(g.allow, mapping.Propose):
				if cl, ok := statusClause(reg, life); ok {
					write = append(write, rule(g, cr, cl))
				}
			case g.section == mapping.SectionTeam && cr.typ == "Task" && slices.Contains(g.allow, mapping.Propose):
				// An invitation is the team's proposal: it is itself
				// the request to the dossierhouder.
				write = append(write, rule(g, cr))
			}
		}
	}
	return read, write, approve
}
