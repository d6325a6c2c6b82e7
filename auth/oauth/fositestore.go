package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fstorage "github.com/ory/fosite/storage"
)

// fositeStore is fosite's storage on top of Storage: requests are stored
// as JSON (storedRequest), every handle as its SHA-256, and expiry is
// judged with the server's clock.
type fositeStore struct {
	st       Storage
	now      func() time.Time
	audience string
	// Lifespans used for a row whose session names no expiry.
	codeLifespan, refreshLifespan time.Duration
}

var (
	_ fosite.Storage                     = (*fositeStore)(nil)
	_ oauth2.CoreStorage                 = (*fositeStore)(nil)
	_ oauth2.TokenRevocationStorage      = (*fositeStore)(nil)
	_ pkce.PKCERequestStorage            = (*fositeStore)(nil)
	_ openid.OpenIDConnectRequestStorage = (*fositeStore)(nil)
	_ fstorage.Transactional             = (*fositeStore)(nil)
)

// storedRequest is a fosite request as stored.
type storedRequest struct {
	ID                string     `json:"id"`
	RequestedAt       time.Time  `json:"requested_at"`
	ClientID          string     `json:"client_id"`
	RequestedScope    []string   `json:"requested_scope,omitempty"`
	GrantedScope      []string   `json:"granted_scope,omitempty"`
	RequestedAudience []string   `json:"requested_audience,omitempty"`
	GrantedAudience   []string   `json:"granted_audience,omitempty"`
	Form              url.Values `json:"form,omitempty"`
	Session           *session   `json:"session"`
}

func (f *fositeStore) encode(r fosite.Requester) ([]byte, *session, error) {
	sess, ok := r.GetSession().(*session)
	if !ok {
		return nil, nil, fmt.Errorf("oauth: unexpected session type %T", r.GetSession())
	}
	data, err := json.Marshal(storedRequest{
		ID:                r.GetID(),
		RequestedAt:       r.GetRequestedAt(),
		ClientID:          r.GetClient().GetID(),
		RequestedScope:    r.GetRequestedScopes(),
		GrantedScope:      r.GetGrantedScopes(),
		RequestedAudience: r.GetRequestedAudience(),
		GrantedAudience:   r.GetGrantedAudience(),
		Form:              r.GetRequestForm(),
		Session:           sess,
	})
	return data, sess, err
}

func (f *fositeStore) decode(ctx context.Context, data []byte) (*fosite.Request, error) {
	var sr storedRequest
	if err := json.Unmarshal(data, &sr); err != nil {
		return nil, fmt.Errorf("oauth: stored request: %w", err)
	}
	client, err := f.GetClient(ctx, sr.ClientID)
	if err != nil {
		return nil, err
	}
	if sr.Session == nil {
		sr.Session = &session{}
	}
	if sr.Form == nil {
		sr.Form = url.Values{}
	}
	return &fosite.Request{
		ID:                sr.ID,
		RequestedAt:       sr.RequestedAt,
		Client:            client,
		RequestedScope:    sr.RequestedScope,
		GrantedScope:      sr.GrantedScope,
		RequestedAudience: sr.RequestedAudience,
		GrantedAudience:   sr.GrantedAudience,
		Form:              sr.Form,
		Session:           sr.Session,
	}, nil
}

// create stores r under kind and the hash of key.
func (f *fositeStore) create(ctx context.Context, kind, key string, r fosite.Requester, expiry fosite.TokenType, fallback time.Duration) error {
	data, sess, err := f.encode(r)
	if err != nil {
		return err
	}
	exp := sess.GetExpiresAt(expiry)
	if exp.IsZero() {
		exp = f.now().Add(fallback)
	}
	tokenID := ""
	if kind == kindAccess {
		tokenID = sess.TokenID
	}
	return f.st.CreateSession(ctx, kind, handle(key), r.GetID(), tokenID, data, exp)
}

// get returns the request stored under kind and the hash of key, and
// whether it is active. Missing and expired are fosite.ErrNotFound.
func (f *fositeStore) get(ctx context.Context, kind, key string) (*fosite.Request, bool, error) {
	data, _, active, exp, err := f.st.Session(ctx, kind, handle(key))
	if isNotFound(err) {
		return nil, false, fosite.ErrNotFound
	}
	if err != nil {
		return nil, false, err
	}
	if !exp.After(f.now()) {
		return nil, false, fosite.ErrNotFound
	}
	r, err := f.decode(ctx, data)
	if err != nil {
		return nil, false, err
	}
	return r, active, nil
}

func (f *fositeStore) delete(ctx context.Context, kind, key string) error {
	return f.st.DeleteSession(ctx, kind, handle(key))
}

// GetClient returns a registered client as fosite sees it; unknown is
// fosite.ErrNotFound.
func (f *fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := GetClient(ctx, f.st, id)
	if isNotFound(err) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return newFositeClient(ctx, c, f.audience)
}

