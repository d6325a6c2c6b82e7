package rest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
)

// validID is the R4 id datatype.
var validID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// readBody returns the request body after checking its media type and size.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	if err := checkContentType(r); err != nil {
		return nil, err
	}
	return s.readLimited(r)
}

// readLimited returns the request body, refusing one above MaxBody (413) or
// an empty one (400).
func (s *Server) readLimited(r *http.Request) ([]byte, error) {
	if r.ContentLength > s.maxBody {
		return nil, fhir.Errorf(fhir.TooLarge, "", "the body (%d bytes) exceeds the limit of %d bytes", r.ContentLength, s.maxBody)
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fhir.Errorf(fhir.TooLarge, "", "the body exceeds the limit of %d bytes", s.maxBody)
		}
		return nil, fhir.Errorf(fhir.Invalid, "", "reading the body failed: %v", err)
	}
	if len(b) == 0 {
		return nil, fhir.Errorf(fhir.Invalid, chi.URLParam(r, "type"), "the request has no body: send a %s resource", chi.URLParam(r, "type"))
	}
	return b, nil
}

// checkSearchParameter refuses a SearchParameter this server could not
// index (400, pointing at the element) and returns the resource types it
// applies to; other types pass unchecked.
func checkSearchParameter(typ string, body []byte) ([]string, error) {
	if typ != "SearchParameter" {
		return nil, nil
	}
	sp, err := searchparam.Definition(body)
	if err != nil {
		return nil, err
	}
	return sp.Base, nil
}

// searchParamsChanged reloads the registry and queues the reindexing after
// a SearchParameter write (bases empty: nothing to do).
func (s *Server) searchParamsChanged(ctx context.Context, bases []string) error {
	if len(bases) == 0 || s.spChanged == nil {
		return nil
	}
	return s.spChanged(ctx, bases)
}

// oldSearchParamBases returns the types that the stored version of a
// SearchParameter applies to, which need reindexing too when it is replaced
// or deleted; nil for other types and unknown resources.
func oldSearchParamBases(ctx context.Context, st fhir.Store, typ, id string) []string {
	if typ != "SearchParameter" {
		return nil
	}
	old, err := st.Read(ctx, typ, id)
	if err != nil {
		return nil
	}
	sp, err := searchparam.Definition(old.Body)
	if err != nil {
		return nil
	}
	return sp.Base
}

// checkUpdateID refuses an update whose resource does not carry the id of
// its URL.
func checkUpdateID(typ, id string, res *conformance.Resource) error {
	switch res.ID {
	case id:
		return nil
	case "":
		return fhir.Errorf(fhir.Invalid, typ+".id", "the resource has no id: an update must carry the id of its URL (%q)", id)
	default:
		return fhir.Errorf(fhir.Invalid, typ+".id", "the resource id %q differs from the URL id %q", res.ID, id)
	}
}

// ifMatch reads the If-Match header as a version number (0: absent).
func ifMatch(r *http.Request) (int64, error) {
	h := r.Header.Get("If-Match")
	if h == "" {
		return 0, nil
	}
	v, ok := versionOf(h)
	if !ok {
		return 0, fhir.Errorf(fhir.Invalid, "", "If-Match %q is not a version ETag such as W/\"3\"", h)
	}
	return v, nil
}

// location is the absolute URL of a version.
func (s *Server) location(res fhir.Resource) string {
	return s.base + "/" + res.Type + "/" + res.ID + "/_history/" + strconv.FormatInt(res.VersionID, 10)
}

// setVersionHeaders writes ETag and Last-Modified for a version.
func setVersionHeaders(w http.ResponseWriter, res fhir.Resource) {
	if res.VersionID > 0 {
		w.Header().Set("ETag", res.ETag())
	}
	if !res.LastUpdated.IsZero() {
		w.Header().Set("Last-Modified", res.LastUpdated.UTC().Format(http.TimeFormat))
	}
}

// writeResource answers with a stored version: its bytes as stored, cut down
// by _summary/_elements when asked.
func (s *Server) writeResource(w http.ResponseWriter, r *http.Request, status int, res fhir.Resource) error {
	body, err := applyView(r, res.Body, res.Type)
	if err != nil {
		return err
	}
	setVersionHeaders(w, res)
	s.writeJSON(w, r, status, body)
	return nil
}

