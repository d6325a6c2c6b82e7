package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/digitaleouder/ouder/store/pgcluster"
	"github.com/digitaleouder/ouder/store/pgtest"
)

// childEnv marks a re-execution of this test binary as an ouderd process, so
// end-to-end tests run the real main without building a separate binary.
const childEnv = "OUDERD_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	pgtest.Main(m)
}

// proc is an ouderd child process.
type proc struct {
	cmd    *exec.Cmd
	base   string // http://host:port
	stderr *syncBuffer
	exited chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc runs ouderd with env (on top of a clean environment) and waits
// until it logs the address it listens on.
func startProc(tb testing.TB, env ...string) *proc {
	tb.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append([]string{childEnv + "=1", "PATH=" + os.Getenv("PATH"), "OUDERD_ADDR=127.0.0.1:0", "OUDERD_SHUTDOWN_TIMEOUT=10s",
		"OUDERD_TRUSTED_ISSUERS=" + trustedIssuersFile(tb)}, env...)
	pr, pw := io.Pipe()
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = io.MultiWriter(p.stderr, pw)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait(); pw.Close() }()
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct {
				Msg, Addr string
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		p.base = "http://" + a
	case err := <-p.exited:
		tb.Fatalf("ouderd exited before listening: %v\n%s", err, p.stderr.String())
	case <-time.After(60 * time.Second):
		tb.Fatalf("ouderd did not start listening:\n%s", p.stderr.String())
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			tb.Fatalf("ouderd exited with %v:\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		tb.Fatalf("ouderd did not stop on SIGTERM:\n%s", p.stderr.String())
	}
}

func call(tb testing.TB, method, url, body string, headers ...string) (int, http.Header, map[string]any) {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	if _, ok := req.Header["Authorization"]; !ok {
		if op, ok := operatorFor(url); ok {
			// The server's operator (useOperator).
			req.Header.Set("Authorization", op)
		} else {
			// A backend client of the test issuer, with every system
			// scope: the access policy lets it see nothing.
			req.Header.Set("Authorization", "Bearer "+testIssuer().Token(tb, testAudience, "system/*.cruds", nil))
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, res.Header, m
}

// emptyDatabase returns the URL of a new, unmigrated database on the test
// server, so that concurrent start-ups race to migrate it.
func emptyDatabase(tb testing.TB) string {
	tb.Helper()
	url := pgtest.URL(tb)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("empty_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), url)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	cfg := conn.Config()
	s := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, cfg.User, name)
	if cfg.Password != "" {
		s += " password=" + cfg.Password
	}
	return s
}

// TestTwoInstances runs two ouderd processes on one (initially empty)
// database: they migrate it once between them, see each other's writes, and
// If-Match holds across them.
func TestTwoInstances(t *testing.T) {
	t.Parallel()
	db := emptyDatabase(t)
	var a, b *proc
	var wg sync.WaitGroup
	wg.Go(func() { a = startProc(t, "DATABASE_URL="+db) })
	wg.Go(func() { b = startProc(t, "DATABASE_URL="+db) })
	wg.Wait()
	if t.Failed() {
		return
	}
	useOperator(t, a.base, db)
	useOperator(t, b.base, db)

	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var migrations int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&migrations); err != nil {
		t.Fatal(err)
	}
	if migrations < 1 {
		t.Fatalf("schema_migrations has %d rows", migrations)
	}

	status, _, created := call(t, "POST", a.base+"/fhir/Patient", `{"resourceType":"Patient","active":true}`)
	if status != 201 {
		t.Fatalf("create on A: %d %v", status, created)
	}
	id := created["id"].(string)
	if status, _, got := call(t, "GET", b.base+"/fhir/Patient/"+id, ""); status != 200 || got["id"] != id {
		t.Fatalf("read on B: %d %v", status, got)
	}

	// 10 writers on each instance race with the same If-Match: one wins.
	var mu sync.Mutex
	count := map[int]int{}
	var writers sync.WaitGroup
	for i := range 20 {
		p := a
		if i%2 == 1 {
			p = b
		}
		writers.Go(func() {
			body := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":"w%d"}]}`, id, i)
			s, _, _ := call(t, "PUT", p.base+"/fhir/Patient/"+id, body, `If-Match: W/"1"`)
			mu.Lock()
			count[s]++
			mu.Unlock()
		})
	}
	writers.Wait()
	if count[200] != 1 || count[412] != 19 {
		t.Errorf("statuses across instances = %v, want 1 x 200, 19 x 412\n%s", count, a.stderr.String())
	}

	// Creates through both land with distinct ids and one shared history.
	ids := map[string]bool{}
	for i := range 10 {
		p := a
		if i%2 == 1 {
			p = b
		}
		s, _, r := call(t, "POST", p.base+"/fhir/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`)
		if s != 201 {
			t.Fatalf("create: %d", s)
		}
		ids[r["id"].(string)] = true
	}
	_, _, hist := call(t, "GET", b.base+"/fhir/Observation/_history?_count=100", "")
	if n := len(hist["entry"].([]any)); len(ids) != 10 || n != 10 {
		t.Errorf("%d distinct ids, %d history entries; want 10 and 10", len(ids), n)
	}

	// Conditional creates with the same criteria through both instances at
	// once, as requests and inside transactions: one Patient between them.
	const child = `{"resourceType":"Patient","identifier":[{"system":"urn:two","value":"1"}]}`
	var conds sync.WaitGroup
	for i := range 12 {
		p := a
		if i%2 == 1 {
			p = b
		}
		conds.Go(func() {
			var s int
			if i%4 < 2 {
				s, _, _ = call(t, "POST", p.base+"/fhir/Patient", child, "If-None-Exist: identifier=urn:two|1")
			} else {
				s, _, _ = call(t, "POST", p.base+"/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":`+child+
					`,"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:two|1"}}]}`)
			}
			if s != 200 && s != 201 {
				t.Errorf("conditional create %d: status %d", i, s)
			}
		})
	}
	conds.Wait()
	if _, _, found := call(t, "GET", a.base+"/fhir/Patient?identifier=urn:two|1&_total=accurate", ""); found["total"] != 1.0 {
		t.Errorf("%v Patients with identifier urn:two|1 after concurrent conditional creates on two instances, want 1", found["total"])
	}
	a.stop(t)
	b.stop(t)
}

// TestPrivateCluster is what `make run` does: no DATABASE_URL, so ouderd
// runs its own PostgreSQL under the data directory, stops it on SIGTERM, and
// finds its data again on the next start.
func TestPrivateCluster(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "ouderd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The cluster may run as the postgres user, who must reach the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "OUDERD_DATA_DIR="+dir)
	useOperator(t, p.base, pgcluster.Running(filepath.Join(dir, "pgdata"), "ouder"))
	status, _, created := call(t, "POST", p.base+"/fhir/Patient", `{"resourceType":"Patient","birthDate":"2016-05-01"}`)
	if status != 201 {
		t.Fatalf("create: %d %v", status, created)
	}
	id := created["id"].(string)
	p.stop(t)
	if !strings.Contains(p.stderr.String(), "postgres stopped") {
		t.Errorf("no clean PostgreSQL stop in the log:\n%s", p.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "pgdata", "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("postmaster.pid still there after shutdown (err %v)", err)
	}

	p2 := startProc(t, "OUDERD_DATA_DIR="+dir)
	useOperator(t, p2.base, pgcluster.Running(filepath.Join(dir, "pgdata"), "ouder"))
	if status, _, got := call(t, "GET", p2.base+"/fhir/Patient/"+id, ""); status != 200 || got["birthDate"] != "2016-05-01" {
		t.Errorf("read after restart: %d %v", status, got)
	}
	if status, _, _ := call(t, "GET", p2.base+"/readyz", ""); status != 200 {
		t.Errorf("/readyz: %d", status)
	}
	p2.stop(t)
}

// TestNoPostgreSQL: with no DATABASE_URL and no usable PostgreSQL binaries,
// ouderd exits at once with one line that says what to do.
func TestNoPostgreSQL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{childEnv + "=1", "OUDERD_ADDR=127.0.0.1:0", "OUDERD_DATA_DIR=" + dir, "OUDERD_PG_BINDIR=" + dir, "OUDERD_LOG_LEVEL=error"}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("ouderd started without PostgreSQL:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ouderd: ") || !strings.Contains(lines[0], "DATABASE_URL") || !strings.Contains(lines[0], "install PostgreSQL") {
		t.Errorf("want one line naming what to install or set, got:\n%s", out)
	}
}

// TestDrainOnShutdown: a request in flight when shutdown starts is still
// answered, and Close returns after it.
func TestDrainOnShutdown(t *testing.T) {
	t.Parallel()
	m := NewMain()
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DatabaseURL = pgtest.URL(t)
	m.Config.TrustedIssuers = trustedIssuersFile(t)
	m.LogOutput = io.Discard
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	op := useOperator(t, "http://"+m.Addr()+"/fhir", m.Config.DatabaseURL)
	body := `{"resourceType":"Patient","active":true}`
	conn, err := net.Dial("tcp", m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Send the headers and half the body, then start the shutdown.
	fmt.Fprintf(conn, "POST /fhir/Patient HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Type: application/fhir+json\r\nContent-Length: %d\r\n\r\n%s",
		op, len(body), body[:10])
	time.Sleep(100 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a request was in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	fmt.Fprint(conn, body[10:])
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 201 {
		t.Errorf("in-flight request: %d, want 201", res.StatusCode)
	}
	res.Body.Close()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return after the last request")
	}
	// New connections are refused once closed.
	if _, err := net.DialTimeout("tcp", m.Addr(), time.Second); err == nil {
		t.Error("still accepting connections after Close")
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(Config) bool
		wantErr bool
	}{
		{name: "defaults", check: func(c Config) bool {
			return c.Addr == "127.0.0.1:8080" && c.DataDir == "var" && c.MaxBody == 8<<20 && c.DatabaseURL == "" &&
				c.MaxBundleEntries == 1000 && !c.ConditionalDeleteMultiple
		}},
		{name: "env", env: map[string]string{"OUDERD_ADDR": ":9", "DATABASE_URL": "postgres://x", "OUDERD_BASE_URL": "https://fhir.example/fhir", "OUDERD_MAX_BODY": "1024", "OUDERD_LOG_LEVEL": "debug"},
			check: func(c Config) bool {
				return c.Addr == ":9" && c.DatabaseURL == "postgres://x" && c.BaseURL == "https://fhir.example/fhir" && c.MaxBody == 1024 && c.LogLevel == "debug"
			}},
		{name: "flag beats env", args: []string{"-addr", ":7"}, env: map[string]string{"OUDERD_ADDR": ":9"}, check: func(c Config) bool { return c.Addr == ":7" }},
		{name: "bad max body", env: map[string]string{"OUDERD_MAX_BODY": "lots"}, wantErr: true},
		{name: "bundle settings", env: map[string]string{"OUDERD_MAX_BUNDLE_ENTRIES": "50", "OUDERD_CONDITIONAL_DELETE_MULTIPLE": "true"},
			check: func(c Config) bool { return c.MaxBundleEntries == 50 && c.ConditionalDeleteMultiple }},
		{name: "bundle settings by flag", args: []string{"-max-bundle-entries", "7", "-conditional-delete-multiple"},
			check: func(c Config) bool { return c.MaxBundleEntries == 7 && c.ConditionalDeleteMultiple }},
		{name: "bad max bundle entries", env: map[string]string{"OUDERD_MAX_BUNDLE_ENTRIES": "0"}, wantErr: true},
		{name: "bad conditional delete multiple", env: map[string]string{"OUDERD_CONDITIONAL_DELETE_MULTIPLE": "some"}, wantErr: true},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: true},
		{name: "stray argument", args: []string{"serve"}, wantErr: true},
		{name: "pprof on loopback", args: []string{"-pprof-addr", "127.0.0.1:6060"}, check: func(c Config) bool { return c.PprofAddr == "127.0.0.1:6060" }},
		{name: "pprof not on loopback", env: map[string]string{"OUDERD_PPROF_ADDR": "0.0.0.0:6060"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			m.LogOutput = io.Discard
			err := m.ParseFlags(tt.args, func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && !tt.check(m.Config) {
				t.Errorf("config = %+v", m.Config)
			}
		})
	}
}

// TestCustomSearchParameter: a SearchParameter posted to one instance is
// used by both, and the resources stored before it are reindexed in the
// background.
func TestCustomSearchParameter(t *testing.T) {
	t.Parallel()
	db := pgtest.URL(t)
	start := func() string {
		m := NewMain()
		m.Config.Addr = "127.0.0.1:0"
		m.Config.DatabaseURL = db
		m.Config.TrustedIssuers = trustedIssuersFile(t)
		m.LogOutput = io.Discard
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		base := "http://" + m.Addr() + "/fhir"
		useOperator(t, base, db)
		return base
	}
	a, b := start(), start()
	withEyes := func(colour string) string {
		return `{"resourceType":"Patient","extension":[{"url":"https://example.org/eye-colour","valueCode":"` + colour + `"}]}`
	}
	status, _, before := call(t, "POST", a+"/Patient", withEyes("green"))
	if status != 201 {
		t.Fatalf("create: %d", status)
	}
	// An unusable definition is refused with the element named.
	bad := `{"resourceType":"SearchParameter","url":"https://example.org/sp/bad","name":"bad","status":"active","description":"x","code":"bad","base":["Patient"],"type":"token","expression":"Patient.extension.memberOf('x')"}`
	if status, _, oo := call(t, "POST", a+"/SearchParameter", bad); status != 400 || !strings.Contains(fmt.Sprint(oo), "SearchParameter.expression") {
		t.Errorf("bad SearchParameter: %d %v", status, oo)
	}
	sp := `{"resourceType":"SearchParameter","url":"https://example.org/sp/eye-colour","name":"eyeColour","status":"active","description":"eye colour","code":"eye-colour","base":["Patient"],"type":"token","expression":"Patient.extension.where(url='https://example.org/eye-colour').value"}`
	if status, _, _ := call(t, "POST", a+"/SearchParameter", sp); status != 201 {
		t.Fatalf("create SearchParameter: %d", status)
	}
	status, _, after := call(t, "POST", a+"/Patient", withEyes("green"))
	if status != 201 {
		t.Fatalf("create: %d", status)
	}
	want := []string{before["id"].(string), after["id"].(string)}
	slices.Sort(want)
	// Both instances answer the new parameter once the reindex is done
	// (strict handling: an unknown parameter would be an error).
	for _, base := range []string{a, b} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			status, _, bundle := call(t, "GET", base+"/Patient?eye-colour=green", "", "Prefer: handling=strict")
			var got []string
			if status == 200 {
				entries, _ := bundle["entry"].([]any)
				for _, e := range entries {
					got = append(got, e.(map[string]any)["resource"].(map[string]any)["id"].(string))
				}
				slices.Sort(got)
			}
			if slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: search on the custom parameter: %d %v, want %v", base, status, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
