package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
)

// TestDevModeFlag: development mode (which signs anyone in as anyone) is
// refused unless the server listens on and is reached at loopback only.
func TestDevModeFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{name: "loopback", args: []string{"-dev", "-addr", "127.0.0.1:0"}},
		{name: "localhost", args: []string{"-dev", "-addr", "localhost:8080"}},
		{name: "IPv6 loopback", args: []string{"-dev", "-addr", "[::1]:8080", "-base-url", "http://[::1]:8080/fhir"}},
		{name: "by environment", env: map[string]string{"OUDERD_DEV": "true"}},
		{name: "all interfaces", args: []string{"-dev", "-addr", ":8080"}, wantErr: "loopback listen address"},
		{name: "public address", args: []string{"-dev", "-addr", "0.0.0.0:8080"}, wantErr: "loopback listen address"},
		{name: "public address by environment", env: map[string]string{"OUDERD_DEV": "1", "OUDERD_ADDR": "192.0.2.1:80"}, wantErr: "loopback listen address"},
		{name: "public base URL", args: []string{"-dev", "-base-url", "https://fhir.example.org/fhir"}, wantErr: "loopback base URL"},
		{name: "malformed", env: map[string]string{"OUDERD_DEV": "maybe"}, wantErr: "OUDERD_DEV"},
		{name: "key age", args: []string{"-key-max-age", "720h"}},
		{name: "malformed key age", env: map[string]string{"OUDERD_KEY_MAX_AGE": "a month"}, wantErr: "OUDERD_KEY_MAX_AGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			m.LogOutput = io.Discard
			err := m.ParseFlags(tt.args, func(k string) string { return tt.env[k] })
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

// TestOAuthWiring: ouderd serves the authorization server next to the FHIR
// API, the SMART configuration without a token, and accepts its own tokens
// until they are revoked.
func TestOAuthWiring(t *testing.T) {
	db := pgtest.URL(t)
	m := NewMain()
	m.LogOutput = io.Discard
	if err := m.ParseFlags([]string{"-dev", "-addr", "127.0.0.1:0", "-database-url", db}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	origin := "http://" + m.Addr()
	get := func(path string, headers ...string) (int, map[string]any) {
		t.Helper()
		status, _, body := call(t, http.MethodGet, origin+path, "", append([]string{"Authorization:"}, headers...)...)
		return status, body
	}

	status, oidc := get("/.well-known/openid-configuration")
	if status != http.StatusOK || oidc["issuer"] != origin || oidc["token_endpoint"] != origin+"/oauth2/token" {
		t.Errorf("openid-configuration: %d %v", status, oidc)
	}
	status, smart := get("/fhir/.well-known/smart-configuration")
	if status != http.StatusOK {
		t.Fatalf("smart-configuration: %d %v", status, smart)
	}
	for _, field := range []string{"issuer", "jwks_uri", "authorization_endpoint", "token_endpoint", "grant_types_supported",
		"capabilities", "code_challenge_methods_supported", "introspection_endpoint", "revocation_endpoint", "scopes_supported",
		"response_types_supported", "token_endpoint_auth_methods_supported", "token_endpoint_auth_signing_alg_values_supported"} {
		if smart[field] == nil {
			t.Errorf("smart-configuration has no %s", field)
		}
	}
	var caps []string
	for _, c := range smart["capabilities"].([]any) {
		caps = append(caps, c.(string))
	}
	for _, c := range []string{"permission-v1", "permission-v2", "launch-standalone", "client-public", "client-confidential-asymmetric",
		"context-standalone-patient", "sso-openid-connect", "permission-offline", "permission-patient", "permission-user"} {
		if !slices.Contains(caps, c) {
			t.Errorf("capability %s missing from %v", c, caps)
		}
	}
	if methods := smart["code_challenge_methods_supported"].([]any); len(methods) != 1 || methods[0] != "S256" {
		t.Errorf("code_challenge_methods_supported %v", methods)
	}
	if status, jwks := get("/oauth2/jwks"); status != http.StatusOK || len(jwks["keys"].([]any)) != 1 {
		t.Errorf("jwks: %d %v", status, jwks)
	}

	pool, err := pgxpool.New(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := postgres.NewOAuth(pool)
	admin, err := oauth.Mint(context.Background(), st, oauth.MintRequest{As: oauth.DevAdminClient, Scope: "system/*.cruds"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if status, body := get("/fhir/Patient", "Authorization: Bearer "+admin); status != http.StatusOK {
		t.Errorf("search with the admin token: %d %v", status, body)
	}
	if status, _ := get("/fhir/Patient"); status != http.StatusUnauthorized {
		t.Errorf("search without a token: %d", status)
	}

	// A person's token, revoked by its client (the development app).
	user, err := oauth.Mint(context.Background(), st, oauth.MintRequest{As: "Person/anna", Scope: "user/*.rs"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if status, body := get("/fhir/Observation", "Authorization: Bearer "+user); status == http.StatusUnauthorized {
		t.Fatalf("search with a person's token: %d %v", status, body)
	}
	resp, err := http.PostForm(origin+"/oauth2/revoke", url.Values{"token": {user}, "client_id": {oauth.DevAppClient}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if status, _ := get("/fhir/Observation", "Authorization: Bearer "+user); status != http.StatusUnauthorized {
		t.Errorf("search with a revoked token: %d, want 401", status)
	}
}
