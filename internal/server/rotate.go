package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/secret/kms"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
)

// RotateSecretKey rolls a new KMS data key for cfg's cluster, re-wraps the
// older versions under cfg.KMSKeyID and, with reseal, re-seals every stored
// secret under the new key (`autogate rotate secret-key`). It reports to out.
func RotateSecretKey(ctx context.Context, cfg config.Server, reseal bool, out io.Writer) error {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	clk := clock.Real{}
	var st store.Store
	dataDir := ""
	if cfg.Store == "dynamodb" {
		client := storedynamo.NewClient(awsCfg, storedynamo.ClientOptions{})
		if err := storedynamo.CheckTable(ctx, client, cfg.Table); err != nil {
			return err
		}
		if st, err = storedynamo.New(client, storedynamo.Config{Table: cfg.Table, Clock: clk}); err != nil {
			return err
		}
	} else {
		b, err := bolt.Open(filepath.Join(cfg.DataDir, "autogate.db"), clk)
		if err != nil {
			return err
		}
		defer b.Close()
		st, dataDir = b, cfg.DataDir
	}
	src, err := kms.New(kms.Config{API: kms.NewClient(awsCfg), Store: st, Cluster: cfg.Cluster, KeyID: cfg.KMSKeyID, Clock: clk})
	if err != nil {
		return err
	}
	rot, err := src.Rotate(ctx)
	if err != nil {
		return err
	}
	if rot.Previous == "" {
		fmt.Fprintf(out, "created the keyring of cluster %s: data key %s under %s\n", cfg.Cluster, rot.Current, cfg.KMSKeyID)
	} else {
		fmt.Fprintf(out, "cluster %s: data key %s -> %s; %d older version(s) re-wrapped under %s\n",
			cfg.Cluster, rot.Previous, rot.Current, rot.Rewrapped, cfg.KMSKeyID)
	}
	if !reseal {
		return nil
	}
	// A fresh keyring: it sees the new current version at once.
	kr, err := OpenKMSKeyring(ctx, cfg, awsCfg, st, dataDir, os.Getenv, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	cat := &catalog.Catalog{Store: st, Cluster: cfg.Cluster, Keyring: kr, Clock: clk}
	n, skipped, err := cat.ResealSecrets(ctx)
	if err != nil {
		return fmt.Errorf("re-seal secrets (%d done; run again to finish): %w", n, err)
	}
	fmt.Fprintf(out, "re-sealed %d secret(s) under data key %s", n, rot.Current)
	if skipped > 0 {
		fmt.Fprintf(out, " (%d changed meanwhile, sealed by their writer)", skipped)
	}
	fmt.Fprintln(out)
	return nil
}
