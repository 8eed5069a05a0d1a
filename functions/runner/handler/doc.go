// Package handler is the Lambda runner's SQS event handler: it turns each
// record of an events.SQSEvent batch into a queue.Message and hands it to
// the runner core (the same runner.Core the ECS runner and the all-in-one
// gateway use), and reports the records that must come back as
// events.SQSEventResponse batch item failures. It is a package of its own,
// not part of the function's main, so tests drive it directly with real
// event batches.
//
// Guarantees:
//   - It never starts a service it cannot finish before the invocation's
//     deadline: a record whose envelope TimeoutSeconds (or the default
//     service timeout when unset) plus Margin does not fit in the time left
//     is handed back (made visible at once with Release(0), so another
//     invocation picks it up now rather than after the visibility timeout)
//     and reported as a failure, untouched: its record is not claimed.
//   - A record is reported successful only when the core's outcome is Done:
//     the execution's terminal state is recorded and the core has already
//     deleted the message (Ack). The event source mapping then deletes it
//     again, which SQS treats as a no-op; the core's own delete matters
//     when the invocation later fails as a whole (timeout, crash), because
//     then the mapping would make every record of the batch visible again.
//   - Requeued (the core released the message: another runner holds the
//     execution, or a lost attempt was re-queued) and Failed (store
//     unreachable, bad envelope) are failures, so the mapping leaves those
//     messages to SQS: they come back after their visibility delay, and a
//     message that keeps failing goes to the dead-letter queue after the
//     work queue's maxReceiveCount.
//   - A body that is not a valid envelope is a failure and never reaches
//     the core.
//   - Handle returns an error (failing the whole batch) only when the
//     Handler itself is misconfigured; per-record problems are failures.
//
// Each failure names the record by its SQS message ID (ItemIdentifier =
// MessageId). The partial batch response has effect only if the event source mapping
// is created with FunctionResponseTypes = ["ReportBatchItemFailures"]
// (infra's cluster stack does so). Without it Lambda ignores the response
// body and deletes every record of a batch that returned no error, which
// would drop handed-back and requeued messages.
//
// Records run one at a time by default (Concurrency 1): Lambda scales by
// running more invocations (up to the mapping's maximum concurrency), each
// sandbox is sized for one service run (memory, /tmp), and sequential runs
// keep the deadline check exact for every record. Concurrency > 1 runs that
// many records at once, each still checked against the deadline when it
// starts.
package handler
