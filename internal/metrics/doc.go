// Package metrics holds one process's Prometheus instruments and the AWS SDK
// middleware that counts API calls, overall and per execution.
//
// A gateway, an ECS runner and a Lambda runner each build one *Metrics with
// New. The instruments live on a private prometheus.Registry owned by that
// value: nothing is registered with the client library's default registry,
// and the package has no package-level state, so tests and several
// processes in one binary (the end-to-end tests) never see each other's
// numbers. Handler serves the registry as Prometheus text (exposition format
// 0.0.4) for a /metrics route.
//
// # Guarantees
//
//   - Label cardinality is bounded by code, never by data: no execution ID,
//     Autogate service name, user, queue URL or table name is ever a label.
//     The only label values are the node ID and role (constant per process),
//     the fixed lists below, and the AWS service ID and operation names of
//     the SDK calls the binary makes (a few dozen at most).
//   - Every AWS API operation invoked through a client built from an
//     aws.Config carrying AWSAPIOptions is counted exactly once in
//     autogate_aws_api_calls_total, however many HTTP attempts the SDK's
//     retryer made; each attempt is counted in autogate_aws_api_attempts_total.
//     A call that fails before sending anything (input validation, a
//     cancelled context, an exhausted retry quota) is still a call, with
//     outcome="error", and may have zero attempts.
//   - A CallCounter attached to a context with WithCallCounter (or
//     TrackCalls) sees every call and attempt made with that context or one
//     derived from it, from any goroutine.
//   - A nil *Metrics is valid: every method is a no-op (Handler answers 404),
//     and AWSAPIOptions still installs the middleware so per-context
//     CallCounters keep working where no /metrics endpoint exists (a Lambda
//     runner that only logs its counts).
//
// It does not guarantee:
//
//   - Completeness for clients it is not wired into: the SDK clients created
//     inside config.LoadDefaultConfig (STS, SSO, IMDS credential providers)
//     are built before AWSAPIOptions is appended and are not counted.
//   - Freshness of the queue gauges: they hold the last value passed to
//     QueueDepth or DeadLetterDepth, however old. Whoever polls SQS owns the
//     polling interval.
//   - Totals across processes: each process counts its own calls. A
//     per-execution figure that includes the gateway's dispatch calls must
//     be summed by the reader (see autogate_aws_api_calls_per_execution).
//
// # Metrics
//
// Every series also carries the constant labels node (the node ID) and role
// ("gateway", "runner" or "lambda"), and the registry also serves the Go
// runtime (go_*) and process (process_*) collectors with the same labels.
//
//	autogate_runs_total                      counter    status
//	    Executions this process ran to an end, by the status it recorded:
//	    succeeded, failed, timed_out, canceled, lost; "other" for a
//	    non-terminal or unknown status passed in (a wiring bug). All five
//	    terminal statuses are exported from start-up at 0.
//	autogate_run_duration_seconds            histogram  (none)
//	    Wall time from start to end of each run counted above, in seconds.
//	    Buckets 0.1 s … 3600 s (see runDurationBuckets).
//	autogate_runs_in_flight                  gauge      (none)
//	    Runs started and not yet ended (RunStarted minus RunEnded).
//	autogate_queue_messages                  gauge      state
//	    The work queue's approximate depth as last seen:
//	    state="visible" (ApproximateNumberOfMessages, waiting for a runner)
//	    and state="in_flight" (ApproximateNumberOfMessagesNotVisible,
//	    received and not yet deleted).
//	autogate_dead_letter_messages            gauge      (none)
//	    The dead-letter queue's approximate visible depth as last seen.
//	autogate_lease_active                    gauge      (none)
//	    1 while this node holds the cluster lease (is the active gateway),
//	    else 0. Always 0 on runners.
//	autogate_lease_epoch                     gauge      (none)
//	    The epoch of the last term this node held or observed, as passed to
//	    LeaseState; 0 before any.
//	autogate_aws_api_calls_total             counter    aws_service, operation, outcome, scope
//	    AWS API operations invoked, once per operation whatever the retries.
//	    aws_service is the SDK service ID ("DynamoDB", "SQS",
//	    "Secrets Manager"); operation is the API name ("GetItem");
//	    outcome is "ok" or "error" (the final result the caller saw);
//	    scope is "execution" (made with a context from WithCallCounter or
//	    TrackCalls: one execution's own path), "heartbeat" (a context from
//	    Heartbeat: keeping a running execution alive, which grows with its
//	    duration) or "background" (any other: lease, node heartbeats,
//	    receives, sweeps), so calls per execution and periodic work are
//	    read apart and neither hides in the other.
//	autogate_aws_api_attempts_total          counter    aws_service, operation, outcome
//	    HTTP attempts behind those calls, counted inside the SDK's retry
//	    loop; attempts minus calls is the retry volume (throttling, 5xx).
//	autogate_aws_api_calls_per_execution     histogram  (none)
//	    AWS API calls one execution cost this process, as passed to
//	    ObserveExecutionCalls or observed by TrackCalls.
//	    Buckets 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50.
//
// The label is aws_service rather than service so that it cannot be
// mistaken for an Autogate service, which must never be a label.
//
// # Usage
//
//	m := metrics.New(cfg.Node, metrics.RoleRunner)
//	awsCfg.APIOptions = append(awsCfg.APIOptions, m.AWSAPIOptions()...)
//	mux.Handle("GET /metrics", m.Handler())
//
//	// Per execution (runner core):
//	ctx, done := m.TrackCalls(ctx) // or: ctx, cc := metrics.WithCallCounter(ctx)
//	m.RunStarted()
//	final := run(ctx)
//	m.RunEnded()
//	m.RunFinished(final.Status, final.Duration())
//	calls := done() // observes autogate_aws_api_calls_per_execution
package metrics
