package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// shimArg0 is the argv[0] that makes RunShim take over a process: the
// executor starts its shim as Config.ShimPath with this name.
const shimArg0 = "autogate-service-shim"

// shimReportFD is the descriptor on which the shim reports a failure to
// start the service: "<errno> <message>", errno 0 when there is none.
// Success is the descriptor closing with nothing written.
const shimReportFD = 3

// RunShim runs this process as a service's supervising shim when the
// executor started it as one (argv[0] is the shim's name), and returns the
// exit code for main to exit with and true; otherwise it returns false at
// once and does nothing. A binary that sets Config.ShimPath to itself calls
// it first thing in main, before flags or anything else:
//
//	if code, ok := executor.RunShim(os.Args); ok {
//		os.Exit(code)
//	}
//
// The shim is the service's process-group leader. It is a sub-reaper, so
// every descendant the service orphans stays below it, and it gets a
// parent-death signal: when the process that supervises it dies, however it
// dies (kill -9 included), the shim kills the service's whole tree and
// group with SIGKILL and exits. Otherwise it waits for the service and exits
// the way the service did (same code, or same signal).
func RunShim(args []string) (int, bool) {
	if len(args) < 1 {
		return 0, false
	}
	switch args[0] {
	case shimArg0:
		return runShim(args[1:]), true
	case reaperArg0:
		return runReaper(args[1:]), true
	}
	return 0, false
}

var (
	errShimUsage  = errors.New("shim: want the supervisor's PID and the service's argv")
	errParentGone = errors.New("shim: supervisor exited before the service started")
)

// shimFailed reports a start failure on the report descriptor and returns
// the exit code the shim then exits with.
func shimFailed(report *os.File, err error) int {
	var errno syscall.Errno
	n := 0
	if errors.As(err, &errno) {
		n = int(errno)
	}
	if report != nil {
		_, _ = fmt.Fprintf(report, "%d %s", n, err) // the supervisor sees EOF otherwise
		_ = report.Close()
	}
	return 127
}

// readShimReport reads what a shim said about starting its service: nil when
// it started (or the shim died before saying anything; its exit status then
// tells), the start error otherwise, wrapping the errno when there is one.
func readShimReport(r *os.File) error {
	var b strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := r.Read(buf)
		b.Write(buf[:n])
		if err != nil || b.Len() > 4096 {
			break
		}
	}
	s := b.String()
	if s == "" {
		return nil
	}
	code, msg, _ := strings.Cut(s, " ")
	if n, err := strconv.Atoi(code); err == nil && n != 0 {
		return fmt.Errorf("%s: %w", strings.TrimSuffix(msg, ": "+syscall.Errno(n).Error()), syscall.Errno(n))
	}
	return errors.New(msg)
}

// shimCommand wraps argv (argv[0] already resolved) so that it runs under
// the shim at shimPath; report is the write end of the start report.
func shimCommand(ctx context.Context, shimPath string, argv []string, report *os.File) *exec.Cmd {
	cmd := exec.CommandContext(ctx, shimPath)
	cmd.Args = append([]string{shimArg0, strconv.Itoa(os.Getpid())}, argv...)
	cmd.ExtraFiles = []*os.File{report} // becomes shimReportFD
	return cmd
}

// ShimBinary is the name of the small shim binary (cmd/autogate-shim, a
// main that only calls RunShim) that SelfShim prefers next to the
// executable. A shim is started for every service run, so its start-up is
// part of every run's latency: the full autogate binary spends several
// milliseconds initialising packages (schema compilers, SDK tables) it
// never uses as a shim; the small one starts in about one.
const ShimBinary = "autogate-shim"

// SelfShim is the ShimPath for a binary whose main begins with RunShim:
// the ShimBinary next to its executable when there is one (an executable
// regular file), else its own executable, which works the same, only
// slower to start.
func SelfShim() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("executor: own executable for the shim: %w", err)
	}
	return shimNextTo(exe), nil
}

// shimNextTo is ShimBinary in exe's directory if it is an executable
// regular file there, else exe.
func shimNextTo(exe string) string {
	p := filepath.Join(filepath.Dir(exe), ShimBinary)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return p
	}
	return exe
}
