package family

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/digitaleouder/ouder/mapping"
)

// Epoch is the day generated families are made for when a Generator names
// none: fixed, so that a seed gives the same bytes on any day.
var Epoch = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// Generator makes synthetic families in the shape of the demo family, with
// variation: one or two family names, one to four children aged 0 to 19,
// one parent sometimes without parental authority, zero to two invited
// helpers (teacher, youth-care worker, coach, speech therapist, mediator,
// childcare) with their Consents, three to ten agreements with notes and
// evaluations, one to three goals per child, diary entries, messages,
// appointments and documents.
//
// Family i of a seed depends only on the seed, i and Now: families can be
// made in any order, concurrently, and the same inputs give the same bytes.
// Ids start with "g<seed>-<i>-", so families of different seeds or numbers
// never collide. Every resource carries the meta.tag TagSystem|TagSynthetic.
// The evaluation form is not part of a family: load Shared(TagSynthetic)
// first.
type Generator struct {
	Seed int64
	// Now is the day the families are made for (ages and dates follow
	// it); zero means Epoch.
	Now time.Time
}

// Generate returns family i of seed on Epoch: Generator{Seed: seed}.Family(i).
func Generate(seed int64, i int) (*Family, error) { return Generator{Seed: seed}.Family(i) }

// Family returns family i (i >= 0). The error is not nil for a negative i,
// or if a change broke a domain rule (a bug, not bad input).
func (g Generator) Family(i int) (*Family, error) {
	if i < 0 {
		return nil, fmt.Errorf("family: generate family %d: the number is negative", i)
	}
	now := g.Now
	if now.IsZero() {
		now = Epoch
	}
	r := rand.New(rand.NewPCG(uint64(g.Seed), uint64(i)))
	return build(genSpec(r, fmt.Sprintf("g%d-%d", g.Seed, i)), now)
}

// skewed draws from [0, n) with a bias towards 0, so that the first family
// names are common and the last rare, as in a real population (searches by
// name then have realistic selectivity).
func skewed(r *rand.Rand, n int) int {
	x := r.Float64()
	return min(n-1, int(float64(n)*x*x))
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// between returns a number in [lo, hi].
func between(r *rand.Rand, lo, hi int) int { return lo + r.IntN(hi-lo+1) }

// distinct returns n different elements of xs in random order.
func distinct[T any](r *rand.Rand, xs []T, n int) []T {
	idx := r.Perm(len(xs))[:min(n, len(xs))]
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = xs[j]
	}
	return out
}

