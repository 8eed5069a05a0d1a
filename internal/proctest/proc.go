package proctest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build runs `go build` of pkg (a package path, or "." for the one in the
// working directory) into out, with the race detector when race is set.
// The compiler's output goes to stderr.
func Build(out, pkg string, race bool) error {
	args := []string{"build"}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "-o", out, pkg)...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// Binary is a program Main builds: Pkg (a package path, or a directory
// as go build takes it) built as Name, with the race detector when Race is
// set. Main sets *Path, when Path is not nil, to where it is.
type Binary struct {
	Name string
	Pkg  string
	Race bool
	Path *string
}

// Main is the body of a TestMain whose tests start binaries: it builds
// bins, as Build does, into one new temporary directory (so a binary finds
// the others next to it, as an install has them), runs m, calls stop
// (when not nil: say, to stop emulators) and removes the directory. It
// returns the exit code for os.Exit; a failed build says why on stderr and
// returns 1.
func Main(m *testing.M, stop func(), bins ...Binary) int {
	pattern := "test-bin"
	if len(bins) > 0 {
		pattern = bins[0].Name + "-" + pattern
	}
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir) // a temp dir left behind harms nothing
	for _, b := range bins {
		out := filepath.Join(dir, b.Name)
		if err := Build(out, b.Pkg, b.Race); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", b.Name, err)
			return 1
		}
		if b.Path != nil {
			*b.Path = out
		}
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	return code
}

// WaitTimeout is how long WaitLine waits for a line.
const WaitTimeout = 90 * time.Second

// StopTimeout is how long Stop waits for the process to exit after
// SIGTERM before it kills it.
const StopTimeout = 30 * time.Second

// logTail is how much of the log a failure message quotes on a timeout.
const logTail = 8 << 10

// Proc is a running process started by Start. Its methods are not for
// concurrent use; their failures fail the test that started it.
type Proc struct {
	// Cmd is the process, for tests that signal it.
	Cmd *exec.Cmd
	// LogPath is the file the process's stderr goes to.
	LogPath string
	// Killed is set by a test that kills the process on purpose: Stop then
	// takes any exit status.
	Killed bool

	tb     testing.TB
	done   chan error // the result of Cmd.Wait, sent once
	exited bool       // done was received

	mu    sync.Mutex
	lines []string      // stdout lines WaitLine has not taken yet
	eof   bool          // stdout has ended
	more  chan struct{} // closed (and replaced) when a line comes or stdout ends
}

// Start runs bin with args and exactly the environment env (nil: this
// process's), its stderr in logPath (whose directory it makes), and reads
// its stdout for WaitLine. It stops the process, as Stop does, at tb's
// cleanup.
func Start(tb testing.TB, logPath string, env []string, bin string, args ...string) *Proc {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		tb.Fatal(err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proc{Cmd: exec.Command(bin, args...), LogPath: logPath, tb: tb, done: make(chan error, 1), more: make(chan struct{})}
	p.Cmd.Env = env
	p.Cmd.Stderr = logf
	// An os.Pipe rather than StdoutPipe: Wait does not close its read end,
	// so the reader gets every line up to the process's last (StdoutPipe's
	// Wait may close it before the reader has drained it), and Wait does
	// not wait for the reader.
	out, w, err := os.Pipe()
	if err != nil {
		logf.Close()
		tb.Fatal(err)
	}
	p.Cmd.Stdout = w
	err = p.Cmd.Start()
	w.Close() // the child holds its own copy
	if err != nil {
		out.Close()
		logf.Close()
		tb.Fatal(err)
	}
	go func() {
		p.done <- p.Cmd.Wait()
		_ = logf.Close() // the log is only read for failure messages
	}()
	// The reader ends when every holder of the write end has closed it:
	// the process, and any child that inherited its stdout.
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.add(sc.Text(), false)
		}
		p.add("", true)
		out.Close()
	}()
	tb.Cleanup(p.Stop)
	return p
}

