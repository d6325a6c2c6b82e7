package oauth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// Config configures the authorization server. Zero fields take the
// documented defaults.
type Config struct {
	// Storage keeps everything the server remembers. Required.
	Storage Storage
	// Issuer is the server's origin, e.g. "http://127.0.0.1:8080": the "iss"
	// of every token and where /oauth2/... and the discovery document are
	// served. It must be https, or http on a loopback host. Required.
	Issuer string
	// FHIRBase is the FHIR base URL: the "aud" a client must ask for and
	// every access token carries. Required.
	FHIRBase string
	// Lookup searches the FHIR store with full internal access. Required.
	Lookup Lookup
	// Upstreams are the OpenID Connect providers people sign in with.
	Upstreams []Upstream
	// Invitations, when set, serves the invitation acceptance page
	// ({issuer}/invite/{token}).
	Invitations Invitations
	// Dev turns on development mode: the development login listing the
	// demo family's people, the development clients (admin, auditor,
	// demo-app) and `ouderctl token`. The caller must allow it only on a
	// loopback listener (cmd/ouderd refuses it otherwise).
	Dev bool
	// Logger receives errors and security events; never tokens. Default:
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock of everything this package decides (expiry of
	// stored codes and tokens, assertion lifetimes, key age). Default
	// time.Now.
	Now func() time.Time
	// HTTPClient fetches upstream discovery documents and keys, and client
	// key sets given by URL. Default: a client with a 10 second timeout.
	HTTPClient *http.Client
	// KeyMaxAge is how old the signing key may grow before it is replaced
	// (the old key stays published until its tokens expire). Default
	// DefaultKeyMaxAge; negative: never by age.
	KeyMaxAge time.Duration
	// AccessTokenLifespan is how long user access tokens live; at most an
	// hour. Default one hour. Backend clients' tokens live at most five
	// minutes.
	AccessTokenLifespan time.Duration
	// RefreshTokenLifespan is how long an offline_access refresh token
	// lives without use (each use gives a new one). Default 30 days.
	RefreshTokenLifespan time.Duration
}

// Lifetimes.
const (
	maxAccessTokenLifespan = time.Hour
	defaultRefreshLifespan = 30 * 24 * time.Hour
	// onlineLifespan bounds an online_access refresh token: it works
	// while the sign-in it came from is recent.
	onlineLifespan = 12 * time.Hour
	codeLifespan   = 5 * time.Minute
	// interactionLifespan is how long a person has for the login,
	// picker and consent pages.
	interactionLifespan = 15 * time.Minute
	// maxAssertionLifetime is how far ahead a client assertion may expire
	// (SMART Backend Services: at most five minutes).
	maxAssertionLifetime = 5 * time.Minute
	pruneInterval        = 10 * time.Minute
	// pruneGrace keeps expired rows a while, so a revocation stays
	// visible to verifiers that allow clock skew.
	pruneGrace = time.Hour
)

// Errors of binding a login to a fhirUser.
var (
	errNoAccount        = errors.New("no FHIR resource carries this login's identifier")
	errAmbiguousAccount = errors.New("more than one FHIR resource carries this login's identifier")
)

// Server is the authorization server. It is safe for concurrent use.
type Server struct {
	cfg       Config
	st        Storage
	log       *slog.Logger
	now       func() time.Time
	issuer    string
	base      string
	keys      *keyRing
	store     *fositeStore
	fconf     *fosite.Config
	provider  fosite.OAuth2Provider
	strategy  *compose.CommonStrategy
	upstreams map[string]*upstream
	client    *http.Client

	pruneMu   sync.Mutex
	lastPrune time.Time

	revs revocationSet // see WatchRevocations
}

// serverSettings are what ouderd records for `ouderctl token`.
type serverSettings struct {
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	Dev      bool   `json:"dev"`
}

// New returns the authorization server for cfg. It records the issuer,
// audience and mode in the storage, makes the first signing key if there is
// none, and registers the development clients in development mode (outside
// it, it removes them). The error names what is wrong with cfg or why the
// storage failed.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Storage == nil || cfg.Lookup == nil {
		return nil, errors.New("oauth: Storage and Lookup are required")
	}
	issuer, err := checkIssuer(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(cfg.FHIRBase, "/")
	if err := checkHTTPS(base); err != nil {
		return nil, fmt.Errorf("oauth: FHIR base: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.KeyMaxAge == 0 {
		cfg.KeyMaxAge = DefaultKeyMaxAge
	}
	if cfg.AccessTokenLifespan <= 0 || cfg.AccessTokenLifespan > maxAccessTokenLifespan {
		cfg.AccessTokenLifespan = maxAccessTokenLifespan
	}
	if cfg.RefreshTokenLifespan <= 0 {
		cfg.RefreshTokenLifespan = defaultRefreshLifespan
	}
	s := &Server{cfg: cfg, st: cfg.Storage, log: cfg.Logger, now: cfg.Now, issuer: issuer, base: base, client: cfg.HTTPClient,
		upstreams: map[string]*upstream{}}
	for _, u := range cfg.Upstreams {
		if err := u.validate(); err != nil {
			return nil, err
		}
		if s.upstreams[u.Name] != nil {
			return nil, fmt.Errorf("oauth: upstream %q configured twice", u.Name)
		}
		s.upstreams[u.Name] = &upstream{Upstream: u}
	}

	settings, err := json.Marshal(serverSettings{Issuer: issuer, Audience: base, Dev: cfg.Dev})
	if err != nil {
		return nil, err
	}
	if err := s.st.PutSetting(ctx, settingServer, settings); err != nil {
		return nil, fmt.Errorf("oauth: record settings: %w", err)
	}
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	if err := s.devClients(ctx); err != nil {
		return nil, err
	}
	if _, err := s.keys.current(ctx); err != nil {
		return nil, fmt.Errorf("oauth: signing key: %w", err)
	}
	return s, nil
}

// setup composes fosite on the storage, the key ring and the shared secret.
func (s *Server) setup(ctx context.Context) error {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	secret, err := s.st.InitSetting(ctx, settingSecret, secret)
	if err != nil {
		return fmt.Errorf("oauth: secret: %w", err)
	}
	if len(secret) < 32 {
		return errors.New("oauth: stored secret too short")
	}
	maxAge := s.cfg.KeyMaxAge
	if maxAge < 0 {
		maxAge = 0
	}
	s.keys = &keyRing{st: s.st, now: s.now, maxAge: maxAge}
	s.store = &fositeStore{st: s.st, now: s.now, audience: s.base, codeLifespan: codeLifespan, refreshLifespan: s.cfg.RefreshTokenLifespan}
	s.fconf = &fosite.Config{
		AccessTokenLifespan:            s.cfg.AccessTokenLifespan,
		RefreshTokenLifespan:           s.cfg.RefreshTokenLifespan,
		AuthorizeCodeLifespan:          codeLifespan,
		IDTokenLifespan:                time.Hour,
		IDTokenIssuer:                  s.issuer,
		AccessTokenIssuer:              s.issuer,
		TokenURL:                       s.issuer + "/oauth2/token",
		ScopeStrategy:                  wellFormed,
		AudienceMatchingStrategy:       fosite.ExactAudienceMatchingStrategy,
		EnforcePKCE:                    true,
		EnablePKCEPlainChallengeMethod: false,
		GlobalSecret:                   secret[:32],
		RefreshTokenScopes:             []string{scopeOffline, scopeOnline},
		JWTScopeClaimKey:               jwt.JWTScopeFieldString,
		JWKSFetcherStrategy:            &jwksFetcher{client: s.client, now: s.now},
		ClientAuthenticationStrategy:   s.authenticateClient,
		MinParameterEntropy:            fosite.MinParameterEntropy,
		SendDebugMessagesToClients:     false,
		RedirectSecureChecker:          func(context.Context, *url.URL) bool { return true },
		AllowedPromptValues:            []string{"login", "consent"},
	}
	sign := signer{ring: s.keys}
	// Access tokens are JWTs signed with the database keys; codes and
	// refresh tokens are fosite's opaque HMAC tokens with the shared secret.
	s.strategy = &compose.CommonStrategy{
		CoreStrategy: &oauth2.DefaultJWTStrategy{
			Signer:          sign,
			HMACSHAStrategy: compose.NewOAuth2HMACStrategy(s.fconf),
			Config:          s.fconf,
		},
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: sign, Config: s.fconf},
		Signer:                     sign,
	}
	s.provider = compose.Compose(s.fconf, s.store, s.strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2PKCEFactory,
	)
	return nil
}

