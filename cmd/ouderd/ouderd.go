package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/auth/policy"
	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir/rest"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/pgcluster"
	"github.com/digitaleouder/ouder/store/postgres"
)

// Config is every setting of ouderd. Each has a flag and an environment
// variable; the flag wins.
type Config struct {
	Addr                      string        // -addr, OUDERD_ADDR
	DatabaseURL               string        // -database-url, DATABASE_URL
	BaseURL                   string        // -base-url, OUDERD_BASE_URL
	DataDir                   string        // -data-dir, OUDERD_DATA_DIR
	LogLevel                  string        // -log-level, OUDERD_LOG_LEVEL
	LogFormat                 string        // -log-format, OUDERD_LOG_FORMAT
	MaxBody                   int64         // -max-body, OUDERD_MAX_BODY
	MaxBundleEntries          int           // -max-bundle-entries, OUDERD_MAX_BUNDLE_ENTRIES
	ConditionalDeleteMultiple bool          // -conditional-delete-multiple, OUDERD_CONDITIONAL_DELETE_MULTIPLE
	ShutdownTimeout           time.Duration // -shutdown-timeout, OUDERD_SHUTDOWN_TIMEOUT
	PGBinDir                  string        // -pg-bindir, OUDERD_PG_BINDIR
	PprofAddr                 string        // -pprof-addr, OUDERD_PPROF_ADDR
	Demo                      bool          // -demo, OUDERD_DEMO
	TrustedIssuers            string        // -trusted-issuers, OUDERD_TRUSTED_ISSUERS
	OAuth                     OAuthConfig   // -dev, -oidc-providers, -key-max-age (oauth.go)
	Mail                      MailConfig    // -smtp-url, -mail-from (mail.go)
}

// Main is the wired server: configuration, database, HTTP listener. Tests
// start the real wiring through it on port 0.
type Main struct {
	Config Config
	Logger *slog.Logger
	// LogOutput is where logs go (default os.Stderr).
	LogOutput io.Writer

	cluster *pgcluster.Cluster
	pool    *pgxpool.Pool
	ln      net.Listener
	srv     *http.Server
	pprof   *http.Server
	// stopBackground ends the background work (registry listener,
	// reindex worker) and bgDone closes when it has.
	stopBackground context.CancelFunc
	bgDone         chan struct{}
	// own is the built-in authorization server, when it runs; it must be
	// set before the API is built (Run), whose tokens it then issues.
	own ownIssuer
	// invites lets the authorization server's invitation pages reach the
	// REST layer, which is built after it.
	invites *invitations
	// audit writes the audit records of reads, searches and refusals in
	// batches; Close flushes it once no request is left.
	audit *postgres.AuditWriter

	done     chan struct{} // closed when serving stops for good
	doneErr  error         // why, set before done is closed
	doneOnce sync.Once
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{
		Config: Config{
			Addr:             "127.0.0.1:8080",
			DataDir:          "var",
			LogLevel:         "info",
			LogFormat:        "json",
			MaxBody:          rest.DefaultMaxBody,
			MaxBundleEntries: rest.DefaultMaxBundleEntries,
			ShutdownTimeout:  20 * time.Second,
		},
		LogOutput: os.Stderr,
		done:      make(chan struct{}),
	}
}

