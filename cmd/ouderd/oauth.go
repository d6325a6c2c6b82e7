package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/postgres"
)

// OAuthConfig is the configuration of the built-in authorization server.
type OAuthConfig struct {
	Dev           bool          // -dev, OUDERD_DEV
	OIDCProviders string        // -oidc-providers, OUDERD_OIDC_PROVIDERS
	KeyMaxAge     time.Duration // -key-max-age, OUDERD_KEY_MAX_AGE
}

// The storage of the authorization server is the PostgreSQL one.
var _ oauth.Storage = (*postgres.OAuth)(nil)

// registerOAuthFlags reads the authorization server's environment variables
// into c and declares its flags on fs.
func (c *OAuthConfig) registerOAuthFlags(fs *flag.FlagSet, getenv func(string) string) error {
	if c.KeyMaxAge == 0 {
		c.KeyMaxAge = oauth.DefaultKeyMaxAge
	}
	if v := getenv("OUDERD_DEV"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("OUDERD_DEV=%q: want true or false", v)
		}
		c.Dev = b
	}
	if v := getenv("OUDERD_OIDC_PROVIDERS"); v != "" {
		c.OIDCProviders = v
	}
	if v := getenv("OUDERD_KEY_MAX_AGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("OUDERD_KEY_MAX_AGE=%q: %w", v, err)
		}
		c.KeyMaxAge = d
	}
	fs.BoolVar(&c.Dev, "dev", c.Dev, "development mode: development login with the demo family's people, development clients, ouderctl token (loopback addresses only)")
	fs.StringVar(&c.OIDCProviders, "oidc-providers", c.OIDCProviders, "JSON file listing the upstream OpenID Connect providers people sign in with (name, display_name, issuer, client_id, client_secret, identifier_system, scopes)")
	fs.DurationVar(&c.KeyMaxAge, "key-max-age", c.KeyMaxAge, "replace the token signing key when it is older than this (negative: never by age)")
	return nil
}

// checkDev refuses development mode unless the server listens on, and is
// reached at, a loopback address only: the development login signs anyone
// in as anyone.
func checkDev(c Config) error {
	if !c.OAuth.Dev {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil || !isLoopback(host) {
		return fmt.Errorf("-dev: development mode signs anyone in as anyone, so it needs a loopback listen address, not %q", c.Addr)
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || !isLoopback(u.Hostname()) {
			return fmt.Errorf("-dev: development mode needs a loopback base URL, not %q", c.BaseURL)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// startOAuth makes the built-in authorization server for the FHIR base
// base. Its issuer is the base's origin. It becomes the own token issuer
// of the resource server (m.own).
func (m *Main) startOAuth(ctx context.Context, store *postgres.Store, registry *searchparam.Registry, base string) (*oauth.Server, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("base URL: %w", err)
	}
	var upstreams []oauth.Upstream
	if p := m.Config.OAuth.OIDCProviders; p != "" {
		if upstreams, err = oauth.LoadUpstreams(p); err != nil {
			return nil, err
		}
	}
	if m.Config.OAuth.Dev {
		m.Logger.Warn("development mode: the development login signs anyone in as any demo person; never use it with real data")
	}
	oauthStore := postgres.NewOAuth(m.pool)
	as, err := oauth.New(ctx, oauth.Config{
		Storage:     oauthStore,
		Issuer:      u.Scheme + "://" + u.Host,
		FHIRBase:    base,
		Lookup:      lookup(store, registry, base),
		Upstreams:   upstreams,
		Invitations: m.invites,
		Dev:         m.Config.OAuth.Dev,
		Logger:      m.Logger,
		KeyMaxAge:   m.Config.OAuth.KeyMaxAge,
	})
	if err != nil {
		return nil, err
	}
	m.own = as
	// Revoked answers from memory while this listens (LISTEN/NOTIFY on
	// the database, so every instance agrees), and asks the database
	// otherwise. It stops with the other background work.
	watch, cancel := context.WithCancel(context.Background())
	stop := m.stopBackground
	m.stopBackground = func() {
		cancel()
		if stop != nil {
			stop()
		}
	}
	go as.WatchRevocations(watch, oauthStore)
	m.Logger.Info("authorization server ready", slog.String("issuer", as.Issuer()), slog.Int("upstream_providers", len(upstreams)),
		slog.Bool("dev", m.Config.OAuth.Dev))
	return as, nil
}

// lookup is the authorization server's FHIR search: the store's one search
// path, with the server's own unrestricted access (it binds logins to
// fhirUsers and lists a user's children; what it finds is never returned to
// a client as data).
func lookup(store *postgres.Store, registry *searchparam.Registry, base string) oauth.Lookup {
	parser := &search.Parser{Registry: registry, Fold: searchparam.Fold, Base: base}
	return func(ctx context.Context, typ string, params url.Values) ([]json.RawMessage, error) {
		q, err := parser.Parse([]string{typ}, params, true)
		if err != nil {
			return nil, err
		}
		res, err := store.Search(search.WithAccess(ctx, search.Unrestricted()), q)
		if err != nil {
			return nil, err
		}
		out := make([]json.RawMessage, 0, len(res.Matches))
		for _, r := range res.Matches {
			out = append(out, r.Body)
		}
		return out, nil
	}
}

// withOAuth serves the authorization server's paths (/oauth2/... and the
// OpenID Connect discovery document) and everything else with api.
func withOAuth(api http.Handler, as *oauth.Server) http.Handler {
	if as == nil {
		return api
	}
	h := as.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/oauth2/") || strings.HasPrefix(r.URL.Path, "/invite/") || r.URL.Path == "/.well-known/openid-configuration" {
			h.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
