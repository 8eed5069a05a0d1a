// Package proctest starts the autogate binary (or any other) as a real
// process for the process-level tests of cmd/autogate and
// internal/loadbench: Main builds the binaries for a TestMain, Start
// runs a process with its stderr in a log file and its stdout kept line
// by line for WaitLine, and the test's cleanup stops it.
//
// It guarantees that a started process is stopped (SIGTERM, then SIGKILL
// after StopTimeout) when the test that started it ends, even if the test
// fails while it waits for a line; that a line WaitLine read while it
// waited for another stays for a later WaitLine; and that the process
// never blocks on a full stdout pipe, whoever reads its lines. It does not
// stop what the process leaves behind (children of a SIGKILLed process),
// and a port from FreePort is only free when asked: another process may
// take it before the test uses it.
//
//	p := proctest.Start(t, filepath.Join(dir, "server.log"), append(os.Environ(), env...),
//		bin, "server", "--listen", "127.0.0.1:0")
//	url := p.WaitLine("listening on")
package proctest