func genSpec(r *rand.Rand, prefix string) *spec {
	s := &spec{prefix: prefix, tag: TagSynthetic}

	// Parents: mostly a mother and a father; sometimes two mothers or two
	// fathers; one of them sometimes without parental authority.
	fam1, fam2 := Families[skewed(r, len(Families))], Families[skewed(r, len(Families))]
	g1, g2 := "female", "male"
	rel1, rel2 := mapping.RelMother, mapping.RelFather
	switch x := r.IntN(100); {
	case x < 7:
		g2, rel2 = "female", mapping.RelParent
	case x < 14:
		g1, rel1, rel2 = "male", mapping.RelFather, mapping.RelParent
	}
	s.parents = []parentSpec{
		{personSpec{"ouder1", givenName(r, g1), fam1, g1}, rel1, true},
		{personSpec{"ouder2", givenName(r, g2), fam2, g2}, rel2, r.IntN(10) > 0},
	}
	childFamily := pick(r, []string{fam1, fam2})
	s.name = "Gezin " + capitalise(childFamily)
	if fam1 != fam2 {
		s.name = "Gezin " + capitalise(fam1) + "-" + capitalise(fam2)
	}

	// Children: one to four, aged 0 to 19, eldest first.
	n := between(r, 1, 4)
	ages := make([]int, n)
	for i := range ages {
		ages[i] = r.IntN(20)
	}
	slices.Sort(ages)
	slices.Reverse(ages)
	for i, age := range ages {
		gender := pick(r, []string{"female", "male"})
		ch := childSpec{
			personSpec:  personSpec{fmt.Sprintf("kind%d", i+1), givenName(r, gender), childFamily, gender},
			age:         age,
			birthOffset: between(r, 1, 364),
		}
		ch.planTitle = "Kindplan " + ch.given
		ch.help = helpSpec{
			question: fmt.Sprintf(pick(r, helpQuestions), ch.given),
			domain:   pick(r, domains),
			asker:    r.IntN(2),
			daysAgo:  between(r, 30, 400),
		}
		for _, d := range distinct(r, domains, between(r, 1, 3)) {
			gs := goalSpec{domain: d, text: fmt.Sprintf(pick(r, goalTexts[d]), ch.given, pronoun(gender)), status: pick(r, goalStatuses)}
			if r.IntN(10) < 3 {
				gs.progress = pick(r, progressTexts)
			}
			ch.goals = append(ch.goals, gs)
		}
		if r.IntN(2) == 0 {
			t := pick(r, childAgreementTexts)
			as := agreementSpec{key: fmt.Sprintf("afspraak-kind%d", i+1), title: t[0], description: fmt.Sprintf(t[1], ch.given)}
			for range r.IntN(3) {
				as.notes = append(as.notes, noteSpec{byParent(r.IntN(2)), pick(r, noteTexts), between(r, 1, 200)})
			}
			ch.agreements = append(ch.agreements, as)
		}
		s.children = append(s.children, ch)
	}

	// The dossierhouder and zero to two helpers.
	dg := pick(r, []string{"female", "male"})
	s.dossierhouder = proSpec{
		personSpec:    personSpec{"dossierhouder", givenName(r, dg), Families[skewed(r, len(Families))], dg},
		qualification: "Dossierhouder",
		org:           orgSpec{"dossierhouder-org", pick(r, dossierhouderOrgs), "Dossierhouder"},
	}
	for h, kind := range distinct(r, helperKinds, r.IntN(3)) {
		helped := kind.children(r, ages)
		if len(helped) == 0 {
			kind = helperKinds[1] // a youth-care worker helps any child
			helped = kind.children(r, ages)
		}
		hg := pick(r, []string{"female", "male"})
		hs := helperSpec{
			proSpec: proSpec{
				personSpec:    personSpec{fmt.Sprintf("helper%d", h+1), givenName(r, hg), Families[skewed(r, len(Families))], hg},
				qualification: kind.qualification,
				org:           orgSpec{fmt.Sprintf("helper%d-org", h+1), pick(r, kind.orgs), kind.orgKind},
			},
			role: kind.role, children: helped, sections: kind.sections, startDaysAgo: between(r, 10, 300),
		}
		if kind.observes {
			for _, c := range helped {
				for range r.IntN(3) {
					o := pick(r, observationTexts)
					hs.observations = append(hs.observations, observationSpec{
						child: c, domain: o.domain, topic: o.topic, text: fmt.Sprintf(o.text, s.children[c].given), daysAgo: between(r, 1, 120),
					})
				}
			}
		}
		s.helpers = append(s.helpers, hs)
	}

	// The parenting plan and three to ten agreements.
	s.planTitle = "Ouderschapsplan " + strings.TrimPrefix(s.name, "Gezin ")
	s.planStart = between(r, 60, 900)
	eldest := s.children[0]
	for a, t := range distinct(r, agreementTexts, between(r, 3, 10)) {
		as := agreementSpec{key: fmt.Sprintf("afspraak%d", a+1), title: t[0], description: t[1]}
		for range r.IntN(3) {
			au := byParent(r.IntN(2))
			if eldest.age >= 12 && r.IntN(10) == 0 {
				au = byChild(0)
			}
			as.notes = append(as.notes, noteSpec{au, pick(r, noteTexts), between(r, 1, 200)})
		}
		if r.IntN(10) < 4 {
			e := pick(r, evaluationTexts)
			as.evaluation = &evaluationSpec{author: r.IntN(2), how: e.how, grade: e.grade, daysAgo: between(r, 1, 200)}
		}
		s.agreements = append(s.agreements, as)
	}
	if r.IntN(2) == 0 {
		last := &s.agreements[len(s.agreements)-1]
		last.draft, last.proposer = true, r.IntN(2)
	}

	// Diary, messages, agenda and documents.
	for range between(r, 1, 4) {
		c := r.IntN(n)
		au := byParent(r.IntN(2))
		if s.children[c].age >= 12 && r.IntN(5) == 0 {
			au = byChild(c)
		}
		s.diary = append(s.diary, diarySpec{c, au, fmt.Sprintf(pick(r, diaryTexts), s.children[c].given), between(r, 0, 60)})
	}
	for range r.IntN(3) {
		from := r.IntN(2)
		c := r.IntN(n)
		s.messages = append(s.messages, messageSpec{from: from, to: 1 - from, child: c, text: fmt.Sprintf(pick(r, messageTexts), s.children[c].given), daysAgo: between(r, 0, 60)})
	}
	for range between(r, 1, 2) {
		c := r.IntN(n)
		helper := -1
		for h, hs := range s.helpers {
			if slices.Contains(hs.children, c) && r.IntN(2) == 0 {
				helper = h
			}
		}
		s.appointments = append(s.appointments, appointmentSpec{
			description: fmt.Sprintf(pick(r, appointmentTexts), s.children[c].given), child: c, helper: helper,
			inDays: between(r, -30, 60), hour: between(r, 8, 19), min: pick(r, []int{0, 15, 30, 45}), minutes: pick(r, []int{15, 30, 45, 60}),
		})
	}
	if r.IntN(2) == 0 {
		d := pick(r, documentTexts)
		c := -1
		if r.IntN(2) == 0 {
			c = r.IntN(n)
		}
		s.documents = append(s.documents, documentSpec{
			key: "document1", child: c, author: r.IntN(2), title: d.title, description: d.description,
			contentType: "application/pdf", data: "%PDF-1.4\n% " + d.description + "\n%%EOF\n", daysAgo: between(r, 1, 365),
		})
	}
	return s
}

