package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
)

// recorder is a Dispatcher and Redriver double.
type recorder struct {
	sent     []queue.Envelope
	sendErr  error
	dead     []queue.Envelope
	redriven int
}

func (r *recorder) Send(ctx context.Context, env queue.Envelope) error {
	if r.sendErr != nil {
		return r.sendErr
	}
	r.sent = append(r.sent, env)
	return nil
}

func (r *recorder) Redrive(ctx context.Context, max int) (int, error) {
	r.redriven += len(r.dead)
	return len(r.dead), nil
}

func (r *recorder) DeadLetters(ctx context.Context, max int) ([]queue.Envelope, error) {
	return r.dead, nil
}

var (
	_ Dispatcher = (*recorder)(nil)
	_ Redriver   = (*recorder)(nil)
)

func newGateway(t *testing.T) (*Gateway, *recorder, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, _ := secret.NewKeyring(make([]byte, 32))
	cat := &catalog.Catalog{Store: st, Cluster: "c1", Keyring: kr, Clock: clk}
	rec := &recorder{}
	g := &Gateway{Catalog: cat, Queue: rec, Clock: clk, Logger: slog.New(slog.DiscardHandler), Node: "gw", Redriver: rec}
	ctx := t.Context()
	if err := g.Create(ctx, &resource.Repository{Meta: resource.Meta{Name: "r"}, URL: "/srv/r"}); err != nil {
		t.Fatal(err)
	}
	if err := g.Create(ctx, &resource.Service{Meta: resource.Meta{Name: "s"}, Type: resource.Executable, Repository: "r", Filename: "x", TimeoutSeconds: 600}); err != nil {
		t.Fatal(err)
	}
	return g, rec, clk
}

func TestSubmitSurvivesSendFailure(t *testing.T) {
	g, rec, clk := newGateway(t)
	rec.sendErr = errors.New("queue unreachable")
	e, err := g.Submit(t.Context(), RunRequest{Service: "s"})
	if err != nil {
		t.Fatalf("Submit with a failing send: %v (the record exists, so the run is accepted)", err)
	}
	rec.sendErr = nil
	// Too young to re-send yet.
	if resent, failed, err := sweepTimes(g, t.Context(), 2*time.Minute, 5*time.Minute); err != nil || resent+failed != 0 {
		t.Fatalf("early Sweep = %d, %d, %v", resent, failed, err)
	}
	clk.Advance(3 * time.Minute)
	if resent, _, err := sweepTimes(g, t.Context(), 2*time.Minute, 5*time.Minute); err != nil || resent != 1 || len(rec.sent) != 1 || rec.sent[0].ExecutionID != e.ID {
		t.Fatalf("Sweep = %d resent (%v), sent %v; want the orphan re-sent", resent, err, rec.sent)
	}
	// Past its deadline (timeout 10 min + 1 min) it is failed with a reason.
	clk.Advance(time.Hour)
	if _, failed, err := sweepTimes(g, t.Context(), 2*time.Minute, 5*time.Minute); err != nil || failed != 1 {
		t.Fatalf("late Sweep failed %d, %v; want 1", failed, err)
	}
	got, _ := g.Catalog.Execution(t.Context(), e.ID)
	if got.Status != execution.Failed || got.Reason == "" {
		t.Errorf("status %s reason %q, want failed with a reason", got.Status, got.Reason)
	}
}

