package runner

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/internal/store/fence"
	"github.com/autogate/autogate/runner/runnertest"
)

// fakeSource records what the core does with messages.
type fakeSource struct {
	mu       sync.Mutex
	acks     int
	releases []time.Duration
}

func (f *fakeSource) Receive(ctx context.Context, max int, wait time.Duration) ([]queue.Message, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (f *fakeSource) Extend(ctx context.Context, m queue.Message, d time.Duration) error { return nil }
func (f *fakeSource) Ack(ctx context.Context, m queue.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acks++
	return nil
}
func (f *fakeSource) Release(ctx context.Context, m queue.Message, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releases = append(f.releases, d)
	return nil
}

var _ Source = (*fakeSource)(nil)

type harness struct {
	cat  *catalog.Catalog
	clk  *clock.Fake
	src  *fakeSource
	exe  *runnertest.Executor
	core *Core
	done chan *execution.Execution
}

func newHarness(t *testing.T, fn func(ctx context.Context, job executor.Job) (executor.Result, error)) *harness {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, _ := secret.NewKeyring(make([]byte, 32))
	h := &harness{
		cat: &catalog.Catalog{Store: st, Cluster: "c1", Keyring: kr, Clock: clk},
		clk: clk, src: &fakeSource{}, exe: &runnertest.Executor{Fn: fn}, done: make(chan *execution.Execution, 16),
	}
	if err := h.cat.Create(t.Context(), &resource.Repository{Meta: resource.Meta{Name: "r"}, URL: "/srv/git/r"}); err != nil {
		t.Fatal(err)
	}
	h.core, err = New(Config{Node: "runner-1", Catalog: h.cat, Source: h.src, Executor: h.exe, Repos: runnertest.Repos{},
		Clock: clk, Heartbeat: 10 * time.Second, OnDone: func(e *execution.Execution) { h.done <- e }})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func ok(ctx context.Context, job executor.Job) (executor.Result, error) {
	return executor.Result{Status: execution.Succeeded, Stdout: execution.Output{Data: "hi\n"}}, nil
}

// submit records a queued execution and returns its message.
func (h *harness) submit(t *testing.T, retryable bool) queue.Message {
	t.Helper()
	now := h.clk.Now()
	e := &execution.Execution{ID: execution.NewID(now), Cluster: "c1", Service: "s", Status: execution.Queued, CreatedAt: now,
		Spec: &resource.Service{Meta: resource.Meta{Name: "s"}, Type: resource.Executable, Repository: "r", Filename: "x", Retryable: retryable}}
	if err := h.cat.CreateExecution(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	return queue.Message{Envelope: queue.Envelope{V: queue.EnvelopeVersion, ExecutionID: e.ID, Cluster: "c1", Service: "s"}, Receipt: "r1", ReceiveCount: 1}
}

func (h *harness) get(t *testing.T, m queue.Message) *execution.Execution {
	t.Helper()
	e, err := h.cat.Execution(t.Context(), m.Envelope.ExecutionID)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestHandleRunsAndRecords(t *testing.T) {
	h := newHarness(t, ok)
	m := h.submit(t, false)
	if got := h.core.Handle(t.Context(), m); got != Done {
		t.Fatalf("Handle = %v, want Done", got)
	}
	e := h.get(t, m)
	if e.Status != execution.Succeeded || e.Node != "runner-1" || e.Attempt != 1 || e.Stdout.Data != "hi\n" || e.Commit == "" {
		t.Errorf("execution = %+v", e)
	}
	if h.src.acks != 1 {
		t.Errorf("acks = %d, want 1", h.src.acks)
	}
	if d := <-h.done; d.ID != e.ID || d.Status != execution.Succeeded {
		t.Errorf("OnDone got %s %s", d.ID, d.Status)
	}
	// A redelivery of a finished execution is acknowledged and runs nothing.
	if got := h.core.Handle(t.Context(), m); got != Done || h.exe.Calls.Load() != 1 {
		t.Errorf("redelivery: Handle = %v, executor calls %d; want Done and 1", got, h.exe.Calls.Load())
	}
}

func TestDuplicateDeliveryRunsOnce(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, func(ctx context.Context, job executor.Job) (executor.Result, error) {
		<-release
		return ok(ctx, job)
	})
	m := h.submit(t, false)
	const n = 6
	outcomes := make(chan Outcome, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); outcomes <- h.core.Handle(t.Context(), m) }()
	}
	// All but the one claimant are dropped (acknowledged) while it runs, or
	// lost the claim race and were handed back.
	for range n - 1 {
		if o := <-outcomes; o == Failed {
			t.Errorf("duplicate delivery outcome %v", o)
		}
	}
	close(release)
	wg.Wait()
	if o := <-outcomes; o != Done {
		t.Errorf("claimant outcome %v, want Done", o)
	}
	if c := h.exe.Calls.Load(); c != 1 {
		t.Fatalf("service started %d times for %d deliveries, want 1", c, n)
	}
}

func TestStaleRunningMarkedLost(t *testing.T) {
	tests := []struct {
		name      string
		retryable bool
		want      execution.Status
		calls     int32
		attempt   int
	}{
		{"not retryable", false, execution.Lost, 0, 1},
		{"retryable runs again", true, execution.Succeeded, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, ok)
			m := h.submit(t, tt.retryable)
			// Another runner claimed it and died.
			if _, err := h.cat.MutateExecution(t.Context(), m.Envelope.ExecutionID, func(x *execution.Execution) error {
				return x.Claim("runner-dead", h.clk.Now())
			}); err != nil {
				t.Fatal(err)
			}
			// While its heartbeat is fresh, a redelivery is a duplicate: dropped.
			if got := h.core.Handle(t.Context(), m); got != Done || h.exe.Calls.Load() != 0 {
				t.Fatalf("fresh running: Handle = %v (calls %d), want Done without running", got, h.exe.Calls.Load())
			}
			h.clk.Advance(31 * time.Second)
			if got := h.core.Handle(t.Context(), m); got != Done {
				t.Fatalf("stale running: Handle = %v, want Done", got)
			}
			e := h.get(t, m)
			if e.Status != tt.want || h.exe.Calls.Load() != tt.calls || e.Attempt != tt.attempt {
				t.Errorf("status %s, executor calls %d, attempt %d; want %s, %d, %d (reason %q)",
					e.Status, h.exe.Calls.Load(), e.Attempt, tt.want, tt.calls, tt.attempt, e.Reason)
			}
		})
	}
}

