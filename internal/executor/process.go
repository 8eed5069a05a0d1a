package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// groupPoll is how often a lingering process group is checked while it has
// its grace period to exit.
const groupPoll = 20 * time.Millisecond

type processSpec struct {
	argv           []string
	dir            string
	env            []string
	stdout, stderr io.Writer
}

type processResult struct {
	// exitCode is the process's exit code, -1 if a signal ended it.
	exitCode int
	signal   syscall.Signal // when exitCode is -1
	// stopped is set when ctx ended while the process ran and it was sent
	// SIGTERM (and SIGKILL after the grace period).
	stopped bool
}

func (p processResult) describe() string {
	if p.exitCode >= 0 {
		return fmt.Sprintf("exit code %d", p.exitCode)
	}
	return fmt.Sprintf("terminated by signal %d (%v)", int(p.signal), p.signal)
}

// runProcess runs spec in its own process group. When ctx ends, the group
// gets SIGTERM and, KillGrace later, SIGKILL; when the leader exits on its
// own, what is left of the group gets the same treatment. It returns an
// error only when the process could not be started.
func (e *Executor) runProcess(ctx context.Context, spec processSpec) (processResult, error) {
	// A file just copied into the run dir can briefly fail to exec with
	// ETXTBSY: a concurrent fork elsewhere in this process may still hold
	// the copy's write descriptor (golang.org/issue/22315). The window is
	// a fork's length, so a few short retries close it.
	for delay := time.Millisecond; ; delay *= 2 {
		res, err := e.startAndWait(ctx, spec)
		if !errors.Is(err, syscall.ETXTBSY) || delay > 256*time.Millisecond {
			return res, err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return processResult{exitCode: -1, stopped: true}, nil
		}
	}
}

func (e *Executor) startAndWait(ctx context.Context, spec processSpec) (processResult, error) {
	if e.cfg.ShimPath != "" {
		if res, ok, err := e.startAndWaitReaped(ctx, spec); ok {
			return res, err
		}
	}
	// The parent-death signal fires when the thread that forked exits, not
	// the process (golang.org/issue/27505). Holding this goroutine on its
	// thread until the child is reaped keeps that thread alive for the
	// child's whole life: no other goroutine can lock it and exit.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var (
		cmd    *exec.Cmd
		report *os.File // read end of the shim's start report; nil without a shim
	)
	if e.cfg.ShimPath != "" {
		r, w, err := os.Pipe()
		if err != nil {
			return processResult{exitCode: -1}, fmt.Errorf("shim report pipe: %w", err)
		}
		defer r.Close()
		cmd = shimCommand(ctx, e.cfg.ShimPath, spec.argv, w)
		defer w.Close() // closed again (no-op error) after Start below
		report = r
	} else {
		cmd = exec.CommandContext(ctx, spec.argv[0], spec.argv[1:]...)
	}
	cmd.Dir = spec.dir
	cmd.Env = spec.env
	cmd.Stdout = spec.stdout
	cmd.Stderr = spec.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// With a shim, its signal kills the service's tree; without one, the
	// leader itself is killed and grandchildren are not covered.
	if e.cfg.ShimPath != "" {
		setParentDeath(cmd.SysProcAttr, shimParentDeath)
	} else {
		setParentDeath(cmd.SysProcAttr, syscall.SIGKILL)
	}
	var (
		mu     sync.Mutex
		termAt time.Time // when the group got SIGTERM; zero if never
	)
	cmd.Cancel = func() error {
		mu.Lock()
		termAt = time.Now()
		mu.Unlock()
		return signalGroup(cmd.Process.Pid, syscall.SIGTERM)
	}
	// WaitDelay bounds both a leader that ignores SIGTERM (it is then
	// SIGKILLed) and pipes held open by grandchildren after the leader exits.
	cmd.WaitDelay = e.cfg.KillGrace
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			return processResult{exitCode: -1, stopped: true}, nil
		}
		return processResult{exitCode: -1}, err
	}
	if report != nil {
		cmd.ExtraFiles[0].Close() // only the shim holds the write end now
		if err := readShimReport(report); err != nil {
			_ = cmd.Wait() // the shim exits right after reporting
			if ctx.Err() != nil {
				return processResult{exitCode: -1, stopped: true}, nil
			}
			return processResult{exitCode: -1}, err
		}
	}
	pgid := cmd.Process.Pid
	waitErr := cmd.Wait()

	mu.Lock()
	sent := termAt
	mu.Unlock()
	e.reapGroup(pgid, sent)

	res := processResult{exitCode: -1, stopped: !sent.IsZero()}
	if st := cmd.ProcessState; st != nil {
		res.exitCode = st.ExitCode()
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.signal = ws.Signal()
		}
	} else if waitErr != nil {
		return res, waitErr
	}
	return res, nil
}

// reapGroup makes sure nothing of process group pgid survives: if members
// remain, they get SIGTERM (unless it was sent at termAt already) and, once
// KillGrace has passed since SIGTERM, SIGKILL.
func (e *Executor) reapGroup(pgid int, termAt time.Time) {
	if !groupAlive(pgid) {
		return
	}
	if termAt.IsZero() {
		termAt = time.Now()
		_ = signalGroup(pgid, syscall.SIGTERM) // the group may just have emptied
	}
	deadline := time.NewTimer(time.Until(termAt.Add(e.cfg.KillGrace)))
	defer deadline.Stop()
	tick := time.NewTicker(groupPoll)
	defer tick.Stop()
	for groupAlive(pgid) {
		select {
		case <-tick.C:
		case <-deadline.C:
			_ = signalGroup(pgid, syscall.SIGKILL) // as above
			return
		}
	}
}

// groupAlive reports whether process group pgid has a member that is not a
// zombie. A zombie is dead already and only waits for its parent to reap it;
// orphans are reaped by PID 1, which in containers may do so late or never,
// so counting zombies would make every lingering group use its whole grace.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	alive, ok := procGroupAlive(pgid)
	return alive || !ok // without /proc, trust kill(2)
}

// procGroupAlive scans /proc for a live member of process group pgid; ok is
// false when /proc cannot be read.
func procGroupAlive(pgid int) (alive, ok bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false, false
	}
	want := strconv.Itoa(pgid)
	for _, ent := range entries {
		name := ent.Name()
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// "pid (comm) state ppid pgrp ...": comm may hold spaces and ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[2] == want && f[0] != "Z" && f[0] != "X" {
			return true, true
		}
	}
	return false, true
}

func signalGroup(pgid int, sig syscall.Signal) error {
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}
