package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/token"
	"github.com/digitaleouder/ouder/fhir"
)

// ownIssuer is the server's own authorization server, as the resource
// server needs it: its issuer URL, its signing keys (read locally, no HTTP)
// and its revocations. The built-in authorization server provides it.
type ownIssuer interface {
	Issuer() string
	KeySet() oidc.KeySet
	Revoked(ctx context.Context, jti string) (bool, error)
}

// authentication returns what authenticates every /fhir request: the
// tokens of own (nil: none) and of the external issuers listed in the
// -trusted-issuers file, each with the FHIR base as audience (own) or the
// audience the file gives. Only own's tokens may make their holder an
// operator, and only own's tokens are checked for revocation.
//
// With no issuer at all every request is refused (401): there is no token
// this server could accept.
func (m *Main) authentication(ctx context.Context, base string, own ownIssuer) (func(*http.Request) (*auth.Principal, error), error) {
	var issuers []token.Issuer
	if own != nil {
		issuers = append(issuers, token.Issuer{URL: own.Issuer(), Audience: base, KeySet: own.KeySet(), Operator: true})
	}
	if path := m.Config.TrustedIssuers; path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("-trusted-issuers: %w", err)
		}
		external, err := token.ReadIssuers(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("-trusted-issuers %s: %w", path, err)
		}
		issuers = append(issuers, external...)
	}
	if len(issuers) == 0 {
		m.Logger.Warn("no token issuer configured: every /fhir request except metadata is refused (set -trusted-issuers or run the built-in authorization server)")
		return func(*http.Request) (*auth.Principal, error) {
			return nil, fhir.Errorf(fhir.Unauthorized, "", "this server accepts no tokens: no issuer is configured")
		}, nil
	}
	v, err := token.New(ctx, token.Config{Issuers: issuers})
	if err != nil {
		return nil, err
	}
	if err := v.Ready(); err != nil {
		m.Logger.Warn("token issuers not reachable yet; their tokens answer 503 until they are", slog.String("error", err.Error()))
	}
	a := &auth.Authenticator{Verifier: v, Base: base}
	if own != nil {
		a.OwnIssuer, a.Revoked = own.Issuer(), own.Revoked
	}
	for _, is := range issuers {
		m.Logger.Info("trusting token issuer", slog.String("issuer", is.URL), slog.String("audience", is.Audience), slog.Bool("own", is.KeySet != nil))
	}
	return a.Authenticate, nil
}
