package ig_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/ig"
	"github.com/digitaleouder/ouder/fhir"
)

// exampleFile is one file of testdata/ig: valid and invalid examples of one
// profile, with the issues each invalid one must raise.
type exampleFile struct {
	Profile string            `json:"profile"`
	Valid   []json.RawMessage `json:"valid"`
	Invalid []struct {
		Name     string          `json:"name"`
		Resource json.RawMessage `json:"resource"`
		Status   int             `json:"status"`
		Issues   []wantIssue     `json:"issues"`
	} `json:"invalid"`
}

type wantIssue struct {
	Severity   string `json:"severity"`
	Code       string `json:"code"`
	Expression string `json:"expression"`
}

// readExamples reads every example file, keyed by the profile's URL.
func readExamples(t *testing.T) map[string]exampleFile {
	t.Helper()
	files, err := filepath.Glob("../../testdata/ig/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in testdata/ig: %v", err)
	}
	out := map[string]exampleFile{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ex exampleFile
		if err := json.Unmarshal(b, &ex); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if strings.TrimSuffix(filepath.Base(f), ".json") != ex.Profile[strings.LastIndexByte(ex.Profile, '/')+1:] {
			t.Errorf("%s holds the examples of %s", f, ex.Profile)
		}
		out[ex.Profile] = ex
	}
	return out
}

// TestEveryProfileHasExamples checks that testdata/ig has valid and invalid
// examples of every profile of the guide.
func TestEveryProfileHasExamples(t *testing.T) {
	t.Parallel()
	examples := readExamples(t)
	for _, p := range ig.Profiles() {
		if p.Type == "Extension" {
			continue // exercised by the parent examples
		}
		ex, ok := examples[p.URL]
		switch {
		case !ok:
			t.Errorf("no examples of %s", p.URL)
		case len(ex.Valid) == 0 || len(ex.Invalid) == 0:
			t.Errorf("%s: %d valid and %d invalid examples, want both", p.URL, len(ex.Valid), len(ex.Invalid))
		}
		delete(examples, p.URL)
	}
	for url := range examples {
		t.Errorf("examples of %s, which is not a profile of the guide", url)
	}
}

// TestExamples runs the examples through the parser: the valid ones are
// accepted and conform to their profile, the invalid ones are refused with
// the expected status and issues.
func TestExamples(t *testing.T) {
	t.Parallel()
	p, err := conformance.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	for url, ex := range readExamples(t) {
		name := url[strings.LastIndexByte(url, '/')+1:]
		for i, b := range ex.Valid {
			res, err := p.Parse(b, "")
			if err != nil {
				t.Errorf("%s: valid example %d refused: %v", name, i, err)
				continue
			}
			if !contains(res.Profiles, url) {
				t.Errorf("%s: valid example %d validated against %v, not its profile", name, i, res.Profiles)
			}
		}
		for _, c := range ex.Invalid {
			_, err := p.Parse(c.Resource, "")
			var fe *fhir.Error
			if !errors.As(err, &fe) {
				t.Errorf("%s: %s: accepted (%v), want %d", name, c.Name, err, c.Status)
				continue
			}
			if got := fe.Kind.Info().Status; got != c.Status {
				t.Errorf("%s: %s: status %d, want %d: %v", name, c.Name, got, c.Status, err)
			}
			for _, w := range c.Issues {
				if !hasIssue(fe.Issues, w) {
					t.Errorf("%s: %s: no issue %+v in\n%v", name, c.Name, w, err)
				}
			}
			if len(fe.Issues) != len(c.Issues) {
				t.Errorf("%s: %s: %d issues, want %d:\n%v", name, c.Name, len(fe.Issues), len(c.Issues), err)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hasIssue reports whether issues has one with w's severity, code and
// expression (the status of 400s comes from the R4 parser, whose codes are
// its own: only the expression is compared for those).
func hasIssue(issues []fhir.Issue, w wantIssue) bool {
	for _, is := range issues {
		sev := is.Severity
		if sev == "" {
			sev = "error"
		}
		if sev == w.Severity && (is.Code == w.Code || w.Code == "") && contains(is.Expression, w.Expression) {
			return true
		}
	}
	return false
}
