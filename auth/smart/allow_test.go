package smart

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustParse(tb testing.TB, s string) Scopes {
	tb.Helper()
	ss, err := Parse(s)
	if err != nil {
		tb.Fatalf("Parse(%q): %v", s, err)
	}
	return ss
}

var ops = []Op{Create, Read, Update, Delete, Search}

// TestAllowsOps checks, for each form of scope, exactly which operations it
// grants on a named type and on another type.
func TestAllowsOps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scopes string
		kind   Kind
		typ    string
		want   string // the permissions granted, as v2 letters
	}{
		{"patient/Observation.rs", Patient, "Observation", "rs"},
		{"patient/Observation.rs", Patient, "Condition", ""},
		{"patient/Observation.rs", User, "Observation", ""},
		{"patient/Observation.rs", System, "Observation", ""},
		{"patient/Observation.r", Patient, "Observation", "r"},
		{"patient/Observation.s", Patient, "Observation", "s"},
		{"patient/Observation.c", Patient, "Observation", "c"},
		{"patient/Observation.u", Patient, "Observation", "u"},
		{"patient/Observation.d", Patient, "Observation", "d"},
		{"patient/Observation.r patient/Observation.s", Patient, "Observation", "rs"},
		{"patient/*.rs", Patient, "Observation", "rs"},
		{"patient/*.rs", Patient, "Patient", "rs"},
		{"user/*.cruds", User, "Appointment", "cruds"},
		{"user/*.cruds", Patient, "Appointment", ""},
		{"system/*.rs", System, "Encounter", "rs"},
		{"system/Encounter.cud", System, "Encounter", "cud"},
		// v1 forms.
		{"patient/*.read", Patient, "Observation", "rs"},
		{"user/Observation.write", User, "Observation", "cud"},
		{"user/Observation.write", User, "Patient", ""},
		{"system/*.*", System, "Observation", "cruds"},
		{"patient/Observation.read patient/Observation.write", Patient, "Observation", "cruds"},
		// Non-clinical scopes grant no resource access.
		{"openid fhirUser launch/patient offline_access", Patient, "Patient", ""},
		{"", User, "Observation", ""},
	}
	for _, tt := range tests {
		t.Run(tt.scopes+"/"+tt.kind.String()+"/"+tt.typ, func(t *testing.T) {
			t.Parallel()
			ss := mustParse(t, tt.scopes)
			var got Op
			for _, op := range ops {
				g := ss.Allows(tt.kind, tt.typ, op)
				if g.Allowed {
					got |= op
				}
				if len(g.Filters) != 0 {
					t.Errorf("Allows(%v, %s, %v) has filters %v, want none", tt.kind, tt.typ, op, g.Filters)
				}
			}
			if got.String() != tt.want {
				t.Errorf("%q allows %q on %v/%s, want %q", tt.scopes, got.String(), tt.kind, tt.typ, tt.want)
			}
		})
	}
}

