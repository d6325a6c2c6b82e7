package family

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/digitaleouder/ouder/mapping"
)

// A spec describes one family situation in domain terms: who is in it, what
// was agreed and written, relative to the day it is built for. Demo fills
// one by hand, Generate from a random stream; build turns either into
// resources, so the demo and generated families have one shape.
type spec struct {
	prefix string // id prefix of every resource: "demo", "g1-42"
	tag    string // TagDemo or TagSynthetic
	name   string // the family's display name

	parents       []parentSpec // two separated parents
	children      []childSpec  // eldest first
	dossierhouder proSpec
	helpers       []helperSpec // invited helpers
	systems       []systemSpec // external systems in the children's teams
	childGrants   []childGrantSpec

	planTitle    string
	planStart    int // days ago the parenting plan started
	agreements   []agreementSpec
	diary        []diarySpec
	messages     []messageSpec
	appointments []appointmentSpec
	documents    []documentSpec
}

// personSpec is a named person; key makes their ids readable and unique in
// the family ("anna", "ouder1").
type personSpec struct {
	key    string
	given  string
	family string
	gender string
}

func (p personSpec) name() mapping.Name {
	return mapping.Name{Given: []string{p.given}, Family: p.family}
}

type parentSpec struct {
	personSpec
	rel       mapping.Relationship
	authority bool // parental authority (ouderlijk gezag)
}

type childSpec struct {
	personSpec
	age int // completed years today
	// birthOffset: the last birthday was this many days ago, 1..364; 0:
	// the birthday (of age) is today; -1: tomorrow is the birthday of
	// age+1 (for the age rules on and just before a birthday).
	birthOffset int
	planTitle   string
	help        helpSpec
	goals       []goalSpec
	agreements  []agreementSpec // of the child plan; keys unique in the family
}

type helpSpec struct {
	question string
	domain   mapping.Domain
	asker    int // index of the parent who asked
	daysAgo  int
}

type goalSpec struct {
	domain   mapping.Domain
	text     string
	status   string
	progress string // goal progress reported by a helper (or a parent); optional
}

type orgSpec struct {
	key, name, kind string
}

// proSpec is a professional with the organisation they work for.
type proSpec struct {
	personSpec
	qualification string
	org           orgSpec
}

type helperSpec struct {
	proSpec
	role         mapping.Role
	children     []int // indexes of the children they help
	sections     []mapping.Section
	startDaysAgo int
	observations []observationSpec
	consent      consentMode
}

// consentMode is how a helper's (or a system's) Consents are given.
type consentMode int

const (
	// consentAsRequired: consented by whom the child's age band asks today.
	consentAsRequired consentMode = iota
	// consentByParents: consented by the parents with authority alone,
	// which is in force only while the child is under 12.
	consentByParents
	// consentNone: a team member without any Consent.
	consentNone
	// consentExpired: the Consent's period ended yesterday.
	consentExpired
)

// systemSpec is an external system (a school's administration, a
// youth-care client record system, an auditor) acting for an organisation
// that is a member of the children's teams.
type systemSpec struct {
	org      orgSpec
	role     mapping.Role
	children []int
	grants   []systemGrant // one Consent per grant and child
	consent  consentMode
}

// systemGrant is what one Consent grants a system.
type systemGrant struct {
	sections     []mapping.Section
	interactions []mapping.Interaction
}

// childGrantSpec is a Consent a child gives a parent: from 16 a parent
// reads only what the child grants.
type childGrantSpec struct {
	child, parent int
	sections      []mapping.Section
	interactions  []mapping.Interaction
}

type observationSpec struct {
	child   int
	domain  mapping.Domain
	topic   string
	text    string
	daysAgo int
}

type agreementSpec struct {
	key         string
	title       string
	description string
	draft       bool // proposed by a parent, awaiting the dossierhouder (with a change request)
	proposer    int  // the parent who proposed it
	notes       []noteSpec
	evaluation  *evaluationSpec
}

// author is who wrote something: a parent (by index), or, when child >= 0,
// that child, or, when helper >= 0, that helper.
type author struct {
	parent int
	child  int
	helper int
}

func byParent(i int) author { return author{parent: i, child: -1, helper: -1} }
func byChild(i int) author  { return author{child: i, helper: -1} }
func byHelper(i int) author { return author{child: -1, helper: i} }