// givenName returns a given name for gender.
func givenName(r *rand.Rand, gender string) string {
	if gender == "female" {
		return pick(r, femaleNames)
	}
	return pick(r, maleNames)
}

// pronoun returns the Dutch subject pronoun for gender.
func pronoun(gender string) string {
	if gender == "female" {
		return "zij"
	}
	return "hij"
}

// capitalise writes a family name as it starts a phrase ("De Vries").
func capitalise(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[size:]
}

var domains = []mapping.Domain{
	mapping.DomainPersonalDevelopment, mapping.DomainSelfDetermination, mapping.DomainInterpersonalRelations,
	mapping.DomainSocialInclusion, mapping.DomainRights, mapping.DomainEmotionalWellbeing,
	mapping.DomainPhysicalWellbeing, mapping.DomainMaterialWellbeing,
}

var goalStatuses = []string{mapping.GoalActive, mapping.GoalActive, mapping.GoalActive, mapping.GoalProposed, "completed"}

// helperKind is a kind of invited helper: their role, what they are
// granted, and which children they help.
type helperKind struct {
	role          mapping.Role
	qualification string
	orgKind       string
	orgs          []string
	sections      []mapping.Section
	minAge        int
	maxAge        int
	oneChild      bool // helps one child of the right age, not all
	observes      bool // writes observations
}

// children returns the indexes of the children (by age) k helps.
func (k helperKind) children(r *rand.Rand, ages []int) []int {
	var fit []int
	for i, a := range ages {
		if a >= k.minAge && a <= k.maxAge {
			fit = append(fit, i)
		}
	}
	if k.oneChild && len(fit) > 1 {
		fit = []int{pick(r, fit)}
	}
	return fit
}

