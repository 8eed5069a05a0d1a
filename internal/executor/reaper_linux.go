package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The reaper is the shim (see RunShim) as one long-lived process per
// Executor instead of one per run: the Go runtime's start-up, a millisecond
// or more on a busy host even for the small autogate-shim, is paid once. It
// gives each service what the per-run shim does: the service leads its own
// process group; the reaper is a sub-reaper, so everything the service
// orphans (a setsid grandchild included) stays below it; and when the
// supervisor dies, however it dies, the reaper's parent-death signal makes
// it SIGKILL everything below it and exit. A service also gets SIGKILL as
// its own parent-death signal, so a reaper that dies takes the service
// leaders with it, and the executor reports those runs as failed.
//
// Protocol, over a SOCK_SEQPACKET socket pair (one message per datagram):
// the executor sends a reaperRequest with the service's stdout and stderr
// write ends attached (SCM_RIGHTS); the reaper answers a reaperReply with
// the PID (or the start error), then another with the wait status when the
// service's leader exits. A request too large for one datagram is run under
// a per-run shim instead.

// reaperArg0 is the argv[0] that makes RunShim run the reaper.
const reaperArg0 = "autogate-service-reaper"

// reaperFD is the reaper's end of the socket pair.
const reaperFD = 3

// maxReaperMsg bounds a request (argv and environment): well under the
// socket's default send buffer, so one datagram always fits.
const maxReaperMsg = 96 << 10

type reaperRequest struct {
	ID   uint64   `json:"id"`
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
}

type reaperReply struct {
	ID uint64 `json:"id"`
	// Started: Pid, or Errno and Err when the start failed.
	Pid   int    `json:"pid,omitempty"`
	Errno int    `json:"errno,omitempty"`
	Err   string `json:"err,omitempty"`
	// Exited: the leader's wait status.
	Exited bool   `json:"exited,omitempty"`
	Status uint32 `json:"status,omitempty"`
}

// runReaper is the reaper's body; args are the supervisor's PID.
func runReaper(args []string) int {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, shimParentDeath)
	// The executor signals the services' groups itself; the reaper, in a
	// group of its own, outlives everything but its supervisor. Caught, not
	// ignored: an ignored signal would stay ignored in every service.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if len(args) < 1 {
		return 2
	}
	parent, err := strconv.Atoi(args[0])
	if err != nil || os.Getppid() != parent {
		return 2
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return 2
	}
	syscall.CloseOnExec(reaperFD)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 2
	}
	// The services' parent-death signal fires when the thread that forked
	// them exits: every fork happens on this goroutine, locked to its
	// thread until the reaper exits. It also reads the requests, so a
	// request is forked on the thread that received it, with no hand-off.
	runtime.LockOSThread()
	// mu orders a start's replies: the fork, its registration and the
	// "started" reply happen under it, so the waiter, which takes it to
	// report an exit, never reports one before the start.
	var mu sync.Mutex
	leaders := map[int]uint64{} // PID → request ID
	forked := make(chan struct{}, 1)
	go reapChildren(&mu, leaders, forked)
	go func() {
		for sig := range sigs {
			if sig == shimParentDeath && os.Getppid() != parent {
				killBelow()
				os.Exit(137)
			}
		}
	}()
	// Ready: the executor waits for this before sending work.
	if err := reaperSend(reaperReply{Pid: os.Getpid()}); err != nil {
		return 2
	}
	buf := make([]byte, maxReaperMsg+1024)
	oob := make([]byte, syscall.CmsgSpace(2*4))
	for {
		n, oobn, _, _, err := syscall.Recvmsg(reaperFD, buf, oob, syscall.MSG_CMSG_CLOEXEC)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			killBelow() // the supervisor closed its end, or died
			return 0
		}
		var fds []int
		if cms, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				if rights, err := syscall.ParseUnixRights(&cm); err == nil {
					fds = append(fds, rights...)
				}
			}
		}
		var req reaperRequest
		if err := json.Unmarshal(buf[:n], &req); err != nil || len(req.Argv) == 0 || len(fds) != 2 {
			for _, fd := range fds {
				_ = syscall.Close(fd) // a malformed request starts nothing
			}
			_ = reaperSend(reaperReply{ID: req.ID, Errno: int(syscall.EINVAL), Err: "reaper: malformed request"})
			continue
		}
		mu.Lock()
		pid, err := syscall.ForkExec(req.Argv[0], req.Argv, &syscall.ProcAttr{
			Dir: req.Dir, Env: req.Env, Files: []uintptr{devnull.Fd(), uintptr(fds[0]), uintptr(fds[1])},
			Sys: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
		})
		for _, fd := range fds {
			_ = syscall.Close(fd) // the service holds its own copies
		}
		r := reaperReply{ID: req.ID, Pid: pid}
		if err != nil {
			r = reaperReply{ID: req.ID, Err: err.Error()}
			var errno syscall.Errno
			if errors.As(err, &errno) {
				r.Errno = int(errno)
			}
		} else {
			leaders[pid] = req.ID
		}
		_ = reaperSend(r) // a supervisor gone makes the next Recvmsg fail
		mu.Unlock()
		select {
		case forked <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// reapChildren waits for the reaper's children in a blocking wait4 (no
// SIGCHLD round trip through the signal handler) and reports each
// leader's exit. Orphans adopted as sub-reaper are reaped too, silently.
// With no child to wait for it sleeps until the next fork.
func reapChildren(mu *sync.Mutex, leaders map[int]uint64, forked <-chan struct{}) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.ECHILD):
			<-forked
			continue
		case err != nil || pid <= 0:
			time.Sleep(10 * time.Millisecond) // cannot happen; do not spin
			continue
		}
		mu.Lock()
		if id, ok := leaders[pid]; ok {
			delete(leaders, pid)
			_ = reaperSend(reaperReply{ID: id, Exited: true, Status: uint32(ws)})
		}
		mu.Unlock()
	}
}

