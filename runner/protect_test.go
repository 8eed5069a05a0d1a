package runner

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/ecsagent"
	"github.com/autogate/autogate/internal/ecsagent/ecsagenttest"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/logtest"
	"github.com/autogate/autogate/internal/queue"
)

// onceSource delivers its messages on the first Receive, then blocks.
type onceSource struct {
	fakeSource
	mu   sync.Mutex
	msgs []queue.Message
}

func (s *onceSource) Receive(ctx context.Context, max int, wait time.Duration) ([]queue.Message, error) {
	s.mu.Lock()
	msgs := s.msgs
	s.msgs = nil
	s.mu.Unlock()
	if len(msgs) > 0 {
		return msgs, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// protectedRun runs one blocking execution through Core.Run with a
// protector talking to a fake ECS agent answering replies.
type protectedRun struct {
	h       *harness
	agent   *ecsagenttest.Agent
	started chan struct{}
	finish  chan struct{}
	stop    func() error
	msg     queue.Message
	logs    *logtest.Counter
}

func startProtectedRun(t *testing.T, replies ...ecsagenttest.Reply) *protectedRun {
	t.Helper()
	p := &protectedRun{started: make(chan struct{}), finish: make(chan struct{}), logs: &logtest.Counter{}}
	p.h = newHarness(t, func(ctx context.Context, job executor.Job) (executor.Result, error) {
		close(p.started)
		select {
		case <-p.finish:
		case <-ctx.Done():
		}
		return ok(ctx, job)
	})
	agent, uri := ecsagenttest.Start(t, replies...)
	p.agent = agent
	client, err := ecsagent.New(uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.msg = p.h.submit(t, false)
	src := &onceSource{msgs: []queue.Message{p.msg}}
	p.h.core, err = New(Config{Node: "runner-1", Catalog: p.h.cat, Source: src, Executor: p.h.exe, Repos: p.h.core.cfg.Repos,
		Clock: p.h.clk, Heartbeat: 10 * time.Second, Protector: client, ProtectFor: 10 * time.Minute,
		Logger: slog.New(p.logs), OnDone: func(e *execution.Execution) { p.h.done <- e }})
	if err != nil {
		t.Fatal(err)
	}
	recvCtx, stopRecv := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.h.core.Run(recvCtx, t.Context()) }()
	p.stop = func() error { stopRecv(); return <-done }
	t.Cleanup(func() { stopRecv() })
	select {
	case <-p.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the execution did not start")
	}
	return p
}

// step waits for the clock's waiters to be back (the guard's loop, plus the
// run's heartbeat while a service runs), so no tick is skipped, then moves
// the fake clock one heartbeat.
func (p *protectedRun) step(t *testing.T, waiters int) {
	t.Helper()
	p.settle(t, waiters)
	p.h.clk.Advance(10 * time.Second)
}

func (p *protectedRun) settle(t *testing.T, waiters int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for p.h.clk.Waiters() < waiters {
		if time.Now().After(deadline) {
			t.Fatalf("%d clock waiters, want %d", p.h.clk.Waiters(), waiters)
		}
		time.Sleep(time.Millisecond)
	}
}

// advanceUntil steps until cond holds (at most limit of fake time) and
// returns the fake time that took.
func (p *protectedRun) advanceUntil(t *testing.T, waiters int, limit time.Duration, what string, cond func([]ecsagenttest.Call) bool) time.Duration {
	t.Helper()
	var moved time.Duration
	for {
		p.settle(t, waiters)
		if cond(p.agent.Calls()) {
			return moved
		}
		if moved >= limit {
			t.Fatalf("%s: not within %v of fake time; agent calls %+v", what, limit, p.agent.Calls())
		}
		p.step(t, waiters)
		moved += 10 * time.Second
	}
}

// waitCalls waits (real time) for the agent to have n calls.
func (p *protectedRun) waitCalls(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(p.agent.Calls()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("agent calls %+v, want %d", p.agent.Calls(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func calls(n int) func([]ecsagenttest.Call) bool {
	return func(c []ecsagenttest.Call) bool { return len(c) >= n }
}

var (
	enable10 = ecsagenttest.Call{Enabled: true, Minutes: 10, Fields: 2}
	disable  = ecsagenttest.Call{Enabled: false, Fields: 1}
)

func wantCalls(t *testing.T, got []ecsagenttest.Call, want ...ecsagenttest.Call) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("agent calls %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("agent call %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestProtectionWhileHoldingWork (issue 14.6): the task is protected before
// the service starts, the protection is renewed before it expires while the
// service runs, and dropped once the runner is idle.
func TestProtectionWhileHoldingWork(t *testing.T) {
	p := startProtectedRun(t)
	wantCalls(t, p.agent.Calls(), enable10) // before the service started
	took := p.advanceUntil(t, 2, 10*time.Minute, "renewal", calls(2))
	if took != 5*time.Minute {
		t.Errorf("renewed after %v of a 10m protection, want at half of it (5m), before it expires", took)
	}
	if took = p.advanceUntil(t, 2, 10*time.Minute, "second renewal", calls(3)); took != 5*time.Minute {
		t.Errorf("second renewal after %v, want 5m", took)
	}
	wantCalls(t, p.agent.Calls(), enable10, enable10, enable10)
	close(p.finish)
	if d := <-p.h.done; d.Status != execution.Succeeded {
		t.Fatalf("status %s", d.Status)
	}
	p.waitCalls(t, 4) // dropped as the message is settled
	wantCalls(t, p.agent.Calls(), enable10, enable10, enable10, disable)
	// Idle: nothing more, however long it stays idle.
	for range 360 { // an hour
		p.step(t, 1)
	}
	p.settle(t, 1)
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, p.agent.Calls(), enable10, enable10, enable10, disable)
}

// TestProtectionErrorsRetried: an agent that refuses (throttled, access
// denied) does not stop the run; the runner retries on the next tick, and
// a failed drop is retried too.
func TestProtectionErrorsRetried(t *testing.T) {
	p := startProtectedRun(t, ecsagenttest.Throttled, ecsagenttest.AccessDenied)
	// The first enable failed and the service started anyway.
	wantCalls(t, p.agent.Calls(), enable10)
	if took := p.advanceUntil(t, 2, time.Minute, "retries", calls(3)); took != 20*time.Second {
		t.Errorf("protected after %v, want a retry on each of the next two ticks (20s)", took)
	}
	// Now protected: no call until the renewal is due.
	for range 10 {
		p.step(t, 2)
	}
	p.settle(t, 2)
	wantCalls(t, p.agent.Calls(), enable10, enable10, enable10)
	if n := p.logs.Count("task scale-in protection"); n != 2 {
		t.Errorf("%d warnings about the failed calls, want 2", n)
	}
	close(p.finish)
	if d := <-p.h.done; d.Status != execution.Succeeded {
		t.Fatalf("status %s", d.Status)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, p.agent.Calls(), enable10, enable10, enable10, disable)
}

// fakeProtector records calls and fails while fail is set.
type fakeProtector struct {
	mu    sync.Mutex
	calls []bool
	fail  bool
}

func (f *fakeProtector) SetProtection(ctx context.Context, enabled bool, expires time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, enabled)
	if f.fail {
		return errors.New("agent down")
	}
	return nil
}

func (f *fakeProtector) got() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bool(nil), f.calls...)
}

// TestGuardHoldsWhileAnyWork: overlapping holds make one enable; the drop
// comes with the last release only; a failed drop is retried by a tick.
func TestGuardHoldsWhileAnyWork(t *testing.T) {
	h := newHarness(t, ok)
	fp := &fakeProtector{}
	g := newGuard(fp, h.clk, slog.New(slog.DiscardHandler), 10*time.Minute)
	r1 := g.hold(t.Context())
	r2 := g.hold(t.Context())
	r1()
	r1() // a second release of the same hold changes nothing
	if got := fp.got(); len(got) != 1 || !got[0] {
		t.Fatalf("calls %v, want one enable", got)
	}
	fp.fail = true
	r2()
	fp.fail = false
	g.sync(t.Context()) // the next tick
	g.sync(t.Context())
	if got := fp.got(); len(got) != 3 || got[1] || got[2] {
		t.Fatalf("calls %v, want enable, failed disable, disable", got)
	}
	if newGuard(nil, h.clk, slog.New(slog.DiscardHandler), time.Minute) != nil {
		t.Error("a guard without a protector")
	}
	var none *guard
	none.hold(t.Context())() // nil guard: no-op
}

func TestNewRejectsProtectionShorterThanHeartbeats(t *testing.T) {
	h := newHarness(t, ok)
	_, err := New(Config{Node: "r", Catalog: h.cat, Source: h.src, Executor: h.exe, Repos: h.core.cfg.Repos,
		Heartbeat: time.Minute, Protector: &fakeProtector{}, ProtectFor: time.Minute})
	if err == nil {
		t.Error("a 1m protection renewed at 30s with a 1m heartbeat was accepted")
	}
}
