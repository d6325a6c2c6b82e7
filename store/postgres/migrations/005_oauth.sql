-- The built-in OAuth 2 / OpenID Connect / SMART authorization server
-- (auth/oauth). Everything it remembers lives here, so any number of ouderd
-- instances on one database agree on codes, refresh tokens, revocations,
-- used client-assertion ids, clients and signing keys.

-- One row per grant artefact: authorization codes, PKCE and OpenID Connect
-- data bound to a code, access and refresh tokens, and the login/consent
-- interactions in progress. handle is a SHA-256 of the token signature or
-- handle, never the token itself. request_id ties together everything issued
-- from one authorization (a refresh family); token_id is an access token's
-- jti, so a revocation can be checked by the resource server.
CREATE TABLE oauth_sessions (
    kind       text        NOT NULL,
    handle     text        NOT NULL,
    request_id text        NOT NULL,
    token_id   text,
    active     boolean     NOT NULL DEFAULT true,
    data       bytea       NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, handle)
);
CREATE INDEX oauth_sessions_request ON oauth_sessions (request_id, kind);
CREATE INDEX oauth_sessions_expiry ON oauth_sessions (expires_at);
-- Revoked access tokens are few; this index answers "is this jti revoked?"
-- with one probe of a small index on every authenticated request.
CREATE INDEX oauth_sessions_revoked ON oauth_sessions (token_id) WHERE NOT active AND token_id IS NOT NULL;

-- Client-assertion jti values seen (private_key_jwt): a replay is refused
-- until the assertion has expired.
CREATE TABLE oauth_jti (
    jti        text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX oauth_jti_expiry ON oauth_jti (expires_at);

-- Registered clients, as the authorization server's JSON.
CREATE TABLE oauth_clients (
    id         text        PRIMARY KEY,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Token signing keys (private JWKs). The newest key without retired_at
-- signs; retired keys stay published until every token they signed has
-- expired, then they are deleted.
CREATE TABLE oauth_keys (
    kid        text        PRIMARY KEY,
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    retired_at timestamptz
);
CREATE UNIQUE INDEX oauth_keys_one_current ON oauth_keys ((true)) WHERE retired_at IS NULL;

-- Small named settings: the server's issuer, audience and development flag
-- (read by ouderctl token), and the secret of opaque codes and refresh
-- tokens shared by every instance.
CREATE TABLE oauth_settings (
    name  text  PRIMARY KEY,
    value bytea NOT NULL
);
