package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/digitaleouder/ouder/auth/smart"
)

// ClientKind is how a client authenticates and which grants it may use.
type ClientKind string

// The kinds of client.
const (
	// Public is a browser or native app that holds no secret: the
	// authorization code grant with PKCE, refresh tokens.
	Public ClientKind = "public"
	// ConfidentialAsymmetric is an app that authenticates with a
	// private_key_jwt client assertion: the authorization code grant with
	// PKCE, refresh tokens.
	ConfidentialAsymmetric ClientKind = "confidential-asymmetric"
	// Backend is a SMART Backend Services client: client_credentials with
	// a private_key_jwt client assertion, system/ scopes only.
	Backend ClientKind = "backend"
)

// Client is a registered client application.
type Client struct {
	ID   string     `json:"id"`
	Name string     `json:"name,omitempty"`
	Kind ClientKind `json:"kind"`
	// RedirectURIs are the exact redirect URIs the client may use (not for
	// Backend clients).
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// Scope is the space-separated list of SMART scopes the client may be
	// granted; every token is narrowed to it.
	Scope string `json:"scope"`
	// JWKS (inline) or JWKSURL holds the public keys of the client's
	// assertions (ConfidentialAsymmetric and Backend clients).
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURL string          `json:"jwks_uri,omitempty"`
	// Operator marks a Backend client whose tokens carry "operator": true:
	// full access to every resource (every use is audited).
	Operator bool `json:"operator,omitempty"`
	// Organization is the Organization a Backend client acts for
	// ("Organization/12"): its tokens carry it in the "organization"
	// claim, and the access policy gives the client what that
	// organisation's CareTeam memberships and Consents allow. A backend
	// client with neither Organization nor Operator sees nothing.
	Organization string `json:"organization,omitempty"`
	// Dev marks a client that development mode registered; it is removed
	// when the server starts outside development mode.
	Dev bool `json:"dev,omitempty"`
	// Created is when the client was registered.
	Created time.Time `json:"created,omitzero"`
}

// DefaultAppScope is what a Public or ConfidentialAsymmetric client may be
// granted when its registration names no scopes.
const DefaultAppScope = "openid fhirUser launch/patient offline_access online_access patient/*.cruds user/*.cruds"

// Assertion algorithms accepted for private_key_jwt (SMART Backend
// Services: RS384 and ES384).
var assertionAlgs = []string{"RS384", "ES384"}

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validOrgID is the FHIR id of a client's Organization.
var validOrgID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// Validate checks a registration and returns an error that says what is
// wrong with it. It fills in the default scope of apps.
func (c *Client) Validate() error {
	if !clientIDPattern.MatchString(c.ID) {
		return fmt.Errorf("client id %q: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", c.ID)
	}
	switch c.Kind {
	case Public, ConfidentialAsymmetric, Backend:
	default:
		return fmt.Errorf("client %s: kind %q: want public, confidential-asymmetric or backend", c.ID, c.Kind)
	}
	if c.Scope == "" && c.Kind != Backend {
		c.Scope = DefaultAppScope
	}
	scopes, err := smart.Parse(c.Scope)
	if err != nil {
		return fmt.Errorf("client %s: scope: %w", c.ID, err)
	}
	if len(scopes) == 0 {
		return fmt.Errorf("client %s: no scopes", c.ID)
	}
	for _, s := range scopes {
		switch {
		case c.Kind == Backend && s.Kind != smart.System:
			return fmt.Errorf("client %s: backend clients get system/ scopes only, not %q", c.ID, s)
		case c.Kind != Backend && s.Kind == smart.System:
			return fmt.Errorf("client %s: system/ scopes are for backend clients only, not %q", c.ID, s)
		}
	}
	if c.Operator && c.Kind != Backend {
		return fmt.Errorf("client %s: only backend clients can be operators", c.ID)
	}
	if c.Organization != "" {
		typ, id, ok := strings.Cut(c.Organization, "/")
		if c.Kind != Backend {
			return fmt.Errorf("client %s: only backend clients act for an organisation", c.ID)
		}
		if !ok || typ != "Organization" || !validOrgID.MatchString(id) {
			return fmt.Errorf("client %s: organization %q is not a reference Organization/<id>", c.ID, c.Organization)
		}
	}
	if c.Kind == Backend {
		if len(c.RedirectURIs) > 0 {
			return fmt.Errorf("client %s: backend clients have no redirect URIs", c.ID)
		}
	} else {
		if len(c.RedirectURIs) == 0 {
			return fmt.Errorf("client %s: at least one redirect URI is needed", c.ID)
		}
		for _, u := range c.RedirectURIs {
			if err := checkRedirectURI(u); err != nil {
				return fmt.Errorf("client %s: redirect URI %q: %w", c.ID, u, err)
			}
		}
	}
	switch {
	case c.Kind == Public && (len(c.JWKS) > 0 || c.JWKSURL != ""):
		return fmt.Errorf("client %s: public clients have no keys", c.ID)
	case len(c.JWKS) > 0 && c.JWKSURL != "":
		return fmt.Errorf("client %s: give the keys inline or by URL, not both", c.ID)
	case c.Kind != Public && len(c.JWKS) == 0 && c.JWKSURL == "" && !c.Dev:
		return fmt.Errorf("client %s: %s clients need their public keys (a JWKS or a JWKS URL)", c.ID, c.Kind)
	}
	if len(c.JWKS) > 0 {
		if _, err := c.algorithms(); err != nil {
			return fmt.Errorf("client %s: %w", c.ID, err)
		}
	}
	if c.JWKSURL != "" {
		if err := checkHTTPS(c.JWKSURL); err != nil {
			return fmt.Errorf("client %s: JWKS URL: %w", c.ID, err)
		}
	}
	return nil
}