// writeOutcome answers a write as the Prefer header asks: the resource
// (default), nothing, or an OperationOutcome.
func (s *Server) writeOutcome(w http.ResponseWriter, r *http.Request, out fhir.Outcome, status int, msg string) error {
	setVersionHeaders(w, out.Resource)
	switch preferOf(r) {
	case returnMinimal:
		w.WriteHeader(status)
		return nil
	case returnOutcome:
		s.writeJSON(w, r, status, outcome([]fhir.Issue{{Severity: "information", Code: "informational", Diagnostics: msg}}, "informational"))
		return nil
	}
	return s.writeResource(w, r, status, out.Resource)
}

// create handles POST [base]/[type], conditionally when If-None-Exist is
// set (see conditionalCreate).
func (s *Server) create(w http.ResponseWriter, r *http.Request) error {
	typ := chi.URLParam(r, "type")
	body, err := s.readBody(r)
	if err != nil {
		return err
	}
	res, err := s.parser.Parse(body, typ)
	if err != nil {
		return err
	}
	bases, err := checkSearchParameter(typ, body)
	if err != nil {
		return err
	}
	write := fhir.Write{Type: typ, Render: res.Render, Index: res.Index}
	if cond := r.Header.Get("If-None-Exist"); cond != "" {
		q, err := s.conditionalQuery(typ, cond, "If-None-Exist")
		if err != nil {
			return err
		}
		var out fhir.Outcome
		err = s.tx.Transaction(r.Context(), func(tx TxStore) (err error) {
			out, err = s.governedWrite(r.Context(), tx, typ, "", body, func(ctx context.Context, st fhir.Store) (fhir.Outcome, error) {
				return conditionalCreate(ctx, tx, q, write)
			})
			return err
		})
		if err != nil {
			return err
		}
		if !out.Created {
			msg := typ + "/" + out.Resource.ID + " matches If-None-Exist; nothing was created"
			return s.writeOutcome(w, r, out, http.StatusOK, msg)
		}
		return s.created(w, r, out, bases)
	}
	out, err := s.governedWrite(r.Context(), nil, typ, "", body, func(ctx context.Context, st fhir.Store) (fhir.Outcome, error) {
		return st.Create(ctx, write)
	})
	if err != nil {
		return err
	}
	return s.created(w, r, out, bases)
}

// created answers a create that wrote a resource: 201 with its Location.
func (s *Server) created(w http.ResponseWriter, r *http.Request, out fhir.Outcome, bases []string) error {
	if err := s.searchParamsChanged(r.Context(), bases); err != nil {
		return err
	}
	res := out.Resource
	w.Header().Set("Location", s.location(res))
	return s.writeOutcome(w, r, out, http.StatusCreated, "created "+res.Type+"/"+res.ID)
}

// update handles PUT [base]/[type]/[id], creating the resource with that id
// when it does not exist.
func (s *Server) update(w http.ResponseWriter, r *http.Request) error {
	typ, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
	if !validID.MatchString(id) {
		return fhir.Errorf(fhir.Invalid, typ+".id", "%q is not a valid id: 1 to 64 of A-Z a-z 0-9 - .", id)
	}
	in, err := s.readUpdate(r, typ)
	if err != nil {
		return err
	}
	if err := checkUpdateID(typ, id, in.res); err != nil {
		return err
	}
	bases := append(in.bases, oldSearchParamBases(r.Context(), s.store, typ, id)...)
	write := fhir.Write{Type: typ, ID: id, IfMatch: in.version, Render: in.res.Render, Index: in.res.Index}
	out, err := s.governedWrite(r.Context(), nil, typ, id, in.body, func(ctx context.Context, st fhir.Store) (fhir.Outcome, error) {
		return st.Update(ctx, write)
	})
	if err != nil {
		return err
	}
	return s.updated(w, r, out, bases)
}

// incoming is the validated body of an update: the resource, the version
// If-Match asks for (0: none), and for a SearchParameter the resource types
// it applies to.
type incoming struct {
	res     *conformance.Resource
	body    []byte
	version int64
	bases   []string
}

// readUpdate reads, validates and checks the body and If-Match of an update
// (plain or conditional) of a resource of type typ.
func (s *Server) readUpdate(r *http.Request, typ string) (incoming, error) {
	body, err := s.readBody(r)
	if err != nil {
		return incoming{}, err
	}
	res, err := s.parser.Parse(body, typ)
	if err != nil {
		return incoming{}, err
	}
	version, err := ifMatch(r)
	if err != nil {
		return incoming{}, err
	}
	bases, err := checkSearchParameter(typ, body)
	if err != nil {
		return incoming{}, err
	}
	return incoming{res: res, body: body, version: version, bases: bases}, nil
}

