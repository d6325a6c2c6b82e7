package rest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
)

type requestIDKey struct{}

// RequestID returns the id of the request being served, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID is what a client-supplied X-Request-Id may look like to be
// kept; anything else is replaced, so logs cannot be forged through it.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestID gives every request an id, returned in X-Request-Id and logged.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// accessLog writes one line per request. It logs the route pattern and path
// but never the query string, headers or bodies: they may hold personal data
// or tokens.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := ""
		if rc := chi.RouteContext(r.Context()); rc != nil {
			route = rc.RoutePattern()
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", RequestID(r.Context())),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", route),
			slog.Int("status", ww.Status()),
			slog.Int("bytes", ww.BytesWritten()),
			slog.Float64("ms", float64(time.Since(start).Microseconds())/1000),
		)
	})
}

// recoverer turns a panic into a 500 OperationOutcome and a logged stack.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic", slog.String("request_id", RequestID(r.Context())),
					slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
				s.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// handler is an HTTP handler that reports failure by returning an error,
// which the adapter writes as an OperationOutcome.
type handler func(w http.ResponseWriter, r *http.Request) error

func (s *Server) h(fn handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// knownType answers 404 for a URL naming no R4 resource type.
func (s *Server) knownType(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		typ := chi.URLParam(r, "type")
		if !s.isType(typ) {
			s.writeError(w, r, fhir.Errorf(fhir.NotFound, "", "%q is not a FHIR R4 resource type", typ))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticated admits only requests whose credentials Config.Authenticate
// accepts, with their Principal in the context (auth.PrincipalFrom); the
// others get 401 (or 503 when the token cannot be checked now) and an
// OperationOutcome.
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil && p == nil {
			err = fhir.Errorf(fhir.Unauthorized, "", "the credentials name no caller")
		}
		if err != nil {
			if fhir.IsKind(err, fhir.Unavailable) {
				// Not the client's fault: the operator needs to know.
				s.log.WarnContext(r.Context(), "token cannot be checked", slog.String("request_id", RequestID(r.Context())), slog.String("error", err.Error()))
			}
			s.unauthenticated(r, err) // audit.go
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

// decided returns m run under the access decision for interaction in: the
// caller's access for the request's resource types (the URL's type; the
// compartment's type for a compartment search; none for whole-system
// interactions) goes into the context (search.WithAccess), where the store
// enforces it, and a denied interaction answers 403 without running m. The
// interaction "" runs m as it is (a Bundle, whose entries are decided one
// by one).
func (s *Server) decided(in auth.Interaction, m method) method {
	if in == "" {
		return m
	}
	return func(srv *Server, w http.ResponseWriter, r *http.Request) error {
		var types []string
		switch {
		case in == auth.SearchSystem || in == auth.HistorySystem:
		case chi.URLParam(r, "compartmentType") != "":
			types = []string{chi.URLParam(r, "compartmentType")}
		case chi.URLParam(r, "type") != "":
			types = []string{chi.URLParam(r, "type")}
		}
		ctx, err := srv.access(r.Context(), in, types...)
		if err != nil {
			return err
		}
		return m(srv, w, r.WithContext(ctx))
	}
}

// access returns ctx with the caller's access for interaction in on types.
func (s *Server) access(ctx context.Context, in auth.Interaction, types ...string) (context.Context, error) {
	a, err := s.authorize(ctx, auth.PrincipalFrom(ctx), in, types...)
	if err != nil {
		return nil, err
	}
	return search.WithAccess(ctx, a), nil
}
