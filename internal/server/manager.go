package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"golang.org/x/sync/errgroup"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/manager"
	"github.com/autogate/autogate/internal/manager/registry"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/cache"
	"github.com/autogate/autogate/internal/store/fence"
	"github.com/autogate/autogate/internal/tunnel"
)

// Manager is the Gateway Manager process (autogate manager).
type Manager struct {
	Config         manager.Config
	Version        string
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
}

// Run serves the manager until ctx ends, then shuts down in order.
func (m *Manager) Run(ctx context.Context) error {
	cfg := m.Config
	log := m.Logger.With("node", cfg.Node, "cluster", cfg.Cluster, "role", "manager")
	clk := clock.Real{}
	tlsDir := filepath.Join(cfg.DataDir, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	ep, err := listen(cfg.Listen, cfg.Advertise, cfg.Plaintext)
	if err != nil {
		return err
	}
	defer ep.ln.Close() // after Shutdown a second close is harmless
	var awsCfg aws.Config
	if cfg.Store == "dynamodb" {
		if awsCfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
			return fmt.Errorf("AWS configuration: %w", err)
		}
	}
	// The certificate first: its fingerprint goes into the lease.
	var tf *tlsFiles
	if !cfg.Plaintext {
		tf = &tlsFiles{certFile: cfg.TLSCert, keyFile: cfg.TLSKey, dir: tlsDir}
	}
	tlsCfg, certFingerprint, err := serverTLS(tf, clk, m.Stderr)
	if err != nil {
		return err
	}
	be, err := OpenBackend(ctx, BackendConfig{
		Store: cfg.Store, Table: cfg.Table, File: filepath.Join(cfg.DataDir, "manager.db"),
		Cluster: cfg.Cluster, Node: cfg.Node, Address: ep.advertise, Version: m.Version, CertFingerprint: certFingerprint,
		LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
	}, awsCfg, clk, log)
	if err != nil {
		return err
	}
	defer be.Close()

	shared := fence.New(be.Store)
	// Tokens and users, read by every request and written only by the
	// active through authn (fenced), are kept in memory for the term, as
	// on a gateway: a routed request reads neither from the table, and a
	// logout or a change to a user holds on the next request.
	cached := cache.New(shared, clk, 0, resource.KindToken, resource.KindUser)
	authn := &auth.Service{Store: cached, Cluster: cfg.Cluster, Clock: clk}
	reg := &registry.Registry{Store: shared, Namespace: cfg.Cluster, Clock: clk}
	hub := manager.NewHub(reg, cfg.Node, tunnel.LinkConfig{Heartbeat: cfg.Heartbeat, MaxFrame: cfg.MaxFrameBytes}, clk, log)
	lead := &leadership{}
	srv := &manager.Server{
		Hub: hub, Registry: reg, Auth: authn, Leader: lead, Logger: log, Clock: clk,
		Namespace: cfg.Cluster, Node: cfg.Node, Version: m.Version,
		RequestTimeout: cfg.RequestTimeout, MaxBodyBytes: cfg.MaxBodyBytes,
		Ready: func(ctx context.Context) error {
			_, _, err := be.Store.List(ctx, cfg.Cluster, registry.Kind, store.ListOptions{Limit: 1})
			return err
		},
	}
	// Routed sync runs; tunnels lift it.
	handler := srv.Handler() // sets the body cap's default
	front := forwarding(handler, forwardConfig{lead: lead, node: cfg.Node, noun: "manager", leaseDuration: cfg.LeaseDuration, maxBody: srv.MaxBodyBytes}, clk, log)
	httpSrv := newHTTPServer(front, manager.MaxRequestTimeout+time.Minute, tlsCfg, log)
	passFile := cfg.AdminPassFile
	if passFile == "" {
		passFile = filepath.Join(cfg.DataDir, "admin-password")
	}
	ld := &leader{
		name: "autogate manager", shared: shared, fenced: be.Fenced, cache: cached, lead: lead, auth: authn, passFile: passFile,
		stdout: m.Stdout, stderr: m.Stderr, log: log,
		// Takes tunnels until the term ends, then closes them all.
		duty: func(ctx context.Context, _ lease.Term) { hub.Run(ctx) },
	}
	if cfg.EMFMetrics {
		ld.metric = &activeMetric{out: m.Stdout, clk: clk, cluster: cfg.Cluster, log: log}
	}

	eg, gctx := errgroup.WithContext(context.WithoutCancel(ctx))
	eg.Go(func() error { return serveHTTP(httpSrv, ep.ln) })
	leaseCtx, stopLease := context.WithCancel(gctx)
	defer stopLease()
	eg.Go(func() error { return be.Lease.Run(leaseCtx, ld.callbacks()) })
	fmt.Fprintf(m.Stdout, "autogate manager: listening on %s://%s (namespace %s, node %s, store %s)\n",
		ep.scheme, ep.ln.Addr(), cfg.Cluster, cfg.Node, cfg.Store)
	log.Info("manager started", "address", ep.ln.Addr().String(), "store", cfg.Store)

	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", cfg.ShutdownGrace.String())
	case <-gctx.Done():
	}
	// Ending the term closes every tunnel: the gateways go to the next active.
	return drain{stopLease: stopLease, release: be.Release, handOver: be.HandOver, clk: clk, http: httpSrv, grace: cfg.ShutdownGrace, log: log}.run(ctx, eg.Wait)
}
