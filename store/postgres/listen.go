package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// How a listening connection notices that it died: after listenIdle without
// a notification it is pinged, and must answer within listenPing.
const (
	listenIdle = 30 * time.Second
	listenPing = 5 * time.Second
)

// listen LISTENs on channel on a connection of its own taken from pool.
// Once listening it calls ready (from then on no notification can be
// missed), then notified with the payload of every notification, until ctx
// ends (it returns ctx's error), the connection fails or notified returns
// an error (it returns that error). A connection idle for listenIdle is
// pinged, so a dead one is noticed.
func listen(ctx context.Context, pool *pgxpool.Pool, channel string, ready func(context.Context) error, notified func(payload string) error) error {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack() // the pool must not reuse a connection that listens
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		return err
	}
	if err := ready(ctx); err != nil {
		return err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && wctx.Err() != nil: // idle: is the connection alive?
			if conn.IsClosed() {
				return fmt.Errorf("idle connection closed: %w", err)
			}
			pctx, cancel := context.WithTimeout(ctx, listenPing)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			continue
		case err != nil:
			return err
		}
		if err := notified(n.Payload); err != nil {
			return err
		}
	}
}
