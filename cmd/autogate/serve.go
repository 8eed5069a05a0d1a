package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/autogate/autogate/internal/api"
	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/devcert"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/gitrepo"
	"github.com/autogate/autogate/internal/lease"
	leasedynamo "github.com/autogate/autogate/internal/lease/dynamo"
	"github.com/autogate/autogate/internal/metrics"
	"github.com/autogate/autogate/internal/queue"
	sqsqueue "github.com/autogate/autogate/internal/queue/sqs"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
	"github.com/autogate/autogate/internal/tunnel"
	"github.com/autogate/autogate/internal/wire"
	"github.com/autogate/autogate/runner"
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
DATA_DIR/secret.key (0600); with --kms-key-id, secrets are sealed under data keys that
AWS KMS wraps (see 'autogate rotate secret-key'). Every flag can also be set through the environment
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

func newLogger(cfg config.Server, w *os.File) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel)) // validated by Config.Validate
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// leadership adapts the lease callbacks to api.Leadership.
type leadership struct {
	active atomic.Bool
	term   atomic.Pointer[lease.Term]
}

func (l *leadership) Active() (bool, lease.Term) {
	t := l.term.Load()
	if t == nil {
		return false, lease.Term{}
	}
	return l.active.Load(), *t
}

// backend is what differs between the embedded and the DynamoDB store:
// where records live, how the lease is held, how nodes are listed.
type backend struct {
	// store is the raw store: runners write execution records through it
	// with conditional writes, like a remote runner would.
	store store.Store
	// fenced returns the view the gateway writes shared state through during
	// term: on DynamoDB every write there also checks the lease epoch.
	fenced func(term lease.Term) store.Store
	lease  interface {
		Run(ctx context.Context, cb lease.Callbacks) error
	}
	// release hands the lease over at once on a clean shutdown.
	release func(ctx context.Context) error
	nodes   func(ctx context.Context) ([]wire.Node, error)
	// prune removes expired records (the embedded store; DynamoDB has TTL).
	prune func(ctx context.Context) (int, error)
	close func() error
}

func openBackend(ctx context.Context, cfg config.Server, awsCfg aws.Config, clk clock.Clock, advertise string, log *slog.Logger) (*backend, error) {
	switch cfg.Store {
	case "dynamodb":
		client := storedynamo.NewClient(awsCfg, storedynamo.ClientOptions{})
		if err := storedynamo.CheckTable(ctx, client, cfg.Table); err != nil {
			return nil, err
		}
		st, err := storedynamo.New(client, storedynamo.Config{Table: cfg.Table, Clock: clk, Logger: log})
		if err != nil {
			return nil, err
		}
		el, err := leasedynamo.New(client, leasedynamo.Config{
			Table: cfg.Table, Cluster: cfg.Cluster, Node: cfg.Node, Address: advertise, Version: version,
			LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
			Logger: log,
		})
		if err != nil {
			return nil, err
		}
		return &backend{
			store:   st,
			fenced:  func(term lease.Term) store.Store { return st.Fenced(cfg.Cluster, term) },
			lease:   el,
			release: el.Release,
			nodes: func(ctx context.Context) ([]wire.Node, error) {
				ns, err := leasedynamo.ListNodes(ctx, client, cfg.Table, cfg.Cluster)
				out := make([]wire.Node, len(ns))
				for i, n := range ns {
					out[i] = wire.Node(n)
				}
				return out, err
			},
			close: func() error { return nil },
		}, nil
	}
	st, err := bolt.Open(filepath.Join(cfg.DataDir, "autogate.db"), clk)
	if err != nil {
		return nil, err
	}
	return &backend{
		store:   st,
		fenced:  func(lease.Term) store.Store { return st }, // one node: nobody to fence out
		lease:   lease.Local{Node: cfg.Node, Address: advertise},
		release: func(context.Context) error { return nil },
		prune:   st.Prune,
		close:   st.Close,
	}, nil
}

// termStore sends writes to the current term's fenced view and refuses them
// between terms, so a gateway that lost its lease changes nothing even if a
// request slipped past the API's standby check. Reads go to the raw store.
type termStore struct {
	store.Store
	view atomic.Pointer[store.Store]
}

