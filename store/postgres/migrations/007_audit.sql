-- The audit trail (docs/audit.md): one row per AuditEvent, apart from the
-- resource tables so that recording a read costs one row in one table and
-- no index rows. Rows are appended in the transaction of a write, or in
-- batches by the audit writer for everything else; they are never changed.
CREATE TABLE audit_events (
    seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id       text        NOT NULL UNIQUE,
    recorded timestamptz NOT NULL,
    type     text        NOT NULL,
    subtype  text        NOT NULL,
    action   text        NOT NULL,
    outcome  text        NOT NULL,
    agents   text[]      NOT NULL,  -- Type/id references and system|value identifiers
    entities text[]      NOT NULL,  -- Type/id of the resources concerned
    patients text[]      NOT NULL,  -- Patient/id of the patients concerned
    body     bytea       NOT NULL,  -- the AuditEvent resource
    -- The transaction that wrote the row: the sealer knows from it which rows
    -- may still appear with a lower seq (their transactions are running).
    xid      xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX audit_events_recorded ON audit_events (recorded, seq);
CREATE INDEX audit_events_patients ON audit_events USING gin (patients);
CREATE INDEX audit_events_agents ON audit_events USING gin (agents);
CREATE INDEX audit_events_entities ON audit_events USING gin (entities);
CREATE INDEX audit_events_xid ON audit_events (xid);

-- The hash chain over the audit rows, in the order they were sealed:
-- hash = SHA-256(previous hash || canonical row). horizon is the oldest
-- transaction still running when the link was sealed: every row written by
-- an older transaction is sealed at or before it.
CREATE TABLE audit_chain (
    pos       bigint      PRIMARY KEY,
    seq       bigint      NOT NULL UNIQUE,
    hash      bytea       NOT NULL,
    sealed_at timestamptz NOT NULL,
    horizon   xid8        NOT NULL
);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_chain_no_change BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
