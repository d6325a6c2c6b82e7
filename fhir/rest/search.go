package rest

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rawjson"
	"github.com/digitaleouder/ouder/fhir/search"
)

// searchParams returns the search parameters of a request: the query
// string, merged with the form body of POST .../_search.
func searchParams(r *http.Request) (url.Values, error) {
	params := queryOf(r)
	if r.Method != http.MethodPost {
		return params, nil
	}
	merged := url.Values{}
	for k, v := range params {
		merged[k] = append(merged[k], v...)
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, fhir.Errorf(fhir.UnsupportedMediaType, "", "POST _search takes application/x-www-form-urlencoded, not %q", ct)
	}
	if err := r.ParseForm(); err != nil {
		return nil, fhir.Errorf(fhir.Invalid, "", "the form body cannot be read: %v", err)
	}
	for k, v := range r.PostForm {
		merged[k] = append(merged[k], v...)
	}
	return merged, nil
}

// handlingStrict reports Prefer: handling=strict.
func handlingStrict(r *http.Request) bool {
	for _, h := range r.Header.Values("Prefer") {
		for _, p := range strings.FieldsFunc(h, func(c rune) bool { return c == ',' || c == ';' }) {
			if k, v, _ := strings.Cut(strings.TrimSpace(p), "="); strings.EqualFold(k, "handling") && strings.Trim(v, `"`) == "strict" {
				return true
			}
		}
	}
	return false
}

// search handles GET [base]/[type], POST [base]/[type]/_search and the
// system-level forms (GET [base]?_type=..., POST [base]/_search).
func (s *Server) search(w http.ResponseWriter, r *http.Request) error {
	params, err := searchParams(r)
	if err != nil {
		return err
	}
	var types []string
	var compartment *search.Compartment
	if ct := chi.URLParam(r, "compartmentType"); ct != "" {
		// GET [base]/Patient/[id]/[type]: a search in the Patient compartment.
		owner, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
		params, ok := compartments[owner][ct]
		if !ok || !s.isType(ct) {
			return fhir.Errorf(fhir.NotFound, "", "%s is not in the %s compartment (http://hl7.org/fhir/R4/compartmentdefinition-patient.html)", ct, owner)
		}
		if !validID.MatchString(id) {
			return fhir.Errorf(fhir.NotFound, "", "%s/%s is not known", owner, id)
		}
		types = []string{ct}
		compartment = &search.Compartment{Type: owner, ID: id, Params: params}
	} else if typ := chi.URLParam(r, "type"); typ != "" {
		types = []string{typ}
	} else {
		for _, v := range params["_type"] {
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					types = append(types, t)
				}
			}
		}
	}
	parser := *s.searchParser
	parser.Registry = s.registry()
	q, err := parser.Parse(types, params, handlingStrict(r))
	if err != nil {
		return err
	}
	if chi.URLParam(r, "type") == "" && len(q.Types) > 0 {
		// Every type of _type must be one the caller may search: a 403
		// says so, where hiding the type would answer with an empty,
		// misleading result.
		ctx, err := s.access(r.Context(), auth.SearchSystem, q.Types...)
		if err != nil {
			return err
		}
		r = r.WithContext(ctx)
	}
	q.Compartment = compartment
	res, err := s.searcher.Search(r.Context(), q)
	if err != nil {
		return err
	}
	var sub func(string) func(string) bool
	if q.Summary != "count" {
		if sub, err = subsetFor(q.Summary, strings.Join(q.Elements, ",")); err != nil {
			return err
		}
	}
	b := &bundle{typ: "searchset", total: res.Total, now: s.now()}
	self := q.Encode()
	noteQuery(r.Context(), self.Encode()) // audit.go
	link := func(rel, cursor string) {
		v := url.Values{}
		for k, vs := range self {
			v[k] = vs
		}
		if cursor != "" {
			v.Set(cursorParam, cursor)
		}
		if chi.URLParam(r, "type") == "" && len(types) > 0 {
			v.Set("_type", strings.Join(types, ","))
		}
		b.links = append(b.links, link{rel, s.searchURL(r, types, v)})
	}
	selfCursor := q.Cursor
	link("self", selfCursor)
	if res.Next != "" {
		link("next", res.Next)
	}
	if res.Prev != "" {
		link("previous", res.Prev)
	}
	add := func(list []fhir.Resource, mode string) error {
		for _, m := range list {
			body := m.Body
			// _elements shapes the matches only; _summary applies to all.
			if sub != nil && (mode == "match" || len(q.Elements) == 0) {
				if body, err = rawjson.Subset(m.Body, sub(m.Type)); err != nil {
					return err
				}
			}
			b.entries = append(b.entries, bundleEntry{fullURL: s.base + "/" + m.Type + "/" + m.ID, resource: body, searchMode: mode})
		}
		return nil
	}
	if err := add(res.Matches, "match"); err != nil {
		return err
	}
	if err := add(res.Included, "include"); err != nil {
		return err
	}
	if len(q.Warnings) > 0 {
		b.entries = append(b.entries, bundleEntry{resource: outcome(q.Warnings, "not-supported"), searchMode: "outcome"})
	}
	s.writeJSON(w, r, http.StatusOK, b.bytes())
	return nil
}

// compartments are the compartment definitions the server serves:
// compartment type -> resource type -> the parameters that place a resource
// in it. Types with no parameters are not in the compartment.
var compartments = func() map[string]map[string][]string {
	out := map[string]map[string][]string{"Patient": {}}
	for typ, params := range r4.PatientCompartment() {
		if len(params) > 0 {
			out["Patient"][typ] = params
		}
	}
	return out
}()

// searchURL is the URL of a search page: the type's (or the system's, or
// the compartment's) search URL with the normalised parameters.
func (s *Server) searchURL(r *http.Request, types []string, v url.Values) string {
	u := s.base
	if typ := chi.URLParam(r, "type"); typ != "" {
		u += "/" + typ
		if ct := chi.URLParam(r, "compartmentType"); ct != "" {
			u += "/" + chi.URLParam(r, "id") + "/" + ct
		}
	}
	if enc := v.Encode(); enc != "" {
		u += "?" + enc
	}
	return u
}
