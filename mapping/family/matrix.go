package family

import (
	"time"

	"github.com/digitaleouder/ouder/mapping"
)

// MatrixPrefix starts the id of every resource of the policy matrix family
// (Matrix): "Patient/m-c12".
const MatrixPrefix = "m"

// The children of the matrix family, by the key in their ids
// ("Patient/m-c12"), and the age each is on the day Matrix is called for:
// each boundary of the age rules (12, 16, 18) is there on the day before
// the birthday and on the birthday itself.
var MatrixChildren = []struct {
	Key      string
	Age      int
	Birthday bool // true: the birthday is today; false: it is tomorrow
}{
	{"c11", 11, false}, {"c12", 12, true},
	{"c15", 15, false}, {"c16", 16, true},
	{"c17", 17, false}, {"c18", 18, true},
}

// Matrix returns the family the access policy matrix is run on
// (testdata/policy): on the day of now, Anna (parental authority over every
// child) and Bram (no authority) with six children aged 11, 12, 15, 16, 17
// and 18 (see MatrixChildren); each child with a child plan, an agreement
// with a note by the coach, a goal and a diary entry by Anna; the
// dossierhouder Marieke; helpers in every team: a coach whose Consents for
// the child plan are given by whom each age asks, a teacher whose Consents
// for observations are given by the parents alone (in force only under 12),
// a mediator without a Consent and a youth-care worker whose Consents
// expired yesterday; Kim, a professional in no team; a school system
// (observations, personal details), a youth-care record system (child
// plan, personal details) and an auditor, as organisations in every team;
// and a Consent from the 16-year-old that lets Anna read the diary.
//
// Every resource carries the meta.tag TagSystem|TagSynthetic and an id
// starting with MatrixPrefix. The same now always gives the same bytes.
func Matrix(now time.Time) (*Family, error) {
	s := matrixSpec()
	f, err := build(s, now)
	if err != nil {
		return nil, err
	}
	shared, err := Shared(TagSynthetic)
	if err != nil {
		return nil, err
	}
	f.Resources = append(shared, f.Resources...)
	return f, nil
}

func matrixSpec() *spec {
	anna := parentSpec{personSpec{"anna", "Anna", "Jansen", "female"}, mapping.RelMother, true}
	bram := parentSpec{personSpec{"bram", "Bram", "de Vries", "male"}, mapping.RelFather, false}
	var children []childSpec
	var all []int
	var diary []diarySpec
	for i, c := range MatrixChildren {
		offset := -1
		if c.Birthday {
			offset = 0
		}
		children = append(children, childSpec{
			personSpec: personSpec{c.Key, "Kind " + c.Key, "de Vries", "female"}, age: c.Age, birthOffset: offset,
			planTitle: "Kindplan " + c.Key,
			help: helpSpec{
				question: "Wat heeft " + c.Key + " nodig in beide huizen?",
				domain:   mapping.DomainEmotionalWellbeing, asker: 0, daysAgo: 100,
			},
			goals: []goalSpec{{mapping.DomainSocialInclusion, c.Key + " blijft sporten in beide weken", mapping.GoalActive, ""}},
			agreements: []agreementSpec{{
				key: "afspraak-" + c.Key, title: "Afspraak " + c.Key, description: "Een afspraak in het kindplan van " + c.Key + ".",
				notes: []noteSpec{{byHelper(0), "Notitie van de coach over " + c.Key + ".", 10}},
			}},
		})
		all = append(all, i)
		diary = append(diary, diarySpec{i, byParent(0), "Dagboek van Anna over " + c.Key + ".", 3})
	}
	school := orgSpec{"school", "Basisschool De Linde", "Basisschool"}
	care := orgSpec{"jeugdteam", "Jeugdteam Noord", "Jeugdhulp"}
	helper := func(key, given string, role mapping.Role, org orgSpec, sections []mapping.Section, mode consentMode, children []int) helperSpec {
		return helperSpec{
			proSpec: proSpec{personSpec{key, given, "Helper", "female"}, string(role), org},
			role:    role, children: children, sections: sections, startDaysAgo: 60, consent: mode,
		}
	}
	teacher := helper("teacher", "Tess", mapping.Teacher, school, []mapping.Section{mapping.SectionObservations}, consentByParents, all)
	for _, c := range all {
		teacher.observations = append(teacher.observations, observationSpec{
			child: c, domain: mapping.DomainPersonalDevelopment, topic: "Observatie van school",
			text: "Observatie van de leerkracht over " + MatrixChildren[c].Key + ".", daysAgo: 5,
		})
	}
	return &spec{
		prefix:   MatrixPrefix,
		tag:      TagSynthetic,
		name:     "Gezin Matrix",
		parents:  []parentSpec{anna, bram},
		children: children,
		dossierhouder: proSpec{
			personSpec:    personSpec{"marieke", "Marieke", "van Dijk", "female"},
			qualification: "Dossierhouder",
			org:           orgSpec{"samen-ouder", "Stichting Samen Ouder", "Dossierhouder"},
		},
		helpers: []helperSpec{
			helper("coach", "Chris", mapping.Coach, care, []mapping.Section{mapping.SectionChildPlan}, consentAsRequired, all),
			teacher,
			helper("mediator", "Mo", mapping.Mediator, care, []mapping.Section{mapping.SectionParentingPlan}, consentNone, all),
			helper("expired", "Eva", mapping.YouthCareWorker, care, []mapping.Section{mapping.SectionChildPlan}, consentExpired, all),
			helper("kim", "Kim", mapping.Coach, care, nil, consentNone, nil),
		},
		systems: []systemSpec{
			{
				org: orgSpec{"school-admin", "Leerlingvolgsysteem De Linde", "School"}, role: mapping.SchoolSystem, children: all,
				grants: []systemGrant{
					{[]mapping.Section{mapping.SectionPersonalDetails}, []mapping.Interaction{mapping.Read}},
					{[]mapping.Section{mapping.SectionObservations}, []mapping.Interaction{mapping.WriteOwnNotes}},
				},
			},
			{
				org: orgSpec{"ecd", "Cliëntdossier Jeugdteam Noord", "Jeugdhulp"}, role: mapping.ECDSystem, children: all,
				grants: []systemGrant{{[]mapping.Section{mapping.SectionPersonalDetails, mapping.SectionChildPlan}, []mapping.Interaction{mapping.Read}}},
			},
			{org: orgSpec{"audit", "Toezicht Jeugd", "Toezicht"}, role: mapping.Auditor, children: all, consent: consentNone},
		},
		childGrants: []childGrantSpec{{
			child: 3, parent: 0, sections: []mapping.Section{mapping.SectionDiary}, interactions: []mapping.Interaction{mapping.Read},
		}},
		planTitle: "Ouderschapsplan Matrix",
		planStart: 200,
		agreements: []agreementSpec{{
			key: "afspraak-gezin", title: "Zorgverdeling", description: "Om de week bij elke ouder.",
			notes: []noteSpec{{byParent(0), "Notitie van Anna bij de zorgverdeling.", 4}},
		}},
		diary: diary,
	}
}
