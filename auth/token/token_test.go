package token

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/digitaleouder/ouder/auth/smart"
)

const fhirBase = "https://ouder.example/fhir"

// del marks a claim to leave out.
type del struct{}

// claims returns the claims of a good token from ti at now, changed by edits
// (ti nil: edits name the issuer).
func claims(ti *testIssuer, now time.Time, edits map[string]any) map[string]any {
	iss := ""
	if ti != nil {
		iss = ti.URL()
	}
	c := map[string]any{
		"iss":       iss,
		"sub":       "user-1",
		"aud":       fhirBase,
		"exp":       now.Add(5 * time.Minute).Unix(),
		"iat":       now.Unix(),
		"jti":       "token-1",
		"client_id": "app-1",
		"scope":     "openid fhirUser launch/patient patient/*.rs",
		"fhirUser":  "Practitioner/7",
		"patient":   "123",
	}
	for k, v := range edits {
		if _, ok := v.(del); ok {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func newVerifier(tb testing.TB, clk *clock, issuers ...Issuer) *Verifier {
	tb.Helper()
	v, err := New(context.Background(), Config{Issuers: issuers, Now: clk.Now})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return v
}

func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	rs256, rs384 := rsaKey(0, "rs256", jose.RS256), rsaKey(1, "rs384", jose.RS384)
	es256, es384 := ecKey("P-256", "es256", jose.ES256), ecKey("P-384", "es384", jose.ES384)
	ti := newTestIssuer(t, rs256, rs384, es256, es384)
	clk := newClock()
	now := clk.Now()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase})
	custom := newTestIssuer(t, rs256)
	vc := newVerifier(t, clk, Issuer{URL: custom.URL(), Audience: fhirBase, ScopeClaim: "scp", FHIRUserClaim: "profile_ref", PatientClaim: "launch_patient"})

	base := Claims{
		Issuer:   ti.URL(),
		Subject:  "user-1",
		ClientID: "app-1",
		ID:       "token-1",
		Scopes:   mustScopes(t, "openid fhirUser launch/patient patient/*.rs"),
		FHIRUser: "Practitioner/7",
		Patient:  "123",
		Expiry:   now.Add(5 * time.Minute).Truncate(time.Second),
	}
	tests := []struct {
		name   string
		v      *Verifier
		key    signingKey
		claims map[string]any
		want   func(c *Claims)
	}{
		{name: "RS256", key: rs256, claims: claims(ti, now, nil)},
		{name: "RS384", key: rs384, claims: claims(ti, now, nil)},
		{name: "ES256", key: es256, claims: claims(ti, now, nil)},
		{name: "ES384", key: es384, claims: claims(ti, now, nil)},
		{
			name: "audience among several", key: es384,
			claims: claims(ti, now, map[string]any{"aud": []string{"https://other.example", fhirBase}}),
		},
		{
			name: "scopes as an array", key: rs384,
			claims: claims(ti, now, map[string]any{"scope": []string{"patient/Observation.rs", "user/*.read"}}),
			want:   func(c *Claims) { c.Scopes = mustScopes(t, "patient/Observation.rs user/*.read") },
		},
		{
			name: "no scopes, no launch context", key: rs256,
			claims: claims(ti, now, map[string]any{"scope": del{}, "patient": del{}, "fhirUser": del{}}),
			want:   func(c *Claims) { c.Scopes, c.Patient, c.FHIRUser = nil, "", "" },
		},
		{
			name: "azp when there is no client_id", key: rs256,
			claims: claims(ti, now, map[string]any{"client_id": del{}, "azp": "app-2"}),
			want:   func(c *Claims) { c.ClientID = "app-2" },
		},
		{
			name: "expired within the leeway", key: rs256,
			claims: claims(ti, now, map[string]any{"exp": now.Add(-20 * time.Second).Unix()}),
			want:   func(c *Claims) { c.Expiry = now.Add(-20 * time.Second) },
		},
		{
			name: "not before within the leeway", key: rs256,
			claims: claims(ti, now, map[string]any{"nbf": now.Add(20 * time.Second).Unix()}),
		},
		{
			name: "not before in the past", key: es256,
			claims: claims(ti, now, map[string]any{"nbf": float64(now.Add(-time.Minute).Unix()) + 0.5}),
		},
		{
			name: "a malformed scope is left out, not fatal", key: rs256,
			claims: claims(ti, now, map[string]any{"scope": "patient/Observation.rs patient/Observation.sr"}),
			want:   func(c *Claims) { c.Scopes = mustScopes(t, "patient/Observation.rs") },
		},
		{
			name: "configured claim names", v: vc, key: rs256,
			claims: claims(custom, now, map[string]any{
				"scope": del{}, "fhirUser": del{}, "patient": del{},
				"scp": "user/Observation.rs", "profile_ref": "https://ouder.example/fhir/RelatedPerson/9", "launch_patient": "p-2",
			}),
			want: func(c *Claims) {
				c.Issuer = custom.URL()
				c.Scopes = mustScopes(t, "user/Observation.rs")
				c.FHIRUser = "https://ouder.example/fhir/RelatedPerson/9"
				c.Patient = "p-2"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vf := tt.v
			if vf == nil {
				vf = v
			}
			got, err := vf.Verify(context.Background(), sign(t, tt.key, tt.claims))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := base
			if tt.want != nil {
				tt.want(&want)
			}
			scopeText := cmp.Transformer("scopes", func(s smart.Scopes) string { return s.String() })
			if diff := cmp.Diff(&want, got, scopeText, cmpopts.IgnoreFields(Claims{}, "ScopeErr")); diff != "" {
				t.Errorf("Verify (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyReportsMalformedScopes(t *testing.T) {
	t.Parallel()
	key := rsaKey(0, "k", jose.RS256)
	ti := newTestIssuer(t, key)
	clk := newClock()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase})
	c, err := v.Verify(context.Background(), sign(t, key, claims(ti, clk.Now(), map[string]any{"scope": "patient/*.rs patient/*.sr"})))
	if err != nil {
		t.Fatal(err)
	}
	var se *smart.ScopeError
	if !errors.As(c.ScopeErr, &se) || se.Scope != "patient/*.sr" {
		t.Errorf("ScopeErr = %v, want the error for patient/*.sr", c.ScopeErr)
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	good := rsaKey(0, "good", jose.RS256)
	es := ecKey("P-256", "es", jose.ES256)
	ti := newTestIssuer(t, good, es)
	other := newTestIssuer(t, rsaKey(1, "other", jose.RS256))
	clk := newClock()
	now := clk.Now()
	v := newVerifier(t, clk,
		Issuer{URL: ti.URL(), Audience: fhirBase},
		Issuer{URL: other.URL(), Audience: fhirBase, AllowedAlgs: []string{"ES256"}},
	)

	b64 := base64.RawURLEncoding.EncodeToString
	payload := func(edits map[string]any) string {
		p, err := json.Marshal(claims(ti, now, edits))
		if err != nil {
			t.Fatal(err)
		}
		return b64(p)
	}
	pub, err := x509.MarshalPKIXPublicKey(good.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	hmacSigner := func(secret []byte) jose.Signer {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: secret, KeyID: "good"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	jsonSerialized := func() string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: good.priv, KeyID: "good"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := json.Marshal(claims(ti, now, nil))
		jws, err := signer.Sign(p)
		if err != nil {
			t.Fatal(err)
		}
		return jws.FullSerialize()
	}

	tests := []struct {
		name  string
		token string
		want  string // a part of the description
	}{
		{name: "empty", token: "", want: "missing token"},
		{name: "garbage", token: "not-a-token", want: "malformed"},
		{name: "too large", token: strings.Repeat("a", maxTokenSize+1), want: "too large"},
		{
			name:  "alg none",
			token: b64([]byte(`{"alg":"none","typ":"JWT","kid":"good"}`)) + "." + payload(nil) + ".",
			want:  "algorithm not allowed",
		},
		{
			name:  "alg none with a signature",
			token: b64([]byte(`{"alg":"none","kid":"good"}`)) + "." + payload(nil) + "." + b64([]byte("sig")),
			want:  "algorithm not allowed",
		},
		{name: "HS256 with the public key (DER) as secret", token: signWith(t, hmacSigner(pub), claims(ti, now, nil)), want: "algorithm not allowed"},
		{name: "HS256 with the public key (PEM) as secret", token: signWith(t, hmacSigner(pubPEM), claims(ti, now, nil)), want: "algorithm not allowed"},
		{name: "RS512 not allowed", token: sign(t, rsaKey(0, "good", jose.RS512), claims(ti, now, nil)), want: "algorithm not allowed"},
		{
			name:  "algorithm allowed for another issuer only",
			token: sign(t, rsaKey(1, "other", jose.RS256), claims(other, now, nil)),
			want:  "algorithm not allowed",
		},
		{
			name:  "key published for RS256 used with RS384",
			token: sign(t, rsaKey(0, "good", jose.RS384), claims(ti, now, nil)),
			want:  "unknown signing key",
		},
		{name: "JWS JSON serialization", token: jsonSerialized(), want: "malformed"},
		{name: "expired", token: sign(t, good, claims(ti, now, map[string]any{"exp": now.Add(-31 * time.Second).Unix()})), want: "token expired"},
		{name: "long expired", token: sign(t, good, claims(ti, now, map[string]any{"exp": now.Add(-24 * time.Hour).Unix()})), want: "token expired"},
		{name: "no expiry", token: sign(t, good, claims(ti, now, map[string]any{"exp": del{}})), want: "no expiry"},
		{name: "not yet valid", token: sign(t, good, claims(ti, now, map[string]any{"nbf": now.Add(31 * time.Second).Unix()})), want: "not yet valid"},
		{name: "nbf not a number", token: sign(t, good, claims(ti, now, map[string]any{"nbf": "soon"})), want: "malformed claim"},
		{name: "wrong audience", token: sign(t, good, claims(ti, now, map[string]any{"aud": "https://other.example/fhir"})), want: "wrong audience"},
		{name: "audience with a trailing slash", token: sign(t, good, claims(ti, now, map[string]any{"aud": fhirBase + "/"})), want: "wrong audience"},
		{name: "no audience", token: sign(t, good, claims(ti, now, map[string]any{"aud": del{}})), want: "wrong audience"},
		{name: "unknown issuer", token: sign(t, good, claims(ti, now, map[string]any{"iss": "https://evil.example"})), want: "unknown issuer"},
		{name: "no issuer", token: sign(t, good, claims(ti, now, map[string]any{"iss": del{}})), want: "unknown issuer"},
		{name: "issuer with a trailing slash", token: sign(t, good, claims(ti, now, map[string]any{"iss": ti.URL() + "/"})), want: "unknown issuer"},
		{name: "unknown kid", token: sign(t, rsaKey(0, "nope", jose.RS256), claims(ti, now, nil)), want: "unknown signing key"},
		{name: "another key under a known kid", token: sign(t, rsaKey(2, "good", jose.RS256), claims(ti, now, nil)), want: "invalid signature"},
		{name: "signed by another issuer's key", token: sign(t, rsaKey(1, "other", jose.RS256), claims(ti, now, nil)), want: "unknown signing key"},
		{name: "tampered signature", token: tamperSignature(sign(t, good, claims(ti, now, nil))), want: "invalid signature"},
		{name: "tampered ES256 signature", token: tamperSignature(sign(t, es, claims(ti, now, nil))), want: "invalid signature"},
		{
			name:  "tampered payload",
			token: replacePayload(sign(t, good, claims(ti, now, nil)), payload(map[string]any{"scope": "user/*.cruds"})),
			want:  "invalid signature",
		},
		{name: "fhirUser not a string", token: sign(t, good, claims(ti, now, map[string]any{"fhirUser": 7})), want: "malformed claim fhirUser"},
		{name: "scope not a string", token: sign(t, good, claims(ti, now, map[string]any{"scope": map[string]any{"a": 1}})), want: "malformed claim scope"},
		{name: "patient not a string", token: sign(t, good, claims(ti, now, map[string]any{"patient": []string{"1", "2"}})), want: "malformed claim patient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.Verify(context.Background(), tt.token)
			if err == nil {
				t.Fatalf("Verify = %+v, want an error", got)
			}
			checkInvalid(t, err, tt.want, tt.token)
		})
	}
}

// checkInvalid fails t unless err is an *Error for an invalid token whose
// description contains want and does not give the token away.
func checkInvalid(t *testing.T, err error, want, token string) {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrUnavailable) {
		t.Errorf("error %v: Is(ErrInvalidToken) = %v, Is(ErrUnavailable) = %v; want true, false", err, errors.Is(err, ErrInvalidToken), errors.Is(err, ErrUnavailable))
	}
	if !strings.Contains(te.Description, want) {
		t.Errorf("description %q, want it to contain %q (error: %v)", te.Description, want, err)
	}
	if len(token) > 20 && (strings.Contains(err.Error(), token) || strings.Contains(err.Error(), token[len(token)-20:])) {
		t.Errorf("error %q contains the token", err)
	}
}

func checkUnavailable(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("error %v: want ErrUnavailable only", err)
	}
}

// tamperSignature changes one byte in the middle of the signature.
func tamperSignature(tok string) string {
	parts := strings.Split(tok, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[len(sig)/2] ^= 0x01
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	return strings.Join(parts, ".")
}

func replacePayload(tok, payload string) string {
	parts := strings.Split(tok, ".")
	parts[1] = payload
	return strings.Join(parts, ".")
}

func mustScopes(tb testing.TB, s string) smart.Scopes {
	tb.Helper()
	ss, err := smart.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return ss
}

func TestVerifyKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := rsaKey(0, "2026-01", jose.RS256), ecKey("P-384", "2026-02", jose.ES384)
	ti := newTestIssuer(t, oldKey)
	clk := newClock()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase})
	ctx := context.Background()
	verify := func(k signingKey) error {
		_, err := v.Verify(ctx, sign(t, k, claims(ti, clk.Now(), nil)))
		return err
	}

	if err := verify(oldKey); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}
	if n := ti.jwksHits.Load(); n != 1 {
		t.Fatalf("key set fetched %d times, want 1", n)
	}

	// The issuer switches keys at once. The next token with the new kid
	// fetches the key set again and verifies.
	ti.setKeys(newKey)
	clk.Advance(11 * time.Second)
	if err := verify(newKey); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	if n := ti.jwksHits.Load(); n != 2 {
		t.Errorf("key set fetched %d times, want 2", n)
	}
	// The withdrawn key is no longer in the fetched set.
	if err := verify(oldKey); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("old key after rotation: %v, want ErrInvalidToken", err)
	}
}

