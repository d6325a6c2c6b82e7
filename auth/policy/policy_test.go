package policy

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/smart"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
)

func newPolicy(tb testing.TB) *Policy {
	tb.Helper()
	reg, err := searchparam.Builtin()
	if err != nil {
		tb.Fatal(err)
	}
	return New(Config{Registry: func() *searchparam.Registry { return reg }, Base: "https://fhir.test/fhir", ScopesOnly: true})
}

func scopes(tb testing.TB, s string) smart.Scopes {
	tb.Helper()
	ss, err := smart.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return ss
}

// TestCompartments: every parameter of the compartment definitions is a
// reference parameter of its resource type, so no compartment silently
// matches nothing.
func TestCompartments(t *testing.T) {
	reg, err := searchparam.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for owner, def := range newPolicy(t).Compartments() {
		if len(def) < 20 {
			t.Errorf("%s compartment has only %d types", owner, len(def))
		}
		for typ, codes := range def {
			for _, code := range codes {
				p, ok := reg.Lookup(typ, code)
				if !ok || p.Kind != searchparam.Reference {
					t.Errorf("%s compartment: %s.%s is not a reference search parameter", owner, typ, code)
				}
			}
		}
	}
}

// rule renders a rule for comparison: type, clause count, confinement.
func rule(r search.Rule) string {
	s := r.Type
	if s == "" {
		s = "*"
	}
	if len(r.Where) > 0 {
		s += "?" + strings.Repeat("c", len(r.Where))
	}
	if r.In != nil {
		var owners []string
		for _, o := range r.In.Owners {
			owners = append(owners, o.Type+"/"+o.ID)
		}
		if r.In.Person != "" {
			owners = append(owners, "linked:Person/"+r.In.Person)
		}
		s += " in " + strings.Join(owners, ",")
	}
	return s
}

func rules(rs []search.Rule) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, rule(r))
	}
	slices.Sort(out)
	return out
}

