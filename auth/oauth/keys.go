package oauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	josev3 "github.com/go-jose/go-jose/v3"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/digitaleouder/ouder/auth/token"
)

// The signing algorithm of access and ID tokens. RS256 is the one every
// OpenID Connect relying party supports.
const signingAlg = "RS256"

// rsaBits is the size of generated signing keys.
const rsaBits = 2048

// Timings of the key ring.
const (
	// keyCacheTTL is how long keys read from the database are used
	// before they are read again; a key id never seen is looked up at
	// once (at most every keyMissInterval).
	keyCacheTTL     = 30 * time.Second
	keyMissInterval = time.Second
	// keyRetention is how long a retired key stays published after it
	// stopped signing: longer than any token lives (an hour) plus the
	// cache time of every instance and the verifiers' leeway.
	keyRetention = 2 * time.Hour
	// DefaultKeyMaxAge is how old the current key may grow before it is
	// replaced.
	DefaultKeyMaxAge = 30 * 24 * time.Hour
)

// signingKey is one key of the ring.
type signingKey struct {
	kid       string
	private   jose.JSONWebKey   // for KeySet verification (go-jose v4)
	privateV3 josev3.JSONWebKey // for fosite's signer (go-jose v3)
	created   time.Time
	retired   time.Time // zero while current
}

// published reports whether k is in the JWKS at now: current, or retired
// less than keyRetention ago.
func (k *signingKey) published(now time.Time) bool {
	return k.retired.IsZero() || now.Sub(k.retired) < keyRetention
}

// keyRing holds the signing keys read from Storage. The newest key without
// a retirement time signs; every published key verifies.
type keyRing struct {
	st     Storage
	now    func() time.Time
	maxAge time.Duration // 0: never rotate by age

	mu       sync.Mutex
	keys     []*signingKey // newest first
	loaded   time.Time
	lastMiss time.Time
}