func TestVerifyNewKeyUnderOldKid(t *testing.T) {
	t.Parallel()
	before, after := rsaKey(0, "main", jose.RS256), rsaKey(1, "main", jose.RS256)
	ti := newTestIssuer(t, before)
	clk := newClock()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase})
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, before, claims(ti, clk.Now(), nil))); err != nil {
		t.Fatal(err)
	}
	ti.setKeys(after)
	tok := sign(t, after, claims(ti, clk.Now(), nil))
	_, err := v.Verify(ctx, tok)
	checkInvalid(t, err, "invalid signature", tok)
	clk.Advance(defaultMinKeyRefresh)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("new key under the old kid, after MinKeyRefresh: %v", err)
	}
	if n := ti.jwksHits.Load(); n != 2 {
		t.Errorf("key set fetched %d times, want 2", n)
	}
}

func TestVerifyRotationWithinMinRefresh(t *testing.T) {
	t.Parallel()
	k1, k2 := rsaKey(0, "k1", jose.RS256), rsaKey(1, "k2", jose.RS256)
	ti := newTestIssuer(t, k1)
	clk := newClock()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase})
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, k1, claims(ti, clk.Now(), nil))); err != nil {
		t.Fatal(err)
	}
	// The key set was fetched just now: a new kid is not fetched for yet.
	ti.setKeys(k1, k2)
	tok := sign(t, k2, claims(ti, clk.Now(), nil))
	_, err := v.Verify(ctx, tok)
	checkInvalid(t, err, "unknown signing key", tok)
	clk.Advance(defaultMinKeyRefresh)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("after MinKeyRefresh: %v", err)
	}
}

