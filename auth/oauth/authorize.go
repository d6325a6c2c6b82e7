package oauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ory/fosite"
	"golang.org/x/oauth2"

	"github.com/digitaleouder/ouder/auth/smart"
)

// interaction is an authorization request on its way through the login,
// patient picker and consent pages. It is stored (kind interaction, under
// the hash of its id) so any instance can serve the next page, and it is
// bound to the browser that started it by a cookie.
type interaction struct {
	Browser     string     `json:"browser"` // hash of the browser cookie
	CSRF        string     `json:"csrf"`
	Form        url.Values `json:"form"` // the authorization request
	ClientID    string     `json:"client_id"`
	ClientName  string     `json:"client_name"`
	Scopes      []string   `json:"scopes"` // requested, narrowed to the client's
	RequestedAt time.Time  `json:"requested_at"`
	// An upstream login under way.
	Upstream string `json:"upstream,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	Verifier string `json:"verifier,omitempty"`
	// The signed-in user.
	FHIRUser string    `json:"fhir_user,omitempty"` // relative reference
	IDP      string    `json:"idp,omitempty"`
	AuthTime time.Time `json:"auth_time,omitzero"`
	// The patient picker.
	Patients []person `json:"patients,omitempty"`
	Patient  string   `json:"patient,omitempty"`
	// Invite, for the acceptance of an invitation instead of an
	// authorization request, is the invitation's Task/… (never its token).
	Invite string `json:"invite,omitempty"`
}

const (
	browserCookie   = "ouder_browser"
	devCallbackPath = "/oauth2/dev/callback"
)

// random returns n random bytes, base64url-encoded.
func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

var codeChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// authorize starts an authorization: fosite checks the client, its exact
// redirect URI and the response type; then the SMART rules (PKCE with S256,
// aud, state), and the interaction begins at the login page.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.prune(ctx)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		s.authorizeError(w, r, ar, err)
		return
	}
	form := ar.GetRequestForm()
	client := ar.GetClient().(*fositeClient).c
	// fosite lets a loopback redirect URI differ in its port (RFC 8252);
	// here it must be exactly one that is registered.
	if redirect := form.Get("redirect_uri"); redirect == "" || !slices.Contains(client.RedirectURIs, redirect) {
		s.message(w, r, http.StatusBadRequest, "Ongeldig verzoek", "Invalid request",
			"De app gebruikt een terugstuuradres dat niet bij haar registratie hoort.",
			"The app used a redirect URI that is not registered for it.")
		return
	}
	var refuse error
	switch {
	case form.Get("request") != "" || form.Get("request_uri") != "":
		refuse = fosite.ErrRequestNotSupported.WithHint("Request objects are not supported.")
	case form.Get("state") == "":
		refuse = fosite.ErrInvalidState.WithHint("The state parameter is required.")
	case form.Get("code_challenge_method") != "S256":
		refuse = fosite.ErrInvalidRequest.WithHint("PKCE is required with code_challenge_method=S256; plain is not allowed.")
	case !codeChallenge.MatchString(form.Get("code_challenge")):
		refuse = fosite.ErrInvalidRequest.WithHint("code_challenge must be a base64url-encoded SHA-256 hash (43 characters).")
	case strings.TrimSuffix(form.Get("aud"), "/") != s.base:
		refuse = fosite.ErrInvalidRequest.WithHintf("aud must be this server's FHIR base URL, %s.", s.base)
	case slices.Contains(strings.Fields(form.Get("prompt")), "none"):
		refuse = fosite.ErrLoginRequired.WithHint("This server keeps no sign-in session: prompt=none cannot be honoured.")
	}
	if refuse != nil {
		s.authorizeError(w, r, ar, refuse)
		return
	}
	scopes, err := narrow(form.Get("scope"), client.Scope, []smart.Kind{smart.Patient, smart.User}, true)
	if err != nil || len(scopes) == 0 {
		s.authorizeError(w, r, ar, fosite.ErrInvalidScope.WithHint("None of the requested scopes can be granted to this client."))
		return
	}

	browser := s.browserID(w, r)
	id := random(32)
	ia := &interaction{
		Browser:     handle(browser),
		CSRF:        random(32),
		Form:        form,
		ClientID:    client.ID,
		ClientName:  cmpOr(client.Name, client.ID),
		Scopes:      scopes,
		RequestedAt: s.now().UTC().Truncate(time.Second),
	}
	if err := s.saveInteraction(ctx, id, ia, true); err != nil {
		s.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	// With one upstream provider and no development login there is
	// nothing to choose: go straight to the provider.
	if len(s.upstreams) == 1 && !s.cfg.Dev {
		for name := range s.upstreams {
			s.startUpstream(w, r, id, ia, name)
			return
		}
	}
	http.Redirect(w, r, "/oauth2/login?i="+url.QueryEscape(id), http.StatusSeeOther)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// authorizeError answers an authorization request with err: to the
// client's redirect URI when fosite validated it, else as a page.
func (s *Server) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) && rfc.CodeField >= 500 {
		s.log.ErrorContext(r.Context(), "oauth: authorize", slog.String("error", rfc.Error()), slog.String("debug", rfc.DebugField))
	}
	if ar == nil || !ar.IsRedirectURIValid() {
		s.message(w, r, http.StatusBadRequest, "Ongeldig verzoek", "Invalid request",
			"De app stuurde een verzoek dat niet klopt. Probeer het opnieuw vanuit de app.",
			"The app sent an invalid request ("+errorName(err)+"). Try again from the app.")
		return
	}
	s.provider.WriteAuthorizeError(r.Context(), w, ar, err)
}

func errorName(err error) string {
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) {
		return rfc.ErrorField
	}
	return "invalid_request"
}

// browserID returns the browser's id from its cookie, setting a new one
// when there is none.
func (s *Server) browserID(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(browserCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	v := random(32)
	http.SetCookie(w, &http.Cookie{
		Name:     browserCookie,
		Value:    v,
		Path:     "/oauth2/",
		HttpOnly: true,
		Secure:   strings.HasPrefix(s.issuer, "https://"),
		SameSite: http.SameSiteLaxMode,
	})
	return v
}

func (s *Server) saveInteraction(ctx context.Context, id string, ia *interaction, create bool) error {
	data, err := json.Marshal(ia)
	if err != nil {
		return err
	}
	if create {
		h := handle(id)
		return s.st.CreateSession(ctx, kindInteraction, h, h, "", data, s.now().Add(interactionLifespan))
	}
	return s.st.UpdateSession(ctx, kindInteraction, handle(id), data)
}

// loadInteraction returns the interaction id of this browser, or shows
// why there is none and returns nil.
func (s *Server) loadInteraction(w http.ResponseWriter, r *http.Request, id string) *interaction {
	fail := func() *interaction {
		s.message(w, r, http.StatusBadRequest, "Verlopen of ongeldig", "Expired or invalid",
			"Deze aanmelding is verlopen of hoort niet bij deze browser. Begin opnieuw vanuit de app.",
			"This sign-in has expired or belongs to another browser. Start again from the app.")
		return nil
	}
	if id == "" {
		return fail()
	}
	data, _, active, exp, err := s.st.Session(r.Context(), kindInteraction, handle(id))
	if isNotFound(err) || (err == nil && (!active || !exp.After(s.now()))) {
		return fail()
	}
	if err != nil {
		s.internalError(w, r, err)
		return nil
	}
	var ia interaction
	if err := json.Unmarshal(data, &ia); err != nil {
		s.internalError(w, r, err)
		return nil
	}
	c, err := r.Cookie(browserCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(handle(c.Value)), []byte(ia.Browser)) != 1 {
		return fail()
	}
	return &ia
}

// postedInteraction returns the interaction of a form POST after checking
// its CSRF token.
func (s *Server) postedInteraction(w http.ResponseWriter, r *http.Request) (string, *interaction) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.message(w, r, http.StatusBadRequest, "Ongeldig verzoek", "Invalid request", "Het formulier kon niet worden gelezen.", "The form could not be read.")
		return "", nil
	}
	id := r.PostForm.Get("i")
	ia := s.loadInteraction(w, r, id)
	if ia == nil {
		return "", nil
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(ia.CSRF)) != 1 {
		s.message(w, r, http.StatusForbidden, "Ongeldig formulier", "Invalid form",
			"Dit formulier is niet van deze aanmelding. Begin opnieuw vanuit de app.",
			"This form does not belong to this sign-in. Start again from the app.")
		return "", nil
	}
	return id, ia
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "oauth: internal error", slog.String("error", err.Error()))
	s.message(w, r, http.StatusInternalServerError, "Er ging iets mis", "Something went wrong",
		"Probeer het later opnieuw.", "Please try again later.")
}

// loginPage shows the upstream providers and, in development mode, the
// demo family's people.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("i")
	ia := s.loadInteraction(w, r, id)
	if ia == nil {
		return
	}
	p := page{Title: "Inloggen", Interaction: id, CSRF: ia.CSRF, ClientName: ia.ClientName}
	for _, name := range sortedKeys(s.upstreams) {
		p.Upstreams = append(p.Upstreams, s.upstreams[name].Upstream)
	}
	if s.cfg.Dev {
		people, err := demoPeople(r.Context(), s.cfg.Lookup)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		p.People = people
	}
	s.render(w, r, http.StatusOK, "login.html", p)
}

// login signs in with the development login, or sends the browser to an
// upstream provider.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	id, ia := s.postedInteraction(w, r)
	if ia == nil {
		return
	}
	if name := r.PostForm.Get("provider"); name != "" {
		if s.upstreams[name] == nil {
			s.message(w, r, http.StatusBadRequest, "Onbekende aanbieder", "Unknown provider", "Kies een van de aanbieders.", "Choose one of the providers.")
			return
		}
		s.startUpstream(w, r, id, ia, name)
		return
	}
	if ia.Invite != "" {
		s.devInviteLogin(w, r, id, ia)
		return
	}
	if account := r.PostForm.Get("dev_account"); s.cfg.Dev && account != "" {
		s.devAccountLogin(w, r, id, ia, account)
		return
	}
	ref := r.PostForm.Get("person")
	if !s.cfg.Dev || ref == "" {
		s.message(w, r, http.StatusBadRequest, "Ongeldig verzoek", "Invalid request", "Kies hoe u wilt inloggen.", "Choose how to sign in.")
		return
	}
	ok, err := isDemoPerson(r.Context(), s.cfg.Lookup, ref)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if !ok {
		s.message(w, r, http.StatusBadRequest, "Onbekende persoon", "Unknown person",
			"Met de ontwikkellogin kunt u alleen inloggen als iemand uit het demogezin.",
			"The development login only signs in as a person of the demo family.")
		return
	}
	ia.FHIRUser, ia.IDP, ia.AuthTime = ref, "development", s.now().UTC().Truncate(time.Second)
	s.log.InfoContext(r.Context(), "oauth: development login", slog.String("fhir_user", ref), slog.String("client_id", ia.ClientID))
	s.afterLogin(w, r, id, ia)
}

// startUpstream sends the browser to the upstream provider's login, with
// PKCE, a nonce and the interaction id as state.
func (s *Server) startUpstream(w http.ResponseWriter, r *http.Request, id string, ia *interaction, name string) {
	u := s.upstreams[name]
	p, err := u.discover(r.Context(), s.client, s.now())
	if err != nil {
		s.log.ErrorContext(r.Context(), "oauth: upstream unavailable", slog.String("upstream", name), slog.String("error", err.Error()))
		s.message(w, r, http.StatusServiceUnavailable, "Inloggen niet bereikbaar", "Sign-in unavailable",
			"De inlogdienst "+u.DisplayName+" is nu niet bereikbaar. Probeer het later opnieuw.",
			"The sign-in service "+u.DisplayName+" cannot be reached now. Please try again later.")
		return
	}
	ia.Upstream, ia.Nonce, ia.Verifier = name, random(24), oauth2.GenerateVerifier()
	if err := s.saveInteraction(r.Context(), id, ia, false); err != nil {
		s.internalError(w, r, err)
		return
	}
	target := u.config(p, s.issuer+"/oauth2/callback").AuthCodeURL(id, oidc.Nonce(ia.Nonce), oauth2.S256ChallengeOption(ia.Verifier))
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// callback finishes an upstream login: the code is exchanged (with the
// PKCE verifier), the ID token verified (issuer, audience, signature,
// expiry, nonce), and the upstream subject bound to a fhirUser.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("state")
	ia := s.loadInteraction(w, r, id)
	if ia == nil {
		return
	}
	u := s.upstreams[ia.Upstream]
	if u == nil || ia.Verifier == "" {
		s.message(w, r, http.StatusBadRequest, "Ongeldig verzoek", "Invalid request", "Er is geen inlogpoging bezig.", "No sign-in is under way.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.log.InfoContext(r.Context(), "oauth: upstream login refused", slog.String("upstream", u.Name), slog.String("error", e))
		s.message(w, r, http.StatusUnauthorized, "Inloggen mislukt", "Sign-in failed",
			"Inloggen bij "+u.DisplayName+" is niet gelukt.", "Signing in at "+u.DisplayName+" did not succeed.")
		return
	}
	ctx := oidc.ClientContext(r.Context(), s.client)
	p, err := u.discover(ctx, s.client, s.now())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	tok, err := u.config(p, s.issuer+"/oauth2/callback").Exchange(ctx, q.Get("code"), oauth2.VerifierOption(ia.Verifier))
	if err != nil {
		s.log.WarnContext(r.Context(), "oauth: upstream code exchange failed", slog.String("upstream", u.Name), slog.String("error", err.Error()))
		s.message(w, r, http.StatusUnauthorized, "Inloggen mislukt", "Sign-in failed",
			"Inloggen bij "+u.DisplayName+" is niet gelukt.", "Signing in at "+u.DisplayName+" did not succeed.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: u.ClientID, Now: s.now}).Verify(ctx, raw)
	if err == nil && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ia.Nonce)) != 1 {
		err = errors.New("nonce does not match")
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "oauth: upstream ID token refused", slog.String("upstream", u.Name), slog.String("error", err.Error()))
		s.message(w, r, http.StatusUnauthorized, "Inloggen mislukt", "Sign-in failed",
			"Het antwoord van "+u.DisplayName+" klopte niet.", "The answer of "+u.DisplayName+" was not valid.")
		return
	}
	if ia.Invite != "" {
		s.acceptInvitation(w, r, id, ia, u.IdentifierSystem, idt.Subject)
		return
	}
	ref, err := bindUser(r.Context(), s.cfg.Lookup, u.IdentifierSystem, idt.Subject)
	if errors.Is(err, errNoAccount) || errors.Is(err, errAmbiguousAccount) {
		s.log.InfoContext(r.Context(), "oauth: upstream login not bound", slog.String("upstream", u.Name), slog.String("reason", err.Error()))
		s.message(w, r, http.StatusForbidden, "Geen toegang", "No access",
			"U bent ingelogd bij "+u.DisplayName+", maar uw account is (nog) niet gekoppeld aan een dossier in Digitale Ouder. Neem contact op met de dossierhouder.",
			"You signed in at "+u.DisplayName+", but your account is not linked to a record in Digitale Ouder. Please contact the file holder.")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	ia.FHIRUser, ia.IDP, ia.AuthTime = ref, u.Issuer, s.now().UTC().Truncate(time.Second)
	ia.Nonce, ia.Verifier = "", ""
	s.log.InfoContext(r.Context(), "oauth: upstream login", slog.String("upstream", u.Name), slog.String("fhir_user", ref), slog.String("client_id", ia.ClientID))
	s.afterLogin(w, r, id, ia)
}

// afterLogin goes on to the patient picker when the app asked for a
// patient and the user has more than one, else to the consent page.
func (s *Server) afterLogin(w http.ResponseWriter, r *http.Request, id string, ia *interaction) {
	ia.Patients, ia.Patient = nil, ""
	next := "/oauth2/consent"
	if slices.Contains(ia.Scopes, scopeLaunchPatient) {
		patients, err := patientsOf(r.Context(), s.cfg.Lookup, ia.FHIRUser)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		switch len(patients) {
		case 0:
			s.finishWithError(w, r, id, ia, fosite.ErrAccessDenied.WithHint("The user has no patient to choose for launch/patient."))
			return
		case 1:
			ia.Patient = patients[0].ID
		default:
			ia.Patients = patients
			next = "/oauth2/patient"
		}
	}
	if err := s.saveInteraction(r.Context(), id, ia, false); err != nil {
		s.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, next+"?i="+url.QueryEscape(id), http.StatusSeeOther)
}

// patientPage shows the patient picker.
func (s *Server) patientPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("i")
	ia := s.loadInteraction(w, r, id)
	if ia == nil {
		return
	}
	if ia.FHIRUser == "" || len(ia.Patients) == 0 {
		http.Redirect(w, r, "/oauth2/login?i="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "patient.html", page{Title: "Kies een kind", Interaction: id, CSRF: ia.CSRF, ClientName: ia.ClientName, Patients: ia.Patients})
}

// choosePatient records the chosen patient: one of those offered.
func (s *Server) choosePatient(w http.ResponseWriter, r *http.Request) {
	id, ia := s.postedInteraction(w, r)
	if ia == nil {
		return
	}
	chosen := r.PostForm.Get("patient")
	if ia.FHIRUser == "" || !slices.ContainsFunc(ia.Patients, func(p person) bool { return p.ID == chosen }) {
		s.message(w, r, http.StatusBadRequest, "Ongeldige keuze", "Invalid choice", "Kies een van de kinderen in de lijst.", "Choose one of the children in the list.")
		return
	}
	ia.Patient = chosen
	if err := s.saveInteraction(r.Context(), id, ia, false); err != nil {
		s.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, "/oauth2/consent?i="+url.QueryEscape(id), http.StatusSeeOther)
}

// consentPage lists the requested scopes in words, each with a checkbox.
func (s *Server) consentPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("i")
	ia := s.loadInteraction(w, r, id)
	if ia == nil {
		return
	}
	if ia.FHIRUser == "" || (slices.Contains(ia.Scopes, scopeLaunchPatient) && ia.Patient == "") {
		http.Redirect(w, r, "/oauth2/login?i="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}
	p := page{Title: "Toegang geven", Interaction: id, CSRF: ia.CSRF, ClientName: ia.ClientName,
		UserName: displayName(r.Context(), s.cfg.Lookup, ia.FHIRUser)}
	if ia.Patient != "" {
		p.PatientName = displayName(r.Context(), s.cfg.Lookup, "Patient/"+ia.Patient)
	}
	for _, sc := range ia.Scopes {
		p.Scopes = append(p.Scopes, describe(sc))
	}
	s.render(w, r, http.StatusOK, "consent.html", p)
}

// consent grants the ticked scopes (only ones that were requested), or
// denies.
func (s *Server) consent(w http.ResponseWriter, r *http.Request) {
	id, ia := s.postedInteraction(w, r)
	if ia == nil {
		return
	}
	if ia.FHIRUser == "" || (slices.Contains(ia.Scopes, scopeLaunchPatient) && ia.Patient == "") {
		http.Redirect(w, r, "/oauth2/login?i="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		s.log.InfoContext(r.Context(), "oauth: consent denied", slog.String("fhir_user", ia.FHIRUser), slog.String("client_id", ia.ClientID))
		s.finishWithError(w, r, id, ia, fosite.ErrAccessDenied.WithHint("The user denied the request."))
		return
	}
	var granted []string
	for _, sc := range r.PostForm["scope"] {
		if slices.Contains(ia.Scopes, sc) && !slices.Contains(granted, sc) {
			granted = append(granted, sc)
		}
	}
	if len(granted) == 0 {
		s.finishWithError(w, r, id, ia, fosite.ErrAccessDenied.WithHint("The user granted no scopes."))
		return
	}
	s.finish(w, r, id, ia, granted)
}

// replay rebuilds the stored authorization request, so fosite checks it
// again (the client may have been removed meanwhile).
func (s *Server) replay(ctx context.Context, ia *interaction) (fosite.AuthorizeRequester, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.issuer+"/oauth2/authorize?"+ia.Form.Encode(), nil)
	if err != nil {
		return nil, err
	}
	return s.provider.NewAuthorizeRequest(ctx, req)
}

// finish issues the authorization code for granted and sends the browser
// back to the app. The interaction is used up.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, id string, ia *interaction, granted []string) {
	ctx := r.Context()
	ar, err := s.replay(ctx, ia)
	if err != nil {
		s.authorizeError(w, r, ar, err)
		return
	}
	if !s.useInteraction(w, r, id) {
		return
	}
	for _, sc := range granted {
		ar.GrantScope(sc)
	}
	ar.GrantAudience(s.base)
	sess := &session{
		Subject:  ia.FHIRUser,
		ClientID: ia.ClientID,
		FHIRUser: s.base + "/" + ia.FHIRUser,
		IDP:      ia.IDP,
		AuthTime: ia.AuthTime,
	}
	if slices.Contains(granted, scopeLaunchPatient) {
		sess.Patient = ia.Patient
	}
	claims := sess.IDTokenClaims()
	claims.AuthTime, claims.RequestedAt = ia.AuthTime, ia.RequestedAt
	if slices.Contains(granted, scopeFHIRUser) {
		claims.Extra = map[string]any{"fhirUser": sess.FHIRUser}
	}
	resp, err := s.provider.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		s.authorizeError(w, r, ar, err)
		return
	}
	s.log.InfoContext(ctx, "oauth: authorization granted", slog.String("fhir_user", ia.FHIRUser), slog.String("client_id", ia.ClientID),
		slog.String("scope", strings.Join(granted, " ")), slog.String("patient", sess.Patient))
	s.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// finishWithError ends the interaction and sends the browser back to the
// app with err.
func (s *Server) finishWithError(w http.ResponseWriter, r *http.Request, id string, ia *interaction, err error) {
	ctx := r.Context()
	ar, rerr := s.replay(ctx, ia)
	if rerr != nil {
		s.authorizeError(w, r, ar, rerr)
		return
	}
	if !s.useInteraction(w, r, id) {
		return
	}
	s.provider.WriteAuthorizeError(ctx, w, ar, err)
}

// useInteraction ends the interaction id. Of two concurrent submissions
// only one gets through; the other is shown why it cannot go on.
func (s *Server) useInteraction(w http.ResponseWriter, r *http.Request, id string) bool {
	err := s.st.DeactivateSession(r.Context(), kindInteraction, handle(id))
	switch {
	case isConflict(err) || isNotFound(err):
		s.message(w, r, http.StatusBadRequest, "Al afgerond", "Already done",
			"Deze aanmelding is al afgerond. Begin opnieuw vanuit de app.",
			"This sign-in has already been completed. Start again from the app.")
		return false
	case err != nil:
		s.internalError(w, r, err)
		return false
	}
	return true
}

// devCallback shows the code an authorization gave the development demo
// app, so the flow can be tried by hand (development mode only).
func (s *Server) devCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		s.message(w, r, http.StatusOK, "Geen toegang gegeven", "No access given", "Antwoord: "+e+" "+q.Get("error_description"), "")
		return
	}
	s.render(w, r, http.StatusOK, "message.html", page{Title: "Autorisatiecode", TitleEN: "Authorization code",
		Message:   "Wissel deze code binnen vijf minuten in bij /oauth2/token, met de code_verifier van uw verzoek.",
		MessageEN: "Exchange this code at /oauth2/token within five minutes, with your request's code_verifier.",
		Code:      q.Get("code"), State: q.Get("state")})
}
