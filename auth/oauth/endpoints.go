package oauth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/digitaleouder/ouder/auth/smart"
)

// Handler serves the authorization server below the issuer origin:
// /.well-known/openid-configuration and everything under /oauth2/. Form
// posts of the pages are refused when a browser says they come from another
// site (http.CrossOriginProtection) besides their CSRF tokens.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	cop := http.NewCrossOriginProtection()
	page := func(h http.HandlerFunc) http.Handler { return cop.Handler(h) }
	api := func(h http.HandlerFunc) http.Handler { return cors(h) }

	mux.Handle("GET /.well-known/openid-configuration", api(s.openIDConfiguration))
	mux.Handle("OPTIONS /.well-known/openid-configuration", api(s.openIDConfiguration))
	mux.Handle("GET /oauth2/jwks", api(s.jwks))
	mux.Handle("OPTIONS /oauth2/jwks", api(s.jwks))
	mux.Handle("POST /oauth2/token", api(s.token))
	mux.Handle("OPTIONS /oauth2/token", api(s.token))
	mux.Handle("POST /oauth2/introspect", api(s.introspect))
	mux.Handle("OPTIONS /oauth2/introspect", api(s.introspect))
	mux.Handle("POST /oauth2/revoke", api(s.revoke))
	mux.Handle("OPTIONS /oauth2/revoke", api(s.revoke))

	// An authorization request comes from the app's site by design (also
	// as a form post, SMART's authorize-post), so it is not a same-site
	// form; nothing is granted before the person's own pages.
	mux.HandleFunc("GET /oauth2/authorize", s.authorize)
	mux.HandleFunc("POST /oauth2/authorize", s.authorize)
	mux.HandleFunc("GET /oauth2/login", s.loginPage)
	mux.Handle("POST /oauth2/login", page(s.login))
	mux.HandleFunc("GET /oauth2/callback", s.callback)
	mux.HandleFunc("GET /oauth2/patient", s.patientPage)
	mux.Handle("POST /oauth2/patient", page(s.choosePatient))
	mux.HandleFunc("GET /oauth2/consent", s.consentPage)
	mux.Handle("POST /oauth2/consent", page(s.consent))
	mux.Handle("GET /oauth2/static/", staticHandler())
	mux.HandleFunc("GET /invite/{token}", s.invitePage)
	if s.cfg.Dev {
		mux.HandleFunc("GET "+devCallbackPath, s.devCallback)
	}
	return mux
}

// cors lets browser apps call the token, introspection and revocation
// endpoints and read the discovery documents: no credentials are involved
// (no cookies), so any origin may.
func cors(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			hd.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			hd.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h(w, r)
	})
}

// scopesSupported are the scopes the discovery documents list.
var scopesSupported = []string{
	scopeOpenID, scopeFHIRUser, scopeLaunchPatient, scopeOffline, scopeOnline,
	"patient/*.cruds", "patient/*.rs", "patient/*.read", "patient/*.write",
	"user/*.cruds", "user/*.rs", "user/*.read", "user/*.write",
	"system/*.cruds", "system/*.rs", "system/*.read", "system/*.write",
}

// smartCapabilities are the SMART App Launch 2.2 capabilities this server
// has.
var smartCapabilities = []string{
	"launch-standalone",
	"authorize-post",
	"client-public",
	"client-confidential-asymmetric",
	"sso-openid-connect",
	"context-standalone-patient",
	"permission-offline",
	"permission-online",
	"permission-patient",
	"permission-user",
	"permission-v1",
	"permission-v2",
}

