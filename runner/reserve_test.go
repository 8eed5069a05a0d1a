package runner

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/runner/runnertest"
)

// Issue 15 item 3: a slot taken by Reserve counts against Concurrency like
// a received message, the run started in it is recorded without a claim
// write of its own, and Reserve refuses while Run is not receiving.
func TestReserveSharesSlots(t *testing.T) {
	h := newHarness(t, ok)
	var (
		running, peak atomic.Int32
		release       = make(chan struct{})
		mu            sync.Mutex
		ran           []string
	)
	h.exe = &runnertest.Executor{Fn: func(ctx context.Context, job executor.Job) (executor.Result, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		mu.Lock()
		ran = append(ran, job.ExecutionID)
		mu.Unlock()
		<-release
		return executor.Result{Status: execution.Succeeded}, nil
	}}
	q := queue.NewLocal()
	core, err := New(Config{Node: "runner-1", Catalog: h.cat, Source: q, Executor: h.exe, Repos: runnertest.Repos{},
		Clock: h.clk, Heartbeat: 10 * time.Second, Concurrency: 1, OnDone: func(e *execution.Execution) { h.done <- e }})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := core.Reserve(); ok {
		t.Fatal("Reserve before Run succeeded; want refused")
	}
	recvCtx, stopRecv := context.WithCancel(t.Context())
	defer stopRecv()
	runDone := make(chan error, 1)
	go func() { runDone <- core.Run(recvCtx, t.Context()) }()
	var r *Reservation
	for deadline := time.Now().Add(5 * time.Second); r == nil; {
		if time.Now().After(deadline) {
			t.Fatal("Reserve never succeeded while Run receives")
		}
		if got, ok := core.Reserve(); ok {
			r = got
		} else {
			time.Sleep(time.Millisecond) // Run starting: a polled condition with a deadline
		}
	}
	if _, ok := core.Reserve(); ok {
		t.Fatal("second Reserve with concurrency 1 succeeded; want refused")
	}

	// The claimed run, recorded in one write as the gateway does.
	now := h.clk.Now()
	claimed := &execution.Execution{ID: execution.NewID(now), Cluster: "c1", Service: "s", Status: execution.Queued, CreatedAt: now,
		Spec: &resource.Service{Meta: resource.Meta{Name: "s"}, Type: resource.Executable, Repository: "r", Filename: "x"}}
	if err := claimed.Start(core.Node(), core.HeartbeatEvery(), now); err != nil {
		t.Fatal(err)
	}
	if err := h.cat.CreateExecution(t.Context(), claimed); err != nil {
		t.Fatal(err)
	}
	r.Start(queue.Envelope{V: queue.EnvelopeVersion, ExecutionID: claimed.ID, Cluster: "c1", Service: "s"}, claimed)
	// A queued run sent meanwhile waits for the slot.
	m := h.submit(t, false)
	if err := q.Send(t.Context(), m.Envelope); err != nil {
		t.Fatal(err)
	}
	close(release)
	ended := map[string]*execution.Execution{}
	for range 2 {
		select {
		case e := <-h.done:
			ended[e.ID] = e
		case <-time.After(10 * time.Second):
			t.Fatalf("runs not finished: %v", ended)
		}
	}
	if p := peak.Load(); p != 1 {
		t.Errorf("peak concurrent runs = %d, want 1 (the reservation holds the only slot)", p)
	}
	mu.Lock()
	if len(ran) != 2 || ran[0] != claimed.ID {
		t.Errorf("ran %v, want the claimed run %s first, then the queued one", ran, claimed.ID)
	}
	mu.Unlock()
	for id, wantVersion := range map[string]int64{claimed.ID: 2, m.Envelope.ExecutionID: 3} {
		got, err := h.cat.Execution(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		// Claimed: created running, finished. Queued: created, claimed, finished.
		if got.Status != execution.Succeeded || got.Version != wantVersion || got.Attempt != 1 {
			t.Errorf("%s: %s version %d attempt %d; want succeeded at version %d, attempt 1", id, got.Status, got.Version, got.Attempt, wantVersion)
		}
	}
	stopRecv()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	if _, ok := core.Reserve(); ok {
		t.Error("Reserve after Run returned succeeded; want refused")
	}
}

// A cancelled reservation frees its slot.
func TestReserveCancelFreesSlot(t *testing.T) {
	h := newHarness(t, ok)
	core, err := New(Config{Node: "runner-1", Catalog: h.cat, Source: queue.NewLocal(), Executor: h.exe, Repos: runnertest.Repos{},
		Clock: h.clk, Heartbeat: 10 * time.Second, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	recvCtx, stopRecv := context.WithCancel(t.Context())
	runDone := make(chan error, 1)
	go func() { runDone <- core.Run(recvCtx, t.Context()) }()
	for n := 0; n < 3; n++ {
		var r *Reservation
		for deadline := time.Now().Add(5 * time.Second); r == nil; {
			if time.Now().After(deadline) {
				t.Fatalf("reservation %d: Reserve never succeeded; a cancelled one kept its slot", n)
			}
			if got, ok := core.Reserve(); ok {
				r = got
			} else {
				time.Sleep(time.Millisecond) // polled with a deadline
			}
		}
		r.Cancel()
		r.Cancel() // a second call is harmless
	}
	stopRecv()
	select {
	case err := <-runDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return: a reservation is still counted in its wait group")
	}
}
