package smart

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that no scope string makes Parse panic, that every
// whitespace-separated scope is either returned or reported, and that what
// parses survives String and a second Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"openid fhirUser launch/patient patient/*.rs offline_access",
		"patient/*.read user/Observation.write system/*.*",
		"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
		"user/Observation.rs?code=http://loinc.org|8480-6&category=a&category=a",
		"patient/Observation.rs?code=a%26b%3Dc%25d+e",
		"patient/*.rs?_security:not=R&_has:Provenance:target:agent=Practitioner/1",
		"patient/Observation.sr patient/Observation.rs?_count=1 __ext https://x.example/s",
		"launch/encounter launch/imagingstudy patient/Observation.cruds?",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ss, err := Parse(in)
		var nbad int
		if err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var se *ScopeError
				if !errors.As(e, &se) || se.Reason == "" {
					t.Fatalf("Parse(%q): error %v is not a *ScopeError with a reason", in, e)
				}
				nbad++
			}
		}
		if n := len(strings.Fields(in)); len(ss)+nbad != n {
			t.Fatalf("Parse(%q): %d scopes and %d errors for %d fields", in, len(ss), nbad, n)
		}
		for _, s := range ss {
			if s.Clinical() && (s.Ops == 0 || s.Ops&^allOps != 0 || s.Type == "") {
				t.Fatalf("Parse(%q): clinical scope %#v without type or permissions", in, s)
			}
			for k, vs := range s.Params {
				for _, v := range vs {
					if k == "" || v == "" {
						t.Fatalf("Parse(%q): empty constraint in %#v", in, s)
					}
				}
			}
			text := s.String()
			again, err := ParseScope(text)
			if err != nil {
				t.Fatalf("ParseScope(%q) (from %q): %v", text, in, err)
			}
			if again.String() != text || again.Kind != s.Kind || again.Type != s.Type || again.Ops != s.Ops || paramsKey(again.Params) != paramsKey(s.Params) {
				t.Fatalf("round trip of %q: %#v became %#v", text, s, again)
			}
		}
	})
}

// FuzzNarrow checks the no-widening rule on arbitrary pairs of scope strings.
func FuzzNarrow(f *testing.F) {
	f.Add("patient/*.cruds", "patient/Observation.rs")
	f.Add("patient/Observation.rs?category=a", "patient/*.rs?code=b openid")
	f.Add("user/*.read openid launch", "user/Condition.* launch")
	f.Fuzz(func(t *testing.T, requested, granted string) {
		req, _ := Parse(requested)
		gr, _ := Parse(granted)
		got := Narrow(req, gr)
		checkNoWider(t, got, gr, "granted")
		checkNoWider(t, got, req, "requested")
		checkComplete(t, got, req, gr)
	})
}
