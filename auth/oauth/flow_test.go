package oauth_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/digitaleouder/ouder/auth/oauth"
)

const appScope = "openid fhirUser launch/patient offline_access online_access patient/*.cruds user/*.rs"

// signIn drives the pages as a person does: the authorization request, the
// development login as person, the patient picker (choosing child) when it
// is shown, and the consent page with the scopes labelled untick unticked.
// It returns the redirect back to the app.
func (b *browser) signIn(params url.Values, person, child string, untick ...string) *url.URL {
	b.t.Helper()
	p := b.get(b.e.issuer + "/oauth2/authorize?" + params.Encode())
	if p.url.Path != "/oauth2/login" || p.status != http.StatusOK {
		b.t.Fatalf("authorize: landed on %s (%d, Location %s), want the login page: %s", p.url, p.status, p.header.Get("Location"), p.body)
	}
	b.checkPage(p)
	f := p.formWith(b.t, person)
	p = b.post(b.e.issuer+f.action, f.values(b.t, "Inloggen als", person))
	if p.url.Path == "/oauth2/patient" {
		b.checkPage(p)
		f := p.formWith(b.t, child)
		p = b.post(b.e.issuer+f.action, f.values(b.t, "Verder", child))
	}
	if p.url.Path != "/oauth2/consent" || p.status != http.StatusOK {
		b.t.Fatalf("landed on %s (%d), want the consent page: %s", p.url, p.status, p.body)
	}
	b.checkPage(p)
	f = p.formWith(b.t, "Toestaan")
	f.untick(untick...)
	return b.post(b.e.issuer+f.action, f.values(b.t, "Toestaan")).location(b.t)
}

// checkPage checks what every page must have: a language, a label for
// every choice, a CSRF token in every form, and the headers that keep it
// out of frames and caches.
func (b *browser) checkPage(p page) {
	b.t.Helper()
	if !strings.Contains(string(p.body), `<html lang="nl">`) {
		b.t.Errorf("%s: no lang attribute", p.url.Path)
	}
	for _, f := range p.forms(b.t) {
		if f.hidden.Get("csrf") == "" || f.hidden.Get("i") == "" {
			b.t.Errorf("%s: form %s without csrf or interaction", p.url.Path, f.action)
		}
		for _, c := range f.choices {
			if c.label == "" {
				b.t.Errorf("%s: %s %s=%s has no label", p.url.Path, c.kind, c.name, c.value)
			}
		}
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Cache-Control"} {
		if p.header.Get(h) == "" {
			b.t.Errorf("%s: no %s header", p.url.Path, h)
		}
	}
}

// code returns the authorization code of a redirect to the app, checking
// the state.
func code(t testing.TB, u *url.URL) string {
	t.Helper()
	q := u.Query()
	if e := q.Get("error"); e != "" {
		t.Fatalf("redirect with error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != "state-1234567890" {
		t.Fatalf("state %q", q.Get("state"))
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in %s", u)
	}
	return q.Get("code")
}

func scopes(m map[string]any) []string {
	s, _ := m["scope"].(string)
	out := strings.Fields(s)
	slices.Sort(out)
	return out
}

func TestAuthorizationCodeFlow(t *testing.T) {
	e := newEnv(t, dev)
	e.family("")
	e.addApp("app", appScope)
	p := newPKCE()
	b := e.browser(t)
	loc := b.signIn(e.authParams("app", "openid fhirUser launch/patient offline_access patient/*.read user/Observation.rs profile", p), "Person/anna", "Lot")
	if loc.Host != "app.example" {
		t.Fatalf("redirected to %s, want the app", loc)
	}
	status, tok := e.exchange(t, "app", code(t, loc), p.verifier)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	if tok["token_type"] != "Bearer" {
		t.Errorf("token_type %v", tok["token_type"])
	}
	if exp, _ := tok["expires_in"].(float64); exp <= 0 || exp > 3600 {
		t.Errorf("expires_in %v, want at most 3600", tok["expires_in"])
	}
	// profile is not the app's to have; the rest is granted as asked.
	if got, want := scopes(tok), []string{"fhirUser", "launch/patient", "offline_access", "openid", "patient/*.read", "user/Observation.rs"}; !slices.Equal(got, want) {
		t.Errorf("scope %v, want %v", got, want)
	}
	if tok["patient"] != "lot" {
		t.Errorf("patient %v, want lot", tok["patient"])
	}
	if tok["refresh_token"] == nil {
		t.Error("no refresh_token for offline_access")
	}

	// The access token, as the resource server sees it (RFC 9068 shape).
	at := tok["access_token"].(string)
	if h := header(t, at); h["typ"] != "at+jwt" || h["alg"] != "RS256" || h["kid"] == nil {
		t.Errorf("access token header %v", h)
	}
	c := e.claims(t, at)
	for k, want := range map[string]any{
		"iss": e.issuer, "sub": "Person/anna", "client_id": "app", "fhirUser": e.base + "/Person/anna", "patient": "lot",
	} {
		if c[k] != want {
			t.Errorf("access token %s = %v, want %v", k, c[k], want)
		}
	}
	if aud, _ := c["aud"].([]any); len(aud) != 1 || aud[0] != e.base {
		t.Errorf("aud %v, want [%s]", c["aud"], e.base)
	}
	if c["jti"] == nil || c["iat"] == nil || c["exp"] == nil || c["operator"] != nil {
		t.Errorf("claims %v", c)
	}
	if got := strings.Fields(c["scope"].(string)); len(got) != 6 {
		t.Errorf("scope claim %v", got)
	}

	// The ID token, verified through discovery as an app would.
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "app", Now: e.clock.Now}).Verify(ctx, tok["id_token"].(string))
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	var ic map[string]any
	if err := idt.Claims(&ic); err != nil {
		t.Fatal(err)
	}
	if ic["fhirUser"] != e.base+"/Person/anna" || ic["nonce"] != "nonce-1234567890" || idt.Subject != "Person/anna" {
		t.Errorf("id_token claims %v", ic)
	}
}

