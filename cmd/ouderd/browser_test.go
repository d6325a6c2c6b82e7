package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/oauth2"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
)

// chromiumEnv names a Chromium (or Chrome) binary other than /usr/bin/chromium.
const chromiumEnv = "OUDER_CHROMIUM"

// appScope is what the test app asks for, and may have.
const appScope = "launch/patient openid fhirUser offline_access patient/*.rs"

// TestBrowserSignIn drives the sign-in pages of the built-in authorization
// server (development login, patient picker, consent) in a real headless
// Chromium, as a person does, for a SMART app the test plays itself: the real
// ouderd wiring (Main with -dev -demo on port 0) on its own database, an app
// registered as a public client with a loopback redirect URI that the test
// serves, the authorization code flow with PKCE, and the FHIR API read with
// the token the app gets. On every page it checks what makes the page usable
// without a mouse and without good eyes (see checkAccessible). Chromium comes
// from Debian's chromium package and axe-core from npm, both installed by
// .ci/deps (make test runs it).
func TestBrowserSignIn(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	axe := axeSource(t)
	srv := startDemoServer(t)
	app := registerLoopbackApp(t, srv)
	browser := startChromium(t, chromium)

	t.Run("allow", func(t *testing.T) {
		tab := newTab(t, browser)
		verifier := oauth2.GenerateVerifier()
		state := "state-" + oauth2.GenerateVerifier()[:16]
		navigate(t, tab, app.authCodeURL(state, verifier), "/oauth2/login")
		checkAccessible(t, tab, axe, "login")
		radios, err := chromedp.Run(tab, axTreeAction)
		if err != nil {
			t.Fatal(err)
		}
		for _, who := range []string{"Anna Jansen", "Bram de Vries", "Marieke van Dijk", "Lisa Visser", "Sara", "Daan"} {
			if !slices.ContainsFunc(radios, func(n axNode) bool { return n.role == "radio" && strings.HasPrefix(n.name, who) }) {
				t.Errorf("the development login does not offer %s of the demo family", who)
			}
		}

		// The development login, by the radio button's accessible name:
		// Anna's sign-in identity (a Person linked to both children).
		click(t, tab, "radio", "Anna Jansen", "inlogidentiteit")
		submit(t, tab, "/oauth2/patient", "button", "Inloggen als deze persoon")
		checkAccessible(t, tab, axe, "patient picker")

		// The picker offers both children; Sara is chosen until Daan is.
		if got := checkedState(t, tab, "radio", "Sara"); got != "true" {
			t.Errorf("Sara's radio button: checked %q, want the first child chosen", got)
		}
		click(t, tab, "radio", "Daan")
		if got := checkedState(t, tab, "radio", "Daan"); got != "true" {
			t.Fatalf("Daan's radio button: checked %q after a click on it", got)
		}
		submit(t, tab, "/oauth2/consent", "button", "Verder")
		checkAccessible(t, tab, axe, "consent")

		// The consent page by keyboard only: Tab to the offline_access
		// checkbox, Space to untick it, Tab to "Toestaan", Enter.
		tabTo(t, tab, "checkbox", "offline_access")
		key(t, tab, " ")
		if got := checkedState(t, tab, "checkbox", "offline_access"); got != "false" {
			t.Fatalf("offline_access checkbox: checked %q after Space, want false", got)
		}
		for _, s := range []string{"launch/patient", "openid", "fhirUser", "patient/*.rs"} {
			if got := checkedState(t, tab, "checkbox", s); got != "true" {
				t.Errorf("%s checkbox: checked %q, want still ticked", s, got)
			}
		}
		tabTo(t, tab, "button", "Toestaan")
		back := app.await(t, tab, chromedp.KeyEvent(kb.Enter))

		if back.Get("state") != state || back.Get("error") != "" || back.Get("code") == "" {
			t.Fatalf("the app got %v, want a code and state %s", back, state)
		}
		tok, err := app.config.Exchange(context.Background(), back.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("token exchange: %v", err)
		}
		if got := tok.Extra("patient"); got != "demo-daan" {
			t.Errorf("patient %v, want demo-daan (the child picked)", got)
		}
		scopes := strings.Fields(fmt.Sprint(tok.Extra("scope")))
		slices.Sort(scopes)
		if want := []string{"fhirUser", "launch/patient", "openid", "patient/*.rs"}; !slices.Equal(scopes, want) {
			t.Errorf("scope %v, want %v (offline_access unticked)", scopes, want)
		}
		if tok.RefreshToken != "" {
			t.Error("a refresh token although offline_access was unticked")
		}
		if exp, ok := tok.Extra("expires_in").(float64); !ok || exp <= 0 || exp > 3600 {
			t.Errorf("expires_in %v, want 1 to 3600", tok.Extra("expires_in"))
		}
		checkIDToken(t, srv, app.config.ClientID, tok, srv.base+"/Person/demo-anna")

		// The token reads the picked child's record and nothing of the
		// other child's.
		if status, body := fhirGet(t, srv.base+"/Patient/demo-daan", tok.AccessToken); status != http.StatusOK || !strings.Contains(body, `"id":"demo-daan"`) {
			t.Errorf("GET Patient/demo-daan: %d %s, want 200 with Daan", status, body)
		}
		if status, body := fhirGet(t, srv.base+"/Patient/demo-sara", tok.AccessToken); status != http.StatusNotFound && status != http.StatusForbidden {
			t.Errorf("GET Patient/demo-sara with Daan's token: %d %s, want 404 or 403", status, body)
		}
	})

	t.Run("deny", func(t *testing.T) {
		tab := newTab(t, browser)
		state := "state-" + oauth2.GenerateVerifier()[:16]
		navigate(t, tab, app.authCodeURL(state, oauth2.GenerateVerifier()), "/oauth2/login")
		click(t, tab, "radio", "Bram de Vries", "inlogidentiteit")
		submit(t, tab, "/oauth2/patient", "button", "Inloggen als deze persoon")
		click(t, tab, "radio", "Sara")
		submit(t, tab, "/oauth2/consent", "button", "Verder")
		back := app.await(t, tab, clickAction("button", "Weigeren"))
		if back.Get("error") != "access_denied" || back.Get("state") != state || back.Get("code") != "" {
			t.Errorf("refusing consent brought the app %v, want error=access_denied and state %s without a code", back, state)
		}
	})
}

