package profile

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/fhir"
)

// validation is the state of validating one resource.
type validation struct {
	set      *Set
	resource map[string]any
	root     string     // the resource type, where expressions start
	path     []pathPart // where the walk is below the root
	profile  *Profile   // the profile being checked; nil for the code check
	issues   []fhir.Issue
}

// addf records an issue; the profile being checked is named in the
// diagnostics, since a resource may be validated against several.
func (v *validation) addf(severity, code, expr, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if v.profile != nil {
		msg += " (profile " + v.profile.URL + ")"
	}
	is := fhir.Issue{Severity: severity, Code: code, Diagnostics: msg}
	if expr != "" {
		is.Expression = []string{expr}
	}
	v.issues = append(v.issues, is)
}

// object checks the constrained children of n in the JSON object obj found
// at the current path.
func (v *validation) object(n *node, obj map[string]any) {
	for _, c := range n.children {
		v.element(c, obj)
	}
}

// element checks the values of c in obj, the object at the current path.
// The path grows by c's name while it is checked; expressions are built only
// for issues.
func (v *validation) element(c *node, obj map[string]any) {
	vals, types, array := values(c, obj)
	if len(vals) == 0 && !c.checkCard && c.slicing == nil {
		return
	}
	v.path = append(v.path, pathPart{name: c.name, index: -1})
	at := len(v.path) - 1
	if c.checkCard {
		v.cardinality(c, len(vals), "")
	}
	var assigned []*node
	if c.slicing != nil {
		assigned = v.slice(c, vals)
	}
	for i, val := range vals {
		if array {
			v.path[at].index = i
		}
		v.value(c, val, types[i])
		if assigned != nil && assigned[i] != nil {
			v.value(assigned[i], val, types[i])
		}
	}
	v.path = v.path[:at]
}

// here returns the FHIRPath expression of the current path.
func (v *validation) here() string { return expression(v.root, v.path) }

// values returns the values of c in obj with their types (for a choice
// element; "" otherwise), and whether they are a JSON array.
func values(c *node, obj map[string]any) (vals []any, types []string, array bool) {
	collect := func(x any, typ string) {
		switch t := x.(type) {
		case nil:
		case []any:
			array = true
			for _, it := range t {
				vals = append(vals, it)
				types = append(types, typ)
			}
		default:
			vals = append(vals, x)
			types = append(types, typ)
		}
	}
	if !c.choice {
		collect(obj[c.name], "")
		return vals, types, array
	}
	keys := make([]string, 0, 1)
	for k := range obj {
		if _, ok := c.jsonType[k]; ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		collect(obj[k], c.jsonType[k])
	}
	return vals, types, array
}

// cardinality checks that n values of c, the element at the current path,
// are within its min and max; what names the values counted ("" for all of
// the element's).
func (v *validation) cardinality(c *node, n int, what string) {
	if what != "" {
		what = " of " + what
	}
	switch {
	case n < c.min:
		v.addf("error", "required", v.here(), "minimum cardinality%s is %d, found %d", what, c.min, n)
	case c.max >= 0 && n > c.max:
		v.addf("error", "structure", v.here(), "maximum cardinality%s is %d, found %d", what, c.max, n)
	}
}

// slice assigns each value of the sliced element c (at the current path) to
// its first matching slice, checks each slice's cardinality and, for closed
// slicing, that every value is in a slice.
func (v *validation) slice(c *node, vals []any) []*node {
	assigned := make([]*node, len(vals))
	counts := make([]int, len(c.slicing.slices))
	for i, val := range vals {
		for j, sl := range c.slicing.slices {
			if sl.matches(val) {
				assigned[i] = sl
				counts[j]++
				break
			}
		}
		if assigned[i] == nil && c.slicing.closed {
			v.addf("error", "structure", fmt.Sprintf("%s[%d]", v.here(), i), "the value is in none of the slices, and the slicing is closed")
		}
	}
	for j, sl := range c.slicing.slices {
		v.cardinality(sl, counts[j], "slice "+sl.sliceName+" ("+sl.describe()+")")
	}
	return assigned
}