// checkIssuer returns the issuer origin without a trailing slash.
func checkIssuer(s string) (string, error) {
	s = strings.TrimSuffix(s, "/")
	if err := checkHTTPS(s); err != nil {
		return "", fmt.Errorf("oauth: issuer: %w", err)
	}
	u, _ := url.Parse(s)
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("oauth: issuer %q must be an origin (scheme and host only)", s)
	}
	return s, nil
}

// DevAuditorOrganization is the organisation the development auditor
// client acts for: the demo family's auditor (mapping/family.DemoAuditor),
// a member of the demo teams with the auditor role.
const DevAuditorOrganization = "Organization/demo-toezicht"

// The development clients.
const (
	DevAdminClient   = "admin"
	DevAuditorClient = "auditor"
	DevAppClient     = "demo-app"
)

// devClients registers the development clients in development mode, and
// removes every client development mode registered when it is off. A
// client of the same id that an operator registered is left alone.
func (s *Server) devClients(ctx context.Context) error {
	existing, err := ListClients(ctx, s.st)
	if err != nil {
		return err
	}
	byID := map[string]Client{}
	for _, c := range existing {
		byID[c.ID] = c
	}
	if !s.cfg.Dev {
		for _, c := range existing {
			if c.Dev {
				if err := RemoveClient(ctx, s.st, c.ID); err != nil && !isNotFound(err) {
					return fmt.Errorf("oauth: remove development client %s: %w", c.ID, err)
				}
				s.log.Info("removed development client (not in development mode)", slog.String("client_id", c.ID))
			}
		}
		return nil
	}
	for _, c := range []Client{
		{ID: DevAdminClient, Name: "Beheerder (ontwikkeling)", Kind: Backend, Scope: "system/*.cruds", Operator: true, Dev: true},
		{ID: DevAuditorClient, Name: "Auditor (ontwikkeling)", Kind: Backend, Scope: "system/AuditEvent.rs system/Consent.rs system/CareTeam.rs",
			Organization: DevAuditorOrganization, Dev: true},
		{ID: DevAppClient, Name: "Demo-app (ontwikkeling)", Kind: Public, Scope: DefaultAppScope,
			RedirectURIs: []string{s.issuer + devCallbackPath}, Dev: true},
	} {
		if old, ok := byID[c.ID]; ok && !old.Dev {
			continue
		}
		if err := AddClient(ctx, s.st, c, s.now()); err != nil {
			return fmt.Errorf("oauth: register development client %s: %w", c.ID, err)
		}
	}
	return nil
}

