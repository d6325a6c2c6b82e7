package rest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/patch"
	"github.com/digitaleouder/ouder/fhir/search"
)

// PATCH (http://hl7.org/fhir/R4/http.html#patch) takes a JSON Patch
// (application/json-patch+json) or a FHIRPath Patch (a Parameters resource
// in FHIR JSON); in a Bundle, a Binary holding the JSON Patch or the
// Parameters. The patched resource is validated exactly as the body of an
// update would be, and written as the version after the one it was made
// from: If-Match, when sent, must name that version.

// mediaJSONPatch is the media type of a JSON Patch document.
const mediaJSONPatch = "application/json-patch+json"

// maxPatchAttempts bounds how often a PATCH without If-Match is applied
// again when a concurrent write got in between its read and its write.
const maxPatchAttempts = 3

// patchDoc is the patch of a request: a JSON Patch document or a FHIRPath
// Patch Parameters resource.
type patchDoc struct {
	jsonPatch []byte
	fhirPath  []byte
}

// apply returns the resource current with the patch applied.
func (p patchDoc) apply(current []byte) ([]byte, error) {
	if p.jsonPatch != nil {
		return patch.JSON(current, p.jsonPatch)
	}
	return patch.FHIRPath(current, p.fhirPath)
}

// readPatch reads the body of a PATCH by its media type: 415 for one that
// is neither JSON Patch nor FHIR JSON.
func (s *Server) readPatch(r *http.Request) (patchDoc, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == mediaJSONPatch {
		body, err := s.readLimited(r)
		return patchDoc{jsonPatch: body}, err
	}
	if err := checkContentType(r); err != nil {
		return patchDoc{}, fhir.Errorf(fhir.UnsupportedMediaType, "", "PATCH takes a JSON Patch (%s) or a FHIRPath Patch Parameters resource (%s), not %q", mediaJSONPatch, mediaFHIRJSON, r.Header.Get("Content-Type"))
	}
	body, err := s.readLimited(r)
	if err != nil {
		return patchDoc{}, err
	}
	return s.fhirPathPatch(body)
}

// fhirPathPatch validates a FHIRPath Patch as the Parameters resource it is.
func (s *Server) fhirPathPatch(body []byte) (patchDoc, error) {
	if _, err := s.parser.Parse(body, "Parameters"); err != nil {
		return patchDoc{}, err
	}
	return patchDoc{fhirPath: body}, nil
}

// entryPatch reads the patch of a PATCH entry: a Binary with a JSON Patch,
// or a Parameters resource.
func (s *Server) entryPatch(resource []byte) (patchDoc, error) {
	var b struct {
		ResourceType string `json:"resourceType"`
		ContentType  string `json:"contentType"`
		Data         string `json:"data"`
	}
	if err := json.Unmarshal(resource, &b); err != nil {
		return patchDoc{}, fhir.Errorf(fhir.Invalid, "Resource", "the resource is not a JSON object: %v", err)
	}
	switch b.ResourceType {
	case "Parameters":
		return s.fhirPathPatch(resource)
	case "Binary":
		if _, err := s.parser.Parse(resource, "Binary"); err != nil {
			return patchDoc{}, err
		}
		if mt, _, _ := mime.ParseMediaType(b.ContentType); mt != mediaJSONPatch {
			return patchDoc{}, fhir.Errorf(fhir.Invalid, "Binary.contentType", "a Binary in a PATCH entry holds a JSON Patch (%s), not %q", mediaJSONPatch, b.ContentType)
		}
		data, err := base64.StdEncoding.DecodeString(b.Data)
		if err != nil || len(data) == 0 {
			return patchDoc{}, fhir.Errorf(fhir.Invalid, "Binary.data", "Binary.data is not a base64 JSON Patch")
		}
		return patchDoc{jsonPatch: data}, nil
	}
	return patchDoc{}, fhir.Errorf(fhir.Invalid, "Resource", "a PATCH entry holds a Binary (JSON Patch) or a Parameters resource (FHIRPath Patch), not a %q", b.ResourceType)
}

