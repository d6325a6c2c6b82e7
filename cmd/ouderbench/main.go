package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// maxRunTime is the hard cap on one run command, preload included: a
// forgotten benchmark must not load a machine for ever.
const maxRunTime = 10 * time.Minute

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `ouderbench: load generator for FHIR R4 servers, and the raw-limit baseline.

Usage:
  ouderbench run -base URL -scenario read|create|crud|search|ingest|everything [flags]
  ouderbench raw -db CONNSTRING [-addr 127.0.0.1:0]
  ouderbench suite -ouderd PATH [-out docs/performance.md] [-duration 20s] [-concurrency 16] [-quick]
  ouderbench gobench [-out docs/performance.md] FILE...   (the output of the store's go test -bench)

Run "ouderbench run -h", "ouderbench raw -h" or "ouderbench suite -h" for the flags.
`

// run is the whole command: it parses args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "run":
		var o *runOptions
		if o, err = parseRunFlags(args[1:], stderr); err == nil {
			err = o.execute(ctx, stdout, stderr)
		}
	case "raw":
		err = rawCmd(ctx, args[1:], stdout, stderr)
	case "suite":
		err = suiteCmd(ctx, args[1:], stdout, stderr)
	case "gobench":
		err = gobenchCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "ouderbench: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ouderbench: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "ouderbench: %v\n", err)
		return exitFail
	}
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// runOptions are the flags of "ouderbench run".
type runOptions struct {
	base, token, scenario      string
	duration, warmup, timeout  time.Duration
	requests                   int64
	concurrency, preload       int
	batch                      int
	seed                       int64
	jsonPath, mdPath           string
	idsFrom, idsOut            string
	allowRemote, raw, progress bool
	hardCap                    time.Duration // bounds the whole command: maxRunTime
	label                      string        // of the progress line; default the scenario
}

