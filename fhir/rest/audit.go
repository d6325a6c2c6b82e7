package rest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/audit"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rawjson"
	"github.com/digitaleouder/ouder/fhir/search"
)

// The audit trail and Provenance (docs/audit.md). Every interaction, a
// Bundle's entries each on their own, runs as an *interaction in its
// context, which is two things:
//
//   - the fhir.Recorder of its writes: the store calls it inside the write's
//     transaction for every version it writes, and stores the Provenance and
//     the AuditEvent it returns in that transaction;
//   - the notebook of what the interaction read: the store and searcher of
//     the Server are wrapped (noting) so that every resource a read, search
//     or history returns is noted, with the Consents and CareTeams the access
//     decision rested on.
//
// When the interaction ends, whatever the store did not record already (a
// read, a search, a refusal, a write that failed or changed nothing) goes to
// the AuditLog, which writes it in batches. A request that is refused
// before it reaches an interaction (no or a bad token) is recorded too.

// serverOwned are the types only the server writes, Provenance (one per
// version written) and AuditEvent (the audit trail, in its own table), with
// the interactions clients have on them (declared so in the
// CapabilityStatement).
var serverOwned = map[string][]string{
	"AuditEvent": {"read", "search-type"},
	"Provenance": {"read", "vread", "history-instance", "history-type", "search-type"},
}

// refuseServerOwned refuses a client's write of a type the server alone
// writes (405), operators' included.
func refuseServerOwned(in auth.Interaction, typ string) error {
	if _, owned := serverOwned[typ]; owned && in.Write() {
		return fhir.Errorf(fhir.MethodNotAllowed, typ, "%s resources are written by the server alone, with every write and interaction (see docs/audit.md); a client cannot %s one", typ, in)
	}
	return nil
}

// interaction is one audited interaction.
type interaction struct {
	s      *Server
	event  audit.Event
	bundle bool // the POST of a Bundle: recorded only when it fails as a whole

	mu    sync.Mutex
	wrote bool // the store recorded a version in its transaction
	noted []fhir.Entity
	seen  map[fhir.Entity]bool
	basis []string
}

type interactionKey struct{}

// withAudit returns ctx in which ia records the writes and notes the reads.
func withAudit(ctx context.Context, ia *interaction) context.Context {
	if ia == nil {
		return ctx
	}
	return fhir.WithRecorder(context.WithValue(ctx, interactionKey{}, ia), ia)
}

func interactionFrom(ctx context.Context) *interaction {
	ia, _ := ctx.Value(interactionKey{}).(*interaction)
	return ia
}

// begin starts the audit of interaction in (a restful-interaction code) on
// typ/id by the caller of ctx.
func (s *Server) begin(ctx context.Context, in, typ, id, address string) *interaction {
	ia := &interaction{s: s, event: audit.Event{
		Principal:   auth.PrincipalFrom(ctx),
		Interaction: in,
		RequestID:   RequestID(ctx),
		Address:     address,
		Server:      s.base,
	}}
	if parent := interactionFrom(ctx); parent != nil && address == "" {
		ia.event.Address = parent.event.Address
	}
	if typ != "" && id != "" {
		// The URL's resource: the entity when nothing else is noted.
		ia.event.Entities = []fhir.Entity{{Type: typ, ID: id}}
	}
	return ia
}

