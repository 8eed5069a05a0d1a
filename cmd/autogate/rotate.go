package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/secret/kms"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
)

func rotateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rotate", Short: "Rotate keys"}
	cfg := config.DefaultServer()
	envErr := cfg.FromEnv(os.LookupEnv)
	reseal := true
	kcmd := &cobra.Command{
		Use:   "secret-key --kms-key-id KEY",
		Short: "Roll a new KMS data key for stored secrets and re-wrap the old ones",
		Long: `Rotate the cluster's stored-secret data keys, without downtime:

 1. every data key version in the cluster's keyring record is re-wrapped under
    --kms-key-id with KMS ReEncrypt (the plaintext never leaves KMS), so a KMS key
    you are moving away from can be disabled afterwards;
 2. a new data key (KMS GenerateDataKey) becomes the current one; the older
    versions stay, so every value sealed before still opens;
 3. with --reseal (the default) every stored secret is re-sealed under the new
    data key. Executions' sealed inputs are not: they keep opening under their
    version until retention removes them.

Running gateways and runners open values under the new key at once and seal under
it within --kms-cache-ttl. It talks to the store directly, like 'autogate init
table': on DynamoDB give --store dynamodb --table; the embedded store is locked by
a running server, so stop it first. AWS access comes from the SDK's standard chain
(AWS_ENDPOINT_URL_KMS for an emulator).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if envErr != nil {
				return envErr
			}
			if cfg.KMSKeyID == "" {
				return errors.New("--kms-key-id (AUTOGATE_KMS_KEY_ID) is required")
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
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
			out := cmd.OutOrStdout()
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
			kr, err := openKMSKeyring(ctx, cfg, awsCfg, st, dataDir, slog.New(slog.DiscardHandler))
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
		},
	}
	cfg.Bind(kcmd.Flags(), "data-dir", "cluster", "store", "table", "kms-key-id")
	kcmd.Flags().BoolVar(&reseal, "reseal", reseal, "re-seal every stored secret under the new data key")
	cmd.AddCommand(kcmd)
	return cmd
}