func (t *termStore) writer() (store.Store, error) {
	v := t.view.Load()
	if v == nil {
		return nil, fmt.Errorf("write refused: %w", lease.ErrNotLeader)
	}
	return *v, nil
}

func (t *termStore) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	w, err := t.writer()
	if err != nil {
		return store.Record{}, err
	}
	return w.Create(ctx, rec)
}

func (t *termStore) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	w, err := t.writer()
	if err != nil {
		return store.Record{}, err
	}
	return w.Update(ctx, rec)
}

func (t *termStore) Delete(ctx context.Context, k store.Key, version int64) error {
	w, err := t.writer()
	if err != nil {
		return err
	}
	return w.Delete(ctx, k, version)
}

func serve(ctx context.Context, cfg config.Server, stdout, stderr interface{ Write([]byte) (int, error) }) error {
	log := newLogger(cfg, os.Stderr).With("node", cfg.Node, "cluster", cfg.Cluster)
	clk := clock.Real{}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	dirs := map[string]string{}
	for _, d := range []string{"tls", "repos", "venvs", "work"} {
		dirs[d] = filepath.Join(cfg.DataDir, d)
		if err := os.MkdirAll(dirs[d], 0o700); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
	}
	var keyring *secret.Keyring
	if cfg.KMSKeyID == "" { // else openKMSKeyring below, once the store is open
		key, err := loadSecretKey(cfg.DataDir, log)
		if err != nil {
			return err
		}
		if keyring, err = secret.NewKeyring(key); err != nil {
			return err
		}
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
	meter := metrics.New(cfg.Node, metrics.RoleGateway)
	var awsCfg aws.Config
	if cfg.Store == "dynamodb" || cfg.Execution == "queue" || cfg.KMSKeyID != "" {
		if awsCfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
			ln.Close()
			return fmt.Errorf("AWS configuration: %w", err)
		}
		awsCfg.APIOptions = append(awsCfg.APIOptions, meter.AWSAPIOptions()...)
	}
	be, err := openBackend(ctx, cfg, awsCfg, clk, advertise, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer be.close()
	if cfg.KMSKeyID != "" {
		if keyring, err = openKMSKeyring(ctx, cfg, awsCfg, be.store, cfg.DataDir, log); err != nil {
			return err
		}
	}

	shared := &termStore{Store: be.store}
	cat := &catalog.Catalog{Store: shared, Cluster: cfg.Cluster, Keyring: keyring, Clock: clk, Retention: cfg.Retention}
	runnerCat := &catalog.Catalog{Store: be.store, Cluster: cfg.Cluster, Keyring: keyring, Clock: clk, Retention: cfg.Retention}
	authn := &auth.Service{Store: shared, Cluster: cfg.Cluster, Clock: clk}
	passFile := cfg.AdminPassFile
	if passFile == "" {
		passFile = filepath.Join(cfg.DataDir, "admin-password")
	}

	exe, err := executor.New(executor.Config{
		WorkRoot: dirs["work"], CacheDir: dirs["venvs"], OutputLimit: cfg.OutputLimit, Logger: log,
		Pip: executor.PipConfig{IndexURL: cfg.PipIndexURL, FindLinks: cfg.PipFindLinks, NoIndex: cfg.PipNoIndex},
	})
	if err != nil {
		return err
	}
	q := queue.NewLocal()
	gw := &gateway.Gateway{Catalog: cat, Queue: q, Clock: clk, Logger: log, Node: cfg.Node}
	repos := gitrepo.New(dirs["repos"], log)
	repos.Refresh = cfg.RepoRefresh
	core, err := runner.New(runner.Config{
		Node: cfg.Node, Catalog: runnerCat, Source: q, Executor: exe, Repos: repos,
		Clock: clk, Logger: log, Concurrency: cfg.Concurrency, OnDone: gw.Notify,
		CancelPoll: 500 * time.Millisecond, Heartbeat: cfg.Heartbeat, Metrics: meter,
	})
	if err != nil {
		return err
	}
	localRunner := cfg.Execution == "local"
	var sq *sqsqueue.Queue
	if localRunner {
		gw.Canceler = core
	} else {
		sq, err = sqsqueue.New(awssqs.NewFromConfig(awsCfg), sqsqueue.Config{
			QueueURL: cfg.QueueURL, DLQURL: cfg.DLQURL, Cluster: cfg.Cluster, Logger: log, Clock: clk})
		if err != nil {
			return err
		}
		gw.Queue = sq
		gw.Redriver = sq
	}

	lead := &leadership{}
	nodes := be.nodes
	if nodes == nil {
		nodes = func(ctx context.Context) ([]wire.Node, error) {
			return []wire.Node{{ID: cfg.Node, Kind: "gateway", Role: "active", Epoch: gw.Epoch.Load(), Address: advertise,
				Load: core.InFlight(), Capacity: cfg.Concurrency, LastHeartbeat: clk.Now(), Version: version}}, nil
		}
	}
	srv := &api.Server{
		Gateway: gw, Auth: authn, Leader: lead, Logger: log, Cluster: cfg.Cluster, Node: cfg.Node,
		Version: version, MaxBodyBytes: cfg.MaxBodyBytes, Nodes: nodes, Metrics: meter.Handler(),
	}
	handler := srv.Handler()
	var mgr *tunnel.Connector
	if len(cfg.ManagerURLs) > 0 {
		mgr, err = newTunnelConnector(cfg.ManagerURLs, cfg.ManagerCredentialFile, cfg.ManagerCAFile, cfg.Cluster, cfg.Node,
			handler, api.WithPrincipal, log)
		if err != nil {
			ln.Close()
			return err
		}
	}
	httpSrv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      6 * time.Minute, // sync runs hold a request up to 5 min
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if !cfg.Plaintext {
		tlsCfg, err := serverTLS(cfg, dirs["tls"], clk, stderr)
		if err != nil {
			return err
		}
		httpSrv.TLSConfig = tlsCfg
	}

	recvCtx, stopRecv := context.WithCancel(context.WithoutCancel(ctx))
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
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
	if localRunner {
		g.Go(func() error { return core.Run(recvCtx, workCtx) })
	}
	leaseCtx, stopLease := context.WithCancel(gctx)
	defer stopLease()
	g.Go(func() error {
		return be.lease.Run(leaseCtx, lease.Callbacks{
			OnStarted: func(ctx context.Context, term lease.Term) {
				view := be.fenced(term)
				shared.view.Store(&view)
				gw.Epoch.Store(term.Epoch)
				lead.term.Store(&term)
				meter.LeaseState(true, term.Epoch)
				defer func() {
					lead.active.Store(false)
					shared.view.Store(nil)
					meter.LeaseState(false, term.Epoch)
				}()
				if created, err := authn.EnsureAdmin(ctx, passFile); err != nil {
					log.Error("create the admin user", "error", err)
				} else if created {
					fmt.Fprintf(stderr, "autogate: created user admin; its password is in %s (0600)\n", passFile)
				}
				n, err := gw.Reconcile(ctx)
				if err != nil {
					log.Error("reconcile", "error", err)
				} else if n > 0 {
					log.Info("re-dispatched unfinished executions", "count", n)
				}
				lead.active.Store(true)
				log.Info("active", "epoch", term.Epoch)
				fmt.Fprintf(stdout, "autogate server: active (epoch %d)\n", term.Epoch)
				// On the term's ctx: a deposed gateway drops the tunnel at once.
				waitTunnel := runTunnel(ctx, mgr, term.Epoch)
				defer waitTunnel()
				if localRunner {
					<-ctx.Done() // the in-process queue loses nothing a restart's reconcile misses
				} else {
					sweepLoop(ctx, gw, sq, meter, max(2*time.Minute, 6*cfg.Heartbeat), log)
				}
				log.Warn("no longer active", "epoch", term.Epoch)
			},
			OnNewLeader: func(term lease.Term) {
				if active, _ := lead.Active(); !active {
					lead.term.Store(&term)
				}
			},
		})
	})
	g.Go(func() error { return warmLoop(leaseCtx, lead, gw, runnerCat, repos, log) })
	if be.prune != nil {
		g.Go(func() error { return pruneLoop(leaseCtx, be.prune, log) })
	}
	fmt.Fprintf(stdout, "autogate server: listening on %s://%s (cluster %s, node %s, store %s)\n",
		scheme, ln.Addr(), cfg.Cluster, cfg.Node, cfg.Store)
	log.Info("server started", "address", ln.Addr().String(), "store", cfg.Store, "execution", cfg.Execution)

	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", cfg.ShutdownGrace.String())
	case <-gctx.Done():
	}
	// Hand the lease over first, so a standby serves while this node drains.
	stopLease()
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := be.release(rctx); err != nil {
		log.Warn("release lease", "error", err)
	}
	rcancel()
	stopRecv()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "error", err)
	}
	// Give running services the rest of the grace period, then kill them;
	// their attempts are recorded lost (and re-queued if retryable).
	done := make(chan struct{})
	go func() { _ = g.Wait(); close(done) }() // the error is collected below
	select {
	case <-done:
	case <-sctx.Done():
		stopWork()
	}
	q.Close()
	return g.Wait()
}

