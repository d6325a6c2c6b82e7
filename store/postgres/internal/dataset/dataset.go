// Package dataset generates a deterministic population of realistic FHIR R4
// resources (children with their vital signs, goals and care plans) for the
// store's tests and benchmarks. The same seed and patient number always give
// byte-identical resources, whatever order or concurrency they are made in.
package dataset

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Systems of the identifiers and codes in generated resources.
const (
	// BSN is the Dutch citizen service number system; every Patient has a
	// unique one (Identifier).
	BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
	// MRN is the local record number system, a second identifier.
	MRN          = "urn:oid:2.16.528.1.1007.3.3.1234567.1"
	LOINC        = "http://loinc.org"
	UCUM         = "http://unitsofmeasure.org"
	SNOMED       = "http://snomed.info/sct"
	obsCategory  = "http://terminology.hl7.org/CodeSystem/observation-category"
	goalCategory = "http://terminology.hl7.org/CodeSystem/goal-category"
)

// The shape of one chart: the resources written for each patient.
const (
	ObservationsPerPatient = 6
	GoalsPerPatient        = 1
	CarePlansPerPatient    = 2 // a plan and a sub-plan that is partOf it
	// PerPatient is the number of resources in one chart.
	PerPatient = 1 + ObservationsPerPatient + GoalsPerPatient + CarePlansPerPatient
)

// Code is an Observation code with a plausible value range. Weight is its
// relative frequency: a few vital signs make up most observations, lab codes
// are rare, as in a real child health record.
type Code struct {
	Code, Display, Unit string
	Lo, Hi              float64
	Category            string // observation-category code
	Weight              int
}

