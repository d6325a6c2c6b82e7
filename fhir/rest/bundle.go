package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
)

// Transactions and batches (http://hl7.org/fhir/R4/http.html#transaction).
//
// A transaction Bundle is all or nothing: its entries run in one database
// transaction, in the order R4 prescribes whatever their order in the
// Bundle (DELETE, then POST, then PUT and PATCH, then GET and HEAD), and any
// failure rolls everything back and answers with the failing entry's
// OperationOutcome, whose first expression is Bundle.entry[n]. Before any
// write, every POST gets its new id and every conditional entry its target,
// so that references to an entry's fullUrl (urn:uuid:, urn:oid:, or an
// absolute URL, also a relative Type/id resolved against an absolute
// fullUrl's base) can be rewritten to Type/id in every Reference.reference
// anywhere in the resources. Conditional references (Patient?identifier=..)
// are resolved by a search against what is stored once the DELETEs have
// run: no match is a 404, several a 412. Two entries that act on the same
// resource make the transaction fail (400).
//
// Each resource passes the same parse and validation as the single
// interaction; the Bundle around them is read only as far as processing
// needs (type, entry.fullUrl, entry.request), not validated as a resource.
//
// A batch runs each entry on its own, in its own database transaction, and
// answers 200 with one response per entry: its result or its
// OperationOutcome. A batch entry may not refer to another entry's
// urn:uuid or urn:oid fullUrl.

// bundleRequest is what the server reads of a posted Bundle.
type bundleRequest struct {
	ResourceType string         `json:"resourceType"`
	Type         string         `json:"type"`
	Entry        []entryRequest `json:"entry"`
}

type entryRequest struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Request  *struct {
		Method          string `json:"method"`
		URL             string `json:"url"`
		IfNoneMatch     string `json:"ifNoneMatch"`
		IfModifiedSince string `json:"ifModifiedSince"`
		IfMatch         string `json:"ifMatch"`
		IfNoneExist     string `json:"ifNoneExist"`
	} `json:"request"`
	Response json.RawMessage `json:"response"`
}

// entry is one entry of a transaction or batch, as it is processed.
type entry struct {
	n       int    // position in the Bundle
	fullURL string // as sent
	base    string // the base of an absolute http(s) fullUrl, for relative references
	method  string
	// The request: path and query as sent (relative to the base, no
	// leading "/"); typ and id of a write, or typ and criteria of a
	// conditional one.
	path, query                  string
	typ, id                      string
	criteria                     url.Values
	ifMatch                      int64
	ifNoneExist                  string
	ifNoneMatch, ifModifiedSince string
	resource                     []byte        // entry.resource as sent
	spans                        []refSpan     // the references in resource (or in the patch result)
	patch                        patchDoc      // of a PATCH
	cond                         *search.Query // the criteria of a conditional write

	// Results.
	body    []byte                // the resource written, after reference rewriting
	res     *conformance.Resource // body parsed
	version int64                 // the version a PATCH applies to
	matched bool                  // a conditional create found its resource
	out     fhir.Outcome
	deleted []fhir.Resource
	msg     string         // what happened, for Prefer: return=OperationOutcome
	read    *entryRecorder // the answer of a GET or HEAD
	access  *search.Access // what a write entry may do (decide)
	audit   *interaction   // its audit record and Provenance (audit.go)
}

