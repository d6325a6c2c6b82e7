package postgres

import (
	"fmt"
	"strings"
	"time"

	"github.com/digitaleouder/ouder/fhir"
)

// indexTables lists, per index table, its value columns and how to turn an
// Index into column arrays for unnest. The tables are those of migration
// 002; every one also has rid, param and grp.
type indexTable struct {
	name    string
	columns []string // value columns after rid, param, grp
	casts   []string // array casts for unnest, parallel to columns
	arrays  func(x *fhir.Index) (n int, params []int64, groups []int32, cols []any)
}

var indexTables = []indexTable{
	{
		name: "idx_string", columns: []string{"norm", "exact"}, casts: []string{"text[]", "text[]"},
		arrays: func(x *fhir.Index) (int, []int64, []int32, []any) {
			n := len(x.Strings)
			p, g, a, b := make([]int64, n), make([]int32, n), make([]string, n), make([]string, n)
			for i, e := range x.Strings {
				p[i], g[i], a[i], b[i] = e.Param, e.Group, fhir.Clip(e.Norm), fhir.Clip(e.Exact)
			}
			return n, p, g, []any{a, b}
		},
	},
	{
		name: "idx_token", columns: []string{"system", "code", "text"}, casts: []string{"text[]", "text[]", "text[]"},
		arrays: func(x *fhir.Index) (int, []int64, []int32, []any) {
			n := len(x.Tokens)
			p, g, a, b, c := make([]int64, n), make([]int32, n), make([]string, n), make([]string, n), make([]string, n)
			for i, e := range x.Tokens {
				p[i], g[i], a[i], b[i], c[i] = e.Param, e.Group, fhir.Clip(e.System), fhir.Clip(e.Code), fhir.Clip(e.Text)
			}
			return n, p, g, []any{a, b, c}
		},
	},
	{
		name: "idx_reference", columns: []string{"type", "id", "version", "url"}, casts: []string{"text[]", "text[]", "text[]", "text[]"},
		arrays: func(x *fhir.Index) (int, []int64, []int32, []any) {
			n := len(x.References)
			p, g := make([]int64, n), make([]int32, n)
			a, b, c, d := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			for i, e := range x.References {
				p[i], g[i], a[i], b[i], c[i], d[i] = e.Param, e.Group, e.Type, e.ID, fhir.Clip(e.Version), fhir.Clip(e.URL)
			}
			return n, p, g, []any{a, b, c, d}
		},
	},
	{
		name: "idx_date", columns: []string{"lo", "hi"}, casts: []string{"timestamptz[]", "timestamptz[]"},
		arrays: func(x *fhir.Index) (int, []int64, []int32, []any) {
			n := len(x.Dates)
			p, g := make([]int64, n), make([]int32, n)
			lo, hi := make([]time.Time, n), make([]time.Time, n)
			for i, e := range x.Dates {
				p[i], g[i], lo[i], hi[i] = e.Param, e.Group, e.Lo.UTC(), e.Hi.UTC()
			}
			return n, p, g, []any{lo, hi}
		},
	},
	{
		name: "idx_number", columns: []string{"value", "lo", "hi"}, casts: []string{"text[]::numeric[]", "text[]::numeric[]", "text[]::numeric[]"},
		arrays: func(x *fhir.Index) (int, []int64, []int32, []any) {
			n := len(x.Numbers)
			p, g, a, b, c := make([]int64, n), make([]int32, n), make([]string, n), make([]string, n), make([]string, n)
			for i, e := range x.Numbers {
				p[i], g[i], a[i], b[i], c[i] = e.Param, e.Group, e.Value, e.Lo, e.Hi
			}
			return n, p, g, []any{a, b, c}
		},
	},
	{
		name: "idx_quantity", columns: []string{"value", "lo", "hi", "system", "code", "unit"},
		casts: []string{"text[]::numeric[]", "text[]::numeric[]", "text[]::numeric[]", "text[]", "text[]", "text[]"},
		arrays: func(x *fhir.Index) (int, []int64, []int32, []any) {
			n := len(x.Quantities)
			p, g := make([]int64, n), make([]int32, n)
			a, b, c, d, e2, f := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			for i, e := range x.Quantities {
				p[i], g[i], a[i], b[i], c[i], d[i], e2[i], f[i] = e.Param, e.Group, e.Value, e.Lo, e.Hi, fhir.Clip(e.System), fhir.Clip(e.Code), fhir.Clip(e.Unit)
			}
			return n, p, g, []any{a, b, c, d, e2, f}
		},
	},
	{
		name: "idx_uri", columns: []string{"value"}, casts: []string{"text[]"},
		arrays: func(x *fhir.Index) (int, []int64, []int32, []any) {
			n := len(x.URIs)
			p, g, a := make([]int64, n), make([]int32, n), make([]string, n)
			for i, e := range x.URIs {
				p[i], g[i], a[i] = e.Param, e.Group, fhir.Clip(e.Value)
			}
			return n, p, g, []any{a}
		},
	},
}

// sqlArgs collects statement arguments and hands out their placeholders.
type sqlArgs []any

func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return fmt.Sprintf("$%d", len(*a))
}

// indexCTEs returns the data-modifying CTEs that write the index rows of x
// for the resource whose rid the CTE named src yields. With replace, the old
// rows of that rid are deleted first (in the same statement: the DELETE sees
// the snapshot from before the statement, so it never removes the new rows).
func indexCTEs(src string, x *fhir.Index, replace bool, args *sqlArgs) string {
	var b strings.Builder
	for i, t := range indexTables {
		if replace {
			fmt.Fprintf(&b, ",\n d%d AS (DELETE FROM %s WHERE rid IN (SELECT rid FROM %s))", i, t.name, src)
		}
		if x == nil {
			continue
		}
		n, params, groups, cols := t.arrays(x)
		if n == 0 {
			continue
		}
		fmt.Fprintf(&b, ",\n i%d AS (INSERT INTO %s (rid, param, grp, %s) SELECT %s.rid, v.* FROM %s, unnest(%s::bigint[], %s::integer[]",
			i, t.name, strings.Join(t.columns, ", "), src, src, args.add(params), args.add(groups))
		for j, c := range cols {
			fmt.Fprintf(&b, ", %s::%s", args.add(c), t.casts[j])
		}
		b.WriteString(") v)")
	}
	return b.String()
}
