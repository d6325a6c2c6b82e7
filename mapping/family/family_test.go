package family_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/mapping"
	"github.com/digitaleouder/ouder/mapping/family"
)

// demoDay is the clock of most tests.
var demoDay = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

var (
	parserOnce sync.Once
	parser     *conformance.Parser
	parserErr  error
)

// parse parses r with the server's own parser (validation and index
// extraction, and the implementation guide's checks where the parser has
// them), so what the package makes is what the server accepts.
func parse(tb testing.TB, r family.Resource) {
	tb.Helper()
	parserOnce.Do(func() {
		parser, parserErr = conformance.NewParser()
		if parserErr != nil {
			return
		}
		var reg *searchparam.Registry
		reg, parserErr = searchparam.Builtin()
		parser.Registry = func() *searchparam.Registry { return reg }
	})
	if parserErr != nil {
		tb.Fatal(parserErr)
	}
	res, err := parser.Parse(r.JSON, r.Type)
	if err != nil {
		tb.Fatalf("%s/%s is refused by the server's parser: %v\n%s", r.Type, r.ID, err, r.JSON)
	}
	if res.ID != r.ID {
		tb.Errorf("%s/%s: parsed id %q", r.Type, r.ID, res.ID)
	}
}

// checkFamily checks what every family must satisfy: unique ids, the tag,
// a section for every resource, valid for the server, and references that
// resolve inside the family (or its shared resources).
func checkFamily(tb testing.TB, f *family.Family, tag string, shared []family.Resource) {
	tb.Helper()
	known := map[string]bool{}
	position := map[string]int{} // -1: shared
	for i, r := range slices.Concat(shared, f.Resources) {
		if known[r.Ref()] {
			tb.Errorf("%s appears twice", r.Ref())
		}
		known[r.Ref()] = true
		position[r.Ref()] = i - len(shared)
	}
	for i, r := range f.Resources {
		var head struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
			Meta         struct {
				Profile []string         `json:"profile"`
				Tag     []mapping.Coding `json:"tag"`
			} `json:"meta"`
			Category json.RawMessage `json:"category"`
			Code     json.RawMessage `json:"code"`
		}
		if err := json.Unmarshal(r.JSON, &head); err != nil {
			tb.Fatalf("%s: %v", r.Ref(), err)
		}
		if head.ResourceType != r.Type || head.ID != r.ID {
			tb.Errorf("%s holds %s/%s", r.Ref(), head.ResourceType, head.ID)
		}
		if len(head.Meta.Tag) != 1 || head.Meta.Tag[0].System != family.TagSystem || head.Meta.Tag[0].Code != tag {
			tb.Errorf("%s: meta.tag %+v, want %s|%s", r.Ref(), head.Meta.Tag, family.TagSystem, tag)
		}
		// The profiles claimed include every one the guide's selection rule
		// picks, so what the resource says of itself and what the server
		// checks agree.
		var m map[string]any
		if err := json.Unmarshal(r.JSON, &m); err != nil {
			tb.Fatal(err)
		}
		for _, p := range mapping.ProfilesFor(m) {
			if !slices.Contains(head.Meta.Profile, p) {
				tb.Errorf("%s does not claim %s, which the selection rule picks (claims %v)", r.Ref(), p, head.Meta.Profile)
			}
		}
		if wantProfile[r.Type] != "" && !slices.Contains(head.Meta.Profile, wantProfile[r.Type]) {
			tb.Errorf("%s claims %v, not %s", r.Ref(), head.Meta.Profile, wantProfile[r.Type])
		}
		if _, ok := mapping.SectionOf(r.Type, categories(tb, r.Type, head.Category, head.Code)); !ok {
			tb.Errorf("%s is in no section of the record", r.Ref())
		}
		refs, err := family.References(r.JSON)
		if err != nil {
			tb.Fatal(err)
		}
		for _, ref := range refs {
			switch {
			case !known[ref]:
				tb.Errorf("%s refers to %s, which is not in the family", r.Ref(), ref)
			case position[ref] > i && !(r.Type == "DocumentReference" && strings.HasPrefix(ref, "Binary/")):
				// Write order: what a resource refers to comes first,
				// except a document's Binary (they refer to each other).
				tb.Errorf("%s comes before %s, which it refers to", r.Ref(), ref)
			}
		}
		parse(tb, r)
	}
}

