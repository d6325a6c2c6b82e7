package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/fhir"
)

// OAuth is the storage of the built-in authorization server (auth/oauth):
// grant sessions, used client-assertion ids, clients, signing keys and
// settings, in the tables of migration 005. It deals in bytes and strings;
// what they mean is auth/oauth's business. It satisfies oauth.Storage (the
// wiring in cmd/ouderd checks that at compile time).
//
// Errors: a missing row is a fhir.NotFound error; a replayed jti, an
// already-inactive session and a lost race are fhir.Conflict errors;
// anything else is wrapped with the operation.
//
// A context from BeginTx carries a database transaction: every method
// called with it runs in that transaction until Commit or Rollback.
type OAuth struct {
	pool     *pgxpool.Pool
	onRevoke atomic.Pointer[func(jti string, expiresAt time.Time)]
}

// oauthTx is the transaction a BeginTx context carries, with the
// revocations to announce when it commits.
type oauthTx struct {
	pgx.Tx
	revoked []revocation
}

// NewOAuth returns the authorization server's storage on pool. The schema
// must have been migrated (Migrate).
func NewOAuth(pool *pgxpool.Pool) *OAuth { return &OAuth{pool: pool} }

type oauthTxKey struct{}

// db returns the transaction of ctx, or the pool.
func (o *OAuth) db(ctx context.Context) dbtx {
	if tx, ok := ctx.Value(oauthTxKey{}).(*oauthTx); ok {
		return tx
	}
	return o.pool
}

// BeginTx starts a database transaction and returns a context that carries
// it. The caller must end it with Commit or Rollback on that context.
func (o *OAuth) BeginTx(ctx context.Context) (context.Context, error) {
	if _, ok := ctx.Value(oauthTxKey{}).(*oauthTx); ok {
		return nil, errors.New("postgres.OAuth.BeginTx: a transaction is already open")
	}
	tx, err := o.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres.OAuth.BeginTx: %w", err)
	}
	return context.WithValue(ctx, oauthTxKey{}, &oauthTx{Tx: tx}), nil
}

// Commit commits the transaction of ctx.
func (o *OAuth) Commit(ctx context.Context) error {
	tx, ok := ctx.Value(oauthTxKey{}).(*oauthTx)
	if !ok {
		return errors.New("postgres.OAuth.Commit: no transaction")
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres.OAuth.Commit: %w", err)
	}
	o.announce(tx.revoked)
	tx.revoked = nil
	return nil
}

// Rollback rolls back the transaction of ctx. Rolling back a transaction
// that has ended is no error.
func (o *OAuth) Rollback(ctx context.Context) error {
	tx, ok := ctx.Value(oauthTxKey{}).(*oauthTx)
	if !ok {
		return errors.New("postgres.OAuth.Rollback: no transaction")
	}
	tx.revoked = nil
	if err := tx.Rollback(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("postgres.OAuth.Rollback: %w", err)
	}
	return nil
}

// CreateSession stores an active session: an authorization code, the PKCE
// or OpenID Connect data bound to a code, an access or refresh token, or a
// login interaction in progress. handle is a hash of the token or handle
// (never the token itself), requestID the authorization it belongs to (a
// refresh family), tokenID an access token's jti ("" for other kinds). A
// session with the same kind and handle is a Conflict.
func (o *OAuth) CreateSession(ctx context.Context, kind, handle, requestID, tokenID string, data []byte, expiresAt time.Time) (err error) {
	defer wrap(&err, "postgres.OAuth.CreateSession(%q)", kind)
	_, err = o.db(ctx).Exec(ctx, `
		INSERT INTO oauth_sessions (kind, handle, request_id, token_id, data, expires_at)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6)`,
		kind, handle, requestID, tokenID, data, expiresAt)
	if isUniqueViolation(err) {
		return fhir.Errorf(fhir.Conflict, "", "oauth session exists")
	}
	return err
}

// Session returns the session of kind and handle, active or not; NotFound
// if there is none.
func (o *OAuth) Session(ctx context.Context, kind, handle string) (data []byte, requestID string, active bool, expiresAt time.Time, err error) {
	defer wrap(&err, "postgres.OAuth.Session(%q)", kind)
	err = o.db(ctx).QueryRow(ctx, `
		SELECT data, request_id, active, expires_at FROM oauth_sessions
		WHERE kind = $1 AND handle = $2`, kind, handle).
		Scan(&data, &requestID, &active, &expiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		err = fhir.Errorf(fhir.NotFound, "", "no such oauth session")
	}
	return data, requestID, active, expiresAt, err
}

