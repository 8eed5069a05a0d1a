package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/autogate/autogate/functions/runner/handler"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/metrics"
	"github.com/autogate/autogate/internal/queue/sqs"
	"github.com/autogate/autogate/internal/store/dynamo"
	"github.com/autogate/autogate/runner/node"
)

func main() {
	// A service's supervising shim is this binary under another name.
	if code, ok := executor.RunShim(os.Args); ok {
		os.Exit(code)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := loadConfig(os.LookupEnv)
	if err != nil {
		log.Error("lambda runner configuration", "error", err)
		os.Exit(1)
	}
	log = newLogger(cfg)
	// The base context of the init phase; each invocation gets its own
	// from the runtime, with the invocation's deadline.
	h, err := wire(context.Background(), cfg, log)
	if err != nil {
		log.Error("lambda runner start-up", "error", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

func newLogger(cfg config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel)) // checked by validate
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("node", cfg.Node, "cluster", cfg.Cluster)
}

// wire builds the handler: DynamoDB store, SQS queue, and the runner node
// (package node: catalog, executor and repository cache under WorkDir).
func wire(ctx context.Context, cfg config, log *slog.Logger) (*handler.Handler, error) {
	meter := metrics.New(cfg.Node, metrics.RoleLambda)
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	// Lambda has no /metrics to scrape: the runner logs each execution's
	// AWS call count (aws_calls) instead.
	awsCfg.APIOptions = append(awsCfg.APIOptions, meter.AWSAPIOptions()...)
	clk := clock.Real{}
	st, err := dynamo.New(dynamo.NewClient(awsCfg, dynamo.ClientOptions{}), dynamo.Config{Table: cfg.Table, Clock: clk, Logger: log})
	if err != nil {
		return nil, err
	}
	keyring, err := openKeyring(ctx, cfg, awsCfg, secretsmanager.NewFromConfig(awsCfg), st)
	if err != nil {
		return nil, err
	}
	q, err := sqs.New(awssqs.NewFromConfig(awsCfg), sqs.Config{QueueURL: cfg.QueueURL, DLQURL: cfg.DLQURL, Cluster: cfg.Cluster, Logger: log, Clock: clk})
	if err != nil {
		return nil, err
	}
	nc := cfg.node()
	nc.Store, nc.Keyring, nc.Source, nc.Clock, nc.Logger, nc.Metrics = st, keyring, q, clk, log, meter
	if nc.ShimPath, err = executor.SelfShim(); err != nil {
		return nil, err
	}
	n, err := node.New(nc)
	if err != nil {
		return nil, err
	}
	core := n.Core
	log.Info("lambda runner ready", "queue_url", cfg.QueueURL, "table", cfg.Table, "work_dir", cfg.WorkDir)
	return &handler.Handler{Core: core, Queue: q, Clock: clk, Logger: log, Margin: cfg.Margin, Concurrency: cfg.Concurrency}, nil
}
