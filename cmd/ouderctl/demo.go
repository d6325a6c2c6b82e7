package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/policy"
	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir/rest"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/mapping/family"
	"github.com/digitaleouder/ouder/store/postgres"
)

const demoUsage = `usage: ouderctl [-database-url URL] demo <load|bundle> [-date YYYY-MM-DD] [-base-url URL]

  load     write the demo family into the database (idempotent: a second load
           writes new versions of the same resources, no duplicates)
  bundle   print the demo family as a FHIR transaction Bundle (no database)

  -date      the day the demo is made for (default today): the children are 14 and 9 on it
  -base-url  the server's public FHIR base (default $OUDERD_BASE_URL or http://127.0.0.1:8080/fhir)
`

// runDemo is "ouderctl demo": the demo family of mapping/family, loaded
// through the server's own write path (see loader) or printed.
func runDemo(ctx context.Context, args []string, dbURL string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	date := fs.String("date", "", "day the demo is made for (YYYY-MM-DD)")
	base := fs.String("base-url", defaultBase(getenv), "public FHIR base URL")
	if len(args) == 0 {
		fmt.Fprint(out, demoUsage)
		return errors.New("demo: expected load or bundle")
	}
	sub := args[0]
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		fmt.Fprint(out, demoUsage)
		return errors.Join(errors.New("demo: bad arguments"), err)
	}
	now, err := day(*date, time.Now())
	if err != nil {
		return err
	}
	f, err := family.Demo(now)
	if err != nil {
		return err
	}
	switch sub {
	case "bundle":
		_, err := out.Write(append(f.Transaction(), '\n'))
		return err
	case "load":
		l, err := openLoader(ctx, dbURL, *base)
		if err != nil {
			return err
		}
		defer l.close()
		n, err := l.post(ctx, f.Transaction())
		if err != nil {
			return fmt.Errorf("demo load: %w", err)
		}
		fmt.Fprintf(out, "loaded the demo family %q: %d resources (Group/%s; children Patient/%s)\n",
			f.Name, n, f.Group, strings.Join(f.Children, ", Patient/"))
		return nil
	}
	fmt.Fprint(out, demoUsage)
	return fmt.Errorf("demo: unknown subcommand %q", sub)
}

// day returns noon of the date YYYY-MM-DD in the local time zone, or now
// when date is empty.
func day(date string, now time.Time) (time.Time, error) {
	if date == "" {
		return now, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, date, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("-date %q: want YYYY-MM-DD", date)
	}
	return t.Add(12 * time.Hour), nil
}

func defaultBase(getenv func(string) string) string {
	if b := getenv("OUDERD_BASE_URL"); b != "" {
		return b
	}
	return "http://127.0.0.1:8080/fhir"
}

// loader writes transaction Bundles into a database through the FHIR REST
// API itself, in this process: the same parsing, validation, profile checks,
// indexing and transaction handling as ouderd, without a network hop or a
// token. It acts as an operator, as every administration command does: the
// database URL is the credential.
type loader struct {
	pool    *pgxpool.Pool
	handler http.Handler
}

// openLoader connects to dbURL and builds the API on it, with the custom
// search parameters stored there. base is the FHIR base the API believes it
// serves (it appears in Location headers, not in the stored resources).
func openLoader(ctx context.Context, dbURL, base string) (*loader, error) {
	if dbURL == "" {
		return nil, errors.New("no database: set DATABASE_URL or -database-url, or start the server with make run")
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	l, err := newLoader(ctx, pool, base)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return l, nil
}

func newLoader(ctx context.Context, pool *pgxpool.Pool, base string) (*loader, error) {
	store := postgres.New(pool)
	custom, err := store.CustomSearchParams(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the custom search parameters (is the database migrated? run ouderctl migrate): %w", err)
	}
	reg, err := searchparam.New(custom)
	if err != nil {
		return nil, fmt.Errorf("custom search parameters: %w", err)
	}
	registry := func() *searchparam.Registry { return reg }
	parser, err := conformance.NewParser()
	if err != nil {
		return nil, err
	}
	parser.Registry = registry
	store.Registry = registry
	store.Base = base
	api, err := rest.New(rest.Config{
		Authenticate: func(*http.Request) (*auth.Principal, error) {
			return &auth.Principal{Subject: "ouderctl", Operator: true}, nil
		},
		Authorize:        policy.New(policy.Config{Registry: registry, Base: base, Facts: store.PolicyResources}).Decide,
		Store:            store,
		Parser:           parser,
		Searcher:         store,
		Transactor:       transactor{store},
		SearchParser:     &search.Parser{Registry: reg, Fold: searchparam.Fold, Base: base},
		Registry:         registry,
		BaseURL:          base,
		MaxBundleEntries: rest.DefaultMaxBundleEntries,
		Logger:           slog.New(slog.DiscardHandler),
		Version:          "ouderctl",
	})
	if err != nil {
		return nil, err
	}
	return &loader{pool: pool, handler: api.Routes(func(*http.Request) error { return nil })}, nil
}

func (l *loader) close() { l.pool.Close() }

// transactor gives the REST layer the store's transactions, as ouderd wires
// it.
type transactor struct{ store *postgres.Store }

func (t transactor) Transaction(ctx context.Context, fn func(tx rest.TxStore) error) error {
	return t.store.Transaction(ctx, func(tx *postgres.Store) error { return fn(tx) })
}

// post sends a transaction Bundle to the API and returns how many entries
// it wrote. A refused Bundle (nothing of it is stored) is an error that
// carries the OperationOutcome's issues.
func (l *loader) post(ctx context.Context, bundle []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/fhir", bytes.NewReader(bundle))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "return=minimal")
	var w response
	l.handler.ServeHTTP(&w, req)
	if w.status != http.StatusOK {
		return 0, outcomeError(w.status, w.body.Bytes())
	}
	var answer struct {
		Type  string `json:"type"`
		Entry []struct {
			Response struct {
				Status string `json:"status"`
			} `json:"response"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(w.body.Bytes(), &answer); err != nil || answer.Type != "transaction-response" {
		return 0, fmt.Errorf("the answer is not a transaction-response Bundle: %v", err)
	}
	return len(answer.Entry), nil
}

// outcomeError describes a refused request by its OperationOutcome.
func outcomeError(status int, body []byte) error {
	var oo struct {
		Issue []struct {
			Diagnostics string   `json:"diagnostics"`
			Expression  []string `json:"expression"`
		} `json:"issue"`
	}
	var msgs []string
	if json.Unmarshal(body, &oo) == nil {
		for _, is := range oo.Issue {
			msg := is.Diagnostics
			if len(is.Expression) > 0 {
				msg = strings.Join(is.Expression, ", ") + ": " + msg
			}
			msgs = append(msgs, msg)
		}
	}
	if len(msgs) == 0 {
		msgs = append(msgs, strings.TrimSpace(string(body)))
	}
	return fmt.Errorf("refused (HTTP %d): %s", status, strings.Join(msgs, "; "))
}

// response is the http.ResponseWriter of an in-process request.
type response struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *response) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *response) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *response) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
