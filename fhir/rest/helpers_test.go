package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/policy"
	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir/rest"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testServer is the REST API on a fresh database.
type testServer struct {
	*httptest.Server
	pool *pgxpool.Pool
	logs *lockedWriter
}

type serverOption func(*rest.Config)

func newServer(tb testing.TB, opts ...serverOption) *testServer {
	tb.Helper()
	return newServerOn(tb, pgtest.Pool(tb), opts...)
}

// newServerOn is newServer on the database of pool.
func newServerOn(tb testing.TB, pool *pgxpool.Pool, opts ...serverOption) *testServer {
	tb.Helper()
	parser, err := conformance.NewParser()
	if err != nil {
		tb.Fatal(err)
	}
	registry, err := igRegistry()
	if err != nil {
		tb.Fatal(err)
	}
	parser.Registry = func() *searchparam.Registry { return registry }
	logs := &lockedWriter{w: &bytes.Buffer{}}
	store := postgres.New(pool)
	cfg := rest.Config{
		// An operator by default: the tests of the interactions are not
		// about access; those that are set their own Authenticate.
		Authenticate: func(*http.Request) (*auth.Principal, error) {
			return &auth.Principal{Subject: "test-operator", Operator: true}, nil
		},
		Store:        store,
		Parser:       parser,
		Searcher:     store,
		Transactor:   transactor{store},
		SearchParser: &search.Parser{Registry: registry, Fold: searchparam.Fold},
		Logger:       slog.New(slog.NewJSONHandler(logs, nil)),
		Version:      "test",
		Now:          func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) },
	}
	for _, o := range opts {
		o(&cfg)
	}
	ts := &testServer{pool: pool, logs: logs}
	var handler http.Handler
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	ts.Start()
	cfg.BaseURL = ts.URL + "/fhir"
	cfg.SearchParser.Base = cfg.BaseURL
	store.Base = cfg.BaseURL
	if cfg.Authorize == nil {
		// The full policy, as ouderd runs it: facts cached per caller,
		// invalidated after this server's own writes and, through
		// LISTEN/NOTIFY, after those of any other server on the database.
		pol := policy.New(policy.Config{Registry: func() *searchparam.Registry { return registry }, Base: cfg.BaseURL,
			Facts: store.PolicyResources, Now: cfg.Now})
		store.OnPolicyChange = pol.Changed
		cfg.Authorize = pol.Decide
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); pol.Watch(ctx, store) }()
		tb.Cleanup(func() { cancel(); <-done })
	}
	api, err := rest.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	handler = api.Routes(func(r *http.Request) error { return store.Ping(r.Context()) })
	tb.Cleanup(ts.Close)
	return ts
}

// transactor gives the REST layer the store's transactions, as cmd/ouderd
// wires it.
type transactor struct{ store *postgres.Store }

func (t transactor) Transaction(ctx context.Context, fn func(tx rest.TxStore) error) error {
	return t.store.Transaction(ctx, func(tx *postgres.Store) error { return fn(tx) })
}

// lockedWriter serialises log writes from concurrent handlers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// String returns what was written so far.
func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.(*bytes.Buffer).String()
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("response body is not JSON: %v\n%s", err, r.body)
	}
	return m
}

const fhirJSON = "application/fhir+json"

// do sends one request; headers are "Name: value" strings.
func (ts *testServer) do(tb testing.TB, method, path string, body string, headers ...string) response {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, ts.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", fhirJSON)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		if strings.TrimSpace(v) == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, strings.TrimSpace(v))
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// rows counts resources and versions in the database.
func (ts *testServer) rows(tb testing.TB) (resources, versions int) {
	tb.Helper()
	ctx := context.Background()
	// Provenances are the server's record of each version (docs/audit.md).
	if err := ts.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM resources WHERE type <> 'Provenance'), (SELECT count(*) FROM resource_history WHERE type <> 'Provenance')`).Scan(&resources, &versions); err != nil {
		tb.Fatal(err)
	}
	return resources, versions
}

// create posts a resource and returns its id, failing the test unless 201.
func (ts *testServer) create(tb testing.TB, typ, body string) string {
	tb.Helper()
	res := ts.do(tb, "POST", "/fhir/"+typ, body)
	if res.status != http.StatusCreated {
		tb.Fatalf("create %s: status %d: %s", typ, res.status, res.body)
	}
	id, _ := res.json(tb)["id"].(string)
	return id
}

// issues returns the (code, expression) pairs of an OperationOutcome body.
func issues(tb testing.TB, r response) []string {
	tb.Helper()
	m := r.json(tb)
	if m["resourceType"] != "OperationOutcome" {
		tb.Fatalf("want an OperationOutcome, got %s", r.body)
	}
	var out []string
	list, _ := m["issue"].([]any)
	for _, is := range list {
		im := is.(map[string]any)
		exprs, _ := im["expression"].([]any)
		s := im["code"].(string) + "@"
		for i, e := range exprs {
			if i > 0 {
				s += ","
			}
			s += e.(string)
		}
		out = append(out, s)
	}
	return out
}
