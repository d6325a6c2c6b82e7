package oauth_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/store/postgres"
)

// gatedFeed is the real feed, counting the connections it makes and
// holding the second and later ones until open is closed.
type gatedFeed struct {
	*postgres.OAuth
	attempts atomic.Int32
	waiting  chan struct{} // closed when the second connection waits
	open     chan struct{}
}

func (g *gatedFeed) ListenRevocations(ctx context.Context, ready func(context.Context) error, revoked func(string, time.Time)) error {
	if g.attempts.Add(1) == 2 {
		close(g.waiting)
	}
	if g.attempts.Load() >= 2 {
		select {
		case <-g.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.OAuth.ListenRevocations(ctx, ready, revoked)
}

// watch runs e's WatchRevocations on feed until the test ends (or stop is
// called, which returns once it has stopped), after it has loaded.
func watch(t *testing.T, e *env, feed oauth.RevocationFeed) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.as.WatchRevocations(ctx, feed)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	eventually(t, "the revocation set is loaded", func() bool {
		_, trusted := e.as.RevocationState("")
		return trusted
	})
	return stop
}

// eventually waits (up to a generous deadline, which only bounds a
// failing test) until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// revoke revokes access token at at e's RFC 7009 endpoint and returns its jti.
func revoke(t *testing.T, e *env, at string) string {
	t.Helper()
	jti := e.claims(t, at)["jti"].(string)
	if status, _ := e.post(t, "/oauth2/revoke", url.Values{"token": {at}, "client_id": {"app"}}); status != http.StatusOK {
		t.Fatalf("revoke: %d", status)
	}
	return jti
}

func revoked(t *testing.T, e *env, jti string) bool {
	t.Helper()
	r, err := e.as.Revoked(context.Background(), jti)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRevocationsAcrossInstances: a token revoked through instance a is
// in a's set at once and reaches instance b's set by notification; a
// refresh-token reuse revokes the family's access tokens everywhere too.
func TestRevocationsAcrossInstances(t *testing.T) {
	a := newEnv(t, dev)
	a.family("")
	a.addApp("app", appScope)
	b := newEnvOn(t, a.pool, dev, withIssuer(a.issuer))
	watch(t, a, a.st)
	watch(t, b, b.st)

	tok := userTokens(t, a)
	at := tok["access_token"].(string)
	jti := a.claims(t, at)["jti"].(string)
	if revoked(t, a, jti) || revoked(t, b, jti) {
		t.Fatal("fresh token revoked")
	}
	revoke(t, a, at)
	if in, _ := a.as.RevocationState(jti); !in || !revoked(t, a, jti) {
		t.Errorf("instance a does not know its own revocation at once (in set %v)", in)
	}
	eventually(t, "instance b hears of the revocation", func() bool { return revoked(t, b, jti) })
	if in, trusted := b.as.RevocationState(jti); !in || !trusted {
		t.Errorf("instance b answered from the database: in set %v, trusted %v", in, trusted)
	}

	// Reuse of a rotated refresh token at b revokes the family's access
	// token, which a hears of.
	tok = userTokens(t, a)
	rt := tok["refresh_token"].(string)
	jti = a.claims(t, tok["access_token"].(string))["jti"].(string)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"app"}}
	if status, m := b.post(t, "/oauth2/token", refresh); status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, m)
	}
	if status, _ := b.post(t, "/oauth2/token", refresh); status != http.StatusBadRequest {
		t.Fatalf("reused refresh token: %d", status)
	}
	eventually(t, "instance a hears of the family's revocation", func() bool {
		in, _ := a.as.RevocationState(jti)
		return in
	})
}

