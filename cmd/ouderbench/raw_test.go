package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// seedResources stores Patients a and b and a deleted Patient gone in the
// FHIR server's resources table of pool, as the server would have.
func seedResources(tb testing.TB, pool *pgxpool.Pool) {
	tb.Helper()
	_, err := pool.Exec(context.Background(), `
		INSERT INTO resources (type, id, version, last_updated, deleted, body) VALUES
			('Patient', 'a', 1, now(), false, '{"resourceType":"Patient","id":"a"}'),
			('Patient', 'b', 2, now(), false, '{"resourceType":"Patient","id":"b"}'),
			('Patient', 'gone', 2, now(), true, NULL)`)
	if err != nil {
		tb.Fatalf("seed resources: %v", err)
	}
}

// rawRow is a row of raw_resources.
type rawRow struct {
	Type, ID    string
	Version     int64
	LastUpdated time.Time
	Body        string
}

// rawRows returns the rows of raw_resources in insertion order.
func rawRows(tb testing.TB, pool *pgxpool.Pool) []rawRow {
	tb.Helper()
	rows, err := pool.Query(context.Background(), `SELECT type, id, version, last_updated, body FROM raw_resources ORDER BY rid`)
	if err != nil {
		tb.Fatalf("read raw_resources: %v", err)
	}
	defer rows.Close()
	var out []rawRow
	for rows.Next() {
		var r rawRow
		var body []byte
		if err := rows.Scan(&r.Type, &r.ID, &r.Version, &r.LastUpdated, &body); err != nil {
			tb.Fatalf("read raw_resources: %v", err)
		}
		r.Body = string(body)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("read raw_resources: %v", err)
	}
	return out
}

// newRawTestServer serves the raw endpoints on a fresh database holding the
// seeded resources, with a fixed clock. It returns the database's pool, the
// server and its log.
func newRawTestServer(tb testing.TB, now time.Time) (*pgxpool.Pool, *httptest.Server, *bytes.Buffer) {
	tb.Helper()
	pool := pgtest.Pool(tb)
	seedResources(tb, pool)
	var logs bytes.Buffer
	s, err := newRawServer(context.Background(), pool, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	s.now = func() time.Time { return now }
	srv := httptest.NewServer(s.handler())
	tb.Cleanup(srv.Close)
	return pool, srv, &logs
}

func TestRawHandler(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pool, srv, _ := newRawTestServer(t, now)
	tests := []struct {
		name       string
		method     string
		path, body string
		wantStatus int
		wantBody   string
	}{
		{"read", "GET", "/raw/Patient/a", "", 200, `{"resourceType":"Patient","id":"a"}`},
		{"read missing", "GET", "/raw/Patient/zz", "", 404, ""},
		{"read deleted", "GET", "/raw/Patient/gone", "", 404, ""},
		{"read other type", "GET", "/raw/Observation/a", "", 404, ""},
		{"read bad type", "GET", "/raw/patient/a", "", 404, ""},
		{"read bad id", "GET", "/raw/Patient/a_b", "", 404, ""},
		{"create bad type", "POST", "/raw/pat_ient", "{}", 400, ""},
		{"ready", "GET", "/readyz", "", 200, "ok\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.wantStatus || (tt.wantBody != "" && string(b) != tt.wantBody) {
				t.Errorf("%s %s = %d %q; want %d %q", tt.method, tt.path, res.StatusCode, b, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus == 200 && tt.path != "/readyz" && res.Header.Get("Content-Type") != fhirJSON {
				t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), fhirJSON)
			}
		})
	}
	t.Run("create", func(t *testing.T) {
		res, err := http.Post(srv.URL+"/raw/Patient", fhirJSON, strings.NewReader(`{"resourceType":"Patient"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		id := createdID("Patient", response{status: res.StatusCode, location: res.Header.Get("Location")})
		if res.StatusCode != http.StatusCreated || !uuidPattern.MatchString("urn:uuid:"+id) {
			t.Fatalf("create = %d, Location %q; want 201 and a uuid id", res.StatusCode, res.Header.Get("Location"))
		}
		want := []rawRow{{Type: "Patient", ID: id, Version: 1, LastUpdated: now, Body: `{"resourceType":"Patient"}`}}
		got := rawRows(t, pool)
		for i := range got {
			got[i].LastUpdated = got[i].LastUpdated.UTC()
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("raw_resources (-want +got):\n%s", diff)
		}
		// The FHIR server's own table is untouched.
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM resources`).Scan(&n); err != nil || n != 3 {
			t.Errorf("resources holds %d rows (err %v); want the 3 seeded", n, err)
		}
	})
}