// ParseFlags reads the environment (through getenv) and then the flags in
// args into m.Config. It fails on an unknown flag or a malformed value.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	c := &m.Config
	env := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	env("OUDERD_ADDR", &c.Addr)
	env("DATABASE_URL", &c.DatabaseURL)
	env("OUDERD_BASE_URL", &c.BaseURL)
	env("OUDERD_DATA_DIR", &c.DataDir)
	env("OUDERD_LOG_LEVEL", &c.LogLevel)
	env("OUDERD_LOG_FORMAT", &c.LogFormat)
	env("OUDERD_PG_BINDIR", &c.PGBinDir)
	env("OUDERD_PPROF_ADDR", &c.PprofAddr)
	env("OUDERD_TRUSTED_ISSUERS", &c.TrustedIssuers)
	if v := getenv("OUDERD_MAX_BODY"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("OUDERD_MAX_BODY=%q: want a positive number of bytes", v)
		}
		c.MaxBody = n
	}
	if v := getenv("OUDERD_MAX_BUNDLE_ENTRIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("OUDERD_MAX_BUNDLE_ENTRIES=%q: want a positive number of entries", v)
		}
		c.MaxBundleEntries = n
	}
	if v := getenv("OUDERD_CONDITIONAL_DELETE_MULTIPLE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("OUDERD_CONDITIONAL_DELETE_MULTIPLE=%q: want true or false", v)
		}
		c.ConditionalDeleteMultiple = b
	}
	if v := getenv("OUDERD_DEMO"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("OUDERD_DEMO=%q: want true or false", v)
		}
		c.Demo = b
	}
	if v := getenv("OUDERD_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("OUDERD_SHUTDOWN_TIMEOUT=%q: %w", v, err)
		}
		c.ShutdownTimeout = d
	}
	fs := flag.NewFlagSet("ouderd", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (host:port; port 0 picks a free one)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL; empty runs a private cluster under -data-dir")
	fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "public FHIR base URL (default http://<addr>/fhir)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the private PostgreSQL cluster")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text")
	fs.Int64Var(&c.MaxBody, "max-body", c.MaxBody, "largest request body in bytes")
	fs.IntVar(&c.MaxBundleEntries, "max-bundle-entries", c.MaxBundleEntries, "most entries in a transaction or batch Bundle")
	fs.BoolVar(&c.ConditionalDeleteMultiple, "conditional-delete-multiple", c.ConditionalDeleteMultiple,
		fmt.Sprintf("let a conditional delete remove every match (up to %d) instead of answering 412 for several", rest.MaxConditionalDeletes))
	fs.StringVar(&c.PGBinDir, "pg-bindir", c.PGBinDir, "directory of the PostgreSQL server binaries for the private cluster (default: found through pg_config, PATH or /usr/lib/postgresql)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", c.PprofAddr, "serve Go profiles (net/http/pprof) on this loopback address; empty: off")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long to drain requests on shutdown")
	fs.BoolVar(&c.Demo, "demo", c.Demo, "load the demo family at start-up when the database does not hold it (make run sets it)")
	fs.StringVar(&c.TrustedIssuers, "trusted-issuers", c.TrustedIssuers, "JSON file listing external token issuers whose access tokens /fhir accepts (url, audience, scope_claim, fhir_user_claim, patient_claim, allowed_algs, jwks_url)")
	if err := c.OAuth.registerOAuthFlags(fs, getenv); err != nil {
		return err
	}
	c.Mail.registerMailFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.MaxBody <= 0 {
		return fmt.Errorf("-max-body must be positive")
	}
	if c.MaxBundleEntries <= 0 {
		return fmt.Errorf("-max-bundle-entries must be positive")
	}
	if err := checkDev(*c); err != nil {
		return err
	}
	if c.PprofAddr != "" {
		host, _, err := net.SplitHostPort(c.PprofAddr)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return fmt.Errorf("-pprof-addr %q: profiles expose internals, so only a loopback address is allowed", c.PprofAddr)
		}
	}
	return nil
}

func (m *Main) newLogger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.Config.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", m.Config.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch m.Config.LogFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(m.LogOutput, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(m.LogOutput, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", m.Config.LogFormat)
}