// Issuer returns the issuer of this server's tokens.
func (s *Server) Issuer() string { return s.issuer }

// Audience returns the FHIR base URL every access token is for.
func (s *Server) Audience() string { return s.base }

// KeySet returns the keys that verify this server's tokens, read from the
// database (no HTTP): the current key and the retired keys whose tokens
// may still be valid. For the resource server's token verifier.
func (s *Server) KeySet() oidc.KeySet { return keySet{ring: s.keys} }

// Revoked reports whether the access token with jti was revoked (by
// revocation of the token or of its refresh family, reuse of its code or
// refresh token, or a refresh that replaced it). While WatchRevocations
// listens it is a map lookup; otherwise it is one indexed database lookup.
// A jti this server never issued is not revoked: whether the token is
// genuine is the signature's business.
func (s *Server) Revoked(ctx context.Context, jti string) (bool, error) {
	if jti == "" {
		return false, nil
	}
	if revoked, known := s.revs.lookup(jti); known {
		return revoked, nil
	}
	return s.st.Revoked(ctx, jti)
}

// prune deletes long-expired sessions and jti values, at most every
// pruneInterval per instance; failures are logged.
func (s *Server) prune(ctx context.Context) {
	s.pruneMu.Lock()
	due := s.now().Sub(s.lastPrune) >= pruneInterval
	if due {
		s.lastPrune = s.now()
	}
	s.pruneMu.Unlock()
	if !due {
		return
	}
	n, err := s.st.PruneSessions(ctx, s.now().Add(-pruneGrace))
	if err != nil {
		s.log.ErrorContext(ctx, "oauth: prune expired sessions", slog.String("error", err.Error()))
		return
	}
	if n > 0 {
		s.log.DebugContext(ctx, "oauth: pruned expired sessions", slog.Int64("rows", n))
	}
}
