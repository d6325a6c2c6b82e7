-- What the search plans need beyond 002, found with the plan tests and
-- EXPLAIN ANALYZE on a million generated resources (store/postgres
-- plan_test.go and bench_test.go).

-- Token searches and _has on a code read the rids of every index row with
-- that code. With rid in the key they come from the index alone (an index-
-- only scan) instead of one heap page of idx_token per row: for a code of
-- 4,700 Observations that was 4,600 page reads, a third of the _has query's
-- time. Queries on (param, code) and (param, code, system) use it as before.
DROP INDEX idx_token_code;
CREATE INDEX idx_token_code ON idx_token (param, code, system, rid);

-- A parameter and its values are correlated (a LOINC code occurs under
-- Observation code and combo-code only; subject rows of Observations point
-- to Patients), which the per-column statistics cannot tell: the planner
-- took a code of 1.5% of the Observations for 0.6%, and then read every
-- match of a _has instead of walking the Patients in page order (420 ms
-- instead of 5 ms). Multi-column MCV lists give it the combinations.
CREATE STATISTICS idx_token_param_code (mcv) ON param, code FROM idx_token;
CREATE STATISTICS idx_reference_param_type (mcv) ON param, type FROM idx_reference;

-- A search reads a page: with a LIMIT the planner may still pick a
-- parallel plan when the full scan it might need looks expensive, and a
-- Gather Merge waits for every worker to start before it returns a row
-- (60-90 ms per query on the 2-CPU benchmark machine, where the plan itself
-- took 2 ms). The tables serve such pages; should a large report ever need
-- workers, ALTER TABLE ... RESET (parallel_workers) gives them back.
ALTER TABLE resources SET (parallel_workers = 0);
ALTER TABLE idx_string SET (parallel_workers = 0);
ALTER TABLE idx_token SET (parallel_workers = 0);
ALTER TABLE idx_reference SET (parallel_workers = 0);
ALTER TABLE idx_date SET (parallel_workers = 0);
ALTER TABLE idx_number SET (parallel_workers = 0);
ALTER TABLE idx_quantity SET (parallel_workers = 0);
ALTER TABLE idx_uri SET (parallel_workers = 0);
