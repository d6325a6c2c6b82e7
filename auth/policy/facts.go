package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/mapping"
)

// This file reads the facts a decision rests on from the resources the
// store hands over (Config.Facts), and caches them per caller until one
// of them may have changed.

// facts is what the database says about one caller, independent of the
// time of the request: who they are, the teams they take part in, the
// Consents that name them, and the children those are about.
type facts struct {
	// identities are the caller's own resources as relative references:
	// the fhirUser (a Person and what it links to, with the
	// PractitionerRoles of a Practitioner among them), the Organization
	// behind a backend client.
	identities []string
	ident      map[string]bool
	teams      []team
	consents   []consent
	// children are the Patients the teams and Consents are about (and a
	// Patient who is the caller), by id.
	children map[string]*child
}

// team is a CareTeam the caller takes part in.
type team struct {
	ref string // CareTeam/id
	mapping.Team
}

// consent is an active-or-not Consent naming the caller (or a team of
// theirs) as its provision.actor, with its deny exceptions.
type consent struct {
	ref   string
	grant mapping.Grant
	deny  []deny
}

// deny is a nested provision of type deny: for the actors named (every
// actor of the Consent when none), the sections (provision.code) and
// items (provision.data, with their dependents) it names are not granted;
// with both, only the items in those sections.
type deny struct {
	actors   []string
	sections []mapping.Section
	items    []string
}

// child is a Patient some fact is about.
type child struct {
	id        string
	birthDate string
	groups    []string // ids of the Groups the child is a member of
}

// parseFacts reads the store's resources for a caller whose own refs are
// refs. A resource that does not read as its domain type (a CareTeam
// without team roles, a Consent that is not a grant) is left out: it
// grants nothing.
func parseFacts(refs []string, rs []fhir.Resource) *facts {
	f := &facts{ident: map[string]bool{}, children: map[string]*child{}}
	addIdent := func(ref string) {
		if ref != "" && !f.ident[ref] {
			f.ident[ref] = true
			f.identities = append(f.identities, ref)
		}
	}
	for _, ref := range refs {
		addIdent(ref)
	}
	byRef := map[string]fhir.Resource{}
	for _, r := range rs {
		byRef[r.Type+"/"+r.ID] = r
	}
	// A Person links to the caller's other identities; a PractitionerRole
	// of a Practitioner identity is one too.
	for _, ref := range refs {
		r, ok := byRef[ref]
		if !ok || r.Type != "Person" {
			continue
		}
		var p struct {
			Link []struct {
				Target struct {
					Reference string `json:"reference"`
				} `json:"target"`
			} `json:"link"`
		}
		if json.Unmarshal(r.Body, &p) == nil {
			for _, l := range p.Link {
				if _, ok := byRef[l.Target.Reference]; ok {
					addIdent(l.Target.Reference)
				}
			}
		}
	}
	for _, r := range rs {
		if r.Type != "PractitionerRole" {
			continue
		}
		var pr struct {
			Practitioner struct {
				Reference string `json:"reference"`
			} `json:"practitioner"`
		}
		if json.Unmarshal(r.Body, &pr) == nil && f.ident[pr.Practitioner.Reference] {
			addIdent("PractitionerRole/" + r.ID)
		}
	}
	for _, r := range rs {
		switch r.Type {
		case "CareTeam":
			t, err := mapping.TeamFromFHIR(r.Body)
			if err == nil {
				f.teams = append(f.teams, team{ref: "CareTeam/" + r.ID, Team: t})
			}
		case "Consent":
			if c, err := readConsent(r.Body); err == nil {
				c.ref = "Consent/" + r.ID
				f.consents = append(f.consents, c)
			}
		case "Patient":
			var p struct {
				BirthDate string `json:"birthDate"`
			}
			_ = json.Unmarshal(r.Body, &p)
			f.children[r.ID] = &child{id: r.ID, birthDate: p.BirthDate}
		}
	}
	for _, r := range rs {
		if r.Type != "Group" {
			continue
		}
		var g struct {
			Member []struct {
				Entity struct {
					Reference string `json:"reference"`
				} `json:"entity"`
			} `json:"member"`
		}
		if json.Unmarshal(r.Body, &g) != nil {
			continue
		}
		for _, m := range g.Member {
			if id, ok := strings.CutPrefix(m.Entity.Reference, "Patient/"); ok {
				if ch := f.children[id]; ch != nil && !slices.Contains(ch.groups, r.ID) {
					ch.groups = append(ch.groups, r.ID)
				}
			}
		}
	}
	for _, ch := range f.children {
		slices.Sort(ch.groups)
	}
	return f
}