func TestVerifyWithdrawnKeyExpires(t *testing.T) {
	t.Parallel()
	k1, k2 := rsaKey(0, "k1", jose.RS256), rsaKey(1, "k2", jose.RS256)
	ti := newTestIssuer(t, k1, k2)
	clk := newClock()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase})
	ctx := context.Background()
	n := 0
	verify := func() error {
		// A new token each time: a token verified before is remembered
		// (TestVerifyCache).
		n++
		_, err := v.Verify(ctx, sign(t, k1, claims(ti, clk.Now(), map[string]any{"jti": fmt.Sprint("token-", n)})))
		return err
	}
	if err := verify(); err != nil {
		t.Fatal(err)
	}
	// The issuer withdraws k1 (say it leaked). Tokens with k1 are accepted
	// while the fetched set is younger than MaxKeyAge ...
	ti.setKeys(k2)
	clk.Advance(defaultMaxKeyAge - time.Second)
	if err := verify(); err != nil {
		t.Fatalf("within MaxKeyAge: %v", err)
	}
	// ... and refused once the set has been fetched again after that.
	clk.Advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for verify() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the withdrawn key is still accepted after MaxKeyAge")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := verify(); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("withdrawn key: %v, want ErrInvalidToken", err)
	}
}

// TestVerifyCache: a token verified before is not verified again within
// CacheTTL (it survives a key withdrawal that long, no longer), and its
// expiry still counts on every use.
func TestVerifyCache(t *testing.T) {
	t.Parallel()
	k1, k2 := rsaKey(0, "k1", jose.RS256), rsaKey(1, "k2", jose.RS256)
	ti := newTestIssuer(t, k1, k2)
	clk := newClock()
	v, err := New(context.Background(), Config{Issuers: []Issuer{{URL: ti.URL(), Audience: fhirBase}}, Now: clk.Now, CacheTTL: time.Minute, MinKeyRefresh: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	seen := sign(t, k1, claims(ti, clk.Now(), map[string]any{"jti": "seen", "exp": clk.Now().Add(90 * time.Second).Unix()}))
	if _, err := v.Verify(ctx, seen); err != nil {
		t.Fatal(err)
	}
	// k1 is withdrawn, and the set fetched again (a token with an
	// unknown kid asks for it): a new token signed with k1 is refused,
	// the one verified before is still accepted.
	ti.setKeys(k2)
	clk.Advance(time.Second)
	_, _ = v.Verify(ctx, sign(t, rsaKey(2, "k3", jose.RS256), claims(ti, clk.Now(), nil)))
	if _, err := v.Verify(ctx, sign(t, k1, claims(ti, clk.Now(), map[string]any{"jti": "new"}))); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("new token with the withdrawn key: %v, want ErrInvalidToken", err)
	}
	if _, err := v.Verify(ctx, seen); err != nil {
		t.Errorf("token verified before, within CacheTTL: %v", err)
	}
	// Once CacheTTL has passed it is verified again, and refused.
	clk.Advance(time.Minute)
	if _, err := v.Verify(ctx, seen); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("token verified before, after CacheTTL: %v, want ErrInvalidToken", err)
	}

	// A remembered token still expires.
	fresh := sign(t, k2, claims(ti, clk.Now(), map[string]any{"jti": "fresh", "exp": clk.Now().Add(10 * time.Second).Unix()}))
	if _, err := v.Verify(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	clk.Advance(45 * time.Second) // past exp and the 30s leeway, within CacheTTL
	if _, err := v.Verify(ctx, fresh); err == nil || !strings.Contains(err.Error(), "token expired") {
		t.Errorf("remembered token after its expiry: %v, want token expired", err)
	}
}

func TestVerifyUnknownKidsDoNotHammerTheIssuer(t *testing.T) {
	t.Parallel()
	good := rsaKey(0, "good", jose.RS256)
	ti := newTestIssuer(t, good)
	clk := newClock()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase})
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, good, claims(ti, clk.Now(), nil))); err != nil {
		t.Fatal(err)
	}
	clk.Advance(defaultMinKeyRefresh)
	var tokens []string
	for i := range 40 {
		tokens = append(tokens, sign(t, rsaKey(0, fmt.Sprintf("made-up-%d", i), jose.RS256), claims(ti, clk.Now(), nil)))
	}
	var wg sync.WaitGroup
	for _, tok := range tokens {
		wg.Go(func() {
			if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("made-up kid: %v, want ErrInvalidToken", err)
			}
		})
	}
	wg.Wait()
	if n := ti.jwksHits.Load(); n != 2 {
		t.Errorf("key set fetched %d times for 40 made-up kids, want 2 (one at start, one for the kids)", n)
	}
	// Good tokens still verify from the cache meanwhile.
	if _, err := v.Verify(ctx, sign(t, good, claims(ti, clk.Now(), nil))); err != nil {
		t.Error(err)
	}
}

