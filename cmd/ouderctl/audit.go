package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/store/postgres"
)

const auditUsage = `usage: ouderctl audit verify

  verify   recompute the audit trail's hash chain and report the first record
           that was altered, deleted or inserted behind the server's back;
           exit status 1 when there is one (docs/audit.md)
`

// runAudit runs "ouderctl audit ...".
func runAudit(ctx context.Context, args []string, dbURL string, _ func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 || fs.Arg(0) != "verify" {
		fmt.Fprint(out, auditUsage)
		return errors.New("expected: audit verify")
	}
	if dbURL == "" {
		return errors.New("no database: set DATABASE_URL or -database-url, or start the server with make run")
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	v, err := postgres.VerifyAudit(ctx, pool)
	if err != nil {
		return err
	}
	if v.Problem != nil {
		fmt.Fprintf(out, "audit trail NOT intact: %s\n(%d links checked before it)\n", v.Problem, v.Sealed)
		return errors.New("the audit trail was tampered with: " + v.Problem.String())
	}
	fmt.Fprintf(out, "audit trail intact: %d sealed record(s), %d not sealed yet\nhead %s\n", v.Sealed, v.Unsealed, hex.EncodeToString(v.Head))
	return nil
}
