package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
)

// createKMSKey makes a key in local-kms with a raw CreateKey call (only
// internal/secret/kms imports the KMS SDK).
func createKMSKey(t *testing.T, ep emulator.Endpoint) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ep.URL+"/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.CreateKey")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct{ KeyMetadata struct{ Arn string } }
	if err := json.Unmarshal(body, &out); err != nil || out.KeyMetadata.Arn == "" {
		t.Fatalf("CreateKey = HTTP %d %s", resp.StatusCode, body)
	}
	return out.KeyMetadata.Arn
}

func runRotate(t *testing.T, args ...string) string {
	t.Helper()
	cmd := rotateCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"secret-key"}, args...))
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("rotate secret-key %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// TestRotateSecretKey moves an embedded store's secrets from the legacy
// key file to KMS data keys, rotates again, and checks after each step that
// the secret opens and is sealed under the expected data key.
func TestRotateSecretKey(t *testing.T) {
	ep := emulator.KMS(t)
	for _, kv := range emulator.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AUTOGATE_SECRET_KEY", "")
	t.Setenv("AUTOGATE_KMS_KEY_ID", "")
	keyID := createKMSKey(t, ep)
	dir := t.TempDir()
	legacy, _, err := secret.LoadOrCreateKeyFile(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	withStore := func(fn func(st store.Store)) {
		st, err := bolt.Open(filepath.Join(dir, "autogate.db"), clock.Real{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		fn(st)
	}
	withStore(func(st store.Store) {
		kr, _ := secret.NewKeyring(legacy)
		cat := &catalog.Catalog{Store: st, Cluster: "default", Keyring: kr, Clock: clock.Real{}}
		if err := cat.Create(t.Context(), &resource.Secret{Meta: resource.Meta{Name: "db"}, Value: secret.Value("hunter2-pw")}); err != nil {
			t.Fatal(err)
		}
	})
	check := func(wantKey string) {
		t.Helper()
		withStore(func(st store.Store) {
			rec, err := st.Get(t.Context(), store.Key{Cluster: "default", Kind: resource.KindSecret, Name: "db"})
			if err != nil {
				t.Fatal(err)
			}
			var doc struct{ Sealed []byte }
			_ = json.Unmarshal(rec.Data, &doc)
			if got := secret.KeyID(doc.Sealed); got != wantKey {
				t.Errorf("secret sealed under data key %q, want %q", got, wantKey)
			}
			cfg := config.DefaultServer()
			cfg.KMSKeyID = keyID
			kr, err := openKMSKeyring(t.Context(), cfg, awsConfigFromEnv(t), st, "", discardLog())
			if err != nil {
				t.Fatal(err)
			}
			// No legacy key given: the value must be under a KMS data key.
			cat := &catalog.Catalog{Store: st, Cluster: "default", Keyring: kr, Clock: clock.Real{}}
			if v, err := cat.SecretValue(t.Context(), "db"); err != nil || string(v) != "hunter2-pw" {
				t.Errorf("SecretValue = %v (len %d), want the original value", err, len(v))
			}
		})
	}

	out := runRotate(t, "--data-dir", dir, "--kms-key-id", keyID)
	if !strings.Contains(out, "created the keyring") || !strings.Contains(out, "re-sealed 1 secret(s) under data key 1") {
		t.Errorf("first rotate printed %q", out)
	}
	check("1")
	out = runRotate(t, "--data-dir", dir, "--kms-key-id", keyID)
	if !strings.Contains(out, "data key 1 -> 2; 1 older version(s) re-wrapped") || !strings.Contains(out, "re-sealed 1 secret(s) under data key 2") {
		t.Errorf("second rotate printed %q", out)
	}
	check("2")
	if strings.Contains(out, "hunter2") {
		t.Error("rotate printed the secret value")
	}

	cmd := rotateCmd()
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SetArgs([]string{"secret-key", "--data-dir", dir})
	if err := cmd.ExecuteContext(t.Context()); err == nil || !strings.Contains(err.Error(), "--kms-key-id") {
		t.Errorf("rotate without --kms-key-id = %v, want an error naming it", err)
	}
}

func awsConfigFromEnv(t *testing.T) aws.Config {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
