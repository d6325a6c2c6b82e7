package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/policy"
	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir/rest"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
)

// realFHIR serves the server's own FHIR API on a fresh database, as ouderd
// wires it, with every caller an operator: the scenarios' data must be what
// the real server accepts, not only what the fake checks.
func realFHIR(tb testing.TB) *httptest.Server {
	tb.Helper()
	pool := pgtest.Pool(tb)
	parser, err := conformance.NewParser()
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := searchparam.Builtin()
	if err != nil {
		tb.Fatal(err)
	}
	registry := func() *searchparam.Registry { return reg }
	parser.Registry = registry
	store := postgres.New(pool)
	store.Registry = registry
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	tb.Cleanup(srv.Close)
	base := srv.URL + "/fhir"
	store.Base = base
	api, err := rest.New(rest.Config{
		Authenticate: func(*http.Request) (*auth.Principal, error) {
			return &auth.Principal{Subject: "bench", Operator: true}, nil
		},
		Authorize:    policy.New(policy.Config{Registry: registry, Base: base, Facts: store.PolicyResources}).Decide,
		Store:        store,
		Parser:       parser,
		Searcher:     store,
		Transactor:   benchTransactor{store},
		SearchParser: &search.Parser{Registry: reg, Fold: searchparam.Fold, Base: base},
		Registry:     registry,
		BaseURL:      base,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Version:      "test",
	})
	if err != nil {
		tb.Fatal(err)
	}
	handler = api.Routes(func(*http.Request) error { return nil })
	return srv
}

type benchTransactor struct{ store *postgres.Store }

func (t benchTransactor) Transaction(ctx context.Context, fn func(tx rest.TxStore) error) error {
	return t.store.Transaction(ctx, func(tx *postgres.Store) error { return fn(tx) })
}

// TestScenariosAgainstTheServer runs every scenario briefly against the
// real FHIR API: every request must succeed.
func TestScenariosAgainstTheServer(t *testing.T) {
	t.Parallel()
	srv := realFHIR(t)
	for _, tt := range []struct {
		scenario string
		args     []string
	}{
		{"read", []string{"-preload", "4", "-requests", "20"}},
		{"create", []string{"-requests", "20"}},
		{"crud", []string{"-requests", "24"}},
		{"search", []string{"-preload", "4", "-requests", "60"}},
		{"ingest", []string{"-requests", "3", "-batch", "60"}},
		{"everything", []string{"-preload", "4", "-requests", "10"}},
	} {
		code, _, stderr, res := runBench(t, append([]string{"-base", srv.URL + "/fhir", "-scenario", tt.scenario,
			"-warmup", "0", "-concurrency", "2"}, tt.args...)...)
		if code != exitOK || res == nil || res.Total.Errors != 0 {
			var status map[string]uint64
			if res != nil {
				status = res.Total.Status
			}
			t.Errorf("%s: exit %d, statuses %v, stderr:\n%s", tt.scenario, code, status, stderr)
		}
	}
}
