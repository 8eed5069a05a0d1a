package gateway

import (
	"errors"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/queue"
)

// TestOpenRunsAdmission: the distributed backlog counts open runs through
// the status index, refuses beyond the limit without writing or sending
// anything, and admits again once a recount (at most every Every) finds
// room.
func TestOpenRunsAdmission(t *testing.T) {
	g, rec, clk := newGateway(t)
	ctx := t.Context()
	g.MaxBacklog = 3
	g.Backlog = &OpenRuns{Catalog: g.Catalog, Clock: clk, Every: time.Second}
	var ids []string
	for range 3 {
		e, err := g.Submit(ctx, RunRequest{Service: "s"})
		if err != nil {
			t.Fatalf("Submit under the limit: %v", err)
		}
		ids = append(ids, e.ID)
	}
	refused := func(what string, key string) {
		t.Helper()
		_, err := g.Submit(ctx, RunRequest{Service: "s", RequestKey: key, Submitter: "u"})
		var full *execution.BacklogFullError
		if !errors.Is(err, execution.ErrBacklogFull) || !errors.As(err, &full) || full.RetryAfter() <= 0 {
			t.Fatalf("%s: Submit = %v, want a backlog-full error with a retry-after", what, err)
		}
	}
	refused("at the limit", "k1")
	if n, err := g.Catalog.CountOpenExecutions(ctx); err != nil || n != 3 || len(rec.sent) != 3 {
		t.Fatalf("after a refusal: %d open (%v), %d sent; want 3 and 3: a refused run records and sends nothing", n, err, len(rec.sent))
	}
	if _, err := g.Cancel(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	// The bound errs high until the next count, which comes no sooner
	// than Every after the last.
	refused("before the recount", "k1")
	clk.Advance(time.Second)
	e, err := g.Submit(ctx, RunRequest{Service: "s", RequestKey: "k1", Submitter: "u"})
	if err != nil {
		t.Fatalf("Submit after a run finished and the recount: %v", err)
	}
	// The key was not bound by the refused submissions: this is a new run.
	for _, id := range ids {
		if e.ID == id {
			t.Fatalf("request key k1 named earlier execution %s", id)
		}
	}
	refused("full again", "")
}

// TestQueueBacklog: all-in-one admission reads the local queue's depth.
func TestQueueBacklog(t *testing.T) {
	g, _, _ := newGateway(t)
	q := queue.NewLocal()
	g.Queue, g.MaxBacklog, g.Backlog = q, 2, QueueBacklog{Queue: q}
	for range 2 {
		if _, err := g.Submit(t.Context(), RunRequest{Service: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.Submit(t.Context(), RunRequest{Service: "s"}); !errors.Is(err, execution.ErrBacklogFull) {
		t.Fatalf("third Submit = %v, want ErrBacklogFull", err)
	}
	if _, err := q.Receive(t.Context(), 1, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Submit(t.Context(), RunRequest{Service: "s"}); err != nil {
		t.Fatalf("Submit after one left the queue: %v", err)
	}
	if q.Depth() != 2 {
		t.Errorf("queue depth %d, want 2", q.Depth())
	}
}