// parseRunFlags parses and checks the flags of "run". Errors are usage errors
// (or flag.ErrHelp).
func parseRunFlags(args []string, stderr io.Writer) (*runOptions, error) {
	o := &runOptions{hardCap: maxRunTime}
	fs := flag.NewFlagSet("ouderbench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.base, "base", "", "FHIR base URL, e.g. http://127.0.0.1:8080/fhir (or http://127.0.0.1:NNNN/raw for the raw server)")
	fs.StringVar(&o.token, "token", "", "bearer token (default $OUDERBENCH_TOKEN; the environment keeps it out of ps)")
	fs.StringVar(&o.scenario, "scenario", "read", "read, create, crud, search, ingest or everything")
	fs.DurationVar(&o.duration, "duration", 0, "measured time after warm-up (default 20s unless -requests is given)")
	fs.Int64Var(&o.requests, "requests", 0, "measured requests to send (crud: rounded down to whole iterations)")
	fs.IntVar(&o.concurrency, "concurrency", 8, "concurrent workers (also used to preload)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "time before measuring; its requests are not reported")
	fs.IntVar(&o.preload, "preload", 400, "generated families to preload (read, search, everything; about 2.5 children and 55 resources each)")
	fs.IntVar(&o.batch, "batch", 100, "least entries per transaction Bundle, in whole families (ingest)")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the generated resources and choices")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.StringVar(&o.jsonPath, "json", "", "write the result as JSON to this file")
	fs.StringVar(&o.mdPath, "md", "", "write the result as a Markdown table to this file (it also goes to stdout)")
	fs.StringVar(&o.idsFrom, "ids-from", "", "file of Patient ids (one a line) to read instead of preloading (read; crud against the raw server)")
	fs.StringVar(&o.idsOut, "ids-out", "", "write the ids of the preloaded Patients to this file, for a later -ids-from")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow a base URL that is not a loopback address")
	fs.BoolVar(&o.raw, "raw", false, "the base is the raw server (default: when the base path ends in /raw)")
	fs.BoolVar(&o.progress, "progress", true, "print a progress line on stderr every second")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usagef("run: unexpected arguments %q", fs.Args())
	}
	rawSet := false
	fs.Visit(func(f *flag.Flag) { rawSet = rawSet || f.Name == "raw" })
	if o.token == "" {
		o.token = os.Getenv("OUDERBENCH_TOKEN")
	}
	return o, o.check(rawSet)
}

// check validates o and fills defaults that depend on other flags.
func (o *runOptions) check(rawSet bool) error {
	if o.base == "" {
		return usagef("run: -base is required")
	}
	base, err := checkTarget(o.base, o.allowRemote)
	if err != nil {
		return usageError{err.Error()}
	}
	o.base = base
	if !rawSet {
		u, _ := url.Parse(base) // checked above
		o.raw = strings.HasSuffix(u.Path, "/raw")
	}
	if _, err := newScenario(o.scenario); err != nil {
		return err
	}
	switch {
	case o.duration < 0 || o.requests < 0 || o.warmup < 0:
		return usagef("run: -duration, -requests and -warmup cannot be negative")
	case o.concurrency < 1 || o.concurrency > 1024:
		return usagef("run: -concurrency must be between 1 and 1024")
	case o.preload < 0:
		return usagef("run: -preload cannot be negative")
	case o.batch < 1 || o.batch > 10000:
		return usagef("run: -batch must be between 1 and 10000")
	case o.timeout <= 0:
		return usagef("run: -timeout must be positive")
	}
	if o.duration == 0 && o.requests == 0 {
		o.duration = 20 * time.Second
	}
	if o.warmup+o.duration > o.hardCap {
		return usagef("run: -warmup plus -duration must be at most %v", o.hardCap)
	}
	if o.idsFrom != "" && o.scenario != "read" && o.scenario != "crud" {
		return usagef("run: -ids-from is for the read and crud scenarios")
	}
	if o.idsFrom != "" && o.scenario == "crud" && !o.raw {
		return usagef("run: -ids-from with crud is for the raw server; against a FHIR server crud reads what it creates")
	}
	if o.idsOut != "" && o.scenario != "read" && o.scenario != "search" && o.scenario != "everything" {
		return usagef("run: -ids-out needs a scenario that preloads Patients (read, search, everything)")
	}
	if o.idsOut != "" && o.idsFrom != "" {
		return usagef("run: -ids-out with -ids-from would only copy the file")
	}
	return nil
}

// execute runs the benchmark o describes and reports it on stdout (and to
// -json and -md). The whole of it is bounded by o.hardCap. An interrupted
// run, or one whose every request failed, still reports what it measured,
// then returns an error.
func (o *runOptions) execute(ctx context.Context, stdout, stderr io.Writer) error {
	res, err := o.bench(ctx, stderr)
	if res == nil {
		return err
	}
	if err := writeMarkdown(stdout, res); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if o.jsonPath != "" {
		if err := writeJSON(o.jsonPath, res); err != nil {
			return err
		}
	}
	if o.mdPath != "" {
		if err := writeMarkdownFile(o.mdPath, res); err != nil {
			return err
		}
	}
	return err
}

// bench prepares, warms up and measures the run o describes, bounded by
// o.hardCap, with progress lines on stderr when o.progress is set. The
// result is nil when nothing was measured (preparing failed); otherwise it
// is returned even with an error, which then says that the run was
// interrupted, measured nothing, or that every request failed.
func (o *runOptions) bench(ctx context.Context, stderr io.Writer) (*Result, error) {
	sc, err := newScenario(o.scenario)
	if err != nil {
		return nil, err
	}
	var ids []string
	if o.idsFrom != "" {
		if ids, err = readIDs(o.idsFrom); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, o.hardCap, errHardCap)
	defer cancel()

	var progress io.Writer
	tty := isTerminal(stderr)
	if o.progress {
		progress = stderr
	}
	mode := "fhir"
	if o.raw {
		mode = "raw"
	}
	label := o.label
	if label == "" {
		label = o.scenario
	}
	c := newClient(o.base, o.token, o.concurrency, o.timeout)
	e := &env{
		client: c, seed: o.seed, preload: o.preload, concurrency: o.concurrency,
		batch: o.batch, raw: o.raw, ids: ids, log: progress, tty: tty,
	}
	started := time.Now()
	if err := sc.prepare(ctx, e); err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return nil, fmt.Errorf("%s: prepare: %w (%v)", o.scenario, err, cause)
		}
		return nil, fmt.Errorf("%s: prepare: %w", o.scenario, err)
	}
	preloaded := 0
	if pl, ok := sc.(patientLister); ok && ids == nil {
		preloaded = len(pl.patientIDs())
		if o.idsOut != "" {
			if err := writeIDs(o.idsOut, pl.patientIDs()); err != nil {
				return nil, err
			}
		}
	}
	if o.requests > 0 && o.requests < int64(sc.cost()) {
		return nil, usagef("run: -requests %d is less than one %s iteration (%d requests)", o.requests, o.scenario, sc.cost())
	}

	lv := &live{}
	m := runLoad(ctx, loadConfig{
		concurrency: o.concurrency, warmup: o.warmup, duration: o.duration, requests: o.requests,
		label: label, progress: progress, tty: tty,
	}, sc, func(id int) *worker { return newWorker(id, c, o.seed, lv) })

	res := &Result{
		Tool: "ouderbench", Scenario: o.scenario, Base: o.base, Mode: mode, Started: started.UTC(),
		Seed: o.seed, Concurrency: o.concurrency, Preloaded: preloaded, WarmupSec: o.warmup.Seconds(),
	}
	if o.scenario == "ingest" {
		res.Batch = o.batch
	}
	res.summarise(m, sc.ops())
	switch {
	case m.stopped == stopInterrupted:
		return res, errors.New("interrupted; the report covers the time measured until then")
	case res.Total.Requests == 0:
		return res, errors.New("no request was measured")
	case res.Total.Errors == res.Total.Requests:
		// A table of failures is no benchmark; say so to scripts too.
		return res, fmt.Errorf("every measured request failed (status %s); does the server support the %s scenario?",
			strings.Join(errorsByStatus(res.Total.Status), ", "), o.scenario)
	}
	return res, nil
}