func TestPatientPickerAndConsentChoices(t *testing.T) {
	e := newEnv(t, dev)
	e.family("")
	e.addApp("app", appScope)

	t.Run("one child: no picker", func(t *testing.T) {
		p := newPKCE()
		loc := e.browser(t).signIn(e.authParams("app", "launch/patient patient/*.rs", p), "Person/bert", "")
		_, tok := e.exchange(t, "app", code(t, loc), p.verifier)
		if tok["patient"] != "sem" {
			t.Errorf("patient %v, want sem", tok["patient"])
		}
	})
	t.Run("unticked scopes are not granted", func(t *testing.T) {
		p := newPKCE()
		loc := e.browser(t).signIn(e.authParams("app", "openid fhirUser launch/patient offline_access patient/*.rs user/*.rs", p), "Person/anna", "Sem",
			"offline_access", "user/*.rs", "openid")
		_, tok := e.exchange(t, "app", code(t, loc), p.verifier)
		if got, want := scopes(tok), []string{"fhirUser", "launch/patient", "patient/*.rs"}; !slices.Equal(got, want) {
			t.Errorf("scope %v, want %v", got, want)
		}
		if tok["refresh_token"] != nil || tok["id_token"] != nil {
			t.Errorf("refresh_token or id_token without offline_access and openid: %v", tok)
		}
		if tok["patient"] != "sem" {
			t.Errorf("patient %v", tok["patient"])
		}
	})
	t.Run("wider than the client may: narrowed", func(t *testing.T) {
		e.addApp("narrow-app", "launch/patient patient/Observation.rs")
		p := newPKCE()
		loc := e.browser(t).signIn(e.authParams("narrow-app", "launch/patient patient/*.cruds", p), "Person/bert", "")
		_, tok := e.exchange(t, "narrow-app", code(t, loc), p.verifier)
		if got, want := scopes(tok), []string{"launch/patient", "patient/Observation.rs"}; !slices.Equal(got, want) {
			t.Errorf("scope %v, want %v", got, want)
		}
	})
	t.Run("deny", func(t *testing.T) {
		p := newPKCE()
		b := e.browser(t)
		pg := b.get(e.issuer + "/oauth2/authorize?" + e.authParams("app", "patient/*.rs", p).Encode())
		f := pg.formWith(t, "Person/bert")
		pg = b.post(e.issuer+f.action, f.values(t, "Inloggen als", "Person/bert"))
		f = pg.formWith(t, "Weigeren")
		loc := b.post(e.issuer+f.action, f.values(t, "Weigeren")).location(t)
		if loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "state-1234567890" {
			t.Errorf("deny redirected to %s", loc)
		}
	})
	t.Run("a practitioner has no child to pick", func(t *testing.T) {
		p := newPKCE()
		b := e.browser(t)
		pg := b.get(e.issuer + "/oauth2/authorize?" + e.authParams("app", "launch/patient patient/*.rs", p).Encode())
		f := pg.formWith(t, "Practitioner/dossierhouder")
		loc := b.post(e.issuer+f.action, f.values(t, "Inloggen als", "Practitioner/dossierhouder")).location(t)
		if loc.Query().Get("error") != "access_denied" {
			t.Errorf("redirected to %s, want access_denied", loc)
		}
	})
}

