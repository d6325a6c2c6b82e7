package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/digitaleouder/ouder/store/pgcluster"
)

// The suite is "make bench": one private PostgreSQL cluster, ouderd as a
// child process and the raw server in this process, both on the same
// database, then every scenario against them, written to a Markdown file.

const (
	// suiteOverhead bounds what is not a measured scenario: start-up,
	// preloads, checkpoints and shut-down. The suite's hard limit is this
	// plus warm-up and duration for each scenario.
	suiteOverhead = 5 * time.Minute
	// closeTimeout bounds the clean-up, after which processes are killed.
	closeTimeout = time.Minute
	// poolConns is ouderd's default pool size; the raw server gets the same.
	poolConns = 16
)

// errSuiteCap is the cause of a context that reached the suite's limit.
var errSuiteCap = errors.New("suite time limit reached")

// suiteSettings are the cluster settings of every measured server: the
// durable defaults of pgcluster except that commits do not wait for their
// WAL flush, which costs ouderd's and the raw server's writes alike.
var suiteSettings = map[string]string{"synchronous_commit": "off"}

// suiteOptions are the flags of "ouderbench suite".
type suiteOptions struct {
	ouderd, out          string
	duration, warmup     time.Duration
	concurrency, preload int
	seed                 int64
	quick                bool
	args                 []string // as given, for the report
}

// parseSuiteFlags parses and checks the flags of "suite". Errors are usage
// errors (or flag.ErrHelp).
func parseSuiteFlags(args []string, stderr io.Writer) (*suiteOptions, error) {
	o := &suiteOptions{args: args}
	fs := flag.NewFlagSet("ouderbench suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.ouderd, "ouderd", "", "the built ouderd binary to measure (required)")
	fs.StringVar(&o.out, "out", "docs/performance.md", "Markdown file to write; text outside its generated markers is kept")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured time of each scenario (-quick: 5s)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "warm-up before each scenario is measured (-quick: 1s)")
	fs.IntVar(&o.concurrency, "concurrency", 16, "concurrent workers")
	fs.IntVar(&o.preload, "preload", 400, "generated families to preload for read, search and everything (-quick: 80)")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the generated resources and choices")
	fs.BoolVar(&o.quick, "quick", false, "a smoke run: shorter scenarios and smaller preloads")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usagef("suite: unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["duration"] {
			o.duration = 5 * time.Second
		}
		if !set["warmup"] {
			o.warmup = time.Second
		}
		if !set["preload"] {
			o.preload = 80
		}
	}
	switch {
	case o.ouderd == "":
		return nil, usagef("suite: -ouderd is required (build it: go build -o bin/ ./cmd/ouderd)")
	case o.out == "":
		return nil, usagef("suite: -out cannot be empty")
	case o.duration <= 0 || o.duration > 5*time.Minute:
		return nil, usagef("suite: -duration must be more than 0 and at most 5m")
	case o.warmup < 0 || o.warmup > time.Minute:
		return nil, usagef("suite: -warmup must be between 0 and 1m")
	case o.concurrency < 1 || o.concurrency > 1024:
		return nil, usagef("suite: -concurrency must be between 1 and 1024")
	case o.preload < 1:
		return nil, usagef("suite: -preload must be at least 1")
	}
	fi, err := os.Stat(o.ouderd)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, usagef("suite: -ouderd %s is not an executable file (build it: go build -o bin/ ./cmd/ouderd)", o.ouderd)
	}
	if o.ouderd, err = filepath.Abs(o.ouderd); err != nil {
		return nil, usageError{err.Error()}
	}
	return o, nil
}

// limit is the most the whole suite may take.
func (o *suiteOptions) limit() time.Duration {
	return suiteOverhead + time.Duration(len(suitePlan))*(o.warmup+o.duration)
}

// suiteStep is one scenario against one target.
type suiteStep struct {
	scenario string
	target   string // "ouderd" or "raw"
	// optional marks a scenario ouderd may not support yet: when it fails,
	// the report says so and the suite goes on.
	optional bool
}

