package fhir

import (
	"hash/fnv"
	"time"
	"unicode/utf8"
)

// ParamKey is the stable 63-bit key of search parameter code on resource
// type typ, as stored in the index tables. It is a hash so that every server
// instance, and custom SearchParameters, agree on it without coordination;
// it must never change for a given (type, code), or stored indexes would be
// orphaned. Modifier-specific index rows (a reference's :identifier, an
// identifier's :of-type) use the code with the modifier appended
// ("subject:identifier").
func ParamKey(typ, code string) int64 {
	h := fnv.New64a()
	h.Write([]byte(typ))
	h.Write([]byte{'.'})
	h.Write([]byte(code))
	return int64(h.Sum64() >> 1)
}

// Index holds the search index entries of one resource version, extracted
// at write time from the search parameters of its type. Every entry names its
// parameter by ParamKey. Group ties the parts of a composite parameter
// together: entries of one composite match share a non-zero Group; entries of
// plain parameters have Group 0.
type Index struct {
	Strings    []StringEntry
	Tokens     []TokenEntry
	References []ReferenceEntry
	Dates      []DateEntry
	Numbers    []NumberEntry
	Quantities []QuantityEntry
	URIs       []URIEntry
}

// Len returns the number of entries.
func (x *Index) Len() int {
	return len(x.Strings) + len(x.Tokens) + len(x.References) + len(x.Dates) + len(x.Numbers) + len(x.Quantities) + len(x.URIs)
}

// StringEntry indexes a string parameter. Norm is the value folded for the
// default and :contains matches (lower case, accents removed, spaces
// collapsed); Exact is the value as written, for :exact.
type StringEntry struct {
	Param int64
	Group int32
	Norm  string
	Exact string
}

// TokenEntry indexes a token parameter: a code with its system (System is
// empty when the element has none), and Text, the folded display or text,
// for :text. For the :of-type rows of an identifier, System and Code are
// the identifier type's coding and Text is the identifier value as written.
type TokenEntry struct {
	Param  int64
	Group  int32
	System string
	Code   string
	Text   string
}

// ReferenceEntry indexes a reference parameter. A literal reference to a
// resource on this server has Type and ID (and Version when the reference
// names one); any other reference, and canonicals, have URL (canonical
// versions split into Version).
type ReferenceEntry struct {
	Param   int64
	Group   int32
	Type    string
	ID      string
	Version string
	URL     string
}

// DateEntry indexes a date parameter as the range it covers, [Lo, Hi): a
// date of day precision covers the whole day, a Period its start to its end.
// An open end is MinTime or MaxTime.
type DateEntry struct {
	Param  int64
	Group  int32
	Lo, Hi time.Time
}

// The bounds used for open-ended dates (a Period without start or end).
var (
	MinTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// NumberEntry indexes a number parameter: Value as written and the range
// [Lo, Hi) its precision implies (100 covers [99.5, 100.5)). All three are
// decimal strings, so no precision is lost on the way to the database.
type NumberEntry struct {
	Param         int64
	Group         int32
	Value, Lo, Hi string
}

// QuantityEntry indexes a quantity parameter: the value as a number entry
// plus its unit system, code and human unit.
type QuantityEntry struct {
	Param              int64
	Group              int32
	Value, Lo, Hi      string
	System, Code, Unit string
}

// URIEntry indexes a uri parameter.
type URIEntry struct {
	Param int64
	Group int32
	Value string
}

// IndexTextLimit is the most bytes of a text value an index row keeps.
// PostgreSQL's b-tree rows are limited to about 2.7 kB, and a long
// description or URL must not make a write fail; searches clip their values
// the same way, so a long value still matches itself (and, beyond the
// limit, anything that shares its first IndexTextLimit bytes).
const IndexTextLimit = 800

// Clip returns s cut to at most IndexTextLimit bytes, at a rune boundary.
func Clip(s string) string {
	if len(s) <= IndexTextLimit {
		return s
	}
	cut := IndexTextLimit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
