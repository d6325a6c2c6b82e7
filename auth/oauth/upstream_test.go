package oauth_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	zstorage "github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/digitaleouder/ouder/auth/oauth"
)

// upstreamProvider starts an independent OpenID Connect provider:
// zitadel/oidc's example OP with its in-memory storage, whose user
// "test-user@127.0.0.1" (password "verysecure") has the subject "id1". The
// client "ouder" (secret "secret") may redirect to redirect, which is known
// only once our server runs: set it through the returned function.
func upstreamProvider(t *testing.T) (issuer string, register func(redirect string)) {
	t.Helper()
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	store := zstorage.NewStorage(zstorage.NewUserStore(srv.URL))
	handler = exampleop.SetupServer(srv.URL, store, nil, false)
	return srv.URL, func(redirect string) {
		zstorage.RegisterClients(zstorage.WebClient("ouder", "secret", redirect))
	}
}

// TestUpstreamLogin: a person signs in at a second, independent OpenID
// Connect provider; the upstream subject is bound to their Person through
// an identifier, and the authorization goes on to the picker and consent.
func TestUpstreamLogin(t *testing.T) {
	upstream, register := upstreamProvider(t)
	e := newEnv(t, withUpstream(oauth.Upstream{Name: "idp", DisplayName: "Test-IdP", Issuer: upstream, ClientID: "ouder", ClientSecret: "secret"}))
	register(e.issuer + "/oauth2/callback")
	e.family(upstream) // Anna carries the identifier upstream|id1
	e.addApp("app", appScope)

	login := func(t *testing.T, b *browser, user, password string) page {
		t.Helper()
		p := newPKCE()
		// One provider and no development login: straight to the provider.
		pg := b.get(e.issuer + "/oauth2/authorize?" + e.authParams("app", "openid fhirUser launch/patient patient/*.rs", p).Encode())
		if !strings.HasPrefix(pg.url.String(), upstream) || pg.status != http.StatusOK {
			t.Fatalf("landed on %s (%d), want the provider's login page: %s", pg.url, pg.status, pg.body)
		}
		return b.post(upstream+"/login/username", url.Values{
			"id":       {pg.url.Query().Get("authRequestID")},
			"username": {user},
			"password": {password},
		})
	}

	t.Run("bound person", func(t *testing.T) {
		b := e.browser(t)
		p := newPKCE()
		pg := b.get(e.issuer + "/oauth2/authorize?" + e.authParams("app", "openid fhirUser launch/patient patient/*.rs", p).Encode())
		if !strings.HasPrefix(pg.url.String(), upstream) {
			t.Fatalf("landed on %s, want the provider", pg.url)
		}
		pg = b.post(upstream+"/login/username", url.Values{
			"id": {pg.url.Query().Get("authRequestID")}, "username": {"test-user@127.0.0.1"}, "password": {"verysecure"},
		})
		// Back at our server: Anna has two children.
		if pg.url.Path != "/oauth2/patient" {
			t.Fatalf("after the upstream login landed on %s (%d): %s", pg.url, pg.status, pg.body)
		}
		f := pg.formWith(t, "Sem")
		pg = b.post(e.issuer+f.action, f.values(t, "Verder", "Sem"))
		f = pg.formWith(t, "Toestaan")
		loc := b.post(e.issuer+f.action, f.values(t, "Toestaan")).location(t)
		status, tok := e.exchange(t, "app", code(t, loc), p.verifier)
		if status != http.StatusOK {
			t.Fatalf("%d %v", status, tok)
		}
		c := e.claims(t, tok["access_token"].(string))
		if c["sub"] != "Person/anna" || c["fhirUser"] != e.base+"/Person/anna" || c["patient"] != "sem" {
			t.Errorf("claims %v", c)
		}
		if !strings.Contains(e.logs.String(), "upstream login") {
			t.Error("the upstream login is not logged")
		}
		if strings.Contains(e.logs.String(), tok["access_token"].(string)) {
			t.Error("a token is in the log")
		}
	})
	t.Run("unbound person", func(t *testing.T) {
		pg := login(t, e.browser(t), "test-user2", "verysecure")
		if pg.status != http.StatusForbidden || !strings.Contains(string(pg.body), "niet gekoppeld") {
			t.Errorf("%d %s: %s", pg.status, pg.url, pg.body)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		pg := login(t, e.browser(t), "test-user@127.0.0.1", "wrong")
		if strings.HasPrefix(pg.url.String(), e.issuer) {
			t.Errorf("a failed upstream login came back to us: %s", pg.url)
		}
	})
	t.Run("forged callback", func(t *testing.T) {
		b := e.browser(t)
		pg := b.get(e.issuer + "/oauth2/callback?state=made-up&code=made-up")
		if pg.status != http.StatusBadRequest {
			t.Errorf("%d", pg.status)
		}
	})
}
