package searchparam

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/digitaleouder/ouder/conformance/fhirpath"
	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/fhir"
)

// Extract returns the search index entries of resource, a resource of type
// typ decoded from JSON (with json.Decoder.UseNumber, so that numbers keep
// the precision they were written with), for every indexed parameter of typ:
// all but the column parameters (_id, _lastUpdated, see IsColumn) and those
// without an expression (see Param.NotIndexed). The store calls it on every
// write.
//
// Each value an expression finds is converted by the parameter's kind, as the
// R4 search page describes (http://hl7.org/fhir/R4/search.html):
//
//   - string: a string primitive, each part of a HumanName (family, given,
//     prefix, suffix, text) and of an Address (line, city, district, state,
//     postalCode, country, text), folded with Fold for Norm;
//   - token: code and other string primitives, booleans ("true", "false"),
//     Coding, CodeableConcept (each coding, and the text), Identifier (plus
//     rows for :of-type under the key of code+":of-type") and ContactPoint
//     (its system and value);
//   - reference: Type, ID and Version of a literal reference, URL for an
//     absolute one (with Type and ID too when it ends in Type/id), a token row
//     for Reference.identifier under the key of code+":identifier", URL and
//     Version of a canonical; references to contained resources are not
//     indexed;
//   - date: the range a date, dateTime, instant, Period or Timing covers;
//   - number and quantity: the value as written with the range its precision
//     implies (100 is [99.5, 100.5)), and the system, code and unit of a
//     Quantity (or Money, with its currency as code);
//   - uri: the value as written;
//   - composite: the entries of each component, under the composite's key,
//     with one Group per item the composite's expression finds.
//
// A value of a type the kind cannot use (a Range for a quantity parameter)
// and a value that is not valid FHIR (a malformed date) are left out rather
// than failing the write: validating the resource is not the index's job.
// Identical entries are stored once. Entries come in a fixed order
// (parameters by Key, values in document order), so that two extractions of
// one resource are equal. The entries of each composite match share a Group,
// numbered from 1 within the resource; all other entries have Group 0.
//
// It returns an error when typ has no search parameters in r (it is not a
// resource type), when resource's resourceType is not typ, and when an
// expression cannot be evaluated on the resource (which the HL7 examples
// show does not happen for the R4 parameters). It is safe for concurrent use.
func (r *Registry) Extract(typ string, resource map[string]any) (fhir.Index, error) {
	return r.extract(typ, resource, nil)
}

// skipFunc is told about each value extraction leaves out: the parameter,
// the kind the value was read as (the parameter's, or a composite
// component's), the value's FHIR type and why, when the type itself is not the
// reason ("contained", "invalid", "empty"). The examples test uses it to prove
// that nothing is left out by accident.
type skipFunc func(p *Param, kind, typ, why string)

// Reasons passed to skipFunc besides the type.
const (
	whyType      = ""          // the kind has no use for values of this type
	whyEmpty     = "empty"     // the value has none of the parts the kind indexes
	whyInvalid   = "invalid"   // the value is not valid FHIR (a malformed date or number)
	whyContained = "contained" // a reference to a contained resource
)

func (r *Registry) extract(typ string, resource map[string]any, skip skipFunc) (fhir.Index, error) {
	params, ok := r.byType[typ]
	if !ok {
		return fhir.Index{}, fmt.Errorf("searchparam: extract: %q is not a resource type with search parameters", typ)
	}
	if rt, _ := resource["resourceType"].(string); rt != typ {
		return fhir.Index{}, fmt.Errorf("searchparam: extract %s: the resource's resourceType is %q", typ, rt)
	}
	// Sorting by Key rather than by Code (as Params does) keeps the order fixed
	// at a fraction of the cost, which matters on every write.
	var buf [80]*Param
	ps := buf[:0]
	var perKind [5]int // parameters by kind, to size the entry lists
	for _, p := range params {
		if p.Expr != nil && !(strings.HasPrefix(p.Code, "_") && IsColumn(p.Code)) {
			ps = append(ps, p)
			perKind[kindIndex(p.Kind)]++
		}
	}
	slices.SortFunc(ps, func(a, b *Param) int { return cmp.Compare(a.Key, b.Key) })

	x := extractor{res: resource, skip: skip}
	// About one entry per parameter is typical (two for strings: the parts of
	// names and addresses); growing the lists from empty would cost a handful
	// of allocations each.
	x.idx.Strings = make([]fhir.StringEntry, 0, 2*perKind[1])
	x.idx.Tokens = make([]fhir.TokenEntry, 0, perKind[2])
	x.idx.References = make([]fhir.ReferenceEntry, 0, perKind[3])
	x.idx.Dates = make([]fhir.DateEntry, 0, perKind[4])
	for _, p := range ps {
		x.param = p
		nodes, err := p.Expr.Evaluate(resource)
		if err != nil {
			return fhir.Index{}, fmt.Errorf("searchparam: extract %s %s: %w", typ, p.Code, err)
		}
		if len(nodes) == 0 {
			continue
		}
		start := x.mark()
		if p.Kind == Composite {
			if err := x.composite(p, nodes); err != nil {
				return fhir.Index{}, fmt.Errorf("searchparam: extract %s %s: %w", typ, p.Code, err)
			}
		} else {
			for _, n := range nodes {
				x.add(p, p.Kind, 0, n)
			}
		}
		x.dedupe(start)
	}
	return x.idx, nil
}