// wantProfile is the profile every resource of a type claims, for the types
// the selection rule cannot place by their content.
var wantProfile = map[string]string{
	"Patient": mapping.ProfileChild, "Person": mapping.ProfileLoginPerson, "Group": mapping.ProfileFamily,
	"Appointment": mapping.ProfileAppointment, "DocumentReference": mapping.ProfileDocument, "Binary": mapping.ProfileDocumentBinary,
}

// categories returns the codings SectionOf reads: the categories, or a
// Task's code.
func categories(tb testing.TB, typ string, category, code json.RawMessage) []mapping.Coding {
	tb.Helper()
	type cc struct {
		Coding []mapping.Coding `json:"coding"`
	}
	if typ == "Task" {
		var c cc
		if err := json.Unmarshal(code, &c); err != nil {
			tb.Fatal(err)
		}
		return c.Coding
	}
	var ccs []cc
	if len(category) > 0 {
		if err := json.Unmarshal(category, &ccs); err != nil {
			tb.Fatal(err)
		}
	}
	var out []mapping.Coding
	for _, c := range ccs {
		out = append(out, c.Coding...)
	}
	return out
}

// resource returns the resource of f with the given reference.
func resource(tb testing.TB, f *family.Family, ref string) family.Resource {
	tb.Helper()
	for _, r := range f.Resources {
		if r.Ref() == ref {
			return r
		}
	}
	tb.Fatalf("no %s in the family", ref)
	return family.Resource{}
}

