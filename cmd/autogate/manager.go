package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/autogate/autogate/internal/manager"
	srv "github.com/autogate/autogate/internal/server"
)

// managerCmd is `autogate manager`: it serves the Gateway Manager, and its
// `create cluster` verb registers a cluster through the manager's API.
func managerCmd() *cobra.Command {
	cfg := manager.DefaultConfig()
	envErr := cfg.FromEnv(os.LookupEnv)
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run the Gateway Manager: one place that sees and drives every cluster",
		Long: `Run the Gateway Manager. Each cluster's active gateway keeps one outbound connection to it
(autogate server --manager-url URL --manager-credential-file FILE), and the manager routes
requests to a cluster over that connection: autogate --context manager get services --cluster eu-1.

With no configuration it runs on an embedded store under --data-dir, TLS with a
self-signed certificate on 127.0.0.1:9443. On first start it creates the user "admin",
writing its password to DATA_DIR/admin-password (0600):

  autogate manager &
  autogate login --name manager --server https://127.0.0.1:9443 \
      --ca-file ~/.local/share/autogate-manager/tls/tls.crt \
      --password-file ~/.local/share/autogate-manager/admin-password
  autogate manager create cluster eu-1 --region eu-west-1 --credential-file eu-1.credential

With --store dynamodb --table T it keeps its records under its own cluster ID (--cluster,
default "manager") in T, which it may share with clusters, and runs active/standby with
the gateways' DynamoDB lease. Every flag can also be set through the environment
variable named in its help.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if envErr != nil {
				return envErr
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			m := &srv.Manager{Config: cfg, Version: version, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
				Logger: srv.NewLogger(cfg.LogLevel, cfg.LogFormat, os.Stderr)}
			return m.Run(cmd.Context())
		},
	}
	cfg.Bind(cmd.Flags())
	return cmd
}
