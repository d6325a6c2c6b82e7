package main

import (
	"strings"
	"testing"
)

func TestCheckTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		base        string
		allowRemote bool
		want        string // "" when refused
	}{
		{"ipv4 loopback", "http://127.0.0.1:8080/fhir", false, "http://127.0.0.1:8080/fhir"},
		{"anywhere in 127/8", "http://127.4.5.6:8080/fhir/", false, "http://127.4.5.6:8080/fhir"},
		{"ipv6 loopback", "http://[::1]:8080/fhir", false, "http://[::1]:8080/fhir"},
		{"localhost", "https://localhost/fhir", false, "https://localhost/fhir"},
		{"localhost any case", "http://LocalHost:1/raw", false, "http://LocalHost:1/raw"},
		{"private address", "http://10.0.0.1:8080/fhir", false, ""},
		{"unspecified address", "http://0.0.0.0:8080/fhir", false, ""},
		{"ipv6 unspecified", "http://[::]:8080/fhir", false, ""},
		{"remote name", "https://fhir.example.org/r4", false, ""},
		{"name that starts like localhost", "http://localhost.example.org/fhir", false, ""},
		{"name that contains a loopback address", "http://127.0.0.1.nip.io/fhir", false, ""},
		{"remote allowed", "https://fhir.example.org/r4", true, "https://fhir.example.org/r4"},
		{"other scheme", "ftp://127.0.0.1/fhir", true, ""},
		{"no host", "http:///fhir", true, ""},
		{"query", "http://127.0.0.1/fhir?x=1", false, ""},
		{"user info", "http://u:p@127.0.0.1/fhir", false, ""},
		{"not a URL", "127.0.0.1:8080", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := checkTarget(tt.base, tt.allowRemote)
			if tt.want == "" {
				if err == nil {
					t.Errorf("checkTarget(%q, %v) = %q, want an error", tt.base, tt.allowRemote, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("checkTarget(%q, %v) = %q, %v; want %q", tt.base, tt.allowRemote, got, err, tt.want)
			}
		})
	}
}

func TestRemoteRefusalSaysHow(t *testing.T) {
	t.Parallel()
	_, err := checkTarget("http://192.0.2.1/fhir", false)
	if err == nil || !strings.Contains(err.Error(), "-allow-remote") {
		t.Errorf("error %v; want one that names -allow-remote", err)
	}
}

func TestCreatedID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    response
		want string
	}{
		{"body", response{body: []byte(`{"resourceType":"Patient","id":"abc"}`)}, "abc"},
		{"body of another type", response{body: []byte(`{"resourceType":"OperationOutcome","id":"x"}`)}, ""},
		{"absolute location", response{location: "http://127.0.0.1:8080/fhir/Patient/p-1/_history/1"}, "p-1"},
		{"relative location", response{location: "/raw/Patient/0b0e-11/_history/1"}, "0b0e-11"},
		{"location without history", response{location: "Patient/42"}, "42"},
		{"body without id falls back to location", response{body: []byte(`{}`), location: "Patient/7/_history/2"}, "7"},
		{"location of another type", response{location: "/fhir/Observation/1/_history/1"}, ""},
		{"bad id", response{location: "/fhir/Patient/a%20b"}, ""},
		{"nothing", response{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := createdID("Patient", tt.r); got != tt.want {
				t.Errorf("createdID = %q, want %q", got, tt.want)
			}
		})
	}
}
