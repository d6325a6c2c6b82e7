package postgres

import "regexp"

// The helpers of compiler.has that decide whether a _has must read the
// resources row of each referring resource.

// columnsOf matches every column reference of a compiled condition, as
// alias.column.
var columnsOf = regexp.MustCompile(`\b([a-z]+[0-9]+)\.([a-z_]+)\b`)

// sourceRowNeeded reports whether the _has condition on referring
// resources (alias o) must join their resources row: when visibility vis
// asks more than "not deleted" of them (an access rule), or when cond reads
// a column of o other than rid (_id, _lastUpdated, a nested _has).
func sourceRowNeeded(o, vis, cond string) bool {
	if vis != "NOT "+o+".deleted" {
		return true
	}
	for _, m := range columnsOf.FindAllStringSubmatch(cond, -1) {
		if m[1] == o && m[2] != "rid" {
			return true
		}
	}
	return false
}

// ridOf rewrites cond, compiled for resource alias o, to take o's rid from
// the index row alias x instead.
func ridOf(cond, o, x string) string {
	return columnsOf.ReplaceAllStringFunc(cond, func(col string) string {
		if col == o+".rid" {
			return x + ".rid"
		}
		return col
	})
}