var helperKinds = []helperKind{
	{mapping.Teacher, "Leerkracht", "Basisschool", []string{"OBS De Regenboog", "CBS De Fontein", "De Vlinderboom", "OBS Het Kompas"},
		[]mapping.Section{mapping.SectionObservations, mapping.SectionSignals, mapping.SectionAgenda}, 4, 12, true, true},
	{mapping.YouthCareWorker, "Jeugdhulpverlener", "Jeugdhulp", []string{"Jeugdteam Oost", "Jeugdteam West", "Kwadraad Jeugd", "Jeugdhulp Samen"},
		[]mapping.Section{mapping.SectionChildPlan, mapping.SectionEvaluations, mapping.SectionDiary, mapping.SectionDocuments}, 0, 19, false, false},
	{mapping.Coach, "Gezinscoach", "Coaching", []string{"Coachpraktijk Lichtpunt", "Gezinscoaching Noord"},
		[]mapping.Section{mapping.SectionChildPlan, mapping.SectionDiary}, 10, 19, false, false},
	{mapping.SpeechTherapist, "Logopedist", "Logopedie", []string{"Logopedie West", "Praktijk Spraakzaam"},
		[]mapping.Section{mapping.SectionChildPlan, mapping.SectionObservations, mapping.SectionEvaluations}, 2, 14, true, true},
	{mapping.Mediator, "Mediator", "Mediation", []string{"Mediationbureau Midden", "Scheidingsmediation Nu"},
		[]mapping.Section{mapping.SectionParentingPlan, mapping.SectionMessages, mapping.SectionEvaluations}, 0, 17, false, false},
	{mapping.Childcare, "Pedagogisch medewerker", "Kinderopvang", []string{"Kinderopvang Ukkie", "BSO De Speeltuin"},
		[]mapping.Section{mapping.SectionAgenda, mapping.SectionDiary, mapping.SectionObservations}, 0, 12, false, true},
}

var dossierhouderOrgs = []string{"Stichting Samen Ouder", "Gezinsbureau Midden", "Dossierhouders Noord", "Stichting Kind Centraal"}

// Families are Dutch family names, most common first (see skewed).
var Families = []string{
	"de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser",
	"Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks",
	"van Leeuwen", "Dekker", "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer",
	"van der Linden", "Kok", "Jacobs", "de Haan", "Vermeulen", "van den Heuvel", "van der Veen",
	"van den Broek", "de Bruijn", "de Bruin", "van der Heijden", "Schouten", "van Beek", "Willems",
	"van Vliet", "van de Ven", "Hoekstra", "Maas", "Verhoeven", "Koster", "van Dam", "Prins",
	"El Amrani", "Yılmaz", "Öztürk", "Bouzid", "Nguyen", "Ramdin", "Kartosen", "Pinas",
}

var femaleNames = []string{
	"Emma", "Julia", "Mila", "Sophie", "Tess", "Zoë", "Sara", "Nora", "Anna", "Evi", "Noor", "Lotte",
	"Fenna", "Yara", "Saar", "Lieke", "Fatima", "Aya", "Elif", "Maryam", "Ilse", "Marieke", "Sanne", "Eline",
}

var maleNames = []string{
	"Noah", "Liam", "Lucas", "Daan", "Sem", "Levi", "Finn", "Luuk", "Milan", "Jesse", "Bram", "Thijs",
	"Mohammed", "Adam", "Yusuf", "Emir", "Ruben", "Joris", "Kees", "Pieter", "Mark", "Dennis", "Sven", "Youssef",
}

