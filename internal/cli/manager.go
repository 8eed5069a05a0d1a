package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/autogate/autogate/internal/wire"
)

// Manager adds the client verbs of the Gateway Manager (`manager create
// cluster`) to the binary's `manager` command and returns it, so they run
// on this App's contexts and typed client like every other verb.
func (a *App) Manager(cmd *cobra.Command) *cobra.Command {
	create := &cobra.Command{Use: "create", Short: "Register things with the manager"}
	create.AddCommand(a.managerCreateClusterCmd())
	cmd.AddCommand(create)
	return cmd
}

// managerCreateClusterCmd registers a cluster by calling the manager's API
// as the CLI's current (or --context) user, an admin. It goes through the
// API and not the store because the embedded store is locked by the
// running manager, because only the active manager may write (fenced on
// DynamoDB), and so that the role check and the audit log apply.
func (a *App) managerCreateClusterCmd() *cobra.Command {
	var req wire.CreateClusterRequest
	var credFile string
	cmd := &cobra.Command{
		Use:   "cluster ID [--region R] [--account A] [--description D] [--credential-file F]",
		Short: "Register a cluster and print its credential (shown once)",
		Long: `Register a cluster with the manager of the current CLI context (autogate login to the
manager first; admin role). The answer holds the cluster's credential, shown only this once:
its active gateway presents it to connect (autogate server --manager-credential-file F, or
AUTOGATE_MANAGER_CREDENTIAL_FILE). With --credential-file it is written there (0600) instead
of stdout.`,
		Example: "  autogate --context manager manager create cluster eu-1 --region eu-west-1 --account 123456789012",
		Args:    exactArgs(1, "a cluster ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.ID = args[0]
			if a.output != "table" && a.output != "json" && a.output != "yaml" {
				return usageErr{fmt.Errorf("output format %q: want table, json or yaml", a.output)}
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			created, err := cl.CreateCluster(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("create cluster %s: %w", req.ID, err)
			}
			if credFile != "" {
				if err := writeCredential(credFile, created.Credential); err != nil {
					return fmt.Errorf("cluster %s was created, but its credential could not be saved (delete and create it again): %w", req.ID, err)
				}
				created.Credential = ""
			}
			if a.output != "table" {
				return printValue(a.Out, a.output, created)
			}
			fmt.Fprintf(a.Out, "cluster/%s created\n", created.ID)
			if credFile != "" {
				fmt.Fprintf(a.Out, "credential written to %s (0600); give it to the cluster's gateways as --manager-credential-file\n", credFile)
				return nil
			}
			fmt.Fprintf(a.Out, "credential (shown once; give it to the cluster's gateways as --manager-credential-file):\n%s\n", created.Credential)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Region, "region", "", "AWS region of the cluster, e.g. eu-west-1")
	f.StringVar(&req.Account, "account", "", "AWS account ID of the cluster (12 digits)")
	f.StringVar(&req.Description, "description", "", "free text")
	f.StringVar(&credFile, "credential-file", "", "write the credential to this file (0600, never overwritten) instead of stdout")
	return cmd
}

// writeCredential creates path (0600) with cred; it never overwrites.
func writeCredential(path, cred string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(cred + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