// findChromium returns the Chromium binary: $OUDER_CHROMIUM, or Debian's
// /usr/bin/chromium, or one on PATH. Without one the test fails and says how
// to install it; it never skips.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(chromiumEnv); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s=%s: %v", chromiumEnv, p, err)
		}
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no Chromium found for the browser test: run .ci/deps (as root it runs apt-get install -y chromium; make test runs it), " +
		"or install Debian's chromium package yourself, or set " + chromiumEnv + " to a Chromium binary")
	return ""
}

// axeSource returns axe-core, installed by .ci/deps into .ci/node_modules at
// the version .ci/package-lock.json pins.
func axeSource(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
	b, err := os.ReadFile(filepath.Join(dir, ".ci", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatalf("axe-core is not installed (%v): run .ci/deps (make test runs it), which runs npm ci in .ci", err)
	}
	return string(b)
}

// demoServer is ouderd started with -dev -demo on a loopback port.
type demoServer struct {
	origin string // http://127.0.0.1:port, the issuer
	base   string // the FHIR base
	db     string
}

// startDemoServer runs the real ouderd wiring in development mode with the
// demo family on a database of its own; its logs are shown when the test
// fails.
func startDemoServer(t *testing.T) *demoServer {
	t.Helper()
	db := pgtest.URL(t)
	m := NewMain()
	logs := &syncBuffer{}
	m.LogOutput = logs
	if err := m.ParseFlags([]string{"-dev", "-demo", "-addr", "127.0.0.1:0", "-database-url", db}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("ouderd: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("ouderd Close: %v", err)
		}
		if t.Failed() {
			t.Logf("ouderd logs:\n%s", logs.String())
		}
	})
	if !strings.Contains(logs.String(), "demo family present") {
		t.Fatalf("ouderd -demo did not load the demo family:\n%s", logs.String())
	}
	origin := "http://" + m.Addr()
	return &demoServer{origin: origin, base: origin + "/fhir", db: db}
}

// loopbackApp is the SMART app the test plays: a public client whose
// redirect URI is a loopback server of the test's, which hands every
// redirect it receives to the test.
type loopbackApp struct {
	config   oauth2.Config
	base     string
	redirect chan url.Values
}

