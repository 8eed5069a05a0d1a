package secret

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/clock"
)

// fakeSource is a func-field Source; the default functions serve keys from
// a map and count calls.
type fakeSource struct {
	mu       sync.Mutex
	keys     map[string][]byte
	currentF string
	calls    map[string]int // "current" or the key ID
	fail     error
}

var _ Source = (*fakeSource)(nil)

func newFakeSource(ids ...string) *fakeSource {
	f := &fakeSource{keys: map[string][]byte{}, calls: map[string]int{}}
	for _, id := range ids {
		f.add(id)
	}
	return f
}

// add makes id a new key and the current one.
func (f *fakeSource) add(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	f.keys[id] = k
	f.currentF = id
}

func (f *fakeSource) Current(ctx context.Context) (string, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["current"]++
	if f.fail != nil {
		return "", nil, f.fail
	}
	return f.currentF, bytes.Clone(f.keys[f.currentF]), nil
}

func (f *fakeSource) Key(ctx context.Context, id string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[id]++
	if f.fail != nil {
		return nil, f.fail
	}
	k, ok := f.keys[id]
	if !ok {
		return nil, fmt.Errorf("key %s: %w", id, ErrUnknownKey)
	}
	return bytes.Clone(k), nil
}

func (f *fakeSource) count(what string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[what]
}

func (f *fakeSource) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func mustSeal(t *testing.T, k *Keyring, pt, aad string) []byte {
	t.Helper()
	s, err := k.Seal(t.Context(), []byte(pt), []byte(aad))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return s
}

