package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k1, _ := NewKeyring(bytes.Repeat([]byte{1}, KeySize))
	k2, _ := NewKeyring(bytes.Repeat([]byte{2}, KeySize))
	sealed, err := k1.Seal(t.Context(), []byte("hunter2"), []byte("c/secret/a"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("sealed value contains the plaintext")
	}
	tampered := append([]byte{}, sealed...)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name   string
		k      *Keyring
		sealed []byte
		aad    string
		want   string
		err    error
	}{
		{"same key and record", k1, sealed, "c/secret/a", "hunter2", nil},
		{"other record", k1, sealed, "c/secret/b", "", ErrOpen},
		{"other key", k2, sealed, "c/secret/a", "", ErrOpen},
		{"tampered", k1, tampered, "c/secret/a", "", ErrOpen},
		{"short", k1, sealed[:5], "c/secret/a", "", ErrOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.k.Open(t.Context(), tt.sealed, []byte(tt.aad))
			if !errors.Is(err, tt.err) || string(got) != tt.want {
				t.Errorf("Open = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
	x1, _ := k1.Seal(t.Context(), []byte("x"), nil)
	x2, _ := k1.Seal(t.Context(), []byte("x"), nil)
	if bytes.Equal(x1, x2) {
		t.Error("two seals of one value are equal: nonce reused")
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	k, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created || len(k) != KeySize {
		t.Fatalf("first load = %d bytes, created %v, %v", len(k), created, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || !bytes.Equal(k, k2) {
		t.Fatalf("second load differs (created %v, err %v)", created, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKeyFile(path); err == nil {
		t.Error("world-readable key file accepted")
	}
}

func TestParseKey(t *testing.T) {
	good := bytes.Repeat([]byte{7}, KeySize)
	tests := []struct {
		in    string
		valid bool
	}{
		{base64.StdEncoding.EncodeToString(good), true},
		{base64.RawURLEncoding.EncodeToString(good) + "\n", true},
		{base64.StdEncoding.EncodeToString(good[:16]), false},
		{"not base64 !!", false},
		{"", false},
	}
	for _, tt := range tests {
		_, err := ParseKey(tt.in)
		if (err == nil) != tt.valid {
			t.Errorf("ParseKey(%q) err = %v, want valid=%v", tt.in, err, tt.valid)
		}
	}
}

func TestValueNeverPrints(t *testing.T) {
	v := Value("hunter2")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "secret", v)
	for _, s := range []string{fmt.Sprint(v), fmt.Sprintf("%v %s %#v", v, v, v), buf.String()} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("secret leaked: %s", s)
		}
	}
}