type noteSpec struct {
	author  author
	text    string
	daysAgo int
}

type evaluationSpec struct {
	author  int // parent index
	how     string
	grade   int
	daysAgo int
}

type diarySpec struct {
	child   int
	author  author
	text    string
	daysAgo int
}

type messageSpec struct {
	from, to int // parent indexes; the dossierhouder always receives a copy
	child    int
	text     string
	daysAgo  int
}

type appointmentSpec struct {
	description string
	child       int
	helper      int // index into helpers, or -1 for the dossierhouder
	inDays      int
	hour, min   int
	minutes     int
}

type documentSpec struct {
	key         string
	child       int // -1: about the whole family
	author      int // parent index
	title       string
	description string
	contentType string
	data        string
	daysAgo     int
}

// day is the calendar of one build: today's date in a location.
type day struct {
	today time.Time // midnight of today in loc
}

func newDay(now time.Time) day {
	y, m, d := now.Date()
	return day{today: time.Date(y, m, d, 0, 0, 0, 0, now.Location())}
}

// date returns the FHIR date daysAgo days before today (negative: ahead).
func (d day) date(daysAgo int) string { return d.today.AddDate(0, 0, -daysAgo).Format(time.DateOnly) }

// instant returns the FHIR instant at hour:min, daysAgo days before today.
func (d day) instant(daysAgo, hour, min int) string {
	t := d.today.AddDate(0, 0, -daysAgo)
	return time.Date(t.Year(), t.Month(), t.Day(), hour, min, 0, 0, t.Location()).Format(time.RFC3339)
}