// suitePlan is what the suite measures, in order. Each raw run follows the
// ouderd run it is the limit of, on the same rows.
var suitePlan = []suiteStep{
	{"read", "ouderd", false},
	{"read", "raw", false},
	{"create", "ouderd", false},
	{"create", "raw", false},
	{"crud", "ouderd", false},
	{"search", "ouderd", true},
	{"ingest", "ouderd", true},
	{"everything", "ouderd", true},
}

// suiteRun is what one step measured.
type suiteRun struct {
	suiteStep
	flags []string // the step's own "ouderbench run" flags, for the report
	res   *Result  // nil when the scenario could not be prepared
	err   error
	// others is the share of the machine's CPU time that other processes
	// (and the hypervisor) took during the run; othersOK says it is known.
	others   float64
	othersOK bool
}

// disturbed reports whether others took so much CPU time during the run
// that its figures say more about them than about the servers.
func (r *suiteRun) disturbed() bool { return r.othersOK && r.others > disturbedShare }

// unsupported returns the failing statuses when every measured request
// failed, or nil.
func (r *suiteRun) unsupported() []string {
	if r.res == nil || r.res.Total.Requests == 0 || r.res.Total.Errors != r.res.Total.Requests {
		return nil
	}
	return errorsByStatus(r.res.Total.Status)
}

// suiteCmd is "ouderbench suite".
func suiteCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseSuiteFlags(args, stderr)
	if err != nil {
		return err
	}
	return o.execute(ctx, stdout, stderr)
}

// execute starts the servers, runs the plan and writes the report to o.out.
// It always stops what it started and removes its temporary directory. It
// fails, leaving o.out as it was, when the servers cannot be started, a
// scenario that ouderd must support fails outright, or ctx ends.
func (o *suiteOptions) execute(ctx context.Context, stdout, stderr io.Writer) (err error) {
	started := time.Now()
	// Refuse a file whose markers are broken now, not after minutes of load.
	if _, err := readReport(o.out); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, o.limit(), errSuiteCap)
	defer cancel()
	fmt.Fprintf(stderr, "ouderbench suite: %d scenarios of %v warm-up and %v measured, %d workers; at most %v in all\n",
		len(suitePlan), o.warmup, o.duration, o.concurrency, o.limit())

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	be, err := startBenchEnv(ctx, o.ouderd, log)
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		if cerr := be.close(closeCtx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
	}()
	if err != nil {
		return suiteErr(ctx, err)
	}
	fmt.Fprintf(stderr, "ouderbench suite: PostgreSQL %s, ouderd at %s, raw server at %s, ready after %v\n",
		be.pgVersion, be.ouderd.base, be.raw.url(), time.Since(started).Round(100*time.Millisecond))

	var runs []*suiteRun
	idsPath := filepath.Join(be.dir, "ids.txt")
	for _, st := range suitePlan {
		r, err := o.runStep(ctx, be, st, idsPath, stderr)
		if err != nil {
			return suiteErr(ctx, err)
		}
		runs = append(runs, r)
	}

	rep := &suiteReport{
		opts: o, started: started, took: time.Since(started), machine: readMachine(),
		pgVersion: be.pgVersion, pgSettings: be.pgSettings,
		ouderdBuild:      ouderdBuild(o.ouderd),
		ouderdCPUProfile: ouderdHasFlag(ctx, o.ouderd, "cpuprofile"),
		ouderdPprofAddr:  ouderdHasFlag(ctx, o.ouderd, "pprof-addr"),
		runs:             runs,
	}
	if err := writeReport(o.out, rep.markdown()); err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.ratioTable())
	fmt.Fprintf(stdout, "\nWrote %s (%v in all).\n", o.out, rep.took.Round(time.Second))
	return nil
}

// suiteErr adds why ctx ended to err, if it did.
func suiteErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w (%v)", err, cause)
	}
	return err
}

