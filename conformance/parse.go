// Package conformance is what the server claims and checks: it parses and
// validates incoming resources against the R4 definitions (through
// google/fhir/go's jsonformat) and the Digitale Ouder implementation guide's
// profiles (conformance/ig, conformance/profile), and generates the
// CapabilityStatement from what the server really supports.
package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"google.golang.org/protobuf/proto"

	"github.com/digitaleouder/ouder/conformance/ig"
	"github.com/digitaleouder/ouder/conformance/profile"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rawjson"
)

// maxNesting bounds how deep a resource may nest, so a hostile body cannot
// exhaust the stack of the parser.
const maxNesting = 64

// Parser turns request bodies into validated resources with their search
// index entries. It is safe for concurrent use.
type Parser struct {
	um *jsonformat.Unmarshaller
	// Registry returns the search parameters to index with; nil indexes
	// nothing.
	Registry func() *searchparam.Registry
	// Profiles validates every resource against the profiles it claims in
	// meta.profile and those the selection rule picks from its content
	// (mapping.ProfilesFor); nil validates against none.
	Profiles *profile.Set
}

// NewParser returns a Parser for FHIR R4 JSON that validates structure,
// cardinality, primitives, the code bindings expressed in the R4 protos and
// reference types, and then the profiles of the Digitale Ouder
// implementation guide (ig.Validator). It fails only if the R4 parser or
// the guide cannot be built.
func NewParser() (*Parser, error) {
	um, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		return nil, fmt.Errorf("conformance: new unmarshaller: %w", err)
	}
	um.MaxNestingDepth = maxNesting
	profiles, err := ig.Validator()
	if err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	return &Parser{um: um, Profiles: profiles}, nil
}

// Resource is a parsed, valid resource: its type and id as sent, the R4
// proto (a *ContainedResource, for indexing) and the client's JSON members,
// from which Render builds the stored bytes.
type Resource struct {
	Type    string
	ID      string
	Message proto.Message
	// Index holds the search index entries (nil without a registry).
	Index *fhir.Index
	// Profiles are the profiles the resource was validated against and
	// conforms to.
	Profiles []string
	// Warnings are the issues that did not refuse the resource, such as a
	// claimed profile the server does not know.
	Warnings []fhir.Issue
	members  []rawjson.Member
}

// Render returns the canonical stored form: what the client sent, compacted,
// with the server's id, meta.versionId and meta.lastUpdated. It never fails
// for a Resource returned by Parse; the error is for the fhir.RenderFunc
// signature.
func (r *Resource) Render(m fhir.Meta) ([]byte, error) {
	return rawjson.Stamp(r.members, r.Type, m.ID, m.VersionID, m.LastUpdated)
}

// Parse validates body as a FHIR R4 JSON resource. wantType, when not empty,
// is the type the URL names: a body of another type is refused. Every
// failure is a *fhir.Error whose issues carry the FHIRPath expression of the
// offending element: of kind Invalid (400) when the body is not valid R4,
// of kind Unprocessable (422) when it is valid R4 but breaks a profile it
// must conform to (see Parser.Profiles).
func (p *Parser) Parse(body []byte, wantType string) (*Resource, error) {
	res, generic, err := p.parse(body, wantType)
	if err != nil {
		return nil, err
	}
	if p.Profiles != nil {
		result := p.Profiles.Validate(generic)
		if err := result.Err(); err != nil {
			return nil, err
		}
		res.Profiles, res.Warnings = result.Profiles, result.Warnings()
	}
	if p.Registry != nil {
		x, err := p.Registry().Extract(res.Type, generic)
		if err != nil {
			return nil, fmt.Errorf("conformance: index %s: %w", res.Type, err)
		}
		res.Index = &x
	}
	return res, nil
}

// SupportedProfiles returns the URLs of the profiles the Parser validates,
// by the resource type they constrain (for the CapabilityStatement); nil
// without profiles.
func (p *Parser) SupportedProfiles() map[string][]string {
	if p.Profiles == nil {
		return nil
	}
	out := map[string][]string{}
	for _, t := range ResourceTypes() {
		if urls := p.Profiles.Profiles(t); len(urls) > 0 {
			out[t] = urls
		}
	}
	return out
}

// ImplementationGuides returns the canonical URLs of the implementation
// guides whose profiles the Parser validates.
func (p *Parser) ImplementationGuides() []string {
	if p.Profiles == nil {
		return nil
	}
	return []string{ig.URL}
}

// Check validates body as Parse does, without indexing, and returns every
// issue found: structural errors (the profiles are then not checked),
// profile errors and warnings. profiles, when not empty, replace the
// profiles the resource claims and the selection rule picks (as $validate's
// profile parameter does); an unknown one is an error. It returns an error
// only when the server fails, never for an invalid body.
func (p *Parser) Check(body []byte, wantType string, profiles []string) ([]fhir.Issue, error) {
	_, generic, err := p.parse(body, wantType)
	if err != nil {
		var fe *fhir.Error
		if errors.As(err, &fe) && fe.Kind != fhir.Internal {
			return fe.Issues, nil
		}
		return nil, err
	}
	if p.Profiles == nil {
		if len(profiles) > 0 {
			return []fhir.Issue{{Severity: "error", Code: "not-supported", Diagnostics: "this server validates no profiles"}}, nil
		}
		return nil, nil
	}
	if len(profiles) > 0 {
		return p.Profiles.ValidateAgainst(generic, profiles...).Issues, nil
	}
	return p.Profiles.Validate(generic).Issues, nil
}

