// Package token verifies the bearer tokens a FHIR client presents: JWT
// access tokens signed by a trusted OpenID Connect or SMART authorization
// server. It answers who issued the token, to whom, and with which SMART
// scopes and launch context; what the caller may then do is decided
// elsewhere (smart.Scopes.Allows and the policy decision point).
package token

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/digitaleouder/ouder/auth/smart"
)

// Issuer is one trusted token issuer.
type Issuer struct {
	// URL is the issuer identifier, exactly as tokens carry it in "iss" and
	// as its discovery document names it. It must be https, or http on a
	// loopback host (development and tests).
	URL string
	// Audience is the value a token must carry in "aud" (one of them, if
	// several): the FHIR base URL of this server, as SMART clients pass it
	// in the "aud" authorization parameter. Required.
	Audience string
	// ScopeClaim is the claim with the granted scopes, either a
	// space-separated string or an array of strings. Default "scope".
	ScopeClaim string
	// FHIRUserClaim is the claim naming the user's FHIR resource (relative
	// or absolute URL). Default "fhirUser".
	FHIRUserClaim string
	// PatientClaim is the claim with the id of the patient in context.
	// Default "patient".
	PatientClaim string
	// AllowedAlgs are the JWS algorithms accepted from this issuer. Only
	// asymmetric algorithms may be listed: with HS256 the issuer's public key
	// could be used as a shared secret, and "none" is no signature at all.
	// Default RS256, RS384, ES256, ES384.
	AllowedAlgs []string
	// JWKSURL, when set, is where the issuer's keys are fetched and
	// discovery is skipped (for issuers that publish no
	// .well-known/openid-configuration, such as some SMART servers that
	// only publish .well-known/smart-configuration).
	JWKSURL string
	// KeySet, when set, checks the issuer's signatures locally, and
	// neither discovery nor a key set is fetched: the server's own
	// authorization server, whose keys live in its database. A KeySet
	// error that matches ErrUnavailable under errors.Is fails the token
	// with ErrUnavailable (the keys could not be read); any other error
	// refuses it.
	KeySet oidc.KeySet
	// Operator lets tokens of this issuer grant full access with the claim
	// "operator": true (Claims.Operator). Only the server's own
	// authorization server may be trusted so, which puts the claim only in
	// tokens of clients registered as operators; from any other issuer the
	// claim is ignored.
	Operator bool
}

// Config configures a Verifier. Zero fields take the documented defaults.
type Config struct {
	Issuers []Issuer

	// HTTPClient fetches discovery documents and key sets. Default: a client
	// with a 10 second timeout.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed on "exp" and "nbf". Default 30s.
	Leeway time.Duration
	// DiscoveryRetry is how long to wait after a failed discovery before
	// a token of that issuer tries again. Default 30s.
	DiscoveryRetry time.Duration
	// MinKeyRefresh is the least time between two fetches of an issuer's
	// key set caused by tokens with unknown key ids. Default 10s.
	MinKeyRefresh time.Duration
	// MaxKeyAge is how long fetched keys are trusted before the key set is
	// fetched again, so keys the issuer withdraws stop being accepted.
	// Default 10m.
	MaxKeyAge time.Duration
	// CacheTTL is how long a verified token is remembered, so that a
	// client sending the same token again is not verified again (the
	// signature check is most of the cost of a read). Its expiry and
	// not-before are still checked on every use, against the clock. A key
	// the issuer withdraws stops working for tokens already verified at
	// most this long after the withdrawal is seen. Default 1m; negative
	// turns the cache off.
	CacheTTL time.Duration
}

// Defaults.
const (
	DefaultScopeClaim    = "scope"
	DefaultFHIRUserClaim = "fhirUser"
	DefaultPatientClaim  = "patient"

	defaultLeeway         = 30 * time.Second
	defaultDiscoveryRetry = 30 * time.Second
	defaultMinKeyRefresh  = 10 * time.Second
	defaultMaxKeyAge      = 10 * time.Minute
	defaultCacheTTL       = time.Minute
	// maxCached bounds the verified tokens remembered; when full the
	// cache starts again empty.
	maxCached   = 10000
	httpTimeout = 10 * time.Second

	// maxTokenSize bounds the work spent on a token before its signature
	// is checked. Real access tokens are a few kilobytes.
	maxTokenSize = 32 << 10
)