func TestRawHandlerHidesDatabaseErrors(t *testing.T) {
	t.Parallel()
	// A pool on a database that does not exist: every statement fails with
	// a real PostgreSQL error that names it.
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Database = "no_such_database_xq7"
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var logs bytes.Buffer
	s := &rawServer{pool: pool, now: time.Now, log: slog.New(slog.NewTextHandler(&logs, nil))}
	srv := httptest.NewServer(s.handler())
	t.Cleanup(srv.Close)
	for _, req := range []struct{ method, path string }{{"GET", "/raw/Patient/a"}, {"POST", "/raw/Patient"}, {"GET", "/readyz"}} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, strings.NewReader("{}"))
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 500 || strings.Contains(string(b), "xq7") {
			t.Errorf("%s %s = %d %q; want 500 without details", req.method, req.path, res.StatusCode, b)
		}
	}
	if !strings.Contains(logs.String(), "no_such_database_xq7") {
		t.Errorf("the database error was not logged: %s", logs.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader in
// different goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startRawCommand runs "ouderbench raw -db dsn" until the test ends and
// returns the URL it listens on. The cleanup checks that it stopped
// cleanly.
func startRawCommand(tb testing.TB, dsn string) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	var stderr lockedBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"raw", "-db", dsn}, outW, &stderr)
		outW.Close()
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case code := <-exit:
			if code != exitOK {
				tb.Errorf("ouderbench raw: exit %d, stderr:\n%s", code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			tb.Errorf("ouderbench raw did not stop within 10s of its context")
		}
	})
	line, err := bufio.NewReader(outR).ReadString('\n')
	go io.Copy(io.Discard, outR) // nothing more is printed, but never block the writer
	if !strings.HasPrefix(line, "listening on http://") {
		tb.Fatalf("first line %q (err %v); stderr:\n%s", line, err, stderr.String())
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
}

func TestRawCommand(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	seedResources(t, pool)
	base := startRawCommand(t, pool.Config().ConnString())

	res, err := http.Get(base + "/raw/Patient/b")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != `{"resourceType":"Patient","id":"b"}` {
		t.Errorf("GET Patient/b = %d %q", res.StatusCode, b)
	}
	before := time.Now()
	res, err = http.Post(base+"/raw/Observation", fhirJSON, strings.NewReader(`{"resourceType":"Observation"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	rows := rawRows(t, pool)
	if res.StatusCode != 201 || len(rows) != 1 || rows[0].Type != "Observation" || rows[0].Body != `{"resourceType":"Observation"}` {
		t.Fatalf("POST Observation = %d; raw_resources %+v", res.StatusCode, rows)
	}
	if at := rows[0].LastUpdated; at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("last_updated %v; want about now (%v)", at, before)
	}
	if loc := res.Header.Get("Location"); loc != "/raw/Observation/"+rows[0].ID+"/_history/1" {
		t.Errorf("Location %q, want the stored id %s", loc, rows[0].ID)
	}
}

func TestRunAgainstRaw(t *testing.T) {
	t.Parallel()
	pool, srv, _ := newRawTestServer(t, time.Now())
	idsPath := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(idsPath, []byte("a\nPatient/b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr, res := runBench(t, "-base", srv.URL+"/raw", "-scenario", "read",
		"-ids-from", idsPath, "-requests", "50", "-warmup", "0", "-concurrency", "2")
	if code != exitOK || res == nil {
		t.Fatalf("read: exit %d, stderr:\n%s", code, stderr)
	}
	if res.Mode != "raw" || res.Total.Requests != 50 || res.Total.Errors != 0 {
		t.Errorf("read: mode %q, %d requests, %d errors (%v); want raw, 50, 0", res.Mode, res.Total.Requests, res.Total.Errors, res.Total.Status)
	}

	code, _, stderr, res = runBench(t, "-base", srv.URL+"/raw", "-scenario", "crud",
		"-ids-from", idsPath, "-requests", "30", "-warmup", "0", "-concurrency", "1")
	if code != exitOK || res == nil {
		t.Fatalf("crud: exit %d, stderr:\n%s", code, stderr)
	}
	// 30 requests at 3 creates + 3 reads an iteration.
	if diff := cmp.Diff(map[string]uint64{"create": 15, "read": 15}, opCounts(res)); diff != "" || res.Total.Errors != 0 {
		t.Errorf("crud against raw: %d errors, operations (-want +got):\n%s", res.Total.Errors, diff)
	}
	rows := rawRows(t, pool)
	var types []string
	for _, r := range rows {
		types = append(types, r.Type)
	}
	want := slices.Repeat([]string{"Patient", "RelatedPerson", "Goal"}, 5)
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("raw_resources types (-want +got):\n%s", diff)
	}

	code, _, stderr, res = runBench(t, "-base", srv.URL+"/raw", "-scenario", "create",
		"-requests", "20", "-warmup", "0", "-concurrency", "2")
	if code != exitOK || res == nil {
		t.Fatalf("create: exit %d, stderr:\n%s", code, stderr)
	}
	if got := len(rawRows(t, pool)) - len(rows); res.Total.Requests != 20 || res.Total.Errors != 0 || got != 20 {
		t.Errorf("create against raw: %d requests, %d errors, %d rows inserted; want 20, 0, 20", res.Total.Requests, res.Total.Errors, got)
	}
}

func TestRawFlags(t *testing.T) {
	t.Setenv("DATABASE_URL", "") // the default of -db
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no database", []string{"-addr", "127.0.0.1:0"}, "-db (or DATABASE_URL) is required"},
		{"all interfaces", []string{"-db", "postgres://x", "-addr", ":8080"}, "not a loopback address"},
		{"remote address", []string{"-db", "postgres://x", "-addr", "10.0.0.1:8080"}, "-allow-remote"},
		{"bad address", []string{"-db", "postgres://x", "-addr", "nowhere"}, "-addr"},
		{"extra argument", []string{"-db", "postgres://x", "now"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"raw"}, tt.args...), &stdout, &stderr)
			if code != exitUsage || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), exitUsage, tt.wantErr)
			}
		})
	}
}
