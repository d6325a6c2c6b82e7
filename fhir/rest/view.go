package rest

import (
	"net/http"
	"strings"
	"sync"

	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rawjson"
)

// elementSets are the top-level elements of one resource type that
// _summary and _elements need: those marked isSummary, and the mandatory
// ones. Choice elements are listed by their stem ("value" for value[x]).
type elementSets struct {
	summary, required map[string]bool
	choices           []string
}

var elementCache sync.Map // type name -> *elementSets

func elementsOf(typ string) *elementSets {
	if v, ok := elementCache.Load(typ); ok {
		return v.(*elementSets)
	}
	es := &elementSets{summary: map[string]bool{}, required: map[string]bool{}}
	if td, ok := r4.Type(typ); ok {
		for _, e := range td.Elements {
			name, ok := strings.CutPrefix(e.Path, typ+".")
			if !ok || strings.Contains(name, ".") {
				continue
			}
			if stem, ok := strings.CutSuffix(name, "[x]"); ok {
				name = stem
				es.choices = append(es.choices, stem)
			}
			if e.Summary {
				es.summary[name] = true
			}
			if e.Min > 0 {
				es.required[name] = true
			}
		}
	}
	v, _ := elementCache.LoadOrStore(typ, es)
	return v.(*elementSets)
}

// element maps a JSON member name onto its element name: "_birthDate" is
// birthDate's extension, "valueQuantity" is value[x].
func (es *elementSets) element(key string) string {
	key = strings.TrimPrefix(key, "_")
	for _, c := range es.choices {
		if rest, ok := strings.CutPrefix(key, c); ok && rest != "" && rest[0] >= 'A' && rest[0] <= 'Z' {
			return c
		}
	}
	return key
}

// subsetter returns the member filter that _summary and _elements ask for,
// or nil when the whole resource is wanted. It fails with Invalid (400) for
// a value it does not know; _summary=count is only meaningful for searches.
func subsetter(r *http.Request) (func(typ string) func(key string) bool, error) {
	q := queryOf(r)
	return subsetFor(q.Get("_summary"), q.Get("_elements"))
}

// subsetFor is subsetter for given _summary and _elements values.
func subsetFor(summary, elements string) (func(typ string) func(key string) bool, error) {
	if summary != "" && elements != "" {
		return nil, fhir.Errorf(fhir.Invalid, "_elements", "_summary and _elements cannot be combined")
	}
	switch summary {
	case "", "false":
	case "true":
		return func(typ string) func(string) bool {
			es := elementsOf(typ)
			return func(k string) bool { return es.summary[es.element(k)] }
		}, nil
	case "text":
		return func(typ string) func(string) bool {
			es := elementsOf(typ)
			return func(k string) bool { e := es.element(k); return e == "text" || es.required[e] }
		}, nil
	case "data":
		return func(typ string) func(string) bool {
			return func(k string) bool { return k != "text" }
		}, nil
	case "count":
		// Meaningful for searches only, which answer without entries.
		return nil, fhir.Errorf(fhir.Invalid, "_summary", "_summary=count applies to searches only")
	default:
		return nil, fhir.Errorf(fhir.Invalid, "_summary", "_summary must be true, text, data, count or false, not %q", summary)
	}
	if elements == "" {
		return nil, nil
	}
	var names []string
	for _, n := range strings.Split(elements, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		names = append(names, n)
	}
	return func(typ string) func(string) bool {
		es := elementsOf(typ)
		want := map[string]bool{}
		for _, n := range names {
			// Accept both "name" and the type-qualified "Patient.name".
			if t, rest, ok := strings.Cut(n, "."); ok {
				if t != typ {
					continue
				}
				n = rest
			}
			want[n] = true
		}
		return func(k string) bool { e := es.element(k); return want[e] || es.required[e] }
	}, nil
}

// applyView cuts body down as _summary or _elements ask; body is returned
// unchanged when the whole resource is wanted.
func applyView(r *http.Request, body []byte, typ string) ([]byte, error) {
	sub, err := subsetter(r)
	if err != nil || sub == nil {
		return body, err
	}
	return rawjson.Subset(body, sub(typ))
}
