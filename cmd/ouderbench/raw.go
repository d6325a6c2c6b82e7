package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The raw server is the machine's limit for the FHIR server's single-row
// work: the same database, the same SQL shape, and nothing else (no parsing,
// validation, indexing, history, authorisation or audit). The gap between
// its figures and the FHIR server's is what the FHIR layer costs.
//
//	GET  /raw/{type}/{id}  SELECT body FROM resources WHERE type = $1 AND id = $2
//	POST /raw/{type}       one INSERT INTO raw_resources, 201 + Location
//	GET  /readyz           200 once the database answers
//
// Reads use the server's own resources table, so they find what the FHIR
// server stored; creates go to raw_resources (same columns and indexes), so
// the benchmark never changes the server's data.

const (
	rawReadSQL   = `SELECT body FROM resources WHERE type = $1 AND id = $2`
	rawInsertSQL = `INSERT INTO raw_resources (type, id, version, last_updated, body) VALUES ($1, $2, 1, $3, $4)`
	rawTableSQL  = `CREATE TABLE IF NOT EXISTS raw_resources (LIKE resources INCLUDING ALL)`
	// rawMaxBody bounds a create's body, as any server should.
	rawMaxBody = 16 << 20
)

// rawServer answers the raw endpoints from pool.
type rawServer struct {
	pool *pgxpool.Pool
	now  func() time.Time
	log  *slog.Logger
}

// newRawServer returns a raw server on pool, which must be the FHIR server's
// database, and creates raw_resources there when it is missing. It fails
// when the database cannot be reached or lacks the resources table.
func newRawServer(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (*rawServer, error) {
	if _, err := pool.Exec(ctx, rawTableSQL); err != nil {
		return nil, fmt.Errorf("raw: create raw_resources (does the database have the FHIR server's schema?): %w", err)
	}
	return &rawServer{pool: pool, now: time.Now, log: log}, nil
}

// typePattern is a FHIR resource type name.
var typePattern = regexp.MustCompile(`^[A-Z][A-Za-z]{0,63}$`)

// handler returns the raw server's routes.
func (s *rawServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /raw/{type}/{id}", s.read)
	mux.HandleFunc("POST /raw/{type}", s.create)
	mux.HandleFunc("GET /readyz", s.ready)
	return mux
}

func (s *rawServer) read(w http.ResponseWriter, r *http.Request) {
	typ, id := r.PathValue("type"), r.PathValue("id")
	if !typePattern.MatchString(typ) || !idPattern.MatchString(id) {
		http.NotFound(w, r)
		return
	}
	var body []byte
	err := s.pool.QueryRow(r.Context(), rawReadSQL, typ, id).Scan(&body)
	switch {
	case errors.Is(err, pgx.ErrNoRows), err == nil && body == nil: // a deleted resource has no body
		http.NotFound(w, r)
	case err != nil:
		s.fail(w, fmt.Errorf("raw read %s/%s: %w", typ, id, err))
	default:
		w.Header().Set("Content-Type", fhirJSON)
		w.Write(body)
	}
}

func (s *rawServer) create(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("type")
	if !typePattern.MatchString(typ) {
		http.Error(w, "unknown resource type", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rawMaxBody))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	id := newUUID()
	if _, err := s.pool.Exec(r.Context(), rawInsertSQL, typ, id, s.now(), body); err != nil {
		s.fail(w, fmt.Errorf("raw create %s: %w", typ, err))
		return
	}
	w.Header().Set("Location", "/raw/"+typ+"/"+id+"/_history/1")
	w.WriteHeader(http.StatusCreated)
}

func (s *rawServer) ready(w http.ResponseWriter, r *http.Request) {
	if err := s.pool.Ping(r.Context()); err != nil {
		s.fail(w, fmt.Errorf("raw ready: %w", err))
		return
	}
	io.WriteString(w, "ok\n")
}

// fail logs err and answers 500 without details.
func (s *rawServer) fail(w http.ResponseWriter, err error) {
	s.log.Error("raw server", "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// newUUID returns a random version 4 UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// serveRaw connects to dsn, creates raw_resources, listens on addr, prints
// "listening on http://ADDR" as the first line of out, and serves until ctx
// ends. It returns an error when the database or the address cannot be had.
func serveRaw(ctx context.Context, dsn, addr string, out io.Writer, log *slog.Logger) error {
	rs, err := startRaw(ctx, dsn, addr, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "listening on %s\n", rs.url())
	var serveErr error
	select {
	case serveErr = <-rs.errc:
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return errors.Join(serveErr, rs.close(shutCtx))
}

// runningRaw is a raw server serving on a TCP listener: the one of
// "ouderbench raw", or the suite's in-process baseline.
type runningRaw struct {
	pool *pgxpool.Pool
	srv  *http.Server
	addr net.Addr
	errc chan error // receives the error that ended serving early
}

// startRaw connects to dsn, creates raw_resources, and starts serving the
// raw endpoints on addr in the background. It fails when the database or
// the address cannot be had. The caller must close the returned server.
func startRaw(ctx context.Context, dsn, addr string, log *slog.Logger) (_ *runningRaw, err error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("raw: connect: %w", err)
	}
	defer func() {
		if err != nil {
			pool.Close()
		}
	}()
	s, err := newRawServer(ctx, pool, log)
	if err != nil {
		return nil, err
	}
	ln, err := listen(ctx, addr)
	if err != nil {
		return nil, err
	}
	rs := &runningRaw{
		pool: pool,
		srv:  &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr(),
		errc: make(chan error, 1),
	}
	go func() {
		if err := rs.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			rs.errc <- fmt.Errorf("raw: serve: %w", err)
		}
	}()
	return rs, nil
}

// url returns http://ADDR, the server's root; its raw base is url()+"/raw".
func (rs *runningRaw) url() string { return "http://" + rs.addr.String() }

// close stops serving, waiting for requests in flight until ctx ends, and
// closes the pool.
func (rs *runningRaw) close(ctx context.Context) error {
	defer rs.pool.Close()
	if err := rs.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("raw: shut down: %w", err)
	}
	return nil
}

// listen opens a TCP listener on addr.
func listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raw: listen on %s: %w", addr, err)
	}
	return ln, nil
}
