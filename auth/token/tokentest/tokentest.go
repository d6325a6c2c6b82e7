// Package tokentest runs a local OpenID Connect token issuer for tests of
// the servers that accept its tokens: a discovery document, a key set and
// access tokens signed with a key made for the test, in the shape
// auth/token verifies. It also forges the tokens that must be refused.
package tokentest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuer is a local token issuer. Make one with New.
type Issuer struct {
	srv  *httptest.Server
	key  *rsa.PrivateKey
	kid  string
	down atomic.Bool
	// Now is the clock of the tokens' iat, nbf and exp; default time.Now.
	Now func() time.Time
}

// keys are shared by the issuers of a test binary: RSA key generation is
// slow, and what a test needs apart is the issuer, not the key.
var keys = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

// New starts an issuer on a loopback port, closed when the test ends.
func New(tb testing.TB) *Issuer {
	tb.Helper()
	is, err := Start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(is.Close)
	return is
}

// Start starts an issuer on a loopback port, for an issuer shared by the
// tests of a package; Close stops it.
func Start() (*Issuer, error) {
	key, err := keys()
	if err != nil {
		return nil, err
	}
	is := &Issuer{key: key, kid: "test-key-1", Now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, map[string]any{
			"issuer":                                is.URL(),
			"jwks_uri":                              is.URL() + "/jwks",
			"authorization_endpoint":                is.URL() + "/authorize",
			"token_endpoint":                        is.URL() + "/token",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, map[string]any{"keys": []jose.JSONWebKey{is.PublicKey()}})
	})
	is.srv = httptest.NewServer(mux)
	return is, nil
}

// Close stops the issuer.
func (is *Issuer) Close() { is.srv.Close() }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// URL is the issuer identifier ("iss") and the base of its discovery.
func (is *Issuer) URL() string { return is.srv.URL }

// SetDown makes discovery and the key set answer 503 (true) or serve
// again (false).
func (is *Issuer) SetDown(down bool) { is.down.Store(down) }

// PublicKey is the verification key the key set publishes.
func (is *Issuer) PublicKey() jose.JSONWebKey {
	return jose.JSONWebKey{Key: is.key.Public(), KeyID: is.kid, Algorithm: string(jose.RS256), Use: "sig"}
}

// Claims returns the claims of an access token for audience with the given
// scopes, valid for five minutes from Now, with a fresh jti; add or change
// claims (fhirUser, patient, ...) before signing.
func (is *Issuer) Claims(audience, scope string) map[string]any {
	now := is.Now()
	return map[string]any{
		"iss":       is.URL(),
		"sub":       "test-subject",
		"aud":       audience,
		"client_id": "test-client",
		"scope":     scope,
		"jti":       rand.Text(),
		"iat":       now.Unix(),
		"exp":       now.Add(5 * time.Minute).Unix(),
	}
}

// Token returns a signed access token for audience with scope and the
// extra claims (which override the defaults of Claims).
func (is *Issuer) Token(tb testing.TB, audience, scope string, extra map[string]any) string {
	tb.Helper()
	c := is.Claims(audience, scope)
	for k, v := range extra {
		c[k] = v
	}
	return is.Sign(tb, c)
}

// Sign signs claims with the issuer's key (RS256, with its kid).
func (is *Issuer) Sign(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	return SignWith(tb, jose.RS256, is.key, is.kid, claims)
}

// SignWith signs claims with any key go-jose takes for alg (an RSA or EC
// private key, or the []byte secret of an HMAC), naming kid.
func SignWith(tb testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	tb.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		tb.Fatal(err)
	}
	return SignWithSigner(tb, signer, claims)
}

// SignWithSigner returns claims as a compact JWS made by signer.
func SignWithSigner(tb testing.TB, signer jose.Signer, claims map[string]any) string {
	tb.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Unsigned returns claims as a JWT with "alg": "none" and an empty
// signature, which no verifier may accept.
func (is *Issuer) Unsigned(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "at+jwt", "kid": is.kid})
	p, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(p) + "."
}

// SigningKey is the issuer's private key, for forging tokens signed with
// it under another kid or issuer.
func (is *Issuer) SigningKey() crypto.Signer { return is.key }

// PublicKeyPEM is the issuer's public key as PEM: the "secret" of the
// classic HS256 key-confusion forgery.
func (is *Issuer) PublicKeyPEM(tb testing.TB) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(is.key.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
