package oauth_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// clock is the test's clock: real time plus an offset the test moves
// (fosite itself reads the real time, so the clock stays near it).
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
func (c *clock) At(d time.Duration) func() time.Time {
	return func() time.Time { return c.Now().Add(d) }
}

// env is an authorization server on a fresh database, with the FHIR
// resources of a small family and registered clients.
type env struct {
	t      testing.TB
	srv    *httptest.Server
	as     *oauth.Server
	st     *postgres.OAuth
	pool   *pgxpool.Pool
	store  *postgres.Store
	lookup oauth.Lookup
	clock  *clock
	issuer string
	base   string
	logs   *lockedBuffer
}

type envOption func(*oauth.Config)

func dev(c *oauth.Config) { c.Dev = true }

// withIssuer makes the server believe it is reached at issuer: a second
// instance behind the same name as the first.
func withIssuer(issuer string) envOption {
	return func(c *oauth.Config) { c.Issuer, c.FHIRBase = issuer, issuer+"/fhir" }
}

func withKeyMaxAge(d time.Duration) envOption {
	return func(c *oauth.Config) { c.KeyMaxAge = d }
}

func withUpstream(u oauth.Upstream) envOption {
	return func(c *oauth.Config) { c.Upstreams = append(c.Upstreams, u) }
}

// newEnv starts an authorization server on a new database.
func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, pgtest.Pool(t), opts...)
}

// newEnvOn starts an authorization server on the database of pool: two of
// them on one pool are two instances of the server.
func newEnvOn(t testing.TB, pool *pgxpool.Pool, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, pool: pool, st: postgres.NewOAuth(pool), store: postgres.New(pool), clock: &clock{}, logs: &lockedBuffer{}}
	var handler http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL
	e.base = e.srv.URL + "/fhir"
	registry, err := searchparam.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	parser := &search.Parser{Registry: registry, Fold: searchparam.Fold, Base: e.base}
	e.lookup = func(ctx context.Context, typ string, params url.Values) ([]json.RawMessage, error) {
		q, err := parser.Parse([]string{typ}, params, true)
		if err != nil {
			return nil, err
		}
		res, err := e.store.Search(search.WithAccess(ctx, search.Unrestricted()), q)
		if err != nil {
			return nil, err
		}
		var out []json.RawMessage
		for _, r := range res.Matches {
			out = append(out, r.Body)
		}
		return out, nil
	}
	cfg := oauth.Config{
		Storage:  e.st,
		Issuer:   e.issuer,
		FHIRBase: e.base,
		Lookup:   e.lookup,
		Logger:   slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      e.clock.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.issuer, e.base = cfg.Issuer, cfg.FHIRBase
	e.as, err = oauth.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	handler = e.as.Handler()
	return e
}

// put writes a FHIR resource through the store's write path.
func (e *env) put(body string) {
	e.t.Helper()
	parser, err := conformance.NewParser()
	if err != nil {
		e.t.Fatal(err)
	}
	registry, err := searchparam.Builtin()
	if err != nil {
		e.t.Fatal(err)
	}
	parser.Registry = func() *searchparam.Registry { return registry }
	res, err := parser.Parse([]byte(body), "")
	if err != nil {
		e.t.Fatalf("parse %s: %v", body, err)
	}
	ctx := search.WithAccess(context.Background(), search.Unrestricted())
	if _, err := e.store.Update(ctx, fhir.Write{Type: res.Type, ID: res.ID, Render: res.Render, Index: res.Index}); err != nil {
		e.t.Fatalf("write %s/%s: %v", res.Type, res.ID, err)
	}
}

const demoTag = `"meta":{"tag":[{"system":"https://digitaleouder.nl/fhir/CodeSystem/demo","code":"demo"}]}`