// defaultAlgs are the algorithms accepted when an Issuer lists none.
var defaultAlgs = []string{"RS256", "RS384", "ES256", "ES384"}

// asymmetricAlgs are the JWS algorithms an Issuer may allow.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Claims is what a verified token says.
type Claims struct {
	Issuer  string
	Subject string
	// ClientID is the client the token was issued to: "client_id"
	// (RFC 9068) or else "azp".
	ClientID string
	// ID is the token's "jti", for audit records; empty if absent.
	ID     string
	Scopes smart.Scopes
	// ScopeErr reports scopes in the token that did not parse and were
	// ignored (see smart.Parse); nil if there were none. For the log.
	ScopeErr error
	// FHIRUser is the user's FHIR resource as the token names it, for
	// example "Practitioner/123" or an absolute URL; empty if absent.
	FHIRUser string
	// Patient is the id of the patient in context; empty if absent.
	Patient string
	// Operator is set when the token carries "operator": true and its
	// issuer is trusted to grant it (Issuer.Operator).
	Operator bool
	// Organization is the Organization a backend client acts for
	// ("Organization/12"), from the "organization" claim of an issuer
	// trusted with Operator (the server's own, which sets it from the
	// client's registration); empty otherwise.
	Organization string
	Expiry       time.Time
}

// Verifier checks bearer tokens against a fixed set of trusted issuers. It is
// safe for concurrent use.
type Verifier struct {
	issuers map[string]*issuer
	cfg     Config
	algs    []jose.SignatureAlgorithm // the union of every issuer's

	mu   sync.Mutex
	seen map[[sha256.Size]byte]cachedClaims // verified tokens, by hash
}

// cachedClaims is a verified token: its claims, its not-before, and when
// the verification stops counting.
type cachedClaims struct {
	claims Claims
	nbf    time.Time
	until  time.Time
}

// issuer is one trusted issuer and its verifier, which is made on the first
// successful discovery.
type issuer struct {
	Issuer
	algs []jose.SignatureAlgorithm

	sem      chan struct{} // held while discovering
	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	tried    time.Time // last discovery attempt
	err      error     // its error
}

// New returns a Verifier for the issuers in cfg. It tries discovery for
// every issuer before returning, concurrently and bounded by ctx, but an
// issuer that cannot be reached is no error: its discovery is tried again
// when one of its tokens arrives (at most once per DiscoveryRetry), and its
// tokens fail with ErrUnavailable until it succeeds. Ready tells which
// issuers are still unavailable. The error is for a configuration that can
// never work: no issuers, a missing URL or audience, a duplicate issuer, an
// algorithm that is not asymmetric.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("token: no issuers configured")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: httpTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Leeway = orDefault(cfg.Leeway, defaultLeeway)
	cfg.DiscoveryRetry = orDefault(cfg.DiscoveryRetry, defaultDiscoveryRetry)
	cfg.MinKeyRefresh = orDefault(cfg.MinKeyRefresh, defaultMinKeyRefresh)
	cfg.MaxKeyAge = orDefault(cfg.MaxKeyAge, defaultMaxKeyAge)
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = defaultCacheTTL
	}

	v := &Verifier{issuers: map[string]*issuer{}, cfg: cfg, seen: map[[sha256.Size]byte]cachedClaims{}}
	for _, ic := range cfg.Issuers {
		is, err := newIssuer(ic)
		if err != nil {
			return nil, err
		}
		if v.issuers[is.URL] != nil {
			return nil, fmt.Errorf("token: issuer %q configured twice", is.URL)
		}
		v.issuers[is.URL] = is
		for _, a := range is.algs {
			if !slices.Contains(v.algs, a) {
				v.algs = append(v.algs, a)
			}
		}
	}
	var wg sync.WaitGroup
	for _, is := range v.issuers {
		wg.Go(func() { _, _ = v.ready(ctx, is) })
	}
	wg.Wait()
	return v, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func newIssuer(ic Issuer) (*issuer, error) {
	if err := checkURL(ic.URL); err != nil {
		return nil, fmt.Errorf("token: issuer URL: %w", err)
	}
	if ic.JWKSURL != "" {
		if err := checkURL(ic.JWKSURL); err != nil {
			return nil, fmt.Errorf("token: issuer %q: JWKS URL: %w", ic.URL, err)
		}
	}
	if ic.Audience == "" {
		return nil, fmt.Errorf("token: issuer %q: no audience", ic.URL)
	}
	if ic.ScopeClaim == "" {
		ic.ScopeClaim = DefaultScopeClaim
	}
	if ic.FHIRUserClaim == "" {
		ic.FHIRUserClaim = DefaultFHIRUserClaim
	}
	if ic.PatientClaim == "" {
		ic.PatientClaim = DefaultPatientClaim
	}
	if len(ic.AllowedAlgs) == 0 {
		ic.AllowedAlgs = defaultAlgs
	}
	ic.AllowedAlgs = slices.Clone(ic.AllowedAlgs)
	is := &issuer{Issuer: ic, sem: make(chan struct{}, 1)}
	for _, a := range ic.AllowedAlgs {
		if !slices.Contains(asymmetricAlgs, a) {
			return nil, fmt.Errorf("token: issuer %q: algorithm %q not allowed (asymmetric algorithms only: %s)", ic.URL, a, strings.Join(asymmetricAlgs, ", "))
		}
		is.algs = append(is.algs, jose.SignatureAlgorithm(a))
	}
	return is, nil
}