// remoteHost is the client's address without the port.
func remoteHost(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// audited returns m run as an audited interaction in.
func (s *Server) audited(in auth.Interaction, m method) method {
	return func(srv *Server, w http.ResponseWriter, r *http.Request) error {
		typ, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
		code := string(in)
		if in == "" {
			code = "transaction" // or batch: noteBundle
		}
		ia := srv.begin(r.Context(), code, typ, id, remoteHost(r))
		ia.bundle = in == ""
		if _, op, ok := strings.Cut(r.URL.Path, "$"); ok && in == auth.Operation {
			ia.event.Operation = "$" + op
		}
		return ia.run(srv, in, typ, m, w, r)
	}
}

// run serves the interaction and records it.
func (ia *interaction) run(srv *Server, in auth.Interaction, typ string, m method, w http.ResponseWriter, r *http.Request) error {
	err := refuseServerOwned(in, typ)
	if err == nil {
		err = m(srv, w, r.WithContext(withAudit(r.Context(), ia)))
	}
	ia.finish(err)
	return err
}

// unauthenticated records a request refused before any interaction (401,
// or 503 when the token could not be checked).
func (s *Server) unauthenticated(r *http.Request, err error) {
	typ, id := "", ""
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/fhir"), "/"), "/")
	if len(segs) > 0 && s.isType(segs[0]) {
		typ = segs[0]
		if len(segs) > 1 && validID.MatchString(segs[1]) {
			id = segs[1]
		}
	}
	in := map[string]string{http.MethodPost: "create", http.MethodPut: "update", http.MethodPatch: "patch", http.MethodDelete: "delete"}[r.Method]
	switch {
	case in != "":
	case id != "":
		in = "read"
	case typ != "":
		in = "search-type"
	default:
		in = "search-system"
	}
	ia := s.begin(r.Context(), in, typ, id, remoteHost(r))
	ia.finish(err)
}

// Record implements fhir.Recorder: the Provenance of the version written
// and, when auditing is on, the AuditEvent of the write.
func (ia *interaction) Record(ctx context.Context, w fhir.Written) (fhir.Record, error) {
	body, err := audit.Provenance(ia.event.Principal, w, ia.s.base)
	if err != nil {
		return fhir.Record{}, fmt.Errorf("provenance of %s/%s: %w", w.Resource.Type, w.Resource.ID, err)
	}
	members, err := rawjson.Members(body)
	if err != nil {
		return fhir.Record{}, fmt.Errorf("provenance of %s/%s: %w", w.Resource.Type, w.Resource.ID, err)
	}
	var index *fhir.Index
	if ia.s.parser != nil && ia.s.parser.Registry != nil {
		if index, err = ia.s.parser.IndexOf("Provenance", body); err != nil {
			return fhir.Record{}, err
		}
	}
	rec := fhir.Record{Provenance: &fhir.Write{Type: "Provenance", Index: index, Render: func(m fhir.Meta) ([]byte, error) {
		return rawjson.Stamp(members, "Provenance", m.ID, m.VersionID, m.LastUpdated)
	}}}
	if ia.s.auditLog != nil {
		ia.mu.Lock()
		ev := ia.event
		ia.mu.Unlock()
		ev.Outcome = audit.Success
		ev.Recorded = w.Resource.LastUpdated
		ev.Entities = []fhir.Entity{{Type: w.Resource.Type, ID: w.Resource.ID, Version: w.Resource.VersionID}}
		ev.Basis = basisOf(ctx)
		ae := ev.AuditEvent(uuid.NewString())
		rec.Audit = &ae
	}
	ia.mu.Lock()
	ia.wrote = true
	ia.mu.Unlock()
	return rec, nil
}

// basisOf returns the resources the access decision of ctx rested on.
func basisOf(ctx context.Context) []string {
	if a := search.AccessFrom(ctx); a != nil {
		return slices.Clone(a.Basis)
	}
	return nil
}

// note records that the interaction returned resources, and what the
// access decision of ctx rested on.
func (ia *interaction) note(ctx context.Context, rs ...fhir.Resource) {
	basis := basisOf(ctx)
	ia.mu.Lock()
	defer ia.mu.Unlock()
	for _, r := range rs {
		e := fhir.Entity{Type: r.Type, ID: r.ID, Version: r.VersionID}
		if ia.seen == nil {
			ia.seen = map[fhir.Entity]bool{}
		}
		if !ia.seen[e] {
			ia.seen[e] = true
			ia.noted = append(ia.noted, e)
		}
	}
	for _, b := range basis {
		if !slices.Contains(ia.basis, b) {
			ia.basis = append(ia.basis, b)
		}
	}
}

// noteQuery records the normalised query of a search.
func noteQuery(ctx context.Context, query string) {
	if ia := interactionFrom(ctx); ia != nil {
		ia.mu.Lock()
		ia.event.Query = query
		ia.mu.Unlock()
	}
}

// noteBundle records which kind of Bundle a POST to the base carries.
func noteBundle(ctx context.Context, typ string) {
	if ia := interactionFrom(ctx); ia != nil && ia.bundle && typ == "batch" {
		ia.mu.Lock()
		ia.event.Interaction = "batch"
		ia.mu.Unlock()
	}
}

// finish records the interaction, ended with err, unless its write's
// transaction holds its record already.
func (ia *interaction) finish(err error) {
	if ia.s.auditLog == nil {
		return
	}
	ia.mu.Lock()
	defer ia.mu.Unlock()
	if err == nil && (ia.wrote || ia.bundle) {
		return
	}
	ev := ia.event
	ev.Recorded = ia.s.now()
	ev.Outcome = audit.Success
	if err != nil {
		info := fhir.KindOf(err).Info()
		// The status and issue code only: diagnostics may quote
		// personal data.
		ev.Outcome, ev.Description = audit.OutcomeOf(info.Status), fmt.Sprintf("%d %s", info.Status, info.Code)
	}
	if len(ia.noted) > 0 {
		ev.Entities = ia.noted
	}
	ev.Basis = ia.basis
	ia.s.auditLog.Append(ev.AuditEvent(uuid.NewString()))
}

// beginEntry starts the audit of a transaction or batch entry, and refuses
// a write of a type the server alone writes.
func (s *Server) beginEntry(ctx context.Context, e *entry) error {
	in := entryInteractions[e.method]
	code := string(in)
	if e.isRead() {
		code = "read"
	}
	e.audit = s.begin(ctx, code, e.typ, e.id, "")
	return atEntry(refuseServerOwned(in, e.typ), e.n)
}

// finishEntry records a Bundle entry that ended with err, unless the API's
// routes served it (reads, audited there).
func (s *Server) finishEntry(ctx context.Context, e *entry, err error) {
	if e.read != nil {
		return
	}
	if e.audit == nil {
		_ = s.beginEntry(ctx, e)
	}
	e.audit.finish(err)
}

// noting is the store of a Server, noting what it returns for the audit
// of the interaction in the context.
type noting struct{ fhir.Store }

func (n noting) Read(ctx context.Context, typ, id string) (fhir.Resource, error) {
	r, err := n.Store.Read(ctx, typ, id)
	if ia := interactionFrom(ctx); ia != nil && err == nil {
		ia.note(ctx, r)
	}
	return r, err
}

func (n noting) VRead(ctx context.Context, typ, id string, version int64) (fhir.Resource, error) {
	r, err := n.Store.VRead(ctx, typ, id, version)
	if ia := interactionFrom(ctx); ia != nil && err == nil {
		ia.note(ctx, r)
	}
	return r, err
}

func (n noting) History(ctx context.Context, q fhir.HistoryQuery) (fhir.HistoryPage, error) {
	p, err := n.Store.History(ctx, q)
	if ia := interactionFrom(ctx); ia != nil && err == nil {
		for _, e := range p.Entries {
			ia.note(ctx, e.Resource)
		}
	}
	return p, err
}

// notingSearcher is the searcher of a Server, noting the resources a search
// returns.
type notingSearcher struct{ search.Searcher }

func (n notingSearcher) Search(ctx context.Context, q *search.Query) (*search.Result, error) {
	res, err := n.Searcher.Search(ctx, q)
	if ia := interactionFrom(ctx); ia != nil && err == nil {
		ia.note(ctx, res.Matches...)
		ia.note(ctx, res.Included...)
	}
	return res, err
}
