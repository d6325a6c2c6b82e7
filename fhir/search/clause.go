package search

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
)

// Limits on one parameter, so that a short query string cannot expand into
// an enormous query: Provenance.target alone may point to every type.
const (
	maxDepth = 4    // chain and _has links in one parameter
	maxNodes = 1000 // clauses one parameter may expand to
)

// paramError is a problem with one parameter, before it is turned into a
// *fhir.Error (or a warning) naming the parameter as written.
type paramError struct {
	kind    fhir.Kind
	msg     string
	unknown bool // unknown or not indexed: a warning unless strict
	empty   bool // no values: the parameter is no criterion
	fatal   bool // a limit: never masked by another chain target
}

func (e *paramError) Error() string { return e.msg }

func invalidf(format string, args ...any) error {
	return &paramError{kind: fhir.Invalid, msg: fmt.Sprintf(format, args...)}
}

func unknownf(format string, args ...any) error {
	return &paramError{kind: fhir.Invalid, msg: fmt.Sprintf(format, args...), unknown: true}
}

func notSupportedf(format string, args ...any) error {
	return &paramError{kind: fhir.NotSupported, msg: fmt.Sprintf(format, args...)}
}

var errEmpty = &paramError{kind: fhir.Invalid, msg: "no value", empty: true}

// resolver expands the name of one filter parameter (with its modifiers,
// chains and _has) into a Clause.
type resolver struct {
	s     *state
	nodes int
}

// clause parses key (the parameter name, from one point in a chain on) on
// resource type typ, with value the raw value of the occurrence.
func (r *resolver) clause(typ, key, value string, depth int) (Clause, error) {
	r.nodes++
	if r.nodes > maxNodes {
		return Clause{}, &paramError{kind: fhir.Invalid, fatal: true,
			msg: "the chain reaches too many resource types; name the type of each link with a :Type modifier"}
	}
	if depth > maxDepth {
		return Clause{}, &paramError{kind: fhir.Invalid, fatal: true,
			msg: fmt.Sprintf("chains and _has may be at most %d levels deep", maxDepth)}
	}
	if rest, ok := strings.CutPrefix(key, "_has:"); ok {
		return r.has(typ, rest, value, depth)
	}
	head, rest, chained := strings.Cut(key, ".")
	code, mod, hasMod := strings.Cut(head, ":")
	if hasMod && mod == "" {
		return Clause{}, invalidf("%s has an empty modifier", code)
	}
	prm, ok := r.s.p.Registry.Lookup(typ, code)
	switch {
	case !ok:
		return Clause{}, unknownf("unknown search parameter %s for %s", code, typ)
	case prm.NotIndexed != "":
		return Clause{}, unknownf("search parameter %s of %s is not supported: %s", code, typ, prm.NotIndexed)
	}
	if chained {
		return r.chain(prm, mod, hasMod, rest, value, depth)
	}
	return r.s.leaf(prm, mod, hasMod, value)
}

// chain resolves prm[:mod].rest: the reference parameter prm, followed to
// each target type that has the next parameter.
func (r *resolver) chain(prm *searchparam.Param, mod string, hasMod bool, rest, value string, depth int) (Clause, error) {
	if prm.Kind != searchparam.Reference {
		return Clause{}, invalidf("%s is a %s parameter; only reference parameters can be chained", prm.Code, prm.Kind)
	}
	if rest == "" {
		return Clause{}, invalidf("the chain after %s names no parameter", prm.Code)
	}
	targets := slices.Clone(prm.Targets)
	if hasMod {
		if !r4.IsResourceType(mod) {
			return Clause{}, invalidf("in a chain the modifier of %s must be a resource type; %q is not one", prm.Code, mod)
		}
		if len(prm.Targets) > 0 && !slices.Contains(prm.Targets, mod) {
			return Clause{}, invalidf("%s of %s cannot refer to %s (it refers to %s)", prm.Code, prm.Type, mod, strings.Join(prm.Targets, ", "))
		}
		targets = []string{mod}
	}
	slices.Sort(targets)
	reverse := strings.HasPrefix(rest, "_has:")
	next := rest
	if !reverse {
		next, _, _ = strings.Cut(next, ".")
		next, _, _ = strings.Cut(next, ":")
	}
	var links []Link
	var first error
	for _, t := range targets {
		if !reverse {
			if _, ok := r.s.p.Registry.Lookup(t, next); !ok {
				continue
			}
		}
		c, err := r.clause(t, rest, value, depth+1)
		if err != nil {
			var pe *paramError
			if !errors.As(err, &pe) || pe.empty || pe.fatal {
				return Clause{}, err
			}
			// A target on which the rest does not apply (another kind of
			// parameter, not indexed) is left out when others match.
			if first == nil || (isUnknown(first) && !pe.unknown) {
				first = err
			}
			continue
		}
		links = append(links, Link{Type: t, Next: c})
	}
	if len(links) == 0 {
		if first != nil {
			return Clause{}, first
		}
		return Clause{}, unknownf("no resource type that %s of %s refers to has a search parameter %s", prm.Code, prm.Type, next)
	}
	name := prm.Code
	if hasMod {
		name += ":" + mod
	}
	return Clause{Param: prm, Chain: &Chain{Targets: links, Name: name + "." + rest, Value: value}}, nil
}