// runStep runs one step of the plan after a checkpoint, so that every
// scenario starts with no dirty buffers to write. The error is one that
// stops the suite: a required scenario that failed, ouderd gone, or ctx
// done; an optional scenario's failure is in the returned run instead.
func (o *suiteOptions) runStep(ctx context.Context, be *benchEnv, st suiteStep, idsPath string, stderr io.Writer) (*suiteRun, error) {
	r := &suiteRun{suiteStep: st}
	switch {
	case st.scenario == "read" && st.target == "ouderd":
		r.flags = []string{"-preload", strconv.Itoa(o.preload), "-ids-out", "ids.txt"}
	case st.scenario == "read":
		r.flags = []string{"-ids-from", "ids.txt"}
	case st.scenario == "search" || st.scenario == "everything":
		r.flags = []string{"-preload", strconv.Itoa(o.preload)}
	}
	base := be.ouderd.base + "/fhir"
	if st.target == "raw" {
		base = be.raw.url() + "/raw"
	}
	args := []string{
		"-base", base, "-scenario", st.scenario, "-seed", strconv.FormatInt(o.seed, 10),
		"-concurrency", strconv.Itoa(o.concurrency), "-duration", o.duration.String(), "-warmup", o.warmup.String(),
	}
	if st.target != "raw" {
		tok, err := be.operator.Token(ctx, be.ouderd.base, "system/*.cruds")
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", st.scenario, st.target, err)
		}
		args = append(args, "-token", tok)
	}
	for _, f := range r.flags {
		if f == "ids.txt" {
			f = idsPath
		}
		args = append(args, f)
	}
	ro, err := parseRunFlags(args, stderr)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", st.scenario, st.target, err)
	}
	ro.label = st.scenario + " " + st.target

	if _, err := be.admin.Exec(ctx, "CHECKPOINT"); err != nil {
		return nil, fmt.Errorf("checkpoint before %s on %s: %w", st.scenario, st.target, err)
	}
	before := sampleCPU()
	r.res, r.err = ro.bench(ctx, stderr)
	r.others, r.othersOK = othersShare(before, sampleCPU())
	select {
	case <-be.ouderd.exited:
		return nil, fmt.Errorf("ouderd exited during %s: %w", ro.label, be.ouderd.exitError())
	default:
	}
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", ro.label, context.Cause(ctx))
	case r.err != nil && !st.optional:
		return nil, fmt.Errorf("%s: %w", ro.label, r.err)
	}
	switch {
	case r.res == nil:
		fmt.Fprintf(stderr, "ouderbench suite: %s not measured: %v\n", ro.label, r.err)
	case r.unsupported() != nil:
		fmt.Fprintf(stderr, "ouderbench suite: %s: every request failed (HTTP %s): not supported yet\n", ro.label, strings.Join(r.unsupported(), ", "))
	default:
		fmt.Fprintf(stderr, "ouderbench suite: %s: %.0f req/s, p99 %.2f ms, %d errors\n",
			ro.label, r.res.Total.RequestsPerSec, r.res.Total.Latency.P99, r.res.Total.Errors)
	}
	if r.disturbed() {
		fmt.Fprintf(stderr, "ouderbench suite: warning: other processes took %.0f%% of the CPU time during %s; its figures are disturbed\n",
			r.others*100, ro.label)
	}
	return r, nil
}

// benchEnv is what the suite measures: a private cluster with a database
// "ouder", ouderd on it, and the raw server on the same database.
type benchEnv struct {
	dir        string // temporary; removed by close
	cluster    *pgcluster.Cluster
	admin      *pgx.Conn // superuser on the postgres database
	ouderd     *ouderdProc
	operator   *benchOperator // the suite's client of ouderd
	raw        *runningRaw
	pgVersion  string
	pgSettings [][2]string // name, value as the server reports them
}

// reportedSettings are the server settings the report lists.
var reportedSettings = []string{
	"fsync", "synchronous_commit", "full_page_writes", "wal_level", "shared_buffers",
	"max_connections", "checkpoint_timeout", "max_wal_size",
}