// kindIndex numbers the kinds for counting.
func kindIndex(kind string) int {
	switch kind {
	case String:
		return 1
	case Token:
		return 2
	case Reference:
		return 3
	case Date:
		return 4
	}
	return 0 // the kinds with few values (or none of their own)
}

// extractor holds the state of one Extract call.
type extractor struct {
	res   map[string]any
	idx   fhir.Index
	group int32  // the last Group given to a composite match
	param *Param // the parameter being extracted, for skip
	skip  skipFunc
	// nskipped counts the calls of skipped, so that add can tell whether a
	// value that gave no entry has already been reported.
	nskipped int
}

// mark is the length of each entry list of an Index.
type mark [7]int

func (x *extractor) mark() mark {
	i := &x.idx
	return mark{len(i.Strings), len(i.Tokens), len(i.References), len(i.Dates), len(i.Numbers), len(i.Quantities), len(i.URIs)}
}

// truncate drops the entries added since m.
func (x *extractor) truncate(m mark) {
	i := &x.idx
	i.Strings, i.Tokens, i.References = i.Strings[:m[0]], i.Tokens[:m[1]], i.References[:m[2]]
	i.Dates, i.Numbers, i.Quantities, i.URIs = i.Dates[:m[3]], i.Numbers[:m[4]], i.Quantities[:m[5]], i.URIs[:m[6]]
}

// dedupe removes the entries added since m that equal an earlier one added
// since m. Entries of different parameters or groups never compare equal.
func (x *extractor) dedupe(m mark) {
	i := &x.idx
	i.Strings = dedupe(i.Strings, m[0])
	i.Tokens = dedupe(i.Tokens, m[1])
	i.References = dedupe(i.References, m[2])
	i.Dates = dedupe(i.Dates, m[3])
	i.Numbers = dedupe(i.Numbers, m[4])
	i.Quantities = dedupe(i.Quantities, m[5])
	i.URIs = dedupe(i.URIs, m[6])
}

// dedupe removes the later duplicates among s[from:], keeping the order.
func dedupe[E comparable](s []E, from int) []E {
	tail := s[from:]
	if len(tail) < 2 {
		return s
	}
	out := tail[:1]
	if len(tail) <= 16 { // the usual case; a map would cost more than it saves
	next:
		for _, e := range tail[1:] {
			for _, o := range out {
				if o == e {
					continue next
				}
			}
			out = append(out, e)
		}
		return s[:from+len(out)]
	}
	seen := make(map[E]struct{}, len(tail))
	seen[tail[0]] = struct{}{}
	for _, e := range tail[1:] {
		if _, dup := seen[e]; !dup {
			seen[e] = struct{}{}
			out = append(out, e)
		}
	}
	return s[:from+len(out)]
}

// skipped reports a value (or part of one) that gives no entry.
func (x *extractor) skipped(kind, typ, why string) {
	x.nskipped++
	if x.skip != nil {
		x.skip(x.param, kind, typ, why)
	}
}