func TestAllowsGranular(t *testing.T) {
	t.Parallel()
	const (
		lab   = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
		vital = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
	)
	tests := []struct {
		name   string
		scopes string
		typ    string
		op     Op
		want   Grant
	}{
		{
			name:   "one constrained scope",
			scopes: "patient/Observation.rs?category=" + lab,
			typ:    "Observation", op: Search,
			want: Grant{Allowed: true, Filters: []url.Values{{"category": {lab}}}},
		},
		{
			name:   "constraint applies to read too",
			scopes: "patient/Observation.rs?category=" + lab,
			typ:    "Observation", op: Read,
			want: Grant{Allowed: true, Filters: []url.Values{{"category": {lab}}}},
		},
		{
			name:   "constrained scope does not grant other operations",
			scopes: "patient/Observation.rs?category=" + lab,
			typ:    "Observation", op: Create,
		},
		{
			name:   "constrained scope does not grant other types",
			scopes: "patient/Observation.rs?category=" + lab,
			typ:    "Condition", op: Read,
		},
		{
			name:   "several constrained scopes are ORed",
			scopes: "patient/Observation.rs?category=" + lab + " patient/Observation.rs?category=" + vital,
			typ:    "Observation", op: Search,
			want: Grant{Allowed: true, Filters: []url.Values{{"category": {lab}}, {"category": {vital}}}},
		},
		{
			name:   "params within one scope are kept together (AND)",
			scopes: "patient/Observation.rs?category=" + lab + "&code=http://loinc.org|2345-7",
			typ:    "Observation", op: Search,
			want: Grant{Allowed: true, Filters: []url.Values{{"category": {lab}, "code": {"http://loinc.org|2345-7"}}}},
		},
		{
			name:   "unconstrained scope wins",
			scopes: "patient/Observation.rs?category=" + lab + " patient/Observation.r",
			typ:    "Observation", op: Read,
			want: Grant{Allowed: true},
		},
		{
			name:   "unconstrained wildcard wins",
			scopes: "patient/Observation.rs?category=" + lab + " patient/*.rs",
			typ:    "Observation", op: Search,
			want: Grant{Allowed: true},
		},
		{
			name:   "unconstrained scope for another op does not win",
			scopes: "patient/Observation.rs?category=" + lab + " patient/Observation.r",
			typ:    "Observation", op: Search,
			want: Grant{Allowed: true, Filters: []url.Values{{"category": {lab}}}},
		},
		{
			name:   "unconstrained scope of another level does not win",
			scopes: "patient/Observation.rs?category=" + lab + " user/Observation.rs",
			typ:    "Observation", op: Search,
			want: Grant{Allowed: true, Filters: []url.Values{{"category": {lab}}}},
		},
		{
			name:   "constrained wildcard applies to every type",
			scopes: "patient/*.rs?_security:not=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R",
			typ:    "Condition", op: Read,
			want: Grant{Allowed: true, Filters: []url.Values{{"_security:not": {"http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R"}}}},
		},
		{
			name:   "duplicate constraints are reported once",
			scopes: "patient/Observation.r?category=" + lab + " patient/Observation.rs?category=" + lab,
			typ:    "Observation", op: Read,
			want: Grant{Allowed: true, Filters: []url.Values{{"category": {lab}}}},
		},
		{
			name:   "several operations at once are refused",
			scopes: "patient/*.cruds",
			typ:    "Observation", op: Read | Search,
		},
		{
			name:   "no operation is refused",
			scopes: "patient/*.cruds",
			typ:    "Observation", op: 0,
		},
		{
			name:   "unknown operation bit is refused",
			scopes: "patient/*.cruds",
			typ:    "Observation", op: 1 << 6,
		},
		{
			name:   "empty type is refused",
			scopes: "patient/*.cruds",
			typ:    "", op: Read,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mustParse(t, tt.scopes).Allows(Patient, tt.typ, tt.op)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Allows(patient, %s, %v) (-want +got):\n%s", tt.typ, tt.op, diff)
			}
		})
	}
}

func TestAllowsReturnsCopies(t *testing.T) {
	t.Parallel()
	ss := mustParse(t, "patient/Observation.rs?category=laboratory")
	g := ss.Allows(Patient, "Observation", Read)
	g.Filters[0].Set("category", "everything")
	g.Filters[0].Del("category")
	if got := ss.Allows(Patient, "Observation", Read); got.Filters[0].Get("category") != "laboratory" {
		t.Errorf("changing a returned filter changed the scopes: %v", got.Filters)
	}
}

func TestAllowsZeroKind(t *testing.T) {
	t.Parallel()
	if g := mustParse(t, "openid patient/*.cruds").Allows(0, "Observation", Read); g.Allowed {
		t.Errorf("Allows(0, ...) = %v, want denied", g)
	}
}

func TestTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scopes string
		kind   Kind
		op     Op
		types  []string
		all    bool
	}{
		{"patient/Observation.rs patient/Condition.r user/Patient.rs", Patient, Search, []string{"Observation"}, false},
		{"patient/Observation.rs patient/Condition.r user/Patient.rs", Patient, Read, []string{"Condition", "Observation"}, false},
		{"patient/Observation.rs patient/*.s", Patient, Search, []string{"Observation"}, true},
		{"patient/Observation.rs?category=laboratory", Patient, Search, []string{"Observation"}, false},
		{"user/*.cruds", Patient, Search, nil, false},
		{"patient/*.cruds", Patient, Read | Search, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.scopes, func(t *testing.T) {
			t.Parallel()
			types, all := mustParse(t, tt.scopes).Types(tt.kind, tt.op)
			if diff := cmp.Diff(tt.types, types); diff != "" || all != tt.all {
				t.Errorf("Types(%v, %v) = %v, %v; want %v, %v", tt.kind, tt.op, types, all, tt.types, tt.all)
			}
		})
	}
}
