package main

import (
	"context"
	"encoding/json"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/http/cookiejar"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
)

// TestInvitationEndToEnd runs an invitation through the real wiring in
// development mode: a parent invites a helper, the e-mail lands in the
// outbox (the log names only the file), the helper opens the link, signs
// in with the development login and is bound and in the team; the link
// then answers 410.
func TestInvitationEndToEnd(t *testing.T) {
	db := pgtest.URL(t)
	dataDir := t.TempDir()
	m := NewMain()
	var logs syncBuffer
	m.LogOutput = &logs
	if err := m.ParseFlags([]string{"-dev", "-demo", "-addr", "127.0.0.1:0", "-database-url", db, "-data-dir", dataDir}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	origin := "http://" + m.Addr()
	pool, err := pgxpool.New(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := postgres.NewOAuth(pool)
	anna, err := oauth.Mint(context.Background(), st, oauth.MintRequest{As: "Person/demo-anna", Scope: "user/*.cruds"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	admin, err := oauth.Mint(context.Background(), st, oauth.MintRequest{As: oauth.DevAdminClient, Scope: "system/*.cruds"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	status, _, task := call(t, http.MethodPost, origin+"/fhir/Patient/demo-sara/$invite", `{"resourceType":"Parameters","parameter":[
		{"name":"email","valueString":"eva@example.org"},{"name":"name","valueString":"Eva Smit"},
		{"name":"role","valueCode":"speech-therapist"},{"name":"section","valueCode":"observations"}]}`,
		"Authorization: Bearer "+anna, "Content-Type: application/fhir+json")
	if status != http.StatusCreated {
		t.Fatalf("invite: %d %v", status, task)
	}
	files, err := filepath.Glob(filepath.Join(dataDir, "outbox", "*.eml"))
	if err != nil || len(files) != 1 {
		t.Fatalf("outbox: %v %v", files, err)
	}
	link := linkIn(t, files[0], origin)
	token := link[strings.LastIndexByte(link, '/')+1:]
	if strings.Contains(logs.String(), token) {
		t.Error("the log holds the invitation token")
	}
	if !strings.Contains(logs.String(), filepath.Base(files[0])) {
		t.Error("the log does not name the outbox file")
	}

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar}
	page := get(t, browser, link, http.StatusOK)
	if !strings.Contains(page, "Eva Smit") || !strings.Contains(page, "Logopedist") {
		t.Errorf("the invitation page does not say who is invited as what:\n%s", page)
	}
	form := url.Values{"i": {field(t, page, "i")}, "csrf": {field(t, page, "csrf")}, "dev_account": {"eva.smit"}}
	res, err := browser.PostForm(origin+"/oauth2/login", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "Welkom") {
		t.Fatalf("accept: %d\n%s", res.StatusCode, body)
	}
	admin = "Authorization: Bearer " + admin
	_, _, found := call(t, http.MethodGet, origin+"/fhir/Practitioner?identifier="+url.QueryEscape(oauth.DevIdentifierSystem+"|eva.smit"), "", admin)
	if found["total"] != nil && found["total"].(float64) != 1 || len(found["entry"].([]any)) != 1 {
		t.Fatalf("the bound Practitioner: %v", found)
	}
	practitioner := "Practitioner/" + found["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)["id"].(string)
	_, _, team := call(t, http.MethodGet, origin+"/fhir/CareTeam/demo-team-sara", "", admin)
	if !strings.Contains(mustMarshal(t, team), `"reference":"`+practitioner+`"`) {
		t.Errorf("%s is not in Sara's team: %v", practitioner, team)
	}
	_, _, done := call(t, http.MethodGet, origin+"/fhir/Task/"+task["id"].(string), "", admin)
	if done["status"] != "completed" || !strings.Contains(mustMarshal(t, done["businessStatus"]), `"accepted"`) {
		t.Errorf("the invitation after acceptance: %v", done)
	}
	// The link is used up; a made-up one is unknown.
	get(t, browser, link, http.StatusGone)
	get(t, browser, origin+"/invite/made-up", http.StatusNotFound)
}

// linkIn returns the invitation link in the .eml file.
func linkIn(tb testing.TB, path, origin string) string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	msg, err := mail.ReadMessage(f)
	if err != nil {
		tb.Fatal(err)
	}
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(msg.Body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		tb.Fatal(err)
	}
	link := regexp.MustCompile(regexp.QuoteMeta(origin) + `/invite/[A-Za-z0-9_-]{43}`).FindString(string(b))
	if link == "" {
		tb.Fatalf("no invitation link in the e-mail:\n%s", b)
	}
	return link
}

// get fetches url with c and checks the status; it returns the body.
func get(tb testing.TB, c *http.Client, url string, status int) string {
	tb.Helper()
	res, err := c.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		tb.Fatalf("GET %s: %d, want %d\n%s", url, res.StatusCode, status, b)
	}
	return string(b)
}

// field returns the value of the hidden input name in an HTML page.
func field(tb testing.TB, page, name string) string {
	tb.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		tb.Fatalf("no field %s in\n%s", name, page)
	}
	return m[1]
}

func mustMarshal(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