// algorithms returns the assertion algorithms the client's inline keys
// can verify: RS384 for RSA keys of at least 2048 bits, ES384 for P-384
// keys. Private keys in the set are an error: they must never be sent.
func (c *Client) algorithms() ([]string, error) {
	if len(c.JWKS) == 0 {
		return assertionAlgs, nil // keys by URL: decided per assertion
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(c.JWKS, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("JWKS holds no keys")
	}
	var algs []string
	for i, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("JWKS key %d is a private key: register the public key only", i)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var alg string
		switch pk := k.Key.(type) {
		case *rsa.PublicKey:
			if pk.N.BitLen() < 2048 {
				return nil, fmt.Errorf("JWKS key %d: RSA keys need at least 2048 bits", i)
			}
			alg = "RS384"
		case *ecdsa.PublicKey:
			if pk.Curve != elliptic.P384() {
				return nil, fmt.Errorf("JWKS key %d: EC keys must be on P-384 (ES384)", i)
			}
			alg = "ES384"
		default:
			return nil, fmt.Errorf("JWKS key %d: want an RSA or EC P-384 public key", i)
		}
		if k.Algorithm != "" && k.Algorithm != alg {
			return nil, fmt.Errorf("JWKS key %d: algorithm %q: want %s", i, k.Algorithm, alg)
		}
		if !slices.Contains(algs, alg) {
			algs = append(algs, alg)
		}
	}
	if len(algs) == 0 {
		return nil, errors.New("JWKS holds no signing keys")
	}
	return algs, nil
}

// checkRedirectURI accepts absolute URIs without a fragment: https, http
// on a loopback host, or a private-use scheme of a native app.
func checkRedirectURI(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return errors.New("must not have a fragment")
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return errors.New("no host")
		}
		return nil
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return errors.New("http only on a loopback host (use https)")
		}
		return nil
	case "":
		return errors.New("not an absolute URI")
	}
	// A private-use scheme of a native app (RFC 8252 7.1): reverse domain
	// name style, with a dot.
	if !strings.Contains(u.Scheme, ".") {
		return errors.New("a native app's private-use scheme must be a reverse domain name (com.example.app)")
	}
	return nil
}

// checkHTTPS accepts https URLs, and http URLs on a loopback host.
func checkHTTPS(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("%q is not an absolute URL", s)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%q must be https (http only on a loopback host)", s)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AddClient validates c and registers it, replacing a client with the same
// id. Who may call: administration (ouderctl) and development mode.
func AddClient(ctx context.Context, st Storage, c Client, now time.Time) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Created.IsZero() {
		c.Created = now.UTC().Truncate(time.Second)
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("oauth.AddClient(%q): %w", c.ID, err)
	}
	if err := st.PutClient(ctx, c.ID, data); err != nil {
		return fmt.Errorf("oauth.AddClient(%q): %w", c.ID, err)
	}
	return nil
}

// GetClient returns the registered client id. An unknown client is a
// fhir.NotFound error.
func GetClient(ctx context.Context, st Storage, id string) (*Client, error) {
	data, err := st.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	var c Client
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("oauth: client %q: %w", id, err)
	}
	return &c, nil
}

