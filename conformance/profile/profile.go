// Package profile validates resources against FHIR R4 constraint profiles
// (StructureDefinitions with a snapshot). Each profile is compiled once into
// a small tree of checks, so validating a resource walks only the elements
// the profile constrains beyond R4:
//
//   - cardinality (min and max), of elements and of slices;
//   - fixed[x] (exact) and pattern[x] (the value holds at least the
//     pattern) values;
//   - required bindings to the value sets the Set was given (R4's own
//     required bindings are checked by the R4 parser);
//   - the types a choice element may take, and the resource types a
//     Reference may point at (from targetProfile);
//   - slicing with discriminators of type value or pattern (open or closed),
//     and extensions with their own profile;
//   - the invariants the profile adds to its root element, written in the
//     FHIRPath subset of conformance/fhirpath.
//
// Structure, primitives, R4 cardinalities and R4 bindings are the R4
// parser's (google/fhir/go) job and are not repeated; R4's own invariants
// (ele-1, dom-*, app-2…) are not evaluated: a profile restates those it
// needs. Codings of the code systems a Set is told are complete
// (Config.CheckSystem) must use codes those systems define, wherever they
// appear.
package profile

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/fhir"
)

const corePrefix = "http://hl7.org/fhir/StructureDefinition/"

// Config is what Compile builds a Set from.
type Config struct {
	// StructureDefinitions are the profiles and extensions, in FHIR R4 JSON
	// with snapshots.
	StructureDefinitions [][]byte
	// Terminology are the CodeSystem and ValueSet resources the bindings
	// name. A ValueSet may include whole code systems given here, or listed
	// codes of any system.
	Terminology [][]byte
	// Select returns the profiles a resource must conform to by its content
	// (nil: only those it claims in meta.profile).
	Select func(resource map[string]any) []string
	// CheckSystem reports whether the codes of a code system must be those
	// its CodeSystem in Terminology defines (nil: none).
	CheckSystem func(system string) bool
}

// Set is a compiled set of profiles. It is immutable and safe for
// concurrent use.
type Set struct {
	profiles    map[string]*Profile
	types       map[string]string          // profile URL -> type, for target profiles
	codes       map[string]map[string]bool // code system URL -> its codes
	valueSets   map[string]map[string]bool // value set URL -> "system|code"
	selectFn    func(resource map[string]any) []string
	checkSystem func(system string) bool
}

// Profile is one compiled profile.
type Profile struct {
	URL        string
	Type       string // the constrained type (Extension for an extension)
	Name       string
	Title      string
	root       *node
	invariants []invariant
}

