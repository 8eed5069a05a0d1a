package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/autogate/autogate/internal/cli"
	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/manager"
	"github.com/autogate/autogate/internal/manager/registry"
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
	create := &cobra.Command{Use: "create", Short: "Register things with the manager"}
	create.AddCommand(managerCreateClusterCmd())
	cmd.AddCommand(create)
	return cmd
}

// managerCreateClusterCmd registers a cluster by calling the manager's API
// as the CLI's current (or --context) user, an admin. It goes through the
// API and not the store because the embedded store is locked by the
// running manager, because only the active manager may write (fenced on
// DynamoDB), and so that the role check and the audit log apply.
func managerCreateClusterCmd() *cobra.Command {
	var req registry.CreateRequest
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
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.ID = args[0]
			out := cmd.Flag("output").Value.String()
			if out != "table" && out != "json" && out != "yaml" {
				return fmt.Errorf("output format %q: want table, json or yaml", out)
			}
			mc, err := newManagerClient(cmd)
			if err != nil {
				return err
			}
			var created registry.Created
			if err := mc.do(cmd.Context(), http.MethodPost, "/v1/clusters", req, &created); err != nil {
				return fmt.Errorf("create cluster %s: %w", req.ID, err)
			}
			w := cmd.OutOrStdout()
			if credFile != "" {
				if err := writeCredential(credFile, created.Credential); err != nil {
					return fmt.Errorf("cluster %s was created, but its credential could not be saved (delete and create it again): %w", req.ID, err)
				}
				created.Credential = ""
			}
			switch out {
			case "json":
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(created)
			case "yaml":
				raw, err := yaml.Marshal(created)
				if err != nil {
					return err
				}
				_, err = w.Write(raw)
				return err
			}
			fmt.Fprintf(w, "cluster/%s created\n", created.ID)
			if credFile != "" {
				fmt.Fprintf(w, "credential written to %s (0600); give it to the cluster's gateways as --manager-credential-file\n", credFile)
				return nil
			}
			fmt.Fprintf(w, "credential (shown once; give it to the cluster's gateways as --manager-credential-file):\n%s\n", created.Credential)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Region, "region", "", "AWS region of the cluster, e.g. eu-west-1")
	f.StringVar(&req.Account, "account", "", "AWS account ID of the cluster (12 digits)")
	f.StringVar(&req.Description, "description", "", "free text")
	f.StringVar(&credFile, "credential-file", "", "write the credential to this file (0600) instead of stdout")
	return cmd
}

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

// managerClient calls the manager's own API with the CLI context's token.
// (Routed cluster calls go through the typed client and --cluster.)
type managerClient struct {
	base  string
	token string
	http  *http.Client
}

// cliContext mirrors the CLI config file's context entry (internal/cli),
// read leniently: unknown fields are the CLI's business.
type cliContext struct {
	Server   string `json:"server"`
	CAFile   string `json:"caFile,omitempty"`
	Insecure bool   `json:"insecureSkipTLSVerify,omitempty"`
	Token    string `json:"token,omitempty"`
}

// newManagerClient resolves the context the way the CLI does: --config
// (AUTOGATE_CONFIG), --context (AUTOGATE_CONTEXT) else the current one,
// and AUTOGATE_TOKEN over the stored token.
func newManagerClient(cmd *cobra.Command) (*managerClient, error) {
	path := cli.DefaultConfigPath(os.Getenv)
	if f := cmd.Flag("config"); f != nil && f.Value.String() != "" {
		path = f.Value.String()
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CLI config (log in to the manager first): %w", err)
	}
	var cfg struct {
		Current  string                 `json:"current"`
		Contexts map[string]*cliContext `json:"contexts"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("CLI config %s: %w", path, err)
	}
	name := cfg.Current
	if f := cmd.Flag("context"); f != nil && f.Value.String() != "" {
		name = f.Value.String()
	}
	c := cfg.Contexts[name]
	if c == nil {
		return nil, fmt.Errorf("context %q not found in %s: run `autogate login --name manager --server https://MANAGER:9443` first", name, path)
	}
	tok := c.Token
	if t := os.Getenv("AUTOGATE_TOKEN"); t != "" {
		tok = t
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.Insecure} //nolint:gosec // opt-in per context
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates", c.CAFile)
		}
		tcfg.RootCAs = pool
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tcfg, TLSHandshakeTimeout: 10 * time.Second,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	return &managerClient{base: strings.TrimRight(c.Server, "/"), token: tok, http: &http.Client{Transport: tr, Timeout: time.Minute}}, nil
}

// do sends body as JSON and decodes the answer into out; a non-2xx answer
// is a *client.Error, so the CLI's exit codes apply.
func (m *managerClient) do(ctx context.Context, method, path string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, m.base+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if m.token != "" {
		req.Header.Set("Authorization", "Bearer "+m.token)
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, m.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &client.Error{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.Problem) != nil {
			e.Problem.Detail = strings.TrimSpace(string(data))
		}
		return e
	}
	return json.Unmarshal(data, out)
}
