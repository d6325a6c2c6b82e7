package family

import (
	"time"

	"github.com/digitaleouder/ouder/mapping"
)

// DemoPrefix starts the id of every resource of the demo family
// ("Patient/demo-sara"), and DemoGroup is the id of its Group: ouderd looks
// for it to know whether the demo family is loaded.
const (
	DemoPrefix = "demo"
	DemoGroup  = DemoPrefix + "-gezin"
	// DemoAuditor is the organisation that audits the demo family: a
	// member of both children's teams with the auditor role (the
	// development auditor client acts for it).
	DemoAuditor = "Organization/" + DemoPrefix + "-toezicht"
)

// The demo family's children are this old on the day Demo is called for.
const (
	DemoEldestAge   = 14
	DemoYoungestAge = 9
)

// Demo returns the demo family as it is on the day of now (in now's
// location): Anna Jansen and Bram de Vries, separated, with joint parental
// authority over Sara (14) and Daan (9); the dossierhouder Marieke van Dijk;
// Sara's mentor, Daan's teacher and a youth-care worker for both in the
// children's teams, with Consents for their sections, and an auditing
// organisation (DemoAuditor) in both teams; a parenting plan with
// seven agreements (one proposed, with a change request), notes and two
// evaluations; a child plan per child with a help question, goals on several
// quality-of-life domains and an agreement with notes; diary entries, a message, two
// appointments, a signed document, school observations and goal progress.
// Birth dates and every other date follow now, so the ages hold whenever it
// is loaded. Every resource carries the meta.tag TagSystem|TagDemo and an id
// starting with DemoPrefix, except the shared evaluation form (see Shared).
//
// The same now always gives the same bytes. The error is not nil only if a
// change broke a domain rule; it is a bug, not bad input.
func Demo(now time.Time) (*Family, error) {
	s := demoSpec()
	f, err := build(s, now)
	if err != nil {
		return nil, err
	}
	shared, err := Shared(TagDemo)
	if err != nil {
		return nil, err
	}
	f.Resources = append(shared, f.Resources...)
	return f, nil
}

