package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// fakeRawDB stands in for PostgreSQL: resources holds "Type/id" -> body (nil
// for a tombstone) and inserts collects what creates wrote. It checks that
// the raw server sends exactly the documented SQL.
type fakeRawDB struct {
	tb        testing.TB
	fail      error
	mu        sync.Mutex
	resources map[string][]byte
	inserts   []rawInsert
}

type rawInsert struct {
	typ, id string
	at      time.Time
	body    string
}

type fakeRow struct {
	body  []byte
	found bool
	err   error
}

func (r fakeRow) Scan(dest ...any) error {
	switch {
	case r.err != nil:
		return r.err
	case !r.found:
		return pgx.ErrNoRows
	}
	*dest[0].(*[]byte) = r.body
	return nil
}

func (f *fakeRawDB) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	if sql != rawReadSQL || len(args) != 2 {
		f.tb.Errorf("QueryRow(%q, %v)", sql, args)
	}
	if f.fail != nil {
		return fakeRow{err: f.fail}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	body, found := f.resources[args[0].(string)+"/"+args[1].(string)]
	return fakeRow{body: body, found: found}
}

func (f *fakeRawDB) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if sql != rawInsertSQL || len(args) != 4 {
		f.tb.Errorf("Exec(%q, %v)", sql, args)
	}
	if f.fail != nil {
		return pgconn.CommandTag{}, f.fail
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inserts = append(f.inserts, rawInsert{args[0].(string), args[1].(string), args[2].(time.Time), string(args[3].([]byte))})
	return pgconn.NewCommandTag("INSERT 0 1"), nil
}

func (f *fakeRawDB) Ping(context.Context) error { return f.fail }

// newRawTestServer serves the raw endpoints from a fake database holding
// Patients a and b and a deleted Patient gone.
func newRawTestServer(tb testing.TB, fail error) (*fakeRawDB, *httptest.Server, *bytes.Buffer) {
	tb.Helper()
	db := &fakeRawDB{tb: tb, fail: fail, resources: map[string][]byte{
		"Patient/a":    []byte(`{"resourceType":"Patient","id":"a"}`),
		"Patient/b":    []byte(`{"resourceType":"Patient","id":"b"}`),
		"Patient/gone": nil,
	}}
	var logs bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := &rawServer{db: db, now: func() time.Time { return now }, log: slog.New(slog.NewTextHandler(&logs, nil))}
	srv := httptest.NewServer(s.handler())
	tb.Cleanup(srv.Close)
	return db, srv, &logs
}

func TestRawHandler(t *testing.T) {
	t.Parallel()
	db, srv, _ := newRawTestServer(t, nil)
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
		})
	}

	res, err := http.Post(srv.URL+"/raw/Patient", fhirJSON, strings.NewReader(`{"resourceType":"Patient"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	id := createdID("Patient", response{status: res.StatusCode, location: res.Header.Get("Location")})
	if res.StatusCode != http.StatusCreated || !uuidPattern.MatchString("urn:uuid:"+id) {
		t.Fatalf("create = %d, Location %q; want 201 and a uuid id", res.StatusCode, res.Header.Get("Location"))
	}
	want := []rawInsert{{"Patient", id, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), `{"resourceType":"Patient"}`}}
	if diff := cmp.Diff(want, db.inserts, cmp.AllowUnexported(rawInsert{})); diff != "" {
		t.Errorf("inserts (-want +got):\n%s", diff)
	}
}

func TestRawHandlerHidesDatabaseErrors(t *testing.T) {
	t.Parallel()
	_, srv, logs := newRawTestServer(t, errors.New("connection to 10.1.2.3 refused"))
	for _, req := range []struct{ method, path string }{{"GET", "/raw/Patient/a"}, {"POST", "/raw/Patient"}, {"GET", "/readyz"}} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, strings.NewReader("{}"))
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 500 || strings.Contains(string(b), "10.1.2.3") {
			t.Errorf("%s %s = %d %q; want 500 without details", req.method, req.path, res.StatusCode, b)
		}
	}
	if !strings.Contains(logs.String(), "10.1.2.3") {
		t.Errorf("the database error was not logged: %s", logs)
	}
}

func TestRunAgainstRaw(t *testing.T) {
	t.Parallel()
	db, srv, _ := newRawTestServer(t, nil)
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
	db.mu.Lock()
	defer db.mu.Unlock()
	var types []string
	for _, in := range db.inserts[:3] {
		types = append(types, in.typ)
	}
	if len(db.inserts) != 15 || !cmp.Equal(types, []string{"Patient", "Observation", "CarePlan"}) {
		t.Errorf("%d inserts starting %v; want 15 of Patient, Observation, CarePlan", len(db.inserts), types)
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
