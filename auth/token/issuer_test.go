package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/digitaleouder/ouder/auth/token/tokentest"
)

// testIssuer is a local OpenID Connect issuer: it serves a discovery
// document and a key set that a test can change, and counts the requests.
type testIssuer struct {
	srv *httptest.Server

	mu            sync.Mutex
	keys          []jose.JSONWebKey // served as the key set
	extraKeys     []json.RawMessage // served in addition, as written
	discoveryDown bool
	jwksDown      bool

	discoveryHits atomic.Int32
	jwksHits      atomic.Int32
}

func newTestIssuer(tb testing.TB, keys ...signingKey) *testIssuer {
	tb.Helper()
	ti := &testIssuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		ti.discoveryHits.Add(1)
		ti.mu.Lock()
		down := ti.discoveryDown
		ti.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, map[string]any{
			"issuer":                                ti.URL(),
			"jwks_uri":                              ti.URL() + "/jwks",
			"authorization_endpoint":                ti.URL() + "/authorize",
			"token_endpoint":                        ti.URL() + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		ti.jwksHits.Add(1)
		ti.mu.Lock()
		defer ti.mu.Unlock()
		if ti.jwksDown {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var keys []any
		for _, k := range ti.keys {
			keys = append(keys, k)
		}
		for _, k := range ti.extraKeys {
			keys = append(keys, k)
		}
		writeJSON(w, map[string]any{"keys": keys})
	})
	ti.srv = httptest.NewServer(mux)
	tb.Cleanup(ti.srv.Close)
	ti.setKeys(keys...)
	return ti
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (ti *testIssuer) URL() string { return ti.srv.URL }

// setKeys replaces the published key set with the public halves of keys.
func (ti *testIssuer) setKeys(keys ...signingKey) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.keys = nil
	for _, k := range keys {
		ti.keys = append(ti.keys, k.public())
	}
}

func (ti *testIssuer) setExtraKeys(raw ...json.RawMessage) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.extraKeys = raw
}

func (ti *testIssuer) setDown(discovery, jwks bool) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.discoveryDown, ti.jwksDown = discovery, jwks
}

// signingKey is a private key with the kid and algorithm it signs with.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func (k signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// Key generation is slow enough (RSA) to share the keys between tests.
var (
	rsaKeys = sync.OnceValue(func() []*rsa.PrivateKey {
		var ks []*rsa.PrivateKey
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			ks = append(ks, k)
		}
		return ks
	})
	ecKeys = sync.OnceValue(func() map[string]*ecdsa.PrivateKey {
		ks := map[string]*ecdsa.PrivateKey{}
		for name, c := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()} {
			k, err := ecdsa.GenerateKey(c, rand.Reader)
			if err != nil {
				panic(err)
			}
			ks[name] = k
		}
		return ks
	})
)

func rsaKey(i int, kid string, alg jose.SignatureAlgorithm) signingKey {
	return signingKey{kid: kid, alg: alg, priv: rsaKeys()[i]}
}

func ecKey(curve, kid string, alg jose.SignatureAlgorithm) signingKey {
	return signingKey{kid: kid, alg: alg, priv: ecKeys()[curve]}
}

// sign returns a compact JWS of claims signed with k, with k's kid.
func sign(tb testing.TB, k signingKey, claims map[string]any) string {
	tb.Helper()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"),
	)
	if err != nil {
		tb.Fatal(err)
	}
	return signWith(tb, signer, claims)
}

func signWith(tb testing.TB, signer jose.Signer, claims map[string]any) string {
	tb.Helper()
	return tokentest.SignWithSigner(tb, signer, claims)
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
