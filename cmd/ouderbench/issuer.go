package main

import (
	"context"

	"github.com/digitaleouder/ouder/auth/oauth/backendclient"
)

// benchOperator is the suite's client of ouderd: ouderd refuses every FHIR
// request without a bearer token, and its access policy lets a backend
// client see only what the organisation it acts for may, so the suite
// registers an operator backend client in ouderd's database (as
// `ouderctl clients add -kind backend -operator` would) and gets its
// tokens from ouderd's own token endpoint with a client assertion (SMART
// Backend Services). The scenarios then measure what authentication and
// the access decision cost an operator: the same SQL as without them.
type benchOperator = backendclient.Client

// benchClientID is the operator client the suite registers.
const benchClientID = "ouderbench"

// registerOperator registers the suite's operator client in the database
// dsn (ouderd's, migrated).
func registerOperator(ctx context.Context, dsn string) (*benchOperator, error) {
	return backendclient.RegisterOperator(ctx, dsn, benchClientID, "ouderbench")
}