func (s *Server) metadata() map[string]any {
	return map[string]any{
		"issuer":                                           s.issuer,
		"jwks_uri":                                         s.issuer + "/oauth2/jwks",
		"authorization_endpoint":                           s.issuer + "/oauth2/authorize",
		"token_endpoint":                                   s.issuer + "/oauth2/token",
		"introspection_endpoint":                           s.issuer + "/oauth2/introspect",
		"revocation_endpoint":                              s.issuer + "/oauth2/revoke",
		"grant_types_supported":                            []string{"authorization_code", "refresh_token", "client_credentials"},
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query"},
		"scopes_supported":                                 scopesSupported,
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{"none", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": assertionAlgs,
		"introspection_endpoint_auth_methods_supported":    []string{"private_key_jwt"},
		"revocation_endpoint_auth_methods_supported":       []string{"none", "private_key_jwt"},
		"id_token_signing_alg_values_supported":            []string{signingAlg},
		"subject_types_supported":                          []string{"public"},
		"claims_supported":                                 []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "fhirUser"},
		"request_parameter_supported":                      false,
		"request_uri_parameter_supported":                  false,
		"authorization_response_iss_parameter_supported":   false,
		"prompt_values_supported":                          []string{"login", "consent"},
		"claims_parameter_supported":                       false,
		"require_pushed_authorization_requests":            false,
		"backchannel_logout_supported":                     false,
		"frontchannel_logout_supported":                    false,
	}
}

// openIDConfiguration serves OpenID Connect Discovery.
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.metadata(), "public, max-age=300")
}

// SMARTConfiguration returns the handler of
// {FHIR base}/.well-known/smart-configuration (SMART App Launch 2.2,
// "Conformance"), for the REST layer to serve without authentication.
// It answers any path ending in /smart-configuration and 404 otherwise.
func (s *Server) SMARTConfiguration() http.Handler {
	return cors(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/smart-configuration") {
			http.NotFound(w, r)
			return
		}
		m := s.metadata()
		keep := []string{"issuer", "jwks_uri", "authorization_endpoint", "token_endpoint", "introspection_endpoint",
			"revocation_endpoint", "grant_types_supported", "response_types_supported", "scopes_supported",
			"code_challenge_methods_supported", "token_endpoint_auth_methods_supported",
			"token_endpoint_auth_signing_alg_values_supported"}
		out := map[string]any{"capabilities": smartCapabilities}
		for _, k := range keep {
			out[k] = m[k]
		}
		writeJSON(w, http.StatusOK, out, "public, max-age=300")
	})
}

// jwks serves the public keys that verify this server's tokens.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	set, err := s.keys.jwks(r.Context())
	if err != nil {
		s.log.ErrorContext(r.Context(), "oauth: jwks", slog.String("error", err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// Short caching: a rotated key must reach verifiers soon.
	writeJSON(w, http.StatusOK, set, "public, max-age=60")
}

func writeJSON(w http.ResponseWriter, status int, v any, cacheControl string) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", cacheControl)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// authenticateClient is fosite's client authentication with the SMART
// Backend Services rules on the client assertion checked first: signed
// with RS384 or ES384 (so "none" and HMAC are refused before any key is
// looked at), an exp no more than five minutes ahead, a jti. fosite then
// verifies the signature with the client's keys, iss, sub, aud (the token
// endpoint) and that the jti was not used before.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	if form.Get("client_assertion_type") == clientAssertionType {
		alg, err := s.checkAssertion(form.Get("client_assertion"))
		if err != nil {
			s.log.InfoContext(ctx, "oauth: client assertion refused", slog.String("reason", err.Error()))
			return nil, fosite.ErrInvalidClient.WithHint(err.Error())
		}
		ctx = withAssertionAlg(ctx, alg)
	}
	return s.provider.(*fosite.Fosite).DefaultClientAuthenticationStrategy(ctx, r, form)
}

// assertionLeeway is the clock skew allowed on an assertion's exp.
const assertionLeeway = 10 * time.Second