// Codes are the Observation codes (all LOINC), most frequent first.
var Codes = []Code{
	{"29463-7", "Body weight", "kg", 3, 90, "vital-signs", 300},
	{"8302-2", "Body height", "cm", 48, 190, "vital-signs", 250},
	{"9843-4", "Head Occipital-frontal circumference", "cm", 32, 58, "vital-signs", 150},
	{"8867-4", "Heart rate", "/min", 50, 160, "vital-signs", 100},
	{"39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 11, 35, "vital-signs", 80},
	{"8310-5", "Body temperature", "Cel", 35.8, 40.5, "vital-signs", 60},
	{"9279-1", "Respiratory rate", "/min", 12, 60, "vital-signs", 25},
	{"59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 88, 100, "vital-signs", 15},
	{"8480-6", "Systolic blood pressure", "mm[Hg]", 70, 140, "vital-signs", 8},
	{"718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 9, 17, "laboratory", 4},
	{"2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 60, 200, "laboratory", 2},
	{"14749-6", "Glucose [Moles/volume] in Serum or Plasma", "mmol/L", 3, 11, "laboratory", 1},
}

var totalWeight = func() int {
	n := 0
	for _, c := range Codes {
		n += c.Weight
	}
	return n
}()

// Families are the family names, drawn with a skew (the first ones are the
// most common) so that name prefixes have realistic selectivity.
var Families = []string{
	"de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser",
	"Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks",
	"van Leeuwen", "Dekker", "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer",
	"van der Linden", "Kok", "Jacobs", "de Haan", "Vermeulen", "van den Heuvel", "van der Veen",
	"van den Broek", "de Bruijn", "de Bruin", "van der Heijden", "Schouten", "van Beek", "Willems",
	"van Vliet", "van de Ven", "Hoekstra", "Maas", "Verhoeven", "Koster", "van Dam", "Prins",
	"Blom", "Huisman", "Peeters", "Kuipers", "van Wijk", "Postma", "Kuijpers", "Veenstra",
	"Kramer", "van den Bosch", "Vink", "Scholten", "Wijnen", "Çelik", "Yılmaz", "El Idrissi",
	"Nguyen", "Boateng", "Kowalski", "Öztürk", "Müller", "Brandsma", "Zijlstra",
}

var givens = []string{
	"Emma", "Noah", "Julia", "Liam", "Mila", "Lucas", "Sophie", "Daan", "Tess", "Sem",
	"Zoë", "Levi", "Sara", "Finn", "Nora", "Luuk", "Anna", "Milan", "Evi", "Jesse",
	"Saar", "Bram", "Yara", "Mees", "Lotte", "Jan", "Fleur", "Thijs", "Noor", "Adam",
}

var genders = []string{"female", "male", "female", "male", "female", "male", "other", "unknown"}

var (
	planTitles = []string{"Groeibegeleiding", "Slaapplan", "Voedingsplan", "Vaccinatieschema", "Astma-actieplan", "Taalontwikkeling"}
	goalTexts  = []string{"Slaapt de nacht door", "Gezond gewicht", "Dagelijks buiten spelen", "Leest elke dag", "Zindelijk", "Geen astma-aanvallen"}
	// planStatus and goalStatus are drawn uniformly; "active" dominates.
	planStatus = []string{"active", "active", "active", "active", "completed", "completed", "draft", "on-hold", "revoked"}
	goalStatus = []string{"active", "active", "active", "completed", "accepted", "planned", "on-hold", "cancelled"}
)

// Observation effective times fall in [Start, End): eight years, so one
// month holds about 1% of the observations.
var (
	Start = time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)
	End   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Population is a set of Patients numbered 0..Patients-1, each with a
// chart of PerPatient resources. The zero Seed is a valid seed.
type Population struct {
	Seed     uint64
	Patients int
}

// Sized returns the population of seed with about n resources: n rounded
// up to whole charts, at least one.
func Sized(seed uint64, n int) Population {
	return Population{Seed: seed, Patients: max(1, (n+PerPatient-1)/PerPatient)}
}

// Len returns the number of resources in the population.
func (p Population) Len() int { return p.Patients * PerPatient }

// Resource is a generated resource: its type, its id and its JSON.
type Resource struct {
	Type, ID string
	JSON     []byte
}

// kinds of resource, for ids.
const (
	kindPatient = iota + 1
	kindObservation
	kindGoal
	kindCarePlan
)

// id returns the id of resource k of a kind in chart i: a UUID (version 4
// layout, as the server assigns) that depends only on the seed, kind, i and
// k, so tests can name any resource without generating it.
func (p Population) id(kind, i, k int) string {
	r := rand.New(rand.NewPCG(p.Seed^uint64(kind)<<56, uint64(i)<<8|uint64(k)))
	var b [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for j := range 8 {
		b[j] = byte(hi >> (56 - 8*j))
		b[8+j] = byte(lo >> (56 - 8*j))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// PatientID returns the id of patient i.
func (p Population) PatientID(i int) string { return p.id(kindPatient, i, 0) }

// ObservationID returns the id of observation k of patient i.
func (p Population) ObservationID(i, k int) string { return p.id(kindObservation, i, k) }

// GoalID returns the id of goal k of patient i.
func (p Population) GoalID(i, k int) string { return p.id(kindGoal, i, k) }

// CarePlanID returns the id of care plan k of patient i: 0 is the plan, 1
// its sub-plan (partOf 0).
func (p Population) CarePlanID(i, k int) string { return p.id(kindCarePlan, i, k) }

// Identifier returns patient i's BSN: nine digits, unique in the
// population (a bijection of i onto 100000000..999999999).
func (p Population) Identifier(i int) string {
	const span = 900_000_000
	return fmt.Sprint(100_000_000 + (uint64(i)*7_919+p.Seed*104_729)%span)
}

// rng returns the random stream of chart i.
func (p Population) rng(i int) *rand.Rand {
	return rand.New(rand.NewPCG(p.Seed, uint64(i)))
}

// Family returns the family name of patient i.
func (p Population) Family(i int) string {
	return Families[skewed(p.rng(i), len(Families))]
}

// skewed draws from [0, n) with a roughly Zipf-like bias towards 0.
func skewed(r *rand.Rand, n int) int {
	x := r.Float64()
	return min(n-1, int(float64(n)*x*x))
}

// Chart returns patient i and everything about them, in write order (a
// resource comes after the ones it refers to): the Patient, the Goals, the
// CarePlans (the plan before its sub-plan) and the Observations. It panics
// when i is out of range.
func (p Population) Chart(i int) []Resource {
	if i < 0 || i >= p.Patients {
		panic(fmt.Sprintf("dataset: patient %d of %d", i, p.Patients))
	}
	r := p.rng(i)
	out := make([]Resource, 0, PerPatient)
	add := func(typ, id string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("dataset: encode %s: %v", typ, err)) // the types below always encode
		}
		out = append(out, Resource{Type: typ, ID: id, JSON: b})
	}

	pid := p.PatientID(i)
	subject := reference{Reference: "Patient/" + pid}
	family := Families[skewed(r, len(Families))] // the first draw: Family(i) repeats it
	birth := time.Date(2008, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(18*365))
	given := givens[r.IntN(len(givens))]
	pat := patient{
		ResourceType: "Patient",
		ID:           pid,
		Identifier: []identifier{
			{Use: "official", System: BSN, Value: p.Identifier(i)},
			{Use: "usual", System: MRN, Value: fmt.Sprintf("MRN-%d-%08d", p.Seed, i)},
		},
		Active: true,
		Name: []humanName{{
			Use: "official", Family: family, Given: []string{given},
			Text: given + " " + family,
		}},
		Gender:    genders[r.IntN(len(genders))],
		BirthDate: birth.Format(time.DateOnly),
		Address: []address{{
			Use: "home", City: cities[r.IntN(len(cities))], PostalCode: fmt.Sprintf("%04d %c%c", 1000+r.IntN(9000), 'A'+rune(r.IntN(26)), 'A'+rune(r.IntN(26))), Country: "NL",
		}},
	}
	add("Patient", pid, pat)

	var goals []reference
	for k := range GoalsPerPatient {
		gid := p.GoalID(i, k)
		start := birth.AddDate(0, 0, r.IntN(365*3))
		add("Goal", gid, goal{
			ResourceType:    "Goal",
			ID:              gid,
			LifecycleStatus: goalStatus[r.IntN(len(goalStatus))],
			Category:        []codeableConcept{{Coding: []coding{{System: goalCategory, Code: "behavioral", Display: "Behavioral"}}}},
			Description:     codeableConcept{Text: goalTexts[r.IntN(len(goalTexts))]},
			Subject:         subject,
			StartDate:       start.Format(time.DateOnly),
			Target:          []goalTarget{{DueDate: start.AddDate(1, 0, 0).Format(time.DateOnly)}},
		})
		goals = append(goals, reference{Reference: "Goal/" + gid})
	}

	for k := range CarePlansPerPatient {
		cid := p.CarePlanID(i, k)
		start := birth.AddDate(0, 0, r.IntN(365*4))
		cp := carePlan{
			ResourceType: "CarePlan",
			ID:           cid,
			Status:       planStatus[r.IntN(len(planStatus))],
			Intent:       "plan",
			Category:     []codeableConcept{{Coding: []coding{{System: SNOMED, Code: "734163000", Display: "Care plan"}}}},
			Title:        planTitles[r.IntN(len(planTitles))],
			Subject:      subject,
			Period:       &period{Start: start.Format(time.DateOnly), End: start.AddDate(1, 0, 0).Format(time.DateOnly)},
			Created:      start.Format(time.DateOnly),
			Goal:         goals,
		}
		if k > 0 {
			cp.PartOf = []reference{{Reference: "CarePlan/" + p.CarePlanID(i, 0)}}
		}
		add("CarePlan", cid, cp)
	}

	span := End.Sub(Start)
	for k := range ObservationsPerPatient {
		oid := p.ObservationID(i, k)
		c := pickCode(r)
		when := Start.Add(time.Duration(r.Int64N(int64(span/time.Second))) * time.Second)
		value := math.Round((c.Lo+r.Float64()*(c.Hi-c.Lo))*10) / 10
		add("Observation", oid, observation{
			ResourceType: "Observation",
			ID:           oid,
			Status:       "final",
			Category:     []codeableConcept{{Coding: []coding{{System: obsCategory, Code: c.Category}}}},
			Code:         codeableConcept{Coding: []coding{{System: LOINC, Code: c.Code, Display: c.Display}}, Text: c.Display},
			Subject:      subject,
			Effective:    when.Format(time.RFC3339),
			Issued:       when.Add(time.Duration(r.IntN(3600)) * time.Second).Format(time.RFC3339),
			Value:        quantity{Value: value, Unit: c.Unit, System: UCUM, Code: c.Unit},
		})
	}
	return out
}

var cities = []string{"Amsterdam", "Rotterdam", "Den Haag", "Utrecht", "Eindhoven", "Groningen", "Tilburg", "Almere", "Breda", "Nijmegen", "Zwolle", "Leeuwarden"}

func pickCode(r *rand.Rand) Code {
	n := r.IntN(totalWeight)
	for _, c := range Codes {
		if n < c.Weight {
			return c
		}
		n -= c.Weight
	}
	return Codes[len(Codes)-1]
}

// Minimal FHIR R4 datatypes, enough for the resources above.
type (
	coding struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display,omitempty"`
	}
	codeableConcept struct {
		Coding []coding `json:"coding,omitempty"`
		Text   string   `json:"text,omitempty"`
	}
	reference struct {
		Reference string `json:"reference"`
	}
	identifier struct {
		Use    string `json:"use,omitempty"`
		System string `json:"system"`
		Value  string `json:"value"`
	}
	humanName struct {
		Use    string   `json:"use,omitempty"`
		Text   string   `json:"text,omitempty"`
		Family string   `json:"family"`
		Given  []string `json:"given,omitempty"`
	}
	address struct {
		Use        string `json:"use,omitempty"`
		City       string `json:"city"`
		PostalCode string `json:"postalCode"`
		Country    string `json:"country"`
	}
	quantity struct {
		Value  float64 `json:"value"`
		Unit   string  `json:"unit"`
		System string  `json:"system"`
		Code   string  `json:"code"`
	}
	period struct {
		Start string `json:"start,omitempty"`
		End   string `json:"end,omitempty"`
	}
	goalTarget struct {
		DueDate string `json:"dueDate"`
	}
)

type patient struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id"`
	Identifier   []identifier `json:"identifier"`
	Active       bool         `json:"active"`
	Name         []humanName  `json:"name"`
	Gender       string       `json:"gender"`
	BirthDate    string       `json:"birthDate"`
	Address      []address    `json:"address"`
}

type observation struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Status       string            `json:"status"`
	Category     []codeableConcept `json:"category"`
	Code         codeableConcept   `json:"code"`
	Subject      reference         `json:"subject"`
	Effective    string            `json:"effectiveDateTime"`
	Issued       string            `json:"issued"`
	Value        quantity          `json:"valueQuantity"`
}

type goal struct {
	ResourceType    string            `json:"resourceType"`
	ID              string            `json:"id"`
	LifecycleStatus string            `json:"lifecycleStatus"`
	Category        []codeableConcept `json:"category"`
	Description     codeableConcept   `json:"description"`
	Subject         reference         `json:"subject"`
	StartDate       string            `json:"startDate"`
	Target          []goalTarget      `json:"target"`
}

type carePlan struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	PartOf       []reference       `json:"partOf,omitempty"`
	Status       string            `json:"status"`
	Intent       string            `json:"intent"`
	Category     []codeableConcept `json:"category"`
	Title        string            `json:"title"`
	Subject      reference         `json:"subject"`
	Period       *period           `json:"period,omitempty"`
	Created      string            `json:"created"`
	Goal         []reference       `json:"goal,omitempty"`
}
