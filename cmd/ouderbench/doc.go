// Command ouderbench is an HTTP load generator for any FHIR R4 server, and
// the "raw limit" baseline that says how fast the same machine and database
// can do the same single-row work without a FHIR layer.
//
// # Running a benchmark
//
//	ouderbench run -base http://127.0.0.1:8080/fhir -scenario read \
//	    [-token T] [-duration 20s | -requests N] [-concurrency 8] [-warmup 3s] \
//	    [-preload 1000] [-seed 1] [-batch 100] [-json out.json] [-md out.md]
//
// The base must be a loopback address (127.0.0.0/8, ::1, localhost) unless
// -allow-remote is given. The token may come from $OUDERBENCH_TOKEN instead of
// -token, which keeps it out of the process list; it is never printed.
//
// A run prepares (preloads), warms up for -warmup, then measures until
// -duration has passed or -requests requests were sent, whichever comes
// first (20s when neither is given). The whole command, preload included,
// stops after 10 minutes whatever the flags say. Requests started during
// warm-up are not in the figures. The result (requests/s, latency mean, p50,
// p95, p99 and max, errors by HTTP status, per operation and in total) goes
// to stdout as Markdown, and to -json and -md files when asked. A progress
// line goes to stderr once a second. Ctrl-C stops the run and still reports
// what was measured.
//
// Scenarios:
//
//   - read: preload -preload Patients, then GET Patient/{id} by random id.
//   - create: POST a new Patient per request, nothing read back.
//   - crud: per iteration create a Patient, an Observation and a CarePlan
//     about it, read each, update each, delete each (shaped like the
//     HealthSamurai FHIR server benchmark's CRUD test); figures per operation.
//   - search: preload Patients with Observations and a CarePlan each, then a
//     uniform mix of token, identifier, reference+date+_sort, chained, _has
//     and string searches.
//   - ingest: POST transaction Bundles of -batch entries (Patients and
//     Observations referencing them by urn:uuid); also reports resources/s.
//   - everything: preload Patients with a Goal and two linked CarePlans, then
//     CarePlan?subject=...&_include=CarePlan:goal&_revinclude=CarePlan:part-of.
//
// Generated resources are valid FHIR R4 and depend only on -seed (preloaded
// item i and worker w each have their own random stream, so the data does not
// depend on -concurrency either); the server's ids and the interleaving of
// workers of course vary.
//
// # The raw limit
//
//	ouderbench raw -db postgres://... [-addr 127.0.0.1:0]
//
// serves GET /raw/{type}/{id} (SELECT body FROM resources WHERE type = $1 AND
// id = $2 on the FHIR server's own table) and POST /raw/{type} (one INSERT
// into raw_resources, a copy of the resources table created at start, so the
// server's data is never changed), with net/http and pgxpool and nothing
// else. Its first line on stdout is "listening on http://ADDR". The pool
// size can be set with pool_max_conns=N in the connection string.
//
// Raw reads need ids that exist in resources, which only the FHIR server
// writes. The design is the simplest honest one: the FHIR run that preloads
// writes its Patient ids with -ids-out, and the raw run reads exactly those
// ids with -ids-from, so both read the same rows of the same table:
//
//	ouderbench run -base http://127.0.0.1:8080/fhir -scenario read -ids-out ids.txt
//	ouderbench raw -db "$DATABASE_URL" &     # prints listening on http://127.0.0.1:NNNN
//	ouderbench run -base http://127.0.0.1:NNNN/raw -scenario read -ids-from ids.txt
//
// A base whose path ends in /raw (or -raw) selects raw mode. There, crud
// creates the same three resources per iteration (into raw_resources) and,
// with -ids-from, reads three of those Patients; the raw server has no
// update, delete, search or transactions, so search, ingest and everything
// refuse raw mode. raw_resources grows with every raw create: drop it when
// done.
//
// # The suite
//
//	ouderbench suite -ouderd bin/ouderd [-out docs/performance.md] \
//	    [-duration 20s] [-warmup 3s] [-concurrency 16] [-preload 1000] [-quick]
//
// is "make bench": it does all of the above with servers of its own. In a
// temporary directory it starts a private PostgreSQL cluster
// (store/pgcluster, durable defaults but synchronous_commit=off), ouderd
// (the given binary, as a child process with its default settings, its log
// in a file) and the raw server (in this process, pool_max_conns=16 like
// ouderd's pool), all on one database. It then runs read (ouderd, then raw
// on the same ids), create (ouderd, then raw), crud, search, ingest and
// everything against ouderd, each after a CHECKPOINT, and writes the figures,
// the machine, the settings and ouderd's throughput as a share of the raw
// limit's (targets: reads 70%, creates 60%) into -out, between the HTML
// comments generated:begin and generated:end; text outside them is kept. A scenario ouderd does not support yet (every request
// fails) is reported as such; a failure of read, create or crud fails the
// suite and leaves -out as it was. -quick is a smoke run (5s scenarios, 200
// Patients). The suite stops ouderd with SIGTERM, the raw server and the
// cluster, and removes its directory, also on failure or Ctrl-C; it gives
// up after 5 minutes plus warm-up and duration per scenario (8 minutes with
// the defaults, which take about 4).
package main