// cutLast slices s around the last sep.
func cutLast(s, sep string) (before, after string, ok bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

func (e *entry) isRead() bool { return e.method == http.MethodGet || e.method == http.MethodHead }

// entryPath is the FHIRPath of entry n.
func entryPath(n int) string { return "Bundle.entry[" + strconv.Itoa(n) + "]" }

// atEntry locates err at entry n: each issue's first expression becomes
// Bundle.entry[n], followed by those it had (an element of the entry's
// resource, a search parameter). Errors that are not *fhir.Error (internal
// ones) are returned as they are.
func atEntry(err error, n int) error {
	var fe *fhir.Error
	if !errors.As(err, &fe) {
		return err
	}
	out := &fhir.Error{Kind: fe.Kind, Err: fe.Err, Issues: make([]fhir.Issue, len(fe.Issues))}
	for i, is := range fe.Issues {
		is.Expression = append([]string{entryPath(n)}, is.Expression...)
		out.Issues[i] = is
	}
	return out
}

// inResource locates a validation error of entry n's resource:
// Patient.birthDate becomes Bundle.entry[n].resource.birthDate.
func inResource(err error, n int) error {
	return fhir.WithExpressionPrefix(err, entryPath(n)+".resource")
}

// bundle handles POST [base] with a transaction or batch Bundle. The
// answer is 200 with the transaction-response or batch-response Bundle; a
// transaction that fails answers with the failing entry's status and
// OperationOutcome.
func (s *Server) bundle(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(r)
	if err != nil {
		return err
	}
	var b bundleRequest
	if err := json.Unmarshal(body, &b); err != nil {
		return fhir.Errorf(fhir.Invalid, "Bundle", "the body is not a Bundle: %v", err)
	}
	noteBundle(r.Context(), b.Type)
	if b.ResourceType != "Bundle" {
		return fhir.Errorf(fhir.Invalid, "Bundle", "POST to the base takes a transaction or batch Bundle, not a %q", b.ResourceType)
	}
	if len(b.Entry) > s.maxEntries {
		return fhir.Errorf(fhir.TooLarge, "Bundle.entry", "the Bundle has %d entries; this server takes at most %d per transaction or batch", len(b.Entry), s.maxEntries)
	}
	entries, errs := s.readEntries(b.Entry)
	var resp []byte
	switch b.Type {
	case "transaction":
		if err := firstError(errs); err != nil {
			return err
		}
		if resp, err = s.transaction(r, entries); err != nil {
			return err
		}
	case "batch":
		resp = s.batch(r, entries, errs)
	default:
		return fhir.Errorf(fhir.Invalid, "Bundle.type", "POST to the base takes a transaction or batch Bundle, not a %q Bundle", b.Type)
	}
	s.writeJSON(w, r, http.StatusOK, resp)
	return nil
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// readEntries reads and checks the entries' envelopes; errs[i] is entry
// i's problem. fullUrls must be unique.
func (s *Server) readEntries(raw []entryRequest) (entries []*entry, errs []error) {
	entries, errs = make([]*entry, len(raw)), make([]error, len(raw))
	fullURLs := make(map[string]int)
	for i, re := range raw {
		entries[i], errs[i] = s.readEntry(i, re)
		if errs[i] != nil || re.FullURL == "" {
			continue
		}
		if j, dup := fullURLs[re.FullURL]; dup {
			errs[i] = fhir.Errorf(fhir.Invalid, entryPath(i)+".fullUrl", "fullUrl %q is also the fullUrl of %s: an entry's fullUrl must be unique in the Bundle", re.FullURL, entryPath(j))
			continue
		}
		fullURLs[re.FullURL] = i
	}
	return entries, errs
}

// readEntry reads one entry's envelope: what it asks for, and whether that
// is a well-formed request.
func (s *Server) readEntry(n int, re entryRequest) (*entry, error) {
	e := &entry{n: n, fullURL: re.FullURL}
	invalid := func(field, format string, args ...any) (*entry, error) {
		return e, fhir.Errorf(fhir.Invalid, entryPath(n)+"."+field, format, args...)
	}
	if len(re.Response) > 0 && string(re.Response) != "null" {
		return invalid("response", "an entry of a transaction or batch is a request; it cannot carry a response too")
	}
	if re.Request == nil {
		return invalid("request", "every entry of a transaction or batch needs a request with a method and a url")
	}
	rq := re.Request
	e.method = rq.Method
	if re.FullURL != "" {
		u, err := url.Parse(re.FullURL)
		if err != nil || !u.IsAbs() {
			return invalid("fullUrl", "fullUrl %q is not an absolute URL (http..., urn:uuid:..., urn:oid:...)", re.FullURL)
		}
		if u.Scheme == "http" || u.Scheme == "https" {
			// [base]/[type]/[id]: relative references in the entry are
			// relative to [base].
			rest, id, _ := cutLast(re.FullURL, "/")
			if base, typ, ok := cutLast(rest, "/"); ok && id != "" && s.isType(typ) {
				e.base = base
			}
		}
	}
	hasResource := len(re.Resource) > 0 && string(re.Resource) != "null"
	if hasResource {
		e.resource = re.Resource
	}
	switch e.method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
		if hasResource {
			return invalid("resource", "a %s entry carries no resource", e.method)
		}
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		if !hasResource {
			return invalid("resource", "a %s entry needs a resource", e.method)
		}
	default:
		return invalid("request.method", "%q is not a method of a Bundle entry (GET, HEAD, POST, PUT, PATCH, DELETE)", e.method)
	}
	u, err := url.Parse(rq.URL)
	if rq.URL == "" || err != nil {
		return invalid("request.url", "request.url %q is not a URL", rq.URL)
	}
	if u.IsAbs() || u.Host != "" {
		return invalid("request.url", "request.url %q must be relative to the base (Patient/123, Patient?identifier=...)", rq.URL)
	}
	e.path, e.query = strings.TrimPrefix(u.Path, "/"), u.RawQuery
	if rq.IfMatch != "" {
		v, ok := versionOf(rq.IfMatch)
		if !ok {
			return invalid("request.ifMatch", "ifMatch %q is not a version ETag such as W/\"3\"", rq.IfMatch)
		}
		e.ifMatch = v
	}
	if rq.IfNoneExist != "" && e.method != http.MethodPost {
		return invalid("request.ifNoneExist", "ifNoneExist makes a POST conditional; it has no meaning on %s", e.method)
	}
	e.ifNoneExist, e.ifNoneMatch, e.ifModifiedSince = rq.IfNoneExist, rq.IfNoneMatch, rq.IfModifiedSince
	if e.isRead() {
		return e, nil
	}
	segs := strings.Split(e.path, "/")
	for _, seg := range segs {
		if strings.HasPrefix(seg, "$") {
			return e, fhir.Errorf(fhir.NotSupported, entryPath(n)+".request.url", "operations (%s) are not supported", seg)
		}
	}
	if !s.isType(segs[0]) {
		return invalid("request.url", "request.url %q does not start with a resource type", rq.URL)
	}
	e.typ = segs[0]
	switch {
	case e.method == http.MethodPost && len(segs) == 1 && e.query == "":
	case e.method != http.MethodPost && len(segs) == 2 && e.query == "" && validID.MatchString(segs[1]):
		e.id = segs[1]
	case e.method != http.MethodPost && len(segs) == 1 && e.query != "":
		if e.criteria, err = url.ParseQuery(e.query); err != nil {
			return invalid("request.url", "the criteria of %q are not a query string: %v", rq.URL, err)
		}
	case e.method == http.MethodPost:
		return invalid("request.url", "the url of a POST entry is the resource type (%s)", e.typ)
	default:
		return invalid("request.url", "the url of a %s entry is [type]/[id] or [type]?[criteria], not %q", e.method, rq.URL)
	}
	return e, nil
}

// prepare does what an entry needs before it can run: its criteria, its
// patch, the references in its resource, and a new id for a POST.
func (s *Server) prepare(e *entry) error {
	var err error
	switch {
	case e.criteria != nil:
		e.cond, err = s.criteria(e.typ, e.criteria, "")
	case e.ifNoneExist != "":
		e.cond, err = s.conditionalQuery(e.typ, e.ifNoneExist, "")
	}
	if err != nil {
		return atEntry(err, e.n)
	}
	switch e.method {
	case http.MethodPost, http.MethodPut:
		if e.spans, err = referenceSpans(e.resource); err != nil {
			return fhir.Errorf(fhir.Invalid, entryPath(e.n)+".resource", "the resource is not JSON: %v", err)
		}
	case http.MethodPatch:
		if e.patch, err = s.entryPatch(e.resource); err != nil {
			return inResource(err, e.n)
		}
	}
	if e.method == http.MethodPost {
		e.id = uuid.NewString()
	}
	return nil
}

// entryInteractions are the interactions of write entries, by method.
var entryInteractions = map[string]auth.Interaction{
	http.MethodPost:   auth.Create,
	http.MethodPut:    auth.Update,
	http.MethodPatch:  auth.Patch,
	http.MethodDelete: auth.Delete,
}

// decide runs the access decision for a write entry, as for the single
// interaction it carries, and keeps the access in e.access; a denied entry
// is a 403 located at the entry. Read entries are decided when they are
// served, by the routes that serve them.
func (s *Server) decide(ctx context.Context, e *entry) error {
	if e.isRead() {
		return nil
	}
	a, err := s.authorize(ctx, auth.PrincipalFrom(ctx), entryInteractions[e.method], e.typ)
	if err != nil {
		return atEntry(err, e.n)
	}
	e.access = a
	return nil
}

// in returns ctx with the entry's access, for the store.
func (e *entry) in(ctx context.Context) context.Context {
	return withAudit(search.WithAccess(ctx, e.access), e.audit)
}

// transaction runs a transaction's entries and returns the
// transaction-response Bundle.
func (s *Server) transaction(r *http.Request, entries []*entry) ([]byte, error) {
	for _, e := range entries {
		if err := s.beginEntry(r.Context(), e); err != nil {
			return nil, err
		}
		if err := s.decide(r.Context(), e); err != nil {
			return nil, err
		}
		if err := s.prepare(e); err != nil {
			return nil, err
		}
	}
	if err := s.runEntries(r.Context(), entries); err != nil {
		return nil, err
	}
	for _, e := range entries {
		s.finishEntry(r.Context(), e, nil)
	}
	b := &bundle{typ: "transaction-response", total: -1, now: s.now()}
	prefer := preferOf(r)
	for _, e := range entries {
		b.entries = append(b.entries, s.entryResponse(e, prefer))
	}
	return b.bytes(), nil
}

// batch runs each entry of a batch on its own and returns the
// batch-response Bundle; errs are the entries' envelope problems.
func (s *Server) batch(r *http.Request, entries []*entry, errs []error) []byte {
	ctx := r.Context()
	urns := make(map[string]int)
	for _, e := range entries {
		if strings.HasPrefix(e.fullURL, "urn:") {
			urns[e.fullURL] = e.n
		}
	}
	b := &bundle{typ: "batch-response", total: -1, now: s.now()}
	prefer := preferOf(r)
	for i, e := range entries {
		err := errs[i]
		if err == nil {
			err = s.beginEntry(ctx, e)
		}
		if err == nil {
			err = s.decide(ctx, e)
		}
		if err == nil {
			err = s.prepare(e)
		}
		if err == nil {
			for _, sp := range e.spans {
				if j, ok := urns[sp.value]; ok && j != e.n {
					err = fhir.Errorf(fhir.Invalid, entryPath(e.n)+".resource", "the reference to %s (the fullUrl of %s) cannot be resolved: batch entries are processed independently; send a transaction to link them", sp.value, entryPath(j))
					break
				}
			}
		}
		if err == nil {
			if e.isRead() {
				if e.read = s.serveRead(ctx, e); e.read.err != nil {
					err = atEntry(e.read.err, e.n)
				}
			} else {
				err = s.runEntries(ctx, []*entry{e})
			}
		}
		s.finishEntry(ctx, e, err)
		if err != nil {
			fe := s.clientError(ctx, err)
			info := fe.Kind.Info()
			b.entries = append(b.entries, bundleEntry{status: statusText(info.Status), outcome: outcome(fe.Issues, info.Code)})
			continue
		}
		b.entries = append(b.entries, s.entryResponse(e, prefer))
	}
	return b.bytes()
}

func statusText(code int) string { return strconv.Itoa(code) + " " + http.StatusText(code) }

// runEntries runs prepared entries in one database transaction and, once
// it has committed, tells the registry about changed SearchParameters.
func (s *Server) runEntries(ctx context.Context, entries []*entry) error {
	var bases []string
	err := s.tx.Transaction(ctx, func(tx TxStore) error {
		r := &run{s: s.in(tx), tx: tx, entries: entries, refs: map[string]string{}, condRefs: map[string]string{}}
		err := r.exec(ctx)
		bases = r.bases
		return err
	})
	if err != nil {
		return err
	}
	return s.searchParamsChanged(ctx, bases)
}

// in returns a copy of s that works in the database transaction tx: every
// read, write and search, and every conditional interaction (which would
// otherwise start a transaction of its own), runs in tx.
func (s *Server) in(tx TxStore) *Server {
	c := *s
	c.store, c.searcher, c.tx = noting{tx}, notingSearcher{tx}, within{tx}
	return &c
}

// within is the Transactor of a Server already in a transaction: a
// transaction started inside joins it.
type within struct{ tx TxStore }

func (w within) Transaction(_ context.Context, fn func(tx TxStore) error) error { return fn(w.tx) }

// run is one database transaction over entries: all of a transaction
// Bundle's, or one of a batch.
type run struct {
	s        *Server // bound to tx
	tx       TxStore
	entries  []*entry
	refs     map[string]string // fullUrl -> Type/id
	condRefs map[string]string // conditional reference -> Type/id
	bases    []string          // SearchParameter bases to reindex
}

// exec processes the entries in R4's order.
func (r *run) exec(ctx context.Context) error {
	// Conditional entries lock their criteria, all up front and in one
	// order, so that two transactions cannot each hold a lock the other
	// waits for.
	var keys []string
	for _, e := range r.entries {
		if e.cond != nil {
			keys = append(keys, lockKey(e.cond))
		}
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if err := r.tx.LockKey(ctx, k); err != nil {
			return err
		}
	}
	for _, e := range r.entries {
		if e.method == http.MethodDelete {
			if err := r.delete(e.in(ctx), e); err != nil {
				return atEntry(err, e.n)
			}
		}
	}
	for _, e := range r.entries {
		if err := r.target(e.in(ctx), e); err != nil {
			return atEntry(err, e.n)
		}
	}
	if err := r.checkOverlap(); err != nil {
		return err
	}
	// The writes in their order: POST, then PUT and PATCH.
	var writes []*entry
	for _, e := range r.entries {
		if e.method == http.MethodPost {
			writes = append(writes, e)
		}
	}
	for _, e := range r.entries {
		if e.method == http.MethodPut || e.method == http.MethodPatch {
			writes = append(writes, e)
		}
	}
	for _, e := range writes {
		if e.fullURL != "" {
			r.refs[e.fullURL] = e.typ + "/" + e.id
		}
	}
	for _, e := range writes {
		if err := r.prepareBody(e.in(ctx), e); err != nil {
			return err
		}
	}
	if err := r.s.parseAll(writes); err != nil {
		return err
	}
	for _, e := range writes {
		if err := r.write(e.in(ctx), e); err != nil {
			return err
		}
	}
	for _, e := range r.entries {
		if e.isRead() {
			e.read = r.s.serveRead(ctx, e)
			if err := e.read.err; err != nil {
				return atEntry(err, e.n)
			}
		}
	}
	return nil
}

// delete runs a DELETE entry.
func (r *run) delete(ctx context.Context, e *entry) error {
	if e.cond != nil {
		deleted, bases, err := r.s.conditionalDeletes(ctx, r.tx, e.cond, e.ifMatch)
		if err != nil {
			return err
		}
		e.deleted, e.msg = deleted, deletedMessage(e.cond, deleted)
		r.bases = append(r.bases, bases...)
		return nil
	}
	r.bases = append(r.bases, oldSearchParamBases(ctx, r.tx, e.typ, e.id)...)
	out, err := r.s.governedWrite(ctx, r.tx, e.typ, e.id, nil, func(ctx context.Context, st fhir.Store) (fhir.Outcome, error) {
		return st.Delete(ctx, e.typ, e.id, e.ifMatch)
	})
	if err != nil {
		return err
	}
	e.out, e.msg = out, "deleted "+e.typ+"/"+e.id
	if out.Unchanged {
		e.msg = e.typ + "/" + e.id + " was already deleted or never existed; nothing changed"
	} else {
		e.deleted = []fhir.Resource{out.Resource}
	}
	return nil
}

// target finds what a conditional POST, PUT or PATCH acts on.
func (r *run) target(ctx context.Context, e *entry) error {
	if e.cond == nil || e.method == http.MethodDelete {
		return nil
	}
	switch e.method {
	case http.MethodPost:
		existing, err := existingMatch(ctx, r.tx, e.cond)
		if existing != nil {
			e.matched, e.id, e.out = true, existing.ID, fhir.Outcome{Resource: *existing}
			e.msg = e.typ + "/" + e.id + " matches ifNoneExist; nothing was created"
		}
		return err
	case http.MethodPut:
		bodyID, err := resourceID(e.resource)
		if err != nil {
			return inResource(err, e.n)
		}
		e.id, err = conditionalTarget(ctx, r.tx, e.cond, bodyID, e.ifMatch)
		return err
	}
	var err error
	e.id, err = patchTarget(ctx, r.tx, e.cond)
	return err
}

// resourceID returns the id member of a resource's JSON, or "".
func resourceID(body []byte) (string, error) {
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fhir.Errorf(fhir.Invalid, "Resource", "the resource is not a JSON object: %v", err)
	}
	return v.ID, nil
}

