package auth

import (
	"context"

	"github.com/digitaleouder/ouder/auth/smart"
)

// Principal is who is calling: the verified bearer token of the request,
// reduced to what the access decision needs. A Principal is made once per
// request by the authentication middleware and never changed afterwards.
type Principal struct {
	// Issuer and Subject identify the token's subject: a person logged in
	// through an authorization server, or a backend client (for
	// client_credentials tokens the subject is the client id).
	Issuer  string
	Subject string
	// ClientID is the client application the token was issued to.
	ClientID string
	// TokenID is the token's "jti" (for audit records); may be empty.
	TokenID string
	// Scopes are the SMART scopes the token grants.
	Scopes smart.Scopes
	// FHIRUser is the user's own FHIR resource as a relative reference
	// ("Person/123", "Practitioner/7", "RelatedPerson/4", "Patient/9"); empty
	// for backend clients.
	FHIRUser string
	// Patient is the id of the patient in launch context (patient/ scopes
	// are confined to that patient's compartment); empty if none.
	Patient string
	// Organization is the Organization behind a backend client
	// ("Organization/12"), from the client's registration at the server's
	// own authorization server (the token's "organization" claim, read
	// from the own issuer only); empty for users and other clients. The
	// access policy treats it as the client's identity: its CareTeam
	// memberships and the Consents naming it decide what the client sees.
	Organization string
	// Operator marks a caller with full access to every resource: the
	// development-mode admin client, or a client the operator granted it
	// explicitly. Every use is audited.
	Operator bool
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller of the request ctx belongs to, or nil when
// the request is not authenticated.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