// birthDate returns the birth date of someone who is age today and whose
// last birthday was offset days ago (1 <= offset <= 364), so they are age
// on every day from today until their next birthday, whatever the time
// zone. A 29 February that does not exist in the birth year becomes 1
// March, which is still before today.
//
// Offset 0 means the birthday is today, and -1 that the birthday of age+1
// is tomorrow (the last day of age).
func (d day) birthDate(age, offset int) string {
	if offset == -1 {
		next := d.today.AddDate(0, 0, 1)
		return time.Date(next.Year()-age-1, next.Month(), next.Day(), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	}
	last := d.today.AddDate(0, 0, -offset)
	return time.Date(last.Year()-age, last.Month(), last.Day(), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}

// builder collects the resources of one family; the first error sticks.
type builder struct {
	s   *spec
	d   day
	out []Resource
	err error
}

func (b *builder) id(parts ...string) string { return b.s.prefix + "-" + strings.Join(parts, "-") }

// add records the resource a conversion made, claiming the implementation
// guide's profiles it conforms to.
func (b *builder) add(typ, id string, body []byte, err error, profiles ...string) {
	if b.err != nil {
		return
	}
	if err != nil {
		b.err = fmt.Errorf("family %s: %s/%s: %w", b.s.prefix, typ, id, err)
		return
	}
	body, err = tagged(body, typ, id, b.s.tag, profiles...)
	if err != nil {
		b.err = err
		return
	}
	b.out = append(b.out, Resource{Type: typ, ID: id, JSON: body})
}

func (b *builder) ident(id string) []mapping.Identifier {
	return []mapping.Identifier{{System: IdentifierSystem, Value: id}}
}

// The ids of the family's resources.
func (b *builder) childID(c int) string { return b.id(b.s.children[c].key) }
func (b *builder) childRef(c int) string {
	return "Patient/" + b.childID(c)
}
func (b *builder) parentRef(p, c int) string {
	return "RelatedPerson/" + b.id(b.s.parents[p].key, b.s.children[c].key)
}
func (b *builder) groupRef() string         { return "Group/" + b.id("gezin") }
func (b *builder) planRef() string          { return "CarePlan/" + b.id("ouderschapsplan") }
func (b *builder) dossierhouderRef() string { return "Practitioner/" + b.id(b.s.dossierhouder.key) }
func (b *builder) helperRef(h int) string   { return "Practitioner/" + b.id(b.s.helpers[h].key) }
func (b *builder) orgRef(o orgSpec) string  { return "Organization/" + b.id(o.key) }

// authorRef returns the reference of who wrote something about child c (a
// parent writes as their RelatedPerson for that child).
func (b *builder) authorRef(a author, c int) string {
	if a.helper >= 0 {
		return b.helperRef(a.helper)
	}
	if a.child >= 0 {
		return b.childRef(a.child)
	}
	return b.parentRef(a.parent, c)
}

// build turns s into a family as it is on the day of now.
func build(s *spec, now time.Time) (*Family, error) {
	b := &builder{s: s, d: newDay(now)}
	f := &Family{Name: s.name, Group: b.id("gezin")}
	for c := range s.children {
		f.Children = append(f.Children, b.childID(c))
	}
	b.professionals()
	b.people()
	b.plans()
	b.agreements()
	b.records()
	b.teams()
	if b.err != nil {
		return nil, b.err
	}
	f.Resources = b.out
	return f, nil
}

// professionals adds the organisations, the professionals and the
// dossierhouder's role.
func (b *builder) professionals() {
	s := b.s
	pros := []proSpec{s.dossierhouder}
	for _, h := range s.helpers {
		pros = append(pros, h.proSpec)
	}
	seen := map[string]bool{}
	orgs := make([]orgSpec, 0, len(pros)+len(s.systems))
	for _, p := range pros {
		orgs = append(orgs, p.org)
	}
	for _, sy := range s.systems {
		orgs = append(orgs, sy.org)
	}
	for _, o := range orgs {
		if seen[o.key] {
			continue
		}
		seen[o.key] = true
		id := b.id(o.key)
		body, err := mapping.Organization{ID: id, Name: o.name, Kind: o.kind}.ToFHIR()
		b.add("Organization", id, body, err)
	}
	for i, p := range pros {
		id := b.id(p.key)
		body, err := mapping.Professional{
			ID: id, Identifiers: b.ident(id), Name: p.name(), Gender: p.gender, Qualification: p.qualification,
		}.ToFHIR()
		var profiles []string
		if i == 0 { // the dossierhouder
			profiles = []string{mapping.ProfileDossierhouder}
		}
		b.add("Practitioner", id, body, err, profiles...)
	}
	id := b.id(s.dossierhouder.key, "rol")
	body, err := mapping.ProfessionalRole{
		ID: id, Professional: b.dossierhouderRef(), Organization: b.orgRef(s.dossierhouder.org),
		Role: mapping.Dossierhouder, Period: mapping.Period{Start: b.d.date(s.planStart + 30)},
	}.ToFHIR()
	b.add("PractitionerRole", id, body, err, mapping.ProfileDossierhouderRole)
}

// people adds the children, the parents (a RelatedPerson per child), their
// login identities and the family.
func (b *builder) people() {
	s := b.s
	for c, ch := range s.children {
		id := b.childID(c)
		body, err := mapping.ChildDetails{
			ID: id, Identifiers: b.ident(id), Name: ch.name(), Gender: ch.gender,
			BirthDate: b.d.birthDate(ch.age, ch.birthOffset),
		}.ToFHIR()
		b.add("Patient", id, body, err, mapping.ProfileChild)
	}
	for p, pa := range s.parents {
		var links []string
		for c := range s.children {
			ref := b.parentRef(p, c)
			id := strings.TrimPrefix(ref, "RelatedPerson/")
			body, err := mapping.Parent{
				ID: id, Child: b.childRef(c), Relationship: pa.rel, Name: pa.name(), Gender: pa.gender,
				Authority: &mapping.ParentalAuthority{Has: pa.authority, Source: "Centraal Gezagsregister", Verified: b.d.date(s.planStart + 14)},
			}.ToFHIR()
			b.add("RelatedPerson", id, body, err, mapping.ProfileParent)
			links = append(links, ref)
		}
		id := b.id(pa.key)
		body, err := mapping.LoginIdentity{ID: id, Identifiers: b.ident(id), Name: pa.name(), Gender: pa.gender, Links: links}.ToFHIR()
		b.add("Person", id, body, err, mapping.ProfileLoginPerson)
	}
	var kids []string
	for c := range s.children {
		kids = append(kids, b.childRef(c))
	}
	id := b.id("gezin")
	body, err := mapping.FamilyGroup{ID: id, Name: s.name, Children: kids}.ToFHIR()
	b.add("Group", id, body, err, mapping.ProfileFamily)
}

// plans adds each child's help question and goals, the parenting plan and
// the child plans (part of the parenting plan).
func (b *builder) plans() {
	s := b.s
	goalRefs := make([][]string, len(s.children))
	helpRefs := make([]string, len(s.children))
	for c, ch := range s.children {
		h := ch.help
		id := b.id("hulpvraag", ch.key)
		body, err := mapping.HelpQuestion{
			ID: id, PlanKind: mapping.ChildPlan, Domain: h.domain, Status: "active", Question: h.question,
			Subject: b.childRef(c), Asker: b.parentRef(h.asker, c), Recorded: b.d.instant(h.daysAgo, 10, 15),
		}.ToFHIR()
		b.add("Condition", id, body, err, mapping.ProfileHelpQuestion)
		helpRefs[c] = "Condition/" + id
		for g, gs := range ch.goals {
			id := b.id("doel", ch.key, fmt.Sprint(g+1))
			body, err := mapping.Goal{
				ID: id, PlanKind: mapping.ChildPlan, Domain: gs.domain, Status: gs.status, Description: gs.text,
				Subject: b.childRef(c), TargetDate: b.d.date(-180),
			}.ToFHIR()
			b.add("Goal", id, body, err, mapping.ProfileGoal)
			goalRefs[c] = append(goalRefs[c], "Goal/"+id)
		}
	}
	id := b.id("ouderschapsplan")
	body, err := mapping.Plan{
		ID: id, Kind: mapping.ParentingPlan, Status: mapping.PlanActive, Title: s.planTitle,
		Description: "Afspraken van beide ouders over de zorg voor de kinderen na de scheiding.",
		Subject:     b.groupRef(), Period: mapping.Period{Start: b.d.date(s.planStart)},
	}.ToFHIR()
	b.add("CarePlan", id, body, err, mapping.ProfileParentingPlan)
	for c, ch := range s.children {
		id := b.id("kindplan", ch.key)
		body, err := mapping.Plan{
			ID: id, Kind: mapping.ChildPlan, Status: mapping.PlanActive, Title: ch.planTitle,
			Subject: b.childRef(c), Period: mapping.Period{Start: b.d.date(s.planStart - 30)},
			PartOf: b.planRef(), Addresses: []string{helpRefs[c]}, Goals: goalRefs[c],
		}.ToFHIR()
		b.add("CarePlan", id, body, err, mapping.ProfileChildPlan)
	}
}

// agreements adds the agreements of the parenting plan and of each child
// plan, with their notes and evaluations, and a change request for each
// proposed one.
func (b *builder) agreements() {
	for _, as := range b.s.agreements {
		b.agreement(as, b.planRef(), mapping.ParentingPlan, b.groupRef(), 0)
	}
	for c, ch := range b.s.children {
		for _, as := range ch.agreements {
			b.agreement(as, "CarePlan/"+b.id("kindplan", ch.key), mapping.ChildPlan, b.childRef(c), c)
		}
	}
}

// agreement adds one agreement of the plan of the given kind and subject;
// parents write about it as their RelatedPerson for child c.
func (b *builder) agreement(as agreementSpec, plan string, kind mapping.PlanCategory, subject string, c int) {
	status := mapping.PlanActive
	if as.draft {
		status = mapping.PlanDraft
	}
	id := b.id(as.key)
	ref := "CarePlan/" + id
	body, err := mapping.Agreement{
		ID: id, Plan: plan, PlanKind: kind, Status: status, Title: as.title,
		Description: as.description, Subject: subject, Period: mapping.Period{Start: b.d.date(b.s.planStart)},
	}.ToFHIR()
	b.add("CarePlan", id, body, err, mapping.ProfileAgreement)
	for n, ns := range as.notes {
		id := b.id(as.key, "notitie", fmt.Sprint(n+1))
		body, err := mapping.Note{
			ID: id, About: ref, PlanKind: kind, Subject: subject,
			Author: b.authorRef(ns.author, c), Sent: b.d.instant(ns.daysAgo, 20, 5+n), Text: ns.text,
		}.ToFHIR()
		b.add("Communication", id, body, err, mapping.ProfileNote)
	}
	if e := as.evaluation; e != nil {
		id := b.id(as.key, "evaluatie")
		grade := e.grade
		body, err := mapping.Evaluation{
			ID: id, Questionnaire: EvaluationFormURL, BasedOn: ref, Status: "completed",
			Subject: subject, Author: b.parentRef(e.author, c), Authored: b.d.instant(e.daysAgo, 19, 30),
			Items: []mapping.EvaluationItem{
				{LinkID: "gelopen", Text: "Hoe is het gegaan?", Answers: []mapping.EvaluationAnswer{{String: e.how}}},
				{LinkID: "cijfer", Text: "Welk cijfer geeft u de afspraak?", Answers: []mapping.EvaluationAnswer{{Integer: &grade}}},
			},
		}.ToFHIR()
		b.add("QuestionnaireResponse", id, body, err, mapping.ProfileEvaluation)
	}
	if as.draft {
		id := b.id(as.key, "wijzigingsverzoek")
		body, err := mapping.ChangeRequest{
			ID: id, Status: mapping.TaskRequested, Focus: ref, For: subject,
			AuthoredOn: b.d.instant(2, 9, 0), Requester: b.parentRef(as.proposer, c), Owner: b.dossierhouderRef(),
		}.ToFHIR()
		b.add("Task", id, body, err, mapping.ProfileChangeRequest)
	}
}

// records adds the diary, the messages, the agenda, the documents, the
// helpers' observations and the progress on goals.
func (b *builder) records() {
	s := b.s
	for i, ds := range s.diary {
		id := b.id("dagboek", fmt.Sprint(i+1))
		body, err := mapping.DiaryEntry{
			ID: id, Subject: b.childRef(ds.child), Author: b.authorRef(ds.author, ds.child),
			Sent: b.d.instant(ds.daysAgo, 21, 10), Text: ds.text,
		}.ToFHIR()
		b.add("Communication", id, body, err, mapping.ProfileDiaryEntry)
	}
	for i, ms := range s.messages {
		id := b.id("bericht", fmt.Sprint(i+1))
		body, err := mapping.Message{
			ID: id, Subject: b.childRef(ms.child), Sender: b.parentRef(ms.from, ms.child),
			Recipients: []string{b.parentRef(ms.to, ms.child), b.dossierhouderRef()},
			Sent:       b.d.instant(ms.daysAgo, 8, 45), Text: ms.text,
		}.ToFHIR()
		b.add("Communication", id, body, err, mapping.ProfileMessage)
	}
	for i, as := range s.appointments {
		id := b.id("agenda", fmt.Sprint(i+1))
		parts := []mapping.Participant{{Actor: b.childRef(as.child), Status: "accepted"}}
		for p := range s.parents {
			parts = append(parts, mapping.Participant{Actor: b.parentRef(p, as.child), Status: "accepted"})
		}
		pro := b.dossierhouderRef()
		if as.helper >= 0 {
			pro = b.helperRef(as.helper)
		}
		parts = append(parts, mapping.Participant{Actor: pro, Status: "tentative"})
		body, err := mapping.Appointment{
			ID: id, Status: "booked", Description: as.description,
			Start:        b.d.instant(-as.inDays, as.hour, as.min),
			End:          b.d.instant(-as.inDays, as.hour+(as.min+as.minutes)/60, (as.min+as.minutes)%60),
			Participants: parts,
		}.ToFHIR()
		b.add("Appointment", id, body, err, mapping.ProfileAppointment)
	}
	for _, ds := range s.documents {
		id := b.id(ds.key)
		subject, child := b.groupRef(), 0
		if ds.child >= 0 {
			subject, child = b.childRef(ds.child), ds.child
		}
		dr, bin, err := mapping.Document{
			ID: id, BinaryID: id + "-inhoud", Status: "current", Subject: subject,
			Author: b.parentRef(ds.author, child), Date: b.d.instant(ds.daysAgo, 11, 0), Title: ds.title,
			Description: ds.description, ContentType: ds.contentType, Data: []byte(ds.data),
		}.ToFHIR()
		b.add("DocumentReference", id, dr, err, mapping.ProfileDocument)
		b.add("Binary", id+"-inhoud", bin, err, mapping.ProfileDocumentBinary)
	}
	for h, hs := range s.helpers {
		// A teacher's observations are the school's; other helpers'
		// are plain observations.
		var cat mapping.ObservationCategory
		var profiles []string
		if hs.role == mapping.Teacher {
			cat, profiles = mapping.SchoolCategory, []string{mapping.ProfileSchoolObservation}
		}
		for i, os := range hs.observations {
			id := b.id("observatie", hs.key, fmt.Sprint(i+1))
			body, err := mapping.Observation{
				ID: id, Status: "final", Category: cat, Domain: os.domain, Topic: os.topic, Subject: b.childRef(os.child),
				Effective: b.d.instant(os.daysAgo, 14, 30), Observers: []string{b.helperRef(h)}, Text: os.text,
			}.ToFHIR()
			b.add("Observation", id, body, err, profiles...)
		}
	}
	for c, ch := range s.children {
		reporter := b.parentRef(0, c)
		for h, hs := range s.helpers {
			if hs.role == mapping.YouthCareWorker && slices.Contains(hs.children, c) {
				reporter = b.helperRef(h)
			}
		}
		for g, gs := range ch.goals {
			if gs.progress == "" {
				continue
			}
			id := b.id("voortgang", ch.key, fmt.Sprint(g+1))
			body, err := mapping.Observation{
				ID: id, Status: "final", Category: mapping.GoalProgressCategory, PlanKind: mapping.ChildPlan,
				Domain: gs.domain, Topic: "Voortgang: " + gs.text, Subject: b.childRef(c),
				Goal: "Goal/" + b.id("doel", ch.key, fmt.Sprint(g+1)), Effective: b.d.instant(10, 16, 0),
				Observers: []string{reporter}, Text: gs.progress,
			}.ToFHIR()
			b.add("Observation", id, body, err, mapping.ProfileGoalProgress)
		}
	}
}

// teams adds a CareTeam per child (the dossierhouder, the parents, the
// child and the helpers of the child) and a Consent per helper and child
// granting the helper's sections, consented by whom the child's age asks.
func (b *builder) teams() {
	s := b.s
	for c, ch := range s.children {
		members := []mapping.TeamMember{{
			Member: b.dossierhouderRef(), Role: mapping.Dossierhouder, OnBehalfOf: b.orgRef(s.dossierhouder.org),
			Period: mapping.Period{Start: b.d.date(s.planStart + 30)},
		}}
		for p, pa := range s.parents {
			role := mapping.ParentWithAuthority
			if !pa.authority {
				role = mapping.ParentWithoutAuthority
			}
			members = append(members, mapping.TeamMember{Member: b.parentRef(p, c), Role: role})
		}
		members = append(members, mapping.TeamMember{Member: b.childRef(c), Role: mapping.Child})
		for h, hs := range s.helpers {
			if !slices.Contains(hs.children, c) {
				continue
			}
			members = append(members, mapping.TeamMember{
				Member: b.helperRef(h), Role: hs.role, OnBehalfOf: b.orgRef(hs.org),
				Period: mapping.Period{Start: b.d.date(hs.startDaysAgo), End: b.d.date(hs.startDaysAgo - 365)},
			})
		}
		for _, sy := range s.systems {
			if slices.Contains(sy.children, c) {
				members = append(members, mapping.TeamMember{Member: b.orgRef(sy.org), Role: sy.role})
			}
		}
		id := b.id("team", ch.key)
		body, err := mapping.Team{ID: id, Status: "active", Name: "Team " + ch.given, Subject: b.childRef(c), Members: members}.ToFHIR()
		b.add("CareTeam", id, body, err, mapping.ProfileCareTeam)
	}
	for h, hs := range s.helpers {
		for _, c := range hs.children {
			b.grant(hs.key, c, b.helperRef(h), hs.role, hs.sections, []mapping.Interaction{mapping.Read, mapping.WriteOwnNotes}, hs.startDaysAgo, hs.consent)
		}
	}
	for _, sy := range s.systems {
		for _, c := range sy.children {
			for i, g := range sy.grants {
				b.grant(fmt.Sprint(sy.org.key, i+1), c, b.orgRef(sy.org), sy.role, g.sections, g.interactions, s.planStart, sy.consent)
			}
		}
	}
	for _, cg := range s.childGrants {
		ch := s.children[cg.child]
		g := mapping.Grant{
			ID: b.id("toestemming", ch.key, s.parents[cg.parent].key), Status: mapping.ConsentActive, Patient: b.childRef(cg.child),
			ConsentedBy: []string{b.childRef(cg.child)}, DateTime: b.d.instant(1, 12, 0), Grantee: b.parentRef(cg.parent, cg.child),
			Sections: cg.sections, Interactions: cg.interactions, Period: mapping.Period{Start: b.d.date(1)},
		}
		if err := g.Fits(mapping.ParentWithAuthority); err != nil {
			b.err = fmt.Errorf("family %s: grant of %s: %w", s.prefix, ch.key, err)
			return
		}
		body, err := g.ToFHIR()
		b.add("Consent", g.ID, body, err, mapping.ProfileGrant)
	}
}

// grant adds the Consent that gives grantee (in role) sections of child
// c's record, as mode says, from startDaysAgo for a year.
func (b *builder) grant(key string, c int, grantee string, role mapping.Role, sections []mapping.Section, interactions []mapping.Interaction, startDaysAgo int, mode consentMode) {
	if mode == consentNone || b.err != nil {
		return
	}
	s := b.s
	ch := s.children[c]
	rights, err := mapping.RightsAt(b.d.birthDate(ch.age, ch.birthOffset), b.d.today, b.d.today.Location())
	if err != nil {
		b.err = fmt.Errorf("family %s: rights of %s: %w", s.prefix, ch.key, err)
		return
	}
	var by []string
	if rights.SharingNeedsChildConsent && mode != consentByParents {
		by = append(by, b.childRef(c))
	}
	if rights.SharingNeedsParentConsent || mode == consentByParents {
		for p, pa := range s.parents {
			if pa.authority {
				by = append(by, b.parentRef(p, c))
			}
		}
	}
	period := mapping.Period{Start: b.d.date(startDaysAgo), End: b.d.date(startDaysAgo - 365)}
	if mode == consentExpired {
		period = mapping.Period{Start: b.d.date(startDaysAgo), End: b.d.date(1)}
	}
	g := mapping.Grant{
		ID: b.id("toestemming", key, ch.key), Status: mapping.ConsentActive, Patient: b.childRef(c),
		ConsentedBy: by, DateTime: b.d.instant(startDaysAgo, 12, 0), Grantee: grantee,
		Sections: sections, Interactions: interactions, Period: period,
	}
	if err := g.Fits(role); err != nil {
		b.err = fmt.Errorf("family %s: grant for %s: %w", s.prefix, key, err)
		return
	}
	body, err := g.ToFHIR()
	b.add("Consent", g.ID, body, err, mapping.ProfileGrant)
}

// evaluationForm is the form every agreement evaluation answers.
func evaluationForm(tag string) (Resource, error) {
	const id = "evaluatie-afspraak"
	body, err := mapping.EvaluationForm{
		ID: id, URL: EvaluationFormURL, Name: "EvaluatieAfspraak", Title: "Evaluatie van een afspraak",
		Status: "active", Date: "2026-01-01T00:00:00+01:00",
		Description: "Korte evaluatie van een afspraak uit het ouderschapsplan of een kindplan.",
		Questions: []mapping.FormQuestion{
			{LinkID: "gelopen", Text: "Hoe is het gegaan?", Type: "text", Required: true},
			{LinkID: "cijfer", Text: "Welk cijfer geeft u de afspraak?", Type: "integer"},
		},
	}.ToFHIR()
	if err != nil {
		return Resource{}, fmt.Errorf("family: evaluation form: %w", err)
	}
	body, err = tagged(body, "Questionnaire", id, tag, mapping.ProfileEvaluationQuestionnaire)
	if err != nil {
		return Resource{}, err
	}
	return Resource{Type: "Questionnaire", ID: id, JSON: body}, nil
}

// Shared returns what every family's evaluations refer to by canonical URL:
// the evaluation form (a Questionnaire with the stable id
// evaluatie-afspraak), tagged with tag. Load it once before generated
// families; Demo includes it.
func Shared(tag string) ([]Resource, error) {
	form, err := evaluationForm(tag)
	if err != nil {
		return nil, err
	}
	return []Resource{form}, nil
}
