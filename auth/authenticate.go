package auth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/digitaleouder/ouder/auth/token"
	"github.com/digitaleouder/ouder/fhir"
)

// Authenticator turns the bearer token of a request into its Principal. It
// is safe for concurrent use once configured.
type Authenticator struct {
	// Verifier checks tokens against the trusted issuers. Required.
	Verifier *token.Verifier
	// OwnIssuer is the issuer URL of the server's own authorization
	// server, "" when there is none. Its tokens are checked for revocation
	// (Revoked) on every request.
	OwnIssuer string
	// Revoked reports whether a token of the own issuer, by its "jti", has
	// been revoked (with its refresh family). Required with OwnIssuer.
	Revoked func(ctx context.Context, jti string) (bool, error)
	// Base is the server's FHIR base URL: a fhirUser under it is made
	// relative ("Person/12").
	Base string
}

// Authenticate returns the caller of r from its Authorization header
// ("Bearer <token>", RFC 6750 section 2.1).
//
// The error is a *fhir.Error: Unauthorized (401) when there is no token or
// it is refused (the diagnostics say why, in words safe to show the client
// and to put in the WWW-Authenticate error_description), Unavailable (503)
// when the token cannot be checked now (its issuer's keys, or the
// revocation list, cannot be read). The token itself is never part of an
// error.
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	raw, err := bearer(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	c, err := a.Verifier.Verify(ctx, raw)
	if err != nil {
		var te *token.Error
		if errors.As(err, &te) && te.Unavailable {
			return nil, &fhir.Error{Kind: fhir.Unavailable, Err: err, Issues: []fhir.Issue{{
				Code: "transient", Diagnostics: "the token cannot be checked now (" + te.Description + "); try again later",
			}}}
		}
		desc := "invalid token"
		if te != nil {
			desc = te.Description
		}
		return nil, &fhir.Error{Kind: fhir.Unauthorized, Err: err, Issues: []fhir.Issue{{Diagnostics: desc}}}
	}
	own := a.OwnIssuer != "" && c.Issuer == a.OwnIssuer
	if own {
		if c.ID == "" {
			return nil, fhir.Errorf(fhir.Unauthorized, "", "token has no jti")
		}
		revoked, err := a.Revoked(ctx, c.ID)
		if err != nil {
			return nil, &fhir.Error{Kind: fhir.Unavailable, Err: err, Issues: []fhir.Issue{{
				Code: "transient", Diagnostics: "the token cannot be checked now (revocation list unavailable); try again later",
			}}}
		}
		if revoked {
			return nil, fhir.Errorf(fhir.Unauthorized, "", "token revoked")
		}
	}
	return &Principal{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		ClientID: c.ClientID,
		TokenID:  c.ID,
		Scopes:   c.Scopes,
		FHIRUser: LocalReference(c.FHIRUser, a.Base),
		Patient:  c.Patient,
		// Only the own issuer says which organisation a client acts for;
		// the Verifier reads the claim only from issuers configured with
		// Operator (the own one), and this is the second lock.
		Organization: organization(own, c.Organization),
		// Operator comes only from the own issuer (the Verifier reads the
		// claim only from issuers configured with Operator; this is the
		// second lock).
		Operator: own && c.Operator,
	}, nil
}

// organization is the organisation claim of a token as a relative
// reference, "" unless the token is the own issuer's and names an
// Organization.
func organization(own bool, claim string) string {
	if !own || !relativeRef.MatchString(claim) || !strings.HasPrefix(claim, "Organization/") {
		return ""
	}
	return claim
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Values("Authorization")
	switch len(h) {
	case 0:
		return "", fhir.Errorf(fhir.Unauthorized, "", "this server needs a bearer token (Authorization: Bearer <token>)")
	case 1:
	default:
		return "", fhir.Errorf(fhir.Unauthorized, "", "more than one Authorization header")
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	tok = strings.TrimLeft(tok, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
		return "", fhir.Errorf(fhir.Unauthorized, "", "the Authorization header is not \"Bearer <token>\"")
	}
	return tok, nil
}

// relativeRef is a relative FHIR reference Type/id.
var relativeRef = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}$`)

// LocalReference returns ref as a relative reference ("Person/12") when it
// is one or is an absolute URL under base, and "" otherwise (a resource on
// another server, or not a resource reference at all): a fhirUser this
// server does not hold gives access to nothing here.
func LocalReference(ref, base string) string {
	if relativeRef.MatchString(ref) {
		return ref
	}
	base = strings.TrimSuffix(base, "/")
	if base == "" {
		return ""
	}
	rest, ok := strings.CutPrefix(ref, base+"/")
	if !ok {
		return ""
	}
	if u, err := url.Parse(ref); err != nil || u.RawQuery != "" || u.Fragment != "" {
		return ""
	}
	if relativeRef.MatchString(rest) {
		return rest
	}
	return ""
}
