package smart

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scopeCmp compares scopes on what they mean, not on how they were written.
var scopeCmp = cmp.Comparer(func(a, b Scope) bool {
	return a.Kind == b.Kind && a.Type == b.Type && a.Ops == b.Ops && a.Name == b.Name && paramsKey(a.Params) == paramsKey(b.Params)
})

func TestParseScope(t *testing.T) {
	t.Parallel()
	const lab = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
	tests := []struct {
		name string
		in   string
		want Scope
		text string // canonical form; empty means in
	}{
		{name: "v1 patient read wildcard", in: "patient/*.read", want: Scope{Kind: Patient, Type: "*", Ops: Read | Search}},
		{name: "v1 user write", in: "user/Observation.write", want: Scope{Kind: User, Type: "Observation", Ops: Create | Update | Delete}},
		{name: "v1 system all", in: "system/*.*", want: Scope{Kind: System, Type: "*", Ops: Create | Read | Update | Delete | Search}},
		{name: "v2 rs", in: "patient/Observation.rs", want: Scope{Kind: Patient, Type: "Observation", Ops: Read | Search}},
		{name: "v2 cruds", in: "user/*.cruds", want: Scope{Kind: User, Type: "*", Ops: Create | Read | Update | Delete | Search}},
		{name: "v2 single c", in: "patient/Observation.c", want: Scope{Kind: Patient, Type: "Observation", Ops: Create}},
		{name: "v2 single s", in: "system/Patient.s", want: Scope{Kind: System, Type: "Patient", Ops: Search}},
		{name: "v2 cud", in: "user/Encounter.cud", want: Scope{Kind: User, Type: "Encounter", Ops: Create | Update | Delete}},
		{name: "v2 subset cds", in: "patient/Appointment.cds", want: Scope{Kind: Patient, Type: "Appointment", Ops: Create | Delete | Search}},
		{
			name: "granular category",
			in:   "patient/Observation.rs?category=" + lab,
			want: Scope{Kind: Patient, Type: "Observation", Ops: Read | Search, Params: url.Values{"category": {lab}}},
		},
		{
			name: "granular several params sorted",
			in:   "user/Observation.rs?code=http://loinc.org|8480-6&category=" + lab,
			want: Scope{Kind: User, Type: "Observation", Ops: Read | Search, Params: url.Values{"category": {lab}, "code": {"http://loinc.org|8480-6"}}},
			text: "user/Observation.rs?category=" + lab + "&code=http://loinc.org|8480-6",
		},
		{
			name: "granular repeated param deduplicated",
			in:   "patient/Condition.rs?category=b&category=a&category=b",
			want: Scope{Kind: Patient, Type: "Condition", Ops: Read | Search, Params: url.Values{"category": {"a", "b"}}},
			text: "patient/Condition.rs?category=a&category=b",
		},
		{
			name: "granular percent-encoded value",
			in:   "patient/Observation.rs?code=http%3A%2F%2Floinc.org%7C1234-5",
			want: Scope{Kind: Patient, Type: "Observation", Ops: Read | Search, Params: url.Values{"code": {"http://loinc.org|1234-5"}}},
			text: "patient/Observation.rs?code=http://loinc.org|1234-5",
		},
		{
			name: "granular value with ampersand and plus kept",
			in:   "patient/Observation.rs?code=a%26b+c",
			want: Scope{Kind: Patient, Type: "Observation", Ops: Read | Search, Params: url.Values{"code": {"a&b+c"}}},
			text: "patient/Observation.rs?code=a%26b+c",
		},
		{
			name: "granular modifier and underscore filter",
			in:   "patient/*.rs?_security:not=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R",
			want: Scope{Kind: Patient, Type: "*", Ops: Read | Search, Params: url.Values{"_security:not": {"http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R"}}},
		},
		{name: "openid", in: "openid", want: Scope{Name: "openid"}},
		{name: "fhirUser", in: "fhirUser", want: Scope{Name: "fhirUser"}},
		{name: "profile", in: "profile", want: Scope{Name: "profile"}},
		{name: "launch", in: "launch", want: Scope{Name: "launch"}},
		{name: "launch/patient", in: "launch/patient", want: Scope{Name: "launch/patient"}},
		{name: "launch/encounter", in: "launch/encounter", want: Scope{Name: "launch/encounter"}},
		{name: "launch other context", in: "launch/imagingstudy", want: Scope{Name: "launch/imagingstudy"}},
		{name: "offline_access", in: "offline_access", want: Scope{Name: "offline_access"}},
		{name: "online_access", in: "online_access", want: Scope{Name: "online_access"}},
		{name: "extension underscore", in: "__profilePhoto.manage", want: Scope{Name: "__profilePhoto.manage"}},
		{name: "extension URI", in: "https://ehr.example.org/scopes/profilePhoto.manage", want: Scope{Name: "https://ehr.example.org/scopes/profilePhoto.manage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseScope(tt.in)
			if err != nil {
				t.Fatalf("ParseScope(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got, scopeCmp); diff != "" {
				t.Errorf("ParseScope(%q) (-want +got):\n%s", tt.in, diff)
			}
			if diff := cmp.Diff(tt.want.Params, got.Params); diff != "" {
				t.Errorf("ParseScope(%q).Params (-want +got):\n%s", tt.in, diff)
			}
			text := tt.text
			if text == "" {
				text = tt.in
			}
			if got.String() != text {
				t.Errorf("ParseScope(%q).String() = %q, want %q", tt.in, got.String(), text)
			}
		})
	}
}

func TestParseScopeInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		reason string // a part of the reason
	}{
		{name: "empty permissions", in: "patient/Observation.", reason: "permissions"},
		{name: "out of order", in: "patient/Observation.sr", reason: "in that order"},
		{name: "out of order dus", in: "patient/Observation.dus", reason: "in that order"},
		{name: "repeated letter", in: "patient/Observation.rr", reason: "in that order"},
		{name: "unknown letter", in: "patient/Observation.rx", reason: "permissions"},
		{name: "uppercase letters", in: "patient/Observation.RS", reason: "permissions"},
		{name: "v1 word misspelt", in: "patient/Observation.reads", reason: "permissions"},
		{name: "missing dot", in: "patient/Observation", reason: `missing "."`},
		{name: "lowercase type", in: "patient/observation.rs", reason: "resource type"},
		{name: "empty type", in: "patient/.rs", reason: "resource type"},
		{name: "type with digit", in: "patient/Obs3.rs", reason: "resource type"},
		{name: "two dots", in: "patient/Observation.r.s", reason: "permissions"},
		{name: "unknown level", in: "admin/Observation.rs", reason: "unknown scope"},
		{name: "capitalised level", in: "Patient/Observation.rs", reason: "unknown scope"},
		{name: "constraint on v1", in: "patient/Observation.read?category=laboratory", reason: "v2"},
		{name: "empty query", in: "patient/Observation.rs?", reason: "empty constraint"},
		{name: "constraint without value", in: "patient/Observation.rs?category", reason: "name=value"},
		{name: "constraint with empty value", in: "patient/Observation.rs?category=", reason: "empty"},
		{name: "constraint with empty name", in: "patient/Observation.rs?=laboratory", reason: "search parameter name"},
		{name: "empty constraint between ampersands", in: "patient/Observation.rs?category=a&&code=b", reason: "name=value"},
		{name: "result parameter", in: "patient/Observation.rs?_count=0", reason: "_count"},
		{name: "result parameter with modifier", in: "patient/Observation.rs?_include:iterate=Observation:subject", reason: "_include"},
		{name: "summary", in: "patient/*.rs?_summary=count", reason: "_summary"},
		{name: "bad escape", in: "patient/Observation.rs?code=%zz", reason: "percent-encoding"},
		{name: "control character", in: "patient/Observation.rs?code=a%0Ab", reason: "printable"},
		{name: "invalid UTF-8", in: "patient/Observation.rs?code=%FF", reason: "UTF-8"},
		{name: "unknown name", in: "email", reason: "unknown scope"},
		{name: "launch uppercase context", in: "launch/Patient", reason: "lowercase"},
		{name: "launch empty context", in: "launch/", reason: "lowercase"},
		{name: "quote", in: `patient/Observation.rs?code="x"`, reason: "character"},
		{name: "non-ASCII", in: "patient/Observatión.rs", reason: "character"},
		{name: "bare underscores", in: "__", reason: "unknown scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseScope(tt.in)
			var se *ScopeError
			if !errors.As(err, &se) {
				t.Fatalf("ParseScope(%q) = %v, %v; want a *ScopeError", tt.in, got, err)
			}
			if se.Scope != tt.in || !strings.Contains(se.Reason, tt.reason) {
				t.Errorf("ParseScope(%q) error = %v; want scope %q and a reason containing %q", tt.in, err, tt.in, tt.reason)
			}
		})
	}
}