func TestVerifyLazyDiscovery(t *testing.T) {
	t.Parallel()
	key := rsaKey(0, "k", jose.RS256)
	ti := newTestIssuer(t, key)
	ti.setDown(true, false)
	clk := newClock()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase})
	if err := v.Ready(); err == nil || !strings.Contains(err.Error(), ti.URL()) {
		t.Errorf("Ready() = %v, want an error naming the issuer", err)
	}
	if n := ti.discoveryHits.Load(); n != 1 {
		t.Errorf("discovery tried %d times by New, want 1", n)
	}
	ctx := context.Background()
	tok := sign(t, key, claims(ti, clk.Now(), nil))
	_, err := v.Verify(ctx, tok)
	checkUnavailable(t, err)

	// The issuer is back, but the retry is not due yet.
	ti.setDown(false, false)
	_, err = v.Verify(ctx, tok)
	checkUnavailable(t, err)
	if n := ti.discoveryHits.Load(); n != 1 {
		t.Errorf("discovery tried %d times within DiscoveryRetry, want 1", n)
	}

	clk.Advance(defaultDiscoveryRetry)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("after DiscoveryRetry: %v", err)
	}
	if err := v.Ready(); err != nil {
		t.Errorf("Ready() = %v after discovery", err)
	}
}

