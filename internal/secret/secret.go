// Package secret seals and opens secret values with AES-256-GCM. Every sealed
// value is bound to the record it belongs to (additional authenticated data),
// so a ciphertext copied onto another secret's record fails to open. Values
// are never logged: Value's LogValue and String print "[REDACTED]".
//
// A Keyring holds one of two kinds of key, or both:
//   - the legacy key: one 32-byte key from the data directory (a 0600 file
//     made on first start) or AUTOGATE_SECRET_KEY. Values sealed under it
//     carry format byte 1 and no key ID;
//   - data keys from a Source (the KMS keyring of internal/secret/kms):
//     values carry format byte 2 and the ID of the data key that sealed them,
//     so a keyring whose current data key changed (rotation) still opens
//     every older value. Plaintext data keys are cached in memory for a
//     bounded time (CacheOptions.TTL), then dropped and fetched again, so a
//     KMS key that is disabled or whose grant is revoked stops this process
//     opening values within one TTL.
//
// It does not guarantee that a dropped key leaves the process's memory: Go's
// AES keeps its own expanded copy until the garbage collector frees it.
package secret

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

// Format bytes: the first byte of every sealed value, so the scheme can change.
const (
	formatLegacy  byte = 1 // [1][nonce][ciphertext], the legacy key
	formatDataKey byte = 2 // [2][len(id)][id][nonce][ciphertext], data key id
)

// MaxKeyIDLen bounds a data key ID (it is stored in every sealed value).
const MaxKeyIDLen = 64

// ErrOpen means a sealed value could not be opened: wrong key, wrong record
// or tampering.
var ErrOpen = errors.New("secret: cannot open sealed value (wrong key or tampered)")

// Keyring seals and opens values. Its methods are safe for concurrent use.
type Keyring struct {
	legacy cipher.AEAD // nil: values of format 1 do not open
	data   *dataKeys   // nil: legacy key only
}

// NewKeyring returns a keyring for a 32-byte legacy key.
func NewKeyring(key []byte) (*Keyring, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &Keyring{legacy: aead}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key: %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return aead, nil
}

// Seal encrypts plaintext bound to aad, under the current data key when the
// keyring has a Source (fetching it if the cache has none), else under the
// legacy key.
func (k *Keyring) Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	if k.data == nil {
		return sealWith(k.legacy, []byte{formatLegacy}, plaintext, aad), nil
	}
	id, aead, err := k.data.current(ctx)
	if err != nil {
		return nil, err
	}
	header := append([]byte{formatDataKey, byte(len(id))}, id...)
	return sealWith(aead, header, plaintext, aad), nil
}

// sealWith returns header || nonce || ciphertext. The header is
// authenticated with aad, so a value cannot be relabelled to another key.
func sealWith(aead cipher.AEAD, header, plaintext, aad []byte) []byte {
	n := len(header) + aead.NonceSize()
	out := make([]byte, n, n+len(plaintext)+aead.Overhead())
	copy(out, header)
	_, _ = rand.Read(out[len(header):]) // crypto/rand.Read never returns an error since Go 1.24
	return aead.Seal(out, out[len(header):], plaintext, headerAAD(header, aad))
}

// headerAAD is what GCM authenticates: the caller's aad for format 1 (as
// before data keys existed, so old values still open), the header followed
// by it for format 2.
func headerAAD(header, aad []byte) []byte {
	if header[0] == formatLegacy {
		return aad
	}
	return append(append([]byte{}, header...), aad...)
}

// Open decrypts a value Seal made with the same aad. A value sealed under a
// data key this process has not cached is opened after fetching that key
// from the Source; if the fetch fails the error says why (it wraps the
// Source's error, not ErrOpen).
func (k *Keyring) Open(ctx context.Context, sealed, aad []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, ErrOpen
	}
	var (
		header []byte
		aead   cipher.AEAD
	)
	switch sealed[0] {
	case formatLegacy:
		if k.legacy == nil {
			return nil, fmt.Errorf("%w: sealed under the legacy secret key (AUTOGATE_SECRET_KEY or DATA_DIR/secret.key), which this process was not given", ErrOpen)
		}
		header, aead = sealed[:1], k.legacy
	case formatDataKey:
		if k.data == nil || len(sealed) < 2 || int(sealed[1]) == 0 || len(sealed) < 2+int(sealed[1]) {
			return nil, ErrOpen
		}
		header = sealed[:2+int(sealed[1])]
		var err error
		if aead, err = k.data.key(ctx, string(header[2:])); err != nil {
			return nil, err
		}
	default:
		return nil, ErrOpen
	}
	n := aead.NonceSize()
	if len(sealed) < len(header)+n+aead.Overhead() {
		return nil, ErrOpen
	}
	nonce := sealed[len(header) : len(header)+n]
	pt, err := aead.Open(nil, nonce, sealed[len(header)+n:], headerAAD(header, aad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// KeyID returns the ID of the data key sealed was sealed under, or "" for
// the legacy key or a value that is not well formed.
func KeyID(sealed []byte) string {
	if len(sealed) < 2 || sealed[0] != formatDataKey || len(sealed) < 2+int(sealed[1]) {
		return ""
	}
	return string(sealed[2 : 2+int(sealed[1])])
}

// ParseKey decodes a base64 (standard or URL, padded or not) 32-byte key, as
// given in AUTOGATE_SECRET_KEY.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("secret key: decodes to %d bytes, want %d", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("secret key: not base64")
}

// LoadOrCreateKeyFile reads the base64 key in path, creating it (0600) with a
// fresh random key if it does not exist. created reports whether it did.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		if fi, statErr := os.Stat(path); statErr == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("secret key file %s: mode %v is readable by others; chmod 600 it", path, fi.Mode().Perm())
		}
		key, err := ParseKey(string(raw))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return key, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("read secret key: %w", err)
	}
	key = make([]byte, KeySize)
	_, _ = rand.Read(key) // never fails since Go 1.24
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("create secret key: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("write secret key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("write secret key: %w", err)
	}
	return key, true, nil
}

// Value is a secret held in memory. It never prints itself.
type Value []byte

// String returns a redaction marker, never the value.
func (Value) String() string { return "[REDACTED]" }

// LogValue keeps the value out of logs.
func (Value) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// GoString keeps the value out of %#v.
func (Value) GoString() string { return "[REDACTED]" }
