package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/yaml"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/cli"
	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/lease"
	leasedynamo "github.com/autogate/autogate/internal/lease/dynamo"
	"github.com/autogate/autogate/internal/manager"
	"github.com/autogate/autogate/internal/manager/registry"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
	"github.com/autogate/autogate/internal/tunnel"
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
			return runManager(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
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

// runManager serves the manager until ctx ends.
func runManager(ctx context.Context, cfg manager.Config, stdout, stderr io.Writer) error {
	log := newLogger(config.Server{LogLevel: cfg.LogLevel, LogFormat: cfg.LogFormat}, os.Stderr).
		With("node", cfg.Node, "cluster", cfg.Cluster, "role", "manager")
	clk := clock.Real{}
	tlsDir := filepath.Join(cfg.DataDir, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	scheme := "https"
	if cfg.Plaintext {
		scheme = "http"
	}
	advertise := cfg.Advertise
	if advertise == "" {
		advertise = fmt.Sprintf("%s://%s", scheme, ln.Addr())
	}

	var (
		raw     store.Store
		fenced  func(lease.Term) store.Store
		elector interface {
			Run(ctx context.Context, cb lease.Callbacks) error
		}
		release = func(context.Context) error { return nil }
	)
	switch cfg.Store {
	case "dynamodb":
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			ln.Close()
			return fmt.Errorf("AWS configuration: %w", err)
		}
		ddb := storedynamo.NewClient(awsCfg, storedynamo.ClientOptions{})
		if err := storedynamo.CheckTable(ctx, ddb, cfg.Table); err != nil {
			ln.Close()
			return err
		}
		st, err := storedynamo.New(ddb, storedynamo.Config{Table: cfg.Table, Clock: clk, Logger: log})
		if err != nil {
			ln.Close()
			return err
		}
		el, err := leasedynamo.New(ddb, leasedynamo.Config{
			Table: cfg.Table, Cluster: cfg.Cluster, Node: cfg.Node, Address: advertise, Version: version,
			LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod, Logger: log,
		})
		if err != nil {
			ln.Close()
			return err
		}
		raw, elector, release = st, el, el.Release
		fenced = func(term lease.Term) store.Store { return st.Fenced(cfg.Cluster, term) }
	default:
		st, err := bolt.Open(filepath.Join(cfg.DataDir, "manager.db"), clk)
		if err != nil {
			ln.Close()
			return err
		}
		defer st.Close()
		raw, elector = st, lease.Local{Node: cfg.Node, Address: advertise}
		fenced = func(lease.Term) store.Store { return st }
	}

	shared := &termStore{Store: raw}
	authn := &auth.Service{Store: shared, Cluster: cfg.Cluster, Clock: clk}
	reg := &registry.Registry{Store: shared, Namespace: cfg.Cluster, Clock: clk}
	hub := manager.NewHub(reg, cfg.Node, tunnel.LinkConfig{Heartbeat: cfg.Heartbeat, MaxFrame: cfg.MaxFrameBytes}, clk, log)
	lead := &leadership{}
	srv := &manager.Server{
		Hub: hub, Registry: reg, Auth: authn, Leader: lead, Logger: log, Clock: clk,
		Namespace: cfg.Cluster, Node: cfg.Node, Version: version,
		RequestTimeout: cfg.RequestTimeout, MaxBodyBytes: cfg.MaxBodyBytes,
		Ready: func(ctx context.Context) error {
			_, _, err := raw.List(ctx, cfg.Cluster, registry.Kind, store.ListOptions{Limit: 1})
			return err
		},
	}
	passFile := cfg.AdminPassFile
	if passFile == "" {
		passFile = filepath.Join(cfg.DataDir, "admin-password")
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      manager.MaxRequestTimeout + time.Minute, // routed sync runs; tunnels lift it
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if !cfg.Plaintext {
		tlsCfg, err := serverTLS(config.Server{TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey}, tlsDir, clk, stderr)
		if err != nil {
			ln.Close()
			return err
		}
		httpSrv.TLSConfig = tlsCfg
	}

	g, gctx := errgroup.WithContext(context.WithoutCancel(ctx))
	g.Go(func() error {
		var err error
		if cfg.Plaintext {
			err = httpSrv.Serve(ln)
		} else {
			err = httpSrv.ServeTLS(ln, "", "")
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve: %w", err)
	})
	leaseCtx, stopLease := context.WithCancel(gctx)
	defer stopLease()
	g.Go(func() error {
		return elector.Run(leaseCtx, lease.Callbacks{
			OnStarted: func(ctx context.Context, term lease.Term) {
				view := fenced(term)
				shared.view.Store(&view)
				lead.term.Store(&term)
				defer func() {
					lead.active.Store(false)
					shared.view.Store(nil)
				}()
				if created, err := authn.EnsureAdmin(ctx, passFile); err != nil {
					log.Error("create the admin user", "error", err)
				} else if created {
					fmt.Fprintf(stderr, "autogate manager: created user admin; its password is in %s (0600)\n", passFile)
				}
				lead.active.Store(true)
				log.Info("active", "epoch", term.Epoch)
				fmt.Fprintf(stdout, "autogate manager: active (epoch %d)\n", term.Epoch)
				hubDone := make(chan struct{})
				go func() { defer close(hubDone); hub.Run(ctx) }() // takes tunnels until the term ends, then closes them
				<-ctx.Done()
				// Stop acting at once, then wait for the tunnels to close.
				lead.active.Store(false)
				shared.view.Store(nil)
				<-hubDone
				log.Warn("no longer active", "epoch", term.Epoch)
			},
			OnNewLeader: func(term lease.Term) {
				if active, _ := lead.Active(); !active {
					lead.term.Store(&term)
				}
			},
		})
	})
	fmt.Fprintf(stdout, "autogate manager: listening on %s://%s (namespace %s, node %s, store %s)\n",
		scheme, ln.Addr(), cfg.Cluster, cfg.Node, cfg.Store)
	log.Info("manager started", "address", ln.Addr().String(), "store", cfg.Store)

	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", cfg.ShutdownGrace.String())
	case <-gctx.Done():
	}
	stopLease() // closes every tunnel: the gateways go to the next active
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if err := release(rctx); err != nil {
		log.Warn("release lease", "error", err)
	}
	rcancel()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownGrace)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "error", err)
	}
	return g.Wait()
}

