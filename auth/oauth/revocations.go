package oauth

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// RevocationFeed is where the server learns which access tokens are
// revoked without asking the database on every request. store/postgres
// implements it with LISTEN/NOTIFY on the table Storage writes.
type RevocationFeed interface {
	// RevokedTokens calls fn with every revoked access token that
	// expires after after.
	RevokedTokens(ctx context.Context, after time.Time, fn func(jti string, expiresAt time.Time) error) error
	// ListenRevocations listens for revocations committed by any
	// instance, calls ready once listening, then revoked for each, until
	// ctx ends or the connection fails (an error).
	ListenRevocations(ctx context.Context, ready func(context.Context) error, revoked func(jti string, expiresAt time.Time)) error
	// OnRevoke sets fn to be called, after commit, with every access
	// token this process revokes.
	OnRevoke(fn func(jti string, expiresAt time.Time))
}

// revocationSweep is how often expired ids leave the set.
const revocationSweep = time.Minute

// revocationSet is the revoked access tokens that have not expired (plus
// pruneGrace, as the database keeps them), by jti. Revocations only ever
// add: a revoked token never becomes valid again, so whatever the set
// holds is true. What it lacks is known only while trusted: from the
// first load after LISTEN until the listening connection is lost.
type revocationSet struct {
	mu      sync.RWMutex
	trusted bool
	ids     map[string]time.Time
}

// lookup reports whether jti is in the set, and whether that answer can be
// believed: a jti in the set is revoked; one not in it is not revoked only
// while the set is trusted.
func (r *revocationSet) lookup(jti string) (revoked, known bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, ok := r.ids[jti]; ok {
		return true, true
	}
	return false, r.trusted
}

// add puts a revoked token in the set.
func (r *revocationSet) add(jti string, exp time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]time.Time{}
	}
	r.ids[jti] = exp
}

// setTrusted marks whether the set is complete.
func (r *revocationSet) setTrusted(ok bool) {
	r.mu.Lock()
	r.trusted = ok
	r.mu.Unlock()
}

// sweep drops the ids that expired before before.
func (r *revocationSet) sweep(before time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for jti, exp := range r.ids {
		if exp.Before(before) {
			delete(r.ids, jti)
		}
	}
}

// WatchRevocations keeps the server's set of revoked access tokens
// current from feed until ctx ends, so that Revoked is a map lookup. It
// blocks: run it in a goroutine. Whenever it is not listening (before the
// first load, after a lost connection until the reload that follows the
// reconnection, after ctx ends) Revoked asks the database.
func (s *Server) WatchRevocations(ctx context.Context, feed RevocationFeed) {
	feed.OnRevoke(s.revs.add)
	go func() {
		t := time.NewTicker(revocationSweep)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.revs.sweep(s.now().Add(-pruneGrace))
			}
		}
	}()
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval = 100 * time.Millisecond
	retry.MaxInterval = 10 * time.Second
	retry.MaxElapsedTime = 0
	for {
		err := feed.ListenRevocations(ctx, func(ctx context.Context) error {
			if err := feed.RevokedTokens(ctx, s.now().Add(-pruneGrace), func(jti string, exp time.Time) error {
				s.revs.add(jti, exp)
				return nil
			}); err != nil {
				return err
			}
			s.revs.sweep(s.now().Add(-pruneGrace))
			s.revs.setTrusted(true)
			retry.Reset()
			return nil
		}, s.revs.add)
		s.revs.setTrusted(false)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.WarnContext(ctx, "oauth: revocation listener lost; asking the database until it is back",
				slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry.NextBackOff()):
		}
	}
}