// load reads the keys from the database.
func (r *keyRing) load(ctx context.Context) error {
	var keys []*signingKey
	err := r.st.SigningKeys(ctx, func(kid string, data []byte, created, retired time.Time) error {
		k := &signingKey{kid: kid, created: created, retired: retired}
		if err := json.Unmarshal(data, &k.private); err != nil {
			return fmt.Errorf("key %s: %w", kid, err)
		}
		if err := json.Unmarshal(data, &k.privateV3); err != nil {
			return fmt.Errorf("key %s: %w", kid, err)
		}
		if k.private.IsPublic() || k.private.KeyID != kid {
			return fmt.Errorf("key %s: not a private key with that key id", kid)
		}
		keys = append(keys, k)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	r.mu.Lock()
	r.keys, r.loaded = keys, r.now()
	r.mu.Unlock()
	return nil
}

// snapshot returns the keys, reading them again when the cache is stale.
func (r *keyRing) snapshot(ctx context.Context) ([]*signingKey, error) {
	r.mu.Lock()
	fresh := !r.loaded.IsZero() && r.now().Sub(r.loaded) < keyCacheTTL
	keys := r.keys
	r.mu.Unlock()
	if fresh {
		return keys, nil
	}
	if err := r.load(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys, nil
}

// current returns the key that signs, making the first key, or replacing
// the current one when it is older than maxAge.
func (r *keyRing) current(ctx context.Context) (*signingKey, error) {
	keys, err := r.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	cur := currentOf(keys)
	if cur != nil && (r.maxAge <= 0 || r.now().Sub(cur.created) < r.maxAge) {
		return cur, nil
	}
	replaces := ""
	if cur != nil {
		replaces = cur.kid
	}
	if _, err := rotate(ctx, r.st, r.now(), replaces); err != nil {
		return nil, err
	}
	if err := r.load(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	cur = currentOf(r.keys)
	r.mu.Unlock()
	if cur == nil {
		return nil, errors.New("oauth: no current signing key after rotation")
	}
	return cur, nil
}

func currentOf(keys []*signingKey) *signingKey {
	for _, k := range keys {
		if k.retired.IsZero() {
			return k
		}
	}
	return nil
}

// find returns the published key kid. A kid not in the cache makes the ring
// read the database again, at most once per keyMissInterval, so a key made
// by another instance is found at once and made-up key ids cost nothing.
func (r *keyRing) find(ctx context.Context, kid string) (*signingKey, error) {
	keys, err := r.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if k := lookupKey(keys, kid, r.now()); k != nil {
		return k, nil
	}
	r.mu.Lock()
	due := r.now().Sub(r.lastMiss) >= keyMissInterval
	if due {
		r.lastMiss = r.now()
	}
	r.mu.Unlock()
	if !due {
		return nil, nil
	}
	if err := r.load(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return lookupKey(r.keys, kid, r.now()), nil
}

func lookupKey(keys []*signingKey, kid string, now time.Time) *signingKey {
	for _, k := range keys {
		if k.kid == kid && k.published(now) {
			return k
		}
	}
	return nil
}

// jwks returns the public keys that verify tokens now.
func (r *keyRing) jwks(ctx context.Context) (jose.JSONWebKeySet, error) {
	keys, err := r.snapshot(ctx)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	now := r.now()
	for _, k := range keys {
		if k.published(now) {
			set.Keys = append(set.Keys, k.private.Public())
		}
	}
	return set, nil
}

// rotate makes a new signing key the current one if the current key is
// still replaces, and deletes keys retired longer than keyRetention ago. It
// returns the new key's id, or "" when another instance rotated first.
func rotate(ctx context.Context, st Storage, now time.Time, replaces string) (string, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return "", fmt.Errorf("generate signing key: %w", err)
	}
	idBytes := make([]byte, 12)
	if _, err := rand.Read(idBytes); err != nil {
		return "", err
	}
	kid := now.UTC().Format("20060102") + "-" + base64.RawURLEncoding.EncodeToString(idBytes)
	data, err := json.Marshal(jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: signingAlg, Use: "sig"})
	if err != nil {
		return "", fmt.Errorf("encode signing key: %w", err)
	}
	added, err := st.AddSigningKey(ctx, kid, data, now.UTC(), replaces)
	if err != nil {
		return "", fmt.Errorf("store signing key: %w", err)
	}
	if _, err := st.DeleteSigningKeys(ctx, now.Add(-keyRetention)); err != nil {
		return "", fmt.Errorf("delete retired signing keys: %w", err)
	}
	if !added {
		return "", nil
	}
	return kid, nil
}

// KeyInfo describes a signing key for administration.
type KeyInfo struct {
	ID      string
	Created time.Time
	Retired time.Time // zero for the current key
	// Published reports whether the key is in the JWKS (current, or retired
	// recently enough that tokens it signed may still be valid).
	Published bool
}

// RotateKey makes a new signing key current and retires the current one;
// the retired key stays published until every token it signed has
// expired. It returns the new key's id. Who may call: administration
// (ouderctl keys rotate); the server also rotates by age on its own.
func RotateKey(ctx context.Context, st Storage, now time.Time) (string, error) {
	keys, err := ListKeys(ctx, st, now)
	if err != nil {
		return "", err
	}
	replaces := ""
	for _, k := range keys {
		if k.Retired.IsZero() {
			replaces = k.ID
		}
	}
	kid, err := rotate(ctx, st, now, replaces)
	if err != nil {
		return "", fmt.Errorf("oauth.RotateKey: %w", err)
	}
	if kid == "" {
		return "", errors.New("oauth.RotateKey: another instance rotated the key at the same time; try again")
	}
	return kid, nil
}

// ListKeys returns the signing keys, newest first.
func ListKeys(ctx context.Context, st Storage, now time.Time) ([]KeyInfo, error) {
	var out []KeyInfo
	err := st.SigningKeys(ctx, func(kid string, _ []byte, created, retired time.Time) error {
		k := signingKey{retired: retired}
		out = append(out, KeyInfo{ID: kid, Created: created, Retired: retired, Published: k.published(now)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("oauth.ListKeys: %w", err)
	}
	return out, nil
}

// keySet verifies tokens of this server with the keys in the database: it
// implements oidc.KeySet for the resource server's verifier, with no HTTP.
// When the keys cannot be read its error matches token.ErrUnavailable.
type keySet struct{ ring *keyRing }

var _ oidc.KeySet = keySet{}

// VerifySignature returns the payload of jwt if a published key of this
// server with the token's kid verifies its RS256 signature.
func (ks keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, []jose.SignatureAlgorithm{signingAlg})
	if err != nil {
		return nil, fmt.Errorf("oauth: malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("oauth: token must have exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k, err := ks.ring.find(ctx, kid)
	if err != nil {
		// The keys could not be read: that says nothing about the token
		// (the resource server answers 503, not 401).
		return nil, fmt.Errorf("oauth: %w", errors.Join(token.ErrUnavailable, err))
	}
	if k == nil {
		return nil, fmt.Errorf("oauth: unknown key id %.64q", kid)
	}
	return jws.Verify(k.private.Public())
}
