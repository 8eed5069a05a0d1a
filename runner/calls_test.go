package runner

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

// countingStore counts the store calls the runner makes, by kind.
type countingStore struct {
	store.Store
	mu      sync.Mutex
	gets    map[resource.Kind]int
	updates map[resource.Kind]int
}

func (c *countingStore) Get(ctx context.Context, k store.Key) (store.Record, error) {
	c.mu.Lock()
	c.gets[k.Kind]++
	c.mu.Unlock()
	return c.Store.Get(ctx, k)
}

func (c *countingStore) Update(ctx context.Context, r store.Record) (store.Record, error) {
	c.mu.Lock()
	c.updates[r.Key.Kind]++
	c.mu.Unlock()
	return c.Store.Update(ctx, r)
}

func (c *countingStore) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets, c.updates = map[resource.Kind]int{}, map[resource.Kind]int{}
}

func (c *countingStore) counts() (gets, updates map[resource.Kind]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets, c.updates
}

// A delivery costs the runner one read of the record and two conditional
// writes from what it holds (claim, result): no read before either write,
// and no repository read when the record carries its snapshot. A message
// carrying the record (catalog.Snapshot) saves the read on its first
// delivery; a redelivery reads. A record written by someone else
// meanwhile costs one re-read, and the result still lands on the current
// version; a snapshot gone stale (canceled since) costs a failed claim and
// a read, and nothing runs.
func TestHandleStoreCalls(t *testing.T) {
	tests := []struct {
		name        string
		snapshot    bool // the record carries its repository
		interfere   bool // another writer changes the record mid-run
		inMessage   bool // the message carries the record
		redelivery  bool // ReceiveCount 2
		canceled    bool // canceled after the message was sent
		wantExecGet int
		wantExecUpd int
		wantRepoGet int
	}{
		{name: "record with repository snapshot", snapshot: true, wantExecGet: 1, wantExecUpd: 2, wantRepoGet: 0},
		{name: "record of an older release", snapshot: false, wantExecGet: 1, wantExecUpd: 2, wantRepoGet: 1},
		// The conflicting result write fails, then a re-read and a write.
		{name: "record changed during the run", snapshot: true, interfere: true, wantExecGet: 2, wantExecUpd: 3, wantRepoGet: 0},
		{name: "record in the message", snapshot: true, inMessage: true, wantExecGet: 0, wantExecUpd: 2, wantRepoGet: 0},
		{name: "record in the message, redelivered", snapshot: true, inMessage: true, redelivery: true, wantExecGet: 1, wantExecUpd: 2, wantRepoGet: 0},
		// The claim from the snapshot fails, the read shows it canceled.
		{name: "record in the message, canceled since", snapshot: true, inMessage: true, canceled: true, wantExecGet: 1, wantExecUpd: 1, wantRepoGet: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h *harness
			h = newHarness(t, func(ctx context.Context, job executor.Job) (executor.Result, error) {
				if tt.interfere {
					// Written through the raw catalog, not counted.
					if _, err := h.cat.MutateExecution(ctx, job.ExecutionID, func(x *execution.Execution) error {
						x.Resends++
						return nil
					}); err != nil {
						return executor.Result{}, err
					}
				}
				return ok(ctx, job)
			})
			cs := &countingStore{Store: h.cat.Store}
			counted := *h.cat
			counted.Store = cs
			var err error
			h.core, err = New(Config{Node: "runner-1", Catalog: &counted, Source: h.src, Executor: h.exe, Repos: h.core.cfg.Repos,
				Clock: h.clk, Heartbeat: h.core.cfg.Heartbeat, OnDone: func(e *execution.Execution) { h.done <- e }})
			if err != nil {
				t.Fatal(err)
			}
			m := h.submit(t, false)
			if tt.snapshot {
				if _, err := h.cat.MutateExecution(t.Context(), m.Envelope.ExecutionID, func(x *execution.Execution) error {
					x.Repository = &resource.Repository{Meta: resource.Meta{Name: "r"}, URL: "/srv/git/r"}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.inMessage {
				m.Envelope.Execution = catalog.Snapshot(h.get(t, m))
				if m.Envelope.Execution == nil {
					t.Fatal("no snapshot of a small record")
				}
			}
			if tt.redelivery {
				m.ReceiveCount = 2
			}
			want := execution.Succeeded
			if tt.canceled {
				want = execution.Canceled
				if _, err := h.cat.MutateExecution(t.Context(), m.Envelope.ExecutionID, func(x *execution.Execution) error {
					return x.Transition(execution.Canceled, h.clk.Now(), "canceled while queued")
				}); err != nil {
					t.Fatal(err)
				}
			}
			cs.reset()
			if got := h.core.Handle(t.Context(), m); got != Done {
				t.Fatalf("Handle = %v, want Done", got)
			}
			if e := h.get(t, m); e.Status != want || (!tt.canceled && e.Stdout.Data != "hi\n") || (tt.interfere && e.Resends != 1) {
				t.Fatalf("execution = %s %q resends %d, want %s", e.Status, e.Stdout.Data, e.Resends, want)
			}
			gets, updates := cs.counts()
			if gets[resource.KindExecution] != tt.wantExecGet || updates[resource.KindExecution] != tt.wantExecUpd || gets[resource.KindRepository] != tt.wantRepoGet {
				t.Errorf("execution reads %d, writes %d, repository reads %d; want %d, %d, %d",
					gets[resource.KindExecution], updates[resource.KindExecution], gets[resource.KindRepository],
					tt.wantExecGet, tt.wantExecUpd, tt.wantRepoGet)
			}
		})
	}
}

// A first delivery whose record expired after the message was sent: the
// claim from the snapshot finds no record, and the message is dropped
// (acked), as a read that found none would drop it; nothing runs.
func TestHandleSnapshotOfExpiredRecord(t *testing.T) {
	ran := false
	h := newHarness(t, func(ctx context.Context, job executor.Job) (executor.Result, error) {
		ran = true
		return ok(ctx, job)
	})
	m := h.submit(t, false)
	m.Envelope.Execution = catalog.Snapshot(h.get(t, m))
	h.clk.Advance(catalog.DefaultRetention + time.Hour)
	if got := h.core.Handle(t.Context(), m); got != Done || h.src.acks != 1 || ran {
		t.Errorf("Handle = %v, acks %d, ran %v; want Done, the message acked, nothing run", got, h.src.acks, ran)
	}
}
