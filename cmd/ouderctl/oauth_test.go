package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
)

const testIssuer = "http://127.0.0.1:8080"

// startAS runs the authorization server's start-up on the database of url
// (as ouderd does), so the database holds its settings, keys and, in
// development mode, the development clients.
func startAS(t *testing.T, dbURL string, devMode bool) *oauth.Server {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	registry, err := searchparam.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.New(pool)
	parser := &search.Parser{Registry: registry, Base: testIssuer + "/fhir"}
	as, err := oauth.New(context.Background(), oauth.Config{
		Storage:  postgres.NewOAuth(pool),
		Issuer:   testIssuer,
		FHIRBase: testIssuer + "/fhir",
		Dev:      devMode,
		Lookup: func(ctx context.Context, typ string, params url.Values) ([]json.RawMessage, error) {
			q, err := parser.Parse([]string{typ}, params, true)
			if err != nil {
				return nil, err
			}
			res, err := store.Search(search.WithAccess(ctx, search.Unrestricted()), q)
			if err != nil {
				return nil, err
			}
			var out []json.RawMessage
			for _, r := range res.Matches {
				out = append(out, r.Body)
			}
			return out, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// A person of the record.
	p, err := conformance.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	p.Registry = func() *searchparam.Registry { return registry }
	res, err := p.Parse([]byte(`{"resourceType":"Person","id":"anna","name":[{"given":["Anna"]}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(search.WithAccess(context.Background(), search.Unrestricted()),
		fhir.Write{Type: "Person", ID: "anna", Render: res.Render, Index: res.Index}); err != nil {
		t.Fatal(err)
	}
	return as
}

func runOut(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	err := run(context.Background(), append([]string{"-database-url", url}, args...), func(string) string { return "" }, &out)
	return out.String(), err
}

func TestClientsCommand(t *testing.T) {
	url := pgtest.URL(t)
	startAS(t, url, false)
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES384", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, set, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{name: "add backend", args: []string{"clients", "add", "-kind", "backend", "-scope", "system/Patient.rs", "-jwks", jwksFile, "ecd"}, want: []string{"registered backend client ecd"}},
		{name: "add app, flags after the id", args: []string{"clients", "add", "app", "-redirect-uri", "https://app.example/cb", "-redirect-uri", "https://app.example/cb2", "-name", "De app"}, want: []string{"registered public client app"}},
		{name: "list", args: []string{"clients", "list"}, want: []string{"ecd", "backend", "JWKS inline", "app", "public", "https://app.example/cb https://app.example/cb2"}},
		{name: "invalid", args: []string{"clients", "add", "-kind", "backend", "-scope", "user/*.rs", "-jwks", jwksFile, "bad"}, wantErr: "system/ scopes only"},
		{name: "missing id", args: []string{"clients", "add", "-kind", "public"}, wantErr: "expected 1 argument"},
		{name: "remove", args: []string{"clients", "remove", "app"}, want: []string{"removed client app"}},
		{name: "remove again", args: []string{"clients", "remove", "app"}, wantErr: `no client "app"`},
		{name: "unknown subcommand", args: []string{"clients", "frob"}, wantErr: "unknown subcommand"},
		{name: "keys list", args: []string{"keys", "list"}, want: []string{"current"}},
		{name: "keys rotate", args: []string{"keys", "rotate"}, want: []string{"new signing key"}},
		{name: "keys after rotation", args: []string{"keys", "list"}, want: []string{"current", "still verifies"}},
		{name: "token outside development mode", args: []string{"token", "-as", "Person/anna", "-scope", "user/*.rs"}, wantErr: "development mode is off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runOut(t, url, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %q does not contain %q", out, w)
				}
			}
		})
	}
	if out, _ := runOut(t, url, "clients", "list"); strings.Contains(out, "app ") {
		t.Errorf("removed client still listed:\n%s", out)
	}
}

func TestTokenCommand(t *testing.T) {
	url := pgtest.URL(t)
	as := startAS(t, url, true)
	verify := func(t *testing.T, token string) map[string]any {
		t.Helper()
		v := oidc.NewVerifier(as.Issuer(), as.KeySet(), &oidc.Config{SkipClientIDCheck: true})
		idt, err := v.Verify(context.Background(), token)
		if err != nil {
			t.Fatalf("the printed token does not verify: %v", err)
		}
		var c map[string]any
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name    string
		args    []string
		want    map[string]any
		wantErr string
	}{
		{name: "admin", args: []string{"token", "-as", "admin", "-scope", "system/*.rs"}, want: map[string]any{"sub": "admin", "operator": true, "scope": "system/*.rs"}},
		{name: "auditor", args: []string{"token", "-as", "auditor", "-scope", "system/*.cruds"}, want: map[string]any{"scope": "system/AuditEvent.rs system/Consent.rs system/CareTeam.rs", "organization": "Organization/demo-toezicht"}},
		{name: "person", args: []string{"token", "-as", "Person/anna", "-scope", "user/*.rs"}, want: map[string]any{"sub": "Person/anna", "fhirUser": testIssuer + "/fhir/Person/anna"}},
		{name: "person not in the record", args: []string{"token", "-as", "Person/nobody", "-scope", "user/*.rs"}, wantErr: "not in the record"},
		{name: "patient not in the record", args: []string{"token", "-as", "Person/anna", "-scope", "patient/*.rs", "-patient", "nobody"}, wantErr: "not in the record"},
		{name: "no scope", args: []string{"token", "-as", "admin"}, wantErr: "-scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runOut(t, url, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(out, "\n") != 1 || strings.Count(out, ".") != 2 {
				t.Fatalf("output %q is not just a token", out)
			}
			c := verify(t, strings.TrimSpace(out))
			for k, want := range tt.want {
				if c[k] != want {
					t.Errorf("%s = %v, want %v", k, c[k], want)
				}
			}
		})
	}
}
