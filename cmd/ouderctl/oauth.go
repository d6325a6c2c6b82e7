package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/postgres"
)

const clientsUsage = `usage:
  ouderctl clients add [flags] <id>     register a client (or replace the one with that id)
  ouderctl clients list                 list the registered clients
  ouderctl clients remove <id>          remove a client

flags of add:
  -kind public|confidential-asymmetric|backend   (default public)
  -name NAME                 shown on the consent page
  -redirect-uri URI          an exact redirect URI (repeat for several; apps only)
  -scope "SCOPES"            the scopes the client may be granted (apps default: ` + oauth.DefaultAppScope + `)
  -jwks FILE                 the client's public keys (JWKS) for private_key_jwt
  -jwks-url URL              or where the client publishes them
  -operator                  tokens of this backend client have full access
  -organization Organization/<id>
                            the organisation a backend client acts for: it sees
                            what that organisation's CareTeam memberships and
                            Consents allow (see docs/access-policy.md)
`

const tokenUsage = `usage: ouderctl token -as <Type/id or client id> -scope "SCOPES" [-patient ID]

Mints an access token of the server on this database (development mode only)
and prints just the token:

  curl -H "Authorization: Bearer $(ouderctl token -as admin -scope 'system/*.rs')" http://127.0.0.1:8080/fhir/Patient
`

const keysUsage = `usage:
  ouderctl keys list      list the token signing keys
  ouderctl keys rotate    make a new signing key current (the old one verifies its tokens until they expire)
`

