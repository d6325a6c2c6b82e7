// Package auth is who is calling and what they may do. It will hold the
// request's Principal (auth.PrincipalFrom(ctx)) and the HTTP middleware that
// sets it; its subpackages hold the parts:
//
//   - auth/token: verification of bearer tokens from trusted issuers,
//     external ones and the built-in authorization server alike (exists).
//   - auth/smart: SMART App Launch scopes, what a set of them permits, the
//     search constraints of granular scopes, and narrowing a request to what
//     is granted (exists).
//   - the built-in authorization server and its pages (SMART App Launch and
//     Backend Services: authorize, token, refresh, introspection, keys).
//   - the policy decision point, which combines scopes, care-team
//     membership, Consents, age rules and withheld labels into decisions and
//     into predicates the store compiles into its search SQL.
//
// auth returns decisions and predicates; it never runs SQL itself, and it
// depends only on the centre (fhir, mapping), never on the store or the REST
// layer. The policy wraps the store in one place, so every read and write
// path passes through it.
package auth