// add converts one value of parameter p, read as kind (the parameter's own,
// or a composite component's), into entries of the given group.
func (x *extractor) add(p *Param, kind string, group int32, n fhirpath.Node) {
	before, skipped := x.mark(), x.nskipped
	switch kind {
	case String:
		x.addString(p.Key, group, n)
	case Token:
		x.addToken(p, group, n)
	case Reference:
		x.addReference(p, group, n)
	case Date:
		x.addDate(p.Key, group, n)
	case Number:
		x.addNumber(p.Key, group, n)
	case Quantity:
		x.addQuantity(p.Key, group, n)
	case URI:
		x.addURI(p.Key, group, n)
	default: // special, or a composite as a component
		x.skipped(kind, n.Type, whyType)
	}
	if x.nskipped == skipped && x.mark() == before {
		x.skipped(kind, n.Type, whyEmpty)
	}
}

// composite adds the entries of a composite parameter: for each item its
// expression finds, the values of every component evaluated on that item,
// converted by the component's kind under the composite's own Key, all with
// one new Group. The query side matches a composite value by joining the
// component entries on the resource and Group. An item for which some
// component has no entry cannot match and is left out.
func (x *extractor) composite(p *Param, nodes []fhirpath.Node) error {
	if len(p.Components) == 0 {
		return nil
	}
	for _, n := range nodes {
		start := x.mark()
		x.group++
		// The last component is usually the value (code-value-quantity), which
		// most items lack: trying it first saves evaluating the others.
		for _, c := range slices.Backward(p.Components) {
			vals, err := c.Expr.EvaluateAt(x.res, n)
			if err != nil {
				return err
			}
			before := x.mark()
			for _, v := range vals {
				x.add(p, c.Kind, x.group, v)
			}
			if x.mark() == before {
				x.truncate(start)
				x.group--
				break
			}
		}
	}
	return nil
}

// isStringPrimitive reports whether a FHIR type is a primitive held as a JSON
// string. Dates and times are strings too but only date parameters use them.
func isStringPrimitive(typ string) bool {
	switch typ {
	case "string", "code", "id", "markdown", "uri", "url", "canonical", "oid", "uuid":
		return true
	}
	return false
}

// isURIType reports whether a FHIR type is uri or one of its
// specialisations.
func isURIType(typ string) bool {
	switch typ {
	case "uri", "url", "canonical", "oid", "uuid":
		return true
	}
	return false
}

// addString indexes a string parameter: a string primitive as itself, a
// HumanName as each of its parts (family, every given, prefix and suffix, and
// text) and an Address as each of line, city, district, state, postalCode,
// country and text. Each part is a separate entry, so name=pet matches a given
// name "Peter" without matching across parts.
func (x *extractor) addString(key int64, group int32, n fhirpath.Node) {
	switch v := n.Value.(type) {
	case string:
		if isStringPrimitive(n.Type) {
			x.str(key, group, v)
			return
		}
	case map[string]any:
		switch n.Type {
		case "HumanName":
			x.str(key, group, str(v, "family"))
			x.strs(key, group, v["given"])
			x.strs(key, group, v["prefix"])
			x.strs(key, group, v["suffix"])
			x.str(key, group, str(v, "text"))
			return
		case "Address":
			x.strs(key, group, v["line"])
			for _, k := range [...]string{"city", "district", "state", "postalCode", "country", "text"} {
				x.str(key, group, str(v, k))
			}
			return
		}
	}
	x.skipped(String, n.Type, whyType)
}

func (x *extractor) str(key int64, group int32, s string) {
	if norm := Fold(s); norm != "" {
		x.idx.Strings = append(x.idx.Strings, fhir.StringEntry{Param: key, Group: group, Norm: norm, Exact: s})
	}
}

func (x *extractor) strs(key int64, group int32, v any) {
	list, _ := v.([]any)
	for _, s := range list {
		if s, ok := s.(string); ok {
			x.str(key, group, s)
		}
	}
}

