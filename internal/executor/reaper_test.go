//go:build linux

package executor

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// parentName is a service body that prints its parent's argv[0].
const parentName = `tr '\0' '\n' < /proc/$PPID/cmdline | head -n 1`

// A service runs under the executor's long-lived reaper, the same one for
// every run; a request too big for the reaper's one message runs under a
// shim of its own instead, with the same result.
func TestReaperSupervisesRuns(t *testing.T) {
	e := newExecutor(t, nil)
	var parents []string
	for range 2 {
		res, err := runScript(t, e, "echo $PPID; "+parentName, nil)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Fields(res.Stdout.Data)
		if len(lines) != 2 || lines[1] != reaperArg0 {
			t.Fatalf("service parent: %q; want its PID and %s", res.Stdout.Data, reaperArg0)
		}
		parents = append(parents, lines[0])
	}
	if parents[0] != parents[1] {
		t.Errorf("reaper PIDs %v: want one reaper for both runs", parents)
	}
	big := strings.Repeat("x", maxReaperMsg)
	res, err := runScript(t, e, parentName+"; exit 4", func(j *Job) {
		j.Service.Args = []string{big} // argv beyond one message
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(res.Stdout.Data); got != shimArg0 || res.ExitCode != 4 {
		t.Errorf("big request: parent %q exit %d; want %s (a shim of its own) and exit 4", got, res.ExitCode, shimArg0)
	}
}

// A reaper that dies under a run takes the service with it; the run says
// so, and the next run gets a new reaper.
func TestReaperDeathFailsRunAndRestarts(t *testing.T) {
	e := newExecutor(t, nil)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "ppid")
	done := make(chan error, 1)
	go func() {
		_, err := runScript(t, e, `echo $PPID > "`+pidFile+`.tmp"; mv "`+pidFile+`.tmp" "`+pidFile+`"; exec sleep 100`, nil)
		done <- err
	}()
	var reaper int
	waitFor(t, 20*time.Second, "the service to write its parent's PID", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		reaper, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	if err := syscall.Kill(reaper, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, errReaperGone) {
			t.Errorf("run whose reaper died: %v; want %v", err, errReaperGone)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not end when its reaper died (the service should have been killed with it)")
	}
	res, err := runScript(t, e, "echo $PPID", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(res.Stdout.Data); got == strconv.Itoa(reaper) || got == "" {
		t.Errorf("next run's parent %q; want a new reaper, not %d", got, reaper)
	}
}

// Many short runs at once through the one reaper each get their own exit
// status and output: a leader that exits at once is reported after its
// start, to its own run, never another's (an exit reported first would
// read as a failed start).
func TestReaperConcurrentShortRuns(t *testing.T) {
	e := newExecutor(t, nil)
	const n = 40
	errs := make(chan error, n)
	for i := range n {
		go func() {
			code := i % 7
			res, err := runScript(t, e, "echo run"+strconv.Itoa(i)+"; exit "+strconv.Itoa(code), nil)
			switch {
			case err != nil:
				errs <- err
			case res.ExitCode != code || strings.TrimSpace(res.Stdout.Data) != "run"+strconv.Itoa(i):
				errs <- errors.New("run " + strconv.Itoa(i) + ": exit " + strconv.Itoa(res.ExitCode) + " output " + strconv.Quote(res.Stdout.Data))
			default:
				errs <- nil
			}
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
