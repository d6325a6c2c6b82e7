package search

import (
	"context"

	"github.com/digitaleouder/ouder/fhir"
)

// Searcher runs a parsed search. The PostgreSQL store implements it; every
// match, include and count goes through its one query path, so the access
// policy compiled into that path applies to all of them.
type Searcher interface {
	// Search returns one page of matches for q, with the resources that
	// q.Include and q.RevInclude pull in. A malformed cursor is an Invalid
	// error naming _cursor.
	Search(ctx context.Context, q *Query) (*Result, error)
}

// Result is one page of a search.
type Result struct {
	// Matches are the resources that match, in the requested order.
	Matches []fhir.Resource
	// Included are the resources added by _include and _revinclude (each
	// once, none of them also a match).
	Included []fhir.Resource
	// Total is the number of matches across all pages, or -1 when not
	// counted (_total=none, the default).
	Total int64
	// Next and Prev are the cursors of the following and preceding pages
	// ("" when there is none).
	Next, Prev string
}