func TestMarkDeadLetters(t *testing.T) {
	g, rec, clk := newGateway(t)
	e, err := g.Submit(t.Context(), RunRequest{Service: "s"})
	if err != nil {
		t.Fatal(err)
	}
	rec.dead = []queue.Envelope{rec.sent[0], {V: 1, ExecutionID: "other", Cluster: "c2"}}
	n, err := g.MarkDeadLetters(t.Context(), 10)
	if err != nil || n != 1 {
		t.Fatalf("MarkDeadLetters = %d, %v; want 1", n, err)
	}
	got, _ := g.Catalog.Execution(t.Context(), e.ID)
	if !got.DeadLettered || got.Reason == "" {
		t.Errorf("execution not marked: %+v", got)
	}
	// The sweeper leaves it alone: re-sending would only dead-letter it again.
	clk.Advance(3 * time.Minute)
	if resent, _, _ := sweepTimes(g, t.Context(), 2*time.Minute, 5*time.Minute); resent != 0 {
		t.Errorf("Sweep re-sent a dead-lettered execution")
	}
	if moved, err := g.Redrive(t.Context(), 10); err != nil || moved != 2 {
		t.Errorf("Redrive = %d, %v", moved, err)
	}
	// A successful claim clears the mark.
	if err := got.Claim("runner", clk.Now()); err != nil || got.DeadLettered || got.Reason != "" {
		t.Errorf("after Claim: deadLettered %v reason %q, err %v", got.DeadLettered, got.Reason, err)
	}
}

func TestRedriveLocal(t *testing.T) {
	g, _, _ := newGateway(t)
	g.Redriver = nil
	if _, err := g.Redrive(t.Context(), 1); !errors.Is(err, ErrNoDLQ) {
		t.Errorf("Redrive without a DLQ = %v, want ErrNoDLQ", err)
	}
}