// TestAuthorizeRefusals: every malformed authorization request is refused,
// at the app's redirect URI when that URI is registered, else on a page.
func TestAuthorizeRefusals(t *testing.T) {
	e := newEnv(t, dev)
	e.family("")
	e.addApp("app", appScope)
	p := newPKCE()
	tests := []struct {
		name      string
		edit      func(url.Values)
		wantError string // at the redirect; "" means a page answers 400
	}{
		{name: "no PKCE", edit: func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, wantError: "invalid_request"},
		{name: "plain PKCE", edit: func(v url.Values) { v.Set("code_challenge_method", "plain"); v.Set("code_challenge", p.verifier) }, wantError: "invalid_request"},
		{name: "PKCE method missing", edit: func(v url.Values) { v.Del("code_challenge_method") }, wantError: "invalid_request"},
		{name: "wrong aud", edit: func(v url.Values) { v.Set("aud", "https://other.example/fhir") }, wantError: "invalid_request"},
		{name: "no aud", edit: func(v url.Values) { v.Del("aud") }, wantError: "invalid_request"},
		{name: "no state", edit: func(v url.Values) { v.Del("state") }, wantError: "invalid_state"},
		{name: "prompt none", edit: func(v url.Values) { v.Set("prompt", "none") }, wantError: "login_required"},
		{name: "implicit flow", edit: func(v url.Values) { v.Set("response_type", "token") }, wantError: "unsupported_response_type"},
		{name: "no scope the client may have", edit: func(v url.Values) { v.Set("scope", "system/*.rs") }, wantError: "invalid_scope"},
		{name: "request object", edit: func(v url.Values) { v.Set("request", "eyJhbGciOiJub25lIn0.e30.") }, wantError: "request_not_supported"},
		{name: "redirect URI not registered", edit: func(v url.Values) { v.Set("redirect_uri", "https://evil.example/callback") }},
		{name: "redirect URI differs in path", edit: func(v url.Values) { v.Set("redirect_uri", appRedirect+"/x") }},
		{name: "unknown client", edit: func(v url.Values) { v.Set("client_id", "nobody") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := e.authParams("app", "launch/patient patient/*.rs", p)
			tt.edit(v)
			pg := e.browser(t).get(e.issuer + "/oauth2/authorize?" + v.Encode())
			if tt.wantError == "" {
				if pg.status != http.StatusBadRequest || pg.header.Get("Location") != "" {
					t.Fatalf("status %d location %q, want a 400 page and no redirect", pg.status, pg.header.Get("Location"))
				}
				return
			}
			loc := pg.location(t)
			if loc.Host != "app.example" || loc.Query().Get("error") != tt.wantError {
				t.Errorf("redirected to %s, want error %s", loc, tt.wantError)
			}
		})
	}
}