func TestVerifyKeySetUnavailable(t *testing.T) {
	t.Parallel()
	key := rsaKey(0, "k", jose.RS256)
	ti := newTestIssuer(t, key)
	clk := newClock()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase})
	ctx := context.Background()

	ti.setDown(false, true)
	_, err := v.Verify(ctx, sign(t, key, claims(ti, clk.Now(), nil)))
	checkUnavailable(t, err)

	ti.setDown(false, false)
	clk.Advance(defaultMinKeyRefresh)
	if _, err := v.Verify(ctx, sign(t, key, claims(ti, clk.Now(), nil))); err != nil {
		t.Fatalf("key set back: %v", err)
	}

	// Fetched keys keep serving while the key set cannot be fetched again.
	ti.setDown(false, true)
	clk.Advance(defaultMaxKeyAge + time.Minute)
	for range 3 {
		if _, err := v.Verify(ctx, sign(t, key, claims(ti, clk.Now(), nil))); err != nil {
			t.Fatalf("stale keys while the issuer is down: %v", err)
		}
	}
}

func TestVerifyIgnoresUnusableKeys(t *testing.T) {
	t.Parallel()
	good := rsaKey(0, "good", jose.RS256)
	ti := newTestIssuer(t, good)
	private := rsaKey(1, "private", jose.RS256)
	privJWK, err := json.Marshal(jose.JSONWebKey{Key: private.priv, KeyID: "private", Algorithm: "RS256"})
	if err != nil {
		t.Fatal(err)
	}
	enc := rsaKey(2, "enc", jose.RS256)
	encJWK, err := json.Marshal(jose.JSONWebKey{Key: enc.priv.Public(), KeyID: "enc", Use: "enc"})
	if err != nil {
		t.Fatal(err)
	}
	hs := rsaKey(2, "hs", jose.RS256)
	hsJWK, err := json.Marshal(jose.JSONWebKey{Key: hs.priv.Public(), KeyID: "hs", Algorithm: "HS256"})
	if err != nil {
		t.Fatal(err)
	}
	ti.setExtraKeys(
		privJWK, encJWK, hsJWK,
		json.RawMessage(`{"kty":"oct","kid":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`),
		json.RawMessage(`{"kty":"OKP","crv":"X448","kid":"x448","x":"AAAA"}`),
		json.RawMessage(`{"kty":"unknown","kid":"weird"}`),
	)
	clk := newClock()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase})
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, good, claims(ti, clk.Now(), nil))); err != nil {
		t.Fatalf("good key next to unusable ones: %v", err)
	}
	for _, k := range []signingKey{private, enc, hs} {
		tok := sign(t, k, claims(ti, clk.Now(), nil))
		_, err := v.Verify(ctx, tok)
		checkInvalid(t, err, "unknown signing key", tok)
	}
}