func TestCancelWhileRunning(t *testing.T) {
	started := make(chan struct{})
	h := newHarness(t, func(ctx context.Context, job executor.Job) (executor.Result, error) {
		close(started)
		<-ctx.Done()
		return executor.Result{Status: execution.Canceled, ExitCode: -1, Reason: "canceled"}, nil
	})
	m := h.submit(t, false)
	res := make(chan Outcome, 1)
	go func() { res <- h.core.Handle(t.Context(), m) }()
	<-started
	if !h.core.Cancel(m.Envelope.ExecutionID) {
		t.Fatal("Cancel found nothing running")
	}
	if o := <-res; o != Done {
		t.Fatalf("Handle = %v", o)
	}
	if e := h.get(t, m); e.Status != execution.Canceled {
		t.Errorf("status %s, want canceled", e.Status)
	}
	if h.core.Cancel(m.Envelope.ExecutionID) {
		t.Error("Cancel of a finished execution reported success")
	}
}

func TestCancelRequestedOnRecord(t *testing.T) {
	h := newHarness(t, ok)
	m := h.submit(t, false)
	if _, err := h.cat.MutateExecution(t.Context(), m.Envelope.ExecutionID, func(x *execution.Execution) error {
		x.CancelRequested = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := h.core.Handle(t.Context(), m); got != Done {
		t.Fatalf("Handle = %v", got)
	}
	if e := h.get(t, m); e.Status != execution.Canceled || h.exe.Calls.Load() != 0 {
		t.Errorf("status %s, calls %d; want canceled before start", e.Status, h.exe.Calls.Load())
	}
}

func TestShutdownMidRun(t *testing.T) {
	for _, retryable := range []bool{false, true} {
		started := make(chan struct{})
		h := newHarness(t, func(ctx context.Context, job executor.Job) (executor.Result, error) {
			close(started)
			<-ctx.Done()
			return executor.Result{Status: execution.Canceled, ExitCode: -1}, nil
		})
		m := h.submit(t, retryable)
		ctx, cancel := context.WithCancel(t.Context())
		res := make(chan Outcome, 1)
		go func() { res <- h.core.Handle(ctx, m) }()
		<-started
		cancel()
		o := <-res
		e := h.get(t, m)
		want, wantO := execution.Lost, Done
		if retryable {
			want, wantO = execution.Queued, Requeued
		}
		if e.Status != want || o != wantO {
			t.Errorf("retryable=%v: status %s outcome %v; want %s %v", retryable, e.Status, o, want, wantO)
		}
	}
}

func TestSetupErrorFails(t *testing.T) {
	h := newHarness(t, func(ctx context.Context, job executor.Job) (executor.Result, error) {
		return executor.Result{Status: execution.Failed, ExitCode: -1}, errors.New("tofu not found: install OpenTofu")
	})
	m := h.submit(t, false)
	h.core.Handle(t.Context(), m)
	if e := h.get(t, m); e.Status != execution.Failed || e.Reason != "tofu not found: install OpenTofu" {
		t.Errorf("status %s reason %q", e.Status, e.Reason)
	}
}

func TestBadMessages(t *testing.T) {
	h := newHarness(t, ok)
	tests := []struct {
		name string
		env  queue.Envelope
		want Outcome
	}{
		{"unknown version", queue.Envelope{V: 99, ExecutionID: "x", Cluster: "c1"}, Failed},
		{"other cluster", queue.Envelope{V: 1, ExecutionID: execution.NewID(time.Now()), Cluster: "c2"}, Failed},
		{"unknown execution", queue.Envelope{V: 1, ExecutionID: execution.NewID(time.Now()), Cluster: "c1"}, Done},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.core.Handle(t.Context(), queue.Message{Envelope: tt.env}); got != tt.want {
				t.Errorf("Handle = %v, want %v", got, tt.want)
			}
		})
	}
	if h.exe.Calls.Load() != 0 {
		t.Error("a bad message started a service")
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New with no node succeeded")
	}
	h := newHarness(t, ok)
	if _, err := New(Config{Node: "n", Catalog: h.cat, Source: h.src, Executor: h.exe, Repos: runnertest.Repos{},
		Heartbeat: time.Minute, StaleAfter: time.Second}); err == nil {
		t.Error("stale-after below heartbeat accepted")
	}
}

