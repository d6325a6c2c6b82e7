package auth_test

import (
	"context"
	"crypto"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/token"
	"github.com/digitaleouder/ouder/auth/token/tokentest"
	"github.com/digitaleouder/ouder/fhir"
)

func TestLocalReference(t *testing.T) {
	t.Parallel()
	const base = "https://ouder.example/fhir"
	tests := []struct{ ref, want string }{
		{"Person/12", "Person/12"},
		{"RelatedPerson/a-b.c", "RelatedPerson/a-b.c"},
		{base + "/Practitioner/7", "Practitioner/7"},
		{base + "/Practitioner/7/_history/2", ""},
		{base + "/Practitioner/7?x=1", ""},
		{"https://other.example/fhir/Practitioner/7", ""},
		{"https://ouder.example/fhirx/Practitioner/7", ""},
		{"Practitioner/", ""},
		{"practitioner/7", ""},
		{"Person/12/extra", ""},
		{"Person/" + string(make([]byte, 65)), ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := auth.LocalReference(tt.ref, base); got != tt.want {
			t.Errorf("LocalReference(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
	if got := auth.LocalReference(base+"/Person/1", ""); got != "" {
		t.Errorf("without a base an absolute reference is not local: %q", got)
	}
}

// TestAuthenticate: the Principal of a request, and why one is refused.
func TestAuthenticate(t *testing.T) {
	t.Parallel()
	const base = "https://ouder.example/fhir"
	const own = "https://ouder.example"
	external := tokentest.New(t)
	ownKeys := &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{external.SigningKey().Public()}}
	v, err := token.New(context.Background(), token.Config{Issuers: []token.Issuer{
		{URL: own, Audience: base, KeySet: ownKeys, Operator: true},
		{URL: external.URL(), Audience: base},
	}})
	if err != nil {
		t.Fatal(err)
	}
	revocationDown := false
	a := &auth.Authenticator{Verifier: v, OwnIssuer: own, Base: base, Revoked: func(_ context.Context, jti string) (bool, error) {
		if revocationDown {
			return false, errors.New("database down")
		}
		return jti == "revoked", nil
	}}
	ownToken := func(extra map[string]any) string {
		c := external.Claims(base, "user/*.rs")
		c["iss"] = own
		for k, v := range extra {
			c[k] = v
		}
		return external.Sign(t, c)
	}
	authenticate := func(header string) (*auth.Principal, error) {
		r := httptest.NewRequest("GET", "/fhir/Patient", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		return a.Authenticate(r)
	}

	p, err := authenticate("Bearer " + ownToken(map[string]any{"operator": true, "fhirUser": base + "/Person/12", "patient": "p1"}))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Operator || p.FHIRUser != "Person/12" || p.Patient != "p1" || p.Issuer != own || p.TokenID == "" || p.ClientID != "test-client" || len(p.Scopes) != 1 {
		t.Errorf("own operator token: %+v", p)
	}
	p, err = authenticate("bearer   " + external.Token(t, base, "system/*.rs", map[string]any{"operator": true, "fhirUser": "https://elsewhere.example/Person/1"}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Operator || p.FHIRUser != "" {
		t.Errorf("external token: operator %v, fhirUser %q; want false and none", p.Operator, p.FHIRUser)
	}

	for _, tt := range []struct {
		name, header string
		kind         fhir.Kind
	}{
		{"none", "", fhir.Unauthorized},
		{"empty bearer", "Bearer ", fhir.Unauthorized},
		{"two tokens", "Bearer a b", fhir.Unauthorized},
		{"basic", "Basic abc", fhir.Unauthorized},
		{"revoked", "Bearer " + ownToken(map[string]any{"jti": "revoked"}), fhir.Unauthorized},
	} {
		if _, err := authenticate(tt.header); fhir.KindOf(err) != tt.kind {
			t.Errorf("%s: %v, want kind %v", tt.name, err, tt.kind)
		}
	}
	revocationDown = true
	if _, err := authenticate("Bearer " + ownToken(nil)); fhir.KindOf(err) != fhir.Unavailable {
		t.Errorf("revocation list down: %v, want Unavailable", err)
	}
	// An external token is not checked against the own revocation list.
	if _, err := authenticate("Bearer " + external.Token(t, base, "system/*.rs", nil)); err != nil {
		t.Errorf("external token while the revocation list is down: %v", err)
	}
}
