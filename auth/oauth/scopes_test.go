package oauth

import (
	"slices"
	"testing"

	"github.com/digitaleouder/ouder/auth/smart"
)

func TestNarrow(t *testing.T) {
	tests := []struct {
		name               string
		requested, allowed string
		levels             []smart.Kind
		nonClinical        bool
		want               []string
	}{
		{"as asked", "openid patient/*.rs", "openid patient/*.cruds", []smart.Kind{smart.Patient}, true, []string{"openid", "patient/*.rs"}},
		{"narrowed to the registration", "patient/*.cruds", "patient/Observation.rs", []smart.Kind{smart.Patient}, true, []string{"patient/Observation.rs"}},
		{"v1 kept", "patient/*.read", "patient/*.cruds", []smart.Kind{smart.Patient}, true, []string{"patient/*.read"}},
		{"granular", "patient/Observation.rs?category=laboratory", "patient/*.rs", []smart.Kind{smart.Patient}, true, []string{"patient/Observation.rs?category=laboratory"}},
		{"unknown scope dropped", "profile launch patient/*.rs", "patient/*.rs", []smart.Kind{smart.Patient}, true, []string{"patient/*.rs"}},
		{"levels", "system/*.rs user/*.rs", "system/*.rs user/*.rs", []smart.Kind{smart.System}, false, []string{"system/*.rs"}},
		{"non-clinical for backends", "openid system/*.rs", "openid system/*.rs", []smart.Kind{smart.System}, false, []string{"system/*.rs"}},
		{"nothing", "user/*.rs", "patient/*.rs", []smart.Kind{smart.Patient, smart.User}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := narrow(tt.requested, tt.allowed, tt.levels, tt.nonClinical)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("narrow = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCovered(t *testing.T) {
	granted := []string{"openid", "offline_access", "patient/Observation.rs", "patient/Patient.r?_id=x"}
	tests := []struct {
		requested []string
		want      bool
	}{
		{[]string{"patient/Observation.rs"}, true},
		{[]string{"patient/Observation.r", "openid"}, true},
		{[]string{"patient/Observation.read"}, true},
		{[]string{"patient/Observation.rs?category=vital-signs"}, true},
		{[]string{"patient/Patient.r?_id=x"}, true},
		{[]string{"patient/Patient.r"}, false},
		{[]string{"patient/Observation.rsu"}, false},
		{[]string{"patient/*.rs"}, false},
		{[]string{"user/Observation.rs"}, false},
		{[]string{"fhirUser"}, false},
		{[]string{"patient/Observation.bogus"}, false},
	}
	for _, tt := range tests {
		if got := covered(tt.requested, granted); got != tt.want {
			t.Errorf("covered(%v) = %v, want %v", tt.requested, got, tt.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct{ scope, nl, en string }{
		{"patient/*.rs", "Lezen en zoeken: alle gegevens van het gekozen kind", "Read and search: all data of the chosen child"},
		{"user/CarePlan.cruds", "Lezen, zoeken, toevoegen, wijzigen en verwijderen: plannen en afspraken waar u zelf toegang toe hebt",
			"Read, search, add, change and delete: plans and agreements that you have access to"},
		{"patient/Observation.read", "Lezen en zoeken: observaties van het gekozen kind", "Read and search: observations of the chosen child"},
		{"patient/Observation.rs?category=laboratory", "Lezen en zoeken: observaties van het gekozen kind (alleen category=laboratory)",
			"Read and search: observations of the chosen child (only category=laboratory)"},
		{"system/Foo.c", "Toevoegen: gegevens van het type Foo in het hele systeem", "Add: Foo records in the whole system"},
		{"offline_access", "Toegang houden, ook als u niet meer bent ingelogd", "Keep access, also after you have signed out"},
		{"launch/patient", "Het kind dat u kiest doorgeven aan de app", "Tell the app which child you chose"},
	}
	for _, tt := range tests {
		got := describe(tt.scope)
		if got.NL != tt.nl || got.EN != tt.en {
			t.Errorf("describe(%q) = %q / %q, want %q / %q", tt.scope, got.NL, got.EN, tt.nl, tt.en)
		}
	}
}
