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
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/sync/errgroup"

	"github.com/autogate/autogate/internal/api"
	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/metrics"
	"github.com/autogate/autogate/internal/queue"
	sqsqueue "github.com/autogate/autogate/internal/queue/sqs"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store/cache"
	"github.com/autogate/autogate/internal/store/fence"
	"github.com/autogate/autogate/internal/wire"
	"github.com/autogate/autogate/runner"
	"github.com/autogate/autogate/runner/node"
)

// Gateway is one gateway server process (autogate server).
type Gateway struct {
	Config  config.Server
	Version string
	// Stdout gets the start-up and "active" lines tests and operators
	// wait for; Stderr the one-time notices (admin password, certificate).
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
	// Getenv reads AUTOGATE_SECRET_KEY and AUTOGATE_MANAGER_CREDENTIAL;
	// nil is os.Getenv.
	Getenv func(string) string
	// ShimPath is the services' supervising shim (see node.Config.ShimPath).
	ShimPath string
}

// Run serves until ctx ends, then shuts down in order (see the package
// documentation).
func (g *Gateway) Run(ctx context.Context) error {
	cfg := g.Config
	getenv := g.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	log := g.Logger.With("node", cfg.Node, "cluster", cfg.Cluster)
	clk := clock.Real{}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	tlsDir := filepath.Join(cfg.DataDir, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	var keyring *secret.Keyring
	if cfg.KMSKeyID == "" { // else OpenKMSKeyring below, once the store is open
		key, err := loadSecretKey(cfg.DataDir, getenv, log)
		if err != nil {
			return err
		}
		if keyring, err = secret.NewKeyring(key); err != nil {
			return err
		}
	}

	ep, err := listen(cfg.Listen, cfg.Advertise, cfg.Plaintext)
	if err != nil {
		return err
	}
	defer ep.ln.Close() // after Shutdown a second close is harmless
	meter := metrics.New(cfg.Node, metrics.RoleGateway)
	var awsCfg aws.Config
	if cfg.Store == "dynamodb" || cfg.Execution == "queue" || cfg.KMSKeyID != "" {
		if awsCfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
			return fmt.Errorf("AWS configuration: %w", err)
		}
		awsCfg.APIOptions = append(awsCfg.APIOptions, meter.AWSAPIOptions()...)
	}
	// The certificate first: its fingerprint goes into the lease.
	var tf *tlsFiles
	if !cfg.Plaintext {
		tf = &tlsFiles{certFile: cfg.TLSCert, keyFile: cfg.TLSKey, dir: tlsDir}
	}
	tlsCfg, certFingerprint, err := serverTLS(tf, clk, g.Stderr)
	if err != nil {
		return err
	}
	be, err := OpenBackend(ctx, BackendConfig{
		Store: cfg.Store, Table: cfg.Table, File: filepath.Join(cfg.DataDir, "autogate.db"),
		Cluster: cfg.Cluster, Node: cfg.Node, Address: ep.advertise, Version: g.Version, CertFingerprint: certFingerprint,
		LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
	}, awsCfg, clk, log)
	if err != nil {
		return err
	}
	defer be.Close()
	if cfg.KMSKeyID != "" {
		if keyring, err = OpenKMSKeyring(ctx, cfg, awsCfg, be.Store, cfg.DataDir, getenv, log); err != nil {
			return err
		}
	}

	shared := fence.New(be.Store)
	// What every request reads and only the active writes (fenced), kept
	// in memory for the term: a request costs no token or user read and a
	// run no service, decorator or repository read, and the cache's own
	// writes invalidate it, so an edit, a revocation or a user's change
	// (which revokes its tokens) takes effect at once. Users are written
	// only through authn, below, on this store.
	cached := cache.New(shared, clk, 0, resource.KindService, resource.KindDecorator, resource.KindRepository, resource.KindToken, resource.KindUser)
	cat := &catalog.Catalog{Store: cached, Cluster: cfg.Cluster, Keyring: keyring, Clock: clk, Retention: cfg.Retention}
	authn := &auth.Service{Store: cached, Cluster: cfg.Cluster, Clock: clk}
	q := queue.NewLocal()
	src := newTermSource(q)
	gw := &gateway.Gateway{Catalog: cat, Queue: q, Clock: clk, Logger: log, Node: cfg.Node, Meter: meter, StartWindow: cfg.StartWindow,
		MaxServiceTimeout: cfg.MaxServiceTimeout, MaxBacklog: cfg.MaxBacklog, Backlog: gateway.QueueBacklog{Queue: q}}
	// The local runner takes work only during a term (src) and claims
	// through the term-fenced store (shared): a deposed gateway starts
	// nothing. It heartbeats and records results through the raw store,
	// under the record's own guard, so a run it already started may finish.
	run, err := node.New(node.Config{
		Node: cfg.Node, Cluster: cfg.Cluster, Dir: cfg.DataDir, WorkDir: cfg.RunDir, Retention: cfg.Retention, RepoRefresh: cfg.RepoRefresh,
		OutputLimit: cfg.OutputLimit, Pip: pipConfig(cfg), Concurrency: cfg.Concurrency, Heartbeat: cfg.Heartbeat,
		CancelPoll: 500 * time.Millisecond, ShimPath: g.ShimPath,
		Store: be.Store, Claims: shared, Keyring: keyring, Source: src, Clock: clk, Logger: log, Metrics: meter, OnDone: gw.Notify,
	})
	if err != nil {
		return err
	}
	core := run.Core
	localRunner := cfg.Execution == "local"
	var (
		sq       *sqsqueue.Queue
		openRuns *gateway.OpenRuns // the backlog with runners: recounted each term
	)
	if localRunner {
		gw.Canceler = core
		gw.Live = core
		gw.Local = localCore{core}
	} else {
		sq, err = sqsqueue.New(awssqs.NewFromConfig(awsCfg), sqsqueue.Config{
			QueueURL: cfg.QueueURL, DLQURL: cfg.DLQURL, Cluster: cfg.Cluster, Logger: log, Clock: clk})
		if err != nil {
			return err
		}
		gw.Queue = sq
		gw.Redriver = sq
		gw.DurableQueue = true
		openRuns = &gateway.OpenRuns{Catalog: cat, Clock: clk}
		gw.Backlog = openRuns
	}

	lead := &leadership{}
	nodes := be.Nodes
	if nodes == nil {
		nodes = func(ctx context.Context) ([]wire.Node, error) {
			return []wire.Node{{ID: cfg.Node, Kind: "gateway", Role: "active", Epoch: gw.Epoch.Load(), Address: ep.advertise,
				Load: core.InFlight(), Capacity: cfg.Concurrency, LastHeartbeat: clk.Now(), Version: g.Version}}, nil
		}
	}
	srv := &api.Server{
		Gateway: gw, Auth: authn, Leader: lead, Logger: log, Cluster: cfg.Cluster, Node: cfg.Node,
		Version: g.Version, MaxBodyBytes: cfg.MaxBodyBytes, Nodes: nodes, Metrics: meter.Handler(),
	}
	handler := srv.Handler()
	var tun tunnelRunner // nil interface: no manager
	if len(cfg.ManagerURLs) > 0 {
		c, err := newTunnelConnector(tunnelConfig{urls: cfg.ManagerURLs, credFile: cfg.ManagerCredentialFile,
			caFile: cfg.ManagerCAFile, cluster: cfg.Cluster, node: cfg.Node, version: g.Version,
			credential: string(cfg.ManagerCredential)}, handler, log)
		if err != nil {
			return err
		}
		tun = c
	}
	// Sync runs hold a request up to 5 min. The tunnel above serves the
	// API itself; only the listener forwards (a tunnel runs on the active).
	front := forwarding(handler, forwardConfig{lead: lead, node: cfg.Node, leaseDuration: cfg.LeaseDuration, maxBody: srv.MaxBodyBytes}, clk, log)
	httpSrv := newHTTPServer(front, 6*time.Minute, tlsCfg, log)

	passFile := cfg.AdminPassFile
	if passFile == "" {
		passFile = filepath.Join(cfg.DataDir, "admin-password")
	}
	// The reconciler runs in every execution mode: with local execution the
	// in-process queue never sees a dead holder's run again, so only the
	// sweep declares it lost.
	var depth queueDepth = localDepth{q: q, inFlight: core.InFlight, visibility: runner.DefaultVisibility(cfg.Heartbeat)}
	localNode := cfg.Node
	if !localRunner {
		depth, localNode = sq, ""
	}
	duty := gatewayDuty{tunnel: tun, sweep: &sweepLoop{clk: clk, gw: gw, queue: depth, meter: meter,
		staleAfter: execution.StaleAfter(cfg.Heartbeat), interval: cfg.SweepInterval, localNode: localNode, log: log}}
	if localRunner {
		duty.local = src
	}
	ld := &leader{
		name: "autogate server", shared: shared, fenced: be.Fenced, cache: cached, lead: lead, auth: authn, passFile: passFile,
		stdout: g.Stdout, stderr: g.Stderr, log: log, state: meter.LeaseState,
		prepare: func(ctx context.Context, term lease.Term) {
			src.end() // leftovers of an earlier term: Reconcile sends what is queued
			if openRuns != nil {
				openRuns.Reset() // another gateway may have accepted runs meanwhile
			}
			reconcile(ctx, gw, term, log)
		},
		duty: duty.run,
	}
	if cfg.EMFMetrics {
		ld.metric = &activeMetric{out: g.Stdout, clk: clk, cluster: cfg.Cluster, log: log}
	}

	recvCtx, stopRecv := context.WithCancel(context.WithoutCancel(ctx))
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	eg, gctx := errgroup.WithContext(context.WithoutCancel(ctx))
	eg.Go(func() error { return serveHTTP(httpSrv, ep.ln) })
	if localRunner {
		eg.Go(func() error { return core.Run(recvCtx, workCtx) })
	}
	leaseCtx, stopLease := context.WithCancel(gctx)
	defer stopLease()
	eg.Go(func() error { return be.Lease.Run(leaseCtx, ld.callbacks()) })
	warm := warmLoop{clk: clk, lead: lead, gw: gw, cat: run.Catalog, repos: run.Repos, log: log}
	eg.Go(func() error { return warm.run(leaseCtx) })
	if be.Prune != nil {
		eg.Go(func() error { return pruneLoop(leaseCtx, clk, be.Prune, log) })
	}
	fmt.Fprintf(g.Stdout, "autogate server: listening on %s://%s (cluster %s, node %s, store %s)\n",
		ep.scheme, ep.ln.Addr(), cfg.Cluster, cfg.Node, cfg.Store)
	log.Info("server started", "address", ep.ln.Addr().String(), "store", cfg.Store, "execution", cfg.Execution)

	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", cfg.ShutdownGrace.String())
	case <-gctx.Done():
	}
	return drain{
		stopLease: stopLease, release: be.Release, stopRecv: stopRecv, handOver: be.HandOver, clk: clk, http: httpSrv, grace: cfg.ShutdownGrace,
		kill: func() { stopWork(); q.Close() }, log: log,
	}.run(ctx, eg.Wait)
}

