package executor

import (
	"bytes"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

const (
	// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER.
	prSetChildSubreaper = 36
	// shimParentDeath is the shim's parent-death signal: catchable, so the
	// shim can kill what is below it, and one the executor never sends.
	shimParentDeath = syscall.SIGUSR2
)

// setParentDeath makes the child started with attr get sig when the thread
// that starts it exits; the caller keeps its goroutine locked to that thread
// for the child's whole life, so that thread is the supervising process's.
func setParentDeath(attr *syscall.SysProcAttr, sig syscall.Signal) {
	attr.Pdeathsig = sig
}

// runShim is RunShim's body; args are the supervisor's PID, then argv.
func runShim(args []string) int {
	report := os.NewFile(shimReportFD, "shim-report")
	if report != nil {
		syscall.CloseOnExec(shimReportFD) // the service must not inherit it
	}
	sigs := make(chan os.Signal, 8)
	// SIGTERM, SIGINT and SIGHUP reach the service directly (the executor
	// signals the whole group); the shim outlives them to report the exit.
	signal.Notify(sigs, shimParentDeath, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	// A parent-death signal that came before Notify was ignored by the Go
	// runtime, so compare with the PID the supervisor passed.
	if len(args) < 2 {
		return shimFailed(report, errShimUsage)
	}
	parent, err := strconv.Atoi(args[0])
	if err != nil {
		return shimFailed(report, errShimUsage)
	}
	if os.Getppid() != parent {
		return shimFailed(report, errParentGone)
	}
	argv := args[1:]
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return shimFailed(report, errno)
	}

	// Pdeathsig fires when the forking thread exits: keep this goroutine on
	// it until the shim exits.
	runtime.LockOSThread()
	cmd := &exec.Cmd{Path: argv[0], Args: argv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return shimFailed(report, err)
	}
	if report != nil {
		_ = report.Close() // EOF with nothing written: started
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the status is read from ProcessState
		close(done)
	}()
	for {
		select {
		case sig := <-sigs:
			if sig == shimParentDeath && os.Getppid() != parent {
				killBelow()
				return 137
			}
		case <-done:
			st := cmd.ProcessState
			if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				dieBy(ws.Signal())
				return 128 + int(ws.Signal()) // if the signal did not end the shim
			}
			return st.ExitCode()
		}
	}
}

// dieBy ends the shim by sig, so the executor sees what ended the service.
// The Go runtime's own handling of sig (a stack dump for SIGQUIT, nothing
// for SIGUSR1) is replaced by the kernel's default action first.
func dieBy(sig syscall.Signal) {
	signal.Reset(sig)
	var dfl struct { // struct sigaction; all zero is SIG_DFL
		handler, flags, restorer uintptr
		mask                     uint64
	}
	_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
	// To this thread, so it is delivered before the syscall returns.
	_ = syscall.Tgkill(os.Getpid(), syscall.Gettid(), sig) // the caller falls back to an exit code
}

// killBelow SIGKILLs every other member of the shim's process group and
// every descendant of the shim (orphans included: the shim is their
// sub-reaper), until a scan finds none; a process forking meanwhile is
// caught by the next scan.
func killBelow() {
	self := os.Getpid()
	for range 100 {
		victims := below(self)
		if len(victims) == 0 {
			return
		}
		for _, pid := range victims {
			_ = syscall.Kill(pid, syscall.SIGKILL) // it may have exited already
		}
		// Reap what was ours so the next scan does not see zombies.
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}

// below lists the live processes in self's group or under self in the
// process tree, self excluded.
func below(self int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	type proc struct{ ppid, pgrp int }
	procs := map[int]proc{}
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		procs[pid] = proc{ppid, pgrp}
	}
	var out []int
	for pid, p := range procs {
		if pid == self {
			continue
		}
		under := p.pgrp == self
		for q, hops := p.ppid, 0; !under && q > 1 && hops < 64; hops++ {
			under = q == self
			q = procs[q].ppid
		}
		if under {
			out = append(out, pid)
		}
	}
	return out
}
