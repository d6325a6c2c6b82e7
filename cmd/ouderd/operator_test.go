package main

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/digitaleouder/ouder/auth/oauth/backendclient"
)

// operators holds, by server origin, the Authorization header of an
// operator of that server (useOperator): call() sends it when a request
// names no Authorization of its own. Without it, call() sends a backend
// token of the external test issuer, which the access policy lets see
// nothing (it acts for no organisation and is no operator).
var operators sync.Map

// useOperator registers an operator backend client in the database dsn of
// the server at base, as a deployment's operator would (`ouderctl clients
// add -kind backend -operator`), gets a token for it from the server's own
// authorization server with a client assertion (SMART Backend Services),
// and makes call() use it for requests to base. It returns the header.
func useOperator(tb testing.TB, base, dsn string) string {
	tb.Helper()
	ctx := context.Background()
	op, err := backendclient.RegisterOperator(ctx, dsn, "test-operator", "")
	if err != nil {
		tb.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	issuer := u.Scheme + "://" + u.Host
	tok, err := op.Token(ctx, issuer, "system/*.cruds")
	if err != nil {
		tb.Fatalf("operator token: %v", err)
	}
	header := "Authorization: Bearer " + tok
	operators.Store(issuer, header)
	return header
}

// operatorFor returns the header useOperator stored for the server of
// rawURL, and false when there is none.
func operatorFor(rawURL string) (string, bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", false
	}
	h, ok := operators.Load(u.Scheme + "://" + u.Host)
	if !ok {
		return "", false
	}
	return strings.TrimSpace(strings.TrimPrefix(h.(string), "Authorization:")), true
}
