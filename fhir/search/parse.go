package search

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
)

// Parser parses search requests against a registry of search parameters.
// Registry must be set; the other fields have defaults. A Parser is safe for
// concurrent use once configured.
type Parser struct {
	Registry *searchparam.Registry
	// Fold normalises string values; it must be the normalisation the
	// index applies at write time. Nil means searchparam.Fold.
	Fold func(string) string
	// DefaultCount is the page size when _count is absent (default 20);
	// MaxCount caps _count (default 1000).
	DefaultCount, MaxCount int
	// Loc is the zone of dates given without one (default UTC).
	Loc *time.Location
	// Base is the server's base URL ("https://example.org/fhir"): absolute
	// references that start with it are read as local Type/id references.
	Base string
}

// commonParams are the parameters that may be used when several resource
// types are searched: those defined on Resource and indexed.
var commonParams = map[string]bool{
	"_id": true, "_lastUpdated": true, "_tag": true, "_profile": true, "_security": true, "_source": true,
}

// ignored are parameters of the HTTP interaction, not of the search.
var ignored = map[string]bool{"_format": true, "_pretty": true, "_type": true}

// Parse reads a search request on the given resource types: the one type of
// [base]/[type]?..., or the _type list of a system search (empty: all
// types). params is the query string merged with the form body of a POST
// _search. strict is Prefer: handling=strict.
//
// Errors are *fhir.Error of kind Invalid, with the parameter (as written in
// the request) as the issue's expression: a malformed value, an unknown
// modifier, a chain or include that cannot be resolved, a bad result
// parameter. Unknown parameters, and parameters this server does not index,
// are an Invalid error when strict and otherwise skipped with a warning in
// Query.Warnings. Modifiers that are valid FHIR but not implemented here
// (:in, :not-in, token and reference :above/:below) are NotSupported errors.
// A Parser without Registry gives an Internal error.
func (p *Parser) Parse(types []string, params url.Values, strict bool) (*Query, error) {
	if p.Registry == nil {
		return nil, &fhir.Error{Kind: fhir.Internal, Err: errors.New("search.Parser has no Registry")}
	}
	s := &state{p: p, strict: strict, fold: p.Fold, loc: p.Loc}
	if s.fold == nil {
		s.fold = searchparam.Fold
	}
	if s.loc == nil {
		s.loc = time.UTC
	}
	q := &Query{Total: "none", Count: p.defaultCount(), Base: strings.TrimSuffix(p.Base, "/")}
	s.q = q
	for _, t := range types {
		if !r4.IsResourceType(t) {
			return nil, fhir.Errorf(fhir.Invalid, "_type", "%q is not a resource type", t)
		}
		if !slices.Contains(q.Types, t) {
			q.Types = append(q.Types, t)
		}
	}
	s.rep = "Account"
	if len(q.Types) > 0 {
		s.rep = q.Types[0]
	} else if all := r4.ResourceTypes(); len(all) > 0 {
		s.rep = all[0]
	}

	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if err := s.param(key, params[key]); err != nil {
			return nil, err
		}
	}
	// subject:Patient=1 and subject=Patient/1 are one parameter once
	// normalised; order by that name so that Encode and Parse agree.
	slices.SortStableFunc(q.Where, func(a, b Clause) int { return strings.Compare(clauseKey(&a), clauseKey(&b)) })
	return q, nil
}

func (p *Parser) defaultCount() int {
	n := p.DefaultCount
	if n <= 0 {
		n = 20
	}
	return min(n, p.maxCount())
}

func (p *Parser) maxCount() int {
	if p.MaxCount <= 0 {
		return 1000
	}
	return p.MaxCount
}

// state is one Parse call.
type state struct {
	p      *Parser
	q      *Query
	strict bool
	fold   func(string) string
	loc    *time.Location
	rep    string // the type whose definitions stand for the common parameters
}

// single reports whether exactly one type is searched.
func (s *state) single() bool { return len(s.q.Types) == 1 }

// warn records that parameter key was ignored, or fails in strict mode.
func (s *state) warn(key, msg string) error {
	if s.strict {
		return fhir.Errorf(fhir.Invalid, key, "%s", msg)
	}
	s.q.Warnings = append(s.q.Warnings, fhir.Issue{
		Severity: "warning", Code: "not-supported", Diagnostics: msg + "; the parameter was ignored", Expression: []string{key},
	})
	return nil
}

// once rejects a second occurrence of a single-valued result parameter.
func (s *state) once(key string, vals []string) (string, error) {
	if len(vals) > 1 {
		return "", fhir.Errorf(fhir.Invalid, key, "%s may be given only once", key)
	}
	return strings.TrimSpace(vals[0]), nil
}

