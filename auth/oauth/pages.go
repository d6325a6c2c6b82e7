package oauth

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"typeNL": func(t string) string { return userTypeWords[t][0] },
	"typeEN": func(t string) string { return userTypeWords[t][1] },
}).ParseFS(templateFiles, "templates/*.html"))

// userTypeWords names the kinds of fhirUser on the development login.
var userTypeWords = map[string][2]string{
	"Person":        {"inlogidentiteit", "sign-in identity"},
	"RelatedPerson": {"ouder of verzorger", "parent or carer"},
	"Practitioner":  {"hulpverlener", "professional"},
	"Patient":       {"kind", "child"},
}

// page is what every page template gets.
type page struct {
	Title       string
	Dev         bool
	Interaction string
	CSRF        string
	ClientName  string

	// login
	Upstreams []Upstream
	People    []person
	// patient picker
	Patients []person
	// consent
	UserName    string
	PatientName string
	Scopes      []scopeText
	// message
	TitleEN   string
	Message   string
	MessageEN string
	Code      string
	State     string
	// invitation
	Inviter string
	Role    string
	RoleEN  string
	Expires string
}

// staticHandler serves the pages' stylesheet.
func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err)
	}
	fsrv := http.StripPrefix("/oauth2/static/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fsrv.ServeHTTP(w, r)
	})
}

// pageHeaders are sent with every page: no caching (pages carry one-time
// form tokens), no framing (clickjacking of the consent button), no
// scripts, no referrer (the URLs carry interaction ids).
func pageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'")
}

// render writes the page name with status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Dev = s.cfg.Dev
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, p); err != nil {
		s.log.ErrorContext(r.Context(), "oauth: render page", slog.String("page", name), slog.String("error", err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	pageHeaders(w.Header())
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// message shows a page with a message in Dutch and English.
func (s *Server) message(w http.ResponseWriter, r *http.Request, status int, titleNL, titleEN, nl, en string) {
	s.render(w, r, status, "message.html", page{Title: titleNL, TitleEN: titleEN, Message: nl, MessageEN: en})
}
