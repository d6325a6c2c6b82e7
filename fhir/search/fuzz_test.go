package search

import (
	"errors"
	"net/url"
	"testing"

	"github.com/digitaleouder/ouder/fhir"
)

// FuzzParse checks that no query string makes the parser panic, that every
// error is a client error naming what went wrong, and that whatever parses
// survives Encode and a second Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"name=peter&birthdate=ge2020-01-01&_count=10",
		`identifier=http://x|a\,b,|c&gender:not=male`,
		"subject:Patient.name=x&subject.organization.name:exact=y&_sort=-date,_id",
		"_has:Observation:patient:_has:AuditEvent:entity:agent=Practitioner/1",
		"code-value-quantity=http://loinc.org|8480-6$lt60||mm[Hg]&value-quantity=5.4|http://unitsofmeasure.org|mg",
		"_include=*&_include:iterate=Patient:link&_revinclude=Provenance:target&_total=accurate",
		"probability=1e2,sa0.5&date=2020-03-04T10:00:30.25%2B01:00&_lastUpdated=gt2024",
		"target.target.target.target.target=x&focus.subject.name=y",
		"subject=https://ouder.example/fhir/Patient/1/_history/2&questionnaire=http://x|1",
	} {
		f.Add(seed)
	}
	p := newParser(f)
	f.Fuzz(func(t *testing.T, raw string) {
		params, _ := url.ParseQuery(raw) // a partial result is still input
		for _, types := range [][]string{{"Observation"}, {"Patient"}, {"Provenance"}, {"Patient", "Observation"}, nil} {
			for _, strict := range []bool{false, true} {
				q, err := p.Parse(types, params, strict)
				if err != nil {
					var fe *fhir.Error
					if !errors.As(err, &fe) || (fe.Kind != fhir.Invalid && fe.Kind != fhir.NotSupported) || len(fe.Issues) != 1 || len(fe.Issues[0].Expression) != 1 {
						t.Fatalf("Parse(%v, %q): error %#v is not a client error naming a parameter", types, raw, err)
					}
					continue
				}
				roundTrip(t, p, types, q)
			}
		}
	})
}
