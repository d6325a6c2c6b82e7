// Command ouderd is the Digitale Ouder FHIR R4 server.
//
// With no DATABASE_URL it runs its own PostgreSQL cluster under
// ./var/pgdata (using the installed PostgreSQL binaries); see README.md for
// every setting.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "ouderd:", err)
		os.Exit(1)
	}
}

// run starts the server and blocks until ctx is cancelled (SIGINT/SIGTERM)
// or the server fails, then drains requests and shuts down.
func run(ctx context.Context, args []string, getenv func(string) string) error {
	m := NewMain()
	if err := m.ParseFlags(args, getenv); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case <-m.Done():
		serveErr = m.Err()
	}
	m.Logger.Info("shutting down: draining requests")
	return errors.Join(serveErr, m.Close())
}