// goalTexts are goals per quality-of-life domain; %[1]s is the child's
// name, %[2]s the pronoun (hij, zij).
var goalTexts = map[mapping.Domain][]string{
	mapping.DomainPersonalDevelopment:    {"%[1]s leest elke dag 15 minuten", "%[1]s maakt zelfstandig huiswerk", "%[1]s oefent twee keer per week met rekenen"},
	mapping.DomainSelfDetermination:      {"%[1]s kiest zelf een sport of hobby", "%[1]s plant de eigen week met een planner", "%[1]s zegt wat %[2]s wil bij de wissel"},
	mapping.DomainInterpersonalRelations: {"%[1]s speelt elke week met een vriend of vriendin", "%[1]s praat met beide ouders over de week", "%[1]s maakt ruzies met broer of zus zelf goed"},
	mapping.DomainSocialInclusion:        {"%[1]s blijft bij de club in de weken bij beide ouders", "%[1]s doet mee met de schoolactiviteiten", "%[1]s gaat naar een verjaardag van een klasgenoot"},
	mapping.DomainRights:                 {"%[1]s weet wie de dossierhouder is en hoe die te bereiken is", "%[1]s mag meepraten over het ouderschapsplan"},
	mapping.DomainEmotionalWellbeing:     {"%[1]s weet bij wie %[2]s terechtkan met zorgen", "%[1]s slaapt zonder nachtmerries na de wissel", "%[1]s kan benoemen hoe %[2]s zich voelt"},
	mapping.DomainPhysicalWellbeing:      {"%[1]s gaat doordeweeks op tijd naar bed", "%[1]s beweegt elke dag een uur", "%[1]s eet 's ochtends een ontbijt"},
	mapping.DomainMaterialWellbeing:      {"%[1]s heeft in beide huizen een eigen plek", "%[1]s heeft spullen voor school in beide huizen", "%[1]s krijgt zakgeld volgens één afspraak"},
}

var progressTexts = []string{
	"Gaat de goede kant op.", "Lukt in het ene huis beter dan in het andere.", "Nog geen verandering, we blijven oefenen.",
	"Doel bijna gehaald.", "Goede stappen gezet sinds de vorige evaluatie.",
}

// helpQuestions: %s is the child's name.
var helpQuestions = []string{
	"Hoe helpen we %s met de overgang tussen twee huizen?",
	"%s heeft moeite met lezen: wat is er nodig op school en thuis?",
	"Hoe houden we %s betrokken bij de sport in beide weken?",
	"%s slaapt slecht na de wissel: wat kunnen we doen?",
	"Hoe praten we met %s over de scheiding?",
	"%s wordt buitengesloten in de klas: hoe helpen we?",
	"Wat heeft %s nodig om weer met plezier naar school te gaan?",
}

// agreementTexts are agreements of a parenting plan: title and description.
var agreementTexts = [][2]string{
	{"Zorgverdeling", "De kinderen wonen om de week bij elk van de ouders; de wissel is op vrijdag na school."},
	{"Vakanties en feestdagen", "De zomervakantie wordt in twee blokken verdeeld; feestdagen wisselen jaarlijks."},
	{"Schoolcontacten", "Beide ouders ontvangen de berichten van school en gaan samen naar de oudergesprekken."},
	{"Kosten en kinderalimentatie", "Vaste kosten van de kinderen worden naar inkomen gedeeld; grote uitgaven eerst overleggen."},
	{"Communicatie tussen de ouders", "Praktische zaken gaan via het berichtenkanaal; eens per maand bellen we over de kinderen."},
	{"Telefoon en sociale media", "In beide huizen gelden dezelfde regels voor schermtijd en telefoon."},
	{"Sport en hobby's", "De ouder bij wie de kinderen die week zijn, brengt en haalt naar sport."},
	{"Verjaardagen", "Op hun verjaardag zien de kinderen beide ouders; het feest is om het jaar bij een ouder."},
	{"Zorg en gezondheid", "Afspraken bij huisarts en tandarts plant de ouder bij wie de kinderen zijn; de ander hoort het via het kanaal."},
	{"Nieuwe partners", "Een nieuwe partner wordt pas na overleg aan de kinderen voorgesteld."},
	{"Opvoedregels", "Bedtijden en huisregels zijn in beide huizen zoveel mogelijk gelijk."},
	{"Contact met grootouders", "De kinderen zien de grootouders van beide kanten minstens eens per maand."},
	{"Verhuizing", "Een verhuizing verder dan 20 kilometer bespreken we eerst samen met de dossierhouder."},
	{"Religie en levensbeschouwing", "De kinderen mogen bij beide ouders meedoen aan hun tradities."},
}

