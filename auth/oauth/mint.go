package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/jwt"

	"github.com/digitaleouder/ouder/auth/smart"
)

// MintRequest asks for a token minted without a grant (development only).
type MintRequest struct {
	// As is the token's subject: a fhirUser as a relative reference
	// ("Person/123", "RelatedPerson/..", "Practitioner/..", "Patient/..") or
	// the id of a registered client.
	As string
	// Scope is the space-separated scopes asked for, narrowed to the
	// client's registration; a person's token is issued to the development
	// app (DevAppClient) and narrowed to its scopes.
	Scope string
	// Patient is the patient in launch context (a person's token only);
	// default the person itself when As is a Patient.
	Patient string
}

// ErrNotDevelopment is returned by Mint when the database's server does not
// run in development mode.
var ErrNotDevelopment = errors.New("development mode is off: tokens are minted only for a server started with -dev")

// Mint returns an access token for req, signed with the server's current
// key and stored like any other (so it can be introspected and revoked),
// when the server on this database runs in development mode; else
// ErrNotDevelopment. It is for `ouderctl token`, so that curl examples work:
// a person's token lives an hour, a client's five minutes.
func Mint(ctx context.Context, st Storage, req MintRequest, now time.Time) (string, error) {
	raw, err := st.Setting(ctx, settingServer)
	if isNotFound(err) {
		return "", ErrNotDevelopment
	}
	if err != nil {
		return "", fmt.Errorf("oauth.Mint: %w", err)
	}
	var set serverSettings
	if err := json.Unmarshal(raw, &set); err != nil {
		return "", fmt.Errorf("oauth.Mint: settings: %w", err)
	}
	if !set.Dev {
		return "", ErrNotDevelopment
	}

	sess := &session{}
	var granted []string
	var client fosite.Client
	lifespan := maxAccessTokenLifespan
	if strings.Contains(req.As, "/") {
		if !refPattern.MatchString(req.As) {
			return "", fmt.Errorf("--as %q: want Person/id, RelatedPerson/id, Practitioner/id or Patient/id, or a client id", req.As)
		}
		app, err := GetClient(ctx, st, DevAppClient)
		if err != nil {
			return "", fmt.Errorf("development app client %s: %w", DevAppClient, err)
		}
		granted, err = narrow(req.Scope, app.Scope, []smart.Kind{smart.Patient, smart.User}, true)
		if err != nil {
			return "", fmt.Errorf("scope: %w", err)
		}
		patient := req.Patient
		if id, ok := strings.CutPrefix(req.As, "Patient/"); ok && patient == "" {
			patient = id
		}
		sess.Subject, sess.ClientID, sess.FHIRUser, sess.Patient = req.As, app.ID, set.Audience+"/"+req.As, patient
		sess.IDP, sess.AuthTime = "ouderctl", now.UTC()
		client = &fositeClient{c: app, audience: set.Audience}
	} else {
		if req.Patient != "" {
			return "", errors.New("--patient is for a person's token, not a client's")
		}
		c, err := GetClient(ctx, st, req.As)
		if isNotFound(err) {
			return "", fmt.Errorf("--as %q: no such client (ouderctl clients list)", req.As)
		}
		if err != nil {
			return "", err
		}
		levels := []smart.Kind{smart.Patient, smart.User}
		if c.Kind == Backend {
			levels, lifespan = []smart.Kind{smart.System}, backendTokenLifespan
		}
		granted, err = narrow(req.Scope, c.Scope, levels, c.Kind != Backend)
		if err != nil {
			return "", fmt.Errorf("scope: %w", err)
		}
		sess.Subject, sess.ClientID, sess.Operator, sess.Organization = c.ID, c.ID, c.Operator, c.Organization
		client = &fositeClient{c: c, audience: set.Audience}
	}
	if len(granted) == 0 {
		return "", fmt.Errorf("none of the scopes %q can be granted to %s", req.Scope, req.As)
	}

	ring := &keyRing{st: st, now: func() time.Time { return now }, maxAge: DefaultKeyMaxAge}
	conf := &fosite.Config{AccessTokenIssuer: set.Issuer, JWTScopeClaimKey: jwt.JWTScopeFieldString}
	strategy := &oauth2.DefaultJWTStrategy{Signer: signer{ring: ring}, HMACSHAStrategy: compose.NewOAuth2HMACStrategy(conf), Config: conf}
	sess.SetExpiresAt(fosite.AccessToken, now.Add(lifespan).UTC().Truncate(time.Second))
	ar := &fosite.Request{
		ID:          uuid.NewString(),
		RequestedAt: now.UTC(),
		Client:      client,
		Session:     sess,
		Form:        map[string][]string{},
	}
	for _, sc := range granted {
		ar.GrantScope(sc)
	}
	ar.GrantAudience(set.Audience)
	token, signature, err := strategy.GenerateAccessToken(ctx, ar)
	if err != nil {
		return "", fmt.Errorf("oauth.Mint: %w", err)
	}
	store := &fositeStore{st: st, now: func() time.Time { return now }, audience: set.Audience}
	if err := store.CreateAccessTokenSession(ctx, signature, ar); err != nil {
		return "", fmt.Errorf("oauth.Mint: %w", err)
	}
	return token, nil
}
