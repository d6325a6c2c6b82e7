package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/auth/token"
)

// userTokens runs the authorization code flow for Bert with offline access.
func userTokens(t *testing.T, e *env) map[string]any {
	t.Helper()
	p := newPKCE()
	loc := e.browser(t).signIn(e.authParams("app", "openid fhirUser launch/patient offline_access patient/*.rs", p), "Person/bert", "")
	status, tok := e.exchange(t, "app", code(t, loc), p.verifier)
	if status != http.StatusOK {
		t.Fatalf("%d %v", status, tok)
	}
	return tok
}

// TestIntrospectionAndRevocation: RFC 7662 with the SMART fields for
// active, revoked and expired tokens, and RFC 7009 revocation of a family.
func TestIntrospectionAndRevocation(t *testing.T) {
	e := newEnv(t, dev)
	e.family("")
	e.addApp("app", appScope)
	k := newClientKey(t, jose.ES384)
	addBackend(t, e, oauth.Client{ID: "rs", Scope: "system/Patient.rs", JWKS: jwks(t, k)})
	introspect := func(t *testing.T, token string) (int, map[string]any) {
		t.Helper()
		return e.post(t, "/oauth2/introspect", url.Values{"token": {token},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {e.assertion(t, "rs", k, nil)}})
	}

	tok := userTokens(t, e)
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	status, m := introspect(t, at)
	if status != http.StatusOK || m["active"] != true {
		t.Fatalf("active token: %d %v", status, m)
	}
	for k, want := range map[string]any{"client_id": "app", "sub": "Person/bert", "fhirUser": e.base + "/Person/bert", "patient": "sem"} {
		if m[k] != want {
			t.Errorf("introspection %s = %v, want %v", k, m[k], want)
		}
	}
	if m["exp"] == nil || m["iat"] == nil || !slices.Equal(strings.Fields(m["scope"].(string)), strings.Fields(tok["scope"].(string))) {
		t.Errorf("introspection %v", m)
	}
	if _, m := introspect(t, rt); m["active"] != true {
		t.Errorf("refresh token: %v", m)
	}
	if _, m := introspect(t, "not-a-token"); m["active"] != false || len(m) != 1 {
		t.Errorf("garbage: %v", m)
	}

	t.Run("callers", func(t *testing.T) {
		if status, m := e.post(t, "/oauth2/introspect", url.Values{"token": {at}}); status != http.StatusUnauthorized || m["active"] == true {
			t.Errorf("anonymous caller: %d %v", status, m)
		}
		if status, m := e.post(t, "/oauth2/introspect", url.Values{"token": {at}, "client_id": {"app"}}); status != http.StatusUnauthorized {
			t.Errorf("public client: %d %v", status, m)
		}
		other := userTokens(t, e)["access_token"].(string)
		if status, m := e.post(t, "/oauth2/introspect", url.Values{"token": {at}}, "Authorization: Bearer "+other); status != http.StatusUnauthorized {
			t.Errorf("a public client's token as credentials: %d %v", status, m)
		}
		_, bt := e.backendToken(t, "rs", "system/Patient.rs", e.assertion(t, "rs", k, nil))
		if status, m := e.post(t, "/oauth2/introspect", url.Values{"token": {at}}, "Authorization: Bearer "+bt["access_token"].(string)); status != http.StatusOK || m["active"] != true {
			t.Errorf("a backend client's token as credentials: %d %v", status, m)
		}
	})

	t.Run("revocation of the access token revokes the family", func(t *testing.T) {
		tok := userTokens(t, e)
		at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
		jti := e.claims(t, at)["jti"].(string)
		status, _ := e.post(t, "/oauth2/revoke", url.Values{"token": {at}, "client_id": {"app"}, "token_type_hint": {"access_token"}})
		if status != http.StatusOK {
			t.Fatalf("revoke: %d", status)
		}
		if _, m := introspect(t, at); m["active"] != false {
			t.Errorf("revoked access token: %v", m)
		}
		if _, m := introspect(t, rt); m["active"] != false {
			t.Errorf("refresh token of a revoked access token: %v", m)
		}
		if revoked, err := e.as.Revoked(context.Background(), jti); err != nil || !revoked {
			t.Errorf("Revoked = %v, %v", revoked, err)
		}
		// Revoking again, or a token that never existed, is no error.
		if status, _ := e.post(t, "/oauth2/revoke", url.Values{"token": {at}, "client_id": {"app"}}); status != http.StatusOK {
			t.Errorf("second revocation: %d", status)
		}
	})
	t.Run("revocation of the refresh token", func(t *testing.T) {
		tok := userTokens(t, e)
		at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
		if status, _ := e.post(t, "/oauth2/revoke", url.Values{"token": {rt}, "client_id": {"app"}}); status != http.StatusOK {
			t.Fatalf("revoke: %d", status)
		}
		if _, m := introspect(t, at); m["active"] != false {
			t.Errorf("access token of a revoked refresh token: %v", m)
		}
		if status, m := e.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"app"}}); status != http.StatusBadRequest {
			t.Errorf("revoked refresh token: %d %v", status, m)
		}
	})
	t.Run("another client may not revoke", func(t *testing.T) {
		tok := userTokens(t, e)
		e.addApp("app2", appScope)
		// RFC 7009 answers 200 either way; the token must stay active.
		e.post(t, "/oauth2/revoke", url.Values{"token": {tok["access_token"].(string)}, "client_id": {"app2"}})
		if _, m := introspect(t, tok["access_token"].(string)); m["active"] != true {
			t.Errorf("token after a refused revocation: %v", m)
		}
	})
	t.Run("expired", func(t *testing.T) {
		tok := userTokens(t, e)
		e.clock.Advance(2 * time.Hour)
		defer e.clock.Advance(-2 * time.Hour)
		if _, m := introspect(t, tok["access_token"].(string)); m["active"] != false {
			t.Errorf("expired access token: %v", m)
		}
	})
}

