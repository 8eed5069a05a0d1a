package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/sync/errgroup"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/config"
	"github.com/autogate/autogate/internal/ecsagent"
	leasedynamo "github.com/autogate/autogate/internal/lease/dynamo"
	"github.com/autogate/autogate/internal/metrics"
	sqsqueue "github.com/autogate/autogate/internal/queue/sqs"
	"github.com/autogate/autogate/internal/secret"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
	"github.com/autogate/autogate/runner"
	"github.com/autogate/autogate/runner/node"
)

// Node-list heartbeat of an ECS runner.
const (
	beatEvery = 30 * time.Second
	beatTTL   = 90 * time.Second
)

// Runner is an ECS runner process (autogate runner): it runs executions
// from the cluster's SQS queue on DynamoDB.
type Runner struct {
	Config  config.Server
	Version string
	Stdout  io.Writer
	Logger  *slog.Logger
	// Getenv reads AUTOGATE_SECRET_KEY and ECS_AGENT_URI; nil is os.Getenv.
	Getenv func(string) string
	// ShimPath is the services' supervising shim (see node.Config.ShimPath).
	ShimPath string
}

// Run receives until ctx ends, then stops receiving, gives running
// services the grace period, kills what is left and leaves the node list.
func (r *Runner) Run(ctx context.Context) error {
	cfg := r.Config
	getenv := r.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	log := r.Logger.With("node", cfg.Node, "cluster", cfg.Cluster)
	clk := clock.Real{}
	var keyring *secret.Keyring
	if cfg.KMSKeyID == "" { // else OpenKMSKeyring below, once the store is open
		keyText := getenv("AUTOGATE_SECRET_KEY")
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
		if keyring, err = OpenKMSKeyring(ctx, cfg, awsCfg, st, "", getenv, log); err != nil {
			return err
		}
	}
	q, err := sqsqueue.New(awssqs.NewFromConfig(awsCfg), sqsqueue.Config{QueueURL: cfg.QueueURL, Cluster: cfg.Cluster, Logger: log, Clock: clk})
	if err != nil {
		return err
	}
	protector, err := taskProtector(getenv, log)
	if err != nil {
		return err
	}
	n, err := node.New(node.Config{
		Node: cfg.Node, Cluster: cfg.Cluster, Dir: cfg.DataDir, WorkDir: cfg.RunDir, Retention: cfg.Retention, RepoRefresh: cfg.RepoRefresh,
		OutputLimit: cfg.OutputLimit, Pip: pipConfig(cfg), Concurrency: cfg.Concurrency, Heartbeat: cfg.Heartbeat, ShimPath: r.ShimPath,
		Store: st, Keyring: keyring, Source: q, Clock: clk, Logger: log, Metrics: meter, Protector: protector,
	})
	if err != nil {
		return err
	}
	core := n.Core
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
				Capacity: cfg.Concurrency, LastHeartbeat: clk.Now().UTC(), Version: r.Version}
			if err := reg.Heartbeat(hbCtx, n, beatTTL); err != nil && hbCtx.Err() == nil {
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
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				if err := reg.Remove(rctx, cfg.Node); err != nil {
					log.Warn("leave node list", "error", err)
				}
				return nil
			case <-clk.After(beatEvery):
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
		g.Go(func() error { return serveHTTP(metricsSrv, ln) })
	}
	fmt.Fprintf(r.Stdout, "autogate runner: receiving from %s (cluster %s, node %s, concurrency %d)\n",
		cfg.QueueURL, cfg.Cluster, cfg.Node, cfg.Concurrency)
	if metricsAddr != "" {
		fmt.Fprintf(r.Stdout, "autogate runner: metrics on http://%s/metrics\n", metricsAddr)
	}
	log.Info("runner started", "queue_url", cfg.QueueURL, "concurrency", cfg.Concurrency)

	<-ctx.Done()
	log.Info("stopping: no new work; running services get the grace period", "grace", cfg.ShutdownGrace.String(), "in_flight", core.InFlight())
	stopRecv()
	var runErr error
	select {
	case runErr = <-coreDone:
	case <-clk.After(cfg.ShutdownGrace):
		log.Warn("grace period over; stopping running services", "in_flight", core.InFlight())
		stopWork()
		runErr = <-coreDone
	}
	stopHB()
	if metricsSrv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = metricsSrv.Shutdown(sctx) // best effort: the process is exiting
	}
	return errors.Join(runErr, g.Wait())
}

// taskProtector is the ECS task scale-in protection of the task this runner
// runs in (ECS_AGENT_URI, which the ECS agent sets), or nil outside ECS.
// Scaling in would otherwise stop a task in the middle of a service: the
// stop timeout (120 s at most on Fargate) is far shorter than a service may
// run.
func taskProtector(getenv func(string) string, log *slog.Logger) (runner.Protector, error) {
	c, ok, err := ecsagent.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	if !ok {
		log.Info("not on ECS (" + ecsagent.URIEnv + " unset): no task scale-in protection")
		return nil, nil
	}
	return c, nil
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