func reaperSend(r reaperReply) error {
	b, _ := json.Marshal(r) // plain fields always encode
	for {
		_, err := syscall.Write(reaperFD, b)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// reaperConn is an Executor's connection to its reaper.
type reaperConn struct {
	f *os.File // our end of the socket pair

	mu     sync.Mutex
	next   uint64
	calls  map[uint64]chan reaperReply
	broken error // set once the reaper is gone; calls fail with it
	done   chan struct{}
}

// errReaperGone is what a run gets when its reaper died under it.
var errReaperGone = errors.New("the services' supervising shim (reaper) exited")

// reaperState is an Executor's reaper, started on first use.
type reaperState struct {
	mu    sync.Mutex
	rc    *reaperConn
	spawn chan chan spawnResult // to the spawner; nil until the first start
}

// get returns the running reaper, starting one (from shimPath) if there is
// none or the last one died.
func (s *reaperState) get(shimPath string) (*reaperConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rc != nil {
		select {
		case <-s.rc.done:
		default:
			return s.rc, nil
		}
	}
	if s.spawn == nil {
		s.spawn = make(chan chan spawnResult)
		go spawner(shimPath, s.spawn)
	}
	ch := make(chan spawnResult, 1)
	s.spawn <- ch
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	s.rc = r.rc
	return r.rc, nil
}

type spawnResult struct {
	rc  *reaperConn
	err error
}

// spawner starts reapers, all from one thread it keeps for the life of the
// process: a reaper's parent-death signal fires when the thread that
// forked it exits, so that thread must never exit before the process.
func spawner(shimPath string, spawn <-chan chan spawnResult) {
	runtime.LockOSThread() // never unlocked: see above
	for ch := range spawn {
		rc, err := spawnReaper(shimPath)
		ch <- spawnResult{rc, err}
	}
}

func spawnReaper(shimPath string) (*reaperConn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reaper socket: %w", err)
	}
	// Ours non-blocking, so reads and writes go through the poller.
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		_ = syscall.Close(fds[0]) // the error above is the one to report
		_ = syscall.Close(fds[1])
		return nil, fmt.Errorf("reaper socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "reaper"), os.NewFile(uintptr(fds[1]), "reaper-peer")
	defer theirs.Close() // the reaper holds its own copy
	// An empty environment: the reaper needs none, and the supervisor's
	// may hold secrets; every service gets its own, explicitly.
	cmd := &exec.Cmd{Path: shimPath, Args: []string{reaperArg0, strconv.Itoa(os.Getpid())}, Env: []string{}, ExtraFiles: []*os.File{theirs}}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeath(cmd.SysProcAttr, shimParentDeath)
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, fmt.Errorf("start the reaper %s: %w", shimPath, err)
	}
	rc := &reaperConn{f: ours, calls: map[uint64]chan reaperReply{}, done: make(chan struct{})}
	// The reaper says it is ready; a binary that is no reaper (an older
	// shim, say) exits instead, and the caller falls back to a shim per run.
	if err := rc.ready(); err != nil {
		_ = cmd.Process.Kill() // it may have exited already
		_ = cmd.Wait()         // the handshake error is the one to report
		ours.Close()
		return nil, fmt.Errorf("start the reaper %s: %w", shimPath, err)
	}
	go func() {
		err := cmd.Wait()
		rc.fail(fmt.Errorf("%w: %v", errReaperGone, err))
	}()
	go rc.read()
	return rc, nil
}

// reaperReady bounds the wait for a starting reaper's first message.
const reaperReady = 10 * time.Second

// ready reads the reaper's first message, its PID.
func (rc *reaperConn) ready() error {
	if err := rc.f.SetReadDeadline(time.Now().Add(reaperReady)); err != nil {
		return err
	}
	buf := make([]byte, 512)
	n, err := rc.f.Read(buf)
	if err != nil {
		return fmt.Errorf("no ready message: %w", err)
	}
	var r reaperReply
	if err := json.Unmarshal(buf[:n], &r); err != nil || r.ID != 0 || r.Pid <= 0 {
		return fmt.Errorf("unexpected ready message %q", buf[:n])
	}
	return rc.f.SetReadDeadline(time.Time{})
}

// read delivers the reaper's replies until its end closes.
func (rc *reaperConn) read() {
	buf := make([]byte, 4096)
	for {
		n, err := rc.f.Read(buf)
		if err != nil || n == 0 {
			rc.fail(errReaperGone)
			return
		}
		var r reaperReply
		if json.Unmarshal(buf[:n], &r) != nil {
			continue // cannot happen: the reaper encodes every reply
		}
		rc.mu.Lock()
		if ch := rc.calls[r.ID]; ch != nil {
			ch <- r // buffered for both replies: never blocks
			if r.Exited || r.Pid == 0 {
				delete(rc.calls, r.ID) // the last reply of this call
			}
		}
		rc.mu.Unlock()
	}
}

func (rc *reaperConn) fail(err error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.broken != nil {
		return
	}
	rc.broken = err
	for id, ch := range rc.calls {
		close(ch)
		delete(rc.calls, id)
	}
	close(rc.done)
	_ = rc.f.Close() // the reaper, if alive, sees EOF and cleans up
}

// start asks the reaper to run argv; the replies arrive on the channel,
// which is closed if the reaper goes away first.
func (rc *reaperConn) start(msg []byte, id uint64, stdout, stderr *os.File) (<-chan reaperReply, error) {
	ch := make(chan reaperReply, 2)
	rc.mu.Lock()
	if rc.broken != nil {
		rc.mu.Unlock()
		return nil, rc.broken
	}
	rc.calls[id] = ch
	rc.mu.Unlock()
	rights := syscall.UnixRights(int(stdout.Fd()), int(stderr.Fd()))
	sc, err := rc.f.SyscallConn()
	if err == nil {
		werr := sc.Write(func(fd uintptr) bool {
			err = syscall.Sendmsg(int(fd), msg, rights, nil, 0)
			return !errors.Is(err, syscall.EAGAIN)
		})
		if werr != nil {
			err = werr
		}
	}
	if err != nil {
		rc.mu.Lock()
		delete(rc.calls, id)
		rc.mu.Unlock()
		return nil, fmt.Errorf("send to the reaper: %w", err)
	}
	return ch, nil
}

func (rc *reaperConn) newID() uint64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.next++
	return rc.next
}