// TestKeyRotation: a rotated key keeps verifying the tokens it signed until
// they have expired, new tokens are signed with the new key, and rotation
// by age happens on its own.
func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	k := newClientKey(t, jose.RS384)
	addBackend(t, e, oauth.Client{ID: "ecd", Scope: "system/*.rs", JWKS: jwks(t, k)})
	newToken := func() string {
		status, tok := e.backendToken(t, "ecd", "system/*.rs", e.assertion(t, "ecd", k, nil))
		if status != http.StatusOK {
			t.Fatalf("%d %v", status, tok)
		}
		return tok["access_token"].(string)
	}
	published := func() []string {
		resp, err := http.Get(e.srv.URL + "/oauth2/jwks")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range set.Keys {
			if !k.IsPublic() {
				t.Fatal("JWKS publishes a private key")
			}
			kids = append(kids, k.KeyID)
		}
		return kids
	}
	ctx := context.Background()
	old := newToken()
	oldKid := header(t, old)["kid"].(string)
	if got := published(); !slices.Equal(got, []string{oldKid}) {
		t.Fatalf("JWKS %v, want [%s]", got, oldKid)
	}
	newKid, err := oauth.RotateKey(ctx, e.st, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The key ring reads the database again within half a minute.
	e.clock.Advance(time.Minute)
	if got := published(); !slices.Contains(got, oldKid) || !slices.Contains(got, newKid) {
		t.Errorf("JWKS after rotation %v, want both keys", got)
	}
	if _, err := e.as.KeySet().VerifySignature(ctx, old); err != nil {
		t.Errorf("a token of the retired key: %v", err)
	}
	fresh := newToken()
	if kid := header(t, fresh)["kid"]; kid != newKid {
		t.Errorf("new token signed with %v, want %s", kid, newKid)
	}
	// Long after every token of the old key expired, it is gone.
	e.clock.Advance(3 * time.Hour)
	if got := published(); slices.Contains(got, oldKid) {
		t.Errorf("JWKS still has the retired key: %v", got)
	}
	if _, err := e.as.KeySet().VerifySignature(ctx, old); err == nil {
		t.Error("a token of a withdrawn key still verifies")
	}
	if _, err := e.as.KeySet().VerifySignature(ctx, fresh); err != nil {
		t.Errorf("a token of the current key: %v", err)
	}
	keys, err := oauth.ListKeys(ctx, e.st, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != newKid || !keys[0].Retired.IsZero() || keys[1].Published {
		t.Errorf("keys %+v", keys)
	}

	t.Run("by age", func(t *testing.T) {
		e := newEnv(t, withKeyMaxAge(24*time.Hour))
		addBackend(t, e, oauth.Client{ID: "ecd", Scope: "system/*.rs", JWKS: jwks(t, k)})
		_, a := e.backendToken(t, "ecd", "system/*.rs", e.assertion(t, "ecd", k, nil))
		e.clock.Advance(25 * time.Hour)
		_, b := e.backendToken(t, "ecd", "system/*.rs", e.assertion(t, "ecd", k, nil))
		if ka, kb := header(t, a["access_token"].(string))["kid"], header(t, b["access_token"].(string))["kid"]; ka == kb {
			t.Errorf("key %v not replaced after its maximum age", ka)
		}
	})
	t.Run("database unavailable", func(t *testing.T) {
		e := newEnv(t)
		addBackend(t, e, oauth.Client{ID: "ecd", Scope: "system/*.rs", JWKS: jwks(t, k)})
		_, tok := e.backendToken(t, "ecd", "system/*.rs", e.assertion(t, "ecd", k, nil))
		e.pool.Close()
		e.clock.Advance(time.Minute) // past the key cache
		_, err := e.as.KeySet().VerifySignature(ctx, tok["access_token"].(string))
		if !errors.Is(err, token.ErrUnavailable) {
			t.Errorf("error %v, want one matching token.ErrUnavailable", err)
		}
	})
	t.Run("forged tokens", func(t *testing.T) {
		parts := strings.Split(fresh, ".")
		for name, tok := range map[string]string{
			"alg none":        `eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.` + parts[1] + `.`,
			"payload changed": parts[0] + "." + strings.Repeat("A", len(parts[1])) + "." + parts[2],
			"not a JWT":       "abc",
		} {
			if _, err := e.as.KeySet().VerifySignature(ctx, tok); err == nil {
				t.Errorf("%s: verified", name)
			}
		}
	})
}

// TestDevelopmentModeOff: without development mode there is no development
// login, no development client and no minted token, whatever a request
// asks; and a server started outside development mode removes the clients
// development mode registered on the same database.
func TestDevelopmentModeOff(t *testing.T) {
	devEnv := newEnv(t, dev)
	devEnv.family("")
	ctx := context.Background()
	if _, err := oauth.GetClient(ctx, devEnv.st, oauth.DevAdminClient); err != nil {
		t.Fatalf("development mode did not register %s: %v", oauth.DevAdminClient, err)
	}
	if _, err := oauth.Mint(ctx, devEnv.st, oauth.MintRequest{As: "Person/anna", Scope: "user/*.rs"}, time.Now()); err != nil {
		t.Fatalf("Mint in development mode: %v", err)
	}

	// The same database, not in development mode, with two upstream
	// providers (never contacted here) so the login page has a form.
	e := newEnvOn(t, devEnv.pool,
		withUpstream(oauth.Upstream{Name: "idp1", Issuer: "https://idp1.example", ClientID: "ouder"}),
		withUpstream(oauth.Upstream{Name: "idp2", Issuer: "https://idp2.example", ClientID: "ouder"}))
	e.addApp("app", appScope)
	for _, id := range []string{oauth.DevAdminClient, oauth.DevAuditorClient, oauth.DevAppClient} {
		if _, err := oauth.GetClient(ctx, e.st, id); err == nil {
			t.Errorf("development client %s still registered", id)
		}
	}
	if _, err := oauth.Mint(ctx, e.st, oauth.MintRequest{As: "Person/anna", Scope: "user/*.rs"}, time.Now()); !errors.Is(err, oauth.ErrNotDevelopment) {
		t.Errorf("Mint outside development mode: %v", err)
	}

	b := e.browser(t)
	pg := b.get(e.issuer + "/oauth2/authorize?" + e.authParams("app", "patient/*.rs", newPKCE()).Encode())
	if pg.url.Path != "/oauth2/login" {
		t.Fatalf("landed on %s", pg.url)
	}
	if strings.Contains(string(pg.body), "Person/anna") || strings.Contains(string(pg.body), "Ontwikkellogin") {
		t.Error("the login page offers the development login")
	}
	// Post the development login anyway, with the form's valid CSRF token.
	f := pg.formWith(t, "idp1")
	v := f.values(t, "")
	v.Set("person", "Person/anna")
	pg = b.post(e.issuer+f.action, v)
	if pg.status != http.StatusBadRequest || pg.url.Path == "/oauth2/consent" {
		t.Errorf("development login outside development mode: %d %s", pg.status, pg.url)
	}
	resp, err := http.Get(e.srv.URL + "/oauth2/dev/callback?code=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("development callback outside development mode: %d", resp.StatusCode)
	}
}

// TestDevelopmentLoginOnlyDemoPeople: the development login signs in only
// as a person tagged as demo, whatever the form says.
func TestDevelopmentLoginOnlyDemoPeople(t *testing.T) {
	e := newEnv(t, dev)
	e.family("")
	e.addApp("app", appScope)
	b := e.browser(t)
	pg := b.get(e.issuer + "/oauth2/authorize?" + e.authParams("app", "patient/*.rs", newPKCE()).Encode())
	if strings.Contains(string(pg.body), "Carla") {
		t.Error("a person who is not a demo person is listed")
	}
	f := pg.formWith(t, "Person/anna")
	for _, c := range f.choices {
		if c.value == "RelatedPerson/anna-lot" && !strings.Contains(c.label, "van Lot de Vries") {
			t.Errorf("a parent's RelatedPerson does not say whose parent: %q", c.label)
		}
	}
	v := f.values(t, "Inloggen als")
	v.Set("person", "Person/carla")
	if pg := b.post(e.issuer+f.action, v); pg.status != http.StatusBadRequest {
		t.Errorf("sign in as a non-demo person: %d %s", pg.status, pg.url)
	}
	t.Run("CSRF", func(t *testing.T) {
		v := f.values(t, "Inloggen als", "Person/anna")
		v.Set("csrf", "forged")
		if pg := b.post(e.issuer+f.action, v); pg.status != http.StatusForbidden {
			t.Errorf("forged CSRF token: %d", pg.status)
		}
	})
	t.Run("another browser", func(t *testing.T) {
		other := e.browser(t)
		if pg := other.post(e.issuer+f.action, f.values(t, "Inloggen als", "Person/anna")); pg.status != http.StatusBadRequest {
			t.Errorf("the interaction used from another browser: %d %s", pg.status, pg.url)
		}
	})
	t.Run("cross-site post", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+f.action, strings.NewReader(f.values(t, "Inloggen als", "Person/anna").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site form post: %d", resp.StatusCode)
		}
	})
}