func TestDemoShape(t *testing.T) {
	t.Parallel()
	f, err := family.Demo(demoDay)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"Questionnaire": 1, "Organization": 5, "Practitioner": 4, "PractitionerRole": 1,
		"Patient": 2, "RelatedPerson": 4, "Person": 2, "Group": 1,
		"Condition": 2, "Goal": 6, "CarePlan": 12, // the parenting plan, 2 child plans, 7 + 2 agreements
		"Communication":         15, // 10 notes, 4 diary entries, 1 message
		"QuestionnaireResponse": 3, "Appointment": 2, "DocumentReference": 1, "Binary": 1,
		"Observation": 4, "CareTeam": 2, "Consent": 4, "Task": 1,
	}
	if diff := cmp.Diff(want, f.Counts()); diff != "" {
		t.Errorf("resources per type (-want +got):\n%s", diff)
	}
	checkFamily(t, f, family.TagDemo, nil)
	if f.Group != family.DemoGroup || !slices.Equal(f.Children, []string{"demo-sara", "demo-daan"}) {
		t.Errorf("Group %q, children %q", f.Group, f.Children)
	}

	// The shape in domain terms, read back through the mapping conversions.
	var agreements, childAgreements, drafts, childPlans, notes, diary, messages, schoolObs, progress int
	domains := map[mapping.Domain]bool{}
	for _, r := range f.Resources {
		switch r.Type {
		case "CarePlan":
			if a, err := mapping.AgreementFromFHIR(r.JSON); err == nil {
				switch {
				case a.PlanKind == mapping.ParentingPlan && a.Plan == "CarePlan/demo-ouderschapsplan" && a.Subject == "Group/"+family.DemoGroup:
					agreements++
				case a.PlanKind == mapping.ChildPlan && a.Plan == strings.Replace(a.Subject, "Patient/demo-", "CarePlan/demo-kindplan-", 1):
					childAgreements++
				default:
					t.Errorf("agreement %s: %s, part of %s, subject %s", a.ID, a.PlanKind, a.Plan, a.Subject)
				}
				if a.Status == mapping.PlanDraft {
					drafts++
				}
				continue
			}
			p, err := mapping.PlanFromFHIR(r.JSON)
			if err != nil {
				t.Fatalf("%s: %v", r.Ref(), err)
			}
			if p.Kind == mapping.ChildPlan {
				childPlans++
				if len(p.Addresses) != 1 || len(p.Goals) != 3 || p.PartOf != "CarePlan/demo-ouderschapsplan" {
					t.Errorf("child plan %s: addresses %v, goals %v, part of %q", p.ID, p.Addresses, p.Goals, p.PartOf)
				}
			}
		case "Goal":
			g, err := mapping.GoalFromFHIR(r.JSON)
			if err != nil {
				t.Fatal(err)
			}
			domains[g.Domain] = true
		case "Communication":
			if _, err := mapping.NoteFromFHIR(r.JSON); err == nil {
				notes++
			} else if _, err := mapping.DiaryEntryFromFHIR(r.JSON); err == nil {
				diary++
			} else if _, err := mapping.MessageFromFHIR(r.JSON); err == nil {
				messages++
			} else {
				t.Errorf("%s is neither a note, a diary entry nor a message", r.Ref())
			}
		case "Observation":
			o, err := mapping.ObservationFromFHIR(r.JSON)
			if err != nil {
				t.Fatal(err)
			}
			if o.Category == mapping.GoalProgressCategory {
				progress++
			} else if slices.ContainsFunc(o.Observers, func(s string) bool { return s == "Practitioner/demo-kees" || s == "Practitioner/demo-lisa" }) {
				schoolObs++
			}
		}
	}
	got := []int{agreements, childAgreements, drafts, childPlans, notes, diary, messages, schoolObs, progress, len(domains)}
	if wantShape := []int{7, 2, 1, 2, 10, 4, 1, 2, 2, 6}; !slices.Equal(got, wantShape) {
		t.Errorf("agreements of the parenting plan and the child plans, drafts, child plans, notes, diary, messages, school observations, goal progress, goal domains = %v, want %v", got, wantShape)
	}

	// Parents: joint authority, one RelatedPerson per child, linked by
	// their Person.
	for _, p := range []string{"anna", "bram"} {
		person, err := mapping.LoginIdentityFromFHIR(resource(t, f, "Person/demo-"+p).JSON)
		if err != nil {
			t.Fatal(err)
		}
		wantLinks := []string{"RelatedPerson/demo-" + p + "-sara", "RelatedPerson/demo-" + p + "-daan"}
		if !slices.Equal(person.Links, wantLinks) {
			t.Errorf("Person/demo-%s links %v, want %v", p, person.Links, wantLinks)
		}
		for _, link := range wantLinks {
			rp, err := mapping.ParentFromFHIR(resource(t, f, link).JSON)
			if err != nil {
				t.Fatal(err)
			}
			if rp.Authority == nil || !rp.Authority.Has {
				t.Errorf("%s has no parental authority", link)
			}
		}
	}

	// Teams: the dossierhouder, a teacher and the youth-care worker in each.
	for _, c := range []string{"sara", "daan"} {
		team, err := mapping.TeamFromFHIR(resource(t, f, "CareTeam/demo-team-"+c).JSON)
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range []mapping.Role{mapping.Dossierhouder, mapping.Teacher, mapping.YouthCareWorker, mapping.ParentWithAuthority, mapping.Child} {
			if len(team.MembersWithRole(role)) == 0 {
				t.Errorf("team of %s has no %s", c, role)
			}
		}
	}

	// The change request is about the proposed agreement.
	cr, err := mapping.ChangeRequestFromFHIR(resource(t, f, "Task/demo-afspraak-sport-wijzigingsverzoek").JSON)
	if err != nil {
		t.Fatal(err)
	}
	if cr.Focus != "CarePlan/demo-afspraak-sport" || cr.Owner != "Practitioner/demo-marieke" || cr.Status != mapping.TaskRequested {
		t.Errorf("change request %+v", cr)
	}

	// The document's bytes are intact.
	doc, err := mapping.DocumentFromFHIR(resource(t, f, "DocumentReference/demo-document-ouderschapsplan").JSON,
		resource(t, f, "Binary/demo-document-ouderschapsplan-inhoud").JSON)
	if err != nil || !bytes.HasPrefix(doc.Data, []byte("%PDF-")) {
		t.Errorf("document: %v, data %q", err, doc.Data)
	}
}

