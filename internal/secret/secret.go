// Package secret seals and opens secret values with AES-256-GCM. Every sealed
// value is bound to the record it belongs to (additional authenticated data),
// so a ciphertext copied onto another secret's record fails to open. Values
// are never logged: Value's LogValue and String print "[REDACTED]".
//
// In embedded mode the key comes from the data directory (a 0600 file made on
// first start) or AUTOGATE_SECRET_KEY; a KMS-backed keyring can replace it
// behind the same Seal/Open methods.
package secret

import (
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

// format is the first byte of every sealed value, so the scheme can change.
const format byte = 1

// ErrOpen means a sealed value could not be opened: wrong key, wrong record
// or tampering.
var ErrOpen = errors.New("secret: cannot open sealed value (wrong key or tampered)")

// Keyring seals and opens values.
type Keyring struct{ aead cipher.AEAD }

// NewKeyring returns a keyring for a 32-byte key.
func NewKeyring(key []byte) (*Keyring, error) {
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
	return &Keyring{aead: aead}, nil
}

// Seal encrypts plaintext bound to aad.
func (k *Keyring) Seal(plaintext, aad []byte) []byte {
	out := make([]byte, 1+k.aead.NonceSize(), 1+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	out[0] = format
	_, _ = rand.Read(out[1:]) // crypto/rand.Read never returns an error since Go 1.24
	return k.aead.Seal(out, out[1:], plaintext, aad)
}

// Open decrypts a value Seal made with the same aad.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < 1+n+k.aead.Overhead() || sealed[0] != format {
		return nil, ErrOpen
	}
	pt, err := k.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
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
