// Package rest is the FHIR R4 REST surface of the server: the route table,
// content negotiation, the instance, type and system interactions, Bundles
// for history, and OperationOutcomes for every failure. It knows FHIR and
// HTTP, not SQL and not token formats.
package rest

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
)

// DefaultMaxBody is the request body limit when Config.MaxBody is zero.
const DefaultMaxBody = 8 << 20

// Config wires a Server.
type Config struct {
	Store  fhir.Store
	Parser *conformance.Parser
	// Searcher runs searches; SearchParser reads search requests (its
	// Registry is replaced per request by Registry()). Both must be set.
	Searcher     search.Searcher
	SearchParser *search.Parser
	// Registry returns the search parameters in force (built-in plus custom
	// SearchParameters); nil means SearchParser.Registry.
	Registry func() *searchparam.Registry
	// SearchParamsChanged, when set, is called after a SearchParameter
	// was created, updated or deleted, with the resource types it applies
	// to, to reload the registry and reindex.
	SearchParamsChanged func(ctx context.Context, types []string) error
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
	registry     func() *searchparam.Registry
	spChanged    func(ctx context.Context, types []string) error
	base         string
	maxBody      int64
	log          *slog.Logger
	now          func() time.Time
	isType       func(string) bool
	capInfo      conformance.Capabilities
	capMu        sync.Mutex
	capReg       *searchparam.Registry // the registry capability was built with
	capability   []byte
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
		registry:     c.Registry,
		spChanged:    c.SearchParamsChanged,
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
	if s.registry == nil {
		reg := c.SearchParser.Registry
		s.registry = func() *searchparam.Registry { return reg }
	}
	s.capInfo = conformance.Capabilities{
		Software:           "Digitale Ouder ouderd",
		Version:            c.Version,
		BaseURL:            s.base,
		Date:               s.now(),
		TypeInteractions:   TypeInteractions,
		SystemInteractions: SystemInteractions,
		ConditionalRead:    "full-support",
		Formats:            []string{mediaFHIRJSON, mediaJSON},
		Compartments:       []string{"http://hl7.org/fhir/CompartmentDefinition/patient"},
	}
	if _, err := s.capabilityStatement(); err != nil {
		return nil, err
	}
	return s, nil
}

// capabilityStatement returns the CapabilityStatement for the registry in
// force, rebuilding it when custom SearchParameters changed.
func (s *Server) capabilityStatement() ([]byte, error) {
	reg := s.registry()
	s.capMu.Lock()
	defer s.capMu.Unlock()
	if s.capability != nil && s.capReg == reg {
		return s.capability, nil
	}
	info := s.capInfo
	info.Search = reg
	cs, err := conformance.CapabilityStatement(info)
	if err != nil {
		return nil, err
	}
	s.capability, s.capReg = cs, reg
	return cs, nil
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
			r.Get("/{id}/{compartmentType}", s.h(s.search))
			r.Get("/{id}/_history/{vid}", s.h(s.vread))
		})
	})
	return r
}

// metadata serves the CapabilityStatement.
func (s *Server) metadata(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.capabilityStatement()
	if err != nil {
		return err
	}
	body, err := applyView(r, cs, "CapabilityStatement")
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, body)
	return nil
}