// TestDemoConsents checks that the helpers' Consents are consented by whom
// the child's age asks: Sara (14) and a parent, Daan (9) his parents.
func TestDemoConsents(t *testing.T) {
	t.Parallel()
	f, err := family.Demo(demoDay)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		consent, grantee string
		by               []string
		sections         []mapping.Section
	}{
		{"demo-toestemming-fatima-sara", "Practitioner/demo-fatima", []string{"Patient/demo-sara", "RelatedPerson/demo-anna-sara", "RelatedPerson/demo-bram-sara"},
			[]mapping.Section{mapping.SectionChildPlan, mapping.SectionEvaluations, mapping.SectionDiary, mapping.SectionDocuments}},
		{"demo-toestemming-fatima-daan", "Practitioner/demo-fatima", []string{"RelatedPerson/demo-anna-daan", "RelatedPerson/demo-bram-daan"},
			[]mapping.Section{mapping.SectionChildPlan, mapping.SectionEvaluations, mapping.SectionDiary, mapping.SectionDocuments}},
		{"demo-toestemming-kees-daan", "Practitioner/demo-kees", []string{"RelatedPerson/demo-anna-daan", "RelatedPerson/demo-bram-daan"},
			[]mapping.Section{mapping.SectionObservations, mapping.SectionSignals, mapping.SectionAgenda}},
		{"demo-toestemming-lisa-sara", "Practitioner/demo-lisa", []string{"Patient/demo-sara", "RelatedPerson/demo-anna-sara", "RelatedPerson/demo-bram-sara"},
			[]mapping.Section{mapping.SectionObservations, mapping.SectionSignals, mapping.SectionAgenda}},
	}
	for _, tt := range tests {
		g, err := mapping.GrantFromFHIR(resource(t, f, "Consent/"+tt.consent).JSON)
		if err != nil {
			t.Fatal(err)
		}
		if g.Grantee != tt.grantee || !slices.Equal(g.ConsentedBy, tt.by) || !slices.Equal(g.Sections, tt.sections) || g.Status != mapping.ConsentActive {
			t.Errorf("%s: grantee %s, consented by %v, sections %v, status %s", tt.consent, g.Grantee, g.ConsentedBy, g.Sections, g.Status)
		}
	}
}

// TestDemoAges checks that the children are 14 and 9 on any day, also on
// leap days, around the turn of the year, on the children's birthdays and
// in time zones where the date differs from UTC's.
func TestDemoAges(t *testing.T) {
	t.Parallel()
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	tonga := time.FixedZone("UTC+13", 13*3600)
	clocks := []time.Time{
		demoDay,
		time.Date(2024, 2, 29, 9, 0, 0, 0, time.UTC),
		time.Date(2028, 2, 29, 23, 59, 59, 0, ams),
		time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 1, 0, ams),
		time.Date(2026, 12, 31, 23, 59, 0, 0, tonga),
		time.Date(2030, 6, 30, 23, 30, 0, 0, time.UTC),
		// Sara's and Daan's birthdays on the day of demoDay's load: 123
		// and 47 days after the clock (their next birthday), and the day
		// before it.
		demoDay.AddDate(0, 0, 365-123),
		demoDay.AddDate(0, 0, 365-47),
		demoDay.AddDate(0, 0, 365-123-1),
		// The days whose last birthday of Sara or Daan would be a 29
		// February.
		time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC).AddDate(0, 0, 123),
		time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC).AddDate(0, 0, 47),
	}
	for _, now := range clocks {
		t.Run(now.Format(time.RFC3339), func(t *testing.T) {
			t.Parallel()
			f, err := family.Demo(now)
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct {
				id  string
				age int
			}{{"demo-sara", family.DemoEldestAge}, {"demo-daan", family.DemoYoungestAge}} {
				child, err := mapping.ChildDetailsFromFHIR(resource(t, f, "Patient/"+tt.id).JSON)
				if err != nil {
					t.Fatal(err)
				}
				for _, loc := range []*time.Location{now.Location(), time.UTC, ams, tonga} {
					age, err := mapping.AgeAt(child.BirthDate, now, loc)
					if err != nil {
						t.Fatal(err)
					}
					if age.Min != tt.age || age.Max != tt.age {
						t.Errorf("%s born %s is %+v on %s in %s, want %d", tt.id, child.BirthDate, age, now, loc, tt.age)
					}
				}
			}
		})
	}
}

