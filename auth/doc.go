// Package auth is who is calling and what they may do. It holds the
// request's Principal (auth.PrincipalFrom(ctx)), the Authenticator that
// makes it from a bearer token, and the interactions the access decision
// knows; its subpackages hold the parts:
//
//   - auth/token: verification of bearer tokens from trusted issuers,
//     external ones and the built-in authorization server alike.
//   - auth/smart: SMART App Launch scopes, what a set of them permits, the
//     search constraints of granular scopes, and narrowing a request to what
//     is granted.
//   - auth/oauth: the built-in authorization server and its pages (SMART App
//     Launch and Backend Services: authorize, token, refresh,
//     introspection, keys).
//   - auth/policy: the access decision point, the one function that turns a
//     caller, an interaction and resource types into a search.Access (the
//     predicate the store compiles into every read and write) or a 403.
//     Scopes decide today; care-team membership, Consents, age rules and
//     withheld labels (issue #7) extend the same function.
//
// auth returns decisions and predicates; it never runs SQL itself, and it
// depends only on the centre (fhir, fhir/search, conformance), never on the
// store or the REST layer.
package auth
