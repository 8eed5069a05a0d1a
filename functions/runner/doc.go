// Command runner is the Lambda runner: an aws-lambda-go function on the
// cluster's SQS work queue (an event source mapping with
// FunctionResponseTypes = ["ReportBatchItemFailures"]) that runs each
// execution through the same runner core (package runner) as the ECS
// runner. main only reads configuration from the environment and wires the
// parts together (the runner set-up is package runner/node, the same one the
// gateways and the ECS runner use); the event handling is package handler,
// tested on its own.
//
// # What it can run
//
// The Lambda runner runs what the image it is deployed with can run. The
// Autogate image (the repository's Dockerfile, entrypoint overridden with
// /usr/local/bin/autogate-lambda-runner) ships python3 with venv,
// ansible-core and OpenTofu, so with that image every service type runs:
//
//   - executable: always (the file comes from the service's repository).
//   - python-script: needs python3 in the image (the Autogate image has it);
//     requirements are installed into a venv cached under /tmp, so a cold
//     sandbox pays for pip again and needs network access to the package
//     index (or AUTOGATE_PIP_FIND_LINKS / AUTOGATE_PIP_NO_INDEX).
//   - ansible-playbook: needs ansible-playbook on PATH (ansible-core in the
//     Autogate image); with HOME=/tmp, which the cluster stack sets.
//   - opentofu-plan: needs tofu on PATH (in the Autogate image); providers
//     are downloaded into /tmp on each cold start.
//
// A plain Lambda base image (provided.al2023 with only the bootstrap binary)
// runs executables only; the other types fail with the executor's "tool not
// found" error, which is recorded on the execution.
//
// # Limits
//
//   - Lambda stops an invocation after its timeout, at most 15 minutes, so a
//     service whose timeout plus AUTOGATE_HANDBACK_MARGIN does not fit in
//     the time left is never started here: it is handed back to the queue
//     at once. A service with a longer timeout than the function's can never
//     run on Lambda and needs the ECS runner; on a Lambda-only cluster it
//     ends up in the dead-letter queue after maxReceiveCount hand-backs.
//   - /tmp is the only writable path: the run directories, the venv cache
//     and the repository cache live under AUTOGATE_WORK_DIR (default
//     /tmp/autogate), which must be under /tmp when running on Lambda. /tmp
//     persists across invocations of one warm sandbox, so caches help warm
//     starts only; its size is the function's ephemeral storage setting.
//   - One service runs per sandbox at a time by default (batch size 1 is the
//     stack's default; AUTOGATE_LAMBDA_CONCURRENCY raises it per batch).
//
// # Environment
//
//	AUTOGATE_CLUSTER               cluster ID (required)
//	AUTOGATE_TABLE                 DynamoDB table (required)
//	AUTOGATE_QUEUE_URL             the cluster's work queue (required)
//	AUTOGATE_SECRET_KEY_SECRET_ID  Secrets Manager secret holding the stored-secret key (base64 of 32 bytes), or
//	AUTOGATE_SECRET_KEY            the key itself (base64), for local runs
//	AUTOGATE_KMS_KEY_ID            KMS key wrapping the cluster's data keys: secrets open through the KMS keyring
//	                               (the two above are then optional: the legacy key, for values sealed before)
//	AUTOGATE_KMS_CACHE_TTL         how long an unwrapped data key stays in memory (default 5m, 1s..1h)
//	AUTOGATE_NODE                  runner ID recorded on executions (default: AWS_LAMBDA_LOG_STREAM_NAME, else "lambda")
//	AUTOGATE_DLQ_URL               the dead-letter queue (optional, logged only)
//	AUTOGATE_HANDBACK_MARGIN       time kept free before the deadline beyond a service's timeout (default 10s)
//	AUTOGATE_LAMBDA_CONCURRENCY    records of one batch run at once (default 1)
//	AUTOGATE_WORK_DIR              root of run dirs and caches (default /tmp/autogate)
//	AUTOGATE_OUTPUT_LIMIT          bytes of stdout and of stderr kept (default 65536)
//	AUTOGATE_RETENTION             how long recorded executions are kept (default 720h, at least 1h), as on the gateways
//	AUTOGATE_REPO_REFRESH          reuse a branch's resolved commit this long before fetching again (default 5s, 0..1h; 0: every run)
//	AUTOGATE_PIP_INDEX_URL, AUTOGATE_PIP_FIND_LINKS (comma-separated), AUTOGATE_PIP_NO_INDEX
//	AUTOGATE_LOG_LEVEL             debug, info, warn or error (default info); logs are JSON on stderr
//
// The runner heartbeats a running execution every execution.DefaultHeartbeat
// (5 s), as the ECS runners and the gateways do by default.
//
// AWS access (region, credentials, AWS_ENDPOINT_URL_*) comes from the SDK's
// standard configuration, so the same binary runs against AWS, LocalStack
// or the emulators.
//
// A start-up failure (bad configuration, unreadable secret key) is logged
// and exits with status 1, which Lambda reports as an init error; the
// batch is then retried and, if it persists, dead-lettered.
package main