func demoSpec() *spec {
	anna := parentSpec{personSpec{"anna", "Anna", "Jansen", "female"}, mapping.RelMother, true}
	bram := parentSpec{personSpec{"bram", "Bram", "de Vries", "male"}, mapping.RelFather, true}
	const annaP, bramP = 0, 1
	const sara, daan = 0, 1
	const fatima = 2 // the youth-care worker, the third helper
	school := orgSpec{"obs-de-regenboog", "OBS De Regenboog", "Basisschool"}
	college := orgSpec{"het-stedelijk", "Het Stedelijk College", "Voortgezet onderwijs"}
	jeugdteam := orgSpec{"jeugdteam-oost", "Jeugdteam Utrecht Oost", "Jeugdhulp"}
	return &spec{
		prefix:  DemoPrefix,
		tag:     TagDemo,
		name:    "Gezin De Vries-Jansen",
		parents: []parentSpec{anna, bram},
		children: []childSpec{
			{
				personSpec: personSpec{"sara", "Sara", "de Vries", "female"}, age: DemoEldestAge, birthOffset: 123,
				planTitle: "Kindplan Sara",
				help: helpSpec{
					question: "Hoe helpen we Sara met de spanning tussen twee huizen en de overstap naar de bovenbouw?",
					domain:   mapping.DomainEmotionalWellbeing, asker: annaP, daysAgo: 200,
				},
				goals: []goalSpec{
					{mapping.DomainEmotionalWellbeing, "Sara weet bij wie ze terechtkan als ze zich zorgen maakt", mapping.GoalActive, "Sara heeft twee gesprekken met de jeugdhulpverlener gehad en zegt dat het helpt."},
					{mapping.DomainSocialInclusion, "Sara blijft hockeyen, in de weken bij beide ouders", mapping.GoalActive, ""},
					{mapping.DomainSelfDetermination, "Sara plant haar huiswerk zelf met een weekplanner", mapping.GoalProposed, ""},
				},
				agreements: []agreementSpec{{
					key: "afspraak-sara-gesprekken", title: "Gesprekken met de jeugdhulpverlener",
					description: "Sara praat elke twee weken met Fatima. Wat ze bespreken blijft tussen hen, tenzij het niet veilig is.",
					notes:       []noteSpec{{byHelper(fatima), "Tweede gesprek gehad; Sara wil het komende gesprek op school houden.", 11}},
				}},
			},
			{
				personSpec: personSpec{"daan", "Daan", "de Vries", "male"}, age: DemoYoungestAge, birthOffset: 47,
				planTitle: "Kindplan Daan",
				help: helpSpec{
					question: "Daan heeft moeite met lezen: wat heeft hij nodig, op school en in beide huizen?",
					domain:   mapping.DomainPersonalDevelopment, asker: bramP, daysAgo: 150,
				},
				goals: []goalSpec{
					{mapping.DomainPersonalDevelopment, "Daan leest elke dag 15 minuten, in beide huizen", mapping.GoalActive, "Daan leest nu 10 minuten per dag zelfstandig, het liefst strips."},
					{mapping.DomainInterpersonalRelations, "Daan nodigt elke week een klasgenoot uit om te spelen", mapping.GoalActive, ""},
					{mapping.DomainPhysicalWellbeing, "Daan ligt doordeweeks om half negen in bed", mapping.GoalActive, ""},
				},
				agreements: []agreementSpec{{
					key: "afspraak-daan-lezen", title: "Samen lezen voor het slapen",
					description: "In beide huizen leest Daan 15 minuten voor het slapen; school geeft leesboeken mee in zijn tas.",
					notes: []noteSpec{
						{byHelper(fatima), "Daan kiest zelf een boek uit de bibliotheek, dat helpt.", 18},
						{byParent(bramP), "Strips tellen ook, hebben we afgesproken.", 16},
					},
					evaluation: &evaluationSpec{annaP, "Goed, Daan vraagt er zelf om.", 8, 14},
				}},
			},
		},
		dossierhouder: proSpec{
			personSpec:    personSpec{"marieke", "Marieke", "van Dijk", "female"},
			qualification: "Dossierhouder, jeugdzorgwerker (SKJ)",
			org:           orgSpec{"samen-ouder", "Stichting Samen Ouder", "Dossierhouder"},
		},
		helpers: []helperSpec{
			{
				proSpec: proSpec{personSpec{"kees", "Kees", "Bakker", "male"}, "Leerkracht groep 6", school},
				role:    mapping.Teacher, children: []int{daan}, startDaysAgo: 120,
				sections: []mapping.Section{mapping.SectionObservations, mapping.SectionSignals, mapping.SectionAgenda},
				observations: []observationSpec{{
					child: daan, domain: mapping.DomainPersonalDevelopment, topic: "Observatie van school: lezen",
					text: "Daan leest op AVI E4-niveau. Hij is gemotiveerd en werkt graag met zijn leesmaatje.", daysAgo: 20,
				}},
			},
			{
				proSpec: proSpec{personSpec{"lisa", "Lisa", "Visser", "female"}, "Mentor klas 3", college},
				role:    mapping.Teacher, children: []int{sara}, startDaysAgo: 90,
				sections: []mapping.Section{mapping.SectionObservations, mapping.SectionSignals, mapping.SectionAgenda},
				observations: []observationSpec{{
					child: sara, domain: mapping.DomainInterpersonalRelations, topic: "Observatie van school: in de klas",
					text: "Sara is stiller dan vorig jaar, maar werkt goed samen in groepjes en haalt haar toetsen.", daysAgo: 12,
				}},
			},
			{
				proSpec: proSpec{personSpec{"fatima", "Fatima", "El Amrani", "female"}, "Jeugdhulpverlener", jeugdteam},
				role:    mapping.YouthCareWorker, children: []int{sara, daan}, startDaysAgo: 150,
				sections: []mapping.Section{mapping.SectionChildPlan, mapping.SectionEvaluations, mapping.SectionDiary, mapping.SectionDocuments},
			},
		},
		systems: []systemSpec{{
			org: orgSpec{"toezicht", "Toezicht Jeugd (demo)", "Toezicht"}, role: mapping.Auditor,
			children: []int{sara, daan}, consent: consentNone,
		}},
		planTitle: "Ouderschapsplan De Vries-Jansen",
		planStart: 300,
		agreements: []agreementSpec{
			{
				key: "afspraak-zorgverdeling", title: "Zorgverdeling",
				description: "Sara en Daan wonen om de week bij elk van de ouders; de wissel is op vrijdag na school.",
				notes: []noteSpec{
					{byParent(annaP), "De wissel gaat goed. Daan neemt zijn gymtas voortaan zelf mee.", 40},
					{byParent(bramP), "In de herfstvakantie graag de wissel een dag later, op zaterdag.", 25},
				},
				evaluation: &evaluationSpec{bramP, "Goed: de vaste wisseldag geeft de kinderen rust.", 8, 30},
			},
			{
				key: "afspraak-vakanties", title: "Vakanties en feestdagen",
				description: "De zomervakantie wordt verdeeld in twee blokken van drie weken; kerst en oud en nieuw wisselen jaarlijks.",
				notes:       []noteSpec{{byParent(annaP), "Dit jaar viert Anna kerst met de kinderen, Bram oud en nieuw.", 60}},
			},
			{
				key: "afspraak-school", title: "Schoolcontacten",
				description: "Beide ouders ontvangen de berichten van school en gaan samen naar de oudergesprekken.",
				notes:       []noteSpec{{byParent(bramP), "Het rapportgesprek van Daan staat in de agenda.", 5}},
				evaluation:  &evaluationSpec{annaP, "Redelijk: de berichten komen nog niet altijd bij allebei aan.", 7, 35},
			},
			{
				key: "afspraak-kosten", title: "Kosten en kinderalimentatie",
				description: "Vaste kosten van de kinderen worden 50/50 gedeeld; uitgaven boven 100 euro overleggen we eerst.",
			},
			{
				key: "afspraak-communicatie", title: "Communicatie tussen de ouders",
				description: "Praktische zaken gaan via het berichtenkanaal; elke eerste maandag van de maand bellen we over de kinderen.",
				notes:       []noteSpec{{byParent(annaP), "Het maandelijkse belmoment werkt, we houden het zo.", 15}},
			},
			{
				key: "afspraak-telefoon", title: "Telefoon en sociale media",
				description: "Om half tien 's avonds gaat de telefoon van Sara uit, in beide huizen dezelfde regel.",
				notes: []noteSpec{
					{byChild(sara), "In het weekend vind ik tien uur eerlijker.", 9},
					{byParent(bramP), "Goed punt van Sara, bespreken we bij de evaluatie.", 8},
				},
			},
			{
				key: "afspraak-sport", title: "Sport en hobby's",
				description: "Daan voetbalt op woensdag en zaterdag; de ouder bij wie hij die week is, brengt en haalt.",
				draft:       true, proposer: bramP,
			},
		},
		diary: []diarySpec{
			{daan, byParent(annaP), "Daan was na de wissel moe maar vrolijk. Samen een hoofdstuk gelezen.", 6},
			{sara, byParent(bramP), "Sara scoorde twee keer bij hockey en was trots.", 4},
			{sara, byChild(sara), "Drukke week met toetsen. Fijn dat papa me hielp met Frans.", 3},
			{daan, byParent(bramP), "Daan heeft een klasgenoot uitgenodigd, ze hebben de hele middag gebouwd.", 1},
		},
		messages: []messageSpec{
			{from: annaP, to: bramP, child: daan, text: "Daan moet woensdag om 14:00 naar de tandarts. Kun jij hem brengen?", daysAgo: 2},
		},
		appointments: []appointmentSpec{
			{description: "Oudergesprek school Daan", child: daan, helper: 0, inDays: 7, hour: 15, min: 30, minutes: 20},
			{description: "Evaluatie ouderschapsplan met de dossierhouder", child: sara, helper: -1, inDays: 21, hour: 10, min: 0, minutes: 60},
		},
		documents: []documentSpec{{
			key: "document-ouderschapsplan", child: -1, author: annaP,
			title:       "ouderschapsplan-ondertekend.pdf",
			description: "Het ouderschapsplan, ondertekend door beide ouders",
			contentType: "application/pdf",
			data:        "%PDF-1.4\n% Demo: ouderschapsplan De Vries-Jansen, ondertekend door Anna Jansen en Bram de Vries\n%%EOF\n",
			daysAgo:     290,
		}},
	}
}