// openOAuth connects to the database and returns the authorization
// server's storage on it.
func openOAuth(ctx context.Context, dbURL string) (*pgxpool.Pool, *postgres.OAuth, error) {
	if dbURL == "" {
		return nil, nil, errors.New("no database: set DATABASE_URL or -database-url, or start the server with make run")
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	return pool, postgres.NewOAuth(pool), nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, and returns those.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runClients is `ouderctl clients add|list|remove`.
func runClients(ctx context.Context, args []string, dbURL string, _ func(string) string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(out, clientsUsage)
		return errors.New("clients: expected add, list or remove")
	}
	sub, args := args[0], args[1:]
	var c oauth.Client
	var redirects stringList
	var jwksFile string
	fs := flag.NewFlagSet("clients "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if sub == "add" {
		fs.StringVar((*string)(&c.Kind), "kind", string(oauth.Public), "")
		fs.StringVar(&c.Name, "name", "", "")
		fs.Var(&redirects, "redirect-uri", "")
		fs.StringVar(&c.Scope, "scope", "", "")
		fs.StringVar(&jwksFile, "jwks", "", "")
		fs.StringVar(&c.JWKSURL, "jwks-url", "", "")
		fs.BoolVar(&c.Operator, "operator", false, "")
		fs.StringVar(&c.Organization, "organization", "", "")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		fmt.Fprint(out, clientsUsage)
		return fmt.Errorf("clients %s: %w", sub, err)
	}
	want := map[string]int{"add": 1, "list": 0, "remove": 1}
	n, ok := want[sub]
	if !ok {
		fmt.Fprint(out, clientsUsage)
		return fmt.Errorf("clients: unknown subcommand %q", sub)
	}
	if len(pos) != n {
		fmt.Fprint(out, clientsUsage)
		return fmt.Errorf("clients %s: expected %d argument(s), got %d", sub, n, len(pos))
	}
	pool, st, err := openOAuth(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch sub {
	case "add":
		c.ID, c.RedirectURIs = pos[0], redirects
		if jwksFile != "" {
			b, err := os.ReadFile(jwksFile)
			if err != nil {
				return fmt.Errorf("clients add: %w", err)
			}
			if !json.Valid(b) {
				return fmt.Errorf("clients add: %s is not JSON", jwksFile)
			}
			c.JWKS = b
		}
		if err := oauth.AddClient(ctx, st, c, time.Now()); err != nil {
			return fmt.Errorf("clients add: %w", err)
		}
		fmt.Fprintf(out, "registered %s client %s\n", c.Kind, c.ID)
	case "list":
		clients, err := oauth.ListClients(ctx, st)
		if err != nil {
			return err
		}
		if len(clients) == 0 {
			fmt.Fprintln(out, "no clients")
			return nil
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tSCOPE\tREDIRECT URIS / KEYS\tNOTES")
		for _, c := range clients {
			where := strings.Join(c.RedirectURIs, " ")
			switch {
			case len(c.JWKS) > 0:
				where = "JWKS inline"
			case c.JWKSURL != "":
				where = "JWKS " + c.JWKSURL
			case c.Kind == oauth.Backend:
				where = "no keys (tokens only through ouderctl token)"
			}
			var notes []string
			if c.Operator {
				notes = append(notes, "operator")
			}
			if c.Organization != "" {
				notes = append(notes, c.Organization)
			}
			if c.Dev {
				notes = append(notes, "development")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Kind, c.Scope, where, strings.Join(notes, ","))
		}
		return tw.Flush()
	case "remove":
		if err := oauth.RemoveClient(ctx, st, pos[0]); err != nil {
			if fhir.IsKind(err, fhir.NotFound) {
				return fmt.Errorf("clients remove: no client %q", pos[0])
			}
			return err
		}
		fmt.Fprintf(out, "removed client %s\n", pos[0])
	}
	return nil
}

// runToken is `ouderctl token`: a token for curl, in development mode only.
func runToken(ctx context.Context, args []string, dbURL string, _ func(string) string, out io.Writer) error {
	var req oauth.MintRequest
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&req.As, "as", "", "")
	fs.StringVar(&req.Scope, "scope", "", "")
	fs.StringVar(&req.Patient, "patient", "", "")
	pos, err := parseInterspersed(fs, args)
	if err != nil || len(pos) > 0 || req.As == "" || req.Scope == "" {
		fmt.Fprint(out, tokenUsage)
		if err == nil {
			err = errors.New("-as and -scope are required")
		}
		return fmt.Errorf("token: %w", err)
	}
	pool, st, err := openOAuth(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	// A person must exist in the record (as the server sees it).
	refs := []string{}
	if typ, id, ok := strings.Cut(req.As, "/"); ok {
		refs = append(refs, typ+"/"+id)
	}
	if req.Patient != "" {
		refs = append(refs, "Patient/"+req.Patient)
	}
	store := postgres.New(pool)
	for _, ref := range refs {
		typ, id, _ := strings.Cut(ref, "/")
		if _, err := store.Read(search.WithAccess(ctx, search.Unrestricted()), typ, id); err != nil {
			if fhir.IsKind(err, fhir.NotFound) || fhir.IsKind(err, fhir.Gone) {
				return fmt.Errorf("token: %s is not in the record", ref)
			}
			return fmt.Errorf("token: read %s: %w", ref, err)
		}
	}
	tok, err := oauth.Mint(ctx, st, req, time.Now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(out, tok)
	return nil
}

// runKeys is `ouderctl keys list|rotate`.
func runKeys(ctx context.Context, args []string, dbURL string, _ func(string) string, out io.Writer) error {
	if len(args) != 1 || (args[0] != "list" && args[0] != "rotate") {
		fmt.Fprint(out, keysUsage)
		return errors.New("keys: expected list or rotate")
	}
	pool, st, err := openOAuth(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	now := time.Now()
	if args[0] == "rotate" {
		kid, err := oauth.RotateKey(ctx, st, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "new signing key %s (instances use it within a minute; the old key keeps verifying its tokens until they expire)\n", kid)
		return nil
	}
	keys, err := oauth.ListKeys(ctx, st, now)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		fmt.Fprintln(out, "no signing keys (ouderd makes one at start-up)")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tCREATED\tSTATE")
	for _, k := range keys {
		state := "current"
		switch {
		case !k.Retired.IsZero() && k.Published:
			state = "retired " + k.Retired.UTC().Format(time.RFC3339) + ", still verifies"
		case !k.Retired.IsZero():
			state = "retired " + k.Retired.UTC().Format(time.RFC3339) + ", withdrawn"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, k.Created.UTC().Format(time.RFC3339), state)
	}
	return tw.Flush()
}