// ListClients returns every registered client, ordered by id.
func ListClients(ctx context.Context, st Storage) ([]Client, error) {
	var out []Client
	err := st.Clients(ctx, func(id string, data []byte) error {
		var c Client
		if err := json.Unmarshal(data, &c); err != nil {
			return fmt.Errorf("client %q: %w", id, err)
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("oauth.ListClients: %w", err)
	}
	return out, nil
}

// RemoveClient removes client id. Its tokens stop working as soon as they
// are next checked against the store (refresh, introspection); access
// tokens already issued stay valid until they expire (at most an hour).
// An unknown client is a fhir.NotFound error.
func RemoveClient(ctx context.Context, st Storage, id string) error {
	return st.DeleteClient(ctx, id)
}

// fositeClient is a Client as fosite sees it.
type fositeClient struct {
	c        *Client
	scopes   fosite.Arguments
	audience string
	jwks     *josev3.JSONWebKeySet
	// alg is the algorithm of the client assertion being checked, when it
	// is one this client's keys can verify (see assertionAlg).
	alg string
}

var (
	_ fosite.Client                         = (*fositeClient)(nil)
	_ fosite.OpenIDConnectClient            = (*fositeClient)(nil)
	_ fosite.ClientWithCustomTokenLifespans = (*fositeClient)(nil)
)

// backendTokenLifespan is the most an access token of a backend client
// lives (SMART Backend Services: at most five minutes).
const backendTokenLifespan = 5 * time.Minute

type assertionAlgKey struct{}

// withAssertionAlg returns ctx carrying the algorithm of the client
// assertion of the request, so the client fosite loads for it names that
// algorithm when its keys can verify it.
func withAssertionAlg(ctx context.Context, alg string) context.Context {
	return context.WithValue(ctx, assertionAlgKey{}, alg)
}

func newFositeClient(ctx context.Context, c *Client, audience string) (*fositeClient, error) {
	fc := &fositeClient{c: c, audience: audience, scopes: strings.Fields(c.Scope)}
	if len(c.JWKS) > 0 {
		var set josev3.JSONWebKeySet
		if err := json.Unmarshal(c.JWKS, &set); err != nil {
			return nil, fmt.Errorf("client %q: JWKS: %w", c.ID, err)
		}
		normaliseUse(&set)
		fc.jwks = &set
	}
	if alg, _ := ctx.Value(assertionAlgKey{}).(string); alg != "" {
		algs, err := c.algorithms()
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", c.ID, err)
		}
		if slices.Contains(algs, alg) {
			fc.alg = alg
		}
	}
	return fc, nil
}

// normaliseUse marks keys without "use" as signing keys: SMART clients
// often leave it out, and fosite only looks at keys with use "sig".
func normaliseUse(set *josev3.JSONWebKeySet) {
	for i := range set.Keys {
		if set.Keys[i].Use == "" {
			set.Keys[i].Use = "sig"
		}
	}
}

func (f *fositeClient) GetID() string             { return f.c.ID }
func (f *fositeClient) GetHashedSecret() []byte   { return nil }
func (f *fositeClient) GetRedirectURIs() []string { return f.c.RedirectURIs }
func (f *fositeClient) IsPublic() bool            { return f.c.Kind == Public }
func (f *fositeClient) GetScopes() fosite.Arguments {
	return f.scopes
}
func (f *fositeClient) GetAudience() fosite.Arguments { return fosite.Arguments{f.audience} }

func (f *fositeClient) GetGrantTypes() fosite.Arguments {
	if f.c.Kind == Backend {
		return fosite.Arguments{"client_credentials"}
	}
	return fosite.Arguments{"authorization_code", "refresh_token"}
}

func (f *fositeClient) GetResponseTypes() fosite.Arguments {
	if f.c.Kind == Backend {
		return fosite.Arguments{}
	}
	return fosite.Arguments{"code"}
}

func (f *fositeClient) GetRequestURIs() []string                     { return nil }
func (f *fositeClient) GetJSONWebKeys() *josev3.JSONWebKeySet        { return f.jwks }
func (f *fositeClient) GetJSONWebKeysURI() string                    { return f.c.JWKSURL }
func (f *fositeClient) GetRequestObjectSigningAlgorithm() string     { return "" }
func (f *fositeClient) GetTokenEndpointAuthSigningAlgorithm() string { return f.alg }

func (f *fositeClient) GetTokenEndpointAuthMethod() string {
	if f.c.Kind == Public {
		return "none"
	}
	return "private_key_jwt"
}

// GetEffectiveLifespan keeps a backend client's access tokens to five
// minutes.
func (f *fositeClient) GetEffectiveLifespan(gt fosite.GrantType, tt fosite.TokenType, fallback time.Duration) time.Duration {
	if gt == fosite.GrantTypeClientCredentials && tt == fosite.AccessToken {
		return min(fallback, backendTokenLifespan)
	}
	return fallback
}
