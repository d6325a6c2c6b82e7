package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// keySet is an issuer's JSON Web Key Set, fetched from its jwks_uri and
// cached. It implements oidc.KeySet, so go-oidc's verifier does the parsing
// and the algorithm and issuer checks while this decides which keys to trust.
//
// It replaces go-oidc's RemoteKeySet, which keeps keys until a token names an
// unknown kid and then fetches the set again for every such token. Two
// things follow from that which a FHIR server facing the internet should not
// have: a key the issuer withdrew (rotated out, or compromised) stays trusted
// for as long as no unknown kid shows up, and anyone can make the server
// fetch the issuer's keys back to back by sending tokens with made-up kids.
// Here keys older than maxAge are fetched again (in the background while the
// old ones still serve), and a fetch for an unknown kid, or for a known kid
// whose key does not verify, happens at most once per minRefresh; within
// that time an unknown kid is simply unknown. While the key set cannot be
// fetched, the keys fetched last keep serving: an issuer outage does not
// stop the server, and a withdrawn key stops working once the issuer is
// reachable again.
type keySet struct {
	url        string
	algs       []jose.SignatureAlgorithm
	client     *http.Client
	now        func() time.Time
	minRefresh time.Duration
	maxAge     time.Duration
	timeout    time.Duration

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	fetched  time.Time // last successful fetch
	tried    time.Time // last fetch started
	lastErr  error     // outcome of the last fetch
	inflight *fetch
}

var _ oidc.KeySet = (*keySet)(nil)

// fetch is one fetch of the key set under way; done is closed when err is set.
type fetch struct {
	done chan struct{}
	err  error
}

// The most keys taken from one key set and the largest key set read.
const (
	maxKeys     = 64
	maxJWKSSize = 1 << 20
)

// stateKey carries a *verifyState from Verifier.Verify through go-oidc to
// VerifySignature. go-oidc flattens the errors of a KeySet into text, so the
// outcome travels this way instead: it decides between 401 and 503.
type stateKey struct{}

type verifyState struct {
	unavailable error  // the keys could not be fetched
	reason      string // why the signature was refused
	verified    bool   // the signature verified
}