// Issue 12 item 2: with Claims fenced by a gateway's term, a claim after the
// term ended starts nothing and changes nothing, while a run claimed during
// the term still records its result (through Catalog, under the record's
// own guard).
func TestClaimFencedByTerm(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, func(ctx context.Context, job executor.Job) (executor.Result, error) {
		<-release
		return ok(ctx, job)
	})
	shared := fence.New(h.cat.Store)
	termCtx, endTerm := context.WithCancel(t.Context())
	shared.Begin(termCtx, h.cat.Store)
	core, err := New(Config{Node: "gw-1", Catalog: h.cat, Claims: &catalog.Catalog{Store: shared, Cluster: "c1", Keyring: h.cat.Keyring, Clock: h.clk},
		Source: h.src, Executor: h.exe, Repos: runnertest.Repos{}, Clock: h.clk, Heartbeat: 10 * time.Second,
		OnDone: func(e *execution.Execution) { h.done <- e }})
	if err != nil {
		t.Fatal(err)
	}
	during, after := h.submit(t, false), h.submit(t, false)
	outcome := make(chan Outcome, 1)
	go func() { outcome <- core.Handle(t.Context(), during) }()
	for h.exe.Calls.Load() != 1 {
		time.Sleep(time.Millisecond) // polling for the service start, not synchronising on time
	}
	endTerm()
	if got := core.Handle(t.Context(), after); got != Failed {
		t.Errorf("Handle after the term = %v, want Failed (the claim is refused)", got)
	}
	if e := h.get(t, after); e.Status != execution.Queued || e.Node != "" || h.exe.Calls.Load() != 1 {
		t.Errorf("after the term: %s on %q, %d services started; want queued, unclaimed, only the earlier one started", e.Status, e.Node, h.exe.Calls.Load())
	}
	close(release)
	if got := <-outcome; got != Done {
		t.Errorf("the run started during the term: %v, want Done", got)
	}
	if e := h.get(t, during); e.Status != execution.Succeeded || e.Node != "gw-1" {
		t.Errorf("the run started during the term: %s on %q, want succeeded on gw-1", e.Status, e.Node)
	}
}

// A runner told nothing heartbeats at execution.DefaultHeartbeat, and keeps
// its messages hidden, and judges others stale, by the one stale-after
// policy (the Lambda runner and `autogate runner` take these defaults).
func TestDefaultHeartbeat(t *testing.T) {
	h := newHarness(t, nil)
	c, err := New(Config{Node: "runner-2", Catalog: h.cat, Source: h.src, Executor: h.exe, Repos: runnertest.Repos{}, Clock: h.clk})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Heartbeat != execution.DefaultHeartbeat {
		t.Errorf("heartbeat: got %v, want %v", c.cfg.Heartbeat, execution.DefaultHeartbeat)
	}
	want := execution.StaleAfter(execution.DefaultHeartbeat)
	if c.cfg.StaleAfter != want || c.cfg.Visibility != want || DefaultVisibility(execution.DefaultHeartbeat) != want {
		t.Errorf("stale-after %v, visibility %v: want both %v", c.cfg.StaleAfter, c.cfg.Visibility, want)
	}
}
