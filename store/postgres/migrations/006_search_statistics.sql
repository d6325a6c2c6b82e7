-- Reverse chaining (_has) from index rows alone, and statistics that keep up
-- with bursts of writes. Found with plan_test.go, statistics_test.go and
-- EXPLAIN (ANALYZE, BUFFERS) on a million generated resources
-- (store/postgres bench_test.go).

-- Patient?_has:Observation:subject:code=X, for a code of about 5,000
-- Observations, read 13 pages per match: the token's rid, then the
-- Observation's resources row (a random heap page of the widest table, to
-- see that it is not deleted), its idx_reference row (index, then heap) and
-- the Patient's row (index, then heap): 61,000 buffers, 110 ms. The search
-- compiler no longer reads the referring resource's row when visibility
-- asks nothing of it but "not deleted" (index rows exist only for live
-- resources), and these indexes carry what the joins need, so each hop is
-- an index-only scan: 15,000 buffers for the same search.
--
-- From a referring resource to what it refers to (the _has driven from the
-- matching index rows, chains, includes, compartments):
DROP INDEX idx_reference_rid;
CREATE INDEX idx_reference_rid ON idx_reference (rid, param) INCLUDE (type, id, url);
-- From a resource to what refers to it (the _has that walks its targets in
-- page order, _revinclude, reference searches). It also serves every lookup
-- of idx_reference_target (param, id, type), which only cost writes.
DROP INDEX idx_reference_back;
CREATE INDEX idx_reference_back ON idx_reference (id, type, param) INCLUDE (rid, url);
DROP INDEX idx_reference_target;
-- From a reference to the rid of its target, and whether it is deleted (the
-- _has driven from the matching index rows; chains), from the index alone.
-- The constraint is the one ON CONFLICT (type, id) names, as before.
ALTER TABLE resources DROP CONSTRAINT resources_type_id,
    ADD CONSTRAINT resources_type_id UNIQUE (type, id) INCLUDE (rid, deleted);
-- Walking the resources of a type in page order with their ids (the _has
-- that probes idx_reference_back for each target).
DROP INDEX resources_type_rid;
CREATE INDEX resources_type_rid ON resources (type, rid) INCLUDE (id) WHERE NOT deleted;
-- With rid right after the code, a token lookup without a system (code=X,
-- the usual _has filter) probes one entry for a given rid instead of every
-- entry of the code, and the matches of a code come out in rid (page)
-- order. A system, when given, is checked in the index (INCLUDE).
DROP INDEX idx_token_code;
CREATE INDEX idx_token_code ON idx_token (param, code, rid) INCLUDE (system);

-- Statistics after bursts of writes. The planner's estimates come from the
-- last ANALYZE: right after a burst of a kind it has not seen (Observations
-- created after a table was analysed with Patients only), a parameter the
-- statistics do not know is taken for one row, and a nested loop then
-- rescans an index range for every outer row (Observation?subject=..&date=..
-- took 85 s on 30,000 resources; make bench's search scenario 10 to 28 s
-- per request). The store's statistics refresher (statistics.go) analyses
-- the search tables within seconds of such a burst; autovacuum, which
-- wakes once a minute, is asked to analyse them after 2% of changed rows
-- instead of 10%, and to vacuum inserts after 5% instead of 20% (which sets
-- the visibility map that index-only scans need).
ALTER TABLE resources SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE idx_string SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE idx_token SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE idx_reference SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE idx_date SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE idx_number SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE idx_quantity SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE idx_uri SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
