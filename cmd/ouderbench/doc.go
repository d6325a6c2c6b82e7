// Command ouderbench is an HTTP load generator for any FHIR R4 server, and
// the "raw limit" baseline that says how fast the same machine and database
// can do the same single-row work without a FHIR layer.
//
// # Running a benchmark
//
//	ouderbench run -base http://127.0.0.1:8080/fhir -scenario read \
//	    [-token T] [-duration 20s | -requests N] [-concurrency 8] [-warmup 3s] \
//	    [-preload 400] [-seed 1] [-batch 100] [-json out.json] [-md out.md]
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
//   - read: preload -preload generated families (a transaction Bundle each),
//     then GET Patient/{id} of their children by random id.
//   - create: POST a new Patient (a generated child) per request, nothing
//     read back.
//   - crud: per iteration create a child (Patient), a parent (RelatedPerson)
//     and a Goal of the child, read each, update each, delete each (shaped
//     like the HealthSamurai FHIR server benchmark's CRUD test); figures per
//     operation.
//   - search: preload families, then a uniform mix of token (Goal by
//     quality-of-life domain), identifier, reference+date+_sort (a child's
//     diary), chained, _has and string searches.
//   - ingest: POST transaction Bundles of whole new families, at least -batch
//     entries each (PUT at their stable ids, references between entries);
//     also reports resources/s.
//   - everything: preload families, then a child's plan with its goals and
//     agreements: CarePlan?subject=...&_include=CarePlan:goal
//     &_revinclude=CarePlan:part-of.
//
// The data is the project's synthetic family generator (mapping/family, the
// same as `ouderctl gen`): valid for the server, and dependent only on -seed
// (preloaded family i and worker w each have their own random stream, so the
// data does not depend on -concurrency either); the server's ids and the
// interleaving of workers of course vary. For single creates a worker cycles
// through its first 16 families, giving each Patient a fresh identifier, so
// that making families does not take the CPU the server is measured on.
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
//	    [-duration 20s] [-warmup 3s] [-concurrency 16] [-preload 400] [-quick]
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
// suite and leaves -out as it was. -quick is a smoke run (5s scenarios, 80
// families). The suite stops ouderd with SIGTERM, the raw server and the
// cluster, and removes its directory, also on failure or Ctrl-C; it gives
// up after 5 minutes plus warm-up and duration per scenario (8 minutes with
// the defaults, which take about 4).
//
// # The search benchmarks
//
//	ouderbench gobench [-out docs/performance.md] FILE...
//
// reads the output of the store's Go benchmarks (go test -bench with
// BenchmarkSearch on a million generated resources, and BenchmarkIngest;
// "make bench-search" runs them) and writes p50 and p95 per search shape,
// next to the search issue's targets, and the indexing cost in resources/s
// into -out, between the HTML comments generated:search:begin and
// generated:search:end. It refuses the output of a failed run.
package main