func TestSweepStaleRunning(t *testing.T) {
	for _, retryable := range []bool{false, true} {
		g, rec, clk := newGateway(t)
		svc, _ := g.Catalog.Service(t.Context(), "s")
		svc.Retryable = retryable
		if err := g.Update(t.Context(), svc); err != nil {
			t.Fatal(err)
		}
		e, err := g.Submit(t.Context(), RunRequest{Service: "s"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Catalog.MutateExecution(t.Context(), e.ID, func(x *execution.Execution) error {
			return x.Claim("runner-gone", clk.Now())
		}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(4 * time.Minute)
		if resent, failed, _ := sweepTimes(g, t.Context(), 2*time.Minute, 5*time.Minute); resent+failed != 0 {
			t.Fatalf("a fresh-enough running execution was swept")
		}
		clk.Advance(2 * time.Minute)
		resent, failed, err := sweepTimes(g, t.Context(), 2*time.Minute, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := g.Catalog.Execution(t.Context(), e.ID)
		want, wantResent := execution.Lost, 0
		if retryable {
			want, wantResent = execution.Queued, 1
		}
		if got.Status != want || resent != wantResent || resent+failed != 1 || len(rec.sent) != 1+wantResent {
			t.Errorf("retryable=%v: status %s, resent %d failed %d, sent %d; want %s", retryable, got.Status, resent, failed, len(rec.sent), want)
		}
	}
}

// A short-timeout run whose message is lost before any claim is re-sent once
// the queue's visibility timeout says so, however short its timeout, and is
// failed unstarted only at its start-by time, with a reason saying so.
func TestSweepStartBy(t *testing.T) {
	g, rec, clk := newGateway(t)
	g.StartWindow = 10 * time.Minute
	svc, _ := g.Catalog.Service(t.Context(), "s")
	svc.TimeoutSeconds = 30
	if err := g.Update(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	e, err := g.Submit(t.Context(), RunRequest{Service: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if want := e.CreatedAt.Add(10 * time.Minute); !e.StartBy.Equal(want) {
		t.Fatalf("StartBy %v, want submission + window %v", e.StartBy, want)
	}
	resendAfter := PresumedLostAfter(2 * time.Second)
	sweep := func() (int, int) {
		t.Helper()
		r, f, err := sweepTimes(g, t.Context(), resendAfter, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return r, f
	}
	if r, f := sweep(); r+f != 0 {
		t.Fatalf("fresh run swept: resent %d failed %d", r, f)
	}
	clk.Advance(resendAfter)
	if r, f := sweep(); r != 1 || f != 0 || len(rec.sent) != 2 {
		t.Fatalf("after the visibility timeout: resent %d failed %d sent %d; want one re-send", r, f, len(rec.sent))
	}
	clk.Advance(resendAfter / 2)
	if r, _ := sweep(); r != 0 {
		t.Fatalf("re-sent again %v after the last re-send", resendAfter/2)
	}
	// Past timeout + 1 min (the old deadline) it is still waiting, not failed.
	clk.Advance(2 * time.Minute)
	if r, f := sweep(); r != 1 || f != 0 {
		t.Fatalf("past the run deadline: resent %d failed %d; want re-sent, not failed", r, f)
	}
	got, _ := g.Catalog.Execution(t.Context(), e.ID)
	if got.Status != execution.Queued || got.Resends != 2 {
		t.Fatalf("status %s resends %d, want queued after 2 re-sends", got.Status, got.Resends)
	}
	clk.Advance(10 * time.Minute)
	if r, f := sweep(); r != 0 || f != 1 {
		t.Fatalf("past start-by: resent %d failed %d; want failed", r, f)
	}
	got, _ = g.Catalog.Execution(t.Context(), e.ID)
	if got.Status != execution.Failed || !strings.Contains(got.Reason, "start-by") || !strings.Contains(got.Reason, "re-sent 2 time") {
		t.Errorf("status %s reason %q; want failed, naming the start-by time and the re-sends", got.Status, got.Reason)
	}
}

// TestSubmitOverMaxTimeout: a service stored before the cluster's limit
// was lowered is refused at run time, and nothing is recorded or sent.
func TestSubmitOverMaxTimeout(t *testing.T) {
	g, rec, _ := newGateway(t) // service s declares 600 s
	g.MaxServiceTimeout = 5 * time.Minute
	_, err := g.Submit(t.Context(), RunRequest{Service: "s"})
	if !errors.Is(err, ErrTimeoutTooLong) {
		t.Fatalf("Submit = %v, want ErrTimeoutTooLong", err)
	}
	if es, _, _ := g.ListExecutions(t.Context(), ExecutionFilter{}, store.ListOptions{}); len(es) != 0 || len(rec.sent) != 0 {
		t.Errorf("a refused run left %d executions and %d messages", len(es), len(rec.sent))
	}
	g.MaxServiceTimeout = 10 * time.Minute
	if _, err := g.Submit(t.Context(), RunRequest{Service: "s"}); err != nil {
		t.Errorf("Submit at the limit = %v", err)
	}
}

// sweepTimes is one Sweep pass judged by time alone (queue depth unknown),
// as (re-sent, failed, error).
func sweepTimes(g *Gateway, ctx context.Context, resendAfter, staleAfter time.Duration) (int, int, error) {
	r, err := g.Sweep(ctx, SweepPolicy{ResendAfter: resendAfter, StaleAfter: staleAfter, InQueue: -1})
	return r.Resent, r.Failed, err
}

// Issue 17 item 2: a queued run presumed lost by time alone is not sent
// again while the queue holds a message for every open run (a backlog no
// runner drains yet); once the queue holds fewer, the presumed-lost ones
// are.
func TestSweepResendsOnlyWhatMayBeLost(t *testing.T) {
	g, rec, clk := newGateway(t)
	for range 3 {
		if _, err := g.Submit(t.Context(), RunRequest{Service: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	running, err := g.Submit(t.Context(), RunRequest{Service: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Catalog.MutateExecution(t.Context(), running.ID, func(x *execution.Execution) error {
		return x.Start("runner-1", time.Hour, clk.Now())
	}); err != nil {
		t.Fatal(err)
	}
	sent := len(rec.sent)
	clk.Advance(time.Minute)
	pol := SweepPolicy{ResendAfter: 30 * time.Second, StaleAfter: 5 * time.Minute}
	for _, tt := range []struct {
		inQueue, wantResent, wantSkipped int
	}{
		{4, 0, 3},  // one message per open run, the running one's in flight
		{9, 0, 3},  // duplicates: still nothing missing
		{3, 3, 0},  // one is missing: which one, the queue cannot say
		{-1, 3, 0}, // depth unknown: time alone decides
	} {
		pol.InQueue = tt.inQueue
		clk.Advance(time.Minute) // past ResendAfter since the last re-send too
		r, err := g.Sweep(t.Context(), pol)
		if err != nil {
			t.Fatal(err)
		}
		if r.Resent != tt.wantResent || r.Skipped != tt.wantSkipped || len(rec.sent)-sent != tt.wantResent {
			t.Errorf("in queue %d: resent %d skipped %d (sent %d); want %d re-sent, %d skipped",
				tt.inQueue, r.Resent, r.Skipped, len(rec.sent)-sent, tt.wantResent, tt.wantSkipped)
		}
		sent = len(rec.sent)
	}
}

// Issue 17 item 2 at a take-over: with a durable queue Reconcile sends
// nothing (the messages are still in the queue or in flight); with the
// in-process queue, which starts each term empty, it sends the queued runs
// and never a running one (its holder heartbeats it, or Sweep finds it
// stale).
func TestReconcileSendsOnlyWhatMayBeLost(t *testing.T) {
	for _, durable := range []bool{true, false} {
		g, rec, clk := newGateway(t)
		g.DurableQueue = durable
		queued, err := g.Submit(t.Context(), RunRequest{Service: "s"})
		if err != nil {
			t.Fatal(err)
		}
		running, err := g.Submit(t.Context(), RunRequest{Service: "s"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Catalog.MutateExecution(t.Context(), running.ID, func(x *execution.Execution) error {
			return x.Start("gw-old", time.Second, clk.Now())
		}); err != nil {
			t.Fatal(err)
		}
		rec.sent = nil
		n, err := g.Reconcile(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case durable && (n != 0 || len(rec.sent) != 0):
			t.Errorf("durable queue: Reconcile sent %d (%v); want none", n, rec.sent)
		case !durable && (n != 1 || len(rec.sent) != 1 || rec.sent[0].ExecutionID != queued.ID):
			t.Errorf("in-process queue: Reconcile sent %d (%v); want only the queued run %s", n, rec.sent, queued.ID)
		}
	}
}

// A pass reports when the earliest running attempt turns stale, so the
// sweep loop declares a dead holder's attempt lost then and not a sweep
// interval later.
func TestSweepNextStale(t *testing.T) {
	g, _, clk := newGateway(t)
	var ids []string
	for range 2 {
		e, err := g.Submit(t.Context(), RunRequest{Service: "s"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	pol := SweepPolicy{ResendAfter: time.Hour, StaleAfter: 3 * time.Second, InQueue: -1}
	if r, err := g.Sweep(t.Context(), pol); err != nil || !r.NextStale.IsZero() {
		t.Fatalf("nothing running: NextStale %v, %v; want zero", r.NextStale, err)
	}
	first := clk.Now()
	for _, id := range ids {
		if _, err := g.Catalog.MutateExecution(t.Context(), id, func(x *execution.Execution) error {
			return x.Start("runner-1", time.Second, clk.Now())
		}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	r, err := g.Sweep(t.Context(), pol)
	if want := first.Add(3 * time.Second); err != nil || !r.NextStale.Equal(want) {
		t.Fatalf("NextStale %v, %v; want the first start + 3s = %v", r.NextStale, err, want)
	}
	clk.Advance(r.NextStale.Sub(clk.Now()))
	if r, err := g.Sweep(t.Context(), pol); err != nil || r.Failed != 1 {
		t.Errorf("at NextStale: failed %d, %v; want the first attempt lost", r.Failed, err)
	}
}

// The record carries the repository as it was at submission, so the runner
// that claims it reads no repository record (and an edit after the
// submission changes nothing for this run, as with the service's Spec).
func TestSubmitSnapshotsRepository(t *testing.T) {
	g, _, _ := newGateway(t)
	e, err := g.Submit(t.Context(), RunRequest{Service: "s"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.Catalog.Execution(t.Context(), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Repository == nil || got.Repository.Name != "r" || got.Repository.URL != "/srv/r" || got.Repository.Version == 0 {
		t.Errorf("recorded repository = %+v, want r at /srv/r with its version", got.Repository)
	}
}

// TestWaitPollsARemoteResult checks Wait's backoff for a result written by
// a remote runner (no Notify): the first re-read comes waitFirstPoll after
// the first read, not sooner, and finds the run ended.
func TestWaitPollsARemoteResult(t *testing.T) {
	g, _, clk := newGateway(t)
	e, err := g.Submit(t.Context(), RunRequest{Service: "s"})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		e   *execution.Execution
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := g.Wait(t.Context(), e.ID)
		done <- result{got, err}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("Wait's first poll timer", func() bool { return clk.Waiters() == 1 })
	// The run ends on a remote runner: the record changes, nobody notifies.
	if _, err := g.Catalog.MutateExecution(t.Context(), e.ID, func(x *execution.Execution) error {
		return x.FailUnstarted(clk.Now(), "ended elsewhere")
	}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(waitFirstPoll - time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("Wait returned before its first poll time: %+v", r)
	default:
	}
	clk.Advance(time.Millisecond)
	select {
	case r := <-done:
		if r.err != nil || r.e.Status != execution.Failed {
			t.Fatalf("Wait = %+v, %v; want the failed record", r.e, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not re-read the record at its first poll time")
	}
}

// TestDispatchCarriesRecordSnapshot: the message carries the record as
// written (so the runner claims without a read), and a sensitive input is
// in it only sealed: its plaintext is nowhere in the message.
func TestDispatchCarriesRecordSnapshot(t *testing.T) {
	g, rec, _ := newGateway(t)
	ctx := t.Context()
	const plain = "s3cr3t-Pa55word-in-input"
	if err := g.Create(ctx, &resource.Decorator{Meta: resource.Meta{Name: "d"}, Schema: map[string]any{
		"type": "object", "properties": map[string]any{"password": map[string]any{"type": "string", "writeOnly": true}, "host": map[string]any{"type": "string"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := g.Create(ctx, &resource.Service{Meta: resource.Meta{Name: "sd"}, Type: resource.Executable, Repository: "r", Filename: "x", Decorator: "d"}); err != nil {
		t.Fatal(err)
	}
	e, err := g.Submit(ctx, RunRequest{Service: "sd", Inputs: map[string]any{"password": plain, "host": "h1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.sent) != 1 {
		t.Fatalf("sent %d messages, want 1", len(rec.sent))
	}
	raw, err := json.Marshal(rec.sent[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), plain) {
		t.Fatalf("the message holds the sensitive input in clear: %s", raw)
	}
	snap, err := g.Catalog.FromSnapshot(e.ID, rec.sent[0].Execution)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	stored, err := g.Catalog.Execution(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != stored.Version || snap.Status != execution.Queued || snap.Inputs["host"] != "h1" || len(snap.SealedInputs) == 0 {
		t.Errorf("snapshot v%d %s inputs %v sealed %d bytes; want the stored v%d, queued, host h1, sealed inputs",
			snap.Version, snap.Status, snap.Inputs, len(snap.SealedInputs), stored.Version)
	}
	if in, err := g.Catalog.OpenInputs(ctx, snap); err != nil || in["password"] != plain {
		t.Errorf("sealed inputs of the snapshot open to %v, %v", in, err)
	}
	// A snapshot of another execution is refused, so a runner reads instead.
	if _, err := g.Catalog.FromSnapshot("01JD0000000000000000000000", rec.sent[0].Execution); err == nil {
		t.Error("FromSnapshot accepted a snapshot of another execution")
	}
}