// Compile compiles the profiles of c. It fails when a definition or a value
// set cannot be read, when a profile uses what the validator cannot check
// (a discriminator other than value or pattern, an invariant below the
// root, an invariant outside the FHIRPath subset) or names an unknown
// target or extension profile.
func Compile(c Config) (*Set, error) {
	s := &Set{
		profiles:    map[string]*Profile{},
		types:       map[string]string{},
		codes:       map[string]map[string]bool{},
		valueSets:   map[string]map[string]bool{},
		selectFn:    c.Select,
		checkSystem: c.CheckSystem,
	}
	if err := s.terminology(c.Terminology); err != nil {
		return nil, err
	}
	for _, b := range c.StructureDefinitions {
		var head struct {
			URL  string `json:"url"`
			Type string `json:"type"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			return nil, fmt.Errorf("profile: decode a StructureDefinition: %w", err)
		}
		s.types[head.URL] = head.Type
	}
	for _, b := range c.StructureDefinitions {
		p, err := s.compile(b)
		if err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		s.profiles[p.URL] = p
	}
	for _, p := range s.profiles {
		if err := s.resolve(p.root); err != nil {
			return nil, fmt.Errorf("profile: %s: %w", p.URL, err)
		}
	}
	return s, nil
}

// resolve links the extension profiles named below n.
func (s *Set) resolve(n *node) error {
	if n.extension != "" {
		p, ok := s.profiles[n.extension]
		if !ok || p.Type != "Extension" {
			return fmt.Errorf("%s: extension profile %s is not known", n.id, n.extension)
		}
		n.extProfile = p
	}
	for _, c := range n.children {
		if err := s.resolve(c); err != nil {
			return err
		}
	}
	if n.slicing != nil {
		for _, sl := range n.slicing.slices {
			if err := s.resolve(sl); err != nil {
				return err
			}
		}
	}
	return nil
}

// typeOfProfile returns the type a profile URL constrains: an R4 type for
// a core definition, the type of one of the Set's profiles otherwise.
func (s *Set) typeOfProfile(url string) (string, bool) {
	if name, ok := strings.CutPrefix(url, corePrefix); ok {
		return name, name == "Resource" || r4.IsResourceType(name)
	}
	t, ok := s.types[url]
	return t, ok
}

// terminology reads the code systems and value sets.
func (s *Set) terminology(resources [][]byte) error {
	type vsDef struct {
		URL     string `json:"url"`
		Compose struct {
			Include []struct {
				System  string `json:"system"`
				Concept []struct {
					Code string `json:"code"`
				} `json:"concept"`
			} `json:"include"`
		} `json:"compose"`
	}
	var sets []vsDef
	for _, b := range resources {
		var r struct {
			ResourceType string `json:"resourceType"`
			URL          string `json:"url"`
			Content      string `json:"content"`
			Concept      []struct {
				Code string `json:"code"`
			} `json:"concept"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("profile: decode terminology: %w", err)
		}
		switch r.ResourceType {
		case "CodeSystem":
			if r.Content != "complete" {
				return fmt.Errorf("profile: CodeSystem %s is not complete (%q)", r.URL, r.Content)
			}
			codes := map[string]bool{}
			for _, c := range r.Concept {
				codes[c.Code] = true
			}
			s.codes[r.URL] = codes
		case "ValueSet":
			var vs vsDef
			if err := json.Unmarshal(b, &vs); err != nil {
				return fmt.Errorf("profile: decode ValueSet: %w", err)
			}
			sets = append(sets, vs)
		default:
			return fmt.Errorf("profile: %s is not terminology", r.ResourceType)
		}
	}
	for _, vs := range sets {
		members := map[string]bool{}
		for _, inc := range vs.Compose.Include {
			if len(inc.Concept) == 0 {
				codes, ok := s.codes[inc.System]
				if !ok {
					return fmt.Errorf("profile: ValueSet %s includes all of %s, which is not given", vs.URL, inc.System)
				}
				for c := range codes {
					members[inc.System+"|"+c] = true
				}
				continue
			}
			for _, c := range inc.Concept {
				if codes, ok := s.codes[inc.System]; ok && !codes[c.Code] {
					return fmt.Errorf("profile: ValueSet %s includes %s|%s, which its code system does not define", vs.URL, inc.System, c.Code)
				}
				members[inc.System+"|"+c.Code] = true
			}
		}
		s.valueSets[vs.URL] = members
	}
	return nil
}

// Lookup returns the compiled profile with the given canonical URL (a
// |version suffix is ignored), and whether there is one.
func (s *Set) Lookup(url string) (*Profile, bool) {
	url, _, _ = strings.Cut(url, "|")
	p, ok := s.profiles[url]
	return p, ok
}

// Profiles returns the URLs of the Set's profiles of resource type typ,
// sorted; every profile when typ is empty.
func (s *Set) Profiles(typ string) []string {
	var out []string
	for url, p := range s.profiles {
		if typ == "" || p.Type == typ {
			out = append(out, url)
		}
	}
	sort.Strings(out)
	return out
}

// Result is the outcome of validating one resource.
type Result struct {
	// Profiles are the profiles the resource was validated against, in
	// order: those it claims, then those selected by its content.
	Profiles []string
	// Issues are the errors and warnings found, with FHIRPath expressions.
	Issues []fhir.Issue
}

// Valid reports whether r has no issue of severity error or fatal.
func (r Result) Valid() bool {
	for _, is := range r.Issues {
		if is.Severity == "error" || is.Severity == "fatal" || is.Severity == "" {
			return false
		}
	}
	return true
}

