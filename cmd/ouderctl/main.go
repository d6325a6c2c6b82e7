// Command ouderctl administers a Digitale Ouder server's database.
//
// Usage:
//
//	ouderctl migrate       apply the embedded schema migrations to DATABASE_URL
//	ouderctl status        show the schema version and resource counts
//	ouderctl reindex       show the reindexing jobs and their progress
//	ouderctl demo load     load the demo family (demo.go)
//	ouderctl gen ...       make or load synthetic families (gen.go)
//	ouderctl clients ...   register, list and remove OAuth clients (oauth.go)
//	ouderctl token ...     mint an access token in development mode (oauth.go)
//	ouderctl keys ...      list or rotate the token signing keys (oauth.go)
//	ouderctl audit verify  check the audit trail's hash chain (audit.go)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/store/pgcluster"
	"github.com/digitaleouder/ouder/store/postgres"
)

const usage = `usage: ouderctl [-database-url URL] <command>

commands:
  migrate   apply the embedded schema migrations (ouderd also does this at start-up)
  status    show the schema version and how many resources and versions are stored
  reindex   show the background reindexing jobs (queued when a SearchParameter changes) and their progress
  demo      load the demo family (demo load) or print it as a transaction Bundle (demo bundle)
  gen       make synthetic families (gen -families N -seed S), or load them (gen ... -load)
  clients   register, list and remove OAuth clients (clients add|list|remove)
  token     mint an access token for curl, development mode only (token -as WHO -scope "...")
  keys      list or rotate the token signing keys (keys list|rotate)
  audit     check the audit trail's hash chain (audit verify; exit status 1 when tampered with)

The database comes from -database-url or DATABASE_URL; without either, it is the
private cluster a running ` + "`make run`" + ` (ouderd without DATABASE_URL) keeps under
OUDERD_DATA_DIR (default ./var).
`

// commandsWithArgs are the commands that take arguments of their own, each
// in its own file: it gets the arguments after its name and the database URL
// (which it checks itself, as some need none).
var commandsWithArgs = map[string]func(ctx context.Context, args []string, dbURL string, getenv func(string) string, out io.Writer) error{
	"demo": runDemo,
	"gen":  runGen,
	// oauth.go
	"clients": runClients,
	"token":   runToken,
	"keys":    runKeys,
	"audit":   runAudit, // audit.go
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ouderctl:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("ouderctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dbURL := fs.String("database-url", getenv("DATABASE_URL"), "PostgreSQL URL")
	if err := fs.Parse(args); err != nil {
		fmt.Fprint(out, usage)
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprint(out, usage)
		return errors.New("expected one command")
	}
	if *dbURL == "" {
		*dbURL = privateCluster(getenv)
	}
	cmd := fs.Arg(0)
	if sub, ok := commandsWithArgs[cmd]; ok {
		return sub(ctx, fs.Args()[1:], *dbURL, getenv, out)
	}
	if fs.NArg() != 1 {
		fmt.Fprint(out, usage)
		return errors.New("expected one command")
	}
	switch cmd {
	case "migrate", "status", "reindex":
	default:
		fmt.Fprint(out, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	if *dbURL == "" {
		return errors.New("no database: set DATABASE_URL or -database-url, or start the server with make run")
	}
	pool, err := pgxpool.New(ctx, *dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	switch cmd {
	case "migrate":
		n, err := postgres.Migrate(ctx, pool)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "applied %d migration(s); schema at version %d\n", n, postgres.LatestVersion())
	case "status":
		st, err := postgres.ReadStatus(ctx, pool)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "schema version %d (this build: %d)\nresources %d (deleted %d)\nversions %d\n",
			st.SchemaVersion, postgres.LatestVersion(), st.Resources, st.Deleted, st.Versions)
	case "reindex":
		jobs, err := postgres.New(pool).ReindexJobs(ctx)
		if err != nil {
			return err
		}
		if len(jobs) == 0 {
			fmt.Fprintln(out, "no reindexing jobs")
		}
		for _, j := range jobs {
			state := "queued"
			switch {
			case j.Error != "":
				state = "failed: " + j.Error
			case j.FinishedAt != nil:
				state = "finished " + j.FinishedAt.UTC().Format(time.RFC3339)
			case j.StartedAt != nil:
				state = "running"
			}
			pct := 100.0
			if j.Total > 0 {
				pct = 100 * float64(j.Done) / float64(j.Total)
			}
			fmt.Fprintf(out, "job %d: %d/%d resources (%.0f%%), %d types, %s (%s)\n", j.ID, j.Done, j.Total, pct, len(j.Types), state, j.Reason)
		}
	}
	return nil
}

// privateCluster returns the connection string of the private PostgreSQL
// cluster that ouderd runs under its data directory when it has no
// DATABASE_URL, if that cluster is running, and "" otherwise.
func privateCluster(getenv func(string) string) string {
	dir := getenv("OUDERD_DATA_DIR")
	if dir == "" {
		dir = "var"
	}
	return pgcluster.Running(filepath.Join(dir, "pgdata"), "ouder")
}