// startBenchEnv starts the cluster, ouderd and the raw server in a new
// temporary directory. Whatever it returns, even with an error, must be
// closed.
func startBenchEnv(ctx context.Context, ouderd string, log *slog.Logger) (*benchEnv, error) {
	be := &benchEnv{}
	tmp := shortTempDir()
	removeAbandonedSuites(tmp)
	dir, err := os.MkdirTemp(tmp, suiteDirPrefix)
	if err != nil {
		return be, fmt.Errorf("create temporary directory: %w", err)
	}
	be.dir = dir
	// When we run as root the server runs as the postgres user, which must
	// be able to enter the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return be, err
	}
	if err := os.WriteFile(filepath.Join(dir, suiteOwnerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return be, err
	}
	be.cluster, err = pgcluster.Start(ctx, pgcluster.Options{
		DataDir:  filepath.Join(dir, "pg", "data"),
		Settings: suiteSettings,
		Logger:   log,
	})
	if err != nil {
		return be, err
	}
	if be.admin, err = pgx.Connect(ctx, be.cluster.ConnString("postgres")); err != nil {
		return be, fmt.Errorf("connect to the cluster: %w", err)
	}
	if _, err := be.admin.Exec(ctx, "CREATE DATABASE ouder"); err != nil {
		return be, fmt.Errorf("create database: %w", err)
	}
	if err := be.admin.QueryRow(ctx, "SHOW server_version").Scan(&be.pgVersion); err != nil {
		return be, fmt.Errorf("server version: %w", err)
	}
	for _, name := range reportedSettings {
		var v string
		if err := be.admin.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			return be, fmt.Errorf("setting %s: %w", name, err)
		}
		be.pgSettings = append(be.pgSettings, [2]string{name, v})
	}
	dsn := be.cluster.ConnString("ouder")
	// ouderd migrates the database, so it starts first: the raw server
	// needs its resources table, the operator client ouderd's tables.
	if be.ouderd, err = startOuderd(ctx, ouderd, dsn, filepath.Join(dir, "ouderd.log")); err != nil {
		return be, err
	}
	if be.operator, err = registerOperator(ctx, dsn); err != nil {
		return be, err
	}
	be.raw, err = startRaw(ctx, dsn+" pool_max_conns="+strconv.Itoa(poolConns), "127.0.0.1:0", log)
	return be, err
}

// close stops the raw server, ouderd (SIGTERM) and the cluster, and removes
// the temporary directory. Past ctx's end, processes are killed.
func (be *benchEnv) close(ctx context.Context) error {
	var errs []error
	if be.raw != nil {
		errs = append(errs, be.raw.close(ctx))
	}
	if be.ouderd != nil {
		errs = append(errs, be.ouderd.stop(ctx))
	}
	if be.admin != nil {
		be.admin.Close(ctx)
	}
	if be.cluster != nil {
		errs = append(errs, be.cluster.Stop(ctx))
	}
	if be.dir != "" {
		errs = append(errs, os.RemoveAll(be.dir))
	}
	return errors.Join(errs...)
}

// Temporary suite directories are named suiteDirPrefix* and hold
// suiteOwnerFile with the pid of the suite, so that a later suite can
// remove those of one that was killed before it could clean up.
const (
	suiteDirPrefix = "ouderbench-suite-"
	suiteOwnerFile = "owner.pid"
)

// removeAbandonedSuites removes suite directories under tmp whose suite
// and PostgreSQL server have both exited.
func removeAbandonedSuites(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, suiteDirPrefix+"*"))
	for _, dir := range dirs {
		owner := pgcluster.PIDFromFile(filepath.Join(dir, suiteOwnerFile))
		if owner == 0 || pgcluster.Alive(owner) {
			continue
		}
		if pm := pgcluster.PIDFromFile(filepath.Join(dir, "pg", "data", "postmaster.pid")); pm != 0 && pgcluster.Alive(pm) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// shortTempDir returns /tmp when it exists, keeping the cluster's socket
// path short where $TMPDIR is long, else os.TempDir.
func shortTempDir() string {
	if fi, err := os.Stat("/tmp"); err == nil && fi.IsDir() {
		return "/tmp"
	}
	return os.TempDir()
}

// waitHTTP polls url until it answers 200 or ctx ends.
func waitHTTP(ctx context.Context, url string) error {
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET %s: not ready (last answer: %s): %w", url, last, context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