// checkAssertion checks the parts of a client assertion that do not need
// the client's keys, and returns its algorithm. Refusing on unverified
// claims is safe: nothing is granted on them.
func (s *Server) checkAssertion(assertion string) (string, error) {
	if assertion == "" {
		return "", errors.New("client_assertion is missing")
	}
	jws, err := jose.ParseSignedCompact(assertion, []jose.SignatureAlgorithm{jose.RS384, jose.ES384})
	if err != nil {
		return "", errors.New("the client assertion must be a JWT signed with RS384 or ES384")
	}
	if len(jws.Signatures) != 1 {
		return "", errors.New("the client assertion must have exactly one signature")
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
		JTI string       `json:"jti"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return "", errors.New("the client assertion's claims are malformed")
	}
	if claims.Exp == nil {
		return "", errors.New("the client assertion has no exp")
	}
	exp, err := claims.Exp.Float64()
	if err != nil {
		return "", errors.New("the client assertion's exp is malformed")
	}
	expires := time.Unix(int64(exp), 0)
	now := s.now()
	switch {
	case expires.Before(now.Add(-assertionLeeway)):
		return "", errors.New("the client assertion has expired")
	case expires.After(now.Add(maxAssertionLifetime + assertionLeeway)):
		return "", errors.New("the client assertion's exp is more than five minutes ahead")
	case claims.JTI == "":
		return "", errors.New("the client assertion has no jti")
	}
	return jws.Signatures[0].Header.Algorithm, nil
}

// token is the token endpoint: authorization_code, refresh_token and
// client_credentials.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.prune(ctx)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ar, err := s.provider.NewAccessRequest(ctx, r, &session{})
	if err == nil {
		switch {
		case ar.GetGrantTypes().ExactOne("client_credentials"):
			err = s.clientCredentials(ar)
		case ar.GetGrantTypes().ExactOne("refresh_token"):
			err = s.refresh(ar, r.PostForm.Get("scope"))
		}
	}
	if err == nil {
		s.limitOnline(ar)
	}
	var resp fosite.AccessResponder
	if err == nil {
		resp, err = s.provider.NewAccessResponse(ctx, ar)
	}
	if err != nil {
		var rfc *fosite.RFC6749Error
		if errors.As(err, &rfc) && rfc.CodeField >= 500 {
			s.log.ErrorContext(ctx, "oauth: token", slog.String("error", rfc.Error()), slog.String("debug", rfc.DebugField))
		} else {
			s.log.InfoContext(ctx, "oauth: token refused", slog.String("error", errorName(err)), slog.String("grant_type", r.PostForm.Get("grant_type")))
		}
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	resp.SetTokenType("Bearer")
	if sess, ok := ar.GetSession().(*session); ok && sess.Patient != "" {
		resp.SetExtra("patient", sess.Patient)
	}
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// clientCredentials grants a backend client the requested system/ scopes
// that its registration allows, for the FHIR base.
func (s *Server) clientCredentials(ar fosite.AccessRequester) error {
	fc, ok := ar.GetClient().(*fositeClient)
	if !ok || fc.c.Kind != Backend {
		return fosite.ErrUnauthorizedClient.WithHint("Only backend clients may use client_credentials.")
	}
	requested := strings.Join(ar.GetRequestedScopes(), " ")
	if requested == "" {
		return fosite.ErrInvalidScope.WithHint("The scope parameter is required.")
	}
	granted, err := narrow(requested, fc.c.Scope, []smart.Kind{smart.System}, false)
	if err != nil || len(granted) == 0 {
		return fosite.ErrInvalidScope.WithHint("None of the requested scopes can be granted to this client (system/ scopes only).")
	}
	for _, sc := range granted {
		ar.GrantScope(sc)
	}
	ar.GrantAudience(s.base)
	sess := ar.GetSession().(*session)
	sess.Subject, sess.ClientID, sess.Operator, sess.Organization = fc.c.ID, fc.c.ID, fc.c.Operator, fc.c.Organization
	return nil
}

// refresh applies the scope parameter of a refresh: it may narrow what the
// refresh token was granted, never widen it (the new access and refresh
// tokens carry the narrowed scopes). What is granted is also narrowed to
// the client's registration as it is now, so a registration narrowed by the
// operator holds for refresh tokens issued before.
func (s *Server) refresh(ar fosite.AccessRequester, scope string) error {
	fc, ok := ar.GetClient().(*fositeClient)
	req, ok2 := ar.(*fosite.AccessRequest)
	if !ok || !ok2 {
		return fosite.ErrServerError.WithDebug("unexpected access request type")
	}
	granted := ar.GetGrantedScopes()
	requested := strings.Fields(scope)
	if len(requested) == 0 {
		requested = granted
	} else if !covered(requested, granted) {
		return fosite.ErrInvalidScope.WithHint("A refresh may not ask for scopes beyond those originally granted.")
	}
	all := []smart.Kind{smart.Patient, smart.User, smart.System}
	out, err := narrow(strings.Join(requested, " "), strings.Join(granted, " "), all, true)
	if err == nil {
		out, err = narrow(strings.Join(out, " "), fc.c.Scope, all, true)
	}
	if err != nil || len(out) == 0 {
		return fosite.ErrInvalidScope.WithHint("None of the scopes can be granted to this client any more.")
	}
	req.GrantedScope = out
	return nil
}

// limitOnline ends an online_access refresh token (without offline_access)
// onlineLifespan after the sign-in it came from.
func (s *Server) limitOnline(ar fosite.AccessRequester) {
	g := ar.GetGrantedScopes()
	if !g.Has(scopeOnline) || g.Has(scopeOffline) {
		return
	}
	sess, ok := ar.GetSession().(*session)
	if !ok || sess.AuthTime.IsZero() {
		return
	}
	end := sess.AuthTime.Add(onlineLifespan)
	if cur := sess.GetExpiresAt(fosite.RefreshToken); cur.IsZero() || end.Before(cur) {
		sess.SetExpiresAt(fosite.RefreshToken, end)
	}
}

// introspect is RFC 7662 token introspection with the SMART fields. The
// caller authenticates as a confidential or backend client (private_key_jwt)
// or with an active access token of one.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token") == "" {
		s.provider.WriteIntrospectionError(ctx, w, fosite.ErrInvalidRequest.WithHint("The token parameter is required."))
		return
	}
	if err := s.introspectionCaller(ctx, r); err != nil {
		s.log.InfoContext(ctx, "oauth: introspection caller refused", slog.String("error", errorName(err)))
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_client"`)
		s.provider.WriteIntrospectionError(ctx, w, fosite.ErrRequestUnauthorized.WithHint("Authenticate as a confidential client (private_key_jwt) or with its access token."))
		return
	}
	tu, ar, err := s.provider.IntrospectToken(ctx, r.PostForm.Get("token"), fosite.TokenUse(r.PostForm.Get("token_type_hint")), &session{})
	if err != nil {
		s.provider.WriteIntrospectionError(ctx, w, fosite.ErrInactiveToken)
		return
	}
	resp := &fosite.IntrospectionResponse{Active: true, AccessRequester: ar, TokenUse: tu}
	if tu == fosite.AccessToken {
		resp.AccessTokenType = fosite.BearerAccessToken
	}
	s.provider.WriteIntrospectionResponse(ctx, w, resp)
}

