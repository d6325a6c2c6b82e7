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

	"github.com/digitaleouder/ouder/auth"
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

	// Authenticate returns the caller of a request from its credentials
	// (auth.Authenticator.Authenticate): a *fhir.Error of kind
	// Unauthorized (401) or Unavailable (503) when there is none. Every
	// request below /fhir passes it, except GET /fhir/metadata and
	// /fhir/.well-known/. Required.
	Authenticate func(r *http.Request) (*auth.Principal, error)
	// Authorize is the access decision (policy.Policy.Decide): for the
	// caller, an interaction and the resource types it acts on, the
	// request's access, or a Forbidden error (403). Every interaction
	// passes it, Bundle entries one by one, and the store enforces the
	// access it returns on every read and write. Required.
	Authorize func(ctx context.Context, p *auth.Principal, in auth.Interaction, types ...string) (*search.Access, error)
	// SendInvitation, when set, sends the e-mail of an invitation
	// ($invite) after its transaction committed; without it $invite
	// answers 501. The mail's Token must go nowhere else (not in logs).
	SendInvitation func(ctx context.Context, m InvitationMail) error
	// InvitationLifetime is how long an invitation link works; zero means
	// DefaultInvitationLifetime.
	InvitationLifetime time.Duration
	// WellKnown, when set, serves /fhir/.well-known/ without
	// authentication (the SMART configuration, which tells clients how to
	// get a token). It sees the request's full path.
	WellKnown http.Handler
	// Audit, when set, is where the AuditEvents of interactions that write
	// nothing go (reads, searches, refusals); with it, every write also
	// records its AuditEvent in its own transaction (docs/audit.md).
	// Without it nothing is audited. Every write records its Provenance
	// either way.
	Audit fhir.AuditLog
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
	authenticate       func(r *http.Request) (*auth.Principal, error)
	authorize          func(ctx context.Context, p *auth.Principal, in auth.Interaction, types ...string) (*search.Access, error)
	wellKnown          http.Handler
	auditLog           fhir.AuditLog
	sendInvitation     func(ctx context.Context, m InvitationMail) error
	inviteTTL          time.Duration
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

// New returns a Server. It fails if Config.Transactor, Authenticate or
// Authorize is not set, or the CapabilityStatement cannot be built.
func New(c Config) (*Server, error) {
	if c.Transactor == nil {
		return nil, errors.New("rest: Config.Transactor is not set")
	}
	if c.Authenticate == nil || c.Authorize == nil {
		return nil, errors.New("rest: Config.Authenticate and Config.Authorize must be set: every request is authenticated and authorised")
	}
	s := &Server{
		store:              noting{c.Store},
		parser:             c.Parser,
		searcher:           notingSearcher{c.Searcher},
		auditLog:           c.Audit,
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
		authenticate:       c.Authenticate,
		authorize:          c.Authorize,
		wellKnown:          c.WellKnown,
		sendInvitation:     c.SendInvitation,
		inviteTTL:          c.InvitationLifetime,
	}
	if s.inviteTTL <= 0 {
		s.inviteTTL = DefaultInvitationLifetime
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
		Operations:         []conformance.Operation{conformance.ValidateOperation},
		TypeOperations: map[string][]conformance.Operation{
			"Task":    {ApproveOperation, RejectOperation},
			"Patient": {InviteOperation},
		},
		// The server writes these itself (docs/audit.md); clients read.
		ReadOnlyTypes: serverOwned,
	}
	if s.parser != nil {
		s.capInfo.SupportedProfiles = s.parser.SupportedProfiles()
		s.capInfo.ImplementationGuides = s.parser.ImplementationGuides()
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
		if s.wellKnown != nil {
			r.Mount("/.well-known", s.wellKnown)
		}
		r.Group(func(r chi.Router) {
			r.Use(s.negotiate)
			r.Get("/metadata", s.h(func(w http.ResponseWriter, r *http.Request) error { return s.metadata(w, r) }))
			r.Group(func(r chi.Router) {
				r.Use(s.authenticated)
				s.api(r, func(in auth.Interaction, m method) http.HandlerFunc {
					return s.h(func(w http.ResponseWriter, r *http.Request) error { return s.audited(in, s.decided(in, m))(s, w, r) })
				})
			})
		})
	})
	return r
}

// method is an interaction: a Server method that serves one request.
type method func(s *Server, w http.ResponseWriter, r *http.Request) error

// api is the route table of the FHIR API, below the base; every route but
// the CapabilityStatement (served apart, without authentication) names its
// interaction, which the access decision judges before the method runs
// (decided). bind makes an interaction into a handler: on the Server itself
// for HTTP requests, on the Server of the enclosing transaction for Bundle
// entries (entryRoutes). A transaction or batch is no interaction of its
// own: each entry is decided as what it asks for.
func (s *Server) api(r chi.Router, bind func(in auth.Interaction, m method) http.HandlerFunc) {
	r.Get("/", bind(auth.SearchSystem, (*Server).search))
	r.Post("/", bind("", (*Server).bundle))
	r.Post("/_search", bind(auth.SearchSystem, (*Server).search))
	r.Get("/_history", bind(auth.HistorySystem, (*Server).history))
	r.Route("/{type}", func(r chi.Router) {
		r.Use(s.knownType)
		r.Get("/", bind(auth.SearchType, (*Server).search))
		r.Post("/_search", bind(auth.SearchType, (*Server).search))
		r.Post("/", bind(auth.Create, (*Server).create))
		r.Put("/", bind(auth.Update, (*Server).conditionalUpdate))
		r.Patch("/", bind(auth.Patch, (*Server).conditionalPatch))
		r.Delete("/", bind(auth.Delete, (*Server).conditionalDelete))
		r.Get("/_history", bind(auth.HistoryType, (*Server).history))
		r.Get("/{id}", bind(auth.Read, (*Server).read))
		r.Put("/{id}", bind(auth.Update, (*Server).update))
		r.Patch("/{id}", bind(auth.Patch, (*Server).patch))
		r.Delete("/{id}", bind(auth.Delete, (*Server).delete))
		r.Get("/{id}/_history", bind(auth.HistoryInstance, (*Server).history))
		r.Get("/{id}/{compartmentType}", bind(auth.SearchType, (*Server).search))
		r.Get("/{id}/_history/{vid}", bind(auth.VRead, (*Server).vread))
		r.Post("/$validate", bind(auth.Operation, (*Server).validate))
		r.Get("/{id}/$validate", bind(auth.Operation, (*Server).validate))
		r.Post("/{id}/$validate", bind(auth.Operation, (*Server).validate))
		r.Post("/{id}/$approve", bind(auth.Operation, (*Server).approve))
		r.Post("/{id}/$reject", bind(auth.Operation, (*Server).reject))
		r.Post("/{id}/$invite", bind(auth.Operation, (*Server).invite))
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
