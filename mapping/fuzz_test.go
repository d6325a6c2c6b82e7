package mapping

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digitaleouder/ouder/fhir"
)

// converter reads a resource into a domain value and writes it back.
type converter struct {
	name string
	from func([]byte) (any, error)
	to   func(any) ([]byte, error)
}

var converters = []converter{
	{"plan", func(b []byte) (any, error) { return PlanFromFHIR(b) }, func(v any) ([]byte, error) { return v.(Plan).ToFHIR() }},
	{"agreement", func(b []byte) (any, error) { return AgreementFromFHIR(b) }, func(v any) ([]byte, error) { return v.(Agreement).ToFHIR() }},
	{"goal", func(b []byte) (any, error) { return GoalFromFHIR(b) }, func(v any) ([]byte, error) { return v.(Goal).ToFHIR() }},
	{"help question", func(b []byte) (any, error) { return HelpQuestionFromFHIR(b) }, func(v any) ([]byte, error) { return v.(HelpQuestion).ToFHIR() }},
	{"note", func(b []byte) (any, error) { return NoteFromFHIR(b) }, func(v any) ([]byte, error) { return v.(Note).ToFHIR() }},
	{"diary entry", func(b []byte) (any, error) { return DiaryEntryFromFHIR(b) }, func(v any) ([]byte, error) { return v.(DiaryEntry).ToFHIR() }},
	{"message", func(b []byte) (any, error) { return MessageFromFHIR(b) }, func(v any) ([]byte, error) { return v.(Message).ToFHIR() }},
	{"appointment", func(b []byte) (any, error) { return AppointmentFromFHIR(b) }, func(v any) ([]byte, error) { return v.(Appointment).ToFHIR() }},
	{"evaluation", func(b []byte) (any, error) { return EvaluationFromFHIR(b) }, func(v any) ([]byte, error) { return v.(Evaluation).ToFHIR() }},
	{"team", func(b []byte) (any, error) { return TeamFromFHIR(b) }, func(v any) ([]byte, error) { return v.(Team).ToFHIR() }},
	{"grant", func(b []byte) (any, error) { return GrantFromFHIR(b) }, func(v any) ([]byte, error) { return v.(Grant).ToFHIR() }},
	{"change request", func(b []byte) (any, error) { return ChangeRequestFromFHIR(b) }, func(v any) ([]byte, error) { return v.(ChangeRequest).ToFHIR() }},
}

// FuzzFromFHIR checks, for any body, that every reader either refuses it
// with an Invalid error or returns a value that writes without error and
// reads back unchanged: what FromFHIR accepts, ToFHIR can produce.
func FuzzFromFHIR(f *testing.F) {
	for _, rt := range roundTrips() {
		b, err := rt.toFHIR()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"resourceType":"CarePlan","category":[{"coding":[{}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, cv := range converters {
			v, err := cv.from(b)
			if err != nil {
				if !fhir.IsKind(err, fhir.Invalid) {
					t.Fatalf("%s: error of kind %v: %v", cv.name, fhir.KindOf(err), err)
				}
				continue
			}
			out, err := cv.to(v)
			if err != nil {
				t.Fatalf("%s: read %+v but cannot write it: %v", cv.name, v, err)
			}
			again, err := cv.from(out)
			if err != nil {
				t.Fatalf("%s: cannot read what was written: %v\n%s", cv.name, err, out)
			}
			if diff := cmp.Diff(v, again); diff != "" {
				t.Fatalf("%s: second round trip (-first +second):\n%s", cv.name, diff)
			}
		}
	})
}

// FuzzAgeAt checks that any birth date either is refused or gives a sane age.
func FuzzAgeAt(f *testing.F) {
	for _, s := range []string{"2014-11-23", "2012-02-29", "2014", "2014-11", "2026-06-01", "0001-01-01", "9999-12-31"} {
		f.Add(s, int64(1780000000))
	}
	f.Fuzz(func(t *testing.T, birth string, unix int64) {
		at := time.Unix(unix%(1<<40), 0)
		a, err := AgeAt(birth, at, time.UTC)
		if err != nil {
			if !fhir.IsKind(err, fhir.Invalid) {
				t.Fatalf("AgeAt(%q): error of kind %v: %v", birth, fhir.KindOf(err), err)
			}
			return
		}
		if a.Min < 0 || a.Max < a.Min || a.Max-a.Min > 1 {
			t.Fatalf("AgeAt(%q, %s) = %+v", birth, at, a)
		}
	})
}