// checkOverlap fails when two entries act on the same resource.
func (r *run) checkOverlap() error {
	seen := make(map[string]int)
	claim := func(e *entry, key string) error {
		if j, ok := seen[key]; ok {
			return fhir.Errorf(fhir.Invalid, entryPath(e.n), "%s is also acted on by %s: a transaction may act on each resource once", key, entryPath(j))
		}
		seen[key] = e.n
		return nil
	}
	for _, e := range r.entries {
		var err error
		switch {
		case e.isRead():
		case e.method == http.MethodDelete && e.cond != nil:
			for _, d := range e.deleted {
				if err = claim(e, d.Type+"/"+d.ID); err != nil {
					break
				}
			}
		default:
			err = claim(e, e.typ+"/"+e.id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// prepareBody makes the resource a write entry will store: the patched
// current version for a PATCH, with its references rewritten.
func (r *run) prepareBody(ctx context.Context, e *entry) error {
	e.body = e.resource
	if e.method == http.MethodPatch {
		cur, err := r.tx.Read(ctx, e.typ, e.id)
		if err != nil {
			return atEntry(err, e.n)
		}
		if e.ifMatch != 0 && e.ifMatch != cur.VersionID {
			return atEntry(fhir.Errorf(fhir.PreconditionFailed, "", "ifMatch expects version %d of %s/%s, but the current version is %d", e.ifMatch, e.typ, e.id, cur.VersionID), e.n)
		}
		if e.body, err = e.patch.apply(cur.Body); err != nil {
			return inResource(err, e.n)
		}
		e.version = cur.VersionID
		if e.spans, err = referenceSpans(e.body); err != nil {
			return atEntry(err, e.n)
		}
	}
	body, err := rewrite(e.body, e.spans, func(ref string) (string, bool, error) { return r.resolve(ctx, e, ref) })
	if err != nil {
		return atEntry(err, e.n)
	}
	e.body = body
	return nil
}

// resolve returns what a reference in entry e stands for: the Type/id of
// another entry (by its fullUrl, or a relative reference against e's
// absolute fullUrl), or of a conditional reference's one match. ok is false
// for references that stay as they are.
func (r *run) resolve(ctx context.Context, e *entry, ref string) (to string, ok bool, err error) {
	if to, ok := r.refs[ref]; ok {
		return to, true, nil
	}
	if typ, ok := r.s.conditionalReference(ref); ok {
		if to, ok := r.condRefs[ref]; ok {
			return to, true, nil
		}
		q, err := r.s.conditionalQuery(typ, ref, "")
		if err != nil {
			return "", false, err
		}
		q.Count = 1
		res, err := r.tx.Search(ctx, q)
		switch {
		case err != nil:
			return "", false, err
		case len(res.Matches) == 0:
			return "", false, fhir.Errorf(fhir.NotFound, "", "the conditional reference %s matches no resource", ref)
		case res.Next != "":
			return "", false, fhir.Errorf(fhir.PreconditionFailed, "", "the conditional reference %s matches more than one resource", ref)
		}
		to = typ + "/" + res.Matches[0].ID
		r.condRefs[ref] = to
		return to, true, nil
	}
	if e.base != "" && !strings.Contains(ref, ":") {
		if to, ok := r.refs[e.base+"/"+ref]; ok {
			return to, true, nil
		}
	}
	return "", false, nil
}

// conditionalReference reports whether ref is a conditional reference
// (Patient?identifier=...), and its type.
func (s *Server) conditionalReference(ref string) (string, bool) {
	typ, _, ok := strings.Cut(ref, "?")
	return typ, ok && s.isType(typ)
}

// parseAll validates the bodies of write entries as the single
// interactions do, spread over the CPUs, and returns the first failure in
// the order of writes. (Overlapping parsing with the writes of entries
// already parsed gained nothing measurable on 2 CPUs, where the database and
// the parser compete for the same cores.)
func (s *Server) parseAll(writes []*entry) error {
	errs := make([]error, len(writes))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(writes)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(writes); i = int(next.Add(1)) - 1 {
				errs[i] = s.parseEntry(writes[i])
			}
		})
	}
	wg.Wait()
	return firstError(errs)
}

// parseEntry validates one write entry's body, and checks what an update
// checks.
func (s *Server) parseEntry(e *entry) error {
	var err error
	e.res, err = s.parser.Parse(e.body, e.typ)
	if err == nil && (e.method == http.MethodPut && e.cond == nil || e.method == http.MethodPatch) {
		err = checkUpdateID(e.typ, e.id, e.res)
	}
	switch {
	case err == nil:
		return nil
	case e.method == http.MethodPatch:
		return atEntry(err, e.n) // the entry's resource is the patch, not what failed
	}
	return inResource(err, e.n)
}

// write stores a POST, PUT or PATCH entry.
func (r *run) write(ctx context.Context, e *entry) error {
	if e.matched {
		return nil
	}
	bases, err := checkSearchParameter(e.typ, e.body)
	if err != nil {
		return inResource(err, e.n)
	}
	w := fhir.Write{Type: e.typ, ID: e.id, Render: e.res.Render, Index: e.res.Index}
	var store storeWrite
	switch e.method {
	case http.MethodPost:
		store = func(ctx context.Context, st fhir.Store) (fhir.Outcome, error) { return st.Create(ctx, w) }
	case http.MethodPut:
		bases = append(bases, oldSearchParamBases(ctx, r.tx, e.typ, e.id)...)
		w.IfMatch = e.ifMatch
		store = func(ctx context.Context, st fhir.Store) (fhir.Outcome, error) { return st.Update(ctx, w) }
	case http.MethodPatch:
		bases = append(bases, oldSearchParamBases(ctx, r.tx, e.typ, e.id)...)
		w.IfMatch = e.version
		store = func(ctx context.Context, st fhir.Store) (fhir.Outcome, error) { return st.Update(ctx, w) }
	}
	e.out, err = r.s.governedWrite(ctx, r.tx, e.typ, e.id, e.body, store)
	if err != nil {
		return atEntry(err, e.n)
	}
	r.bases = append(r.bases, bases...)
	res := e.out.Resource
	e.msg = "updated " + res.Type + "/" + res.ID
	if e.out.Created {
		e.msg = "created " + res.Type + "/" + res.ID
	}
	return nil
}

// entryResponse is the response entry of a processed entry.
func (s *Server) entryResponse(e *entry, prefer preferReturn) bundleEntry {
	if e.isRead() {
		return e.read.response(e.method == http.MethodHead)
	}
	be := bundleEntry{}
	info := func() json.RawMessage {
		return outcome([]fhir.Issue{{Severity: "information", Code: "informational", Diagnostics: e.msg}}, "informational")
	}
	if e.method == http.MethodDelete {
		be.status = statusText(http.StatusNoContent)
		if len(e.deleted) == 1 {
			be.etag, be.lastModified = e.deleted[0].ETag(), e.deleted[0].LastUpdated
		}
		if prefer == returnOutcome {
			be.outcome = info()
		}
		return be
	}
	res := e.out.Resource
	be.status = statusText(http.StatusOK)
	if e.out.Created {
		be.status = statusText(http.StatusCreated)
	}
	be.fullURL = s.base + "/" + res.Type + "/" + res.ID
	be.location, be.etag, be.lastModified = s.location(res), res.ETag(), res.LastUpdated
	switch prefer {
	case returnRepresentation:
		be.resource = res.Body
	case returnOutcome:
		be.outcome = info()
	}
	return be
}

// entryRoutes returns the router that GET and HEAD entries are served by:
// the API's own routes, each interaction bound to the Server in the
// entryRecorder (which is in the transaction, for a transaction), errors
// kept for the entry.
func (s *Server) entryRoutes() http.Handler {
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fhir.Errorf(fhir.NotFound, "", "no route for GET %s", r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fhir.Errorf(fhir.MethodNotAllowed, "", "GET is not allowed on %s", r.URL.Path))
	})
	bind := func(in auth.Interaction, m method) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			rec := w.(*entryRecorder)
			if err := s.audited(in, s.decided(in, m))(rec.srv, w, r); err != nil {
				rec.err = err
			}
		}
	}
	r.Get("/metadata", bind("", (*Server).metadata))
	s.api(r, bind)
	return r
}