// addToken indexes a token parameter
// (http://hl7.org/fhir/R4/search.html#token):
//
//   - a code, string, uri or other string primitive: the code, without system;
//   - a boolean: the code "true" or "false";
//   - a Coding: its system and code, with the folded display as Text;
//   - a CodeableConcept: each coding as above, taking the folded text as Text
//     when a coding has no display; the text alone (no system or code) when
//     no coding carries it, so that :text finds it;
//   - an Identifier: its system and value, with the folded type.text as Text;
//     and for the :of-type modifier, under the key of code+":of-type", one
//     entry per coding of its type, with the identifier's value as written
//     as Text;
//   - a ContactPoint: its value, with its system (phone, email, ...) as the
//     system, so telecom=email|x@example.org works.
func (x *extractor) addToken(p *Param, group int32, n fhirpath.Node) {
	key := p.Key
	switch v := n.Value.(type) {
	case string:
		if isStringPrimitive(n.Type) {
			x.token(key, group, "", v, "")
			return
		}
	case bool:
		x.token(key, group, "", strconv.FormatBool(v), "")
		return
	case map[string]any:
		switch n.Type {
		case "Coding":
			x.coding(key, group, v, "")
			return
		case "CodeableConcept":
			x.codeableConcept(key, group, v)
			return
		case "Identifier":
			x.identifier(p, group, v)
			return
		case "ContactPoint":
			x.token(key, group, str(v, "system"), str(v, "value"), "")
			return
		}
	}
	x.skipped(Token, n.Type, whyType)
}

// token adds an entry unless it would be empty.
func (x *extractor) token(key int64, group int32, system, code, text string) {
	if system == "" && code == "" && text == "" {
		return
	}
	x.idx.Tokens = append(x.idx.Tokens, fhir.TokenEntry{Param: key, Group: group, System: system, Code: code, Text: text})
}

// coding adds a Coding; text is the Text to use when it has no display. It
// returns the Text it used.
func (x *extractor) coding(key int64, group int32, c map[string]any, text string) string {
	if d := str(c, "display"); d != "" {
		text = Fold(d)
	}
	x.token(key, group, str(c, "system"), str(c, "code"), text)
	return text
}

func (x *extractor) codeableConcept(key int64, group int32, cc map[string]any) {
	text := Fold(str(cc, "text"))
	used := text == ""
	codings, _ := cc["coding"].([]any)
	for _, c := range codings {
		if c, ok := c.(map[string]any); ok {
			if x.coding(key, group, c, text) == text {
				used = true
			}
		}
	}
	if !used {
		x.token(key, group, "", "", text)
	}
}

func (x *extractor) identifier(p *Param, group int32, id map[string]any) {
	value := str(id, "value")
	typ, _ := id["type"].(map[string]any)
	x.token(p.Key, group, str(id, "system"), value, Fold(str(typ, "text")))
	if value == "" || typ == nil {
		return
	}
	codings, _ := typ["coding"].([]any)
	var ofType int64
	for _, c := range codings {
		c, ok := c.(map[string]any)
		if !ok || (str(c, "system") == "" && str(c, "code") == "") {
			continue
		}
		if ofType == 0 {
			ofType = fhir.ParamKey(p.Type, p.Code+":of-type")
		}
		x.token(ofType, group, str(c, "system"), str(c, "code"), value)
	}
}

// addReference indexes a reference parameter
// (http://hl7.org/fhir/R4/search.html#reference). For a Reference:
//
//   - "Type/id" and "Type/id/_history/v" (with an R4 resource type) give
//     Type, ID and Version;
//   - an absolute URL gives URL, and when its last segments are Type/id (or
//     Type/id/_history/v) also Type, ID and Version, so that the query side
//     can match it both by URL and as a reference to a resource of this
//     server, depending on the base it serves;
//   - urn:uuid:, urn:oid: and any other reference give URL;
//   - "#id", a reference to a contained resource, gives nothing: contained
//     resources are not searchable as references (they are reached with
//     _contained, which is not supported);
//   - Reference.identifier gives a token entry (system, value) under the key
//     of code+":identifier", for the :identifier modifier, whether or not
//     the Reference also has a literal reference.
//
// A canonical (or uri) gives URL with the version after "|" split off into
// Version; a relative one ("Questionnaire/q1", which the HL7 examples use)
// also gives Type and ID. An absolute canonical does not: it names the
// artifact, not where it is stored. "#id" (a contained artifact) gives
// nothing.
func (x *extractor) addReference(p *Param, group int32, n fhirpath.Node) {
	switch v := n.Value.(type) {
	case map[string]any:
		if n.Type != "Reference" {
			break
		}
		if ref := str(v, "reference"); ref != "" {
			x.literalReference(p.Key, group, n.Type, ref)
		}
		if id, ok := v["identifier"].(map[string]any); ok {
			system, value := str(id, "system"), str(id, "value")
			if system != "" || value != "" {
				x.token(fhir.ParamKey(p.Type, p.Code+":identifier"), group, system, value, "")
			}
		}
		return
	case string:
		if !isURIType(n.Type) {
			break
		}
		if strings.HasPrefix(v, "#") {
			x.skipped(Reference, n.Type, whyContained)
			return
		}
		url, version, _ := strings.Cut(v, "|")
		e := fhir.ReferenceEntry{Param: p.Key, Group: group, URL: url, Version: version}
		if rt, id, _, ok := parseRelative(url); ok {
			e.Type, e.ID = rt, id
		}
		if url != "" {
			x.idx.References = append(x.idx.References, e)
		}
		return
	}
	x.skipped(Reference, n.Type, whyType)
}