// describe says what tells the values of slice n, for messages.
func (n *node) describe() string {
	var parts []string
	for _, d := range n.discriminators {
		b, _ := json.Marshal(d.value)
		if d.path == "$this" {
			parts = append(parts, string(b))
		} else {
			parts = append(parts, d.path+" = "+string(b))
		}
	}
	return strings.Join(parts, ", ")
}

// matches reports whether val belongs to slice n.
func (n *node) matches(val any) bool {
	for _, d := range n.discriminators {
		x := val
		if d.path != "$this" {
			for _, part := range strings.Split(d.path, ".") {
				m, ok := x.(map[string]any)
				if !ok {
					return false
				}
				x = m[part]
			}
		}
		if d.exact && !equal(d.value, x) || !d.exact && !matches(d.value, x) {
			return false
		}
	}
	return true
}

// value checks one value of n, found at the current path; typ is its type
// for a choice element.
func (v *validation) value(n *node, val any, typ string) {
	if n.allowed != nil && !n.allowed[typ] {
		allowed := make([]string, 0, len(n.allowed))
		for t := range n.allowed {
			allowed = append(allowed, t)
		}
		sort.Strings(allowed)
		v.addf("error", "structure", v.here(), "a value of type %s is not allowed here; allowed: %s", typ, strings.Join(allowed, ", "))
	}
	if n.fixed != nil && !equal(n.fixed, val) {
		v.addf("error", "value", v.here(), "the value must be exactly %s", compact(n.fixed))
	}
	if n.pattern != nil && !matches(n.pattern, val) {
		v.addf("error", "value", v.here(), "the value must hold %s", compact(n.pattern))
	}
	if n.valueSet != "" {
		v.binding(n, val, typ)
	}
	if n.targets != nil {
		if m, ok := val.(map[string]any); ok {
			ref, _ := m["reference"].(string)
			if t := refType(ref); t != "" && !n.targets[t] {
				targets := make([]string, 0, len(n.targets))
				for t := range n.targets {
					targets = append(targets, t)
				}
				sort.Strings(targets)
				v.addf("error", "structure", v.here(), "%q refers to a %s; it must refer to a %s", ref, t, strings.Join(targets, " or "))
			}
		}
	}
	obj, isObj := val.(map[string]any)
	if n.extProfile != nil && isObj {
		v.object(n.extProfile.root, obj)
	}
	if len(n.children) > 0 && isObj {
		v.object(n, obj)
	}
}

// binding checks a value, at the current path, against the required value
// set of n.
func (v *validation) binding(n *node, val any, typ string) {
	if typ == "" {
		typ = n.typ
	}
	members := v.set.valueSets[n.valueSet]
	inSet := func(c map[string]any) bool {
		system, _ := c["system"].(string)
		code, _ := c["code"].(string)
		return members[system+"|"+code]
	}
	switch typ {
	case "code":
		code, _ := val.(string)
		for m := range members {
			if strings.HasSuffix(m, "|"+code) {
				return
			}
		}
		v.addf("error", "code-invalid", v.here(), "%q is not in the value set %s", code, n.valueSet)
	case "Coding":
		if c, ok := val.(map[string]any); ok && !inSet(c) {
			v.addf("error", "code-invalid", v.here(), "%s|%s is not in the value set %s", c["system"], c["code"], n.valueSet)
		}
	case "CodeableConcept":
		cc, ok := val.(map[string]any)
		if !ok {
			return
		}
		codings, _ := cc["coding"].([]any)
		for _, x := range codings {
			if c, ok := x.(map[string]any); ok && inSet(c) {
				return
			}
		}
		v.addf("error", "code-invalid", v.here(), "none of the codings is in the value set %s (a required binding)", n.valueSet)
	}
}

// invariants evaluates the root invariants of p on the resource.
func (v *validation) invariants(p *Profile) {
	typ := p.Type
	for _, in := range p.invariants {
		out, err := in.expr.Evaluate(v.resource)
		severity := in.severity
		if severity != "warning" {
			severity = "error"
		}
		switch {
		case err != nil:
			v.addf("error", "invariant", typ, "%s: %s: cannot be evaluated: %v", in.key, in.human, err)
		case len(out) == 0:
		case len(out) == 1 && out[0].Value == true:
		default:
			v.addf(severity, "invariant", typ, "%s: %s", in.key, in.human)
		}
	}
}