// parse validates body against R4 and returns the resource (without index)
// and its generic JSON form (nil when neither profiles nor a registry need
// it).
func (p *Parser) parse(body []byte, wantType string) (*Resource, map[string]any, error) {
	root := wantType
	if root == "" {
		root = "Resource"
	}
	members, err := rawjson.Members(body)
	if err != nil {
		if errors.Is(err, rawjson.ErrDuplicateKey) {
			return nil, nil, fhir.Errorf(fhir.Invalid, root, "the resource repeats a key: %v", err)
		}
		return nil, nil, fhir.Errorf(fhir.Invalid, root, "the body is not a JSON object: %v", err)
	}
	typ, ok := rawjson.String(members, "resourceType")
	if !ok {
		return nil, nil, fhir.Errorf(fhir.Invalid, root, "the resource has no resourceType")
	}
	if wantType != "" && typ != wantType {
		return nil, nil, fhir.Errorf(fhir.Invalid, wantType, "the body is a %s, but the URL is for %s", typ, wantType)
	}
	id, _ := rawjson.String(members, "id")
	rep := &reporter{}
	msg, err := p.um.UnmarshalWithErrorReporter(body, rep)
	if err != nil {
		rep.issues = append(rep.issues, issuesOf(err)...)
	}
	if len(rep.issues) > 0 {
		return nil, nil, &fhir.Error{Kind: fhir.Invalid, Issues: rep.issues}
	}
	res := &Resource{Type: typ, ID: id, Message: msg, members: members}
	var generic map[string]any
	if p.Registry != nil || p.Profiles != nil {
		if generic, err = decodeGeneric(body); err != nil {
			return nil, nil, err
		}
	}
	return res, generic, nil
}

// decodeGeneric decodes a resource into maps, keeping numbers as written.
func decodeGeneric(body []byte) (map[string]any, error) {
	var generic map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("conformance: decode: %w", err)
	}
	return generic, nil
}

// IndexOf extracts the search index entries of a valid resource of type typ
// with the registry in force, without validating it again (for
// reindexing stored resources). It fails if body is not JSON or the Parser
// has no Registry.
func (p *Parser) IndexOf(typ string, body []byte) (*fhir.Index, error) {
	if p.Registry == nil {
		return nil, fmt.Errorf("conformance: index %s: no search parameter registry", typ)
	}
	generic, err := decodeGeneric(body)
	if err != nil {
		return nil, err
	}
	x, err := p.Registry().Extract(typ, generic)
	if err != nil {
		return nil, fmt.Errorf("conformance: index %s: %w", typ, err)
	}
	return &x, nil
}

// reporter collects jsonformat's validation findings as issues.
type reporter struct{ issues []fhir.Issue }

func (r *reporter) ReportValidationError(path string, err error) error {
	r.issues = append(r.issues, issue("error", path, err))
	return nil
}

func (r *reporter) ReportValidationWarning(path string, err error) error {
	r.issues = append(r.issues, issue("warning", path, err))
	return nil
}

func issue(severity, path string, err error) fhir.Issue {
	is := fhir.Issue{Severity: severity, Code: "invalid", Diagnostics: stripPath(err.Error())}
	if path != "" {
		is.Expression = []string{path}
	}
	if strings.Contains(is.Diagnostics, "missing required field") {
		is.Code = "required"
	}
	return is
}

// stripPath removes jsonformat's `error at "X": ` prefix: the path is in
// the issue's expression already.
func stripPath(msg string) string {
	if strings.HasPrefix(msg, "error at ") {
		if i := strings.Index(msg, `": `); i > 0 {
			return msg[i+3:]
		}
	}
	return msg
}

// issuesOf converts a parse error of jsonformat into issues. jsonformat
// reports a list of errors whose type is internal to it; their exported
// fields (Path, Details, Diagnostics) are read by reflection.
func issuesOf(err error) []fhir.Issue {
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Slice {
		var out []fhir.Issue
		for i := 0; i < v.Len(); i++ {
			if e, ok := v.Index(i).Interface().(error); ok {
				out = append(out, issuesOf(e)...)
			}
		}
		return out
	}
	if v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		s := v.Elem()
		path, details, diag := field(s, "Path"), field(s, "Details"), field(s, "Diagnostics")
		if details != "" {
			is := fhir.Issue{Severity: "error", Code: "structure", Diagnostics: details}
			switch {
			case details == "unknown field":
				if name, err := strconv.Unquote(diag); err == nil && path != "" {
					path += "." + name
				}
				is.Diagnostics = "unknown element " + diag
			case details == "invalid JSON":
				is.Diagnostics = "invalid JSON: " + diag
			case diag != "":
				is.Diagnostics = details + ": " + diag
			}
			if path != "" {
				is.Expression = []string{path}
			}
			return []fhir.Issue{is}
		}
	}
	return []fhir.Issue{{Severity: "error", Code: "structure", Diagnostics: stripPath(err.Error())}}
}

func field(s reflect.Value, name string) string {
	f := s.FieldByName(name)
	if !f.IsValid() || f.Kind() != reflect.String {
		return ""
	}
	return f.String()
}
