package mapping

import (
	"os"
	"regexp"
	"testing"

	"github.com/digitaleouder/ouder/fhir"
)

// TestDocsExamples keeps the JSON examples of docs/mapping.md true: each is
// valid R4, is in a section, and, where the package has a domain type for
// it, is read by that type's conversion.
func TestDocsExamples(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/mapping.md")
	if err != nil {
		t.Fatalf("read the mapping documentation: %v", err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) < 15 {
		t.Fatalf("docs/mapping.md has %d JSON examples, want every concept", len(blocks))
	}
	domainTypes := map[string]bool{
		"CarePlan": true, "Goal": true, "Condition": true, "Communication": true, "Appointment": true,
		"QuestionnaireResponse": true, "CareTeam": true, "Consent": true, "Task": true,
	}
	for _, m := range blocks {
		b := m[1]
		typ, cats := categoriesOf(t, b)
		t.Run(typ, func(t *testing.T) {
			validR4(t, b)
			if _, ok := SectionOf(typ, cats); !ok {
				t.Errorf("no section for\n%s", b)
			}
			switch {
			case typ == "DocumentReference":
				if _, err := DocumentFromFHIR(b, nil); err != nil {
					t.Errorf("DocumentFromFHIR: %v", err)
				}
			case domainTypes[typ]:
				var errs []error
				for _, cv := range converters {
					if _, err := cv.from(b); err == nil {
						return
					} else if fhir.IsKind(err, fhir.Invalid) {
						errs = append(errs, err)
					}
				}
				t.Errorf("no conversion reads\n%s\n%v", b, errs)
			}
		})
	}
}