func (x *extractor) literalReference(key int64, group int32, typ, ref string) {
	if ref[0] == '#' {
		x.skipped(Reference, typ, whyContained)
		return
	}
	e := fhir.ReferenceEntry{Param: key, Group: group}
	if rt, id, version, ok := parseRelative(ref); ok {
		e.Type, e.ID, e.Version = rt, id, version
	} else {
		e.URL = ref
		if base, rest, ok := strings.Cut(ref, "://"); ok && base != "" {
			if slash := strings.IndexByte(rest, '/'); slash > 0 {
				e.Type, e.ID, e.Version, _ = parseTail(rest[slash+1:])
			}
		}
	}
	x.idx.References = append(x.idx.References, e)
}

// parseRelative splits "Type/id" or "Type/id/_history/version", with an R4
// resource type and valid ids; ok is false for anything else.
func parseRelative(s string) (typ, id, version string, ok bool) {
	typ, rest, ok := strings.Cut(s, "/")
	if !ok || !r4.IsResourceType(typ) {
		return "", "", "", false
	}
	id, rest, hasVersion := strings.Cut(rest, "/")
	if hasVersion {
		v, found := strings.CutPrefix(rest, "_history/")
		if !found || !isID(v) {
			return "", "", "", false
		}
		version = v
	}
	if !isID(id) {
		return "", "", "", false
	}
	return typ, id, version, true
}

// parseTail finds Type/id or Type/id/_history/version at the end of the path
// of an absolute URL.
func parseTail(path string) (typ, id, version string, ok bool) {
	segs := strings.Split(path, "/")
	n := len(segs)
	if n >= 4 && segs[n-2] == "_history" {
		if typ, id, version, ok = parseRelative(strings.Join(segs[n-4:], "/")); ok {
			return typ, id, version, true
		}
	}
	if n >= 2 {
		return parseRelative(segs[n-2] + "/" + segs[n-1])
	}
	return "", "", "", false
}

// isID reports whether s is a valid FHIR id: 1 to 64 of A-Z, a-z, 0-9, '-'
// and '.'.
func isID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// addDate indexes a date parameter as the range each value covers
// (http://hl7.org/fhir/R4/search.html#date): a date, dateTime or instant
// covers its whole precision ("2020-03" is all of March; a time without a
// zone is read as UTC); a Period runs from the start of its start to the end
// of its end, an open end being fhir.MinTime or fhir.MaxTime; a Timing gives
// each event and its repeat.boundsPeriod. The bounds are in UTC.
func (x *extractor) addDate(key int64, group int32, n fhirpath.Node) {
	switch v := n.Value.(type) {
	case string:
		switch n.Type {
		case "date", "dateTime", "instant":
			x.date(key, group, n.Type, v)
			return
		}
	case map[string]any:
		switch n.Type {
		case "Period":
			x.period(key, group, v)
			return
		case "Timing":
			events, _ := v["event"].([]any)
			for _, e := range events {
				if s, ok := e.(string); ok {
					x.date(key, group, "dateTime", s)
				}
			}
			if repeat, ok := v["repeat"].(map[string]any); ok {
				if bp, ok := repeat["boundsPeriod"].(map[string]any); ok {
					x.period(key, group, bp)
				}
			}
			return
		}
	}
	x.skipped(Date, n.Type, whyType)
}

func (x *extractor) date(key int64, group int32, typ, s string) {
	r, err := fhir.ParseDate(s, time.UTC)
	if err != nil {
		x.skipped(Date, typ, whyInvalid)
		return
	}
	hi := r.End
	if typ == "instant" {
		// An instant is a point in time, not the span of its last digit
		// (http://hl7.org/fhir/R4/search.html#date): it covers the
		// microsecond the store resolves.
		hi = r.Start.Add(time.Microsecond)
	}
	x.idx.Dates = append(x.idx.Dates, fhir.DateEntry{Param: key, Group: group, Lo: r.Start.UTC(), Hi: hi.UTC()})
}