func TestVerifyJWKSURLWithoutDiscovery(t *testing.T) {
	t.Parallel()
	key := ecKey("P-256", "k", jose.ES256)
	ti := newTestIssuer(t, key)
	ti.setDown(true, false)
	clk := newClock()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase, JWKSURL: ti.URL() + "/jwks"})
	if err := v.Ready(); err != nil {
		t.Errorf("Ready() = %v", err)
	}
	if _, err := v.Verify(context.Background(), sign(t, key, claims(ti, clk.Now(), nil))); err != nil {
		t.Fatal(err)
	}
	if n := ti.discoveryHits.Load(); n != 0 {
		t.Errorf("discovery fetched %d times, want 0", n)
	}
}

func TestVerifyDiscoveryIssuerMismatch(t *testing.T) {
	t.Parallel()
	key := rsaKey(0, "k", jose.RS256)
	ti := newTestIssuer(t, key)
	clk := newClock()
	// The discovery document says ti.URL(), not ti.URL()+"/".
	v := newVerifier(t, clk, Issuer{URL: ti.URL() + "/", Audience: fhirBase})
	if err := v.Ready(); err == nil {
		t.Error("Ready() = nil, want the issuer mismatch")
	}
	_, err := v.Verify(context.Background(), sign(t, key, claims(ti, clk.Now(), map[string]any{"iss": ti.URL() + "/"})))
	checkUnavailable(t, err)
}

