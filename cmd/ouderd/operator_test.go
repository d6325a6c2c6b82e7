package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/store/postgres"
)

// operators holds, by server origin, the Authorization header of an
// operator of that server (useOperator): call() sends it when a request
// names no Authorization of its own. Without it, call() sends a backend
// token of the external test issuer, which the access policy lets see
// nothing (it acts for no organisation and is no operator).
var operators sync.Map

// useOperator registers an operator backend client in the database dsn of
// the server at base, as a deployment's operator would (`ouderctl clients
// add -kind backend -operator`), gets a token for it from the server's own
// authorization server with a client assertion (SMART Backend Services),
// and makes call() use it for requests to base. It returns the header.
func useOperator(tb testing.TB, base, dsn string) string {
	tb.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer pool.Close()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	const kid, client = "test-operator-key", "test-operator"
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: string(jose.ES384), Use: "sig"}}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := oauth.AddClient(ctx, postgres.NewOAuth(pool), oauth.Client{
		ID: client, Kind: oauth.Backend, Scope: "system/*.cruds", JWKS: jwks, Operator: true,
	}, time.Now()); err != nil {
		tb.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	issuer := u.Scheme + "://" + u.Host
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		tb.Fatal(err)
	}
	assertion, err := josejwt.Signed(sig).Claims(map[string]any{
		"iss": client, "sub": client, "aud": issuer + "/oauth2/token",
		"exp": time.Now().Add(4 * time.Minute).Unix(), "jti": fmt.Sprintf("%s-%d", client, time.Now().UnixNano()),
	}).Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	res, err := http.PostForm(issuer+"/oauth2/token", url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {"system/*.cruds"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != http.StatusOK || tok.AccessToken == "" {
		tb.Fatalf("operator token: %d %v", res.StatusCode, err)
	}
	header := "Authorization: Bearer " + tok.AccessToken
	operators.Store(issuer, header)
	return header
}

// operatorFor returns the header useOperator stored for the server of
// rawURL, and false when there is none.
func operatorFor(rawURL string) (string, bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", false
	}
	h, ok := operators.Load(u.Scheme + "://" + u.Host)
	if !ok {
		return "", false
	}
	return strings.TrimSpace(strings.TrimPrefix(h.(string), "Authorization:")), true
}
