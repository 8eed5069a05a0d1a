// Package runner is the runner core: receive a message, claim its execution,
// run the service, record the result, acknowledge. The all-in-one gateway
// (in-process queue), the ECS runner (SQS long polling) and the Lambda runner
// (SQS event batches) all use it unchanged.
//
// Guarantees:
//   - A service starts at most once per attempt: the claim queued → running is
//     a version-conditional write naming this runner and the attempt number,
//     so a duplicate delivery finds the record already running and is dropped.
//   - A message is acknowledged only after the execution's terminal state is
//     recorded; a crash before that makes the message reappear, and the next
//     runner marks the stale attempt lost (and re-queues it only if the
//     service is retryable and attempts remain).
//   - While a service runs, the runner heartbeats both the message visibility
//     and the record, and polls for cancellation requests.
//
// It imports the domain, the catalog, the queue envelope and small consumer
// interfaces; never the API, the CLI or an AWS SDK.
package runner