// TestBirthdayAtLoad checks the edge of the age rule: on the day of the
// children's birthday they are their new age, and the day before not yet.
func TestBirthdayAtLoad(t *testing.T) {
	t.Parallel()
	f, err := family.Demo(demoDay)
	if err != nil {
		t.Fatal(err)
	}
	child, err := mapping.ChildDetailsFromFHIR(resource(t, f, "Patient/demo-daan").JSON)
	if err != nil {
		t.Fatal(err)
	}
	birth, err := time.Parse(time.DateOnly, child.BirthDate)
	if err != nil {
		t.Fatal(err)
	}
	birthday := birth.AddDate(family.DemoYoungestAge+1, 0, 0)
	for _, tt := range []struct {
		at   time.Time
		want int
	}{{birthday.Add(-time.Second), family.DemoYoungestAge}, {birthday, family.DemoYoungestAge + 1}} {
		age, err := mapping.AgeAt(child.BirthDate, tt.at, time.UTC)
		if err != nil || age.Min != tt.want {
			t.Errorf("age at %s = %+v, %v; want %d", tt.at, age, err, tt.want)
		}
	}
}

func TestDemoIsDeterministic(t *testing.T) {
	t.Parallel()
	a, err := family.Demo(demoDay)
	if err != nil {
		t.Fatal(err)
	}
	b, err := family.Demo(demoDay.Add(3 * time.Hour)) // the same day
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Transaction(), b.Transaction()) {
		t.Error("two Demo calls on the same day differ")
	}
	c, err := family.Demo(demoDay.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Transaction(), c.Transaction()) {
		t.Error("the demo family does not move with the clock")
	}
}

