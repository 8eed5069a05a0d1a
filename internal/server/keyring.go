package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/secret/kms"
	"github.com/autogate/autogate/internal/store"
)

// OpenKMSKeyring returns the cluster's KMS keyring (cfg.KMSKeyID set): data
// keys wrapped by KMS in st, cached for cfg.KMSCacheTTL. The legacy key, if
// this process has one (AUTOGATE_SECRET_KEY, or an existing
// DATA_DIR/secret.key when dataDir is set), still opens values sealed
// before; it is never created here.
func OpenKMSKeyring(ctx context.Context, cfg config.Server, awsCfg aws.Config, st store.Store, dataDir string, getenv func(string) string, log *slog.Logger) (*secret.Keyring, error) {
	legacy, err := legacyKey(dataDir, getenv)
	if err != nil {
		return nil, err
	}
	kr, err := kms.Open(ctx, kms.Config{API: kms.NewClient(awsCfg), Store: st, Cluster: cfg.Cluster,
		KeyID: cfg.KMSKeyID, TTL: cfg.KMSCacheTTL, Clock: clock.Real{}, Legacy: legacy})
	if err != nil {
		return nil, fmt.Errorf("stored-secret keyring (KMS key %s): %w", cfg.KMSKeyID, err)
	}
	log.Info("stored secrets sealed under KMS data keys", "kms_key_id", cfg.KMSKeyID, "legacy_key", legacy != nil)
	return kr, nil
}

// legacyKey is AUTOGATE_SECRET_KEY, else DATA_DIR/secret.key if it exists,
// else nil.
func legacyKey(dataDir string, getenv func(string) string) ([]byte, error) {
	if v := getenv("AUTOGATE_SECRET_KEY"); v != "" {
		return secret.ParseKey(v)
	}
	if dataDir == "" {
		return nil, nil
	}
	path := filepath.Join(dataDir, "secret.key")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	key, _, err := secret.LoadOrCreateKeyFile(path)
	return key, err
}
