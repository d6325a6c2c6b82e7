package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
)

func TestOAuthSessions(t *testing.T) {
	ctx := context.Background()
	o := postgres.NewOAuth(pgtest.Pool(t))
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)

	if err := o.CreateSession(ctx, "access", "h1", "req1", "jti-1", []byte(`{"a":1}`), exp); err != nil {
		t.Fatal(err)
	}
	if err := o.CreateSession(ctx, "access", "h1", "req1", "jti-1", []byte(`{}`), exp); !fhir.IsKind(err, fhir.Conflict) {
		t.Errorf("duplicate session: %v, want Conflict", err)
	}
	if err := o.CreateSession(ctx, "refresh", "h2", "req1", "", []byte(`{"r":1}`), exp); err != nil {
		t.Fatal(err)
	}
	data, req, active, gotExp, err := o.Session(ctx, "access", "h1")
	if err != nil || string(data) != `{"a":1}` || req != "req1" || !active || !gotExp.Equal(exp) {
		t.Errorf("Session = %s %s %v %v %v", data, req, active, gotExp, err)
	}
	if _, _, _, _, err := o.Session(ctx, "access", "nope"); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("missing session: %v, want NotFound", err)
	}
	if err := o.UpdateSession(ctx, "access", "h1", []byte(`{"a":2}`)); err != nil {
		t.Fatal(err)
	}

	// Revocation is visible by jti.
	if revoked, err := o.Revoked(ctx, "jti-1"); err != nil || revoked {
		t.Errorf("Revoked before revocation = %v, %v", revoked, err)
	}
	if err := o.DeactivateRequest(ctx, "access", "req1"); err != nil {
		t.Fatal(err)
	}
	if revoked, err := o.Revoked(ctx, "jti-1"); err != nil || !revoked {
		t.Errorf("Revoked after revocation = %v, %v", revoked, err)
	}
	if revoked, err := o.Revoked(ctx, "never-issued"); err != nil || revoked {
		t.Errorf("Revoked of an unknown jti = %v, %v", revoked, err)
	}
	if err := o.UpdateSession(ctx, "access", "h1", []byte(`{}`)); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("update of an inactive session: %v, want NotFound", err)
	}

	// Deactivation: once; a second is a Conflict, a missing one NotFound.
	if err := o.DeactivateSession(ctx, "refresh", "h2"); err != nil {
		t.Fatal(err)
	}
	if err := o.DeactivateSession(ctx, "refresh", "h2"); !fhir.IsKind(err, fhir.Conflict) {
		t.Errorf("second deactivation: %v, want Conflict", err)
	}
	if err := o.DeactivateSession(ctx, "refresh", "nope"); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("deactivation of a missing session: %v, want NotFound", err)
	}
	if err := o.DeleteSession(ctx, "refresh", "h2"); err != nil {
		t.Fatal(err)
	}
	if err := o.DeleteSession(ctx, "refresh", "h2"); err != nil {
		t.Errorf("deleting twice: %v", err)
	}

	// Pruning takes what expired before the given time.
	if err := o.CreateSession(ctx, "code", "old", "req2", "", []byte(`{}`), time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := o.PruneSessions(ctx, time.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Errorf("PruneSessions = %d, %v; want 1", n, err)
	}
	if _, _, _, _, err := o.Session(ctx, "access", "h1"); err != nil {
		t.Errorf("an unexpired session was pruned: %v", err)
	}
}