func TestV1V2Equivalence(t *testing.T) {
	t.Parallel()
	tests := []struct{ v1, v2 string }{
		{"patient/*.read", "patient/*.rs"},
		{"patient/Observation.read", "patient/Observation.rs"},
		{"user/Observation.write", "user/Observation.cud"},
		{"system/*.*", "system/*.cruds"},
		{"user/Patient.*", "user/Patient.cruds"},
	}
	for _, tt := range tests {
		t.Run(tt.v1, func(t *testing.T) {
			t.Parallel()
			a, err := ParseScope(tt.v1)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ParseScope(tt.v2)
			if err != nil {
				t.Fatal(err)
			}
			if a.Kind != b.Kind || a.Type != b.Type || a.Ops != b.Ops {
				t.Errorf("%s = %v/%s.%v, %s = %v/%s.%v; want the same", tt.v1, a.Kind, a.Type, a.Ops, tt.v2, b.Kind, b.Type, b.Ops)
			}
			for k := Patient; k <= System; k++ {
				for _, op := range []Op{Create, Read, Update, Delete, Search} {
					for _, typ := range []string{"Observation", "Patient"} {
						ga, gb := Scopes{a}.Allows(k, typ, op), Scopes{b}.Allows(k, typ, op)
						if ga.Allowed != gb.Allowed {
							t.Errorf("Allows(%v, %s, %v): %s gives %v, %s gives %v", k, typ, op, tt.v1, ga.Allowed, tt.v2, gb.Allowed)
						}
					}
				}
			}
			// v1 scopes keep their form, v2 scopes theirs.
			if a.String() != tt.v1 || b.String() != tt.v2 {
				t.Errorf("String() = %q, %q; want %q, %q", a.String(), b.String(), tt.v1, tt.v2)
			}
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string // canonical text of the valid scopes
		invalid []string
	}{
		{name: "empty", in: "", want: ""},
		{name: "blank", in: "   ", want: ""},
		{
			name: "typical launch",
			in:   "openid fhirUser launch/patient patient/*.rs offline_access",
			want: "openid fhirUser launch/patient patient/*.rs offline_access",
		},
		{
			name:    "one odd scope does not spoil the rest",
			in:      "patient/Observation.rs patient/Observation.sr openid",
			want:    "patient/Observation.rs openid",
			invalid: []string{"patient/Observation.sr"},
		},
		{
			name:    "several bad",
			in:      "email  patient/Observation.rs?_count=1\tuser/Patient.read",
			want:    "user/Patient.read",
			invalid: []string{"email", "patient/Observation.rs?_count=1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			if got.String() != tt.want {
				t.Errorf("Parse(%q) = %q, want %q", tt.in, got.String(), tt.want)
			}
			var bad []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var se *ScopeError
					if !errors.As(e, &se) {
						t.Fatalf("Parse(%q): error %v is not a *ScopeError", tt.in, e)
					}
					bad = append(bad, se.Scope)
				}
			}
			if diff := cmp.Diff(tt.invalid, bad); diff != "" {
				t.Errorf("Parse(%q) invalid scopes (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestScopesHas(t *testing.T) {
	t.Parallel()
	ss, err := Parse("openid launch/patient patient/*.rs")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"openid": true, "launch/patient": true, "offline_access": false, "patient/*.rs": false} {
		if got := ss.Has(name); got != want {
			t.Errorf("Has(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestScopeErrorShortensLongScopes(t *testing.T) {
	t.Parallel()
	_, err := ParseScope("patient/Observation.rs?_count=" + strings.Repeat("9", 10000))
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("error = %.300v; want a short message", err)
	}
}

func TestOpString(t *testing.T) {
	t.Parallel()
	for op, want := range map[Op]string{0: "", Read: "r", Read | Search: "rs", allOps: "cruds", Create | Delete: "cd"} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q, want %q", op, got, want)
		}
	}
}
