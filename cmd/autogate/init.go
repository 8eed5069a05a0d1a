package main

import (
	"errors"
	"fmt"
	"os"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
)

func initCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "init", Short: "Create what a clustered gateway needs"}
	var table string
	tcmd := &cobra.Command{
		Use:   "table --table NAME",
		Short: "Create the DynamoDB table (pay-per-request, TTL on) for clustered gateways",
		Long: `Create the DynamoDB table that gateways started with --store dynamodb share: partition
key pk, sort key sk, pay-per-request, TTL on expiresAt. It waits until the table is
ACTIVE and succeeds if a table of the right shape already exists. The server never
creates the table by itself; in AWS the CDK stack does.

AWS access comes from the SDK's standard chain: AWS_REGION, AWS_PROFILE, credentials,
and AWS_ENDPOINT_URL_DYNAMODB for LocalStack or DynamoDB Local.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if table == "" {
				return errors.New("--table is required")
			}
			cfg, err := awsconfig.LoadDefaultConfig(cmd.Context())
			if err != nil {
				return fmt.Errorf("AWS configuration: %w", err)
			}
			client := storedynamo.NewClient(cfg, storedynamo.ClientOptions{})
			if err := storedynamo.CreateTable(cmd.Context(), client, table); err != nil {
				return err
			}
			if err := storedynamo.CheckTable(cmd.Context(), client, table); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "table %s is ready\n", table)
			return nil
		},
	}
	tcmd.Flags().StringVar(&table, "table", os.Getenv("AUTOGATE_TABLE"), "table name (env AUTOGATE_TABLE)")
	cmd.AddCommand(tcmd)
	return cmd
}