// TestOAuthConcurrentUse: of many concurrent uses of one code, exactly one
// deactivates it.
func TestOAuthConcurrentUse(t *testing.T) {
	ctx := context.Background()
	o := postgres.NewOAuth(pgtest.Pool(t))
	if err := o.CreateSession(ctx, "code", "c", "r", "", []byte(`{}`), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			tx, err := o.BeginTx(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			if errs[i] = o.DeactivateSession(tx, "code", "c"); errs[i] != nil {
				_ = o.Rollback(tx)
				return
			}
			errs[i] = o.Commit(tx)
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !fhir.IsKind(err, fhir.Conflict):
			t.Errorf("unexpected error %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d uses succeeded, want 1", wins)
	}
}

// TestOAuthTransaction: what a rolled-back transaction wrote is gone.
func TestOAuthTransaction(t *testing.T) {
	ctx := context.Background()
	o := postgres.NewOAuth(pgtest.Pool(t))
	tx, err := o.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.BeginTx(tx); err == nil {
		t.Error("a nested transaction was begun")
	}
	if err := o.CreateSession(tx, "access", "x", "r", "j", []byte(`{}`), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := o.Rollback(tx); err != nil {
		t.Fatal(err)
	}
	if err := o.Rollback(tx); err != nil {
		t.Errorf("second rollback: %v", err)
	}
	if _, _, _, _, err := o.Session(ctx, "access", "x"); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("session of a rolled-back transaction: %v", err)
	}
	if err := o.Commit(ctx); err == nil {
		t.Error("commit without a transaction")
	}
}

func TestOAuthJTI(t *testing.T) {
	ctx := context.Background()
	o := postgres.NewOAuth(pgtest.Pool(t))
	now := time.Now()
	if err := o.UseJTI(ctx, "j1", now.Add(5*time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if err := o.UseJTI(ctx, "j1", now.Add(5*time.Minute), now); !fhir.IsKind(err, fhir.Conflict) {
		t.Errorf("replay: %v, want Conflict", err)
	}
	if used, err := o.JTIUsed(ctx, "j1", now); err != nil || !used {
		t.Errorf("JTIUsed = %v, %v", used, err)
	}
	// Once the assertion has expired its jti may be recorded again.
	later := now.Add(10 * time.Minute)
	if used, err := o.JTIUsed(ctx, "j1", later); err != nil || used {
		t.Errorf("JTIUsed after expiry = %v, %v", used, err)
	}
	if err := o.UseJTI(ctx, "j1", later.Add(5*time.Minute), later); err != nil {
		t.Errorf("reuse after expiry: %v", err)
	}
}

func TestOAuthClientsKeysSettings(t *testing.T) {
	ctx := context.Background()
	o := postgres.NewOAuth(pgtest.Pool(t))
	for _, id := range []string{"b", "a"} {
		if err := o.PutClient(ctx, id, []byte(`{"id":"`+id+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.PutClient(ctx, "a", []byte(`{"id":"a","v":2}`)); err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := o.Clients(ctx, func(id string, data []byte) error { ids = append(ids, id+string(data)); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{`a{"v": 2, "id": "a"}`, `b{"id": "b"}`}; !slices.Equal(ids, want) {
		t.Errorf("Clients = %v, want %v", ids, want)
	}
	stop := errors.New("stop")
	if err := o.Clients(ctx, func(string, []byte) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Clients stops at fn's error: %v", err)
	}
	if err := o.DeleteClient(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := o.DeleteClient(ctx, "a"); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("deleting a missing client: %v", err)
	}
	if _, err := o.Client(ctx, "a"); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("deleted client: %v", err)
	}

	// Signing keys: compare-and-swap rotation.
	t0 := time.Now().UTC().Truncate(time.Second)
	if ok, err := o.AddSigningKey(ctx, "k1", []byte("one"), t0, ""); err != nil || !ok {
		t.Fatalf("first key: %v %v", ok, err)
	}
	if ok, err := o.AddSigningKey(ctx, "k1b", []byte("x"), t0, ""); err != nil || ok {
		t.Errorf("a second first key: %v %v, want false", ok, err)
	}
	if ok, err := o.AddSigningKey(ctx, "k2", []byte("two"), t0.Add(time.Hour), "k1"); err != nil || !ok {
		t.Fatalf("rotation: %v %v", ok, err)
	}
	if ok, err := o.AddSigningKey(ctx, "k3", []byte("three"), t0.Add(2*time.Hour), "k1"); err != nil || ok {
		t.Errorf("rotation from a stale current key: %v %v, want false", ok, err)
	}
	type key struct {
		kid              string
		created, retired time.Time
	}
	var keys []key
	if err := o.SigningKeys(ctx, func(kid string, _ []byte, created, retired time.Time) error {
		keys = append(keys, key{kid, created, retired})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].kid != "k2" || !keys[0].retired.IsZero() || keys[1].kid != "k1" || !keys[1].retired.Equal(t0.Add(time.Hour)) {
		t.Errorf("keys %+v", keys)
	}
	if n, err := o.DeleteSigningKeys(ctx, t0.Add(30*time.Minute)); err != nil || n != 0 {
		t.Errorf("DeleteSigningKeys too early = %d, %v", n, err)
	}
	if n, err := o.DeleteSigningKeys(ctx, t0.Add(3*time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteSigningKeys = %d, %v; want the retired key", n, err)
	}

	// Settings.
	if _, err := o.Setting(ctx, "s"); !fhir.IsKind(err, fhir.NotFound) {
		t.Errorf("missing setting: %v", err)
	}
	v, err := o.InitSetting(ctx, "s", []byte("first"))
	if err != nil || string(v) != "first" {
		t.Errorf("InitSetting = %s, %v", v, err)
	}
	if v, err := o.InitSetting(ctx, "s", []byte("second")); err != nil || string(v) != "first" {
		t.Errorf("InitSetting again = %s, %v; want the first value kept", v, err)
	}
	if err := o.PutSetting(ctx, "s", []byte("third")); err != nil {
		t.Fatal(err)
	}
	if v, err := o.Setting(ctx, "s"); err != nil || string(v) != "third" {
		t.Errorf("Setting = %s, %v", v, err)
	}
}

// BenchmarkOAuthRevoked is the revocation check the resource server makes
// on every request with a token of the built-in authorization server, with
// 20,000 stored access tokens of which 2,000 are revoked.
func BenchmarkOAuthRevoked(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.Pool(b)
	if _, err := pool.Exec(ctx, `
		INSERT INTO oauth_sessions (kind, handle, request_id, token_id, active, data, expires_at)
		SELECT 'access', 'h' || i, 'r' || i, 'jti-' || i, i % 10 <> 0, '\x7b7d', now() + interval '1 hour'
		FROM generate_series(1, 20000) i`); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE oauth_sessions`); err != nil {
		b.Fatal(err)
	}
	o := postgres.NewOAuth(pool)
	for i := 0; b.Loop(); i++ {
		if _, err := o.Revoked(ctx, "jti-"+strconv.Itoa(i%20000+1)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOAuthRevocationFeed: a revocation is announced to OnRevoke and on
// RevocationChannel only when committed, and RevokedTokens lists the
// revoked access tokens that have not expired.
func TestOAuthRevocationFeed(t *testing.T) {
	ctx := context.Background()
	o := postgres.NewOAuth(pgtest.Pool(t))
	type rev struct {
		jti string
		exp int64
	}
	var mu sync.Mutex
	var local []rev
	o.OnRevoke(func(jti string, exp time.Time) {
		mu.Lock()
		local = append(local, rev{jti, exp.Unix()})
		mu.Unlock()
	})
	heard := make(chan rev, 10)
	listening := make(chan struct{})
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- o.ListenRevocations(lctx, func(context.Context) error { close(listening); return nil },
			func(jti string, exp time.Time) { heard <- rev{jti, exp.Unix()} })
	}()
	<-listening
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	for _, s := range []struct{ kind, handle, req, jti string }{
		{"access", "a1", "r1", "j1"}, {"access", "a2", "r2", "j2"}, {"refresh", "f2", "r2", ""}, {"access", "a3", "r3", "j3"},
	} {
		if err := o.CreateSession(ctx, s.kind, s.handle, s.req, s.jti, []byte("{}"), exp); err != nil {
			t.Fatal(err)
		}
	}
	// Rolled back: never announced.
	tctx, err := o.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.DeactivateSession(tctx, "access", "a3"); err != nil {
		t.Fatal(err)
	}
	if err := o.Rollback(tctx); err != nil {
		t.Fatal(err)
	}
	// Committed: announced after the commit.
	tctx, err = o.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.DeactivateSession(tctx, "access", "a1"); err != nil {
		t.Fatal(err)
	}
	if err := o.DeactivateRequest(tctx, "refresh", "r2"); err != nil { // no access token: no announcement
		t.Fatal(err)
	}
	mu.Lock()
	if len(local) != 0 {
		t.Errorf("announced before commit: %v", local)
	}
	mu.Unlock()
	if err := o.Commit(tctx); err != nil {
		t.Fatal(err)
	}
	if err := o.DeactivateRequest(ctx, "access", "r2"); err != nil {
		t.Fatal(err)
	}
	want := []rev{{"j1", exp.Unix()}, {"j2", exp.Unix()}}
	mu.Lock()
	if !slices.Equal(local, want) {
		t.Errorf("OnRevoke got %v, want %v", local, want)
	}
	mu.Unlock()
	for _, w := range want {
		select {
		case got := <-heard:
			if got != w {
				t.Errorf("heard %v, want %v", got, w)
			}
		case <-time.After(30 * time.Second): // bounds a failing test only
			t.Fatalf("never heard %v", w)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("ListenRevocations after cancel: %v", err)
	}
	select {
	case got := <-heard:
		t.Errorf("heard a rolled-back or non-access revocation: %v", got)
	default:
	}

	for _, c := range []struct {
		after time.Time
		want  []string
	}{
		{time.Now(), []string{"j1", "j2"}},
		{exp, nil},
	} {
		var got []string
		if err := o.RevokedTokens(ctx, c.after, func(jti string, e time.Time) error {
			if !e.Equal(exp) {
				t.Errorf("%s expires %v, want %v", jti, e, exp)
			}
			got = append(got, jti)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("RevokedTokens(after %v) = %v, want %v", c.after, got, c.want)
		}
	}
}
