-- Background reindexing after a SearchParameter changes: one row per job,
-- claimed by any instance (FOR UPDATE SKIP LOCKED) and advanced in batches,
-- so progress survives restarts and is visible to operators.
CREATE TABLE reindex_jobs (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reason     text        NOT NULL,          -- e.g. "SearchParameter/abc version 2"
    types      text[]      NOT NULL,          -- resource types to reindex
    total      bigint      NOT NULL DEFAULT 0, -- resources to visit, counted at start
    done       bigint      NOT NULL DEFAULT 0,
    last_rid   bigint      NOT NULL DEFAULT 0, -- keyset position
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    error      text
);
CREATE INDEX reindex_jobs_open ON reindex_jobs (id) WHERE finished_at IS NULL;

-- gen changes whenever the index rows of a resource are rewritten without a
-- new version (reindexing). Writers check it together with the version, so
-- a write that raced with a reindex of the same row retries instead of
-- leaving the reindexed rows beside its own.
ALTER TABLE resources ADD COLUMN gen bigint NOT NULL DEFAULT 0;
