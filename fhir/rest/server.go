// Package rest is the FHIR R4 REST surface of the server: the route table,
// content negotiation, the instance, type and system interactions, Bundles
// for history, and OperationOutcomes for every failure. It knows FHIR and
// HTTP, not SQL and not token formats.
package rest

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
)

// DefaultMaxBody is the request body limit when Config.MaxBody is zero.
const DefaultMaxBody = 8 << 20

// Config wires a Server.
type Config struct {
	Store  fhir.Store
	Parser *conformance.Parser
	// Searcher runs searches; SearchParser reads search requests. Both
	// must be set.
	Searcher     search.Searcher
	SearchParser *search.Parser
	// BaseURL is the absolute FHIR base (for example
	// http://127.0.0.1:8080/fhir), used in Location headers, fullUrls and
	// paging links.
	BaseURL string
	// MaxBody is the largest request body accepted (413 above it).
	MaxBody int64
	Logger  *slog.Logger
	// Version is the software version in the CapabilityStatement.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server serves the FHIR REST API. Create it with New.
type Server struct {
	store        fhir.Store
	parser       *conformance.Parser
	searcher     search.Searcher
	searchParser *search.Parser
	base         string
	maxBody      int64
	log          *slog.Logger
	now          func() time.Time
	capability   []byte
	isType       func(string) bool
}

// TypeInteractions are the type- and instance-level interactions the route
// table implements for every resource type; the CapabilityStatement is
// generated from this list.
var TypeInteractions = []string{"read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type"}

// SystemInteractions are the whole-system interactions the route table
// implements.
var SystemInteractions = []string{"history-system", "search-system"}

// New returns a Server. It fails if the CapabilityStatement cannot be built.
func New(c Config) (*Server, error) {
	s := &Server{
		store:        c.Store,
		parser:       c.Parser,
		searcher:     c.Searcher,
		searchParser: c.SearchParser,
		base:         strings.TrimRight(c.BaseURL, "/"),
		maxBody:      c.MaxBody,
		log:          c.Logger,
		now:          c.Now,
		isType:       conformance.IsResourceType,
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	cs, err := conformance.CapabilityStatement(conformance.Capabilities{
		Software:           "Digitale Ouder ouderd",
		Version:            c.Version,
		BaseURL:            s.base,
		Date:               s.now(),
		TypeInteractions:   TypeInteractions,
		SystemInteractions: SystemInteractions,
		ConditionalRead:    "full-support",
		Search:             c.SearchParser.Registry,
		Formats:            []string{mediaFHIRJSON, mediaJSON},
	})
	if err != nil {
		return nil, err
	}
	s.capability = cs
	return s, nil
}

// Routes returns the HTTP handler: health checks and the FHIR API under
// /fhir. ready reports whether the server can serve (database reachable and
// migrated) for /readyz.
func (s *Server) Routes(ready func(r *http.Request) error) http.Handler {
	r := chi.NewRouter()
	r.Use(requestID, s.accessLog, s.recoverer)
	r.NotFound(s.h(func(w http.ResponseWriter, r *http.Request) error {
		return fhir.Errorf(fhir.NotFound, "", "no route for %s %s", r.Method, r.URL.Path)
	}))
	r.MethodNotAllowed(s.h(func(w http.ResponseWriter, r *http.Request) error {
		return fhir.Errorf(fhir.MethodNotAllowed, "", "%s is not allowed on %s", r.Method, r.URL.Path)
	}))
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r); err != nil {
			s.log.WarnContext(r.Context(), "not ready", slog.String("error", err.Error()))
			http.Error(w, "not ready\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	r.Route("/fhir", func(r chi.Router) {
		r.Use(s.negotiate)
		r.Get("/", s.h(s.search))
		r.Post("/_search", s.h(s.search))
		r.Get("/metadata", s.h(s.metadata))
		r.Get("/_history", s.h(s.history))
		r.Route("/{type}", func(r chi.Router) {
			r.Use(s.knownType)
			r.Get("/", s.h(s.search))
			r.Post("/_search", s.h(s.search))
			r.Post("/", s.h(s.create))
			r.Get("/_history", s.h(s.history))
			r.Get("/{id}", s.h(s.read))
			r.Put("/{id}", s.h(s.update))
			r.Delete("/{id}", s.h(s.delete))
			r.Get("/{id}/_history", s.h(s.history))
			r.Get("/{id}/_history/{vid}", s.h(s.vread))
		})
	})
	return r
}

// metadata serves the CapabilityStatement.
func (s *Server) metadata(w http.ResponseWriter, r *http.Request) error {
	body, err := applyView(r, s.capability, "CapabilityStatement")
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, body)
	return nil
}
