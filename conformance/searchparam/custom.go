package searchparam

import (
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/digitaleouder/ouder/conformance/fhirpath"
	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/fhir"
)

// Definition reads a SearchParameter resource as a definition this server
// can index. It checks what structural validation cannot: a searchable kind,
// known base types, an expression in the supported FHIRPath subset, known
// component definitions. Failures are *fhir.Error of kind Invalid pointing
// at the element.
func Definition(body []byte) (r4.SearchParam, error) {
	var sp r4.SearchParam
	var status struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &sp); err != nil {
		return sp, fhir.Errorf(fhir.Invalid, "SearchParameter", "the SearchParameter cannot be read: %v", err)
	}
	_ = json.Unmarshal(body, &status)
	switch sp.Type {
	case Number, Date, String, Token, Reference, Quantity, URI, Composite:
	default:
		return sp, fhir.Errorf(fhir.Invalid, "SearchParameter.type", "SearchParameter.type %q cannot be indexed by this server", sp.Type)
	}
	for i, b := range sp.Base {
		if b != "Resource" && b != "DomainResource" && !r4.IsResourceType(b) {
			return sp, fhir.Errorf(fhir.Invalid, fmt.Sprintf("SearchParameter.base[%d]", i), "%q is not a resource type", b)
		}
	}
	if sp.Expression == "" {
		return sp, fhir.Errorf(fhir.Invalid, "SearchParameter.expression", "a custom search parameter needs an expression to be indexed")
	}
	if _, err := fhirpath.Compile(sp.Expression); err != nil {
		return sp, fhir.Errorf(fhir.Invalid, "SearchParameter.expression", "%v", err)
	}
	if IsColumn(sp.Code) {
		return sp, fhir.Errorf(fhir.Invalid, "SearchParameter.code", "%s is answered by the server itself and cannot be redefined", sp.Code)
	}
	for i, c := range sp.Component {
		if _, ok := r4.SearchParamByURL(c.Definition); !ok {
			return sp, fhir.Errorf(fhir.Invalid, fmt.Sprintf("SearchParameter.component[%d].definition", i), "component definition %s is unknown", c.Definition)
		}
		if _, err := fhirpath.Compile(c.Expression); err != nil {
			return sp, fhir.Errorf(fhir.Invalid, fmt.Sprintf("SearchParameter.component[%d].expression", i), "%v", err)
		}
	}
	return sp, nil
}

// Live is the registry in force, swapped atomically when custom
// SearchParameters change. Readers take one snapshot per request.
type Live struct{ p atomic.Pointer[Registry] }

// NewLive returns a Live holding r.
func NewLive(r *Registry) *Live {
	l := &Live{}
	l.p.Store(r)
	return l
}

// Get returns the registry in force.
func (l *Live) Get() *Registry { return l.p.Load() }

// Set makes r the registry in force.
func (l *Live) Set(r *Registry) { l.p.Store(r) }
