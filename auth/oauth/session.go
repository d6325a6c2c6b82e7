package oauth

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// session is what a grant remembers about who authorised it and what the
// tokens made from it say. It is stored with every code and token (JSON),
// and it makes the claims of the access token (RFC 9068 shape) and of the
// ID token.
type session struct {
	// Subject is the token's "sub": the user's FHIR resource as a relative
	// reference ("Person/123"), or the client id of a backend client.
	Subject  string `json:"sub"`
	ClientID string `json:"client_id"`
	// FHIRUser is the user's FHIR resource as an absolute URL; empty for
	// backend clients.
	FHIRUser string `json:"fhir_user,omitempty"`
	// Patient is the id of the patient in launch context.
	Patient string `json:"patient,omitempty"`
	// Operator marks tokens of an operator client (full access).
	Operator bool `json:"operator,omitempty"`
	// Organization is the Organization a backend client acts for (its
	// registration's), carried in the "organization" claim.
	Organization string `json:"organization,omitempty"`
	// IDP is who authenticated the user: the upstream issuer, or
	// "development" for the development login.
	IDP      string                         `json:"idp,omitempty"`
	AuthTime time.Time                      `json:"auth_time,omitzero"`
	Expires  map[fosite.TokenType]time.Time `json:"expires,omitempty"`
	// IDClaims and IDHeaders are the ID token's (fosite's openid handlers
	// fill in nonce, at_hash and the times).
	IDClaims  *jwt.IDTokenClaims `json:"id_claims,omitempty"`
	IDHeaders *jwt.Headers       `json:"id_headers,omitempty"`
	// TokenID is the jti of the access token made last from this session:
	// each access token gets a fresh one (GetJWTClaims), which its stored
	// session keeps so a revocation can name it.
	TokenID string `json:"jti,omitempty"`
}

var (
	_ oauth2.JWTSessionContainer = (*session)(nil)
	_ openid.Session             = (*session)(nil)
	_ fosite.ExtraClaimsSession  = (*session)(nil)
)

func (s *session) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if s.Expires == nil {
		s.Expires = map[fosite.TokenType]time.Time{}
	}
	s.Expires[key] = exp
}

func (s *session) GetExpiresAt(key fosite.TokenType) time.Time { return s.Expires[key] }
func (s *session) GetUsername() string                         { return "" }
func (s *session) GetSubject() string                          { return s.Subject }

// Clone returns a deep copy of s.
func (s *session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	c.Expires = maps.Clone(s.Expires)
	if s.IDClaims != nil {
		ic := *s.IDClaims
		ic.Audience = slices.Clone(s.IDClaims.Audience)
		ic.AuthenticationMethodsReferences = slices.Clone(s.IDClaims.AuthenticationMethodsReferences)
		ic.Extra = maps.Clone(s.IDClaims.Extra)
		c.IDClaims = &ic
	}
	if s.IDHeaders != nil {
		c.IDHeaders = &jwt.Headers{Extra: maps.Clone(s.IDHeaders.Extra)}
	}
	return &c
}

// GetJWTClaims returns the claims of a new access token: a fresh jti, the
// subject, client_id, fhirUser, patient and operator. fosite adds iss, aud,
// scope, iat and exp.
func (s *session) GetJWTClaims() jwt.JWTClaimsContainer {
	s.TokenID = uuid.NewString()
	extra := map[string]any{"client_id": s.ClientID}
	if s.FHIRUser != "" {
		extra["fhirUser"] = s.FHIRUser
	}
	if s.Patient != "" {
		extra["patient"] = s.Patient
	}
	if s.Operator {
		extra["operator"] = true
	}
	if s.Organization != "" {
		extra["organization"] = s.Organization
	}
	return &jwt.JWTClaims{Subject: s.Subject, JTI: s.TokenID, Extra: extra}
}

// GetJWTHeader marks access tokens as such (RFC 9068 section 2.1).
func (s *session) GetJWTHeader() *jwt.Headers {
	return &jwt.Headers{Extra: map[string]any{"typ": "at+jwt"}}
}

func (s *session) IDTokenHeaders() *jwt.Headers {
	if s.IDHeaders == nil {
		s.IDHeaders = &jwt.Headers{}
	}
	return s.IDHeaders
}

func (s *session) IDTokenClaims() *jwt.IDTokenClaims {
	if s.IDClaims == nil {
		s.IDClaims = &jwt.IDTokenClaims{Subject: s.Subject}
	}
	return s.IDClaims
}

// GetExtraClaims adds the SMART fields to an introspection response.
func (s *session) GetExtraClaims() map[string]any {
	out := map[string]any{}
	if s.FHIRUser != "" {
		out["fhirUser"] = s.FHIRUser
	}
	if s.Patient != "" {
		out["patient"] = s.Patient
	}
	if s.TokenID != "" {
		out["jti"] = s.TokenID
	}
	return out
}

// signer signs with the current key of the ring and verifies with any
// published key, found by the token's kid. fosite's own DefaultSigner
// verifies with the signing key only, which would refuse every token signed
// before a rotation.
type signer struct{ ring *keyRing }

var _ jwt.Signer = signer{}

func (g signer) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	k, err := g.ring.current(ctx)
	if err != nil {
		return "", "", err
	}
	d := jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return &k.privateV3, nil }}
	return d.Generate(ctx, claims, header)
}

func (g signer) Validate(ctx context.Context, token string) (string, error) {
	if _, err := g.Decode(ctx, token); err != nil {
		return "", err
	}
	return g.GetSignature(ctx, token)
}

func (g signer) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (any, error) {
		if t.Method != signingAlg {
			return nil, fmt.Errorf("algorithm %q not allowed", t.Method)
		}
		kid, _ := t.Header["kid"].(string)
		k, err := g.ring.find(ctx, kid)
		if err != nil {
			return nil, err
		}
		if k == nil {
			return nil, fmt.Errorf("unknown key id %.64q", kid)
		}
		pub, ok := k.private.Public().Key.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("signing key is not an RSA key")
		}
		return pub, nil
	})
}

func (g signer) GetSignature(ctx context.Context, token string) (string, error) {
	return (&jwt.DefaultSigner{}).GetSignature(ctx, token)
}

func (g signer) Hash(ctx context.Context, in []byte) ([]byte, error) {
	return (&jwt.DefaultSigner{}).Hash(ctx, in)
}

func (g signer) GetSigningMethodLength(ctx context.Context) int {
	return (&jwt.DefaultSigner{}).GetSigningMethodLength(ctx)
}
