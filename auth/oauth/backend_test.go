package oauth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/digitaleouder/ouder/auth/oauth"
)

func addBackend(t testing.TB, e *env, c oauth.Client) {
	t.Helper()
	c.Kind = oauth.Backend
	if err := oauth.AddClient(context.Background(), e.st, c, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestBackendServices: client_credentials with private_key_jwt (SMART
// Backend Services), and every assertion that must be refused.
func TestBackendServices(t *testing.T) {
	e := newEnv(t)
	rs, es := newClientKey(t, jose.RS384), newClientKey(t, jose.ES384)
	addBackend(t, e, oauth.Client{ID: "ecd", Scope: "system/Patient.rs system/Observation.rs", JWKS: jwks(t, rs, es)})

	for _, k := range []clientKey{rs, es} {
		t.Run("token with "+string(k.alg), func(t *testing.T) {
			status, tok := e.backendToken(t, "ecd", "system/*.rs patient/*.rs", e.assertion(t, "ecd", k, nil))
			if status != http.StatusOK {
				t.Fatalf("%d %v", status, tok)
			}
			if exp, _ := tok["expires_in"].(float64); exp <= 0 || exp > 300 {
				t.Errorf("expires_in %v, want at most 300", tok["expires_in"])
			}
			if got, want := scopes(tok), []string{"system/Observation.rs", "system/Patient.rs"}; !slices.Equal(got, want) {
				t.Errorf("scope %v, want %v", got, want)
			}
			if tok["token_type"] != "Bearer" || tok["refresh_token"] != nil || tok["id_token"] != nil {
				t.Errorf("response %v", tok)
			}
			c := e.claims(t, tok["access_token"].(string))
			if c["sub"] != "ecd" || c["client_id"] != "ecd" || c["operator"] != nil || c["fhirUser"] != nil {
				t.Errorf("claims %v", c)
			}
			if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat > 300 {
				t.Errorf("token lives %v s, want at most 300", exp-iat)
			}
		})
	}

	other := newClientKey(t, jose.RS384)
	other.kid = rs.kid // a stranger's key under a known kid
	hmacKey, err := x509.MarshalPKIXPublicKey(rs.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	refusals := []struct {
		name      string
		assertion func(t *testing.T) string
	}{
		{"exp more than five minutes ahead", func(t *testing.T) string {
			return e.assertion(t, "ecd", rs, func(c map[string]any) { c["exp"] = e.clock.Now().Add(10 * time.Minute).Unix() })
		}},
		{"no exp", func(t *testing.T) string {
			return e.assertion(t, "ecd", rs, func(c map[string]any) { delete(c, "exp") })
		}},
		{"expired", func(t *testing.T) string {
			return e.assertion(t, "ecd", rs, func(c map[string]any) { c["exp"] = e.clock.Now().Add(-time.Minute).Unix() })
		}},
		{"no jti", func(t *testing.T) string {
			return e.assertion(t, "ecd", rs, func(c map[string]any) { delete(c, "jti") })
		}},
		{"wrong aud", func(t *testing.T) string {
			return e.assertion(t, "ecd", rs, func(c map[string]any) { c["aud"] = e.base })
		}},
		{"iss is not the client", func(t *testing.T) string {
			return e.assertion(t, "ecd", rs, func(c map[string]any) { c["iss"] = "someone" })
		}},
		{"signed by another key", func(t *testing.T) string { return e.assertion(t, "ecd", other, nil) }},
		{"RS256", func(t *testing.T) string {
			return e.assertion(t, "ecd", clientKey{alg: jose.RS256, kid: rs.kid, priv: rs.priv}, nil)
		}},
		{"HS256 signed with the public key", func(t *testing.T) string {
			sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: hmacKey}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", rs.kid))
			if err != nil {
				t.Fatal(err)
			}
			now := e.clock.Now()
			s, err := josejwt.Signed(sig).Claims(map[string]any{"iss": "ecd", "sub": "ecd", "aud": e.issuer + "/oauth2/token",
				"exp": now.Add(time.Minute).Unix(), "jti": "hs256-jti"}).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"alg none", func(t *testing.T) string {
			enc := func(v any) string {
				b, _ := json.Marshal(v)
				return base64.RawURLEncoding.EncodeToString(b)
			}
			now := e.clock.Now()
			return enc(map[string]any{"alg": "none", "typ": "JWT"}) + "." + enc(map[string]any{"iss": "ecd", "sub": "ecd",
				"aud": e.issuer + "/oauth2/token", "exp": now.Add(time.Minute).Unix(), "jti": "none-jti"}) + "."
		}},
		{"ES384 key claimed for RS384", func(t *testing.T) string {
			return e.assertion(t, "ecd", clientKey{alg: jose.RS384, kid: es.kid, priv: rs.priv}, nil)
		}},
	}
	for _, tt := range refusals {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			status, m := e.backendToken(t, "ecd", "system/Patient.rs", tt.assertion(t))
			// fosite answers a key of the wrong type for the algorithm
			// with invalid_request; everything else is invalid_client.
			if m["access_token"] != nil || !(status == http.StatusUnauthorized && m["error"] == "invalid_client" ||
				status == http.StatusBadRequest && m["error"] == "invalid_request") {
				t.Errorf("%d %v, want 401 invalid_client", status, m)
			}
		})
	}

	t.Run("refused: replayed jti", func(t *testing.T) {
		a := e.assertion(t, "ecd", rs, nil)
		if status, m := e.backendToken(t, "ecd", "system/Patient.rs", a); status != http.StatusOK {
			t.Fatalf("first use: %d %v", status, m)
		}
		status, m := e.backendToken(t, "ecd", "system/Patient.rs", a)
		if status != http.StatusUnauthorized && status != http.StatusBadRequest {
			t.Errorf("replay: %d %v, want a refusal", status, m)
		}
		if m["access_token"] != nil {
			t.Error("replay got a token")
		}
	})
	t.Run("refused: jti reused in a new assertion", func(t *testing.T) {
		fixed := func(c map[string]any) { c["jti"] = "fixed-jti-1" }
		if status, m := e.backendToken(t, "ecd", "system/Patient.rs", e.assertion(t, "ecd", rs, fixed)); status != http.StatusOK {
			t.Fatalf("first use: %d %v", status, m)
		}
		status, m := e.backendToken(t, "ecd", "system/Patient.rs", e.assertion(t, "ecd", es, fixed))
		if m["access_token"] != nil || status == http.StatusOK {
			t.Errorf("jti reuse: %d %v", status, m)
		}
	})
	t.Run("refused: no system scope", func(t *testing.T) {
		status, m := e.backendToken(t, "ecd", "patient/*.rs user/*.rs openid", e.assertion(t, "ecd", rs, nil))
		if status != http.StatusBadRequest || m["error"] != "invalid_scope" {
			t.Errorf("%d %v", status, m)
		}
	})
	t.Run("refused: no scope", func(t *testing.T) {
		status, m := e.backendToken(t, "ecd", "", e.assertion(t, "ecd", rs, nil))
		if status != http.StatusBadRequest || m["error"] != "invalid_scope" {
			t.Errorf("%d %v", status, m)
		}
	})
	t.Run("refused: public client", func(t *testing.T) {
		e.addApp("app", appScope)
		status, m := e.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "scope": {"system/*.rs"}})
		if status == http.StatusOK {
			t.Errorf("a public client got a token: %v", m)
		}
	})
}

