// Package searchparam is the search parameter registry: the R4 search
// parameters (and custom SearchParameter resources) per resource type, with
// their FHIRPath expressions compiled, and the extraction of a resource's
// search index entries at write time.
package searchparam

import (
	"fmt"
	"sort"
	"sync"

	"github.com/digitaleouder/ouder/conformance/fhirpath"
	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/fhir"
)

// The kinds of search parameter (SearchParameter.type).
const (
	Number    = "number"
	Date      = "date"
	String    = "string"
	Token     = "token"
	Reference = "reference"
	Composite = "composite"
	Quantity  = "quantity"
	URI       = "uri"
	Special   = "special"
)

// Param is one search parameter as it applies to one resource type.
type Param struct {
	// Type is the resource type the parameter is used on.
	Type string
	// Code is the name in the query string.
	Code string
	// Kind is one of the kinds above.
	Kind string
	// URL is the canonical URL of the definition.
	URL string
	// Key is fhir.ParamKey(Type, Code): how index rows name the parameter.
	Key int64
	// Expr extracts the values; nil for parameters that are not indexed
	// (NotIndexed says why).
	Expr *fhirpath.Expr
	// NotIndexed is the reason a parameter has no index ("" when indexed).
	NotIndexed string
	// Targets are the resource types a reference parameter may point to.
	Targets []string
	// Components are the parts of a composite parameter, in order.
	Components []Component
	// Modifiers lists the modifiers the definition allows; empty means the
	// kind's defaults.
	Modifiers []string
	// Custom is set for parameters defined by a SearchParameter resource
	// stored on this server.
	Custom bool
}

// Component is one part of a composite parameter: the kind of the part
// (taken from its definition) and the expression evaluated on each item the
// composite's own expression finds.
type Component struct {
	Kind string
	Expr *fhirpath.Expr
}

// Column parameters are answered from columns of the resources table, not
// from index rows; extraction skips them.
var columnParams = map[string]bool{"_id": true, "_lastUpdated": true}

// IsColumn reports whether code is answered from the resources table itself.
func IsColumn(code string) bool { return columnParams[code] }

// notIndexed lists the R4 parameters that have no index, with the reason.
var notIndexed = map[string]string{
	"_text":    "full-text search of the narrative is not supported",
	"_content": "full-text search of the whole resource is not supported",
	"_query":   "named queries are not supported",
	"near":     "geographic distance search (Location near) is not supported",
}

// componentErrata corrects the component definitions that R4 (4.0.1) gets
// wrong, by composite URL and component expression: DocumentReference
// relationship gives its code component the definition of relatesto (a
// reference) and its target component that of relation (a token), so each
// would be read as the other's kind. R5 has them the right way round.
var componentErrata = map[[2]string]string{
	{"http://hl7.org/fhir/SearchParameter/DocumentReference-relationship", "code"}:   "http://hl7.org/fhir/SearchParameter/DocumentReference-relation",
	{"http://hl7.org/fhir/SearchParameter/DocumentReference-relationship", "target"}: "http://hl7.org/fhir/SearchParameter/DocumentReference-relatesto",
}

// Registry is an immutable set of search parameters. It is safe for
// concurrent use; New builds one with custom parameters added.
type Registry struct {
	byType map[string]map[string]*Param
}

var builtin = sync.OnceValues(func() (*Registry, error) { return build(nil) })

// Builtin returns the registry of the R4 search parameters. The error
// reports a definition whose expression does not compile, which would be a
// defect of the embedded definitions.
func Builtin() (*Registry, error) { return builtin() }

// New returns a registry of the R4 parameters plus the given custom
// definitions (from SearchParameter resources). A custom definition with the
// same code as a built-in one on the same type replaces it. It fails when a
// definition's expression or a component cannot be used.
func New(custom []r4.SearchParam) (*Registry, error) { return build(custom) }

func build(custom []r4.SearchParam) (*Registry, error) {
	reg := &Registry{byType: map[string]map[string]*Param{}}
	byURL := map[string]r4.SearchParam{}
	all := r4.SearchParams()
	for _, sp := range all {
		byURL[sp.URL] = sp
	}
	for _, sp := range custom {
		byURL[sp.URL] = sp
	}
	add := func(sp r4.SearchParam, isCustom bool) error {
		var expr *fhirpath.Expr
		reason := notIndexed[sp.Code]
		if sp.Type == Special && reason == "" {
			reason = "special parameters need their own implementation"
		}
		if sp.Expression == "" && reason == "" {
			reason = "the definition has no expression"
		}
		if reason == "" || sp.Expression != "" {
			e, err := fhirpath.Compile(sp.Expression)
			if err != nil && reason == "" {
				return fmt.Errorf("search parameter %s: %w", sp.URL, err)
			}
			if err == nil && reason == "" {
				expr = e
			}
		}
		var comps []Component
		for _, c := range sp.Component {
			if fixed, ok := componentErrata[[2]string{sp.URL, c.Expression}]; ok && !isCustom {
				c.Definition = fixed
			}
			def, ok := byURL[c.Definition]
			if !ok {
				return fmt.Errorf("search parameter %s: component definition %s is unknown", sp.URL, c.Definition)
			}
			ce, err := fhirpath.Compile(c.Expression)
			if err != nil {
				return fmt.Errorf("search parameter %s: component %s: %w", sp.URL, c.Definition, err)
			}
			comps = append(comps, Component{Kind: def.Type, Expr: ce})
		}
		for _, base := range bases(sp.Base) {
			if reg.byType[base] == nil {
				reg.byType[base] = map[string]*Param{}
			}
			reg.byType[base][sp.Code] = &Param{
				Type: base, Code: sp.Code, Kind: sp.Type, URL: sp.URL, Key: fhir.ParamKey(base, sp.Code),
				Expr: expr, NotIndexed: reason, Targets: sp.Target, Components: comps,
				Modifiers: sp.Modifier, Custom: isCustom,
			}
		}
		return nil
	}
	for _, sp := range all {
		if err := add(sp, false); err != nil {
			return nil, err
		}
	}
	for _, sp := range custom {
		if err := add(sp, true); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// bases expands Resource and DomainResource onto the concrete types.
func bases(base []string) []string {
	var out []string
	for _, b := range base {
		switch b {
		case "Resource":
			out = append(out, r4.ResourceTypes()...)
		case "DomainResource":
			for _, t := range r4.ResourceTypes() {
				if td, ok := r4.Type(t); ok && isDomainResource(td) {
					out = append(out, t)
				}
			}
		default:
			out = append(out, b)
		}
	}
	return out
}

// isDomainResource reports whether a resource type derives from
// DomainResource (all but Binary, Bundle and Parameters).
func isDomainResource(td *r4.TypeDef) bool { return td.Base == "DomainResource" }

// Lookup returns the parameter code of resource type typ.
func (r *Registry) Lookup(typ, code string) (*Param, bool) {
	p, ok := r.byType[typ][code]
	return p, ok
}

// Params returns the parameters of resource type typ, sorted by code.
func (r *Registry) Params(typ string) []*Param {
	m := r.byType[typ]
	out := make([]*Param, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}