// childAgreementTexts are agreements of a child plan: title and
// description (%s is the child's name).
var childAgreementTexts = [][2]string{
	{"Samen lezen", "In beide huizen leest %s elke avond 15 minuten."},
	{"Huiswerkplanning", "%s maakt op zondag een weekplanning; de ouder bij wie %[1]s is, kijkt mee."},
	{"Gesprekken met de jeugdhulpverlener", "%s praat elke twee weken met de jeugdhulpverlener."},
	{"Schermtijd", "%s heeft in beide huizen dezelfde schermtijd: een uur op schooldagen."},
	{"Spullen voor school", "De schooltas van %s gaat mee met de wissel; gymspullen liggen in beide huizen."},
}

var noteTexts = []string{
	"Gaat goed zo.", "Graag bespreken bij de volgende evaluatie.", "Deze week was lastig, de wissel liep uit.",
	"Afgesproken dat we dit een maand proberen.", "De kinderen geven aan dat ze dit prettig vinden.",
	"Kleine aanpassing: de wissel is deze keer op zaterdag.", "Bonnetjes staan in de documentenmap.",
	"We hebben dit samen met de dossierhouder besproken.",
}

type evaluationText struct {
	how   string
	grade int
}

var evaluationTexts = []evaluationText{
	{"Goed: de afspraak geeft rust.", 8}, {"Redelijk, met wat opstartproblemen.", 6},
	{"Prima, we houden het zo.", 9}, {"Moeizaam, de afspraak moet worden aangepast.", 5},
	{"Gaat steeds beter.", 7},
}

// diaryTexts: %s is the child's name.
var diaryTexts = []string{
	"%s was na de wissel moe maar vrolijk.", "%s heeft vandaag goed geslapen.", "Samen met %s gekookt.",
	"%s had een leuke dag op school.", "%s was verdrietig bij het afscheid.", "%s heeft een tekening gemaakt voor de andere ouder.",
	"%s speelde de hele middag buiten.", "Huiswerk met %s gemaakt, ging goed.",
}

// messageTexts: %s is the child's name.
var messageTexts = []string{
	"%s heeft woensdag een tandartsafspraak. Kun jij brengen?", "De gymspullen van %s liggen nog bij mij.",
	"%s heeft vrijdag een verjaardag, cadeau is geregeld.", "Kunnen we de wissel van %s deze week een dag verschuiven?",
}

// appointmentTexts: %s is the child's name.
var appointmentTexts = []string{
	"Oudergesprek school %s", "Evaluatie kindplan %s", "Gesprek met de jeugdhulpverlener over %s",
	"Overdracht %s", "Tandarts %s", "Sportwedstrijd %s",
}

type observationText struct {
	domain mapping.Domain
	topic  string
	text   string // %s is the child's name
}

var observationTexts = []observationText{
	{mapping.DomainPersonalDevelopment, "Observatie: leren", "%s werkt geconcentreerd en vraagt om hulp als het nodig is."},
	{mapping.DomainInterpersonalRelations, "Observatie: in de groep", "%s speelt goed samen met klasgenoten."},
	{mapping.DomainEmotionalWellbeing, "Observatie: welbevinden", "%s is na het weekend soms stil, later op de dag vrolijk."},
	{mapping.DomainSocialInclusion, "Observatie: pauze", "%s speelt in de pauze vaker alleen dan voorheen."},
	{mapping.DomainPhysicalWellbeing, "Observatie: energie", "%s is op maandag moe."},
}

type documentText struct {
	title, description string
}

var documentTexts = []documentText{
	{"ouderschapsplan-ondertekend.pdf", "Het ouderschapsplan, ondertekend door beide ouders"},
	{"verslag-logopedie.pdf", "Verslag van de logopedist"},
	{"schoolrapport.pdf", "Rapport van school"},
	{"beschikking-gezag.pdf", "Beschikking van de rechtbank over het gezag"},
	{"zorgplan-jeugdhulp.pdf", "Zorgplan van de jeugdhulp"},
}