// TestRevocationsFallback: while instance b does not listen (never
// started, connection lost, stopped) it asks the database, and after
// reconnecting it reloads what it missed.
func TestRevocationsFallback(t *testing.T) {
	a := newEnv(t, dev)
	a.family("")
	a.addApp("app", appScope)
	b := newEnvOn(t, a.pool, dev, withIssuer(a.issuer))

	// Never started.
	jti := revoke(t, a, userTokens(t, a)["access_token"].(string))
	if in, trusted := b.as.RevocationState(jti); in || trusted || !revoked(t, b, jti) {
		t.Errorf("before watching: in set %v, trusted %v, revoked %v", in, trusted, revoked(t, b, jti))
	}

	feed := &gatedFeed{OAuth: b.st, waiting: make(chan struct{}), open: make(chan struct{})}
	stop := watch(t, b, feed)
	if in, _ := b.as.RevocationState(jti); !in {
		t.Error("the first load missed a revocation")
	}

	// Connection lost: b distrusts its set until it has reconnected and
	// reloaded, and meanwhile finds revocations in the database.
	var n int
	if err := a.pool.QueryRow(context.Background(), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+postgres.RevocationChannel+`'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminate listener: %d, %v", n, err)
	}
	<-feed.waiting
	jti = revoke(t, a, userTokens(t, a)["access_token"].(string))
	if in, trusted := b.as.RevocationState(jti); in || trusted || !revoked(t, b, jti) {
		t.Errorf("listener down: in set %v, trusted %v, revoked %v", in, trusted, revoked(t, b, jti))
	}
	close(feed.open)
	eventually(t, "b reconnects", func() bool {
		_, trusted := b.as.RevocationState(jti)
		return trusted
	})
	if in, _ := b.as.RevocationState(jti); !in {
		t.Error("the reload after reconnecting missed a revocation")
	}

	// Stopped.
	stop()
	jti = revoke(t, a, userTokens(t, a)["access_token"].(string))
	if in, trusted := b.as.RevocationState(jti); in || trusted || !revoked(t, b, jti) {
		t.Errorf("stopped: in set %v, trusted %v, revoked %v", in, trusted, revoked(t, b, jti))
	}
}

// TestRevocationsExpire: ids leave the set once their tokens have expired
// (plus the grace the database keeps them), by the sweep and on reload.
func TestRevocationsExpire(t *testing.T) {
	e := newEnv(t, dev)
	e.family("")
	e.addApp("app", appScope)
	stop := watch(t, e, e.st)
	jti := revoke(t, e, userTokens(t, e)["access_token"].(string))
	e.SweepRevocations()
	if in, _ := e.as.RevocationState(jti); !in {
		t.Fatal("a live revoked token left the set")
	}
	e.clock.Advance(time.Hour) // the token's lifetime; the grace remains
	e.SweepRevocations()
	if in, _ := e.as.RevocationState(jti); !in {
		t.Fatal("a revoked token left the set within the grace")
	}
	e.clock.Advance(time.Hour + time.Minute)
	e.SweepRevocations()
	if in, _ := e.as.RevocationState(jti); in {
		t.Error("an expired revoked token stayed in the set")
	}
	stop()
	watch(t, e, e.st)
	if in, _ := e.as.RevocationState(jti); in {
		t.Error("the reload took an expired revoked token")
	}
}

// SweepRevocations sweeps e's server's set now.
func (e *env) SweepRevocations() { e.as.SweepRevocations() }

// BenchmarkServerRevoked is Revoked as the resource server calls it, with
// 20,000 stored access tokens of which 2,000 are revoked: "database"
// without WatchRevocations (one indexed query), "set" with it.
func BenchmarkServerRevoked(b *testing.B) {
	for _, mode := range []string{"database", "set"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b)
			ctx := context.Background()
			if _, err := e.pool.Exec(ctx, `
				INSERT INTO oauth_sessions (kind, handle, request_id, token_id, active, data, expires_at)
				SELECT 'access', 'h' || i, 'r' || i, 'jti-' || i, i % 10 <> 0, '\x7b7d', now() + interval '1 hour'
				FROM generate_series(1, 20000) i;
				ANALYZE oauth_sessions`); err != nil {
				b.Fatal(err)
			}
			if mode == "set" {
				wctx, cancel := context.WithCancel(ctx)
				b.Cleanup(cancel)
				go e.as.WatchRevocations(wctx, e.st)
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
					if _, trusted := e.as.RevocationState(""); trusted {
						break
					}
					if time.Now().After(deadline) {
						b.Fatal("never loaded")
					}
				}
			}
			for i := 0; b.Loop(); i++ {
				r, err := e.as.Revoked(ctx, "jti-"+strconv.Itoa(i%20000+1))
				if err != nil || r != (i%10 == 9) {
					b.Fatalf("Revoked(jti-%d) = %v, %v", i%20000+1, r, err)
				}
			}
		})
	}
}
