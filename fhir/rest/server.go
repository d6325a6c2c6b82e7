// Package rest is the FHIR R4 REST surface of the server: the route table,
// content negotiation, the instance, type and system interactions, Bundles
// for history, and OperationOutcomes for every failure. It knows FHIR and
// HTTP, not SQL and not token formats.
package rest

import (
	"context"
	"errors"
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

// DefaultMaxBundleEntries is the entry limit of a transaction or batch
// Bundle when Config.MaxBundleEntries is zero.
const DefaultMaxBundleEntries = 1000

// TxStore is the store as seen from inside one database transaction: its
// reads, writes and searches all belong to that transaction.
type TxStore interface {
	fhir.Store
	search.Searcher
	// LockKey takes a lock on key that is held until the transaction
	// ends, waiting while another transaction holds it. Conditional
	// interactions lock their normalised search, so that two of them with
	// the same criteria cannot both find no match and both create.
	LockKey(ctx context.Context, key string) error
}

// Transactor runs fn in one database transaction, committed when fn returns
// nil and rolled back when it returns an error (which Transaction returns).
type Transactor interface {
	Transaction(ctx context.Context, fn func(tx TxStore) error) error
}

// Config wires a Server.
type Config struct {
	Store  fhir.Store
	Parser *conformance.Parser
	// Transactor runs transaction Bundles and conditional interactions in
	// one database transaction on the same data as Store. It must be set.
	Transactor Transactor
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
	// MaxBundleEntries is the most entries a transaction or batch Bundle
	// may have (413 above it); zero means DefaultMaxBundleEntries.
	MaxBundleEntries int
	// ConditionalDeleteMultiple lets a conditional delete remove every
	// match (up to MaxConditionalDeletes) instead of answering 412 when
	// its criteria match more than one resource.
	ConditionalDeleteMultiple bool
	Logger                    *slog.Logger
	// Version is the software version in the CapabilityStatement.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server serves the FHIR REST API. Create it with New.
//
// A Server is immutable once built, so that a transaction can work on a copy
// bound to its TxStore (see in).
type Server struct {
	store              fhir.Store
	parser             *conformance.Parser
	searcher           search.Searcher
	tx                 Transactor
	searchParser       *search.Parser
	registry           func() *searchparam.Registry
	spChanged          func(ctx context.Context, types []string) error
	base               string
	maxBody            int64
	maxEntries         int
	condDeleteMultiple bool
	log                *slog.Logger
	now                func() time.Time
	isType             func(string) bool
	capInfo            conformance.Capabilities
	caps               *capCache
	entries            http.Handler // the routes Bundle entries are served by
}

// capCache holds the CapabilityStatement for the registry it was built with.
type capCache struct {
	mu         sync.Mutex
	reg        *searchparam.Registry
	capability []byte
}

// TypeInteractions are the type- and instance-level interactions the route
// table implements for every resource type; the CapabilityStatement is
// generated from this list.
var TypeInteractions = []string{"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"}

// SystemInteractions are the whole-system interactions the route table
// implements.
var SystemInteractions = []string{"transaction", "batch", "history-system", "search-system"}

// New returns a Server. It fails if Config.Transactor is not set or the
// CapabilityStatement cannot be built.
func New(c Config) (*Server, error) {
	if c.Transactor == nil {
		return nil, errors.New("rest: Config.Transactor is not set")
	}
	s := &Server{
		store:              c.Store,
		parser:             c.Parser,
		searcher:           c.Searcher,
		tx:                 c.Transactor,
		searchParser:       c.SearchParser,
		registry:           c.Registry,
		spChanged:          c.SearchParamsChanged,
		base:               strings.TrimRight(c.BaseURL, "/"),
		maxBody:            c.MaxBody,
		maxEntries:         c.MaxBundleEntries,
		condDeleteMultiple: c.ConditionalDeleteMultiple,
		log:                c.Logger,
		now:                c.Now,
		isType:             conformance.IsResourceType,
		caps:               &capCache{},
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	if s.maxEntries <= 0 {
		s.maxEntries = DefaultMaxBundleEntries
	}
	conditionalDelete := "single"
	if s.condDeleteMultiple {
		conditionalDelete = "multiple"
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
		ConditionalCreate:  true,
		ConditionalUpdate:  true,
		ConditionalDelete:  conditionalDelete,
		Formats:            []string{mediaFHIRJSON, mediaJSON},
		Compartments:       []string{"http://hl7.org/fhir/CompartmentDefinition/patient"},
	}
	if _, err := s.capabilityStatement(); err != nil {
		return nil, err
	}
	s.entries = s.entryRoutes()
	return s, nil
}

// capabilityStatement returns the CapabilityStatement for the registry in
// force, rebuilding it when custom SearchParameters changed.
func (s *Server) capabilityStatement() ([]byte, error) {
	reg := s.registry()
	s.caps.mu.Lock()
	defer s.caps.mu.Unlock()
	if s.caps.capability != nil && s.caps.reg == reg {
		return s.caps.capability, nil
	}
	info := s.capInfo
	info.Search = reg
	cs, err := conformance.CapabilityStatement(info)
	if err != nil {
		return nil, err
	}
	s.caps.capability, s.caps.reg = cs, reg
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
		s.api(r, func(m method) http.HandlerFunc {
			return s.h(func(w http.ResponseWriter, r *http.Request) error { return m(s, w, r) })
		})
	})
	return r
}

// method is an interaction: a Server method that serves one request.
type method func(s *Server, w http.ResponseWriter, r *http.Request) error

// api is the route table of the FHIR API, below the base. bind makes an
// interaction into a handler: on the Server itself for HTTP requests, on
// the Server of the enclosing transaction for Bundle entries (entryRoutes).
func (s *Server) api(r chi.Router, bind func(method) http.HandlerFunc) {
	r.Get("/", bind((*Server).search))
	r.Post("/", bind((*Server).bundle))
	r.Post("/_search", bind((*Server).search))
	r.Get("/metadata", bind((*Server).metadata))
	r.Get("/_history", bind((*Server).history))
	r.Route("/{type}", func(r chi.Router) {
		r.Use(s.knownType)
		r.Get("/", bind((*Server).search))
		r.Post("/_search", bind((*Server).search))
		r.Post("/", bind((*Server).create))
		r.Put("/", bind((*Server).conditionalUpdate))
		r.Patch("/", bind((*Server).conditionalPatch))
		r.Delete("/", bind((*Server).conditionalDelete))
		r.Get("/_history", bind((*Server).history))
		r.Get("/{id}", bind((*Server).read))
		r.Put("/{id}", bind((*Server).update))
		r.Patch("/{id}", bind((*Server).patch))
		r.Delete("/{id}", bind((*Server).delete))
		r.Get("/{id}/_history", bind((*Server).history))
		r.Get("/{id}/{compartmentType}", bind((*Server).search))
		r.Get("/{id}/_history/{vid}", bind((*Server).vread))
	})
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