// serveRead answers a GET or HEAD entry through the API routes on s.
func (s *Server) serveRead(ctx context.Context, e *entry) *entryRecorder {
	rec := &entryRecorder{srv: s, header: http.Header{}, status: http.StatusOK}
	target := "/" + e.path
	if e.query != "" {
		target += "?" + e.query
	}
	query, err := url.ParseQuery(e.query)
	if err != nil {
		rec.err = fhir.Errorf(fhir.Invalid, "", "request.url %q has a malformed query: %v", target, err)
		return rec
	}
	ctx = context.WithValue(ctx, viewKey{}, view{contentType: mediaFHIRJSON + "; charset=utf-8", query: query})
	// The entry is routed afresh, not as a part of the POST it came in.
	ctx = context.WithValue(ctx, chi.RouteCtxKey, (*chi.Context)(nil))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, http.NoBody)
	if err != nil {
		rec.err = fhir.Errorf(fhir.Invalid, "", "request.url %q: %v", target, err)
		return rec
	}
	if e.ifNoneMatch != "" {
		req.Header.Set("If-None-Match", e.ifNoneMatch)
	}
	if e.ifModifiedSince != "" {
		// Bundles carry an instant; the header wants an HTTP date.
		if t, err := time.Parse(time.RFC3339, e.ifModifiedSince); err == nil {
			req.Header.Set("If-Modified-Since", t.UTC().Format(http.TimeFormat))
		}
	}
	s.entries.ServeHTTP(rec, req)
	return rec
}

