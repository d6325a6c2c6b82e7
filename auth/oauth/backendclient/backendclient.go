// Package backendclient is the client side of SMART Backend Services
// (https://hl7.org/fhir/smart-app-launch/backend-services.html) against this
// server's own authorization server: it registers a backend client with a
// fresh ES384 key in the server's database (as `ouderctl clients add -kind
// backend` would) and gets access tokens for it with a signed client
// assertion (private_key_jwt). The benchmark suite and the end-to-end tests
// use it to act as an operator of a running ouderd.
package backendclient

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
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/store/postgres"
)

// Client is a registered backend client and its private key.
type Client struct {
	id  string
	key *ecdsa.PrivateKey
}

// RegisterOperator registers (or registers again, with a new key) the
// backend client id as an operator with every system/ scope in the
// migrated database dsn of an ouderd.
func RegisterOperator(ctx context.Context, dsn, id, name string) (*Client, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: id, Algorithm: string(jose.ES384), Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("register the operator client %s: %w", id, err)
	}
	defer pool.Close()
	if err := oauth.AddClient(ctx, postgres.NewOAuth(pool), oauth.Client{
		ID: id, Name: name, Kind: oauth.Backend, Scope: "system/*.cruds", JWKS: jwks, Operator: true,
	}, time.Now()); err != nil {
		return nil, fmt.Errorf("register the operator client %s: %w", id, err)
	}
	return &Client{id: id, key: key}, nil
}

// Token returns a fresh access token for scope from the authorization
// server at origin (scheme://host of the ouderd). Backend tokens live five
// minutes: ask for one per use.
func (c *Client) Token(ctx context.Context, origin, scope string) (string, error) {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: c.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", c.id))
	if err != nil {
		return "", err
	}
	assertion, err := josejwt.Signed(sig).Claims(map[string]any{
		"iss": c.id, "sub": c.id, "aud": origin + "/oauth2/token",
		"exp": time.Now().Add(4 * time.Minute).Unix(), "jti": rand.Text(),
	}).Serialize()
	if err != nil {
		return "", err
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, origin+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", c.id, err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("token for %s: HTTP %d %s %v", c.id, res.StatusCode, tok.Error, err)
	}
	return tok.AccessToken, nil
}