// introspectionCaller authenticates the caller of the introspection
// endpoint.
func (s *Server) introspectionCaller(ctx context.Context, r *http.Request) error {
	if bearer := fosite.AccessTokenFromRequest(r); bearer != "" {
		if bearer == r.PostForm.Get("token") {
			return fosite.ErrRequestUnauthorized
		}
		_, ar, err := s.provider.IntrospectToken(ctx, bearer, fosite.AccessToken, &session{})
		if err != nil {
			return err
		}
		if ar.GetClient().IsPublic() {
			return fosite.ErrRequestUnauthorized
		}
		return nil
	}
	if r.PostForm.Get("client_assertion_type") != clientAssertionType {
		return fosite.ErrRequestUnauthorized
	}
	c, err := s.authenticateClient(ctx, r, r.PostForm)
	if err != nil {
		return err
	}
	if c.IsPublic() {
		return fosite.ErrRequestUnauthorized
	}
	return nil
}

// revoke is RFC 7009 revocation: revoking an access or refresh token
// revokes its whole family (every token of the same authorization).
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	err := s.provider.NewRevocationRequest(ctx, r)
	if err != nil {
		s.log.InfoContext(ctx, "oauth: revocation refused", slog.String("error", errorName(err)))
	}
	s.provider.WriteRevocationResponse(ctx, w, err)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.SortedFunc(maps.Keys(m), cmp.Compare)
}
