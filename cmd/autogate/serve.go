package main

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/executor"
	srv "github.com/autogate/autogate/internal/server"
)

func serverCmd() *cobra.Command {
	cfg := config.DefaultServer()
	envErr := cfg.FromEnv(os.LookupEnv)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a gateway server (all-in-one on an embedded store by default)",
		Long: `Run a gateway server. With no configuration it is an all-in-one node: the embedded store
under --data-dir, services run in this process, TLS with a self-signed certificate.

On first start it creates the user "admin" and writes its password to
DATA_DIR/admin-password (0600), and the certificate to DATA_DIR/tls/tls.crt:

  autogate server &
  autogate login --server https://127.0.0.1:8443 \
      --ca-file ~/.local/share/autogate/tls/tls.crt \
      --password-file ~/.local/share/autogate/admin-password

The stored-secret key is read from AUTOGATE_SECRET_KEY (base64, 32 bytes) or kept in
DATA_DIR/secret.key (0600). Every flag can also be set through the environment
variable named in its help.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if envErr != nil {
				return envErr
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cfg.Bind(cmd.Flags())
	return cmd
}

// serve runs a gateway until ctx ends (bench_test.go calls it in-process).
func serve(ctx context.Context, cfg config.Server, stdout, stderr io.Writer) error {
	shim, err := executor.SelfShim() // main begins with executor.RunShim
	if err != nil {
		return err
	}
	return serveWith(ctx, cfg, shim, stdout, stderr)
}

// serveWith is serve with the services' shim given (bench_test.go passes
// the small autogate-shim it builds, as an installation has next to the
// binary).
func serveWith(ctx context.Context, cfg config.Server, shim string, stdout, stderr io.Writer) error {
	g := &srv.Gateway{Config: cfg, Version: version, Stdout: stdout, Stderr: stderr, ShimPath: shim,
		Logger: srv.NewLogger(cfg.LogLevel, cfg.LogFormat, os.Stderr)}
	return g.Run(ctx)
}