// checkURL accepts https URLs, and http URLs on loopback hosts.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("%q must be https (http only on a loopback host)", s)
}

// Ready returns nil when every issuer has been discovered, or an error
// naming those that have not and why. It does not try again: a token of the
// issuer does. For readiness checks and the start-up log.
func (v *Verifier) Ready() error {
	var errs []error
	for _, u := range slices.Sorted(maps.Keys(v.issuers)) {
		is := v.issuers[u]
		is.mu.Lock()
		if is.verifier == nil {
			errs = append(errs, fmt.Errorf("issuer %q: %w", is.URL, is.err))
		}
		is.mu.Unlock()
	}
	return errors.Join(errs...)
}

// ready returns the issuer's verifier, discovering the issuer if that has not
// succeeded yet and the last attempt is more than DiscoveryRetry ago. The
// error is an *Error (ErrUnavailable).
func (v *Verifier) ready(ctx context.Context, is *issuer) (*oidc.IDTokenVerifier, error) {
	if vf, err := v.cached(is); vf != nil || err != nil {
		return vf, err
	}
	select {
	case is.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, unavailable("issuer unavailable", ctx.Err())
	}
	defer func() { <-is.sem }()
	if vf, err := v.cached(is); vf != nil || err != nil {
		return vf, err // another caller has just tried
	}
	vf, err := v.discover(ctx, is)
	is.mu.Lock()
	defer is.mu.Unlock()
	is.tried, is.verifier, is.err = v.cfg.Now(), vf, err
	if err != nil {
		return nil, unavailable("issuer unavailable", err)
	}
	return vf, nil
}

// cached returns the verifier if there is one, or the last discovery error
// if the next attempt is not due; both nil means: try now.
func (v *Verifier) cached(is *issuer) (*oidc.IDTokenVerifier, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.verifier != nil {
		return is.verifier, nil
	}
	if !is.tried.IsZero() && v.cfg.Now().Sub(is.tried) < v.cfg.DiscoveryRetry {
		return nil, unavailable("issuer unavailable", is.err)
	}
	return nil, nil
}

