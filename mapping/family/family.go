// Package family builds family situations as FHIR R4 resources: the fixed
// demo family (Demo) that `make run` and `ouderctl demo load` load, and
// seeded synthetic families (Generate) for load tests and benchmarks, in the
// same shape. Every resource is made by the mapping package's conversions,
// so it is what the domain and the implementation guide expect.
//
// A family is self-contained: every reference in it names another resource
// of the same family, by a stable id, so a family is written as one
// transaction Bundle of PUT entries (update-as-create). Writing it again
// changes nothing but the versions: loading is idempotent. The only thing
// families share is the evaluation form (a Questionnaire named by its
// canonical URL, not by a reference), which Shared returns.
//
// The package is pure: no I/O, time is passed in, and the same input always
// gives the same bytes.
package family

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/digitaleouder/ouder/fhir/rawjson"
	"github.com/digitaleouder/ouder/mapping"
)

// TagSystem is the code system of the meta.tag that marks made-up data, so
// it can be found (the development login lists the people tagged TagDemo)
// and removed.
const TagSystem = mapping.BaseURL + "/CodeSystem/demo"

// The tags in TagSystem.
const (
	// TagDemo marks the resources of the demo family (Demo).
	TagDemo = "demo"
	// TagSynthetic marks the resources of generated families (Generate).
	TagSynthetic = "synthetic"
)

var tagDisplays = map[string]string{TagDemo: "Demogegevens", TagSynthetic: "Gegenereerde gegevens"}

// IdentifierSystem is the naming system of the identifiers the package gives
// children, parents' login identities and professionals: the value is the
// resource's id. It lets a test or a benchmark find a resource by
// identifier, and a development login bind to a demo person.
const IdentifierSystem = mapping.BaseURL + "/NamingSystem/demo-id"

// EvaluationFormURL is the canonical URL of the evaluation form of an
// agreement, which every evaluation (QuestionnaireResponse) answers.
const EvaluationFormURL = mapping.BaseURL + "/Questionnaire/evaluatie-afspraak"

// Resource is one resource of a family: its type, its id and its FHIR R4
// JSON (with the id and the meta.tag).
type Resource struct {
	Type, ID string
	JSON     []byte
}

// Ref returns the relative reference to r ("Patient/demo-sara").
func (r Resource) Ref() string { return r.Type + "/" + r.ID }

// Family is one family situation: its resources in write order (a resource
// comes after those it refers to, except that a document's Binary and its
// DocumentReference refer to each other).
type Family struct {
	// Name is the family's display name ("Gezin De Vries-Jansen").
	Name string
	// Group is the id of the family's Group.
	Group string
	// Children are the ids of the children's Patients, eldest first.
	Children []string
	// Resources are every resource of the family.
	Resources []Resource
}

// Counts returns how many resources of each type f holds.
func (f *Family) Counts() map[string]int {
	out := map[string]int{}
	for _, r := range f.Resources {
		out[r.Type]++
	}
	return out
}

// Transaction returns resources as a FHIR transaction Bundle of PUT entries
// (Type/id): all or nothing, and idempotent.
func Transaction(resources []Resource) []byte {
	var b bytes.Buffer
	b.WriteString(`{"resourceType":"Bundle","type":"transaction","entry":[`)
	for i, r := range resources {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"resource":`)
		b.Write(r.JSON)
		fmt.Fprintf(&b, `,"request":{"method":"PUT","url":%q}}`, r.Ref())
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// Transaction returns f as a transaction Bundle (see the function
// Transaction).
func (f *Family) Transaction() []byte { return Transaction(f.Resources) }

// NDJSON returns resources as newline-delimited JSON, one resource per line
// (the FHIR bulk data format).
func NDJSON(resources []Resource) []byte {
	var b bytes.Buffer
	for _, r := range resources {
		b.Write(r.JSON)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// tagged returns the JSON of a resource made by a mapping conversion with
// its id checked and a meta holding the profiles it claims and the tag:
// resourceType, id, meta, then the other members as the conversion wrote
// them.
func tagged(b []byte, typ, id, tag string, profiles ...string) ([]byte, error) {
	meta, err := metaJSON(tag, profiles)
	if err != nil {
		return nil, fmt.Errorf("family: %s/%s: %w", typ, id, err)
	}
	// The conversions write resourceType and id first; splice meta in
	// behind them without parsing the rest.
	head := `{"resourceType":` + strconv.Quote(typ) + `,"id":` + strconv.Quote(id)
	if rest := b[min(len(head), len(b)):]; bytes.HasPrefix(b, []byte(head)) && len(rest) > 0 && (rest[0] == ',' || rest[0] == '}') &&
		!bytes.Contains(rest, []byte(`"meta":`)) {
		out := make([]byte, 0, len(b)+len(meta)+8)
		out = append(out, head...)
		out = append(out, `,"meta":`...)
		out = append(out, meta...)
		return append(out, rest...), nil
	}
	members, err := rawjson.Members(b)
	if err != nil {
		return nil, fmt.Errorf("family: %s/%s: %w", typ, id, err)
	}
	if got, _ := rawjson.String(members, "resourceType"); got != typ {
		return nil, fmt.Errorf("family: %s/%s: the conversion made a %s", typ, id, got)
	}
	if got, _ := rawjson.String(members, "id"); got != id {
		return nil, fmt.Errorf("family: %s/%s: the conversion gave id %q", typ, id, got)
	}
	out := []rawjson.Member{
		{Key: "resourceType", Value: rawjson.Get(members, "resourceType")},
		{Key: "id", Value: rawjson.Get(members, "id")},
		{Key: "meta", Value: meta},
	}
	for _, m := range members {
		switch m.Key {
		case "resourceType", "id", "meta":
		default:
			out = append(out, m)
		}
	}
	return rawjson.Object(out), nil
}

// metaJSON returns the meta of a resource with the tag and profiles, in R4
// element order (profile before tag).
func metaJSON(tag string, profiles []string) ([]byte, error) {
	display, ok := tagDisplays[tag]
	if !ok {
		return nil, fmt.Errorf("unknown tag %q", tag)
	}
	type coding struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display"`
	}
	return json.Marshal(struct {
		Profile []string `json:"profile,omitempty"`
		Tag     []coding `json:"tag"`
	}{profiles, []coding{{TagSystem, tag, display}}})
}

// References returns every reference of a resource's JSON: the values of
// "reference" members, the url of attachments that point at a Binary of the
// server, sorted and without duplicates. Canonical URLs (such as
// QuestionnaireResponse.questionnaire) are not references.
func References(b []byte) ([]string, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("family: references: %w", err)
	}
	seen := map[string]bool{}
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(e, k)
			}
		case []any:
			for _, e := range x {
				walk(e, key)
			}
		case string:
			if key == "reference" || (key == "url" && strings.HasPrefix(x, "Binary/")) {
				seen[x] = true
			}
		}
	}
	walk(v, "")
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}
