// Command riefunc is a test-only Lambda function: the real handler and SQS
// queue with a fake runner core, so rie_test.go can drive the handler
// through AWS's Runtime Interface Emulator (aws-lambda-rie) without a
// store. The fake core decides by the envelope's service name: "ok" is
// acknowledged and Done, "requeue" is released for 30 s and Requeued,
// anything else is Failed.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/autogate/autogate/functions/runner/handler"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/queue/sqs"
	"github.com/autogate/autogate/runner"
)

type fakeCore struct{ q *sqs.Queue }

func (c fakeCore) Handle(ctx context.Context, m queue.Message) runner.Outcome {
	switch m.Envelope.Service {
	case "ok":
		if err := c.q.Ack(ctx, m); err != nil {
			return runner.Failed
		}
		return runner.Done
	case "requeue":
		if err := c.q.Release(ctx, m, 30*time.Second); err != nil {
			return runner.Failed
		}
		return runner.Requeued
	}
	return runner.Failed
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx := context.Background()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		log.Error("aws config", "error", err)
		os.Exit(1)
	}
	q, err := sqs.New(awssqs.NewFromConfig(awsCfg), sqs.Config{QueueURL: os.Getenv("AUTOGATE_QUEUE_URL"), Logger: log})
	if err != nil {
		log.Error("queue", "error", err)
		os.Exit(1)
	}
	margin, err := time.ParseDuration(os.Getenv("AUTOGATE_HANDBACK_MARGIN"))
	if err != nil {
		log.Error("margin", "error", err)
		os.Exit(1)
	}
	h := &handler.Handler{Core: fakeCore{q: q}, Queue: q, Logger: log, Margin: margin}
	lambda.Start(h.Handle)
}
