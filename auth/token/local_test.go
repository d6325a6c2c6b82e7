package token

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// failingKeySet is an own issuer whose key store cannot be read.
type failingKeySet struct{ err error }

func (f failingKeySet) VerifySignature(context.Context, string) ([]byte, error) { return nil, f.err }

// TestLocalKeySet: an issuer with its own KeySet (the built-in
// authorization server) is verified without discovery or HTTP, with every
// check of Verify; its operator claim counts only when the issuer is
// trusted with it.
func TestLocalKeySet(t *testing.T) {
	t.Parallel()
	key := rsaKey(0, "own-1", jose.RS256)
	other := rsaKey(1, "own-1", jose.RS256)
	const own = "https://ouder.example"
	clk := newClock()
	now := clk.Now()
	ks := &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{key.priv.Public()}}
	v := newVerifier(t, clk,
		Issuer{URL: own, Audience: fhirBase, KeySet: ks, Operator: true},
		Issuer{URL: "https://untrusted.example", Audience: fhirBase, KeySet: ks},
	)
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	ownClaims := func(edits map[string]any) map[string]any {
		e := map[string]any{"iss": own}
		for k, v := range edits {
			e[k] = v
		}
		return claims(nil, now, e)
	}
	tests := []struct {
		name     string
		tok      string
		operator bool
		err      string // "" accepted; else the description
	}{
		{"operator", sign(t, key, ownClaims(map[string]any{"operator": true})), true, ""},
		{"not operator", sign(t, key, ownClaims(map[string]any{"operator": false})), false, ""},
		{"no operator claim", sign(t, key, ownClaims(nil)), false, ""},
		{"malformed operator claim", sign(t, key, ownClaims(map[string]any{"operator": "yes"})), false, "malformed claim operator"},
		{"operator from an issuer not trusted with it", sign(t, key, ownClaims(map[string]any{"iss": "https://untrusted.example", "operator": true})), false, ""},
		{"another key", sign(t, other, ownClaims(nil)), false, "invalid signature or unknown signing key"},
		{"expired", sign(t, key, ownClaims(map[string]any{"exp": now.Add(-5 * time.Minute).Unix()})), false, "token expired"},
		{"wrong audience", sign(t, key, ownClaims(map[string]any{"aud": "https://elsewhere.example/fhir"})), false, "wrong audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tt.tok)
			if tt.err != "" {
				checkInvalid(t, err, tt.err, tt.tok)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Operator != tt.operator {
				t.Errorf("Operator = %v, want %v", c.Operator, tt.operator)
			}
		})
	}

	// A key store that cannot be read says ErrUnavailable (503), not
	// ErrInvalidToken.
	down := newVerifier(t, clk, Issuer{URL: own, Audience: fhirBase, KeySet: failingKeySet{err: &Error{Unavailable: true, Description: "key store down"}}})
	_, err := down.Verify(context.Background(), sign(t, key, ownClaims(nil)))
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("key store down: %v, want ErrUnavailable", err)
	}
}

func TestReadIssuers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []Issuer
		err      string
	}{
		{name: "full", in: `[{"url":"https://idp.example","audience":"https://fhir.example/fhir","scope_claim":"scp","fhir_user_claim":"profile","patient_claim":"pat","allowed_algs":["ES256"],"jwks_url":"https://idp.example/keys"}]`,
			want: []Issuer{{URL: "https://idp.example", Audience: "https://fhir.example/fhir", ScopeClaim: "scp", FHIRUserClaim: "profile", PatientClaim: "pat", AllowedAlgs: []string{"ES256"}, JWKSURL: "https://idp.example/keys"}}},
		{name: "two", in: `[{"url":"https://a.example","audience":"x"},{"url":"https://b.example","audience":"y"}]`,
			want: []Issuer{{URL: "https://a.example", Audience: "x"}, {URL: "https://b.example", Audience: "y"}}},
		{name: "operator refused", in: `[{"url":"https://idp.example","audience":"x","operator":true}]`, err: "unknown field"},
		{name: "key set refused", in: `[{"url":"https://idp.example","audience":"x","KeySet":{}}]`, err: "unknown field"},
		{name: "no audience", in: `[{"url":"https://idp.example"}]`, err: "needs url and audience"},
		{name: "not a list", in: `{"url":"https://idp.example"}`, err: "cannot unmarshal"},
		{name: "trailing value", in: `[] []`, err: "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadIssuers(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d issuers, want %d", len(got), len(tt.want))
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.URL != w.URL || g.Audience != w.Audience || g.ScopeClaim != w.ScopeClaim || g.FHIRUserClaim != w.FHIRUserClaim ||
					g.PatientClaim != w.PatientClaim || strings.Join(g.AllowedAlgs, ",") != strings.Join(w.AllowedAlgs, ",") ||
					g.JWKSURL != w.JWKSURL || g.Operator || g.KeySet != nil {
					t.Errorf("issuer %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}
