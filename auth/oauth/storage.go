package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/digitaleouder/ouder/fhir"
)

// Storage is everything the authorization server remembers, as bytes and
// strings: what they mean stays in this package. store/postgres implements
// it, so every instance on one database agrees on codes, refresh tokens,
// revocations, used client-assertion ids, clients and keys.
//
// Errors: a missing row is a fhir.NotFound error; a replayed jti, an
// already-inactive session and a lost race are fhir.Conflict errors.
// A context from BeginTx carries a transaction that the other methods
// called with it join, until Commit or Rollback.
type Storage interface {
	// CreateSession stores an active session of kind under handle (a hash,
	// never the token itself), belonging to the authorization requestID,
	// with tokenID the jti of an access token ("" otherwise).
	CreateSession(ctx context.Context, kind, handle, requestID, tokenID string, data []byte, expiresAt time.Time) error
	// Session returns a session, active or not.
	Session(ctx context.Context, kind, handle string) (data []byte, requestID string, active bool, expiresAt time.Time, err error)
	// UpdateSession replaces the data of an active session.
	UpdateSession(ctx context.Context, kind, handle string, data []byte) error
	// DeleteSession removes a session; a missing one is no error.
	DeleteSession(ctx context.Context, kind, handle string) error
	// DeactivateSession marks an active session inactive; Conflict if it
	// is inactive already (the loser of two concurrent uses).
	DeactivateSession(ctx context.Context, kind, handle string) error
	// DeactivateRequest marks every session of kind of requestID inactive.
	DeactivateRequest(ctx context.Context, kind, requestID string) error
	// Revoked reports whether the access token with jti tokenID is stored
	// and inactive.
	Revoked(ctx context.Context, tokenID string) (bool, error)
	// PruneSessions deletes sessions and jti values expired before before.
	PruneSessions(ctx context.Context, before time.Time) (int64, error)

	// UseJTI records a client-assertion jti until expiresAt; Conflict if it
	// is recorded and not expired at now.
	UseJTI(ctx context.Context, jti string, expiresAt, now time.Time) error
	// JTIUsed reports whether jti is recorded and not expired at now.
	JTIUsed(ctx context.Context, jti string, now time.Time) (bool, error)

	// Client returns a registered client's data (a JSON object).
	Client(ctx context.Context, id string) ([]byte, error)
	// PutClient stores a client, replacing one with the same id.
	PutClient(ctx context.Context, id string, data []byte) error
	// Clients calls fn with every client, ordered by id.
	Clients(ctx context.Context, fn func(id string, data []byte) error) error
	// DeleteClient removes a client.
	DeleteClient(ctx context.Context, id string) error

	// SigningKeys calls fn with every signing key, newest first; retired
	// is zero for the current key.
	SigningKeys(ctx context.Context, fn func(kid string, data []byte, created, retired time.Time) error) error
	// AddSigningKey makes kid the current key if the current one is still
	// replaces ("" for none), retiring it; false when another instance
	// rotated first.
	AddSigningKey(ctx context.Context, kid string, data []byte, created time.Time, replaces string) (bool, error)
	// DeleteSigningKeys deletes the keys retired before retiredBefore.
	DeleteSigningKeys(ctx context.Context, retiredBefore time.Time) (int64, error)

	// Setting returns a named setting.
	Setting(ctx context.Context, name string) ([]byte, error)
	// PutSetting sets a named setting.
	PutSetting(ctx context.Context, name string, value []byte) error
	// InitSetting sets a named setting unless it is set, and returns the
	// value in force.
	InitSetting(ctx context.Context, name string, value []byte) ([]byte, error)

	// BeginTx, Commit and Rollback run the calls made with the returned
	// context in one database transaction.
	BeginTx(ctx context.Context) (context.Context, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// The kinds of stored sessions.
const (
	kindCode        = "code"
	kindPKCE        = "pkce"
	kindOIDC        = "oidc"
	kindAccess      = "access"
	kindRefresh     = "refresh"
	kindInteraction = "interaction"
)

// The names of stored settings.
const (
	settingServer = "server" // serverSettings as JSON
	settingSecret = "secret" // the HMAC secret of codes and refresh tokens
)

// handle is how a token, code or interaction id is stored: its SHA-256, so
// that reading the table gives nothing that could be presented.
func handle(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func isNotFound(err error) bool { return fhir.IsKind(err, fhir.NotFound) }
func isConflict(err error) bool { return fhir.IsKind(err, fhir.Conflict) }
