package secret

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/autogate/autogate/internal/clock"
)

// Source supplies plaintext data keys by ID. The KMS keyring of
// internal/secret/kms is one: it keeps the keys wrapped by KMS in the store
// and unwraps them with KMS Decrypt.
type Source interface {
	// Current returns the ID and plaintext of the data key new values are
	// sealed under, creating the first one if there is none yet.
	Current(ctx context.Context) (id string, key []byte, err error)
	// Key returns the plaintext of data key id; an error wrapping
	// ErrUnknownKey if the source has no such key.
	Key(ctx context.Context, id string) ([]byte, error)
}

// ErrUnknownKey means a sealed value names a data key its source does not
// hold.
var ErrUnknownKey = errors.New("secret: unknown data key")

// DefaultCacheTTL is how long a plaintext data key (and which key is
// current) is kept in memory when CacheOptions.TTL is zero: 5 minutes.
const DefaultCacheTTL = 5 * time.Minute

// CacheOptions configures NewDataKeyring.
type CacheOptions struct {
	// TTL bounds how long a fetched data key stays in memory, measured from
	// the fetch; zero means DefaultCacheTTL. It is also how long a process
	// keeps sealing under a data key after another one became current.
	TTL time.Duration
	// Clock times the cache; nil means the real clock.
	Clock clock.Clock
	// Legacy, when set, is the 32-byte legacy key: values sealed before the
	// data keys (format 1) still open. New values never use it.
	Legacy []byte
}

// NewDataKeyring returns a keyring that seals under src's current data key
// and opens values sealed under any of src's keys (and, given
// opts.Legacy, under the legacy key).
func NewDataKeyring(src Source, opts CacheOptions) (*Keyring, error) {
	if src == nil {
		return nil, errors.New("secret: data keyring without a source")
	}
	if opts.TTL < 0 {
		return nil, fmt.Errorf("secret: cache TTL %v is negative", opts.TTL)
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultCacheTTL
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	k := &Keyring{data: &dataKeys{src: src, ttl: opts.TTL, clock: opts.Clock, keys: map[string]cachedKey{}}}
	if opts.Legacy != nil {
		aead, err := newAEAD(opts.Legacy)
		if err != nil {
			return nil, err
		}
		k.legacy = aead
	}
	return k, nil
}

// CurrentKeyID returns the ID of the data key Seal uses now, fetching it if
// the cache has none: a start-up check that the source answers. It is ""
// for a keyring with the legacy key only.
func (k *Keyring) CurrentKeyID(ctx context.Context) (string, error) {
	if k.data == nil {
		return "", nil
	}
	id, _, err := k.data.current(ctx)
	return id, err
}

// dataKeys caches a Source's plaintext keys, each for ttl from its fetch.
type dataKeys struct {
	src   Source
	ttl   time.Duration
	clock clock.Clock
	// fetch joins concurrent fetches of one key (and of "which is
	// current"), so a cold cache costs one KMS call, not one per request.
	fetch singleflight.Group

	mu        sync.Mutex
	keys      map[string]cachedKey
	currentID string
	currentAt time.Time // when currentID was learned; zero: unknown
}

type cachedKey struct {
	aead cipher.AEAD
	at   time.Time // fetched
}

func (d *dataKeys) fresh(at time.Time) bool {
	return !at.IsZero() && d.clock.Now().Sub(at) < d.ttl
}

// current returns the current data key, asking the source again once the
// cached answer is ttl old (that is how a rotation reaches this process).
func (d *dataKeys) current(ctx context.Context) (string, cipher.AEAD, error) {
	d.mu.Lock()
	d.sweep(d.clock.Now())
	if d.fresh(d.currentAt) {
		if c, ok := d.keys[d.currentID]; ok && d.fresh(c.at) {
			d.mu.Unlock()
			return d.currentID, c.aead, nil
		}
	}
	d.mu.Unlock()
	v, err, _ := d.fetch.Do("\x00current", func() (any, error) {
		id, key, err := d.src.Current(ctx)
		if err != nil {
			return nil, fmt.Errorf("secret: current data key: %w", err)
		}
		if err := validKeyID(id); err != nil {
			return nil, err
		}
		aead, err := newAEAD(key)
		clear(key)
		if err != nil {
			return nil, fmt.Errorf("secret: data key %s: %w", id, err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		now := d.clock.Now()
		d.sweep(now)
		d.keys[id] = cachedKey{aead: aead, at: now}
		d.currentID, d.currentAt = id, now
		return cachedCurrent{id, aead}, nil
	})
	if err != nil {
		return "", nil, err
	}
	c := v.(cachedCurrent)
	return c.id, c.aead, nil
}

type cachedCurrent struct {
	id   string
	aead cipher.AEAD
}

// key returns data key id from the cache, or from the source once it is
// missing or ttl old.
func (d *dataKeys) key(ctx context.Context, id string) (cipher.AEAD, error) {
	if err := validKeyID(id); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	d.mu.Lock()
	d.sweep(d.clock.Now())
	if c, ok := d.keys[id]; ok && d.fresh(c.at) {
		d.mu.Unlock()
		return c.aead, nil
	}
	d.mu.Unlock()
	v, err, _ := d.fetch.Do(id, func() (any, error) {
		key, err := d.src.Key(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("secret: data key %s: %w", id, err)
		}
		aead, err := newAEAD(key)
		clear(key)
		if err != nil {
			return nil, fmt.Errorf("secret: data key %s: %w", id, err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		now := d.clock.Now()
		d.sweep(now)
		d.keys[id] = cachedKey{aead: aead, at: now}
		return aead, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(cipher.AEAD), nil
}

// sweep drops every key older than ttl. It runs on every use of the
// keyring, so an expired key leaves the cache at the next Seal or Open even
// if that one needs another key. Callers hold mu.
func (d *dataKeys) sweep(now time.Time) {
	for id, c := range d.keys {
		if now.Sub(c.at) >= d.ttl {
			delete(d.keys, id)
		}
	}
}

func validKeyID(id string) error {
	if id == "" || len(id) > MaxKeyIDLen || strings.ContainsRune(id, 0) {
		return fmt.Errorf("secret: data key ID %q: want 1..%d bytes, no NUL", id, MaxKeyIDLen)
	}
	return nil
}