func serverTLS(cfg config.Server, dir string, clk clock.Clock, stderr interface{ Write([]byte) (int, error) }) (*tls.Config, error) {
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	if certFile == "" {
		certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		host, _ := os.Hostname() // best effort: localhost names are always included
		if created, err := devcert.Ensure(certFile, keyFile, []string{host}, clk.Now()); err != nil {
			return nil, err
		} else if created {
			fmt.Fprintf(stderr, "autogate: created a self-signed TLS certificate %s\n", certFile)
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// sweepLoop runs the gateway's reconciler every 30 s until ctx ends: a
// queued execution whose message was lost is sent again, one past its
// deadline is failed with a reason, and a running one whose runner went
// silent for staleAfter is declared lost, so no accepted run is left behind.
func sweepLoop(ctx context.Context, gw *gateway.Gateway, sq *sqsqueue.Queue, meter *metrics.Metrics, staleAfter time.Duration, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(30 * time.Second):
		}
		if v, f, err := sq.Depth(ctx); err == nil {
			meter.QueueDepth(v, f)
		}
		if n, err := sq.DeadLetterDepth(ctx); err == nil {
			meter.DeadLetterDepth(n)
		}
		if n, err := gw.MarkDeadLetters(ctx, 100); err != nil && ctx.Err() == nil {
			log.Warn("mark dead-lettered executions", "error", err)
		} else if n > 0 {
			log.Warn("executions dead-lettered", "count", n)
		}
		resent, failed, err := gw.Sweep(ctx, 2*time.Minute, staleAfter)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("sweep queued executions", "error", err)
		case resent+failed > 0:
			log.Info("swept queued executions", "resent", resent, "failed", failed)
		}
	}
}