func TestTransactionBundle(t *testing.T) {
	t.Parallel()
	f, err := family.Demo(demoDay)
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
			Request  struct {
				Method, URL string
			} `json:"request"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(f.Transaction(), &bundle); err != nil {
		t.Fatal(err)
	}
	if bundle.ResourceType != "Bundle" || bundle.Type != "transaction" || len(bundle.Entry) != len(f.Resources) {
		t.Fatalf("Bundle %s %s with %d entries, want a transaction of %d", bundle.ResourceType, bundle.Type, len(bundle.Entry), len(f.Resources))
	}
	for i, e := range bundle.Entry {
		r := f.Resources[i]
		if e.Request.Method != "PUT" || e.Request.URL != r.Ref() || !bytes.Equal(e.Resource, r.JSON) {
			t.Errorf("entry %d: %s %s, want PUT %s with its resource", i, e.Request.Method, e.Request.URL, r.Ref())
		}
	}
	lines := bytes.Split(bytes.TrimSuffix(family.NDJSON(f.Resources), []byte("\n")), []byte("\n"))
	if len(lines) != len(f.Resources) || !bytes.Equal(lines[3], f.Resources[3].JSON) {
		t.Errorf("NDJSON has %d lines for %d resources", len(lines), len(f.Resources))
	}
}

// TestGenerateShape checks many generated families: valid, self-contained
// and within the promised variation, and the variation is really there.
func TestGenerateShape(t *testing.T) {
	t.Parallel()
	shared, err := family.Shared(family.TagSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	seen := map[string]map[int]bool{}
	note := func(what string, v int) {
		if seen[what] == nil {
			seen[what] = map[int]bool{}
		}
		seen[what][v] = true
	}
	total := 0
	for i := range n {
		f, err := family.Generate(7, i)
		if err != nil {
			t.Fatal(err)
		}
		if i < 40 { // parsing is the slow part
			checkFamily(t, f, family.TagSynthetic, shared)
		}
		total += len(f.Resources)
		c := f.Counts()
		note("children", c["Patient"])
		note("helpers", c["Practitioner"]-1)
		note("consents>0", min(c["Consent"], 1))
		note("tasks", c["Task"])
		agreements := 0
		for _, r := range f.Resources {
			if r.Type == "CarePlan" {
				if a, err := mapping.AgreementFromFHIR(r.JSON); err == nil && a.PlanKind == mapping.ParentingPlan {
					agreements++
				}
			}
			if r.Type == "Patient" {
				child, err := mapping.ChildDetailsFromFHIR(r.JSON)
				if err != nil {
					t.Fatal(err)
				}
				age, err := mapping.AgeAt(child.BirthDate, family.Epoch, time.UTC)
				if err != nil {
					t.Fatal(err)
				}
				note("age", age.Min)
			}
		}
		note("agreements", agreements)
		note("child agreements", c["CarePlan"]-1-c["Patient"]-agreements)
		if c["Group"] != 1 || c["Person"] != 2 || c["RelatedPerson"] != 2*c["Patient"] || c["CareTeam"] != c["Patient"] ||
			c["Condition"] != c["Patient"] || c["PractitionerRole"] != 1 || c["Goal"] < c["Patient"] || c["Goal"] > 3*c["Patient"] {
			t.Errorf("family %d has the wrong shape: %v", i, c)
		}
	}
	wantRange := map[string][2]int{
		"children": {1, 4}, "helpers": {0, 2}, "agreements": {3, 10}, "child agreements": {0, 4}, "age": {0, 19}, "tasks": {0, 1}, "consents>0": {0, 1},
	}
	for what, r := range wantRange {
		got := slices.Sorted(maps.Keys(seen[what]))
		want := make([]int, 0)
		for v := r[0]; v <= r[1]; v++ {
			want = append(want, v)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s over %d families: %v, want every value of %v", what, n, got, want)
		}
	}
	if avg := float64(total) / n; avg < 40 || avg > 70 {
		t.Errorf("%.1f resources per family; the benchmarks count on about 50", avg)
	}
}

// sample returns families 0..n-1 of seed as one byte string.
func sample(tb testing.TB, g family.Generator, n int) []byte {
	tb.Helper()
	var b bytes.Buffer
	for i := range n {
		f, err := g.Family(i)
		if err != nil {
			tb.Fatal(err)
		}
		b.Write(f.Transaction())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	a := sample(t, family.Generator{Seed: 1}, 20)
	if !bytes.Equal(a, sample(t, family.Generator{Seed: 1}, 20)) {
		t.Error("the same seed gave different bytes")
	}
	if bytes.Equal(a, sample(t, family.Generator{Seed: 2}, 20)) {
		t.Error("seeds 1 and 2 gave the same bytes")
	}
	if !bytes.Equal(a, sample(t, family.Generator{Seed: 1, Now: family.Epoch}, 20)) {
		t.Error("the zero Now is not Epoch")
	}
	if bytes.Equal(a, sample(t, family.Generator{Seed: 1, Now: family.Epoch.AddDate(1, 0, 0)}, 20)) {
		t.Error("Now does not move the dates")
	}
	// A family does not depend on the others: made alone, in another
	// order, it is the same.
	f5, err := family.Generate(1, 5)
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Split(a, []byte("\n")); !bytes.Equal(lines[5], f5.Transaction()) {
		t.Error("family 5 made alone differs from family 5 made after 0..4")
	}
	// Ids never collide across families and seeds.
	ids := map[string]string{}
	for _, seed := range []int64{1, 2, -1} {
		for i := range 30 {
			f, err := family.Generate(seed, i)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range f.Resources {
				where := fmt.Sprintf("seed %d family %d", seed, i)
				if other, dup := ids[r.Ref()]; dup {
					t.Fatalf("%s is in %s and %s", r.Ref(), other, where)
				}
				ids[r.Ref()] = where
			}
		}
	}
	if _, err := family.Generate(1, -1); err == nil {
		t.Error("a negative family number was accepted")
	}
}

func TestGeneratedTextsAreFilledIn(t *testing.T) {
	t.Parallel()
	for i := range 200 {
		f, err := family.Generate(3, i)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range f.Resources {
			if s := string(r.JSON); strings.Contains(s, "%!") || strings.Contains(s, "%s") || strings.Contains(s, "%[") {
				t.Fatalf("%s has an unfilled text: %s", r.Ref(), s)
			}
		}
	}
}

func TestReferences(t *testing.T) {
	t.Parallel()
	got, err := family.References([]byte(`{"a":{"reference":"Patient/1"},"b":[{"reference":"Group/2"},{"x":{"reference":"Patient/1"}}],
		"content":[{"attachment":{"url":"Binary/3"}}],"questionnaire":"https://x/Questionnaire/q","url":"https://x/y"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Binary/3", "Group/2", "Patient/1"}; !slices.Equal(got, want) {
		t.Errorf("References = %v, want %v", got, want)
	}
}

func BenchmarkGenerate(b *testing.B) {
	resources := 0
	for i := range b.N {
		f, err := family.Generate(1, i)
		if err != nil {
			b.Fatal(err)
		}
		resources += len(f.Resources)
	}
	b.ReportMetric(float64(resources)/b.Elapsed().Seconds(), "resources/s")
}