// add records a stdout line, or the end of stdout, and wakes WaitLine.
func (p *Proc) add(line string, eof bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if eof {
		p.eof = true
	} else {
		p.lines = append(p.lines, line)
	}
	close(p.more)
	p.more = make(chan struct{})
}

// name is how failure messages call the process: its verb, else its
// program.
func (p *Proc) name() string {
	if len(p.Cmd.Args) > 1 && !strings.HasPrefix(p.Cmd.Args[1], "-") {
		return p.Cmd.Args[1]
	}
	return filepath.Base(p.Cmd.Path)
}

// WaitLine waits up to WaitTimeout for a stdout line containing want and
// returns it. Lines it reads while it waits stay for later calls: a
// server may say "active" before "listening on". It fails the test if
// stdout ends first or the time runs out, quoting the log.
func (p *Proc) WaitLine(want string) string {
	p.tb.Helper()
	timeout := time.After(WaitTimeout)
	for {
		p.mu.Lock()
		for i, l := range p.lines {
			if strings.Contains(l, want) {
				p.lines = slices.Delete(p.lines, i, i+1)
				p.mu.Unlock()
				return l
			}
		}
		eof, more := p.eof, p.more
		p.mu.Unlock()
		if eof {
			// Stdout ends as the process exits: say how it exited, and
			// leave Stop nothing to report twice.
			status := "still running after 5s"
			select {
			case err := <-p.done:
				p.exited = true
				status = fmt.Sprintf("exit: %v", err)
			case <-time.After(5 * time.Second):
			}
			raw, _ := os.ReadFile(p.LogPath) // the failure says what it can
			p.tb.Fatalf("%s stdout ended (%s) before %q:\n%s", p.name(), status, want, raw)
		}
		select {
		case <-more:
		case <-timeout:
			raw, _ := os.ReadFile(p.LogPath) // the failure says what it can
			if len(raw) > logTail {
				raw = raw[len(raw)-logTail:]
			}
			p.tb.Fatalf("no %q from the %s within %v; its log ends:\n%s", want, p.name(), WaitTimeout, raw)
		}
	}
}

// TakeLines collects for d, or until stdout ends, the stdout lines match
// accepts, in order, and takes them; the other lines stay for WaitLine.
func (p *Proc) TakeLines(d time.Duration, match func(line string) bool) []string {
	var got []string
	timeout := time.After(d)
	for {
		p.mu.Lock()
		kept := p.lines[:0]
		for _, l := range p.lines {
			if match(l) {
				got = append(got, l)
			} else {
				kept = append(kept, l)
			}
		}
		p.lines = kept
		eof, more := p.eof, p.more
		p.mu.Unlock()
		if eof {
			return got
		}
		select {
		case <-more:
		case <-timeout:
			return got
		}
	}
}

// Wait waits for the process to exit and returns how it ended.
func (p *Proc) Wait() error {
	err := <-p.done
	p.exited = true
	return err
}

// Exited reports whether Wait or Stop has seen the process exit.
func (p *Proc) Exited() bool { return p.exited }

// Stop sends SIGCONT (in case a test paused the process) and SIGTERM, and
// waits up to StopTimeout for it to exit; an exit status other than 0
// fails the test unless Killed is set. A process that does not exit in
// time is killed and fails the test. Stop does nothing once the process
// has exited.
func (p *Proc) Stop() {
	p.tb.Helper()
	if p.exited {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGCONT) // may have exited already
	_ = p.Cmd.Process.Signal(syscall.SIGTERM) // likewise
	select {
	case err := <-p.done:
		p.exited = true
		if err != nil && !p.Killed {
			p.tb.Errorf("%s exit after SIGTERM: %v", p.name(), err)
		}
	case <-time.After(StopTimeout):
		_ = p.Cmd.Process.Kill() // the failure below is what matters
		p.tb.Errorf("%s did not stop within %v of SIGTERM", p.name(), StopTimeout)
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		tb.Fatal(err)
	}
	return port
}

// FreeAddr returns a loopback address ("127.0.0.1:port") whose port was
// free a moment ago.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(tb))
}