func TestDataKeyringSealsUnderCurrentKey(t *testing.T) {
	src := newFakeSource("1")
	k, err := NewDataKeyring(src, CacheOptions{Clock: clock.NewFake(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	sealed := mustSeal(t, k, "hunter2", "c/secret/a")
	if got := KeyID(sealed); got != "1" {
		t.Errorf("KeyID = %q, want 1", got)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("sealed value contains the plaintext")
	}
	relabelled := bytes.Clone(sealed)
	relabelled[2] = '2'
	src.keys["2"] = src.keys["1"] // same key, other ID: the header is authenticated
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	other, _ := NewDataKeyring(newFakeSource("1"), CacheOptions{})
	tests := []struct {
		name   string
		k      *Keyring
		sealed []byte
		aad    string
		want   string
		err    error
	}{
		{"same record", k, sealed, "c/secret/a", "hunter2", nil},
		{"other record", k, sealed, "c/secret/b", "", ErrOpen},
		{"other source with the same key ID", other, sealed, "c/secret/a", "", ErrOpen},
		{"relabelled key ID", k, relabelled, "c/secret/a", "", ErrOpen},
		{"tampered", k, tampered, "c/secret/a", "", ErrOpen},
		{"truncated header", k, sealed[:2], "c/secret/a", "", ErrOpen},
		{"zero-length key ID", k, []byte{formatDataKey, 0, 1, 2, 3}, "c/secret/a", "", ErrOpen},
		{"unknown key ID", k, append([]byte{formatDataKey, 1, '9'}, sealed[3:]...), "c/secret/a", "", ErrUnknownKey},
		{"legacy value without a legacy key", k, []byte{formatLegacy, 1, 2, 3}, "c/secret/a", "", ErrOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.k.Open(t.Context(), tt.sealed, []byte(tt.aad))
			if tt.want != "" {
				if err != nil || string(got) != tt.want {
					t.Errorf("Open = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.err) || got != nil {
				t.Errorf("Open = %q, %v; want error %v", got, err, tt.err)
			}
		})
	}
}

// TestLegacyValuesStillOpen seals a value the way the keyring did before
// data keys existed and opens it with a data keyring given the legacy key.
func TestLegacyValuesStillOpen(t *testing.T) {
	legacyKey := bytes.Repeat([]byte{9}, KeySize)
	block, _ := aes.NewCipher(legacyKey)
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	old := gcm.Seal(append([]byte{1}, nonce...), nonce, []byte("from before"), []byte("c/secret/a"))

	k, err := NewDataKeyring(newFakeSource("1"), CacheOptions{Legacy: legacyKey})
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Open(t.Context(), old, []byte("c/secret/a"))
	if err != nil || string(got) != "from before" {
		t.Fatalf("Open(legacy value) = %q, %v", got, err)
	}
	if id := KeyID(mustSeal(t, k, "new", "c/secret/a")); id != "1" {
		t.Errorf("new values sealed under %q, want data key 1 (never the legacy key)", id)
	}
	if _, err := NewDataKeyring(newFakeSource("1"), CacheOptions{Legacy: []byte("short")}); err == nil {
		t.Error("a short legacy key was accepted")
	}
}

func TestDataKeyCacheIsBounded(t *testing.T) {
	clk := clock.NewFake(time.Now())
	src := newFakeSource("1")
	const ttl = time.Minute
	k, _ := NewDataKeyring(src, CacheOptions{TTL: ttl, Clock: clk})
	sealed := mustSeal(t, k, "v", "a")
	for range 5 {
		if _, err := k.Open(t.Context(), sealed, []byte("a")); err != nil {
			t.Fatal(err)
		}
		mustSeal(t, k, "v", "a")
	}
	if got := src.count("current") + src.count("1"); got != 1 {
		t.Fatalf("source asked %d times within the TTL, want 1", got)
	}

	clk.Advance(ttl - time.Second)
	if _, err := k.Open(t.Context(), sealed, []byte("a")); err != nil || src.count("1") != 0 {
		t.Fatalf("within the TTL: Open err %v, Key calls %d; want cached", err, src.count("1"))
	}

	// Past the TTL the key is fetched again; a source that now refuses
	// (KMS key disabled, grant revoked) stops the keyring at once.
	clk.Advance(2 * time.Second)
	revoked := errors.New("AccessDeniedException")
	src.setFail(revoked)
	if _, err := k.Open(t.Context(), sealed, []byte("a")); !errors.Is(err, revoked) {
		t.Errorf("Open after the TTL with the source refusing = %v, want %v", err, revoked)
	}
	if _, err := k.Seal(t.Context(), []byte("v"), []byte("a")); !errors.Is(err, revoked) {
		t.Errorf("Seal after the TTL with the source refusing = %v, want %v", err, revoked)
	}
	k.data.mu.Lock()
	left := len(k.data.keys)
	k.data.mu.Unlock()
	if left != 0 {
		t.Errorf("%d plaintext keys still cached past the TTL, want 0", left)
	}

	src.setFail(nil)
	if got, err := k.Open(t.Context(), sealed, []byte("a")); err != nil || string(got) != "v" {
		t.Errorf("Open once the source answers again = %q, %v", got, err)
	}
}

func TestRotationReachesSealingWithinOneTTL(t *testing.T) {
	clk := clock.NewFake(time.Now())
	src := newFakeSource("1")
	k, _ := NewDataKeyring(src, CacheOptions{TTL: time.Minute, Clock: clk})
	old := mustSeal(t, k, "old", "a")

	src.add("2") // another process rotated
	if id := KeyID(mustSeal(t, k, "x", "a")); id != "1" {
		t.Errorf("within the TTL sealed under %q, want the cached 1", id)
	}
	// A value another process sealed under the new key opens at once.
	peer, _ := NewDataKeyring(src, CacheOptions{Clock: clk})
	fromPeer := mustSeal(t, peer, "peer", "a")
	if got, err := k.Open(t.Context(), fromPeer, []byte("a")); err != nil || string(got) != "peer" {
		t.Errorf("Open(value under the new key) = %q, %v", got, err)
	}

	clk.Advance(time.Minute)
	if id := KeyID(mustSeal(t, k, "x", "a")); id != "2" {
		t.Errorf("after the TTL sealed under %q, want 2", id)
	}
	if got, err := k.Open(t.Context(), old, []byte("a")); err != nil || string(got) != "old" {
		t.Errorf("Open(value under the old key) = %q, %v", got, err)
	}
}

func TestConcurrentColdCacheFetchesOnce(t *testing.T) {
	src := newFakeSource("1")
	seed, _ := NewDataKeyring(src, CacheOptions{})
	sealed := mustSeal(t, seed, "v", "a")
	k, _ := NewDataKeyring(src, CacheOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if _, err := k.Open(t.Context(), sealed, []byte("a")); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// singleflight joins calls that overlap; on a loaded machine some may
	// not, so only assert that the cache was used at all.
	if n := src.count("1"); n < 1 || n >= 16 {
		t.Errorf("Key called %d times for 16 concurrent Opens, want 1..15", n)
	}
}

func TestNewDataKeyringRejects(t *testing.T) {
	tests := []struct {
		name string
		src  Source
		opts CacheOptions
	}{
		{"no source", nil, CacheOptions{}},
		{"negative TTL", newFakeSource("1"), CacheOptions{TTL: -time.Second}},
		{"bad legacy key", newFakeSource("1"), CacheOptions{Legacy: make([]byte, 3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewDataKeyring(tt.src, tt.opts); err == nil {
				t.Error("accepted")
			}
		})
	}
	src := newFakeSource()
	src.currentF = "" // a source that names no key
	k, _ := NewDataKeyring(src, CacheOptions{})
	if _, err := k.Seal(t.Context(), []byte("v"), nil); err == nil {
		t.Error("Seal under an empty key ID succeeded")
	}
}
