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
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/store/postgres"
)

// benchOperator is the suite's client of ouderd: ouderd refuses every FHIR
// request without a bearer token, and its access policy lets a backend
// client see only what the organisation it acts for may, so the suite
// registers an operator backend client in ouderd's database (as
// `ouderctl clients add -kind backend -operator` would) and gets its
// tokens from ouderd's own token endpoint with a client assertion (SMART
// Backend Services). The scenarios then measure what authentication and
// the access decision cost an operator: the same SQL as without them.
type benchOperator struct {
	key *ecdsa.PrivateKey
}

// benchClientID is the operator client the suite registers.
const benchClientID = "ouderbench"

// registerOperator registers the suite's operator client in the database
// dsn (ouderd's, migrated).
func registerOperator(ctx context.Context, dsn string) (*benchOperator, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: benchClientID, Algorithm: string(jose.ES384), Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("register the operator client: %w", err)
	}
	defer pool.Close()
	if err := oauth.AddClient(ctx, postgres.NewOAuth(pool), oauth.Client{
		ID: benchClientID, Name: "ouderbench", Kind: oauth.Backend, Scope: "system/*.cruds", JWKS: jwks, Operator: true,
	}, time.Now()); err != nil {
		return nil, fmt.Errorf("register the operator client: %w", err)
	}
	return &benchOperator{key: key}, nil
}

// token returns a fresh access token from the server at origin (backend
// tokens live five minutes: ask for one per scenario).
func (op *benchOperator) token(ctx context.Context, origin string) (string, error) {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: op.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", benchClientID))
	if err != nil {
		return "", err
	}
	now := time.Now()
	assertion, err := josejwt.Signed(sig).Claims(map[string]any{
		"iss": benchClientID, "sub": benchClientID, "aud": origin + "/oauth2/token",
		"exp": now.Add(4 * time.Minute).Unix(), "jti": rand.Text(),
	}).Serialize()
	if err != nil {
		return "", err
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {"system/*.cruds"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	req, err := http.NewRequestWithContext(ctx, "POST", origin+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("operator token: %w", err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("operator token: HTTP %d %s %v", res.StatusCode, tok.Error, err)
	}
	return tok.AccessToken, nil
}
