// Package emulator starts the AWS-API emulators Autogate's tests run against
// (see TESTING.md in the shared docs): DynamoDB Local for DynamoDB and fauxqs
// for SQS, both installed by `make emulators` (npm ci in tools/emulators),
// and local-kms for KMS (a Go binary `make emulators` installs with go
// install; each test binary's local-kms keeps its keys in a temporary
// directory removed when it stops).
//
// Guarantees:
//   - at most one process per emulator per test binary: the first DynamoDB(t),
//     SQS(t) or KMS(t) call starts it (sync.Once) on a free loopback port and every
//     later call, in any test of the package, gets the same Endpoint. DynamoDB
//     Local runs with -inMemory -sharedDb, so tests isolate themselves by
//     unique table names, cluster IDs or queue names;
//   - the call returns only once the emulator answers a real API request,
//     polled against a deadline (no fixed sleep);
//   - the process dies with the test binary: Main kills it by PID after
//     m.Run, and the child is started in its own process group with
//     Pdeathsig=SIGKILL (Linux) so a test binary killed by `go test -timeout`
//     or kill -9 does not leak a java process;
//   - when an emulator cannot start, the test fails with the reason if
//     CI=true, and is skipped otherwise with a loud message saying how to
//     install it. It never skips silently.
//
// It does not reset state between tests, nor give an emulator per test.
//
// Usage:
//
//	func TestMain(m *testing.M) { emulator.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		cfg := emulator.AWSConfig(t, emulator.DynamoDB(t))
//		client := dynamodb.NewFromConfig(cfg, emulator.DynamoDBOptions)
//		...
//	}
//
// Process-level tests hand the endpoints to child processes with Env.
// EMULATOR_DEBUG=1 prints each emulator's output when the test binary ends.
//
// Note for test authors: DynamoDB Local 3.x really runs TTL. It deletes
// items whose expiresAt lies in the real past within about a second, so a
// test that writes expiring items with a fake clock should start that
// clock at time.Now(), or use a table without TTL.
package emulator
