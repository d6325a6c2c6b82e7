package smart

import (
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestNarrow(t *testing.T) {
	t.Parallel()
	const lab = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
	tests := []struct {
		name      string
		requested string
		granted   string
		want      string
	}{
		{
			name:      "wildcard request yields only the granted type and permissions",
			requested: "patient/*.cruds",
			granted:   "patient/Observation.rs",
			want:      "patient/Observation.rs",
		},
		{
			name:      "wildcard grant yields the requested type",
			requested: "patient/Observation.rs",
			granted:   "patient/*.cruds",
			want:      "patient/Observation.rs",
		},
		{
			name:      "permissions are intersected",
			requested: "user/Appointment.cruds",
			granted:   "user/Appointment.rs user/*.c",
			want:      "user/Appointment.crs",
		},
		{
			name:      "nothing in common",
			requested: "patient/Condition.rs",
			granted:   "patient/Observation.cruds",
			want:      "",
		},
		{
			name:      "disjoint permissions",
			requested: "patient/Observation.cud",
			granted:   "patient/Observation.rs",
			want:      "",
		},
		{
			name:      "levels are not mixed",
			requested: "patient/Observation.rs system/*.rs",
			granted:   "user/*.cruds",
			want:      "",
		},
		{
			name:      "constraint of the grant is kept",
			requested: "patient/*.rs",
			granted:   "patient/Observation.rs?category=" + lab,
			want:      "patient/Observation.rs?category=" + lab,
		},
		{
			name:      "constraint of the request is kept",
			requested: "patient/Observation.rs?category=" + lab,
			granted:   "patient/Observation.cruds",
			want:      "patient/Observation.rs?category=" + lab,
		},
		{
			name:      "constraints of both apply together",
			requested: "patient/Observation.rs?code=http://loinc.org|2345-7",
			granted:   "patient/Observation.rs?category=" + lab,
			want:      "patient/Observation.rs?category=" + lab + "&code=http://loinc.org|2345-7",
		},
		{
			name:      "same parameter in both is ANDed",
			requested: "patient/Observation.rs?category=a",
			granted:   "patient/Observation.rs?category=b",
			want:      "patient/Observation.rs?category=a&category=b",
		},
		{
			name:      "non-clinical scopes need to be granted",
			requested: "openid fhirUser launch/patient offline_access",
			granted:   "openid launch/patient online_access",
			want:      "openid launch/patient",
		},
		{
			name:      "v1 request answered in v1 when the meaning is kept",
			requested: "patient/*.read user/Observation.write",
			granted:   "patient/*.cruds user/Observation.cud",
			want:      "patient/*.read user/Observation.write",
		},
		{
			name:      "v1 request answered in v2 when narrowed",
			requested: "patient/*.read",
			granted:   "patient/Observation.r",
			want:      "patient/Observation.r",
		},
		{
			name:      "granted pieces are merged",
			requested: "patient/AllergyIntolerance.cruds",
			granted:   "patient/AllergyIntolerance.rs patient/AllergyIntolerance.cud",
			want:      "patient/AllergyIntolerance.cruds",
		},
		{
			name:      "covered scopes are left out",
			requested: "patient/*.rs patient/Observation.r patient/Observation.rs?category=x",
			granted:   "patient/*.cruds",
			want:      "patient/*.rs",
		},
		{
			name:      "duplicates are left out",
			requested: "openid openid patient/Observation.rs patient/Observation.rs",
			granted:   "openid patient/Observation.rs",
			want:      "openid patient/Observation.rs",
		},
		{
			name:      "nothing granted",
			requested: "patient/*.cruds openid",
			granted:   "",
			want:      "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, granted := mustParse(t, tt.requested), mustParse(t, tt.granted)
			got := Narrow(req, granted)
			if got.String() != tt.want {
				t.Errorf("Narrow(%q, %q) = %q, want %q", tt.requested, tt.granted, got.String(), tt.want)
			}
			checkNoWider(t, got, granted, "granted")
			checkNoWider(t, got, req, "requested")
			checkComplete(t, got, req, granted)
		})
	}
}

// TestNarrowNeverWidens checks on random scope sets that what Narrow returns
// permits nothing that either input does not, and everything both do.
func TestNarrowNeverWidens(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		req, granted := randomScopes(rng), randomScopes(rng)
		got := Narrow(req, granted)
		checkNoWider(t, got, granted, "granted")
		checkNoWider(t, got, req, "requested")
		checkComplete(t, got, req, granted)
		if t.Failed() {
			t.Fatalf("requested %q, granted %q, got %q", req, granted, got)
		}
		// The narrowed scopes survive a round trip through their text (a
		// token carries them as a string).
		again, err := Parse(got.String())
		if err != nil || again.String() != got.String() {
			t.Fatalf("Parse(%q) = %q, %v", got.String(), again.String(), err)
		}
	}
}