// discover reads the issuer's discovery document (unless its JWKS URL is
// configured) and makes its verifier. go-oidc checks that the document names
// the same issuer. Discovery runs on its own context with a timeout, so a
// client that goes away does not count as a failed discovery.
func (v *Verifier) discover(ctx context.Context, is *issuer) (*oidc.IDTokenVerifier, error) {
	if is.KeySet != nil {
		return oidc.NewVerifier(is.URL, localKeySet{is.KeySet}, &oidc.Config{
			SupportedSigningAlgs: is.AllowedAlgs,
			SkipClientIDCheck:    true,
			SkipExpiryCheck:      true,
		}), nil
	}
	jwksURL := is.JWKSURL
	if jwksURL == "" {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpTimeout)
		defer cancel()
		p, err := oidc.NewProvider(oidc.ClientContext(dctx, v.cfg.HTTPClient), is.URL)
		if err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		var meta struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := p.Claims(&meta); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		if err := checkURL(meta.JWKSURI); err != nil {
			return nil, fmt.Errorf("discovery: jwks_uri: %w", err)
		}
		jwksURL = meta.JWKSURI
	}
	ks := &keySet{
		url:        jwksURL,
		algs:       is.algs,
		client:     v.cfg.HTTPClient,
		now:        v.cfg.Now,
		minRefresh: v.cfg.MinKeyRefresh,
		maxAge:     v.cfg.MaxKeyAge,
		timeout:    httpTimeout,
	}
	return oidc.NewVerifier(is.URL, ks, &oidc.Config{
		SupportedSigningAlgs: is.AllowedAlgs,
		// Audience, expiry and not-before are checked in Verify, with the
		// configured clock and leeway and with errors the client can read.
		SkipClientIDCheck: true,
		SkipExpiryCheck:   true,
	}), nil
}

// Verify checks rawToken (the bearer token, without "Bearer ") and returns
// its claims. The token must be a compact JWS whose unverified "iss" names a
// configured issuer; it must be signed with one of that issuer's allowed
// algorithms by a current key of the issuer, carry the issuer's audience in
// "aud", have an "exp" not past and an "nbf" (if any) not ahead, both within
// the leeway. Scopes that do not parse are left out and reported in
// Claims.ScopeErr; they do not make the token invalid.
//
// Every error is an *Error: ErrInvalidToken when the token is refused,
// ErrUnavailable when its issuer cannot be reached to check it.
//
// A token verified before (within Config.CacheTTL) is not verified again;
// only its expiry and not-before are, against the clock.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (*Claims, error) {
	if rawToken == "" {
		return nil, invalid("missing token", nil)
	}
	if len(rawToken) > maxTokenSize {
		return nil, invalid("token too large", nil)
	}
	if v.cfg.CacheTTL < 0 {
		c, _, err := v.verify(ctx, rawToken)
		return c, err
	}
	key := sha256.Sum256([]byte(rawToken))
	now := v.cfg.Now()
	v.mu.Lock()
	hit, ok := v.seen[key]
	v.mu.Unlock()
	if ok && now.Before(hit.until) {
		if err := v.checkTimes(hit.claims.Expiry, hit.nbf, now); err != nil {
			return nil, err
		}
		c := hit.claims
		return &c, nil
	}
	c, nbf, err := v.verify(ctx, rawToken)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if len(v.seen) >= maxCached {
		clear(v.seen)
	}
	v.seen[key] = cachedClaims{claims: *c, nbf: nbf, until: now.Add(v.cfg.CacheTTL)}
	v.mu.Unlock()
	return c, nil
}