// UpdateSession replaces the data of an active session; NotFound when there
// is no active session of kind and handle.
func (o *OAuth) UpdateSession(ctx context.Context, kind, handle string, data []byte) (err error) {
	defer wrap(&err, "postgres.OAuth.UpdateSession(%q)", kind)
	tag, err := o.db(ctx).Exec(ctx, `
		UPDATE oauth_sessions SET data = $3 WHERE kind = $1 AND handle = $2 AND active`, kind, handle, data)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fhir.Errorf(fhir.NotFound, "", "no such active oauth session")
	}
	return nil
}

// DeleteSession removes a session; removing one that does not exist is no
// error.
func (o *OAuth) DeleteSession(ctx context.Context, kind, handle string) (err error) {
	defer wrap(&err, "postgres.OAuth.DeleteSession(%q)", kind)
	_, err = o.db(ctx).Exec(ctx, `DELETE FROM oauth_sessions WHERE kind = $1 AND handle = $2`, kind, handle)
	return err
}

// DeactivateSession marks an active session inactive (a used authorization
// code, a rotated refresh token). It is the one place where two concurrent
// uses of a code or refresh token are told apart: the row lock makes the
// second wait, and it then finds no active row and gets a Conflict. A
// session that does not exist at all is NotFound.
func (o *OAuth) DeactivateSession(ctx context.Context, kind, handle string) (err error) {
	defer wrap(&err, "postgres.OAuth.DeactivateSession(%q)", kind)
	n, err := o.deactivate(ctx, `kind = $1 AND handle = $2`, kind, handle)
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	var exists bool
	if err := o.db(ctx).QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM oauth_sessions WHERE kind = $1 AND handle = $2)`, kind, handle).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return fhir.Errorf(fhir.NotFound, "", "no such oauth session")
	}
	return fhir.Errorf(fhir.Conflict, "", "oauth session already inactive")
}

// DeactivateRequest marks every session of kind issued for requestID
// inactive (revocation of a token family). None is no error.
func (o *OAuth) DeactivateRequest(ctx context.Context, kind, requestID string) (err error) {
	defer wrap(&err, "postgres.OAuth.DeactivateRequest(%q)", kind)
	_, err = o.deactivate(ctx, `request_id = $2 AND kind = $1`, kind, requestID)
	return err
}

// RevocationChannel is the PostgreSQL notification channel on which every
// revocation of an access token is announced, in the transaction that
// revokes it (so only committed revocations are heard). The payload is the
// token's expiry in Unix seconds, a space, and its jti.
const RevocationChannel = "ouder_revocations"

// deactivate marks the active sessions matching where (over $1, $2)
// inactive, notifies RevocationChannel of every access token among them in
// the same statement, and tells the OnRevoke function about them once they
// are committed. It returns how many sessions it deactivated.
func (o *OAuth) deactivate(ctx context.Context, where string, a, b string) (int, error) {
	rows, err := o.db(ctx).Query(ctx, `
		WITH d AS (
			UPDATE oauth_sessions SET active = false WHERE `+where+` AND active
			RETURNING token_id, expires_at)
		SELECT token_id, expires_at,
		       CASE WHEN token_id IS NOT NULL THEN pg_notify('`+RevocationChannel+`',
		            floor(extract(epoch FROM expires_at))::bigint::text || ' ' || token_id) END
		FROM d`, a, b)
	if err != nil {
		return 0, err
	}
	var revoked []revocation
	var tokenID *string
	var exp time.Time
	var ignored *string
	n := 0
	if _, err := pgx.ForEachRow(rows, []any{&tokenID, &exp, &ignored}, func() error {
		n++
		if tokenID != nil {
			revoked = append(revoked, revocation{jti: *tokenID, exp: exp})
		}
		return nil
	}); err != nil {
		return 0, err
	}
	if len(revoked) > 0 {
		if p, ok := ctx.Value(oauthTxKey{}).(*oauthTx); ok {
			p.revoked = append(p.revoked, revoked...)
		} else {
			o.announce(revoked)
		}
	}
	return n, nil
}

// revocation is a revoked access token: its jti and expiry.
type revocation struct {
	jti string
	exp time.Time
}

// announce tells the OnRevoke function about committed revocations.
func (o *OAuth) announce(revoked []revocation) {
	if fn := o.onRevoke.Load(); fn != nil {
		for _, r := range revoked {
			(*fn)(r.jti, r.exp)
		}
	}
}

// OnRevoke sets fn to be called, after commit, with the jti and expiry of
// every access token this OAuth revokes: an instance learns of its own
// revocations at once, before a response says they are done, while other
// instances hear of them on RevocationChannel.
func (o *OAuth) OnRevoke(fn func(jti string, expiresAt time.Time)) { o.onRevoke.Store(&fn) }

// RevokedTokens calls fn with the jti and expiry of every revoked access
// token that expires after after, and stops at fn's first error.
func (o *OAuth) RevokedTokens(ctx context.Context, after time.Time, fn func(jti string, expiresAt time.Time) error) (err error) {
	defer wrap(&err, "postgres.OAuth.RevokedTokens")
	rows, err := o.db(ctx).Query(ctx, `
		SELECT token_id, expires_at FROM oauth_sessions
		WHERE NOT active AND token_id IS NOT NULL AND expires_at > $1`, after)
	if err != nil {
		return err
	}
	var jti string
	var exp time.Time
	_, err = pgx.ForEachRow(rows, []any{&jti, &exp}, func() error { return fn(jti, exp) })
	return err
}

// ListenRevocations listens on RevocationChannel on a connection of its
// own. Once listening it calls ready (which loads what was revoked
// before: nothing revoked from then on can be missed), then revoked for
// every notification, until ctx ends (it returns ctx's error) or the
// connection fails (it returns that error). A connection idle for 30
// seconds is pinged, so a dead one is noticed.
func (o *OAuth) ListenRevocations(ctx context.Context, ready func(context.Context) error, revoked func(jti string, expiresAt time.Time)) (err error) {
	defer wrap(&err, "postgres.OAuth.ListenRevocations")
	return listen(ctx, o.pool, RevocationChannel, ready, func(payload string) error {
		secs, jti, ok := strings.Cut(payload, " ")
		unix, perr := strconv.ParseInt(secs, 10, 64)
		if !ok || perr != nil || jti == "" {
			return fmt.Errorf("malformed notification %q", payload)
		}
		revoked(jti, time.Unix(unix, 0))
		return nil
	})
}

// Revoked reports whether the access token with jti tokenID was revoked:
// one probe of a small partial index. A jti this database never issued is
// not revoked.
func (o *OAuth) Revoked(ctx context.Context, tokenID string) (revoked bool, err error) {
	defer wrap(&err, "postgres.OAuth.Revoked")
	err = o.db(ctx).QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM oauth_sessions WHERE token_id = $1 AND NOT active AND token_id IS NOT NULL)`,
		tokenID).Scan(&revoked)
	return revoked, err
}