// startAndWaitReaped is startAndWait through the reaper. ok is false when
// the request does not fit one message or no reaper can be started: the
// caller then runs spec under a per-run shim.
func (e *Executor) startAndWaitReaped(ctx context.Context, spec processSpec) (res processResult, ok bool, err error) {
	rc, rerr := e.reap.get(e.cfg.ShimPath)
	if rerr != nil {
		e.logger.WarnContext(ctx, "services' reaper unavailable; starting a shim per run", "error", rerr)
		return processResult{}, false, nil
	}
	id := rc.newID()
	msg, _ := json.Marshal(reaperRequest{ID: id, Argv: spec.argv, Env: spec.env, Dir: spec.dir}) // strings always encode
	if len(msg) > maxReaperMsg {
		return processResult{}, false, nil
	}
	if ctx.Err() != nil {
		return processResult{exitCode: -1, stopped: true}, true, nil
	}
	type stream struct {
		r, w *os.File
		to   io.Writer
	}
	// One pipe when both streams go to the same writer, as exec.Cmd does:
	// the writer then never sees two writes at once.
	streams := []*stream{{to: spec.stdout}}
	if !sameWriter(spec.stdout, spec.stderr) {
		streams = append(streams, &stream{to: spec.stderr})
	}
	for i, st := range streams {
		if st.r, st.w, err = os.Pipe(); err != nil {
			for _, o := range streams[:i] {
				o.r.Close()
				o.w.Close()
			}
			return processResult{exitCode: -1}, true, fmt.Errorf("output pipe: %w", err)
		}
		if st.to == nil {
			st.to = io.Discard
		}
	}
	outW, errW := streams[0].w, streams[len(streams)-1].w
	replies, err := rc.start(msg, id, outW, errW)
	var copying sync.WaitGroup
	for _, st := range streams {
		st.w.Close() // the service holds the write ends now (or nobody does)
		copying.Add(1)
		go func() {
			defer copying.Done()
			_, _ = io.Copy(st.to, st.r) // ends at EOF, or when the read end is closed below
		}()
	}
	finish := func() {
		// As exec.Cmd's WaitDelay: grandchildren holding the pipes get
		// KillGrace, then the pipes are closed under them.
		waited := make(chan struct{})
		go func() { copying.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(e.cfg.KillGrace):
		}
		for _, st := range streams {
			st.r.Close()
		}
		<-waited
	}
	if err != nil {
		finish()
		return processResult{exitCode: -1}, true, err
	}
	started, alive := <-replies
	if !alive {
		finish()
		return processResult{exitCode: -1}, true, errReaperGone
	}
	if started.Pid == 0 {
		finish()
		if ctx.Err() != nil {
			return processResult{exitCode: -1, stopped: true}, true, nil
		}
		if started.Errno != 0 { // as os/exec words it
			return processResult{exitCode: -1}, true, fmt.Errorf("fork/exec %s: %w", spec.argv[0], syscall.Errno(started.Errno))
		}
		return processResult{exitCode: -1}, true, errors.New(started.Err)
	}
	pgid := started.Pid
	var termAt time.Time
	var exited reaperReply
	var killTimer <-chan time.Time
	ctxDone := ctx.Done()
wait:
	for {
		select {
		case r, alive := <-replies:
			if !alive {
				finish()
				e.reapGroup(pgid, termAt)
				return processResult{exitCode: -1, stopped: !termAt.IsZero()}, true, errReaperGone
			}
			exited = r
			break wait
		case <-ctxDone:
			ctxDone = nil
			termAt = time.Now()
			_ = signalGroup(pgid, syscall.SIGTERM) // the group may have just emptied
			killTimer = time.After(e.cfg.KillGrace)
		case <-killTimer:
			killTimer = nil
			_ = signalGroup(pgid, syscall.SIGKILL) // as above
		}
	}
	finish()
	e.reapGroup(pgid, termAt)
	ws := syscall.WaitStatus(exited.Status)
	res = processResult{exitCode: -1, stopped: !termAt.IsZero()}
	switch {
	case ws.Exited():
		res.exitCode = ws.ExitStatus()
	case ws.Signaled():
		res.signal = ws.Signal()
	}
	return res, true, nil
}

// sameWriter reports whether a and b are the same writer (exec.Cmd's
// interfaceEqual: an uncomparable writer is never the same).
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
