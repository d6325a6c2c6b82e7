-- Current state of every resource: one row per (type, id), the newest version.
-- rid is the internal key that search indexes and history refer to.
CREATE TABLE resources (
    rid          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type         text        NOT NULL,
    id           text        NOT NULL,
    version      bigint      NOT NULL,
    last_updated timestamptz NOT NULL,
    deleted      boolean     NOT NULL DEFAULT false,
    -- Canonical JSON as written (meta included); NULL for a tombstone.
    body         bytea,
    CONSTRAINT resources_type_id UNIQUE (type, id)
);

-- Every version ever written, including the current one and tombstones.
-- seq is the change-log position: it orders system history, pages it with a
-- keyset cursor, and will feed notifications.
CREATE TABLE resource_history (
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    rid          bigint      NOT NULL REFERENCES resources (rid),
    type         text        NOT NULL,
    id           text        NOT NULL,
    version      bigint      NOT NULL,
    last_updated timestamptz NOT NULL,
    method       text        NOT NULL CHECK (method IN ('POST', 'PUT', 'DELETE', 'PATCH')),
    body         bytea,
    PRIMARY KEY (rid, version)
);
CREATE UNIQUE INDEX resource_history_seq ON resource_history (seq);
CREATE INDEX resource_history_type_seq ON resource_history (type, seq);
CREATE INDEX resource_history_rid_seq ON resource_history (rid, seq);
CREATE INDEX resource_history_last_updated ON resource_history (last_updated);

-- History is append-only: a version, once written, is never changed or removed.
CREATE FUNCTION resource_history_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'resource_history is append-only';
END;
$$;
CREATE TRIGGER resource_history_no_update BEFORE UPDATE OR DELETE ON resource_history
    FOR EACH ROW EXECUTE FUNCTION resource_history_immutable();
