package postgres

import (
	"context"
	"errors"
	"hash/fnv"
)

// LockKey takes a transaction-level advisory lock on key
// (pg_advisory_xact_lock), waiting while another transaction holds it; the
// lock is released when the transaction commits or rolls back. It serialises
// work that row locks cannot: two conditional creates with the same search
// both see no match unless the second one searches after the first one has
// committed. Key is hashed to 64 bits; two keys that collide only serialise
// more than needed.
//
// It may only be called on the Store that Transaction hands out; anywhere
// else it fails, since a lock outside a transaction would be released at
// once.
func (s *Store) LockKey(ctx context.Context, key string) (err error) {
	defer wrap(&err, "postgres.LockKey")
	if s.tx == nil {
		return errors.New("LockKey outside a transaction")
	}
	_, err = s.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockID(key))
	return err
}

// lockID maps a key onto the 64-bit advisory lock space, which it shares
// with migrationLockKey; a collision with it would only make a write wait
// for a migration.
func lockID(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte("ouder:"))
	h.Write([]byte(key))
	return int64(h.Sum64() >> 1)
}
