package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

	"github.com/autogate/autogate/internal/auth"
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
	return cmd
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
// AUTOGATE_MANAGER_CREDENTIAL (how ECS injects a Secrets Manager secret);
// never from a flag. It must be this cluster's. caFile, if set, is trusted
// for the manager's certificate besides the system roots. Requests from
// the manager run as "manager:<user>" with the manager user's role, set on
// their context by withPrincipal (api.WithPrincipal).
func newTunnelConnector(urls []string, credFile, caFile, cluster, node string, h http.Handler,
	withPrincipal func(context.Context, auth.Principal) context.Context, log *slog.Logger) (*tunnel.Connector, error) {
	cred := os.Getenv("AUTOGATE_MANAGER_CREDENTIAL")
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