func TestBackendOperatorAndJWKSURL(t *testing.T) {
	e := newEnv(t)
	k := newClientKey(t, jose.ES384)
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// Without "use": fosite only looks at signing keys, the server
		// marks keys that say nothing as such.
		var set map[string][]map[string]any
		_ = json.Unmarshal(jwks(t, k), &set)
		delete(set["keys"][0], "use")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(keys.Close)
	addBackend(t, e, oauth.Client{ID: "ops", Scope: "system/*.cruds", JWKSURL: keys.URL, Operator: true})
	status, tok := e.backendToken(t, "ops", "system/*.cruds", e.assertion(t, "ops", k, nil))
	if status != http.StatusOK {
		t.Fatalf("%d %v", status, tok)
	}
	if c := e.claims(t, tok["access_token"].(string)); c["operator"] != true {
		t.Errorf("operator claim %v", c["operator"])
	}
}

// TestConfidentialApp: an app that authenticates with private_key_jwt at
// the token endpoint after the authorization code flow.
func TestConfidentialApp(t *testing.T) {
	e := newEnv(t, dev)
	e.family("")
	k := newClientKey(t, jose.RS384)
	if err := oauth.AddClient(context.Background(), e.st, oauth.Client{ID: "portal", Kind: oauth.ConfidentialAsymmetric, RedirectURIs: []string{appRedirect}, JWKS: jwks(t, k)}, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	p := newPKCE()
	c := code(t, e.browser(t).signIn(e.authParams("portal", "launch/patient patient/*.rs", p), "Person/bert", ""))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {appRedirect}, "code_verifier": {p.verifier},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}
	// Without its assertion the app is refused...
	form.Set("client_id", "portal")
	if status, m := e.post(t, "/oauth2/token", form); status == http.StatusOK {
		t.Fatalf("token without a client assertion: %v", m)
	}
	// ...and the code is not spent by that refusal.
	form.Set("client_assertion", e.assertion(t, "portal", k, nil))
	status, tok := e.post(t, "/oauth2/token", form)
	if status != http.StatusOK || tok["patient"] != "sem" {
		t.Fatalf("%d %v", status, tok)
	}
}

