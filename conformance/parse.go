// Package conformance is what the server claims and checks: it parses and
// validates incoming resources against the R4 definitions (through
// google/fhir/go's jsonformat), and generates the CapabilityStatement from
// what the server really supports.
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
}

// NewParser returns a Parser for FHIR R4 JSON that validates structure,
// cardinality, primitives, the code bindings expressed in the R4 protos and
// reference types.
func NewParser() (*Parser, error) {
	um, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		return nil, fmt.Errorf("conformance: new unmarshaller: %w", err)
	}
	um.MaxNestingDepth = maxNesting
	return &Parser{um: um}, nil
}

// Resource is a parsed, valid resource: its type and id as sent, the R4
// proto (a *ContainedResource, for indexing) and the client's JSON members,
// from which Render builds the stored bytes.
type Resource struct {
	Type    string
	ID      string
	Message proto.Message
	// Index holds the search index entries (nil without a registry).
	Index   *fhir.Index
	members []rawjson.Member
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
// failure is a *fhir.Error of kind Invalid whose issues carry the FHIRPath
// expression of the offending element.
func (p *Parser) Parse(body []byte, wantType string) (*Resource, error) {
	root := wantType
	if root == "" {
		root = "Resource"
	}
	members, err := rawjson.Members(body)
	if err != nil {
		if errors.Is(err, rawjson.ErrDuplicateKey) {
			return nil, fhir.Errorf(fhir.Invalid, root, "the resource repeats a key: %v", err)
		}
		return nil, fhir.Errorf(fhir.Invalid, root, "the body is not a JSON object: %v", err)
	}
	typ, ok := rawjson.String(members, "resourceType")
	if !ok {
		return nil, fhir.Errorf(fhir.Invalid, root, "the resource has no resourceType")
	}
	if wantType != "" && typ != wantType {
		return nil, fhir.Errorf(fhir.Invalid, wantType, "the body is a %s, but the URL is for %s", typ, wantType)
	}
	id, _ := rawjson.String(members, "id")
	rep := &reporter{}
	msg, err := p.um.UnmarshalWithErrorReporter(body, rep)
	if err != nil {
		rep.issues = append(rep.issues, issuesOf(err)...)
	}
	if len(rep.issues) > 0 {
		return nil, &fhir.Error{Kind: fhir.Invalid, Issues: rep.issues}
	}
	res := &Resource{Type: typ, ID: id, Message: msg, members: members}
	if p.Registry != nil {
		if res.Index, err = p.IndexOf(typ, body); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// IndexOf extracts the search index entries of a valid resource of type typ
// with the registry in force, without validating it again (for
// reindexing stored resources). It fails if body is not JSON or the Parser
// has no Registry.
func (p *Parser) IndexOf(typ string, body []byte) (*fhir.Index, error) {
	if p.Registry == nil {
		return nil, fmt.Errorf("conformance: index %s: no search parameter registry", typ)
	}
	var generic map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("conformance: decode for indexing: %w", err)
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
