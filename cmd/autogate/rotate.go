package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/autogate/autogate/internal/config"
	srv "github.com/autogate/autogate/internal/server"
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
			return srv.RotateSecretKey(cmd.Context(), cfg, reseal, cmd.OutOrStdout())
		},
	}
	cfg.Bind(kcmd.Flags(), "data-dir", "cluster", "store", "table", "kms-key-id")
	kcmd.Flags().BoolVar(&reseal, "reseal", reseal, "re-seal every stored secret under the new data key")
	cmd.AddCommand(kcmd)
	return cmd
}
