package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
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
	srv "github.com/autogate/autogate/internal/server"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
)

// createKMSKey makes a key in local-kms with a raw CreateKey call (only
// internal/secret/kms imports the KMS SDK).
func createKMSKey(t testing.TB, ep emulator.Endpoint) string {
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
			kr, err := srv.OpenKMSKeyring(t.Context(), cfg, awsConfigFromEnv(t), st, "", os.Getenv, discardLog())
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

// TestServerKMSKeyring runs real server processes: a secret stored under the
// legacy key file keeps working after the server moves to --kms-key-id,
// `autogate rotate secret-key` re-seals it, and after that the server needs
// no legacy key at all.
func TestServerKMSKeyring(t *testing.T) {
	requireTool(t, "git")
	ep := emulator.KMS(t)
	keyID := createKMSKey(t, ep)
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	gitRepo(t, repo, map[string]string{
		"bin/secret.sh": "#!/bin/sh\n[ \"$(printf %s \"$TOKEN\" | sha256sum | cut -c1-16)\" = " + secretHash + " ] && echo token-matches\n",
	}, map[string]os.FileMode{"bin/secret.sh": 0o755})
	dataDir := filepath.Join(base, "data")
	kmsEnv := append(emulator.Env(), "AUTOGATE_SECRET_KEY=", "AUTOGATE_KMS_KEY_ID="+keyID, "AUTOGATE_KMS_CACHE_TTL=2s")

	srv := startServer(t, dataDir, base)
	srv.waitLine("active")
	c := &cliRunner{t: t, config: filepath.Join(base, "cli.yaml")}
	login := func(srv *server) {
		c.must(0, "login", "--server", srv.url, "--ca-file", filepath.Join(dataDir, "tls", "tls.crt"),
			"--password-file", filepath.Join(dataDir, "admin-password"))
	}
	login(srv)
	secretFile := filepath.Join(base, "token")
	if err := os.WriteFile(secretFile, []byte(secretValue), 0o600); err != nil {
		t.Fatal(err)
	}
	c.must(0, "create", "repository", "demo", "--url", repo, "--reference", "main")
	c.must(0, "create", "secret", "api-token", "--from-file", secretFile)
	c.must(0, "create", "service", "executable", "secretive", "--repository", "demo", "--filename", "bin/secret.sh",
		"--secret-env", "api-token=TOKEN")
	srv.stop()

	runSecretive := func(step string) {
		t.Helper()
		if r := c.must(0, "run", "service", "executable", "secretive"); !strings.Contains(r.stdout, "token-matches") {
			t.Errorf("%s: the service did not get the secret:\n%s\n%s", step, r.stdout, r.stderr)
		}
	}
	// The embedded lease is held at once: "active" comes before "listening
	// on", which startServerEnv waits for.
	srv = startServerEnv(t, dataDir, base, kmsEnv)
	login(srv)
	runSecretive("KMS server, secret under the legacy key")
	c.must(0, "create", "secret", "second", "--from-file", secretFile)
	srv.stop()

	rot := exec.Command(binPath, "rotate", "secret-key", "--data-dir", dataDir)
	rot.Env = append(os.Environ(), kmsEnv...)
	if out, err := rot.CombinedOutput(); err != nil || !strings.Contains(string(out), "re-sealed 2 secret(s) under data key 2") {
		t.Fatalf("rotate secret-key (one secret under the legacy key, one under data key 1): %v\n%s", err, out)
	} else if strings.Contains(string(out), secretValue) {
		t.Errorf("rotate printed the secret value: %s", out)
	}
	if err := os.Rename(filepath.Join(dataDir, "secret.key"), filepath.Join(base, "secret.key.old")); err != nil {
		t.Fatal(err)
	}
	// The embedded lease is held at once: "active" comes before "listening
	// on", which startServerEnv waits for.
	srv = startServerEnv(t, dataDir, base, kmsEnv)
	login(srv)
	runSecretive("KMS server without the legacy key, after rotation")
	c.must(0, "create", "service", "executable", "secretive2", "--repository", "demo", "--filename", "bin/secret.sh",
		"--secret-env", "second=TOKEN")
	if r := c.must(0, "run", "service", "executable", "secretive2"); !strings.Contains(r.stdout, "token-matches") {
		t.Errorf("a secret created under KMS data key 1 did not open after rotation:\n%s", r.stdout)
	}
	raw, _ := os.ReadFile(srv.LogPath)
	if !strings.Contains(string(raw), "stored secrets sealed under KMS data keys") || strings.Contains(string(raw), secretValue) {
		t.Errorf("server log: want the KMS keyring line and no secret value")
	}
}