func TestClientValidation(t *testing.T) {
	rs := newClientKey(t, jose.RS384)
	private, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: rs.priv, KeyID: "k", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallSet, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &small.PublicKey, KeyID: "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		c       oauth.Client
		wantErr string
	}{
		{"ok public", oauth.Client{ID: "a", Kind: oauth.Public, RedirectURIs: []string{"https://a.example/cb"}}, ""},
		{"ok native scheme", oauth.Client{ID: "a", Kind: oauth.Public, RedirectURIs: []string{"nl.example.app:/cb"}}, ""},
		{"bad id", oauth.Client{ID: "a b", Kind: oauth.Public, RedirectURIs: []string{"https://a.example/cb"}}, "client id"},
		{"bad kind", oauth.Client{ID: "a", Kind: "secret", RedirectURIs: []string{"https://a.example/cb"}}, "kind"},
		{"no redirect", oauth.Client{ID: "a", Kind: oauth.Public}, "redirect URI"},
		{"http redirect", oauth.Client{ID: "a", Kind: oauth.Public, RedirectURIs: []string{"http://a.example/cb"}}, "loopback"},
		{"fragment", oauth.Client{ID: "a", Kind: oauth.Public, RedirectURIs: []string{"https://a.example/cb#x"}}, "fragment"},
		{"system scope for an app", oauth.Client{ID: "a", Kind: oauth.Public, RedirectURIs: []string{"https://a.example/cb"}, Scope: "system/*.rs"}, "backend"},
		{"user scope for a backend", oauth.Client{ID: "a", Kind: oauth.Backend, Scope: "user/*.rs", JWKS: jwks(t, rs)}, "system/ scopes only"},
		{"backend without keys", oauth.Client{ID: "a", Kind: oauth.Backend, Scope: "system/*.rs"}, "public keys"},
		{"backend with a private key", oauth.Client{ID: "a", Kind: oauth.Backend, Scope: "system/*.rs", JWKS: private}, "private key"},
		{"operator app", oauth.Client{ID: "a", Kind: oauth.Public, RedirectURIs: []string{"https://a.example/cb"}, Operator: true}, "operator"},
		{"JWKS URL over http", oauth.Client{ID: "a", Kind: oauth.Backend, Scope: "system/*.rs", JWKSURL: "http://keys.example/jwks"}, "https"},
		{"public with keys", oauth.Client{ID: "a", Kind: oauth.Public, RedirectURIs: []string{"https://a.example/cb"}, JWKS: jwks(t, rs)}, "no keys"},
		{"malformed scope", oauth.Client{ID: "a", Kind: oauth.Public, RedirectURIs: []string{"https://a.example/cb"}, Scope: "patient/*.xyz"}, "scope"},
		{"RSA key too small", oauth.Client{ID: "a", Kind: oauth.Backend, Scope: "system/*.rs", JWKS: smallSet}, "2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