// VerifySignature implements oidc.KeySet: it returns the payload of jwt if a
// current key of the issuer with the token's kid verifies its signature.
func (ks *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	st, _ := ctx.Value(stateKey{}).(*verifyState)
	if st == nil {
		st = &verifyState{}
	}
	jws, err := jose.ParseSignedCompact(jwt, ks.algs)
	if err != nil {
		st.reason = "malformed token"
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		st.reason = "malformed token"
		return nil, errors.New("not exactly one signature")
	}
	h := jws.Signatures[0].Header
	keys, err := ks.candidates(ctx, h.KeyID, h.Algorithm)
	if err != nil {
		st.unavailable = err
		return nil, err
	}
	if len(keys) == 0 {
		st.reason = "unknown signing key"
		return nil, fmt.Errorf("no key with kid %q for %s", h.KeyID, h.Algorithm)
	}
	if payload, ok := verifyWith(jws, keys); ok {
		st.verified = true
		return payload, nil
	}
	// The kid is known but its key does not verify. Either the signature is
	// bad or the issuer has put a new key under an old kid; a fresh key set
	// (if one may be fetched now) tells which.
	if keys := ks.refetch(ctx, h.KeyID, h.Algorithm); keys != nil {
		if payload, ok := verifyWith(jws, keys); ok {
			st.verified = true
			return payload, nil
		}
	}
	st.reason = "invalid signature"
	return nil, errors.New("signature does not verify")
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey) ([]byte, bool) {
	for _, k := range keys {
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refetch fetches the key set if a fetch may start now and returns the keys
// that match kid and alg afterwards; nil if no fetch was allowed or it failed.
func (ks *keySet) refetch(ctx context.Context, kid, alg string) []jose.JSONWebKey {
	if _, _, mayFetch, _ := ks.look(kid, alg); !mayFetch {
		return nil
	}
	if err := ks.wait(ctx, ks.start(ctx)); err != nil {
		return nil
	}
	known, _, _, _ := ks.look(kid, alg)
	return known
}

// candidates returns the keys that may have signed a token with kid and alg,
// fetching the key set first when it has none, when kid is unknown (at most
// once per minRefresh) or, in the background, when it is older than maxAge.
// The error is set only when the keys could not be fetched and the cached
// ones do not answer the question.
func (ks *keySet) candidates(ctx context.Context, kid, alg string) ([]jose.JSONWebKey, error) {
	known, stale, mayFetch, lastErr := ks.look(kid, alg)
	switch {
	case len(known) > 0:
		if stale && mayFetch {
			ks.start(ctx) // refresh in the background; these keys serve meanwhile
		}
		return known, nil
	case mayFetch:
		if err := ks.wait(ctx, ks.start(ctx)); err != nil {
			return nil, err
		}
		known, _, _, _ = ks.look(kid, alg)
		return known, nil
	case lastErr != nil:
		// The last fetch failed and the next may not start yet: whether
		// this kid is the issuer's cannot be told.
		return nil, lastErr
	default:
		return nil, nil
	}
}

// look returns the cached keys that match kid and alg and the state of the
// cache.
func (ks *keySet) look(kid, alg string) (known []jose.JSONWebKey, stale, mayFetch bool, lastErr error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := ks.now()
	for _, k := range ks.keys {
		if (kid == "" || k.KeyID == kid) && (k.Algorithm == "" || k.Algorithm == alg) {
			known = append(known, k)
		}
	}
	stale = !ks.fetched.IsZero() && now.Sub(ks.fetched) >= ks.maxAge
	mayFetch = ks.inflight != nil || ks.tried.IsZero() || now.Sub(ks.tried) >= ks.minRefresh
	return known, stale, mayFetch, ks.lastErr
}

// start returns the fetch under way, starting one if there is none. The
// fetch runs on its own context (with the values of ctx but not its
// cancellation), so a client that goes away does not fail it for the others.
func (ks *keySet) start(ctx context.Context) *fetch {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.inflight != nil {
		return ks.inflight
	}
	f := &fetch{done: make(chan struct{})}
	ks.inflight = f
	ks.tried = ks.now()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ks.timeout)
	go func() {
		defer cancel()
		keys, err := ks.fetch(fctx)
		ks.mu.Lock()
		if err == nil {
			ks.keys, ks.fetched = keys, ks.now()
		}
		ks.lastErr = err
		ks.inflight = nil
		ks.mu.Unlock()
		f.err = err
		close(f.done)
	}()
	return f
}

func (ks *keySet) wait(ctx context.Context, f *fetch) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetch reads the key set. Keys that cannot serve to verify a token of this
// issuer are left out: those with private or symmetric key material, those
// marked for another use than "sig" or for an algorithm not allowed, and key
// types go-jose does not know (RFC 7517 section 5: ignore what is not
// understood). A set with no usable key is an error.
func (ks *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch keys from %s: %s", ks.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch keys from %s: %w", ks.url, err)
	}
	if len(body) > maxJWKSSize {
		return nil, fmt.Errorf("fetch keys from %s: key set larger than %d bytes", ks.url, maxJWKSSize)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode keys from %s: %w", ks.url, err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		if k, ok := ks.usable(raw); ok && len(keys) < maxKeys {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("key set at %s has no usable signing key", ks.url)
	}
	return keys, nil
}

func (ks *keySet) usable(raw json.RawMessage) (jose.JSONWebKey, bool) {
	var meta struct {
		Use string `json:"use"`
		Alg string `json:"alg"`
		// Private and symmetric key members (RFC 7518 section 6).
		D  json.RawMessage `json:"d"`
		P  json.RawMessage `json:"p"`
		Q  json.RawMessage `json:"q"`
		DP json.RawMessage `json:"dp"`
		DQ json.RawMessage `json:"dq"`
		QI json.RawMessage `json:"qi"`
		K  json.RawMessage `json:"k"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return jose.JSONWebKey{}, false
	}
	if meta.D != nil || meta.P != nil || meta.Q != nil || meta.DP != nil || meta.DQ != nil || meta.QI != nil || meta.K != nil {
		return jose.JSONWebKey{}, false
	}
	if meta.Use != "" && meta.Use != "sig" {
		return jose.JSONWebKey{}, false
	}
	if meta.Alg != "" && !slices.Contains(ks.algs, jose.SignatureAlgorithm(meta.Alg)) {
		return jose.JSONWebKey{}, false
	}
	var k jose.JSONWebKey
	if err := json.Unmarshal(raw, &k); err != nil || !k.IsPublic() || !k.Valid() {
		return jose.JSONWebKey{}, false
	}
	return k, true
}

// localKeySet is an issuer's oidc.KeySet given in its configuration
// (Issuer.KeySet). It reports its outcome to Verify as keySet does.
type localKeySet struct{ oidc.KeySet }

// VerifySignature implements oidc.KeySet.
func (ks localKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	st, _ := ctx.Value(stateKey{}).(*verifyState)
	if st == nil {
		st = &verifyState{}
	}
	payload, err := ks.KeySet.VerifySignature(ctx, jwt)
	switch {
	case err == nil:
		st.verified = true
	case errors.Is(err, ErrUnavailable):
		st.unavailable = err
	default:
		st.reason = "invalid signature or unknown signing key"
	}
	return payload, err
}