// newTunnelConnector builds the connector of a gateway configured with a
// manager (--manager-url). The credential comes from credFile, else from
// envCred (config's AUTOGATE_MANAGER_CREDENTIAL, how ECS injects a Secrets
// Manager secret); never from a flag. It must be this cluster's. caFile, if set, is trusted
// for the manager's certificate besides the system roots. Requests from
// the manager run as "manager:<user>" with the manager user's role, set on
// their context by withPrincipal (api.WithPrincipal).
func newTunnelConnector(urls []string, credFile string, envCred []byte, caFile, cluster, node string, h http.Handler,
	withPrincipal func(context.Context, auth.Principal) context.Context, log *slog.Logger) (*tunnel.Connector, error) {
	cred := string(envCred)
	if credFile != "" {
		raw, err := os.ReadFile(credFile)
		if err != nil {
			return nil, fmt.Errorf("manager credential: %w", err)
		}
		cred = strings.TrimSpace(string(raw))
	}
	if cred == "" {
		return nil, errors.New("--manager-url needs the cluster's credential: --manager-credential-file (AUTOGATE_MANAGER_CREDENTIAL_FILE) or AUTOGATE_MANAGER_CREDENTIAL")
	}
	if id, err := registry.ClusterOf(cred); err != nil {
		return nil, fmt.Errorf("manager credential: not a cluster credential (from `autogate manager create cluster`)")
	} else if id != cluster {
		return nil, fmt.Errorf("manager credential: it is cluster %s's, this gateway is in cluster %s", id, cluster)
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("manager CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("manager CA file %s: no PEM certificates", caFile)
		}
		tcfg.RootCAs = pool
	}
	return tunnel.NewConnector(tunnel.Config{
		URLs: urls, Credential: tunnel.Secret(cred), Cluster: cluster, Node: node, Version: version,
		Handler: h, TLS: tcfg, Logger: log.With("component", "manager-tunnel"),
		Trust: func(ctx context.Context, c tunnel.Caller) context.Context {
			role, _ := auth.ParseRole(c.Role) // an unknown role allows nothing
			return withPrincipal(ctx, auth.Principal{User: "manager:" + c.User, Role: role})
		},
	})
}

// runTunnel keeps c's tunnel up for the lease term ctx at epoch and
// returns a function that waits until it is down; ctx ending closes it at
// once. A nil c (no manager configured) does nothing.
func runTunnel(ctx context.Context, c *tunnel.Connector, epoch int64) (wait func()) {
	if c == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx, epoch) // nil once ctx ends; failures are retried and logged inside
	}()
	return func() { <-done }
}
