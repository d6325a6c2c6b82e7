package rest_test

import (
	"fmt"
	"sync"

	"github.com/digitaleouder/ouder/conformance/ig"
	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/conformance/searchparam"
)

// igRegistry returns the search parameters ouderd runs with: R4's and the
// implementation guide's (which it installs at start-up), such as
// Communication?about=, on which the policy's "dependents" of a Consent rest.
var igRegistry = sync.OnceValues(func() (*searchparam.Registry, error) {
	resources, err := ig.Resources()
	if err != nil {
		return nil, err
	}
	var custom []r4.SearchParam
	for _, r := range resources {
		if r.Type != "SearchParameter" {
			continue
		}
		sp, err := searchparam.Definition(r.JSON)
		if err != nil {
			return nil, fmt.Errorf("SearchParameter/%s: %w", r.ID, err)
		}
		custom = append(custom, sp)
	}
	return searchparam.New(custom)
})