// readConsent reads a grant (mapping.GrantFromFHIR) with the deny
// exceptions of its nested provisions, which the grant itself does not
// carry: they are taken out before the grant is read, and read here.
func readConsent(body []byte) (consent, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return consent{}, err
	}
	var c consent
	if raw, ok := top["provision"]; ok {
		var prov map[string]json.RawMessage
		if err := json.Unmarshal(raw, &prov); err != nil {
			return consent{}, err
		}
		if nested, ok := prov["provision"]; ok {
			var ps []struct {
				Type  string `json:"type"`
				Actor []struct {
					Reference struct {
						Reference string `json:"reference"`
					} `json:"reference"`
				} `json:"actor"`
				Code []struct {
					Coding []mapping.Coding `json:"coding"`
				} `json:"code"`
				Data []struct {
					Reference struct {
						Reference string `json:"reference"`
					} `json:"reference"`
				} `json:"data"`
				Provision json.RawMessage `json:"provision"`
			}
			if err := json.Unmarshal(nested, &ps); err != nil {
				return consent{}, err
			}
			for _, p := range ps {
				if p.Type != "deny" {
					// A nested permit would widen the grant in ways the
					// policy does not read: the whole Consent grants
					// nothing rather than more than it says.
					return consent{}, fmt.Errorf("nested provision of type %q", p.Type)
				}
				if len(p.Provision) > 0 {
					return consent{}, fmt.Errorf("provisions nested deeper than one level")
				}
				var d deny
				for _, a := range p.Actor {
					d.actors = append(d.actors, a.Reference.Reference)
				}
				for _, cc := range p.Code {
					for _, cd := range cc.Coding {
						if cd.System == mapping.SectionSystem {
							d.sections = append(d.sections, mapping.Section(cd.Code))
						}
					}
				}
				for _, x := range p.Data {
					d.items = append(d.items, x.Reference.Reference)
				}
				if len(d.sections) == 0 && len(d.items) == 0 {
					// Denies everything this Consent grants the actors.
					d.sections = sectionCodes()
				}
				c.deny = append(c.deny, d)
			}
			delete(prov, "provision")
			var err error
			if top["provision"], err = json.Marshal(prov); err != nil {
				return consent{}, err
			}
			if body, err = json.Marshal(top); err != nil {
				return consent{}, err
			}
		}
	}
	g, err := mapping.GrantFromFHIR(body)
	if err != nil {
		return consent{}, err
	}
	c.grant = g
	return c, nil
}

// sectionCodes returns every section.
func sectionCodes() []mapping.Section {
	var out []mapping.Section
	for _, s := range mapping.Sections() {
		out = append(out, s.Section)
	}
	return out
}

// clock is the moment a decision is made at, and the first moment after
// it at which a decision on the same facts could differ: the next
// midnight (birthdays, periods of whole days) or the next start or end of
// a period the decision looked at. A decision may be reused until then.
type clock struct {
	now   time.Time
	loc   *time.Location
	until time.Time
}

func newClock(now time.Time, loc *time.Location) *clock {
	y, m, d := now.In(loc).Date()
	return &clock{now: now, loc: loc, until: time.Date(y, m, d+1, 0, 0, 0, 0, loc)}
}

// boundary notes a moment at which what was decided may change.
func (c *clock) boundary(t time.Time) {
	if t.After(c.now) && t.Before(c.until) {
		c.until = t
	}
}

