package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/gitrepo"
	leasedynamo "github.com/autogate/autogate/internal/lease/dynamo"
	"github.com/autogate/autogate/internal/metrics"
	sqsqueue "github.com/autogate/autogate/internal/queue/sqs"
	"github.com/autogate/autogate/internal/secret"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
	"github.com/autogate/autogate/runner"
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

The stored-secret key comes from AUTOGATE_SECRET_KEY (the gateways' key), or from the
cluster's KMS keyring with --kms-key-id (the gateways' KMS key).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if envErr != nil {
				return envErr
			}
			if err := cfg.ValidateRunner(); err != nil {
				return err
			}
			return runRunner(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	cfg.Bind(cmd.Flags(), config.RunnerFlags...)
	return cmd
}

func runRunner(ctx context.Context, cfg config.Server, stdout interface{ Write([]byte) (int, error) }) error {
	log := newLogger(cfg, os.Stderr).With("node", cfg.Node, "cluster", cfg.Cluster)
	clk := clock.Real{}
	var keyring *secret.Keyring
	if cfg.KMSKeyID == "" { // else openKMSKeyring below, once the store is open
		keyText := os.Getenv("AUTOGATE_SECRET_KEY")
		if keyText == "" {
			return errors.New("AUTOGATE_SECRET_KEY (or --kms-key-id) is required: the runner must open the cluster's secrets")
		}
		key, err := secret.ParseKey(keyText)
		if err != nil {
			return err
		}
		if keyring, err = secret.NewKeyring(key); err != nil {
			return err
		}
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	meter := metrics.New(cfg.Node, metrics.RoleRunner)
	awsCfg.APIOptions = append(awsCfg.APIOptions, meter.AWSAPIOptions()...)
	ddb := storedynamo.NewClient(awsCfg, storedynamo.ClientOptions{})
	if err := storedynamo.CheckTable(ctx, ddb, cfg.Table); err != nil {
		return err
	}
	st, err := storedynamo.New(ddb, storedynamo.Config{Table: cfg.Table, Clock: clk, Logger: log})
	if err != nil {
		return err
	}
	if cfg.KMSKeyID != "" {
		if keyring, err = openKMSKeyring(ctx, cfg, awsCfg, st, "", log); err != nil {
			return err
		}
	}
	q, err := sqsqueue.New(awssqs.NewFromConfig(awsCfg), sqsqueue.Config{QueueURL: cfg.QueueURL, Cluster: cfg.Cluster, Logger: log, Clock: clk})
	if err != nil {
		return err
	}
	dirs := map[string]string{}
	for _, d := range []string{"repos", "venvs", "work"} {
		dirs[d] = filepath.Join(cfg.DataDir, d)
		if err := os.MkdirAll(dirs[d], 0o700); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
	}
	exe, err := executor.New(executor.Config{
		WorkRoot: dirs["work"], CacheDir: dirs["venvs"], OutputLimit: cfg.OutputLimit, Logger: log,
		Pip: executor.PipConfig{IndexURL: cfg.PipIndexURL, FindLinks: cfg.PipFindLinks, NoIndex: cfg.PipNoIndex},
	})
	if err != nil {
		return err
	}
	repos := gitrepo.New(dirs["repos"], log)
	repos.Refresh = cfg.RepoRefresh
	cat := &catalog.Catalog{Store: st, Cluster: cfg.Cluster, Keyring: keyring, Clock: clk, Retention: cfg.Retention}
	core, err := runner.New(runner.Config{
		Node: cfg.Node, Catalog: cat, Source: q, Executor: exe, Repos: repos, Clock: clk, Logger: log,
		Concurrency: cfg.Concurrency, Heartbeat: cfg.Heartbeat, Metrics: meter,
	})
	if err != nil {
		return err
	}
	reg, err := leasedynamo.NewRegistry(ddb, cfg.Table, cfg.Cluster, clk)
	if err != nil {
		return err
	}

	recvCtx, stopRecv := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRecv()
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHB()
	coreDone := make(chan error, 1)
	go func() { coreDone <- core.Run(recvCtx, workCtx) }()
	g, _ := errgroup.WithContext(context.WithoutCancel(ctx))
	g.Go(func() error {
		beat := func() {
			n := leasedynamo.Node{ID: cfg.Node, Kind: "runner", Role: "runner", Load: core.InFlight(),
				Capacity: cfg.Concurrency, LastHeartbeat: clk.Now().UTC(), Version: version}
			if err := reg.Heartbeat(hbCtx, n, 90*time.Second); err != nil && hbCtx.Err() == nil {
				log.Warn("node heartbeat", "error", err)
			}
			if v, f, err := q.Depth(hbCtx); err == nil {
				meter.QueueDepth(v, f)
			}
		}
		for {
			beat()
			select {
			case <-hbCtx.Done():
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if err := reg.Remove(rctx, cfg.Node); err != nil {
					log.Warn("leave node list", "error", err)
				}
				return nil
			case <-time.After(30 * time.Second):
			}
		}
	})
	var metricsSrv *http.Server
	metricsAddr := ""
	if cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("metrics listen: %w", err)
		}
		metricsSrv = &http.Server{Handler: runnerHandler(core, meter.Handler()), ReadHeaderTimeout: 5 * time.Second}
		metricsAddr = ln.Addr().String()
		g.Go(func() error {
			if err := metricsSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	fmt.Fprintf(stdout, "autogate runner: receiving from %s (cluster %s, node %s, concurrency %d)\n",
		cfg.QueueURL, cfg.Cluster, cfg.Node, cfg.Concurrency)
	if metricsAddr != "" {
		fmt.Fprintf(stdout, "autogate runner: metrics on http://%s/metrics\n", metricsAddr)
	}
	log.Info("runner started", "queue_url", cfg.QueueURL, "concurrency", cfg.Concurrency)

	<-ctx.Done()
	log.Info("stopping: no new work; running services get the grace period", "grace", cfg.ShutdownGrace.String(), "in_flight", core.InFlight())
	stopRecv()
	var runErr error
	select {
	case runErr = <-coreDone:
	case <-time.After(cfg.ShutdownGrace):
		log.Warn("grace period over; stopping running services", "in_flight", core.InFlight())
		stopWork()
		runErr = <-coreDone
	}
	stopHB()
	if metricsSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = metricsSrv.Shutdown(sctx) // best effort: the process is exiting
	}
	return errors.Join(runErr, g.Wait())
}

// runnerHandler serves the runner's /healthz and /metrics.
func runnerHandler(core *runner.Core, metricsHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok (%d running)\n", core.InFlight())
	})
	return mux
}