// TestTwoInstances: two servers on one database are one authorization
// server: a code issued by one is redeemed at the other, and a refresh
// token rotated at one is refused at the other.
func TestTwoInstances(t *testing.T) {
	a := newEnv(t, dev)
	a.family("")
	a.addApp("app", appScope)
	b := newEnvOn(t, a.pool, dev, withIssuer(a.issuer))
	p := newPKCE()
	c := code(t, a.browser(t).signIn(a.authParams("app", "launch/patient offline_access patient/*.rs", p), "Person/bert", ""))
	status, tok := b.exchange(t, "app", c, p.verifier)
	if status != http.StatusOK {
		t.Fatalf("code of instance a at instance b: %d %v", status, tok)
	}
	a.claims(t, tok["access_token"].(string)) // verifies with a's key ring
	status, next := b.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {"app"}})
	if status != http.StatusOK {
		t.Fatalf("refresh at b: %d %v", status, next)
	}
	if status, m := a.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {"app"}}); status != http.StatusBadRequest {
		t.Errorf("rotated refresh token at a: %d %v", status, m)
	}
	if status, m := a.exchange(t, "app", c, p.verifier); status != http.StatusBadRequest {
		t.Errorf("code reused at a: %d %v", status, m)
	}
}

// TestMint: `ouderctl token` tokens are ordinary tokens of the server.
func TestMint(t *testing.T) {
	e := newEnv(t, dev)
	ctx := context.Background()
	tests := []struct {
		name    string
		req     oauth.MintRequest
		want    map[string]any
		wantErr string
	}{
		{name: "person", req: oauth.MintRequest{As: "Person/anna", Scope: "user/*.rs patient/*.rs system/*.rs", Patient: "sem"},
			want: map[string]any{"sub": "Person/anna", "fhirUser": e.base + "/Person/anna", "patient": "sem", "client_id": oauth.DevAppClient, "scope": "user/*.rs patient/*.rs"}},
		{name: "patient is its own context", req: oauth.MintRequest{As: "Patient/sem", Scope: "patient/*.rs"},
			want: map[string]any{"patient": "sem"}},
		{name: "admin", req: oauth.MintRequest{As: oauth.DevAdminClient, Scope: "system/*.cruds user/*.rs"},
			want: map[string]any{"sub": oauth.DevAdminClient, "operator": true, "scope": "system/*.cruds"}},
		{name: "auditor narrowed", req: oauth.MintRequest{As: oauth.DevAuditorClient, Scope: "system/*.rs"},
			want: map[string]any{"scope": "system/AuditEvent.rs system/Consent.rs system/CareTeam.rs", "operator": nil, "organization": oauth.DevAuditorOrganization}},
		{name: "unknown client", req: oauth.MintRequest{As: "nobody", Scope: "system/*.rs"}, wantErr: "no such client"},
		{name: "bad reference", req: oauth.MintRequest{As: "Observation/1", Scope: "user/*.rs"}, wantErr: "--as"},
		{name: "nothing grantable", req: oauth.MintRequest{As: oauth.DevAuditorClient, Scope: "system/Patient.rs"}, wantErr: "none of the scopes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := oauth.Mint(ctx, e.st, tt.req, e.clock.Now())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := e.claims(t, tok)
			for k, want := range tt.want {
				if c[k] != want {
					t.Errorf("%s = %v, want %v", k, c[k], want)
				}
			}
			if c["iss"] != e.issuer {
				t.Errorf("iss %v", c["iss"])
			}
		})
	}
}