// family writes the test family: Anna (a Person linked to two children
// through RelatedPersons), Bert (one child), a Practitioner, all tagged as
// demo people, and Carla, who is not. Anna's identifier binds the upstream
// subject "id1" of upstreamIssuer (when given).
func (e *env) family(upstreamIssuer string) {
	e.t.Helper()
	ident := ""
	if upstreamIssuer != "" {
		ident = fmt.Sprintf(`,"identifier":[{"system":%q,"value":"id1"}]`, upstreamIssuer)
	}
	for _, r := range []string{
		`{"resourceType":"Patient","id":"sem",` + demoTag + `,"name":[{"family":"de Vries","given":["Sem"]}],"birthDate":"2016-05-01"}`,
		`{"resourceType":"Patient","id":"lot",` + demoTag + `,"name":[{"family":"de Vries","given":["Lot"]}],"birthDate":"2011-09-12"}`,
		`{"resourceType":"RelatedPerson","id":"anna-sem",` + demoTag + `,"patient":{"reference":"Patient/sem"},"name":[{"family":"de Vries","given":["Anna"]}]}`,
		`{"resourceType":"RelatedPerson","id":"anna-lot",` + demoTag + `,"patient":{"reference":"Patient/lot"},"name":[{"family":"de Vries","given":["Anna"]}]}`,
		`{"resourceType":"RelatedPerson","id":"bert-sem",` + demoTag + `,"patient":{"reference":"Patient/sem"},"name":[{"family":"Jansen","given":["Bert"]}]}`,
		`{"resourceType":"Person","id":"anna",` + demoTag + ident + `,"name":[{"family":"de Vries","given":["Anna"]}],"link":[{"target":{"reference":"RelatedPerson/anna-sem"}},{"target":{"reference":"RelatedPerson/anna-lot"}}]}`,
		`{"resourceType":"Person","id":"bert",` + demoTag + `,"name":[{"family":"Jansen","given":["Bert"]}],"link":[{"target":{"reference":"RelatedPerson/bert-sem"}}]}`,
		`{"resourceType":"Practitioner","id":"dossierhouder",` + demoTag + `,"name":[{"family":"Bakker","given":["Fatima"]}]}`,
		`{"resourceType":"Person","id":"carla","name":[{"family":"Smit","given":["Carla"]}]}`,
	} {
		e.put(r)
	}
}

const appRedirect = "https://app.example/callback"

// addApp registers a public app client.
func (e *env) addApp(id, scope string) {
	e.t.Helper()
	if err := oauth.AddClient(context.Background(), e.st, oauth.Client{ID: id, Name: "Test-app", Kind: oauth.Public, RedirectURIs: []string{appRedirect}, Scope: scope}, e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
}

// browser is a person's browser: a cookie jar, and redirects followed
// within the server but not to the app.
type browser struct {
	t *testing.T
	c *http.Client
	e *env
}

func (e *env) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == "app.example" || req.URL.Scheme != "http" {
			return http.ErrUseLastResponse // back to the app: stop
		}
		return nil
	}}}
}

// page is a fetched page.
type page struct {
	status int
	url    *url.URL
	header http.Header
	body   []byte
}

func (b *browser) get(u string) page {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	return readPage(b.t, resp)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	resp, err := b.c.PostForm(u, form)
	if err != nil {
		b.t.Fatal(err)
	}
	return readPage(b.t, resp)
}

func readPage(t testing.TB, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: body}
}

// location returns where a redirect to the app points.
func (p page) location(t testing.TB) *url.URL {
	t.Helper()
	if p.status != http.StatusSeeOther && p.status != http.StatusFound {
		t.Fatalf("status %d, want a redirect to the app; body: %s", p.status, p.body)
	}
	u, err := url.Parse(p.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// form is an HTML form of a page, read the way a person uses it: by the
// labels of its controls.
type form struct {
	action  string
	hidden  url.Values
	choices []choice // radio buttons and checkboxes
	buttons []choice
}

type choice struct {
	name, value, label, kind string
	checked                  bool
}

// forms returns the forms of p.
func (p page) forms(t testing.TB) []*form {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	var collectLabels func(*html.Node)
	collectLabels = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "label" {
			labels[attr(n, "for")] = strings.Join(strings.Fields(text(n)), " ")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			collectLabels(c)
		}
	}
	collectLabels(doc)
	var out []*form
	var walk func(n *html.Node, f *form)
	walk = func(n *html.Node, f *form) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				f = &form{action: attr(n, "action"), hidden: url.Values{}}
				out = append(out, f)
			case "input":
				if f == nil {
					break
				}
				switch attr(n, "type") {
				case "hidden":
					f.hidden.Add(attr(n, "name"), attr(n, "value"))
				case "radio", "checkbox":
					_, checked := attrOK(n, "checked")
					f.choices = append(f.choices, choice{name: attr(n, "name"), value: attr(n, "value"), label: labels[attr(n, "id")], kind: attr(n, "type"), checked: checked})
				}
			case "button":
				if f != nil {
					f.buttons = append(f.buttons, choice{name: attr(n, "name"), value: attr(n, "value"), label: strings.Join(strings.Fields(text(n)), " ")})
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	walk(doc, nil)
	return out
}

// formWith returns the form of p that has a control whose label or value
// contains s.
func (p page) formWith(t testing.TB, s string) *form {
	t.Helper()
	for _, f := range p.forms(t) {
		for _, c := range append(append([]choice{}, f.choices...), f.buttons...) {
			if strings.Contains(c.label, s) || c.value == s {
				return f
			}
		}
	}
	t.Fatalf("no form with a control %q on page %s:\n%s", s, p.url, p.body)
	return nil
}

// values returns what submitting f sends: the hidden fields, the checked
// choices (with the ones labelled by pick checked instead when pick is
// given for radio buttons), and the button labelled button.
func (f *form) values(t testing.TB, button string, pick ...string) url.Values {
	t.Helper()
	v := url.Values{}
	for k, vs := range f.hidden {
		v[k] = append([]string{}, vs...)
	}
	radioPicked := false
	for _, p := range pick {
		for _, c := range f.choices {
			if c.kind == "radio" && (c.value == p || strings.Contains(c.label, p)) {
				v.Set(c.name, c.value)
				radioPicked = true
				break
			}
		}
	}
	for _, c := range f.choices {
		if c.kind == "radio" && !radioPicked && c.checked {
			v.Set(c.name, c.value)
		}
		if c.kind == "checkbox" && c.checked {
			v.Add(c.name, c.value)
		}
	}
	if button != "" {
		found := false
		for _, b := range f.buttons {
			if strings.Contains(b.label, button) {
				if b.name != "" {
					v.Set(b.name, b.value)
				}
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("no button %q in form %s", button, f.action)
		}
	}
	return v
}

// untick removes the checkboxes whose label contains any of labels.
func (f *form) untick(labels ...string) {
	for i, c := range f.choices {
		for _, l := range labels {
			if c.kind == "checkbox" && (strings.Contains(c.label, l) || c.value == l) {
				f.choices[i].checked = false
			}
		}
	}
}

func attr(n *html.Node, key string) string {
	v, _ := attrOK(n, key)
	return v
}

func attrOK(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func text(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(text(c))
		b.WriteByte(' ')
	}
	return b.String()
}

// pkce is a PKCE verifier and its S256 challenge.
type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := oauth2.GenerateVerifier()
	return pkce{verifier: v, challenge: oauth2.S256ChallengeFromVerifier(v)}
}

// authParams returns the parameters of a standard SMART authorization
// request of client for scope.
func (e *env) authParams(client, scope string, p pkce) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {client},
		"redirect_uri":          {appRedirect},
		"scope":                 {scope},
		"state":                 {"state-1234567890"},
		"aud":                   {e.base},
		"code_challenge":        {p.challenge},
		"code_challenge_method": {"S256"},
		"nonce":                 {"nonce-1234567890"},
	}
}