// updated answers an update: 200, or 201 with a Location when it created
// the resource.
func (s *Server) updated(w http.ResponseWriter, r *http.Request, out fhir.Outcome, bases []string) error {
	if err := s.searchParamsChanged(r.Context(), bases); err != nil {
		return err
	}
	res := out.Resource
	status, msg := http.StatusOK, "updated "+res.Type+"/"+res.ID
	if out.Created {
		status, msg = http.StatusCreated, "created "+res.Type+"/"+res.ID
		w.Header().Set("Location", s.location(res))
	}
	return s.writeOutcome(w, r, out, status, msg)
}

// delete handles DELETE [base]/[type]/[id]: 204, or 200 with an
// OperationOutcome when Prefer asks for one.
func (s *Server) delete(w http.ResponseWriter, r *http.Request) error {
	typ, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	bases := oldSearchParamBases(r.Context(), s.store, typ, id)
	out, err := s.governedWrite(r.Context(), nil, typ, id, nil, func(ctx context.Context, st fhir.Store) (fhir.Outcome, error) {
		return st.Delete(ctx, typ, id, version)
	})
	if err != nil {
		return err
	}
	if !out.Unchanged {
		if err := s.searchParamsChanged(r.Context(), bases); err != nil {
			return err
		}
	}
	setVersionHeaders(w, out.Resource)
	msg := "deleted " + typ + "/" + id
	if out.Unchanged {
		msg = typ + "/" + id + " was already deleted or never existed; nothing changed"
	}
	return s.deleted(w, r, msg)
}

// deleted answers a delete: 204, or 200 with an OperationOutcome saying msg
// when Prefer asks for one.
func (s *Server) deleted(w http.ResponseWriter, r *http.Request, msg string) error {
	if preferOf(r) == returnOutcome {
		s.writeJSON(w, r, http.StatusOK, outcome([]fhir.Issue{{Severity: "information", Code: "informational", Diagnostics: msg}}, "informational"))
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// read handles GET [base]/[type]/[id], with If-None-Match and
// If-Modified-Since answered 304 when the client's copy is current.
func (s *Server) read(w http.ResponseWriter, r *http.Request) error {
	typ, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
	if !validID.MatchString(id) {
		return fhir.Errorf(fhir.NotFound, "", "%s/%s is not known: %q is not a valid id", typ, id, id)
	}
	res, err := s.store.Read(r.Context(), typ, id)
	if err != nil {
		if fhir.IsKind(err, fhir.Gone) {
			setVersionHeaders(w, res)
		}
		return err
	}
	if notModified(r, res) {
		setVersionHeaders(w, res)
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return s.writeResource(w, r, http.StatusOK, res)
}

// notModified applies If-None-Match (which wins when present) and
// If-Modified-Since (second precision, as HTTP dates have).
func notModified(r *http.Request, res fhir.Resource) bool {
	if h := r.Header.Get("If-None-Match"); h != "" {
		if h == "*" {
			return true
		}
		v, ok := versionOf(h)
		return ok && v == res.VersionID
	}
	if h := r.Header.Get("If-Modified-Since"); h != "" {
		t, err := http.ParseTime(h)
		return err == nil && !res.LastUpdated.Truncate(time.Second).After(t)
	}
	return false
}

// vread handles GET [base]/[type]/[id]/_history/[vid].
func (s *Server) vread(w http.ResponseWriter, r *http.Request) error {
	typ, id, vid := chi.URLParam(r, "type"), chi.URLParam(r, "id"), chi.URLParam(r, "vid")
	v, err := strconv.ParseInt(vid, 10, 64)
	if err != nil || v < 1 || !validID.MatchString(id) {
		return fhir.Errorf(fhir.NotFound, "", "%s/%s has no version %q", typ, id, vid)
	}
	res, err := s.store.VRead(r.Context(), typ, id, v)
	if err != nil {
		if fhir.IsKind(err, fhir.Gone) {
			setVersionHeaders(w, res)
		}
		return err
	}
	return s.writeResource(w, r, http.StatusOK, res)
}
