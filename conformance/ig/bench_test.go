package ig_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/digitaleouder/ouder/conformance"
)

// benchResources are typical domain resources, the first valid example of
// their profile in testdata/ig.
var benchResources = []string{"agreement", "note", "goal", "grant", "care-team", "parent", "child"}

func firstExample(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile("../../testdata/ig/" + name + ".json")
	if err != nil {
		tb.Fatal(err)
	}
	var ex exampleFile
	if err := json.Unmarshal(b, &ex); err != nil {
		tb.Fatal(err)
	}
	return ex.Valid[0]
}

// BenchmarkValidation compares, per typical resource, the R4 parse that
// every write pays (google/fhir/go's jsonformat) with what the profiles
// add: the whole Parse with and without profiles, and the profile check
// alone on the decoded resource.
//
//	go test -run - -bench Validation -benchmem ./conformance/ig
func BenchmarkValidation(b *testing.B) {
	withProfiles, err := conformance.NewParser()
	if err != nil {
		b.Fatal(err)
	}
	r4Only, err := conformance.NewParser()
	if err != nil {
		b.Fatal(err)
	}
	r4Only.Profiles = nil
	s := validator(b)
	for _, name := range benchResources {
		body := firstExample(b, name)
		b.Run(name+"/parse-r4", func(b *testing.B) {
			for b.Loop() {
				if _, err := r4Only.Parse(body, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/parse-r4+profiles", func(b *testing.B) {
			for b.Loop() {
				if _, err := withProfiles.Parse(body, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
		g := generic(b, body)
		b.Run(name+"/profiles", func(b *testing.B) {
			for b.Loop() {
				if res := s.Validate(g); !res.Valid() {
					b.Fatal(res.Issues)
				}
			}
		})
	}
}
