// Package loadbench holds `make bench-load` (issue 15): no-op runs submitted
// from 1, 8 and 32 concurrent clients for a bounded time against real
// `autogate` processes, next to the references measured in the same run.
//
// Its only code is BenchmarkLoad in the package's tests, so `go test
// ./...` builds it and runs nothing (no -bench). The test binary builds
// its own autogate binary without -race (the figures are throughput) and
// starts, on this machine:
//
//   - all-in-one: `autogate server` on the embedded store, local execution;
//   - distributed: `autogate init table` on DynamoDB Local, one gateway
//     with `--execution queue` on a fauxqs queue, and two `autogate runner`
//     processes;
//   - the floor server: an in-process HTTPS handler that writes and fsyncs
//     one record and runs the same no-op, the least an API run can cost;
//   - the emulators' ceilings: PutItem, TransactWriteItems (a put and a
//     condition check, as a fenced write), SendMessage and receive+delete,
//     each in a tight loop from 32 goroutines.
//
// Per set-up, mode (async, sync) and client count it prints accepted/s,
// completed/s (until every accepted run is terminal), and p50/p99 of the
// submit and end-to-end latency (record CreatedAt to EndedAt), and how
// many calls the client retried: after a 429 (the backlog limit, honoured
// by its Retry-After, as the CLI does) and after a 503 or a failed
// connection (the active stepped down). Settings:
// BENCH_LOAD_SECONDS (submission window per case, default 4) and
// BENCH_LOAD_CLIENTS (default "1,8,32").
package loadbench
