package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	josev3 "github.com/go-jose/go-jose/v3"
	"golang.org/x/oauth2"
)

// Upstream is an OpenID Connect provider people sign in with. The person's
// (issuer, subject) is bound to their FHIR resource through an identifier:
// the Person, RelatedPerson, Practitioner or Patient whose identifier has
// system IdentifierSystem (default: the issuer URL) and value the subject.
type Upstream struct {
	// Name is the provider's short name in URLs: lower-case letters,
	// digits and '-'.
	Name string `json:"name"`
	// DisplayName is what the login page's button says.
	DisplayName string `json:"display_name"`
	// Issuer is the provider's issuer URL (discovery happens at
	// Issuer/.well-known/openid-configuration).
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	// IdentifierSystem is the identifier system that binds the provider's
	// subjects; default Issuer.
	IdentifierSystem string `json:"identifier_system,omitempty"`
	// Scopes asked of the provider; default "openid".
	Scopes []string `json:"scopes,omitempty"`
}

var upstreamName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

func (u *Upstream) validate() error {
	if !upstreamName.MatchString(u.Name) {
		return fmt.Errorf("oauth: upstream name %q: lower-case letters, digits and '-', at most 32", u.Name)
	}
	if err := checkHTTPS(u.Issuer); err != nil {
		return fmt.Errorf("oauth: upstream %s: issuer: %w", u.Name, err)
	}
	if u.ClientID == "" {
		return fmt.Errorf("oauth: upstream %s: no client_id", u.Name)
	}
	if u.DisplayName == "" {
		u.DisplayName = u.Name
	}
	if u.IdentifierSystem == "" {
		u.IdentifierSystem = u.Issuer
	}
	return nil
}

// LoadUpstreams reads the upstream providers from a JSON file: an array of
// Upstream objects. The file holds client secrets: keep it readable by the
// server only.
func LoadUpstreams(path string) ([]Upstream, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("upstream providers: %w", err)
	}
	var ups []Upstream
	if err := json.Unmarshal(b, &ups); err != nil {
		return nil, fmt.Errorf("upstream providers %s: %w", path, err)
	}
	for i := range ups {
		if err := ups[i].validate(); err != nil {
			return nil, fmt.Errorf("upstream providers %s: %w", path, err)
		}
	}
	return ups, nil
}

// upstream is a configured provider and its discovery, made on first use
// and tried again after a failure at most every 30 seconds.
type upstream struct {
	Upstream
	mu       sync.Mutex
	provider *oidc.Provider
	tried    time.Time
	err      error
}

const discoveryRetry = 30 * time.Second

// discover returns the provider's discovery, fetching it when needed.
func (u *upstream) discover(ctx context.Context, client *http.Client, now time.Time) (*oidc.Provider, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.provider != nil {
		return u.provider, nil
	}
	if !u.tried.IsZero() && now.Sub(u.tried) < discoveryRetry {
		return nil, u.err
	}
	dctx, cancel := context.WithTimeout(oidc.ClientContext(context.WithoutCancel(ctx), client), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, u.Issuer)
	u.tried, u.provider, u.err = now, p, err
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", u.Issuer, err)
	}
	return p, nil
}

// config returns the OAuth 2 client configuration at the provider.
func (u *upstream) config(p *oidc.Provider, redirect string) *oauth2.Config {
	scopes := u.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID}
	}
	return &oauth2.Config{
		ClientID:     u.ClientID,
		ClientSecret: u.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  redirect,
		Scopes:       scopes,
	}
}

// jwksFetcher fetches the key sets of clients registered with a JWKS URL,
// for fosite's private_key_jwt check. Sets are kept for jwksTTL; a forced
// fetch (an unknown kid) happens at most every jwksMinRefresh per URL.
type jwksFetcher struct {
	client *http.Client
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]*fetchedJWKS
}

type fetchedJWKS struct {
	set     *josev3.JSONWebKeySet
	fetched time.Time
}

const (
	jwksTTL        = 5 * time.Minute
	jwksMinRefresh = 10 * time.Second
	maxJWKSBytes   = 1 << 20
)

// Resolve returns the key set at location.
func (j *jwksFetcher) Resolve(ctx context.Context, location string, ignoreCache bool) (*josev3.JSONWebKeySet, error) {
	if err := checkHTTPS(location); err != nil {
		return nil, err
	}
	j.mu.Lock()
	if j.cache == nil {
		j.cache = map[string]*fetchedJWKS{}
	}
	c := j.cache[location]
	now := j.now()
	if c != nil {
		age := now.Sub(c.fetched)
		if (!ignoreCache && age < jwksTTL) || (ignoreCache && age < jwksMinRefresh) {
			j.mu.Unlock()
			return c.set, nil
		}
	}
	j.mu.Unlock()

	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(fctx, http.MethodGet, location, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch client JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch client JWKS: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch client JWKS: %w", err)
	}
	if len(b) > maxJWKSBytes {
		return nil, errors.New("fetch client JWKS: too large")
	}
	var set josev3.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("client JWKS: %w", err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, errors.New("client JWKS holds a private key")
		}
	}
	normaliseUse(&set)
	j.mu.Lock()
	j.cache[location] = &fetchedJWKS{set: &set, fetched: now}
	j.mu.Unlock()
	return &set, nil
}