// TestLoopbackRedirectExact: fosite would accept a loopback redirect URI on
// another port; this server wants the registered one exactly.
func TestLoopbackRedirectExact(t *testing.T) {
	e := newEnv(t, dev)
	if err := oauth.AddClient(context.Background(), e.st, oauth.Client{ID: "native", Kind: oauth.Public, RedirectURIs: []string{"http://127.0.0.1:7777/cb"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	p := newPKCE()
	v := e.authParams("native", "patient/*.rs", p)
	v.Set("redirect_uri", "http://127.0.0.1:7778/cb")
	pg := e.browser(t).get(e.issuer + "/oauth2/authorize?" + v.Encode())
	if pg.status != http.StatusBadRequest {
		t.Errorf("status %d, want 400", pg.status)
	}
}

// TestTokenRefusals: the token endpoint refuses a missing or wrong PKCE
// verifier, a redirect URI that differs from the authorization request's,
// another client's code, and a code used twice, which also revokes what
// the first use issued.
func TestTokenRefusals(t *testing.T) {
	e := newEnv(t, dev)
	e.family("")
	e.addApp("app", appScope)
	e.addApp("other", appScope)
	newCode := func(t *testing.T, p pkce) string {
		return code(t, e.browser(t).signIn(e.authParams("app", "launch/patient patient/*.rs offline_access", p), "Person/bert", ""))
	}
	t.Run("wrong verifier", func(t *testing.T) {
		p := newPKCE()
		c := newCode(t, p)
		status, m := e.exchange(t, "app", c, newPKCE().verifier)
		if status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("%d %v", status, m)
		}
		// The code is spent: the right verifier no longer helps.
		if status, m := e.exchange(t, "app", c, p.verifier); status != http.StatusBadRequest {
			t.Errorf("after a wrong verifier: %d %v", status, m)
		}
	})
	t.Run("missing verifier", func(t *testing.T) {
		p := newPKCE()
		status, m := e.exchange(t, "app", newCode(t, p), "")
		if status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("%d %v", status, m)
		}
	})
	t.Run("redirect URI mismatch", func(t *testing.T) {
		p := newPKCE()
		status, m := e.post(t, "/oauth2/token", url.Values{
			"grant_type": {"authorization_code"}, "code": {newCode(t, p)}, "redirect_uri": {appRedirect + "?x=1"},
			"client_id": {"app"}, "code_verifier": {p.verifier},
		})
		if status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("%d %v", status, m)
		}
	})
	t.Run("another client's code", func(t *testing.T) {
		p := newPKCE()
		status, m := e.exchange(t, "other", newCode(t, p), p.verifier)
		if status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("%d %v", status, m)
		}
	})
	t.Run("reused code", func(t *testing.T) {
		p := newPKCE()
		c := newCode(t, p)
		status, first := e.exchange(t, "app", c, p.verifier)
		if status != http.StatusOK {
			t.Fatalf("first use: %d %v", status, first)
		}
		jti := e.claims(t, first["access_token"].(string))["jti"].(string)
		if revoked, err := e.as.Revoked(context.Background(), jti); err != nil || revoked {
			t.Fatalf("before reuse: revoked %v, %v", revoked, err)
		}
		status, m := e.exchange(t, "app", c, p.verifier)
		if status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Fatalf("second use: %d %v", status, m)
		}
		if revoked, err := e.as.Revoked(context.Background(), jti); err != nil || !revoked {
			t.Errorf("after reuse: the first access token is not revoked (%v, %v)", revoked, err)
		}
		status, m = e.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}, "client_id": {"app"}})
		if status != http.StatusBadRequest {
			t.Errorf("refresh token of a reused code still works: %d %v", status, m)
		}
	})
}