func isUnknown(err error) bool {
	var pe *paramError
	return errors.As(err, &pe) && pe.unknown
}

// has resolves the rest of _has:Type:reference:parameter on resource type
// typ, the type the reference must point to.
func (r *resolver) has(typ, rest, value string, depth int) (Clause, error) {
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return Clause{}, invalidf("_has must have the form _has:Type:reference:parameter")
	}
	hasType, refCode := parts[0], parts[1]
	if !r4.IsResourceType(hasType) {
		return Clause{}, invalidf("_has names %q, which is not a resource type", hasType)
	}
	ref, ok := r.s.p.Registry.Lookup(hasType, refCode)
	switch {
	case !ok:
		return Clause{}, invalidf("_has names %s:%s, which is not a search parameter of %s", hasType, refCode, hasType)
	case ref.Kind != searchparam.Reference:
		return Clause{}, invalidf("_has names %s:%s, a %s parameter; it must be a reference", hasType, refCode, ref.Kind)
	case ref.NotIndexed != "":
		return Clause{}, invalidf("_has names %s:%s, which is not indexed: %s", hasType, refCode, ref.NotIndexed)
	case len(ref.Targets) > 0 && !slices.Contains(ref.Targets, typ):
		return Clause{}, invalidf("%s:%s cannot refer to %s (it refers to %s)", hasType, refCode, typ, strings.Join(ref.Targets, ", "))
	}
	next, err := r.clause(hasType, parts[2], value, depth+1)
	if err != nil {
		return Clause{}, err
	}
	return Clause{Has: &Has{Type: hasType, RefParam: ref, Next: next}}, nil
}

// leaf parses the values of prm[:mod]=value, the last link of a parameter.
func (s *state) leaf(prm *searchparam.Param, mod string, hasMod bool, value string) (Clause, error) {
	c := Clause{Param: prm}
	if hasMod && mod == "missing" {
		var b bool
		switch value {
		case "true":
			b = true
		case "false":
		case "":
			return Clause{}, errEmpty
		default:
			return Clause{}, invalidf(":missing takes true or false, not %q", value)
		}
		c.Missing = &b
		return c, nil
	}
	var refType string
	if hasMod {
		var err error
		if c.Modifier, refType, err = modifier(prm, mod); err != nil {
			return Clause{}, err
		}
	}
	sp := spec{kind: prm.Kind, code: prm.Code, targets: prm.Targets, components: prm.Components}
	for _, part := range splitEscaped(value, ',') {
		if part == "" {
			continue
		}
		v, err := s.value(sp, c.Modifier, refType, part)
		if err != nil {
			return Clause{}, err
		}
		c.Values = append(c.Values, v)
	}
	if len(c.Values) == 0 {
		return Clause{}, errEmpty
	}
	return c, nil
}

// allowed lists the modifiers of each kind, for error messages.
var allowed = map[string]string{
	searchparam.Number:    ":missing",
	searchparam.Date:      ":missing",
	searchparam.Quantity:  ":missing",
	searchparam.Composite: ":missing",
	searchparam.String:    ":exact, :contains, :missing",
	searchparam.Token:     ":not, :text, :of-type, :missing",
	searchparam.Reference: ":[type], :identifier, :missing",
	searchparam.URI:       ":above, :below, :missing",
}

// modifier checks modifier mod (not missing) on prm. For a reference, a
// resource type modifier is returned as refType.
func modifier(prm *searchparam.Param, mod string) (m Modifier, refType string, err error) {
	column := searchparam.IsColumn(prm.Code)
	switch prm.Kind {
	case searchparam.String:
		switch mod {
		case "exact":
			return ModExact, "", nil
		case "contains":
			return ModContains, "", nil
		}
	case searchparam.Token:
		switch mod {
		case "not":
			return ModNot, "", nil
		case "text", "of-type":
			if column {
				return "", "", invalidf("%s does not take the :%s modifier", prm.Code, mod)
			}
			return Modifier(mod), "", nil
		case "in", "not-in", "above", "below":
			return "", "", notSupportedf("the :%s modifier (value set and subsumption search) is not supported", mod)
		}
	case searchparam.Reference:
		switch {
		case mod == "identifier":
			return ModIdentifier, "", nil
		case mod == "above" || mod == "below":
			return "", "", notSupportedf("the :%s modifier on reference parameters is not supported", mod)
		case r4.IsResourceType(mod):
			if len(prm.Targets) > 0 && !slices.Contains(prm.Targets, mod) {
				return "", "", invalidf("%s of %s cannot refer to %s (it refers to %s)", prm.Code, prm.Type, mod, strings.Join(prm.Targets, ", "))
			}
			return "", mod, nil
		}
	case searchparam.URI:
		switch mod {
		case "above":
			return ModAbove, "", nil
		case "below":
			return ModBelow, "", nil
		}
	}
	return "", "", invalidf("unknown modifier :%s for %s, a %s parameter (allowed: %s)", mod, prm.Code, prm.Kind, allowed[prm.Kind])
}