// PruneSessions deletes sessions and used jti values that expired before
// before, and returns how many rows went.
func (o *OAuth) PruneSessions(ctx context.Context, before time.Time) (n int64, err error) {
	defer wrap(&err, "postgres.OAuth.PruneSessions")
	tag, err := o.db(ctx).Exec(ctx, `DELETE FROM oauth_sessions WHERE expires_at < $1`, before)
	if err != nil {
		return 0, err
	}
	n = tag.RowsAffected()
	tag, err = o.db(ctx).Exec(ctx, `DELETE FROM oauth_jti WHERE expires_at < $1`, before)
	if err != nil {
		return n, err
	}
	return n + tag.RowsAffected(), nil
}

// UseJTI records that the client assertion jti was used, until expiresAt.
// A jti already recorded and not yet expired at now is a Conflict: the
// check and the insert are one statement, so two concurrent uses of one
// assertion cannot both succeed.
func (o *OAuth) UseJTI(ctx context.Context, jti string, expiresAt, now time.Time) (err error) {
	defer wrap(&err, "postgres.OAuth.UseJTI")
	tag, err := o.db(ctx).Exec(ctx, `
		INSERT INTO oauth_jti (jti, expires_at) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE SET expires_at = EXCLUDED.expires_at
		WHERE oauth_jti.expires_at < $3`, jti, expiresAt, now)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fhir.Errorf(fhir.Conflict, "", "jti already used")
	}
	return nil
}

// JTIUsed reports whether jti was recorded and has not expired at now.
func (o *OAuth) JTIUsed(ctx context.Context, jti string, now time.Time) (used bool, err error) {
	defer wrap(&err, "postgres.OAuth.JTIUsed")
	err = o.db(ctx).QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM oauth_jti WHERE jti = $1 AND expires_at >= $2)`, jti, now).Scan(&used)
	return used, err
}

// Client returns the stored data of client id; NotFound if unknown.
func (o *OAuth) Client(ctx context.Context, id string) (data []byte, err error) {
	defer wrap(&err, "postgres.OAuth.Client(%q)", id)
	err = o.db(ctx).QueryRow(ctx, `SELECT data::text FROM oauth_clients WHERE id = $1`, id).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fhir.Errorf(fhir.NotFound, "", "no client %q", id)
	}
	return data, err
}

// PutClient stores a client, replacing one with the same id. data must be
// a JSON object.
func (o *OAuth) PutClient(ctx context.Context, id string, data []byte) (err error) {
	defer wrap(&err, "postgres.OAuth.PutClient(%q)", id)
	_, err = o.db(ctx).Exec(ctx, `
		INSERT INTO oauth_clients (id, data) VALUES ($1, $2::text::jsonb)
		ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, updated_at = now()`, id, string(data))
	return err
}

// Clients calls fn with every registered client, ordered by id, and stops
// at fn's first error.
func (o *OAuth) Clients(ctx context.Context, fn func(id string, data []byte) error) (err error) {
	defer wrap(&err, "postgres.OAuth.Clients")
	rows, err := o.db(ctx).Query(ctx, `SELECT id, data::text FROM oauth_clients ORDER BY id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var id string
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &data}, func() error { return fn(id, data) })
	return err
}

