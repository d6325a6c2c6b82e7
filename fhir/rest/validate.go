package rest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/digitaleouder/ouder/fhir"
)

// validateParameters is the input of $validate sent as a Parameters
// resource (http://hl7.org/fhir/R4/resource-operation-validate.html).
type validateParameters struct {
	ResourceType string `json:"resourceType"`
	Parameter    []struct {
		Name           string          `json:"name"`
		Resource       json.RawMessage `json:"resource"`
		ValueURI       string          `json:"valueUri"`
		ValueCanonical string          `json:"valueCanonical"`
		ValueCode      string          `json:"valueCode"`
	} `json:"parameter"`
}

// validateRequest is what $validate is asked: the resource (nil: the stored
// one), the profiles to validate against (none: those the resource claims
// and the selection rule picks) and the mode.
type validateRequest struct {
	body     []byte
	profiles []string
	mode     string
}

// validate handles $validate: POST [type]/$validate, and GET or POST
// [type]/[id]/$validate. The resource is the request body (the raw
// resource, or a Parameters resource with a resource part), or else, at
// instance level, the stored resource; profile (query or Parameters,
// repeatable) names the profiles to validate against instead of those the
// resource claims and the selection rule picks; mode is create, update or
// delete. It answers 200 with an OperationOutcome listing every issue, or
// one information issue "valid", and stores nothing. It answers an error
// status only when the request itself is wrong (400) or, at instance
// level, the resource to validate does not exist (404, 410).
func (s *Server) validate(w http.ResponseWriter, r *http.Request) error {
	typ, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
	if id != "" && !validID.MatchString(id) {
		return fhir.Errorf(fhir.NotFound, "", "%s/%s is not known: %q is not a valid id", typ, id, id)
	}
	req, err := s.validateRequest(r, typ)
	if err != nil {
		return err
	}
	switch req.mode {
	case "", "create", "update":
	case "delete":
		if id == "" {
			return fhir.Errorf(fhir.Invalid, "", "mode delete validates the deletion of one resource: use [type]/[id]/$validate")
		}
		if _, err := s.store.Read(r.Context(), typ, id); err != nil {
			return err
		}
		return s.validated(w, r, nil, typ+"/"+id+" may be deleted")
	default:
		return fhir.Errorf(fhir.Invalid, "", "mode %q is not one of create, update and delete", req.mode)
	}
	if req.body == nil {
		if id == "" {
			return fhir.Errorf(fhir.Invalid, "", "$validate needs a resource: send it as the body, or as the resource part of a Parameters body")
		}
		stored, err := s.store.Read(r.Context(), typ, id)
		if err != nil {
			return err
		}
		req.body = stored.Body
	}
	issues, err := s.parser.Check(req.body, typ, req.profiles)
	if err != nil {
		return err
	}
	issues = append(issues, checkValidateID(req, typ, id)...)
	if len(issues) == 0 {
		if _, err := checkSearchParameter(typ, req.body); err != nil {
			var fe *fhir.Error
			if !errors.As(err, &fe) {
				return err
			}
			issues = append(issues, fe.Issues...)
		}
	}
	return s.validated(w, r, issues, "valid")
}

// checkValidateID checks the resource's id against the mode and the URL: an
// update needs an id, and at instance level it must be the URL's.
func checkValidateID(req validateRequest, typ, id string) []fhir.Issue {
	var rid struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(req.body, &rid); err != nil {
		return nil // the parser has reported it
	}
	switch {
	case id != "" && rid.ID != "" && rid.ID != id:
		return []fhir.Issue{{Severity: "error", Code: "invalid", Expression: []string{typ + ".id"},
			Diagnostics: "the resource id " + rid.ID + " differs from the URL id " + id}}
	case req.mode == "update" && rid.ID == "":
		return []fhir.Issue{{Severity: "error", Code: "required", Expression: []string{typ + ".id"},
			Diagnostics: "an update must carry the id of the resource it replaces"}}
	}
	return nil
}

// validateRequest reads the parameters of $validate from the query and the
// body.
func (s *Server) validateRequest(r *http.Request, typ string) (validateRequest, error) {
	q := r.URL.Query()
	req := validateRequest{profiles: q["profile"], mode: q.Get("mode")}
	if r.Method != http.MethodPost || r.ContentLength == 0 {
		return req, nil // no body: the stored resource, or none
	}
	body, err := s.readBody(r)
	if err != nil {
		return req, err
	}
	var head validateParameters
	if err := json.Unmarshal(body, &head); err != nil || head.ResourceType != "Parameters" || typ == "Parameters" {
		req.body = body // the raw resource; the parser reports what is wrong with it
		return req, nil
	}
	for i, p := range head.Parameter {
		switch p.Name {
		case "resource":
			if len(p.Resource) == 0 {
				return req, fhir.Errorf(fhir.Invalid, "Parameters.parameter["+strconv.Itoa(i)+"]", "the resource parameter has no resource")
			}
			req.body = p.Resource
		case "profile":
			switch {
			case p.ValueURI != "":
				req.profiles = append(req.profiles, p.ValueURI)
			case p.ValueCanonical != "":
				req.profiles = append(req.profiles, p.ValueCanonical)
			default:
				return req, fhir.Errorf(fhir.Invalid, "Parameters.parameter["+strconv.Itoa(i)+"]", "the profile parameter has no valueUri or valueCanonical")
			}
		case "mode":
			req.mode = p.ValueCode
		default:
			return req, fhir.Errorf(fhir.Invalid, "Parameters.parameter["+strconv.Itoa(i)+"].name", "$validate has no parameter %q (resource, profile, mode)", p.Name)
		}
	}
	return req, nil
}

// validated answers $validate: 200 with the issues, or with one information
// issue saying msg when there are none.
func (s *Server) validated(w http.ResponseWriter, r *http.Request, issues []fhir.Issue, msg string) error {
	if len(issues) == 0 {
		issues = []fhir.Issue{{Severity: "information", Code: "informational", Diagnostics: msg}}
	}
	s.writeJSON(w, r, http.StatusOK, outcome(issues, "invalid"))
	return nil
}