func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	k1, k2 := rsaKey(0, "k1", jose.RS256), ecKey("P-256", "k2", jose.ES256)
	ti := newTestIssuer(t, k1, k2)
	clk := newClock()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase})
	toks := []string{sign(t, k1, claims(ti, clk.Now(), nil)), sign(t, k2, claims(ti, clk.Now(), nil))}
	bad := sign(t, rsaKey(0, "k3", jose.RS256), claims(ti, clk.Now(), nil))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 40 {
				if _, err := v.Verify(context.Background(), toks[(i+j)%2]); err != nil {
					t.Error(err)
					return
				}
				if j%10 == 0 {
					clk.Advance(defaultMinKeyRefresh)
					if _, err := v.Verify(context.Background(), bad); !errors.Is(err, ErrInvalidToken) {
						t.Errorf("unknown kid: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestVerifyCanceledContext(t *testing.T) {
	t.Parallel()
	key := rsaKey(0, "k", jose.RS256)
	ti := newTestIssuer(t, key)
	clk := newClock()
	v := newVerifier(t, clk, Issuer{URL: ti.URL(), Audience: fhirBase})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The key set has not been fetched yet: a caller that is gone does not
	// wait for it, and is not told its token is invalid.
	_, err := v.Verify(ctx, sign(t, key, claims(ti, clk.Now(), nil)))
	checkUnavailable(t, err)
	// The fetch it started is not spoiled for the next caller.
	if _, err := v.Verify(context.Background(), sign(t, key, claims(ti, clk.Now(), nil))); err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "no issuers", cfg: Config{}, want: "no issuers"},
		{name: "no URL", cfg: Config{Issuers: []Issuer{{Audience: fhirBase}}}, want: "issuer URL"},
		{name: "relative URL", cfg: Config{Issuers: []Issuer{{URL: "/issuer", Audience: fhirBase}}}, want: "absolute"},
		{name: "plain http", cfg: Config{Issuers: []Issuer{{URL: "http://idp.example", Audience: fhirBase}}}, want: "https"},
		{name: "no audience", cfg: Config{Issuers: []Issuer{{URL: "https://idp.example"}}}, want: "no audience"},
		{name: "HS256", cfg: Config{Issuers: []Issuer{{URL: "https://idp.example", Audience: fhirBase, AllowedAlgs: []string{"RS256", "HS256"}}}}, want: `"HS256" not allowed`},
		{name: "none", cfg: Config{Issuers: []Issuer{{URL: "https://idp.example", Audience: fhirBase, AllowedAlgs: []string{"none"}}}}, want: `"none" not allowed`},
		{name: "bad JWKS URL", cfg: Config{Issuers: []Issuer{{URL: "https://idp.example", Audience: fhirBase, JWKSURL: "http://keys.example"}}}, want: "JWKS URL"},
		{
			name: "twice",
			cfg: Config{Issuers: []Issuer{
				{URL: "https://idp.example", Audience: fhirBase, JWKSURL: "https://idp.example/keys"},
				{URL: "https://idp.example", Audience: fhirBase, JWKSURL: "https://idp.example/keys"},
			}},
			want: "twice",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestNewAcceptsLoopbackHTTP(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://localhost:8080", "http://127.0.0.1:1", "http://[::1]:1", "https://idp.example/realms/ouder"} {
		_, err := New(context.Background(), Config{
			Issuers:    []Issuer{{URL: u, Audience: fhirBase, JWKSURL: u + "/keys"}},
			HTTPClient: &http.Client{Timeout: time.Millisecond},
		})
		if err != nil {
			t.Errorf("New with issuer %s: %v", u, err)
		}
	}
}

func TestErrorIs(t *testing.T) {
	t.Parallel()
	cause := errors.New("cause")
	inv, un := invalid("token expired", cause), unavailable("issuer unavailable", cause)
	if !errors.Is(inv, ErrInvalidToken) || errors.Is(inv, ErrUnavailable) || !errors.Is(inv, cause) {
		t.Errorf("invalid: Is(ErrInvalidToken, ErrUnavailable, cause) wrong")
	}
	if !errors.Is(un, ErrUnavailable) || errors.Is(un, ErrInvalidToken) || !errors.Is(un, cause) {
		t.Errorf("unavailable: Is(ErrUnavailable, ErrInvalidToken, cause) wrong")
	}
	if got := fmt.Errorf("auth: %w", inv).Error(); got != "auth: token: token expired: cause" {
		t.Errorf("wrapped message = %q", got)
	}
}