// warmLoop keeps a standby hot: every 30 s while it is not active it
// compiles the decorators and fetches every repository into the checkout
// cache, so a takeover validates and runs its first executions at once.
func warmLoop(ctx context.Context, lead *leadership, gw *gateway.Gateway, cat *catalog.Catalog, repos *gitrepo.Cache, log *slog.Logger) error {
	for {
		if active, _ := lead.Active(); !active {
			if _, err := gw.Warm(ctx); err != nil && ctx.Err() == nil {
				log.Debug("warm decorators", "error", err)
			}
			objs, err := cat.ListAll(ctx, resource.KindRepository)
			for _, o := range objs {
				r := o.(*resource.Repository)
				var cred []byte
				if r.CredentialSecret != "" {
					if cred, err = cat.SecretValue(ctx, r.CredentialSecret); err != nil {
						continue
					}
				}
				if _, _, err := repos.Checkout(ctx, *r, cred); err != nil && ctx.Err() == nil {
					log.Debug("warm repository", "repository", r.Name, "error", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(30 * time.Second):
		}
	}
}

func loadSecretKey(dataDir string, log *slog.Logger) ([]byte, error) {
	if v := os.Getenv("AUTOGATE_SECRET_KEY"); v != "" {
		return secret.ParseKey(v)
	}
	key, created, err := secret.LoadOrCreateKeyFile(filepath.Join(dataDir, "secret.key"))
	if created {
		log.Info("created secret key file", "path", filepath.Join(dataDir, "secret.key"))
	}
	return key, err
}

// pruneLoop removes expired executions from the embedded store hourly.
func pruneLoop(ctx context.Context, prune func(context.Context) (int, error), log *slog.Logger) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := prune(ctx); err != nil && ctx.Err() == nil {
			log.Warn("prune", "error", err)
		} else if n > 0 {
			log.Info("pruned expired records", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