// isTerminal reports whether w is a character device (a terminal), where
// the progress line is rewritten in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// readIDs reads Patient ids, one a line; blank lines and lines starting with
// # are skipped, and a "Patient/" prefix is dropped.
func readIDs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read ids: %w", err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id := strings.TrimPrefix(line, "Patient/")
		if !idPattern.MatchString(id) {
			return nil, fmt.Errorf("read ids: %s:%d: %q is not a FHIR id", path, n, line)
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read ids: %s: %w", path, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("read ids: %s holds no ids", path)
	}
	return ids, nil
}

// writeIDs writes ids one a line to path.
func writeIDs(path string, ids []string) error {
	if err := os.WriteFile(path, []byte(strings.Join(ids, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("write ids: %w", err)
	}
	return nil
}

// rawCmd is "ouderbench raw": it serves the raw endpoints until interrupted.
func rawCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ouderbench raw", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("db", "", "PostgreSQL connection string of the FHIR server's database (default $DATABASE_URL); pool_max_conns=N sets the pool size")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	allowRemote := fs.Bool("allow-remote", false, "allow listening on an address that is not loopback")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("raw: unexpected arguments %q", fs.Args())
	}
	if *dsn == "" {
		*dsn = os.Getenv("DATABASE_URL")
	}
	if *dsn == "" {
		return usagef("raw: -db (or DATABASE_URL) is required")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return usagef("raw: -addr %q: %v", *addr, err)
	}
	if !*allowRemote && !isLoopbackHost(host) {
		return usagef("raw: -addr %q is not a loopback address; pass -allow-remote to expose the raw server", *addr)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	return serveRaw(ctx, *dsn, *addr, stdout, log)
}
