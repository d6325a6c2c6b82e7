package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// benchIssuer is the token issuer of the suite: ouderd refuses every FHIR
// request without a bearer token, so the suite runs a small OpenID
// Connect issuer of its own (a discovery document and a key set on a
// loopback port), tells ouderd to trust it (-trusted-issuers) and sends
// its tokens. The tokens carry every system/ scope, so the scenarios
// measure what authentication and the access decision cost a backend
// client, the same SQL as without them.
type benchIssuer struct {
	srv *http.Server
	url string
	key *ecdsa.PrivateKey
}

// benchAudience is the audience of the suite's tokens.
const benchAudience = "https://ouderbench.invalid/fhir"

// startIssuer starts the issuer on a free loopback port.
func startIssuer() (*benchIssuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	is := &benchIssuer{url: "http://" + ln.Addr().String(), key: key}
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer": is.url, "jwks_uri": is.url + "/jwks",
			"authorization_endpoint": is.url + "/authorize", "token_endpoint": is.url + "/token",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"keys": []jose.JSONWebKey{{Key: key.Public(), KeyID: "bench", Algorithm: string(jose.ES256), Use: "sig"}}})
	})
	is.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = is.srv.Serve(ln) }()
	return is, nil
}

// trustFile writes the -trusted-issuers file naming the issuer into dir.
func (is *benchIssuer) trustFile(dir string) (string, error) {
	b, err := json.Marshal([]map[string]string{{"url": is.url, "audience": benchAudience}})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "trusted-issuers.json")
	return path, os.WriteFile(path, b, 0o600)
}

// token returns an access token with every system/ scope, valid for two
// hours (longer than any suite).
func (is *benchIssuer) token() (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: is.key, KeyID: "bench"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return "", err
	}
	now := time.Now()
	payload, err := json.Marshal(map[string]any{
		"iss": is.url, "sub": "ouderbench", "aud": benchAudience, "client_id": "ouderbench",
		"scope": "system/*.cruds", "jti": rand.Text(), "iat": now.Unix(), "exp": now.Add(2 * time.Hour).Unix(),
	})
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// close stops the issuer.
func (is *benchIssuer) close(ctx context.Context) error {
	if is == nil {
		return nil
	}
	if err := is.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
