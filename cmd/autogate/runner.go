package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/executor"
	srv "github.com/autogate/autogate/internal/server"
)

func runnerCmd() *cobra.Command {
	cfg := config.DefaultServer()
	cfg.Store = "dynamodb"
	envErr := cfg.FromEnv(os.LookupEnv)
	cmd := &cobra.Command{
		Use:   "runner --cluster ID --table NAME --queue-url URL",
		Short: "Run services from the cluster's SQS queue (an ECS runner)",
		Long: `Run executions that the active gateway queued: long-poll the cluster's SQS work queue,
claim each execution with a conditional write (a duplicate delivery never starts a service
twice), keep the message invisible while the service runs, record the result, delete the
message. Up to --concurrency services run at once. The runner registers in the cluster's
node list with its load ('autogate get nodes').

SIGTERM stops receiving, lets running services finish within --shutdown-grace, then kills
them; their attempts are recorded lost and re-queued when the service is retryable.

The stored-secret key comes from AUTOGATE_SECRET_KEY (the gateways' key).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if envErr != nil {
				return envErr
			}
			if err := cfg.ValidateRunner(); err != nil {
				return err
			}
			shim, err := executor.SelfShim() // main begins with executor.RunShim
			if err != nil {
				return err
			}
			r := &srv.Runner{Config: cfg, Version: version, Stdout: cmd.OutOrStdout(), ShimPath: shim,
				Logger: srv.NewLogger(cfg.LogLevel, cfg.LogFormat, os.Stderr)}
			return r.Run(cmd.Context())
		},
	}
	cfg.Bind(cmd.Flags(), config.RunnerFlags...)
	return cmd
}