// checkTimes checks a token's expiry and not-before against now, within
// the leeway.
func (v *Verifier) checkTimes(exp, nbf, now time.Time) error {
	if now.After(exp.Add(v.cfg.Leeway)) {
		return invalid("token expired", fmt.Errorf("exp %s, now %s", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	if !nbf.IsZero() && now.Add(v.cfg.Leeway).Before(nbf) {
		return invalid("token not yet valid", fmt.Errorf("nbf %s, now %s", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	return nil
}

// verify checks a token as Verify describes, without the cache, and
// returns its claims and its not-before (zero when it has none).
func (v *Verifier) verify(ctx context.Context, rawToken string) (*Claims, time.Time, error) {
	// The issuer decides the keys and algorithms, so it is read before the
	// signature is checked; nothing else is trusted until then.
	jws, err := jose.ParseSignedCompact(rawToken, v.algs)
	if err != nil {
		return nil, time.Time{}, invalid("malformed token or algorithm not allowed", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, time.Time{}, invalid("malformed token", errors.New("not exactly one signature"))
	}
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return nil, time.Time{}, invalid("malformed token", err)
	}
	is := v.issuers[unverified.Issuer]
	if is == nil {
		return nil, time.Time{}, invalid("unknown issuer", fmt.Errorf("iss %.200q", unverified.Issuer))
	}
	if alg := jws.Signatures[0].Header.Algorithm; !slices.Contains(is.AllowedAlgs, alg) {
		return nil, time.Time{}, invalid("algorithm not allowed", fmt.Errorf("alg %.20q from %s", alg, is.URL))
	}
	vf, err := v.ready(ctx, is)
	if err != nil {
		return nil, time.Time{}, err
	}

	st := &verifyState{}
	tok, err := vf.Verify(context.WithValue(ctx, stateKey{}, st), rawToken)
	switch {
	case err == nil:
	case st.unavailable != nil:
		return nil, time.Time{}, unavailable("issuer keys unavailable", st.unavailable)
	case st.reason != "":
		return nil, time.Time{}, invalid(st.reason, err)
	case st.verified:
		// Signed by the issuer, but go-oidc could not read its claims.
		return nil, time.Time{}, invalid("malformed claims", err)
	default:
		return nil, time.Time{}, invalid("invalid token", err)
	}

	now := v.cfg.Now()
	if !slices.Contains(tok.Audience, is.Audience) {
		return nil, time.Time{}, invalid("wrong audience", fmt.Errorf("aud %.200q, want %q", tok.Audience, is.Audience))
	}
	if tok.Expiry.IsZero() {
		return nil, time.Time{}, invalid("token has no expiry", nil)
	}

	var raw map[string]json.RawMessage
	if err := tok.Claims(&raw); err != nil {
		return nil, time.Time{}, invalid("malformed token", err)
	}
	nbf, _, err := numericDate(raw["nbf"])
	if err != nil {
		return nil, time.Time{}, invalid("malformed claim nbf", err)
	}

	if err := v.checkTimes(tok.Expiry, nbf, now); err != nil {
		return nil, time.Time{}, err
	}

	c := &Claims{Issuer: tok.Issuer, Subject: tok.Subject, Expiry: tok.Expiry}
	for _, f := range []struct {
		claim string
		dst   *string
	}{
		{is.FHIRUserClaim, &c.FHIRUser},
		{is.PatientClaim, &c.Patient},
		{"jti", &c.ID},
		{"client_id", &c.ClientID},
	} {
		if err := stringClaim(raw[f.claim], f.dst); err != nil {
			return nil, time.Time{}, invalid("malformed claim "+f.claim, err)
		}
	}
	if c.ClientID == "" {
		if err := stringClaim(raw["azp"], &c.ClientID); err != nil {
			return nil, time.Time{}, invalid("malformed claim azp", err)
		}
	}
	if is.Operator {
		if op := raw["operator"]; op != nil && string(op) != "null" {
			if err := json.Unmarshal(op, &c.Operator); err != nil {
				return nil, time.Time{}, invalid("malformed claim operator", err)
			}
		}
		if err := stringClaim(raw["organization"], &c.Organization); err != nil {
			return nil, time.Time{}, invalid("malformed claim organization", err)
		}
	}
	scopes, err := scopeText(raw[is.ScopeClaim])
	if err != nil {
		return nil, time.Time{}, invalid("malformed claim "+is.ScopeClaim, err)
	}
	c.Scopes, c.ScopeErr = smart.Parse(scopes)
	return c, nbf, nil
}

// stringClaim sets *dst to the string in raw; an absent or null claim leaves
// it alone, any other JSON type is an error.
func stringClaim(raw json.RawMessage, dst *string) error {
	if raw == nil || string(raw) == "null" {
		return nil
	}
	return json.Unmarshal(raw, dst)
}

// scopeText returns the scopes in raw, a space-separated string or an array
// of strings, as one space-separated string.
func scopeText(raw json.RawMessage) (string, error) {
	if raw == nil || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", errors.New("not a string or an array of strings")
	}
	return strings.Join(list, " "), nil
}

// numericDate reads a JWT NumericDate (seconds since the epoch, possibly
// fractional); ok is false when the claim is absent.
func numericDate(raw json.RawMessage) (t time.Time, ok bool, err error) {
	if raw == nil || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, false, err
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f < 0 || f > 1<<40 {
		return time.Time{}, false, fmt.Errorf("bad NumericDate %.40s", raw)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true, nil
}