// DeleteClient removes client id and every session it holds; NotFound if
// there is no such client.
func (o *OAuth) DeleteClient(ctx context.Context, id string) (err error) {
	defer wrap(&err, "postgres.OAuth.DeleteClient(%q)", id)
	tag, err := o.db(ctx).Exec(ctx, `DELETE FROM oauth_clients WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fhir.Errorf(fhir.NotFound, "", "no client %q", id)
	}
	return nil
}

// SigningKeys calls fn with every signing key, newest first: its key id,
// the private key (a JWK), when it was made and when it stopped signing
// (zero while it is the current key). It stops at fn's first error.
func (o *OAuth) SigningKeys(ctx context.Context, fn func(kid string, data []byte, created, retired time.Time) error) (err error) {
	defer wrap(&err, "postgres.OAuth.SigningKeys")
	rows, err := o.db(ctx).Query(ctx, `SELECT kid, data, created_at, retired_at FROM oauth_keys ORDER BY created_at DESC, kid`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var kid string
	var data []byte
	var created time.Time
	var retired *time.Time
	_, err = pgx.ForEachRow(rows, []any{&kid, &data, &created, &retired}, func() error {
		var r time.Time
		if retired != nil {
			r = *retired
		}
		return fn(kid, data, created, r)
	})
	return err
}

// AddSigningKey makes the key kid (data, a private JWK, made at created)
// the current signing key if the current key is still replaces ("" when
// there is none), retiring that one at created. It reports false, and
// changes nothing, when another instance rotated first.
func (o *OAuth) AddSigningKey(ctx context.Context, kid string, data []byte, created time.Time, replaces string) (added bool, err error) {
	defer wrap(&err, "postgres.OAuth.AddSigningKey")
	tx, err := o.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var current string
	err = tx.QueryRow(ctx, `SELECT kid FROM oauth_keys WHERE retired_at IS NULL FOR UPDATE`).Scan(&current)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, err
	}
	if current != replaces {
		return false, nil
	}
	if current != "" {
		if _, err := tx.Exec(ctx, `UPDATE oauth_keys SET retired_at = $2 WHERE kid = $1`, current, created); err != nil {
			return false, err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO oauth_keys (kid, data, created_at) VALUES ($1, $2, $3)`, kid, data, created); err != nil {
		if isUniqueViolation(err) {
			return false, nil // another instance made the first key at the same time
		}
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		if isUniqueViolation(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// DeleteSigningKeys deletes the keys retired before before and returns
// how many went.
func (o *OAuth) DeleteSigningKeys(ctx context.Context, before time.Time) (n int64, err error) {
	defer wrap(&err, "postgres.OAuth.DeleteSigningKeys")
	tag, err := o.db(ctx).Exec(ctx, `DELETE FROM oauth_keys WHERE retired_at IS NOT NULL AND retired_at < $1`, before)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// Setting returns the value of setting name; NotFound if it is not set.
func (o *OAuth) Setting(ctx context.Context, name string) (value []byte, err error) {
	defer wrap(&err, "postgres.OAuth.Setting(%q)", name)
	err = o.db(ctx).QueryRow(ctx, `SELECT value FROM oauth_settings WHERE name = $1`, name).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fhir.Errorf(fhir.NotFound, "", "setting %q not set", name)
	}
	return value, err
}

// PutSetting sets setting name to value.
func (o *OAuth) PutSetting(ctx context.Context, name string, value []byte) (err error) {
	defer wrap(&err, "postgres.OAuth.PutSetting(%q)", name)
	_, err = o.db(ctx).Exec(ctx, `
		INSERT INTO oauth_settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`, name, value)
	return err
}

// InitSetting sets setting name to value unless it is set already, and
// returns the value in force: instances starting together agree on one.
func (o *OAuth) InitSetting(ctx context.Context, name string, value []byte) (stored []byte, err error) {
	defer wrap(&err, "postgres.OAuth.InitSetting(%q)", name)
	if _, err := o.db(ctx).Exec(ctx, `
		INSERT INTO oauth_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return nil, err
	}
	return o.Setting(ctx, name)
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