// version is the module version of the build, or "dev".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Run opens the database (starting the private cluster when no DATABASE_URL
// is set), migrates it, and starts serving. It returns once the listener is
// open; Done reports when serving stops. Call Close to shut down.
func (m *Main) Run(ctx context.Context) (err error) {
	if m.Logger == nil {
		if m.Logger, err = m.newLogger(); err != nil {
			return err
		}
	}
	dbURL := m.Config.DatabaseURL
	if dbURL == "" {
		if dbURL, err = m.startCluster(ctx); err != nil {
			return err
		}
	}
	if m.pool, err = openPool(ctx, dbURL); err != nil {
		return err
	}
	applied, err := postgres.Migrate(ctx, m.pool)
	if err != nil {
		return err
	}
	m.Logger.Info("database ready", slog.Int("migrations_applied", applied), slog.Int("schema_version", postgres.LatestVersion()))

	m.ln, err = net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Addr, err)
	}
	base := m.Config.BaseURL
	if base == "" {
		base = "http://" + m.ln.Addr().String() + "/fhir"
	}
	builtin, err := searchparam.Builtin()
	if err != nil {
		return err
	}
	live := searchparam.NewLive(builtin)
	parser, err := conformance.NewParser()
	if err != nil {
		return err
	}
	parser.Registry = live.Get
	store := postgres.New(m.pool)
	store.Registry = live.Get
	reload := func(ctx context.Context) error {
		custom, err := store.CustomSearchParams(ctx)
		if err != nil {
			return err
		}
		reg, err := searchparam.New(custom)
		if err != nil {
			return fmt.Errorf("custom search parameters: %w", err)
		}
		live.Set(reg)
		return nil
	}
	if err := reload(ctx); err != nil {
		m.Logger.Error("custom search parameters not loaded; using the built-in ones", slog.String("error", err.Error()))
	}
	if err := m.installGuide(ctx, store, parser, reload); err != nil {
		return err
	}
	m.startBackground(store, parser, reload)
	m.audit = store.NewAuditWriter(4096, func(err error) {
		m.Logger.Error("audit trail", slog.String("error", err.Error()))
	})
	store.Base = base
	m.invites = &invitations{}
	as, err := m.startOAuth(ctx, store, builtin, base)
	if err != nil {
		return err
	}
	authenticate, err := m.authentication(ctx, base, m.own)
	if err != nil {
		return err
	}
	// The access policy reads its facts (care teams, Consents, ages)
	// from the store per request, cached until a write of one of their
	// types: this instance's writes say so after commit, every
	// instance's through LISTEN/NOTIFY (Watch, stopped with the other
	// background work).
	pol := policy.New(policy.Config{Registry: live.Get, Base: base, Facts: store.PolicyResources, Logger: m.Logger})
	store.OnPolicyChange = pol.Changed
	watch, cancelWatch := context.WithCancel(context.Background())
	stopOthers := m.stopBackground
	m.stopBackground = func() {
		cancelWatch()
		if stopOthers != nil {
			stopOthers()
		}
	}
	go pol.Watch(watch, store)
	decide := pol.Decide
	apiConfig := rest.Config{
		Authenticate: authenticate,
		Authorize:    decide,
		Store:        store,
		Parser:       parser,
		Searcher:     store,
		Transactor:   transactor{store},
		SearchParser: &search.Parser{Registry: builtin, Fold: searchparam.Fold, Base: base},
		Registry:     live.Get,
		SearchParamsChanged: func(ctx context.Context, types []string) error {
			if err := reload(ctx); err != nil {
				return err
			}
			if err := store.AnnounceSearchParams(ctx); err != nil {
				return err
			}
			id, err := store.StartReindex(ctx, "SearchParameter changed", expandTypes(types))
			if err != nil {
				return err
			}
			m.Logger.Info("reindex queued", slog.Int64("job", id), slog.Any("types", types))
			return nil
		},
		BaseURL:                   base,
		MaxBody:                   m.Config.MaxBody,
		MaxBundleEntries:          m.Config.MaxBundleEntries,
		ConditionalDeleteMultiple: m.Config.ConditionalDeleteMultiple,
		Logger:                    m.Logger,
		Version:                   version(),
		Audit:                     m.audit,
	}
	apiConfig.WellKnown = as.SMARTConfiguration()
	sender, err := m.mailSender()
	if err != nil {
		return err
	}
	apiConfig.SendInvitation = invitationSender(sender, as.Issuer())
	api, err := rest.New(apiConfig)
	if err != nil {
		return err
	}
	m.invites.api = api
	m.loadDemo(ctx, apiConfig)
	m.srv = &http.Server{
		Handler:           withOAuth(api.Routes(func(r *http.Request) error { return store.Ping(r.Context()) }), as),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	go func() {
		err := m.srv.Serve(m.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		m.stop(err)
	}()
	if m.cluster != nil {
		go func() {
			<-m.cluster.Done()
			m.stop(errors.New("the private PostgreSQL cluster stopped unexpectedly; see " + m.cluster.LogPath()))
		}()
	}
	if m.Config.PprofAddr != "" {
		if err := m.startPprof(); err != nil {
			return err
		}
	}
	m.Logger.Info("listening", slog.String("addr", m.ln.Addr().String()), slog.String("fhir_base", base))
	return nil
}

// transactor gives the REST layer the store's transactions.
type transactor struct{ store *postgres.Store }

func (t transactor) Transaction(ctx context.Context, fn func(tx rest.TxStore) error) error {
	return t.store.Transaction(ctx, func(tx *postgres.Store) error { return fn(tx) })
}

// expandTypes turns SearchParameter bases into concrete resource types.
func expandTypes(bases []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, b := range bases {
		list := []string{b}
		if b == "Resource" || b == "DomainResource" {
			list = conformance.ResourceTypes()
		}
		for _, t := range list {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

// startBackground runs the work that is not tied to a request: reloading
// the search parameter registry when another instance announces a change,
// the reindex worker, which any instance may run (jobs are claimed in the
// database), and the refresher of the search tables' statistics.
func (m *Main) startBackground(store *postgres.Store, parser *conformance.Parser, reload func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	m.stopBackground = cancel
	m.bgDone = make(chan struct{})
	var wg sync.WaitGroup
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	wg.Go(func() {
		store.ListenSearchParams(ctx, func() {
			if err := reload(ctx); err != nil && ctx.Err() == nil {
				m.Logger.Error("reload custom search parameters", slog.String("error", err.Error()))
			}
			poke()
		})
	})
	wg.Go(func() {
		for ctx.Err() == nil {
			worked, err := store.ReindexStep(ctx, reload, parser.IndexOf)
			if err != nil && ctx.Err() == nil {
				m.Logger.Error("reindex", slog.String("error", err.Error()))
			}
			if worked && err == nil {
				continue
			}
			select {
			case <-ctx.Done():
			case <-wake:
			case <-time.After(2 * time.Second):
			}
		}
	})
	// The audit trail's hash chain, sealed every second by one instance
	// at a time (store/postgres/audit.go).
	wg.Go(func() {
		store.RunAuditSealer(ctx, time.Second, func(err error) {
			m.Logger.Error("seal audit trail", slog.String("error", err.Error()))
		})
	})
	// The planner's statistics, refreshed within seconds of a burst of
	// writes (store/postgres/statistics.go).
	wg.Go(func() {
		postgres.NewStatisticsRefresher(store.Pool()).Run(ctx, 2*time.Second, func(err error) {
			m.Logger.Error("refresh search statistics", slog.String("error", err.Error()))
		})
	})
	go func() { wg.Wait(); close(m.bgDone) }()
}

// startPprof serves net/http/pprof on its own loopback listener, apart
// from the API, for finding where time goes (see docs/performance.md).
func (m *Main) startPprof() error {
	ln, err := net.Listen("tcp", m.Config.PprofAddr)
	if err != nil {
		return fmt.Errorf("pprof listen on %s: %w", m.Config.PprofAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	m.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = m.pprof.Serve(ln) }()
	m.Logger.Info("pprof listening", slog.String("addr", ln.Addr().String()))
	return nil
}

// startCluster starts the private PostgreSQL cluster under DataDir and
// returns the URL of its "ouder" database, creating it on first use.
func (m *Main) startCluster(ctx context.Context) (string, error) {
	dataDir, err := filepath.Abs(filepath.Join(m.Config.DataDir, "pgdata"))
	if err != nil {
		return "", err
	}
	m.Logger.Info("no DATABASE_URL: starting a private PostgreSQL cluster", slog.String("data_dir", dataDir))
	m.cluster, err = pgcluster.Start(ctx, pgcluster.Options{DataDir: dataDir, Logger: m.Logger, BinDir: m.Config.PGBinDir})
	if err != nil {
		return "", fmt.Errorf("%w (install PostgreSQL 15+ or set DATABASE_URL to use an existing database)", err)
	}
	conn, err := pgx.Connect(ctx, m.cluster.ConnString("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to the private cluster: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'ouder')`).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for database ouder: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE DATABASE ouder`); err != nil {
			return "", fmt.Errorf("create database ouder: %w", err)
		}
	}
	return m.cluster.ConnString("ouder"), nil
}

// openPool connects to url. Unless the URL sets pool_max_conns, the pool
// holds enough connections to keep both the server and PostgreSQL busy.
func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	return pool, nil
}

// Addr returns the address the server listens on (useful with port 0).
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Done is closed when the server stops serving on its own (a listener
// failure, or the private cluster dying); Err then says why.
func (m *Main) Done() <-chan struct{} { return m.done }

// Err returns why serving stopped, once Done is closed.
func (m *Main) Err() error {
	select {
	case <-m.done:
		return m.doneErr
	default:
		return nil
	}
}

func (m *Main) stop(err error) {
	m.doneOnce.Do(func() {
		m.doneErr = err
		close(m.done)
	})
}

// Close drains in-flight requests (up to ShutdownTimeout), then closes the
// database pool and stops the private cluster. It is safe to call once
// after Run, also after a failed Run.
func (m *Main) Close() error {
	var errs []error
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		errs = append(errs, m.srv.Shutdown(ctx))
		cancel()
		m.stop(nil)
	}
	if m.pprof != nil {
		errs = append(errs, m.pprof.Close())
	}
	if m.audit != nil {
		m.audit.Close() // the records of the last requests
	}
	if m.stopBackground != nil {
		m.stopBackground()
		<-m.bgDone
	}
	if m.pool != nil {
		m.pool.Close()
	}
	if m.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = append(errs, m.cluster.Stop(ctx))
		cancel()
	}
	return errors.Join(errs...)
}