var (
	testTypes  = []string{"Observation", "Condition", "Patient"}
	testParams = []string{"category=a", "category=b", "code=x", "_tag=t"}
)

func randomScopes(rng *rand.Rand) Scopes {
	var parts []string
	for range rng.IntN(4) {
		if rng.IntN(5) == 0 {
			parts = append(parts, []string{"openid", "launch/patient", "offline_access"}[rng.IntN(3)])
			continue
		}
		kind := Kind(1 + rng.IntN(3))
		typ := "*"
		if rng.IntN(3) > 0 {
			typ = testTypes[rng.IntN(len(testTypes))]
		}
		ops := Op(1 + rng.IntN(int(allOps)))
		s := kind.String() + "/" + typ + "." + ops.String()
		var q []string
		for _, p := range testParams {
			if rng.IntN(4) == 0 {
				q = append(q, p)
			}
		}
		if len(q) > 0 {
			s += "?" + strings.Join(q, "&")
		}
		parts = append(parts, s)
	}
	ss, err := Parse(strings.Join(parts, " "))
	if err != nil {
		panic(err)
	}
	return ss
}

// checkNoWider fails t if got permits something bound does not: an operation
// bound denies, or resources outside every filter of bound. A filter F of got
// is within a filter G of bound when F has every parameter of G.
func checkNoWider(t *testing.T, got, bound Scopes, boundName string) {
	t.Helper()
	for _, name := range []string{"openid", "fhirUser", "launch/patient", "offline_access", "online_access"} {
		if got.Has(name) && !bound.Has(name) {
			t.Errorf("%q has %s, %s %q does not", got, name, boundName, bound)
		}
	}
	for k := Patient; k <= System; k++ {
		for _, typ := range typesOf(got, bound) {
			for _, op := range ops {
				g, b := got.Allows(k, typ, op), bound.Allows(k, typ, op)
				if !g.Allowed {
					continue
				}
				if !b.Allowed {
					t.Errorf("%q allows %v %s %v; %s %q does not", got, k, typ, op, boundName, bound)
					continue
				}
				if len(b.Filters) == 0 {
					continue
				}
				if len(g.Filters) == 0 {
					t.Errorf("%q allows %v %s %v unconstrained; %s %q only with %v", got, k, typ, op, boundName, bound, b.Filters)
					continue
				}
				for _, f := range g.Filters {
					if !withinAny(f, b.Filters) {
						t.Errorf("%q allows %v %s %v with %v, outside %s %q (%v)", got, k, typ, op, f, boundName, bound, b.Filters)
					}
				}
			}
		}
	}
}

// checkComplete fails t if got loses access that both req and granted give.
func checkComplete(t *testing.T, got, req, granted Scopes) {
	t.Helper()
	for k := Patient; k <= System; k++ {
		for _, typ := range typesOf(req, granted) {
			for _, op := range ops {
				r, g, n := req.Allows(k, typ, op), granted.Allows(k, typ, op), got.Allows(k, typ, op)
				if r.Allowed && g.Allowed && !n.Allowed {
					t.Errorf("Narrow(%q, %q) = %q loses %v %s %v", req, granted, got, k, typ, op)
				}
				if len(r.Filters) == 0 && len(g.Filters) == 0 && r.Allowed && g.Allowed && len(n.Filters) != 0 {
					t.Errorf("Narrow(%q, %q) = %q constrains %v %s %v", req, granted, got, k, typ, op)
				}
			}
		}
	}
}

// typesOf returns the resource types named in sets, the test types, and a
// type no scope names.
func typesOf(sets ...Scopes) []string {
	types := append([]string{"Encounter"}, testTypes...)
	for _, ss := range sets {
		for _, s := range ss {
			if s.Clinical() && s.Type != "*" && !slices.Contains(types, s.Type) {
				types = append(types, s.Type)
			}
		}
	}
	return types
}

func withinAny(f url.Values, bounds []url.Values) bool {
	for _, b := range bounds {
		if within(f, b) {
			return true
		}
	}
	return false
}

// within reports whether every parameter of b is in f, so f selects no more
// than b does.
func within(f, b url.Values) bool {
	for k, vs := range b {
		for _, v := range vs {
			found := false
			for _, fv := range f[k] {
				found = found || fv == v
			}
			if !found {
				return false
			}
		}
	}
	return true
}