// codes checks every coding of a complete code system in the resource x,
// of type root: its code must be one the system defines. The walk builds
// no strings until it finds a wrong code, and visits members in name order
// then, so issues come in a stable order.
func (v *validation) codes(x any, root string) {
	if !v.badCode(x) {
		return
	}
	path := v.path[:0]
	var walk func(x any)
	walk = func(x any) {
		switch t := x.(type) {
		case map[string]any:
			if system, code, bad := v.wrongCode(t); bad {
				v.addf("error", "code-invalid", expression(root, path)+".code", "%q is not a code of %s", code, system)
			}
			keys := make([]string, 0, len(t))
			for k, c := range t {
				switch c.(type) {
				case map[string]any, []any:
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				path = append(path, pathPart{name: k, index: -1})
				walk(t[k])
				path = path[:len(path)-1]
			}
		case []any:
			last := len(path) - 1 // an index: walk may grow path
			for i, it := range t {
				path[last].index = i
				walk(it)
			}
			path[last].index = -1
		}
	}
	walk(x)
}

// pathPart is one step of the path to an element: a member name, and the
// index in its array (-1 for none).
type pathPart struct {
	name  string
	index int
}

func expression(root string, path []pathPart) string {
	var b strings.Builder
	b.WriteString(root)
	for _, p := range path {
		b.WriteByte('.')
		b.WriteString(p.name)
		if p.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(p.index))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// badCode reports whether x holds a coding with a code its complete code
// system does not define.
func (v *validation) badCode(x any) bool {
	switch t := x.(type) {
	case map[string]any:
		if _, _, bad := v.wrongCode(t); bad {
			return true
		}
		for _, c := range t {
			switch c.(type) {
			case map[string]any, []any:
				if v.badCode(c) {
					return true
				}
			}
		}
	case []any:
		for _, it := range t {
			if v.badCode(it) {
				return true
			}
		}
	}
	return false
}

// wrongCode reports whether the object m is a coding of a complete code
// system with a code the system does not define.
func (v *validation) wrongCode(m map[string]any) (system, code string, bad bool) {
	system, ok := m["system"].(string)
	if !ok {
		return "", "", false
	}
	code, ok = m["code"].(string)
	if !ok || !v.set.checkSystem(system) {
		return "", "", false
	}
	codes, known := v.set.codes[system]
	return system, code, known && !codes[code]
}

// refType returns the resource type of a literal reference ("Patient/1",
// "Patient/1/_history/2", "https://host/fhir/Patient/1"), or "" for a
// contained, urn: or unreadable reference.
func refType(ref string) string {
	if ref == "" || strings.HasPrefix(ref, "#") || strings.HasPrefix(ref, "urn:") {
		return ""
	}
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return ""
	}
	if t := parts[len(parts)-2]; r4.IsResourceType(t) {
		return t
	}
	return ""
}

// equal reports whether two JSON values are the same; numbers compare by
// their decimal text.
func equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			if !equal(xv, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number, float64:
		return number(a) != "" && number(a) == number(b)
	}
	return a == b
}

func number(x any) string {
	switch n := x.(type) {
	case json.Number:
		return n.String()
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64)
	}
	return ""
}

// matches reports whether val holds pattern: every member of a pattern
// object matches the value's member, every item of a pattern array matches
// some item of the value's array, and primitives are equal.
func matches(pattern, val any) bool {
	switch p := pattern.(type) {
	case map[string]any:
		m, ok := val.(map[string]any)
		if !ok {
			return false
		}
		for k, pv := range p {
			if !matches(pv, m[k]) {
				return false
			}
		}
		return true
	case []any:
		items, ok := val.([]any)
		if !ok {
			if val == nil {
				return false
			}
			items = []any{val}
		}
		for _, pv := range p {
			if !slices.ContainsFunc(items, func(it any) bool { return matches(pv, it) }) {
				return false
			}
		}
		return true
	}
	return equal(pattern, val)
}

func compact(x any) string {
	b, _ := json.Marshal(x)
	return string(b)
}