func (x *extractor) period(key int64, group int32, p map[string]any) {
	start, end := str(p, "start"), str(p, "end")
	if start == "" && end == "" {
		return
	}
	e := fhir.DateEntry{Param: key, Group: group, Lo: fhir.MinTime, Hi: fhir.MaxTime}
	if start != "" {
		r, err := fhir.ParseDate(start, time.UTC)
		if err != nil {
			x.skipped(Date, "Period", whyInvalid)
			return
		}
		e.Lo = r.Start.UTC()
	}
	if end != "" {
		r, err := fhir.ParseDate(end, time.UTC)
		if err != nil {
			x.skipped(Date, "Period", whyInvalid)
			return
		}
		e.Hi = r.End.UTC()
	}
	x.idx.Dates = append(x.idx.Dates, e)
}

// isNumber reports whether a FHIR type is a primitive held as a JSON number.
func isNumber(typ string) bool {
	switch typ {
	case "integer", "decimal", "positiveInt", "unsignedInt":
		return true
	}
	return false
}

// addNumber indexes a number parameter: the value as written and the range
// its precision implies (see numberRange). A Range (RiskAssessment
// probability is decimal or Range) is left out: R4 does not say how a number
// search matches one.
func (x *extractor) addNumber(key int64, group int32, n fhirpath.Node) {
	if isNumber(n.Type) {
		if num, ok := n.AsNumber(); ok {
			if lo, hi, ok := numberRange(num.String()); ok {
				x.idx.Numbers = append(x.idx.Numbers, fhir.NumberEntry{Param: key, Group: group, Value: num.String(), Lo: lo, Hi: hi})
			} else {
				x.skipped(Number, n.Type, whyInvalid)
			}
			return
		}
	}
	x.skipped(Number, n.Type, whyType)
}

// addQuantity indexes a quantity parameter: a Quantity (or Age, Count,
// Distance, Duration) as its value with the range of its precision, system,
// code and unit; a Money as its value with the currency as code in the ISO
// 4217 system. The comparator of a Quantity ("<5") is not taken into account.
// A Range and SampledData are left out: R4 does not define how a quantity
// search matches them.
func (x *extractor) addQuantity(key int64, group int32, n fhirpath.Node) {
	if v, ok := n.Value.(map[string]any); ok {
		switch n.Type {
		case "Quantity", "Age", "Count", "Distance", "Duration", "SimpleQuantity", "MoneyQuantity":
			x.quantity(key, group, n.Type, v["value"], str(v, "system"), str(v, "code"), str(v, "unit"))
			return
		case "Money":
			system := ""
			if str(v, "currency") != "" {
				system = "urn:iso:std:iso:4217"
			}
			x.quantity(key, group, n.Type, v["value"], system, str(v, "currency"), "")
			return
		}
	}
	x.skipped(Quantity, n.Type, whyType)
}

func (x *extractor) quantity(key int64, group int32, typ string, value any, system, code, unit string) {
	num, ok := fhirpath.Node{Value: value}.AsNumber()
	if !ok {
		if value != nil {
			x.skipped(Quantity, typ, whyInvalid)
		}
		return // no value: nothing a quantity search can match
	}
	lo, hi, ok := numberRange(num.String())
	if !ok {
		x.skipped(Quantity, typ, whyInvalid)
		return
	}
	x.idx.Quantities = append(x.idx.Quantities, fhir.QuantityEntry{
		Param: key, Group: group, Value: num.String(), Lo: lo, Hi: hi,
		System: system, Code: code, Unit: unit,
	})
}

// addURI indexes a uri parameter: a uri, url, canonical, oid or uuid as
// written; a canonical keeps its "|version".
func (x *extractor) addURI(key int64, group int32, n fhirpath.Node) {
	if s, ok := n.Value.(string); ok && isURIType(n.Type) {
		if s != "" {
			x.idx.URIs = append(x.idx.URIs, fhir.URIEntry{Param: key, Group: group, Value: s})
		}
		return
	}
	x.skipped(URI, n.Type, whyType)
}

// str returns m[k] when it is a string.
func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