// Warnings returns the issues that are not errors.
func (r Result) Warnings() []fhir.Issue {
	var out []fhir.Issue
	for _, is := range r.Issues {
		if is.Severity == "warning" || is.Severity == "information" {
			out = append(out, is)
		}
	}
	return out
}

// Err returns nil when r is valid, and otherwise a *fhir.Error of kind
// Unprocessable (422) with every issue, warnings included.
func (r Result) Err() error {
	if r.Valid() {
		return nil
	}
	return &fhir.Error{Kind: fhir.Unprocessable, Issues: r.Issues}
}

// Validate validates a resource (decoded by encoding/json, preferably with
// UseNumber) against the profiles it must conform to: the profiles of the
// Set it claims in meta.profile and those Config.Select picks from its
// content. A claimed profile the Set does not know is reported as a
// warning and not validated; a claimed profile of another resource type is
// an error. Codings of the systems Config.CheckSystem names are checked in
// every resource.
func (s *Set) Validate(resource map[string]any) Result {
	typ, _ := resource["resourceType"].(string)
	var res Result
	add := func(url string) {
		for _, u := range res.Profiles {
			if u == url {
				return
			}
		}
		res.Profiles = append(res.Profiles, url)
	}
	if meta, ok := resource["meta"].(map[string]any); ok {
		claims, _ := meta["profile"].([]any)
		for i, c := range claims {
			url, _ := c.(string)
			expr := fmt.Sprintf("%s.meta.profile[%d]", typ, i)
			p, ok := s.Lookup(url)
			switch {
			case !ok:
				res.Issues = append(res.Issues, fhir.Issue{Severity: "warning", Code: "not-supported", Expression: []string{expr},
					Diagnostics: fmt.Sprintf("profile %s is not known to this server; the resource was not validated against it", url)})
			case p.Type != typ:
				res.Issues = append(res.Issues, fhir.Issue{Severity: "error", Code: "invalid", Expression: []string{expr},
					Diagnostics: fmt.Sprintf("profile %s constrains %s, not %s", url, p.Type, typ)})
			default:
				add(p.URL)
			}
		}
	}
	if s.selectFn != nil {
		for _, url := range s.selectFn(resource) {
			if p, ok := s.Lookup(url); ok && p.Type == typ {
				add(p.URL)
			}
		}
	}
	res.Issues = append(res.Issues, s.check(resource, res.Profiles)...)
	return res
}

// ValidateAgainst validates a resource against the given profiles only (no
// claims, no selection), as $validate does when it is given a profile. An
// unknown profile, or one of another type, is an error.
func (s *Set) ValidateAgainst(resource map[string]any, profiles ...string) Result {
	typ, _ := resource["resourceType"].(string)
	var res Result
	for _, url := range profiles {
		p, ok := s.Lookup(url)
		switch {
		case !ok:
			res.Issues = append(res.Issues, fhir.Issue{Severity: "error", Code: "not-supported",
				Diagnostics: fmt.Sprintf("profile %s is not known to this server", url)})
		case p.Type != typ:
			res.Issues = append(res.Issues, fhir.Issue{Severity: "error", Code: "invalid", Expression: []string{typ},
				Diagnostics: fmt.Sprintf("profile %s constrains %s, not %s", url, p.Type, typ)})
		default:
			res.Profiles = append(res.Profiles, p.URL)
		}
	}
	res.Issues = append(res.Issues, s.check(resource, res.Profiles)...)
	return res
}

// check runs the code check and every profile on resource.
func (s *Set) check(resource map[string]any, profiles []string) []fhir.Issue {
	typ, _ := resource["resourceType"].(string)
	v := &validation{set: s, resource: resource, root: typ}
	if s.checkSystem != nil {
		v.codes(resource, typ)
	}
	for _, url := range profiles {
		p := s.profiles[url]
		v.profile, v.path = p, v.path[:0]
		v.object(p.root, resource)
		v.invariants(p)
	}
	return v.issues
}