// param handles all occurrences of one parameter name.
func (s *state) param(key string, vals []string) error {
	if len(vals) == 0 || key == "" || ignored[key] {
		return nil // "=x" names nothing
	}
	base, mod, hasMod := strings.Cut(key, ":")
	if strings.HasPrefix(key, "_has:") {
		base, hasMod = "_has", false
	}
	switch base {
	case "_count", "_sort", "_total", "_summary", "_elements", "_cursor", "_contained", "_containedType":
		if hasMod {
			return fhir.Errorf(fhir.Invalid, key, "%s takes no modifier", base)
		}
		return s.result(key, vals)
	case "_include", "_revinclude":
		iterate := false
		switch {
		case !hasMod:
		case mod == "iterate" || mod == "recurse":
			iterate = true
		default:
			return fhir.Errorf(fhir.Invalid, key, "unknown modifier :%s on %s (use :iterate)", mod, base)
		}
		for _, v := range vals {
			if err := s.include(key, base == "_revinclude", iterate, strings.TrimSpace(v)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, v := range vals {
		if v == "" {
			continue // an empty value is no criterion
		}
		c, err := s.filter(key, v)
		if err != nil {
			return err
		}
		if c != nil {
			s.q.Where = append(s.q.Where, *c)
		}
	}
	return nil
}

// filter parses one occurrence of a filter parameter. It returns nil, nil
// when the parameter was skipped with a warning or has no values.
func (s *state) filter(key, value string) (*Clause, error) {
	typ := s.rep
	if !s.single() {
		code, _, _ := strings.Cut(key, ":")
		code, _, _ = strings.Cut(code, ".")
		if !commonParams[code] {
			if prm, ok := s.p.Registry.Lookup(s.rep, code); ok && prm.NotIndexed != "" {
				return nil, s.warn(key, fmt.Sprintf("search parameter %s is not supported: %s", code, prm.NotIndexed))
			}
			if code == "_has" || s.definedOnSearched(code) {
				return nil, fhir.Errorf(fhir.Invalid, key,
					"%s is not a parameter of every resource type searched; a search over several types may only use _id, _lastUpdated, _tag, _profile, _security and _source", code)
			}
			return nil, s.warn(key, fmt.Sprintf("unknown search parameter %s", code))
		}
	}
	r := &resolver{s: s}
	c, err := r.clause(typ, key, value, 0)
	if err != nil {
		var pe *paramError
		if !errors.As(err, &pe) {
			return nil, err
		}
		switch {
		case pe.empty:
			return nil, nil
		case pe.unknown:
			return nil, s.warn(key, pe.msg)
		default:
			return nil, fhir.Errorf(pe.kind, key, "%s", pe.msg)
		}
	}
	return &c, nil
}

// definedOnSearched reports whether code is a parameter of one of the types
// searched (of any type, for a search of all types).
func (s *state) definedOnSearched(code string) bool {
	types := s.q.Types
	if len(types) == 0 {
		types = r4.ResourceTypes()
	}
	for _, t := range types {
		if _, ok := s.p.Registry.Lookup(t, code); ok {
			return true
		}
	}
	return false
}

// result handles the result parameters other than _include/_revinclude.
func (s *state) result(key string, vals []string) error {
	if key == "_sort" || key == "_elements" {
		// Lists: several occurrences add up.
		var items []string
		for _, v := range vals {
			if strings.TrimSpace(v) == "" {
				continue
			}
			for it := range strings.SplitSeq(v, ",") {
				it = strings.TrimSpace(it)
				if it == "" {
					return fhir.Errorf(fhir.Invalid, key, "%s has an empty item in %q", key, v)
				}
				items = append(items, it)
			}
		}
		if key == "_sort" {
			return s.sort(items)
		}
		return s.elements(items)
	}
	v, err := s.once(key, vals)
	if err != nil || v == "" {
		return err
	}
	q := s.q
	switch key {
	case "_count":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fhir.Errorf(fhir.Invalid, key, "_count must be a whole number of 0 or more, not %q", v)
		}
		q.Count = min(n, s.p.maxCount())
	case "_total":
		if v != "none" && v != "estimate" && v != "accurate" {
			return fhir.Errorf(fhir.Invalid, key, "_total must be none, estimate or accurate, not %q", v)
		}
		q.Total = v
	case "_summary":
		switch v {
		case "true", "text", "data", "count", "false":
			q.Summary = v
		default:
			return fhir.Errorf(fhir.Invalid, key, "_summary must be true, text, data, count or false, not %q", v)
		}
	case "_cursor":
		q.Cursor = v
	case "_contained":
		switch v {
		case "false":
		case "true", "both":
			return s.warn(key, "searching contained resources (_contained) is not supported")
		default:
			return fhir.Errorf(fhir.Invalid, key, "_contained must be true, false or both, not %q", v)
		}
	case "_containedType":
		switch v {
		case "container":
		case "contained":
			return s.warn(key, "returning contained resources on their own (_containedType=contained) is not supported")
		default:
			return fhir.Errorf(fhir.Invalid, key, "_containedType must be container or contained, not %q", v)
		}
	}
	return nil
}

// sort reads the items of _sort: [-]code.
func (s *state) sort(items []string) error {
	for _, it := range items {
		code, desc := strings.CutPrefix(it, "-")
		prm, ok := s.p.Registry.Lookup(s.rep, code)
		if ok && !s.single() && !commonParams[code] {
			return fhir.Errorf(fhir.Invalid, "_sort", "cannot sort by %s when searching several resource types; use _id, _lastUpdated or another common parameter", code)
		}
		switch {
		case !ok:
			return fhir.Errorf(fhir.Invalid, "_sort", "cannot sort by %s: it is not a search parameter of %s", code, s.typesText())
		case prm.NotIndexed != "":
			return fhir.Errorf(fhir.Invalid, "_sort", "cannot sort by %s: %s", code, prm.NotIndexed)
		case prm.Kind == searchparam.Composite || prm.Kind == searchparam.Special:
			return fhir.Errorf(fhir.Invalid, "_sort", "cannot sort by %s: a %s parameter has no order", code, prm.Kind)
		}
		s.q.Sort = append(s.q.Sort, Sort{Param: prm, Desc: desc})
	}
	return nil
}

var elementRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// elements reads the items of _elements: top-level element names.
func (s *state) elements(items []string) error {
	for _, it := range items {
		if !elementRE.MatchString(it) {
			return fhir.Errorf(fhir.Invalid, "_elements", "%q is not an element name", it)
		}
		if !slices.Contains(s.q.Elements, it) {
			s.q.Elements = append(s.q.Elements, it)
		}
	}
	return nil
}

func (s *state) typesText() string {
	if len(s.q.Types) == 0 {
		return "every resource type"
	}
	return strings.Join(s.q.Types, ", ")
}

// include reads one _include or _revinclude value: SourceType:param[:TargetType],
// SourceType:* or (for _include) *.
func (s *state) include(key string, rev, iterate bool, v string) error {
	if v == "" {
		return nil
	}
	name := "_include"
	if rev {
		name = "_revinclude"
	}
	inc := Include{Iterate: iterate}
	if v == "*" {
		if rev {
			return fhir.Errorf(fhir.Invalid, key, "_revinclude needs SourceType:parameter, not *")
		}
		s.q.Include = append(s.q.Include, inc)
		return nil
	}
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return fhir.Errorf(fhir.Invalid, key, "%s must be SourceType:parameter or SourceType:parameter:TargetType, not %q", name, v)
	}
	inc.SourceType = parts[0]
	if !r4.IsResourceType(inc.SourceType) {
		return fhir.Errorf(fhir.Invalid, key, "%s names %q, which is not a resource type", name, inc.SourceType)
	}
	if parts[1] == "*" && !rev && len(parts) == 2 {
		return s.addInclude(key, rev, inc)
	}
	prm, ok := s.p.Registry.Lookup(inc.SourceType, parts[1])
	switch {
	case !ok:
		return fhir.Errorf(fhir.Invalid, key, "%s names %s:%s, which is not a search parameter of %s", name, inc.SourceType, parts[1], inc.SourceType)
	case prm.Kind != searchparam.Reference:
		return fhir.Errorf(fhir.Invalid, key, "%s names %s:%s, a %s parameter; only reference parameters can be followed", name, inc.SourceType, parts[1], prm.Kind)
	case prm.NotIndexed != "":
		return fhir.Errorf(fhir.Invalid, key, "%s names %s:%s, which is not indexed: %s", name, inc.SourceType, parts[1], prm.NotIndexed)
	}
	inc.Param = prm
	if len(parts) == 3 {
		inc.TargetType = parts[2]
		if !r4.IsResourceType(inc.TargetType) {
			return fhir.Errorf(fhir.Invalid, key, "%s names %q, which is not a resource type", name, inc.TargetType)
		}
		if !slices.Contains(prm.Targets, inc.TargetType) {
			return fhir.Errorf(fhir.Invalid, key, "%s:%s cannot refer to %s (it refers to %s)", inc.SourceType, prm.Code, inc.TargetType, strings.Join(prm.Targets, ", "))
		}
	}
	return s.addInclude(key, rev, inc)
}

// addInclude records inc, or skips it with a warning when it cannot apply to
// the types searched (an _include from another type, a _revinclude that does
// not point to them). With :iterate it may apply to included resources, so
// it is always kept.
func (s *state) addInclude(key string, rev bool, inc Include) error {
	if !inc.Iterate && len(s.q.Types) > 0 {
		applies := false
		if rev {
			for _, t := range s.q.Types {
				if (inc.TargetType == "" || inc.TargetType == t) && slices.Contains(inc.Param.Targets, t) {
					applies = true
				}
			}
		} else {
			applies = slices.Contains(s.q.Types, inc.SourceType)
		}
		if !applies {
			return s.warn(key, fmt.Sprintf("%s cannot apply to a search of %s (add :iterate to follow it from included resources)", includeText(inc), s.typesText()))
		}
	}
	if rev {
		s.q.RevInclude = append(s.q.RevInclude, inc)
	} else {
		s.q.Include = append(s.q.Include, inc)
	}
	return nil
}
