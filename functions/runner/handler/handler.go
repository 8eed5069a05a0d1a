package handler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/queue/sqs"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/runner"
)

// Core is the part of *runner.Core the handler calls.
type Core interface {
	Handle(ctx context.Context, m queue.Message) runner.Outcome
}

// Releaser hands a message back to its queue; *sqs.Queue is one.
type Releaser interface {
	Release(ctx context.Context, m queue.Message, delay time.Duration) error
}

var (
	_ Core     = (*runner.Core)(nil)
	_ Releaser = (*sqs.Queue)(nil)
)

// DefaultMargin is the time kept free before the invocation's deadline
// beyond a service's own timeout: checkout, claiming, and recording the
// result happen outside the service's timeout.
const DefaultMargin = 10 * time.Second

// releaseTimeout bounds a hand-back, which must land even when the
// invocation's context is about to end.
const releaseTimeout = 5 * time.Second

// Handler handles SQS event batches with the runner core.
type Handler struct {
	// Core runs one message to an outcome. Required.
	Core Core
	// Queue is the work queue the records came from, used to hand records
	// back. It should be the queue the Core acknowledges on. Required.
	Queue Releaser
	// Clock is compared with the invocation's deadline; nil means
	// clock.Real{}.
	Clock clock.Clock
	// Logger receives one line per record not run to Done; nil discards.
	Logger *slog.Logger
	// Margin is kept free before the deadline beyond the service timeout;
	// 0 means DefaultMargin.
	Margin time.Duration
	// Concurrency is how many records run at once; 0 means 1.
	Concurrency int
}

// errMisconfigured fails a whole batch when the Handler lacks a part.
var errMisconfigured = errors.New("lambda runner handler: Core and Queue are required")

// Handle processes one batch and reports the records that must be
// delivered again. Its signature is one lambda.Start accepts.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	if h.Core == nil || h.Queue == nil {
		return events.SQSEventResponse{}, errMisconfigured
	}
	clk, log, margin, n := h.Clock, h.Logger, h.Margin, h.Concurrency
	if clk == nil {
		clk = clock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if margin <= 0 {
		margin = DefaultMargin
	}
	n = min(max(n, 1), max(len(ev.Records), 1))

	failed := make([]bool, len(ev.Records))
	slots := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, rec := range ev.Records {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			failed[i] = !h.record(ctx, rec, clk, log, margin)
		}()
	}
	wg.Wait()

	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for i, rec := range ev.Records {
		if failed[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return resp, nil
}

// record handles one record and reports whether it succeeded.
func (h *Handler) record(ctx context.Context, rec events.SQSMessage, clk clock.Clock, log *slog.Logger, margin time.Duration) bool {
	m := queue.Message{
		Receipt:      rec.ReceiptHandle,
		ReceiveCount: sqs.ReceiveCount(rec.Attributes["ApproximateReceiveCount"]),
	}
	log = log.With("message_id", rec.MessageId, "receive_count", m.ReceiveCount)
	env, err := sqs.Decode(rec.Body)
	if err != nil {
		// The redrive policy takes it to the DLQ after maxReceiveCount.
		log.Error("unreadable message body", "body_bytes", len(rec.Body), "error", err)
		return false
	}
	m.Envelope = env
	log = log.With("execution_id", env.ExecutionID)

	timeout := time.Duration(env.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = resource.DefaultServiceTimeout
	}
	if deadline, ok := ctx.Deadline(); ok {
		if left := deadline.Sub(clk.Now()); left < timeout+margin || ctx.Err() != nil {
			h.handBack(ctx, m, log, left, timeout)
			return false
		}
	}
	switch out := h.Core.Handle(ctx, m); out {
	case runner.Done:
		return true
	case runner.Requeued:
		log.Info("record requeued")
		return false
	default:
		log.Warn("record failed", "outcome", int(out))
		return false
	}
}

// handBack makes m visible at once without starting it.
func (h *Handler) handBack(ctx context.Context, m queue.Message, log *slog.Logger, left, timeout time.Duration) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	log = log.With("time_left_ms", left.Milliseconds(), "timeout_ms", timeout.Milliseconds())
	if err := h.Queue.Release(rctx, m, 0); err != nil {
		// Reported as a failure all the same: it comes back after its
		// visibility timeout instead of now.
		log.Warn("hand back near the deadline: release failed", "error", err)
		return
	}
	log.Info("handed back near the deadline")
}