// TestRefresh: rotation (the old refresh token is refused and its reuse
// revokes the family), narrowing and refused escalation.
func TestRefresh(t *testing.T) {
	e := newEnv(t, dev)
	e.family("")
	e.addApp("app", appScope)
	grant := func(t *testing.T) map[string]any {
		p := newPKCE()
		loc := e.browser(t).signIn(e.authParams("app", "openid fhirUser launch/patient offline_access patient/Observation.rs patient/Patient.rs", p), "Person/bert", "")
		status, tok := e.exchange(t, "app", code(t, loc), p.verifier)
		if status != http.StatusOK {
			t.Fatalf("%d %v", status, tok)
		}
		return tok
	}
	refresh := func(t *testing.T, rt, scope string) (int, map[string]any) {
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"app"}}
		if scope != "" {
			v.Set("scope", scope)
		}
		return e.post(t, "/oauth2/token", v)
	}

	t.Run("rotation", func(t *testing.T) {
		tok := grant(t)
		status, next := refresh(t, tok["refresh_token"].(string), "")
		if status != http.StatusOK {
			t.Fatalf("%d %v", status, next)
		}
		if next["refresh_token"] == nil || next["refresh_token"] == tok["refresh_token"] {
			t.Fatalf("no new refresh token: %v", next)
		}
		if next["patient"] != "sem" || next["id_token"] == nil || !slices.Equal(scopes(next), scopes(tok)) {
			t.Errorf("refreshed response %v", next)
		}
		oldJTI := e.claims(t, tok["access_token"].(string))["jti"].(string)
		newJTI := e.claims(t, next["access_token"].(string))["jti"].(string)
		if oldJTI == newJTI {
			t.Fatal("the refreshed access token has the old jti")
		}
		if revoked, _ := e.as.Revoked(context.Background(), oldJTI); !revoked {
			t.Error("the replaced access token is not revoked")
		}
		// The old refresh token is refused, and its reuse ends the family.
		if status, m := refresh(t, tok["refresh_token"].(string), ""); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("old refresh token: %d %v", status, m)
		}
		if revoked, _ := e.as.Revoked(context.Background(), newJTI); !revoked {
			t.Error("after reuse the new access token is not revoked")
		}
		if status, m := refresh(t, next["refresh_token"].(string), ""); status != http.StatusBadRequest {
			t.Errorf("after reuse the new refresh token still works: %d %v", status, m)
		}
	})
	t.Run("narrowing", func(t *testing.T) {
		tok := grant(t)
		status, next := refresh(t, tok["refresh_token"].(string), "offline_access patient/Observation.r")
		if status != http.StatusOK {
			t.Fatalf("%d %v", status, next)
		}
		if got, want := scopes(next), []string{"offline_access", "patient/Observation.r"}; !slices.Equal(got, want) {
			t.Errorf("scope %v, want %v", got, want)
		}
	})
	t.Run("registration narrowed since", func(t *testing.T) {
		tok := grant(t)
		e.addApp("app", "openid fhirUser launch/patient offline_access patient/Patient.r")
		defer e.addApp("app", appScope)
		status, next := refresh(t, tok["refresh_token"].(string), "")
		if status != http.StatusOK {
			t.Fatalf("%d %v", status, next)
		}
		if got, want := scopes(next), []string{"fhirUser", "launch/patient", "offline_access", "openid", "patient/Patient.r"}; !slices.Equal(got, want) {
			t.Errorf("scope %v, want %v", got, want)
		}
	})
	for _, scope := range []string{"patient/Observation.cruds", "patient/*.rs", "user/Observation.rs", "offline_access patient/Condition.rs", "launch/patient openid profile"} {
		t.Run("escalation "+scope, func(t *testing.T) {
			tok := grant(t)
			status, m := refresh(t, tok["refresh_token"].(string), scope)
			if status != http.StatusBadRequest || m["error"] != "invalid_scope" {
				t.Errorf("%d %v, want invalid_scope", status, m)
			}
		})
	}
}

// TestAuthorizePost: SMART's authorize-post, a form the app's own page
// posts across sites.
func TestAuthorizePost(t *testing.T) {
	e := newEnv(t, dev)
	e.family("")
	e.addApp("app", appScope)
	b := e.browser(t)
	req, err := http.NewRequest(http.MethodPost, e.issuer+"/oauth2/authorize", strings.NewReader(e.authParams("app", "patient/*.rs", newPKCE()).Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://app.example")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pg := readPage(t, resp)
	if pg.status != http.StatusOK || pg.url.Path != "/oauth2/login" {
		t.Errorf("authorize by POST landed on %s (%d)", pg.url, pg.status)
	}
}

// TestOnlineAccess: an online_access refresh token (without
// offline_access) ends twelve hours after the sign-in it came from, however
// often it is used.
func TestOnlineAccess(t *testing.T) {
	e := newEnv(t, dev)
	e.family("")
	e.addApp("app", appScope)
	p := newPKCE()
	loc := e.browser(t).signIn(e.authParams("app", "online_access patient/*.rs launch/patient", p), "Person/bert", "")
	_, tok := e.exchange(t, "app", code(t, loc), p.verifier)
	rt, _ := tok["refresh_token"].(string)
	if rt == "" {
		t.Fatalf("no refresh token for online_access: %v", tok)
	}
	refresh := func(rt string) (int, map[string]any) {
		return e.post(t, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"app"}})
	}
	e.clock.Advance(11 * time.Hour)
	status, next := refresh(rt)
	if status != http.StatusOK {
		t.Fatalf("after 11 hours: %d %v", status, next)
	}
	e.clock.Advance(2 * time.Hour)
	if status, m := refresh(next["refresh_token"].(string)); status != http.StatusBadRequest {
		t.Errorf("after 13 hours: %d %v, want refused", status, m)
	}
}
