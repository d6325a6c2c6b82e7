package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// The generator makes small but valid FHIR R4 resources. Every field a strict
// server checks is present: Observation has status and code, CarePlan has
// status, intent and subject, Goal has lifecycleStatus, description and
// subject, and every reference names a resource that exists when it is sent.
// Everything random comes from a PCG stream seeded with (-seed, stream), so the
// same seed and stream give byte-identical resources.

// Code systems and identifier systems used in generated resources.
const (
	loincSystem       = "http://loinc.org"
	ucumSystem        = "http://unitsofmeasure.org"
	obsCategorySystem = "http://terminology.hl7.org/CodeSystem/observation-category"
	// patientIDSystem is the Patient.identifier system; the identifier
	// search shape looks patients up by it.
	patientIDSystem = "urn:ouderbench:patient"
)

// preloadStream offsets the generator streams of preloaded items from those
// of the load workers, so the two never produce the same sequence.
const preloadStream = 1 << 32

// vital is one LOINC-coded measurement with a plausible range.
type vital struct {
	code, display, unit string
	lo, hi              float64
}

var vitals = [...]vital{
	{"8867-4", "Heart rate", "/min", 50, 140},
	{"8310-5", "Body temperature", "Cel", 35.8, 39.5},
	{"29463-7", "Body weight", "kg", 3, 110},
	{"8302-2", "Body height", "cm", 50, 200},
	{"9279-1", "Respiratory rate", "/min", 10, 40},
	{"59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 90, 100},
}

var familyNames = [...]string{
	"de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser",
	"Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks",
	"van Leeuwen", "Dekker", "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer",
	"van der Linden", "Kok", "Jacobs", "de Haan", "Vermeulen",
}

var givenNames = [...]string{
	"Emma", "Noah", "Julia", "Liam", "Mila", "Lucas", "Sophie", "Daan", "Tess", "Sem",
	"Zoë", "Levi", "Sara", "Finn", "Nora", "Luuk", "Anna", "Milan", "Evi", "Jesse",
}

var genders = [...]string{"female", "male", "female", "male", "other", "unknown"}

// Minimal FHIR R4 datatypes, enough for the resources the benchmark writes.
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
		System string `json:"system"`
		Value  string `json:"value"`
	}
	humanName struct {
		Use    string   `json:"use,omitempty"`
		Family string   `json:"family"`
		Given  []string `json:"given,omitempty"`
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
)

// Patient is a generated FHIR R4 Patient.
type Patient struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id,omitempty"`
	Identifier   []identifier `json:"identifier"`
	Active       bool         `json:"active"`
	Name         []humanName  `json:"name"`
	Gender       string       `json:"gender"`
	BirthDate    string       `json:"birthDate"`
}

// Observation is a generated FHIR R4 vital-sign Observation.
type Observation struct {
	ResourceType      string            `json:"resourceType"`
	ID                string            `json:"id,omitempty"`
	Status            string            `json:"status"`
	Category          []codeableConcept `json:"category"`
	Code              codeableConcept   `json:"code"`
	Subject           reference         `json:"subject"`
	EffectiveDateTime string            `json:"effectiveDateTime"`
	Issued            string            `json:"issued,omitempty"`
	ValueQuantity     quantity          `json:"valueQuantity"`
}

// CarePlan is a generated FHIR R4 CarePlan.
type CarePlan struct {
	ResourceType string      `json:"resourceType"`
	ID           string      `json:"id,omitempty"`
	PartOf       []reference `json:"partOf,omitempty"`
	Status       string      `json:"status"`
	Intent       string      `json:"intent"`
	Title        string      `json:"title"`
	Description  string      `json:"description,omitempty"`
	Subject      reference   `json:"subject"`
	Period       period      `json:"period"`
	Created      string      `json:"created,omitempty"`
	Goal         []reference `json:"goal,omitempty"`
}

// Goal is a generated FHIR R4 Goal.
type Goal struct {
	ResourceType    string          `json:"resourceType"`
	ID              string          `json:"id,omitempty"`
	LifecycleStatus string          `json:"lifecycleStatus"`
	Description     codeableConcept `json:"description"`
	Subject         reference       `json:"subject"`
}

// Bundle is a FHIR R4 transaction Bundle.
type Bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Entry        []bundleEntry `json:"entry"`
}

type bundleEntry struct {
	FullURL  string       `json:"fullUrl"`
	Resource any          `json:"resource"`
	Request  entryRequest `json:"request"`
}

type entryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

// gen produces resources from one deterministic random stream. A gen is not
// safe for concurrent use: each worker and each preloaded item has its own.
type gen struct {
	rng    *rand.Rand
	seed   int64
	stream uint64
	n      int // resources made, for unique identifiers
}

// newGen returns the generator for stream of seed.
func newGen(seed int64, stream uint64) *gen {
	return &gen{rng: rand.New(rand.NewPCG(uint64(seed), stream)), seed: seed, stream: stream}
}

// epoch anchors generated dates, so they do not depend on the wall clock.
var epoch = time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)

