// Package proctest starts the autogate binary (or any other) as a real
// process for the process-level tests of cmd/autogate and
// internal/loadbench: it builds the binary, starts a process with its
// stderr in a log file, hands out its stdout line by line to WaitLine, and
// stops it at the test's cleanup.
//
// It guarantees that a started process is stopped (SIGTERM, then SIGKILL
// after 30 s) when the test that started it ends, even if the test fails
// while it waits for a line; that WaitLine never loses a line it was not
// waiting for (a later WaitLine can still take it); and that the process
// never blocks on a full stdout pipe, whoever reads its lines. It does not
// stop grandchildren that leave the process group, nor reap a process
// whose test called runtime.Goexit from another goroutine.
//
//	p := proctest.Start(t, filepath.Join(dir, "server.log"), append(os.Environ(), env...),
//		bin, "server", "--listen", "127.0.0.1:0")
//	url := p.WaitLine("listening on")
package proctest