// tokenCall posts form to the token endpoint (or another endpoint path) and
// returns the status and JSON answer.
func (e *env) post(t testing.TB, path string, form url.Values, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, h := range header {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("POST %s: status %d, not JSON: %s", path, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, m
}

// exchange redeems code at the token endpoint as the public client.
func (e *env) exchange(t testing.TB, client, code, verifier string) (int, map[string]any) {
	t.Helper()
	return e.post(t, "/oauth2/token", url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {appRedirect},
		"client_id":     {client},
		"code_verifier": {verifier},
	})
}

// claims verifies an access token with the server's KeySet (as the
// resource server does) and returns its claims.
func (e *env) claims(t testing.TB, token string) map[string]any {
	t.Helper()
	v := oidc.NewVerifier(e.issuer, e.as.KeySet(), &oidc.Config{SkipClientIDCheck: true, Now: e.clock.Now})
	idt, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("verify access token: %v", err)
	}
	var m map[string]any
	if err := idt.Claims(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// header returns the decoded JOSE header of a compact JWT.
func header(t testing.TB, token string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// clientKey is a backend client's key pair.
type clientKey struct {
	alg  jose.SignatureAlgorithm
	kid  string
	priv crypto.Signer
}

func newClientKey(t testing.TB, alg jose.SignatureAlgorithm) clientKey {
	t.Helper()
	k := clientKey{alg: alg, kid: string(alg) + "-key"}
	var err error
	switch alg {
	case jose.RS384:
		k.priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES384:
		k.priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwks returns the public key set of keys.
func jwks(t testing.TB, keys ...clientKey) json.RawMessage {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertion returns a client assertion of client for the token endpoint,
// with claims changed by edit.
func (e *env) assertion(t testing.TB, client string, k clientKey, edit func(c map[string]any)) string {
	t.Helper()
	now := e.clock.Now()
	c := map[string]any{
		"iss": client,
		"sub": client,
		"aud": e.issuer + "/oauth2/token",
		"exp": now.Add(4 * time.Minute).Unix(),
		"jti": fmt.Sprintf("jti-%d-%d", now.UnixNano(), jtiSeq.Add(1)),
	}
	if edit != nil {
		edit(c)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	s, err := josejwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var jtiSeq atomic.Int64

// backendToken asks for a client_credentials token with an assertion.
func (e *env) backendToken(t testing.TB, client, scope, assertion string) (int, map[string]any) {
	t.Helper()
	return e.post(t, "/oauth2/token", url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	})
}

// lockedBuffer collects logs from concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