// date returns a random day between 2018-01-01 and the end of 2025.
func (g *gen) date() time.Time {
	return epoch.AddDate(0, 0, g.rng.IntN(8*365))
}

// instant returns a random instant between 2018 and the end of 2025, to the second.
func (g *gen) instant() string {
	t := g.date().Add(time.Duration(g.rng.IntN(86400)) * time.Second)
	return t.Format(time.RFC3339)
}

// family returns a random family name; the chained and string search shapes
// pick their values the same way.
func (g *gen) family() string { return familyNames[g.rng.IntN(len(familyNames))] }

// vital returns a random LOINC vital sign.
func (g *gen) vital() vital { return vitals[g.rng.IntN(len(vitals))] }

// Patient returns a new Patient whose identifier value is unique for the
// seed and stream.
func (g *gen) Patient() *Patient {
	g.n++
	birth := time.Date(2006, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, g.rng.IntN(20*365))
	return &Patient{
		ResourceType: "Patient",
		Identifier:   []identifier{{System: patientIDSystem, Value: fmt.Sprintf("p-%d-%d-%d", g.seed, g.stream, g.n)}},
		Active:       true,
		Name: []humanName{{
			Use:    "official",
			Family: g.family(),
			Given:  []string{givenNames[g.rng.IntN(len(givenNames))]},
		}},
		Gender:    genders[g.rng.IntN(len(genders))],
		BirthDate: birth.Format(time.DateOnly),
	}
}

// Observation returns a final vital-sign Observation about subject (a
// reference such as "Patient/123" or "urn:uuid:...").
func (g *gen) Observation(subject string) *Observation {
	v := g.vital()
	value := math.Round((v.lo+g.rng.Float64()*(v.hi-v.lo))*10) / 10
	return &Observation{
		ResourceType: "Observation",
		Status:       "final",
		Category: []codeableConcept{{Coding: []coding{{
			System: obsCategorySystem, Code: "vital-signs", Display: "Vital Signs",
		}}}},
		Code:              codeableConcept{Coding: []coding{{System: loincSystem, Code: v.code, Display: v.display}}, Text: v.display},
		Subject:           reference{Reference: subject},
		EffectiveDateTime: g.instant(),
		ValueQuantity:     quantity{Value: value, Unit: v.unit, System: ucumSystem, Code: v.unit}, // these units are their own UCUM codes
	}
}

// Goal returns an active Goal for subject.
func (g *gen) Goal(subject string) *Goal {
	texts := [...]string{"Sleeps through the night", "Healthy weight", "Daily outdoor play", "Reads every day"}
	return &Goal{
		ResourceType:    "Goal",
		LifecycleStatus: "active",
		Description:     codeableConcept{Text: texts[g.rng.IntN(len(texts))]},
		Subject:         reference{Reference: subject},
	}
}

// CarePlan returns an active plan for subject with the given goals and parent
// plan (either may be empty).
func (g *gen) CarePlan(subject string, goals []string, partOf string) *CarePlan {
	titles := [...]string{"Growth follow-up", "Sleep plan", "Nutrition plan", "Vaccination schedule"}
	start := g.date()
	cp := &CarePlan{
		ResourceType: "CarePlan",
		Status:       "active",
		Intent:       "plan",
		Title:        titles[g.rng.IntN(len(titles))],
		Description:  "Generated by ouderbench",
		Subject:      reference{Reference: subject},
		Period:       period{Start: start.Format(time.DateOnly), End: start.AddDate(1, 0, 0).Format(time.DateOnly)},
		Created:      start.Format(time.RFC3339),
	}
	for _, goal := range goals {
		cp.Goal = append(cp.Goal, reference{Reference: goal})
	}
	if partOf != "" {
		cp.PartOf = []reference{{Reference: partOf}}
	}
	return cp
}

// uuid returns a random (version 4 layout) UUID from the stream.
func (g *gen) uuid() string {
	var b [16]byte
	hi, lo := g.rng.Uint64(), g.rng.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// obsPerPatient is how many Observations follow each Patient in an ingest
// Bundle.
const obsPerPatient = 4

// Transaction returns a transaction Bundle of n entries: Patients, each
// followed by up to obsPerPatient Observations that reference it through its
// urn:uuid fullUrl, so the server must resolve the references.
func (g *gen) Transaction(n int) *Bundle {
	b := &Bundle{ResourceType: "Bundle", Type: "transaction", Entry: make([]bundleEntry, 0, n)}
	var subject string
	for i := range n {
		if i%(obsPerPatient+1) == 0 {
			subject = "urn:uuid:" + g.uuid()
			b.Entry = append(b.Entry, bundleEntry{
				FullURL: subject, Resource: g.Patient(),
				Request: entryRequest{Method: "POST", URL: "Patient"},
			})
			continue
		}
		b.Entry = append(b.Entry, bundleEntry{
			FullURL: "urn:uuid:" + g.uuid(), Resource: g.Observation(subject),
			Request: entryRequest{Method: "POST", URL: "Observation"},
		})
	}
	return b
}

// mustJSON encodes a generated resource. The types above always encode, so
// a failure is a programming error.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("ouderbench: encode %T: %v", v, err))
	}
	return b
}
