package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store/bolt"
)

func TestMain(m *testing.M) { emulator.Main(m) }

func TestKMSConfig(t *testing.T) {
	e := baseEnv()
	delete(e, "AUTOGATE_SECRET_KEY_SECRET_ID")
	e["AUTOGATE_KMS_KEY_ID"] = "alias/autogate-prod"
	c, err := loadConfig(env(e))
	if err != nil {
		t.Fatalf("a KMS key alone: %v", err)
	}
	if c.KMSKeyID != "alias/autogate-prod" || c.KMSCacheTTL != secret.DefaultCacheTTL {
		t.Errorf("KMS key %q TTL %v", c.KMSKeyID, c.KMSCacheTTL)
	}
	for _, ttl := range []string{"0s", "2h", "soon"} {
		e["AUTOGATE_KMS_CACHE_TTL"] = ttl
		if _, err := loadConfig(env(e)); err == nil || !strings.Contains(err.Error(), "AUTOGATE_KMS_CACHE_TTL") {
			t.Errorf("AUTOGATE_KMS_CACHE_TTL=%s: error %v, want one naming it", ttl, err)
		}
	}
}

// TestOpenKeyringWithKMS wires the Lambda runner's keyring against local-kms:
// values sealed before under the legacy key and after under KMS both open.
func TestOpenKeyringWithKMS(t *testing.T) {
	ep := emulator.KMS(t)
	awsCfg := emulator.AWSConfig(t, ep)
	awsCfg.Credentials = credentials.NewStaticCredentialsProvider(emulator.AccessKeyID, emulator.SecretAccessKey, "")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ep.URL+"/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.CreateKey")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct{ KeyMetadata struct{ KeyId string } }
	if err := json.Unmarshal(body, &out); err != nil || out.KeyMetadata.KeyId == "" {
		t.Fatalf("CreateKey = %s", body)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	e := baseEnv()
	delete(e, "AUTOGATE_SECRET_KEY_SECRET_ID")
	e["AUTOGATE_SECRET_KEY"] = testKey
	e["AUTOGATE_KMS_KEY_ID"] = out.KeyMetadata.KeyId
	c, err := loadConfig(env(e))
	if err != nil {
		t.Fatal(err)
	}
	legacy, _ := secret.ParseKey(testKey)
	old, _ := secret.NewKeyring(legacy)
	before, _ := old.Seal(t.Context(), []byte("old"), []byte("aad"))

	kr, err := openKeyring(t.Context(), c, awsCfg, nil, st)
	if err != nil {
		t.Fatalf("openKeyring: %v", err)
	}
	after, err := kr.Seal(t.Context(), []byte("new"), []byte("aad"))
	if err != nil || secret.KeyID(after) != "1" {
		t.Fatalf("Seal = key %q, %v; want KMS data key 1", secret.KeyID(after), err)
	}
	for sealed, want := range map[*[]byte]string{&before: "old", &after: "new"} {
		if got, err := kr.Open(t.Context(), *sealed, []byte("aad")); err != nil || string(got) != want {
			t.Errorf("Open = %q, %v; want %q", got, err, want)
		}
	}

	// A cluster with no keyring yet and a KMS key that does not exist
	// fails start-up, naming the key.
	fresh, err := bolt.Open(filepath.Join(t.TempDir(), "db"), clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	c.KMSKeyID = "alias/does-not-exist"
	if _, err := openKeyring(t.Context(), c, awsCfg, nil, fresh); err == nil || !strings.Contains(err.Error(), "alias/does-not-exist") {
		t.Errorf("openKeyring with a missing KMS key = %v, want an error naming it", err)
	}
}