func TestDecide(t *testing.T) {
	t.Parallel()
	pol := newPolicy(t)
	patient := func(s string) *auth.Principal {
		return &auth.Principal{Scopes: scopes(t, s), Patient: "p1"}
	}
	user := func(s, fhirUser string) *auth.Principal {
		return &auth.Principal{Scopes: scopes(t, s), FHIRUser: fhirUser}
	}
	system := func(s string) *auth.Principal { return &auth.Principal{Scopes: scopes(t, s)} }
	tests := []struct {
		name      string
		p         *auth.Principal
		in        auth.Interaction
		types     []string
		err       fhir.Kind // -1: allowed
		read      []string
		write     []string
		unlimited bool
	}{
		{name: "operator", p: &auth.Principal{Operator: true}, in: auth.Delete, types: []string{"Patient"}, err: -1, unlimited: true},
		{name: "nobody", p: nil, in: auth.Read, types: []string{"Patient"}, err: fhir.Unauthorized},
		{name: "no scopes", p: system(""), in: auth.Read, types: []string{"Patient"}, err: fhir.Forbidden},
		{name: "non-clinical scopes only", p: system("openid fhirUser launch/patient"), in: auth.SearchSystem, err: fhir.Forbidden},
		{name: "patient v1 read", p: patient("patient/*.read"), in: auth.Read, types: []string{"Observation"}, err: -1,
			read: []string{"* in Patient/p1"}},
		{name: "patient v1 read refuses write", p: patient("patient/*.read"), in: auth.Create, types: []string{"Observation"}, err: fhir.Forbidden},
		{name: "patient without context", p: system("patient/*.read"), in: auth.Read, types: []string{"Observation"}, err: fhir.Forbidden},
		{name: "patient with a bad id", p: &auth.Principal{Scopes: scopes(t, "patient/*.read"), Patient: "a/b"}, in: auth.Read, types: []string{"Observation"}, err: fhir.Forbidden},
		{name: "v2 s is not r", p: patient("patient/Observation.s"), in: auth.Read, types: []string{"Observation"}, err: fhir.Forbidden},
		{name: "v2 r is not s", p: patient("patient/Observation.r"), in: auth.SearchType, types: []string{"Observation"}, err: fhir.Forbidden},
		{name: "v2 u covers patch", p: patient("patient/Observation.u"), in: auth.Patch, types: []string{"Observation"}, err: -1,
			read: []string{}, write: []string{"Observation in Patient/p1"}},
		{name: "write with read", p: patient("patient/Observation.cud patient/Observation.rs"), in: auth.Update, types: []string{"Observation"}, err: -1,
			read: []string{"Observation in Patient/p1"}, write: []string{"Observation in Patient/p1"}},
		{name: "granular", p: patient("patient/Observation.rs?category=vital-signs"), in: auth.SearchType, types: []string{"Observation"}, err: -1,
			read: []string{"Observation?c in Patient/p1"}},
		{name: "granular two parameters", p: system("system/Observation.rs?category=vital-signs&status=final"), in: auth.SearchType, types: []string{"Observation"}, err: -1,
			read: []string{"Observation?cc"}},
		{name: "granular on another type", p: system("system/Observation.rs?category=vital-signs"), in: auth.SearchType, types: []string{"Patient"}, err: fhir.Forbidden},
		{name: "granular that does not parse denies", p: system("system/Observation.rs?no-such=1"), in: auth.SearchType, types: []string{"Observation"}, err: fhir.Forbidden},
		{name: "granular that does not parse leaves the others", p: system("system/Observation.rs?no-such=1 system/Observation.rs?status=final"), in: auth.SearchType, types: []string{"Observation"}, err: -1,
			read: []string{"Observation?c"}},
		{name: "granular wildcard common", p: system("system/*.rs?_security=R"), in: auth.SearchSystem, err: -1, read: []string{"*?c"}},
		{name: "user person", p: user("user/*.rs", "Person/u1"), in: auth.SearchType, types: []string{"Observation"}, err: -1,
			read: []string{"* in linked:Person/u1"}},
		{name: "user relatedperson", p: user("user/Observation.rs", "RelatedPerson/r1"), in: auth.SearchType, types: []string{"Observation"}, err: -1,
			read: []string{"Observation in RelatedPerson/r1"}},
		{name: "user organization is no user", p: user("user/*.rs", "Organization/o1"), in: auth.SearchType, types: []string{"Observation"}, err: fhir.Forbidden},
		{name: "user without fhirUser", p: user("user/*.rs", ""), in: auth.SearchType, types: []string{"Observation"}, err: fhir.Forbidden},
		{name: "system", p: system("system/Observation.rs"), in: auth.Read, types: []string{"Observation"}, err: -1, read: []string{"Observation"}},
		{name: "system other type", p: system("system/Observation.rs"), in: auth.Read, types: []string{"Patient"}, err: fhir.Forbidden},
		{name: "system search needs every type", p: system("system/Observation.rs"), in: auth.SearchSystem, types: []string{"Observation", "Patient"}, err: fhir.Forbidden},
		{name: "levels are a union", p: &auth.Principal{Scopes: scopes(t, "patient/Observation.rs system/Practitioner.rs user/Observation.rs"), Patient: "p1", FHIRUser: "Practitioner/d1"},
			in: auth.SearchType, types: []string{"Observation"}, err: -1,
			read: []string{"Observation in Patient/p1", "Observation in Practitioner/d1", "Practitioner"}},
		{name: "operation needs some scope on the type", p: system("system/Observation.c"), in: auth.Operation, types: []string{"Observation"}, err: -1, read: []string{}},
		{name: "operation on another type", p: system("system/Observation.c"), in: auth.Operation, types: []string{"Patient"}, err: fhir.Forbidden},
		{name: "write needs one type", p: system("system/*.cruds"), in: auth.Create, err: fhir.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := pol.Decide(context.Background(), tt.p, tt.in, tt.types...)
			if tt.err >= 0 {
				if err == nil || fhir.KindOf(err) != tt.err {
					t.Fatalf("err %v (kind %v), want kind %v", err, fhir.KindOf(err), tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.IsUnrestricted() != tt.unlimited {
				t.Fatalf("unrestricted %v, want %v", a.IsUnrestricted(), tt.unlimited)
			}
			if tt.unlimited {
				return
			}
			if got := rules(a.Read); !slices.Equal(got, tt.read) {
				t.Errorf("read rules %v, want %v", got, tt.read)
			}
			if got := rules(a.Write); (tt.write != nil || len(got) > 0) && !slices.Equal(got, tt.write) {
				t.Errorf("write rules %v, want %v", got, tt.write)
			}
		})
	}
}

// TestForbiddenHints: a 403 says why scopes that look right cannot be used.
func TestForbiddenHints(t *testing.T) {
	t.Parallel()
	pol := newPolicy(t)
	_, err := pol.Decide(context.Background(), &auth.Principal{Scopes: scopes(t, "patient/*.rs")}, auth.Read, "Observation")
	if err == nil || !strings.Contains(err.Error(), "patient in context") {
		t.Errorf("patient scope without a patient: %v", err)
	}
	_, err = pol.Decide(context.Background(), &auth.Principal{Scopes: scopes(t, "user/*.rs")}, auth.Read, "Observation")
	if err == nil || !strings.Contains(err.Error(), "fhirUser") {
		t.Errorf("user scope without a fhirUser: %v", err)
	}
}

// TestFilterCache: a constraint is parsed once per registry and type, and
// a wildcard constraint that only some types have gives one rule per type
// that has it.
func TestFilterCache(t *testing.T) {
	t.Parallel()
	pol := newPolicy(t)
	p := &auth.Principal{Scopes: scopes(t, "system/*.rs?category=vital-signs")}
	a, err := pol.Decide(context.Background(), p, auth.SearchType, "Observation")
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, r := range a.Read {
		if r.Type == "" || len(r.Where) != 1 {
			t.Fatalf("rule %s: want a typed rule with one clause", rule(r))
		}
		types[r.Type] = true
	}
	for _, want := range []string{"Observation", "Condition", "CarePlan"} {
		if !types[want] {
			t.Errorf("no rule for %s among %v", want, types)
		}
	}
	if types["Patient"] {
		t.Error("a rule for Patient, which has no category")
	}
	b, err := pol.Decide(context.Background(), p, auth.SearchType, "Observation")
	if err != nil {
		t.Fatal(err)
	}
	if &a.Read[0].Where[0] != &b.Read[0].Where[0] {
		t.Error("the constraint was parsed again")
	}
}