// pipConfig is the executor's pip settings from cfg.
func pipConfig(cfg config.Server) executor.PipConfig {
	return executor.PipConfig{IndexURL: cfg.PipIndexURL, FindLinks: cfg.PipFindLinks, NoIndex: cfg.PipNoIndex}
}

// reconcile sets the gateway's epoch to the term's and re-dispatches what
// the previous active left unfinished.
func reconcile(ctx context.Context, gw *gateway.Gateway, term lease.Term, log *slog.Logger) {
	gw.Epoch.Store(term.Epoch)
	n, err := gw.Reconcile(ctx)
	if err != nil {
		log.Error("reconcile", "error", err)
	} else if n > 0 {
		log.Info("re-dispatched unfinished executions", "count", n)
	}
}

// gatewayDuty is what an active gateway does until its term ends: keep
// the manager tunnel up (if any), hand the in-process queue to the local
// runner (local execution) and sweep.
type gatewayDuty struct {
	tunnel tunnelRunner
	sweep  *sweepLoop
	// local, if set, is the local runner's source: it takes work only
	// during the term and is emptied when the term ends.
	local *termSource
}

func (d gatewayDuty) run(ctx context.Context, term lease.Term) {
	// On the term's ctx: a deposed gateway drops the tunnel at once.
	wait := runTunnel(ctx, d.tunnel, term.Epoch)
	defer wait()
	if d.local != nil {
		d.local.begin(ctx)
		defer d.local.end()
	}
	if d.sweep == nil {
		<-ctx.Done()
		return
	}
	d.sweep.run(ctx)
}

// loadSecretKey reads AUTOGATE_SECRET_KEY, else the key file under dataDir
// (created on first start).
func loadSecretKey(dataDir string, getenv func(string) string, log *slog.Logger) ([]byte, error) {
	if v := getenv("AUTOGATE_SECRET_KEY"); v != "" {
		return secret.ParseKey(v)
	}
	path := filepath.Join(dataDir, "secret.key")
	key, created, err := secret.LoadOrCreateKeyFile(path)
	if created {
		log.Info("created secret key file", "path", path)
	}
	return key, err
}

// localCore is the local runner as the gateway's gateway.LocalRunner.
type localCore struct{ core *runner.Core }

func (l localCore) Reserve() (gateway.Reservation, string, time.Duration, bool) {
	r, ok := l.core.Reserve()
	if !ok {
		return nil, "", 0, false
	}
	return r, l.core.Node(), l.core.HeartbeatEvery(), true
}

var (
	_ gateway.LocalRunner = localCore{}
	_ gateway.Reservation = (*runner.Reservation)(nil)
)