// registerLoopbackApp starts the app's redirect endpoint and registers the
// app with the authorization server (as ouderctl clients add does).
func registerLoopbackApp(t *testing.T, srv *demoServer) *loopbackApp {
	t.Helper()
	app := &loopbackApp{base: srv.base, redirect: make(chan url.Values, 4)}
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		select {
		case app.redirect <- r.URL.Query():
		default:
			t.Errorf("the app received more redirects than it awaited: %s", r.URL)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!DOCTYPE html><html lang="en"><title>Test app</title><h1>Back at the app</h1></html>`)
	}))
	t.Cleanup(cb.Close)

	pool, err := pgxpool.New(context.Background(), srv.db)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	client := oauth.Client{ID: "browser-test-app", Name: "Testapp", Kind: oauth.Public,
		RedirectURIs: []string{cb.URL + "/callback"}, Scope: appScope}
	if err := oauth.AddClient(context.Background(), postgres.NewOAuth(pool), client, time.Now()); err != nil {
		t.Fatal(err)
	}
	app.config = oauth2.Config{
		ClientID:    client.ID,
		RedirectURL: client.RedirectURIs[0],
		Scopes:      strings.Fields(appScope),
		Endpoint: oauth2.Endpoint{
			AuthURL:   srv.origin + "/oauth2/authorize",
			TokenURL:  srv.origin + "/oauth2/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	return app
}

// authCodeURL is the SMART authorization request: code flow, PKCE S256,
// aud the FHIR base.
func (a *loopbackApp) authCodeURL(state, verifier string) string {
	return a.config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", a.base))
}

// await runs action in the tab, which must end the sign-in with a redirect
// back to the app, and returns the redirect's query.
func (a *loopbackApp) await(t *testing.T, tab context.Context, action chromedp.Action[chromedp.Void]) url.Values {
	t.Helper()
	resp, err := chromedp.RunResponse(tab, action)
	if err != nil {
		t.Fatalf("back to the app: %v", err)
	}
	if !strings.HasPrefix(resp.URL, a.config.RedirectURL+"?") {
		t.Fatalf("landed on %s (%d), want the app's redirect URI %s", resp.URL, resp.Status, a.config.RedirectURL)
	}
	select {
	case q := <-a.redirect:
		return q
	case <-tab.Done():
		t.Fatalf("the app received no redirect: %v", tab.Err())
		return nil
	}
}

// startChromium starts the one headless Chromium of the test binary with
// the flags that work in a root container without network, and a fresh
// profile. It returns a context that tabs are made from.
func startChromium(t *testing.T, path string) context.Context {
	t.Helper()
	out := &syncBuffer{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
		chromedp.CombinedOutput(out),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for Chromium to exit, before t.TempDir is removed
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium %s: %v\n%s", path, err, out.String())
	}
	return bctx
}

// newTab opens a tab in a browser context of its own (its own cookies), with
// a deadline that stops a hung browser rather than the whole test binary.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatal(err)
	}
	// Keyboard focus behaves as in a window that has the focus.
	if _, err := chromedp.Call(tab, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	tab, cancelTimeout := context.WithTimeout(tab, 2*time.Minute)
	t.Cleanup(cancelTimeout)
	return tab
}

// navigate opens u in the tab and checks that it landed on path with 200.
func navigate(t *testing.T, tab context.Context, u, path string) {
	t.Helper()
	resp, err := chromedp.Run(tab, chromedp.NavigateResponse(u))
	if err != nil {
		t.Fatalf("navigate to %s: %v", u, err)
	}
	checkLanded(t, tab, resp.Status, path)
}

// submit clicks the control with the role and accessible name, which must
// submit a form, and checks that the browser lands on path with 200.
func submit(t *testing.T, tab context.Context, path, role string, name ...string) {
	t.Helper()
	resp, err := chromedp.RunResponse(tab, clickAction(role, name...))
	if err != nil {
		t.Fatalf("%s %q: %v", role, name, err)
	}
	checkLanded(t, tab, resp.Status, path)
}

func checkLanded(t *testing.T, tab context.Context, status int64, path string) {
	t.Helper()
	loc, err := chromedp.Run(tab, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != path || status != http.StatusOK {
		text, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("landed on %s (%d), want %s: %s", loc, status, path, text)
	}
}

// click clicks the element with the role whose accessible name contains
// every part of name.
func click(t *testing.T, tab context.Context, role string, name ...string) {
	t.Helper()
	if err := chromedp.Do(tab, clickAction(role, name...)); err != nil {
		t.Fatalf("click %s %q: %v", role, name, err)
	}
}

// clickAction is a mouse click on the one element with the role whose
// accessible name, as Chromium computes it for assistive technology (from
// the label of a form control, the text of a button), contains every part
// of name: the page is used as a person reads it, not through its ids.
func clickAction(role string, name ...string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		nodes, err := axTree(ctx, tg)
		if err != nil {
			return err
		}
		n, err := findAX(nodes, role, name...)
		if err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tg, dom.ScrollIntoViewIfNeeded, dom.ScrollIntoViewIfNeededParams{BackendNodeID: n.backend}); err != nil {
			return fmt.Errorf("scroll to %s %q: %w", role, n.name, err)
		}
		res, err := cdp.Call(ctx, tg, dom.GetContentQuads, dom.GetContentQuadsParams{BackendNodeID: n.backend})
		if err != nil {
			return fmt.Errorf("where is %s %q: %w", role, n.name, err)
		}
		if len(res.Quads) == 0 || len(res.Quads[0]) != 8 {
			return fmt.Errorf("%s %q is not rendered", role, n.name)
		}
		q := res.Quads[0]
		x, y := (q[0]+q[2]+q[4]+q[6])/4, (q[1]+q[3]+q[5]+q[7])/4
		_, err = chromedp.MouseClickXY(x, y)(ctx, tg)
		return err
	})
}

// key presses a key (kb's names, or a character) in the tab.
func key(t *testing.T, tab context.Context, k string) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.KeyEvent(k)); err != nil {
		t.Fatalf("key %q: %v", k, err)
	}
}

// tabTo presses Tab until the element with the role and a name containing
// every part of name has the keyboard focus.
func tabTo(t *testing.T, tab context.Context, role string, name ...string) {
	t.Helper()
	for range 30 {
		key(t, tab, kb.Tab)
		nodes, err := chromedp.Run(tab, axTreeAction)
		if err != nil {
			t.Fatal(err)
		}
		if f := focusedAX(nodes); f != nil && f.role == role && containsAll(f.name, name) {
			return
		}
	}
	t.Fatalf("30 presses of Tab did not reach the %s %q", role, name)
}

// checkedState returns the "checked" state ("true", "false") that Chromium
// reports to assistive technology for the element with the role and name.
func checkedState(t *testing.T, tab context.Context, role string, name ...string) string {
	t.Helper()
	nodes, err := chromedp.Run(tab, axTreeAction)
	if err != nil {
		t.Fatal(err)
	}
	n, err := findAX(nodes, role, name...)
	if err != nil {
		t.Fatal(err)
	}
	return n.props["checked"]
}

// axNode is a node of Chromium's accessibility tree.
type axNode struct {
	role, name string
	props      map[string]string // states and properties: checked, focused, level, ...
	backend    cdp.BackendNodeID
}

var axTreeAction chromedp.Action[[]axNode] = axTree

// axTree returns the accessibility tree of the tab's page, less the nodes
// that are ignored for assistive technology.
func axTree(ctx context.Context, tg *chromedp.Target) ([]axNode, error) {
	res, err := cdp.Call(ctx, tg, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		return nil, err
	}
	var out []axNode
	for _, n := range res.Nodes {
		if n.Ignored {
			continue
		}
		a := axNode{role: axValue(n.Role), name: strings.Join(strings.Fields(axValue(n.Name)), " "), props: map[string]string{}, backend: n.BackendDOMNodeID}
		for _, p := range n.Properties {
			a.props[string(p.Name)] = axValue(p.Value)
		}
		out = append(out, a)
	}
	return out, nil
}

func axValue(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var x any
	if err := json.Unmarshal([]byte(v.Value), &x); err != nil {
		return string(v.Value)
	}
	return fmt.Sprint(x)
}

// findAX returns the one node with the role whose name contains every part
// of name.
func findAX(nodes []axNode, role string, name ...string) (axNode, error) {
	var found []axNode
	for _, n := range nodes {
		if n.role == role && containsAll(n.name, name) {
			found = append(found, n)
		}
	}
	if len(found) != 1 {
		var names []string
		for _, n := range nodes {
			if n.role == role {
				names = append(names, n.name)
			}
		}
		return axNode{}, fmt.Errorf("%d elements with role %s and a name containing %q; the %ss are named %q", len(found), role, name, role, names)
	}
	return found[0], nil
}

// focusedAX returns the element that has the keyboard focus, nil when none
// has it.
func focusedAX(nodes []axNode) *axNode {
	for i, n := range nodes {
		if n.props["focused"] == "true" && n.role != "RootWebArea" {
			return &nodes[i]
		}
	}
	return nil
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// checkIDToken verifies the token response's id_token as an app does
// (discovery, the issuer's keys, audience) and checks its fhirUser.
func checkIDToken(t *testing.T, srv *demoServer, clientID string, tok *oauth2.Token, fhirUser string) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Error("no id_token although openid was granted")
		return
	}
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, srv.origin)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	var claims struct {
		FHIRUser string `json:"fhirUser"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.FHIRUser != fhirUser {
		t.Errorf("id_token fhirUser %q, want %q", claims.FHIRUser, fhirUser)
	}
}

// fhirGet reads u with the access token.
func fhirGet(t *testing.T, u, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/fhir+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// checkAccessible checks the page in the tab as WCAG 2.1 AA asks, in the
// browser that renders it:
//   - axe-core's wcag2a, wcag2aa, wcag21a, wcag21aa and best-practice rules
//     pass (labels, names, lang, contrast, landmarks, headings, ...);
//   - the html element has a lang, and the page has one level-1 heading;
//   - every form control has an accessible name in Chromium's accessibility
//     tree, and every one is reached with Tab (a radio group is one stop);
//   - each element reached with Tab shows a focus indicator: an outline of
//     at least 2px with a contrast of at least 3:1 to what is behind it;
//   - all text has a contrast of at least 4.5:1 to its background.
func checkAccessible(t *testing.T, tab context.Context, axe, page string) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Evaluate[chromedp.Void](axe)); err != nil {
		t.Fatalf("%s: inject axe-core: %v", page, err)
	}
	if _, err := chromedp.Run(tab, chromedp.Evaluate[chromedp.Void](a11yScript)); err != nil {
		t.Fatalf("%s: inject the checks: %v", page, err)
	}

	res, err := chromedp.Run(tab, chromedp.Evaluate[axeResult](`axe.run(document, {
		runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
	}).then(r => ({passes: r.passes.map(p => p.id), violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
		nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary)}))}))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: axe-core: %v", page, err)
	}
	for _, v := range res.Violations {
		t.Errorf("%s: axe-core %s (%s): %s\n\t%s", page, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n\t"))
	}
	// The rules that matter here must have had something to check.
	for _, rule := range []string{"color-contrast", "label", "html-has-lang", "page-has-heading-one", "button-name"} {
		if !slices.Contains(res.Passes, rule) && !slices.ContainsFunc(res.Violations, func(v axeViolation) bool { return v.ID == rule }) {
			t.Errorf("%s: axe-core rule %s found nothing to check (passed: %v)", page, rule, res.Passes)
		}
	}

	facts, err := chromedp.Run(tab, chromedp.Evaluate[pageFacts](`__a11y.facts()`))
	if err != nil {
		t.Fatalf("%s: %v", page, err)
	}
	if facts.Lang == "" {
		t.Errorf("%s: <html> has no lang", page)
	}
	for _, f := range facts.LowContrast {
		t.Errorf("%s: text contrast %.2f:1 < 4.5:1: %s", page, f.Ratio, f.What)
	}

	nodes, err := chromedp.Run(tab, axTreeAction)
	if err != nil {
		t.Fatal(err)
	}
	var h1 []string
	controls := 0
	for _, n := range nodes {
		switch n.role {
		case "heading":
			if n.props["level"] == "1" {
				h1 = append(h1, n.name)
			}
		case "button", "checkbox", "radio", "textbox", "combobox", "listbox", "searchbox", "spinbutton", "slider", "switch", "link":
			controls++
			if n.name == "" {
				t.Errorf("%s: a %s without an accessible name", page, n.role)
			}
		}
	}
	if len(h1) != 1 || h1[0] == "" {
		t.Errorf("%s: level-1 headings %q, want one with a name", page, h1)
	}
	if controls != facts.Controls {
		t.Errorf("%s: %d form controls in the page, %d in the accessibility tree", page, facts.Controls, controls)
	}

	// Tab through the page from its start.
	seen := map[string]bool{}
	var first string
	for range facts.TabStops + 3 {
		key(t, tab, kb.Tab)
		f, err := chromedp.Run(tab, chromedp.Evaluate[*focusFacts](`__a11y.focused()`))
		if err != nil {
			t.Fatal(err)
		}
		if f == nil {
			continue // focus left the page's elements; the next Tab wraps around
		}
		if f.What == first {
			break
		}
		if first == "" {
			first = f.What
		}
		seen[f.What] = true
		if !f.FocusVisible || f.OutlineStyle == "none" || f.OutlineWidth < 2 || f.Ratio < 3 {
			t.Errorf("%s: no visible focus indicator on %s: :focus-visible %v, outline %s %.1fpx, contrast %.2f:1",
				page, f.What, f.FocusVisible, f.OutlineStyle, f.OutlineWidth, f.Ratio)
		}
	}
	if len(seen) != facts.TabStops || facts.TabStops == 0 {
		t.Errorf("%s: Tab reached %d elements %v, want the %d tab stops of the page's controls", page, len(seen), keys(seen), facts.TabStops)
	}
	t.Logf("%s: %d axe-core rules passed, %d controls named, %d tab stops with a visible focus, %d text elements of at least 4.5:1",
		page, len(res.Passes), controls, len(seen), facts.Texts)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

type axeResult struct {
	Passes     []string // the ids of the rules that passed
	Violations []axeViolation
}

type axeViolation struct {
	ID, Impact, Help string
	Nodes            []string
}

type pageFacts struct {
	Lang        string
	Controls    int // form controls a person can operate
	TabStops    int // of those, the ones Tab stops at (one per radio group)
	Texts       int // elements with text of their own
	LowContrast []struct {
		What  string
		Ratio float64
	}
}

type focusFacts struct {
	What         string
	FocusVisible bool
	OutlineStyle string
	OutlineWidth float64
	Ratio        float64
}

// a11yScript defines __a11y in the page: facts() for the page, focused()
// for the element that has the focus. Colours are composited over the
// backgrounds behind them up to the (white) canvas; the pages use no
// background images.
const a11yScript = `window.__a11y = (() => {
	const parse = c => {
		const m = /rgba?\(([^)]*)\)/.exec(c);
		if (!m) return null;
		const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
		return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
	};
	const over = (top, under) => ({
		r: top.r * top.a + under.r * (1 - top.a),
		g: top.g * top.a + under.g * (1 - top.a),
		b: top.b * top.a + under.b * (1 - top.a), a: 1,
	});
	const background = el => {
		const layers = [];
		for (let e = el; e; e = e.parentElement) {
			const c = parse(getComputedStyle(e).backgroundColor);
			if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
		}
		let bg = {r: 255, g: 255, b: 255, a: 1};
		for (const c of layers.reverse()) bg = over(c, bg);
		return bg;
	};
	const lum = c => {
		const f = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
		return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
	};
	const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
	const visible = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
	const describe = el => el.tagName.toLowerCase() + (el.name ? "[name=" + el.name + "]" : "") + (el.value ? "[value=" + el.value + "]" : "");
	const controls = () => [...document.querySelectorAll("input:not([type=hidden]), button, select, textarea, a[href]")].filter(visible);
	return {
		facts() {
			const cs = controls();
			const groups = new Set();
			let stops = 0;
			for (const c of cs) {
				if (c.type === "radio") { if (!groups.has(c.name)) { groups.add(c.name); stops++; } } else stops++;
			}
			const low = [];
			let texts = 0;
			for (const el of document.body.querySelectorAll("*")) {
				if (!visible(el)) continue;
				const text = [...el.childNodes].filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.textContent).join("").trim();
				if (!text) continue;
				texts++;
				const bg = background(el);
				const fg = parse(getComputedStyle(el).color);
				const r = ratio(over(fg, bg), bg);
				if (r < 4.5) low.push({what: describe(el) + " " + JSON.stringify(text.slice(0, 40)), ratio: r});
			}
			return {lang: document.documentElement.lang, controls: cs.length, tabStops: stops, texts, lowContrast: low};
		},
		focused() {
			const el = document.activeElement;
			if (!el || el === document.body || el === document.documentElement) return null;
			const cs = getComputedStyle(el);
			const oc = parse(cs.outlineColor);
			const bg = background(el.parentElement);
			return {
				what: describe(el),
				focusVisible: el.matches(":focus-visible"),
				outlineStyle: cs.outlineStyle,
				outlineWidth: parseFloat(cs.outlineWidth) || 0,
				ratio: oc ? ratio(over(oc, bg), bg) : 0,
			};
		},
	};
})();`