// ClientAssertionJWTValid refuses a client-assertion jti seen before.
func (f *fositeStore) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	used, err := f.st.JTIUsed(ctx, jti, f.now())
	if err != nil {
		return err
	}
	if used {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT records a client-assertion jti until exp; a jti
// recorded concurrently is refused here, in one statement.
func (f *fositeStore) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	err := f.st.UseJTI(ctx, jti, exp, f.now())
	if isConflict(err) {
		return fosite.ErrJTIKnown.WithHint("Claim 'jti' from 'client_assertion' MUST only be used once.")
	}
	return err
}

func (f *fositeStore) CreateAuthorizeCodeSession(ctx context.Context, code string, r fosite.Requester) error {
	return f.create(ctx, kindCode, code, r, fosite.AuthorizeCode, f.codeLifespan)
}

// GetAuthorizeCodeSession returns the request of a code; a used code
// answers with its request and fosite.ErrInvalidatedAuthorizeCode, so fosite
// revokes what was issued from it.
func (f *fositeStore) GetAuthorizeCodeSession(ctx context.Context, code string, _ fosite.Session) (fosite.Requester, error) {
	r, active, err := f.get(ctx, kindCode, code)
	if err != nil {
		return nil, err
	}
	if !active {
		return r, fosite.ErrInvalidatedAuthorizeCode
	}
	return r, nil
}

// InvalidateAuthorizeCodeSession marks a code used. Of two concurrent uses,
// the second fails here.
func (f *fositeStore) InvalidateAuthorizeCodeSession(ctx context.Context, code string) error {
	err := f.st.DeactivateSession(ctx, kindCode, handle(code))
	if isConflict(err) {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	if isNotFound(err) {
		return fosite.ErrNotFound
	}
	return err
}

func (f *fositeStore) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return f.create(ctx, kindPKCE, signature, r, fosite.AuthorizeCode, f.codeLifespan)
}

func (f *fositeStore) GetPKCERequestSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	r, _, err := f.get(ctx, kindPKCE, signature)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (f *fositeStore) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return f.delete(ctx, kindPKCE, signature)
}

func (f *fositeStore) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return f.create(ctx, kindOIDC, code, r, fosite.AuthorizeCode, f.codeLifespan)
}

func (f *fositeStore) GetOpenIDConnectSession(ctx context.Context, code string, _ fosite.Requester) (fosite.Requester, error) {
	r, _, err := f.get(ctx, kindOIDC, code)
	if err == fosite.ErrNotFound {
		return nil, openid.ErrNoSessionFound
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (f *fositeStore) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return f.delete(ctx, kindOIDC, code)
}

func (f *fositeStore) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return f.create(ctx, kindAccess, signature, r, fosite.AccessToken, time.Hour)
}

// GetAccessTokenSession returns the request of an access token; a revoked
// one is fosite.ErrNotFound (inactive).
func (f *fositeStore) GetAccessTokenSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	r, active, err := f.get(ctx, kindAccess, signature)
	if err != nil {
		return nil, err
	}
	if !active {
		return nil, fosite.ErrNotFound
	}
	return r, nil
}

// DeleteAccessTokenSession revokes an access token: its row stays, inactive,
// until it expires, so Revoked can answer for its jti.
func (f *fositeStore) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	err := f.st.DeactivateSession(ctx, kindAccess, handle(signature))
	if isNotFound(err) || isConflict(err) {
		return nil
	}
	return err
}

func (f *fositeStore) CreateRefreshTokenSession(ctx context.Context, signature, _ string, r fosite.Requester) error {
	return f.create(ctx, kindRefresh, signature, r, fosite.RefreshToken, f.refreshLifespan)
}

// GetRefreshTokenSession returns the request of a refresh token; a rotated
// or revoked one answers with its request and fosite.ErrInactiveToken, so
// fosite revokes the whole family on reuse.
func (f *fositeStore) GetRefreshTokenSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	r, active, err := f.get(ctx, kindRefresh, signature)
	if err != nil {
		return nil, err
	}
	if !active {
		return r, fosite.ErrInactiveToken
	}
	return r, nil
}

func (f *fositeStore) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return f.delete(ctx, kindRefresh, signature)
}

// RotateRefreshToken retires the refresh token just used and the access
// tokens of its family. Of two concurrent uses of one refresh token, the
// second fails here.
func (f *fositeStore) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	err := f.st.DeactivateSession(ctx, kindRefresh, handle(signature))
	switch {
	case isConflict(err):
		return fosite.ErrInactiveToken
	case isNotFound(err):
		return fosite.ErrNotFound
	case err != nil:
		return err
	}
	return f.st.DeactivateRequest(ctx, kindAccess, requestID)
}

func (f *fositeStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return f.st.DeactivateRequest(ctx, kindRefresh, requestID)
}

func (f *fositeStore) RevokeRefreshTokenMaybeGracePeriod(ctx context.Context, requestID, _ string) error {
	return f.RevokeRefreshToken(ctx, requestID)
}

func (f *fositeStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	return f.st.DeactivateRequest(ctx, kindAccess, requestID)
}

func (f *fositeStore) BeginTX(ctx context.Context) (context.Context, error) { return f.st.BeginTx(ctx) }
func (f *fositeStore) Commit(ctx context.Context) error                     { return f.st.Commit(ctx) }
func (f *fositeStore) Rollback(ctx context.Context) error                   { return f.st.Rollback(ctx) }