// entryRecorder is the http.ResponseWriter of a read entry.
type entryRecorder struct {
	srv    *Server
	header http.Header
	status int
	body   bytes.Buffer
	err    error
}

func (r *entryRecorder) Header() http.Header         { return r.header }
func (r *entryRecorder) WriteHeader(status int)      { r.status = status }
func (r *entryRecorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// response is the response entry of a successful read.
func (r *entryRecorder) response(head bool) bundleEntry {
	be := bundleEntry{status: statusText(r.status), etag: r.header.Get("ETag")}
	if t, err := http.ParseTime(r.header.Get("Last-Modified")); err == nil {
		be.lastModified = t
	}
	if !head && r.body.Len() > 0 {
		be.resource = r.body.Bytes()
	}
	return be
}

// refSpan is a Reference.reference in a resource's JSON: the bytes
// [start, end) of the JSON string, and its value.
type refSpan struct {
	start, end int
	value      string
}

// referenceSpans finds every "reference" member with a string value, at
// any depth (extensions, contained resources and nested elements included).
func referenceSpans(body []byte) ([]refSpan, error) {
	if !bytes.Contains(body, []byte(`"reference"`)) {
		return nil, nil
	}
	// One frame per open object or array; key says the next token of an
	// object is a member name.
	type frame struct{ object, key bool }
	var (
		stack  []frame
		out    []refSpan
		refEnd = -1 // the end of a "reference" name whose value comes next
	)
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		top := len(stack) - 1
		if s, ok := tok.(string); ok && top >= 0 && stack[top].key {
			stack[top].key = false
			refEnd = -1
			if s == "reference" {
				refEnd = int(dec.InputOffset())
			}
			continue
		}
		// A value, or the end of a container.
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:top]
			continue
		}
		if top >= 0 && stack[top].object {
			stack[top].key = true
		}
		switch t := tok.(type) {
		case json.Delim:
			stack = append(stack, frame{object: t == '{', key: t == '{'})
		case string:
			if refEnd >= 0 {
				start := refEnd + bytes.IndexByte(body[refEnd:], '"')
				out = append(out, refSpan{start: start, end: int(dec.InputOffset()), value: t})
			}
		}
		refEnd = -1
	}
}

// rewrite returns body with each reference in spans that resolve maps
// replaced; body itself when none is.
func rewrite(body []byte, spans []refSpan, resolve func(ref string) (string, bool, error)) ([]byte, error) {
	var out []byte
	last := 0
	for _, sp := range spans {
		to, ok, err := resolve(sp.value)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(body)+64)
		}
		q, _ := json.Marshal(to)
		out = append(append(out, body[last:sp.start]...), q...)
		last = sp.end
	}
	if out == nil {
		return body, nil
	}
	return append(out, body[last:]...), nil
}
