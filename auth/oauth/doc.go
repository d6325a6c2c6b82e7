// Package oauth is the built-in OAuth 2 / OpenID Connect authorization
// server of SMART on FHIR: SMART App Launch (authorization code with PKCE,
// standalone launch with a patient picker, refresh tokens with rotation,
// id_token with fhirUser) and SMART Backend Services (client_credentials
// with private_key_jwt), token introspection (RFC 7662) and revocation
// (RFC 7009), and the discovery documents. The protocol work is done by
// github.com/ory/fosite; its types stay inside this package.
//
// People sign in at an upstream OpenID Connect provider configured by the
// operator (Upstream); the upstream (issuer, subject) is bound to the
// user's FHIR resource (fhirUser) through an identifier found with a FHIR
// search (Lookup). In development mode a development login lists the demo
// family's people instead; it exists only in development mode.
//
// Access tokens are JWTs in the shape of RFC 9068 signed with keys kept in
// the database (Storage), rotated by age or by `ouderctl keys rotate`; the
// resource server verifies them with KeySet and asks Revoked about
// revocations. Everything the server remembers is in Storage, so every
// ouderd instance on one database agrees.
package oauth