// covers reports whether period p holds now, read in the clock's zone:
// from the start of its start to the end of its end (a date covers its
// whole day); an open end is open. A period that does not parse covers
// nothing.
func (c *clock) covers(p mapping.Period) bool {
	ok := true
	if p.Start != "" {
		r, err := fhir.ParseDate(p.Start, c.loc)
		if err != nil {
			return false
		}
		c.boundary(r.Start)
		ok = !c.now.Before(r.Start)
	}
	if p.End != "" {
		r, err := fhir.ParseDate(p.End, c.loc)
		if err != nil {
			return false
		}
		c.boundary(r.End)
		ok = ok && c.now.Before(r.End)
	}
	return ok
}

// factCache keeps the facts of recent callers while they are known to be
// current: from the moment the policy listens for changes (Watch) until
// it stops, and for each entry until the generation moves on (a write of
// one of the types facts are made of, on any instance).
type factCache struct {
	gen     atomic.Uint64
	trusted atomic.Bool
	mu      sync.Mutex
	entries map[string]factEntry
}

type factEntry struct {
	gen uint64
	f   *facts
}

// maxCachedFacts bounds the cache; it is emptied when full.
const maxCachedFacts = 10000

func (c *factCache) get(key string) (*facts, uint64, bool) {
	gen := c.gen.Load()
	if !c.trusted.Load() {
		return nil, gen, false
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || e.gen != gen {
		return nil, gen, false
	}
	return e.f, gen, true
}

// put keeps f, loaded when the generation was gen; a bump since makes it
// stale at once.
func (c *factCache) put(key string, gen uint64, f *facts) {
	if !c.trusted.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCachedFacts {
		c.entries = map[string]factEntry{}
	}
	c.entries[key] = factEntry{gen: gen, f: f}
}

// Changed tells the policy that a resource its facts are made of
// (store/postgres PolicyTypes) was written: every cached fact is stale
// from now on. The store calls it after each commit of such a write
// (postgres.Store.OnPolicyChange); Watch calls it for the writes of every
// instance.
func (pol *Policy) Changed() { pol.cache.gen.Add(1) }

// ChangeFeed is how the policy hears of writes by other instances:
// store/postgres implements it with LISTEN/NOTIFY (ListenPolicy).
type ChangeFeed interface {
	// ListenPolicy listens for committed writes of the facts' types, calls
	// ready once listening, then changed with the type of each, until ctx
	// ends or the connection fails (an error).
	ListenPolicy(ctx context.Context, ready func(context.Context) error, changed func(typ string)) error
}

// Watch keeps the policy's cache of facts current from feed until ctx
// ends. It blocks: run it in a goroutine. Only while it listens are facts
// cached at all; before, and from a lost connection until it listens
// again, every decision reads its facts from the database.
func (pol *Policy) Watch(ctx context.Context, feed ChangeFeed) {
	wait := 100 * time.Millisecond
	for {
		err := feed.ListenPolicy(ctx, func(context.Context) error {
			pol.Changed() // whatever was cached before listening is suspect
			pol.cache.trusted.Store(true)
			wait = 100 * time.Millisecond
			return nil
		}, func(string) { pol.Changed() })
		pol.cache.trusted.Store(false)
		pol.Changed()
		if ctx.Err() != nil {
			return
		}
		if err != nil && pol.log != nil {
			pol.log.WarnContext(ctx, "policy: change listener lost; reading facts per request until it is back", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// factsOf returns the facts of the caller with own refs refs, from the
// cache or the store.
func (pol *Policy) factsOf(ctx context.Context, refs []string) (*facts, error) {
	key := strings.Join(refs, " ")
	if f, _, ok := pol.cache.get(key); ok {
		return f, nil
	}
	gen := pol.cache.gen.Load()
	rs, err := pol.facts(ctx, refs)
	if err != nil {
		return nil, &fhir.Error{Kind: fhir.Unavailable, Err: fmt.Errorf("policy: read facts: %w", err), Issues: []fhir.Issue{{
			Code: "transient", Diagnostics: "the access policy cannot be evaluated now; try again later",
		}}}
	}
	f := parseFacts(refs, rs)
	pol.cache.put(key, gen, f)
	return f, nil
}