// patched reads typ/id in st and returns the write of its patched version:
// validated like an update's body, and conditional on the version it was
// made from (so a concurrent write makes the store answer
// PreconditionFailed). A non-zero ifMatch must name the current version.
func (s *Server) patched(ctx context.Context, st fhir.Store, typ, id string, ifMatch int64, p patchDoc) (fhir.Write, []byte, error) {
	cur, err := st.Read(ctx, typ, id)
	if err != nil {
		return fhir.Write{}, nil, err
	}
	if ifMatch != 0 && ifMatch != cur.VersionID {
		return fhir.Write{}, nil, fhir.Errorf(fhir.PreconditionFailed, "", "If-Match expects version %d of %s/%s, but the current version is %d", ifMatch, typ, id, cur.VersionID)
	}
	body, err := p.apply(cur.Body)
	if err != nil {
		return fhir.Write{}, nil, err
	}
	res, err := s.parser.Parse(body, typ)
	if err != nil {
		return fhir.Write{}, nil, err
	}
	if err := checkUpdateID(typ, id, res); err != nil {
		return fhir.Write{}, nil, err
	}
	return fhir.Write{Type: typ, ID: id, IfMatch: cur.VersionID, Render: res.Render, Index: res.Index}, body, nil
}

// patchOne patches typ/id in tx (nil: the server's store, outside a
// transaction) and writes the result, under the approval workflow for the
// types it governs. Without If-Match, a concurrent write between the read
// and the write makes it start again.
func (s *Server) patchOne(ctx context.Context, tx TxStore, typ, id string, ifMatch int64, p patchDoc) (out fhir.Outcome, bases []string, err error) {
	st := s.store
	if tx != nil {
		st = tx
	}
	for attempt := 1; ; attempt++ {
		w, body, err := s.patched(ctx, st, typ, id, ifMatch, p)
		if err != nil {
			return out, nil, err
		}
		if bases, err = checkSearchParameter(typ, body); err != nil {
			return out, nil, err
		}
		bases = append(bases, oldSearchParamBases(ctx, st, typ, id)...)
		out, err = s.governedWrite(ctx, tx, typ, id, body, func(ctx context.Context, st fhir.Store) (fhir.Outcome, error) {
			return st.Update(ctx, w)
		})
		if ifMatch == 0 && attempt < maxPatchAttempts && fhir.IsKind(err, fhir.PreconditionFailed) {
			continue
		}
		return out, bases, err
	}
}

// patch handles PATCH [base]/[type]/[id].
func (s *Server) patch(w http.ResponseWriter, r *http.Request) error {
	typ, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
	if !validID.MatchString(id) {
		return fhir.Errorf(fhir.NotFound, "", "%s/%s is not known: %q is not a valid id", typ, id, id)
	}
	p, err := s.readPatch(r)
	if err != nil {
		return err
	}
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	out, bases, err := s.patchOne(r.Context(), nil, typ, id, version, p)
	if err != nil {
		return err
	}
	return s.updated(w, r, out, bases)
}

// conditionalPatch handles PATCH [base]/[type]?[search]: the one match is
// patched; no match is 404, several 412.
func (s *Server) conditionalPatch(w http.ResponseWriter, r *http.Request) error {
	typ := chi.URLParam(r, "type")
	q, err := s.criteria(typ, queryOf(r), "")
	if err != nil {
		return err
	}
	p, err := s.readPatch(r)
	if err != nil {
		return err
	}
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	var out fhir.Outcome
	var bases []string
	err = s.tx.Transaction(r.Context(), func(tx TxStore) error {
		id, err := patchTarget(r.Context(), tx, q)
		if err != nil {
			return err
		}
		out, bases, err = s.patchOne(r.Context(), tx, typ, id, version, p)
		return err
	})
	if err != nil {
		return err
	}
	return s.updated(w, r, out, bases)
}

// patchTarget returns the id of the one resource a conditional patch's
// criteria match: no match is NotFound, several PreconditionFailed.
func patchTarget(ctx context.Context, tx TxStore, q *search.Query) (string, error) {
	matches, more, err := match(ctx, tx, q, 1)
	switch {
	case err != nil:
		return "", err
	case more:
		return "", multipleMatches(q, "conditional patch")
	case len(matches) == 0:
		return "", fhir.Errorf(fhir.NotFound, "", "no resource matches %s: there is nothing to patch", criteriaText(q))
	}
	return matches[0].ID, nil
}
