package handler_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/autogate/autogate/functions/runner/handler"
	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/runner"
	"github.com/autogate/autogate/runner/runnertest"
)

// outcomeHook wraps the real core and reports every outcome.
type outcomeHook struct {
	core *runner.Core
	on   func(runner.Outcome)
}

func (o outcomeHook) Handle(ctx context.Context, m queue.Message) runner.Outcome {
	out := o.core.Handle(ctx, m)
	o.on(out)
	return out
}

// coreFixture is the real runner core on a bolt catalog, taking messages
// from the SQS queue on fauxqs.
type coreFixture struct {
	*fixture
	cat  *catalog.Catalog
	exe  *runnertest.Executor
	core *runner.Core
}

func newCoreFixture(t *testing.T, run func(ctx context.Context, job executor.Job) (executor.Result, error)) *coreFixture {
	t.Helper()
	clk := clock.Real{}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := secret.NewKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &coreFixture{fixture: newFixture(t), cat: &catalog.Catalog{Store: st, Cluster: "c1", Keyring: kr, Clock: clk},
		exe: &runnertest.Executor{Fn: run}}
	if err := f.cat.Create(t.Context(), &resource.Repository{Meta: resource.Meta{Name: "r"}, URL: "/srv/git/r"}); err != nil {
		t.Fatal(err)
	}
	f.core, err = runner.New(runner.Config{Node: "lambda-1", Catalog: f.cat, Source: f.q, Executor: f.exe, Repos: runnertest.Repos{}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// submit records a queued execution and sends its message, as the gateway
// does.
func (f *coreFixture) submit(t *testing.T) string {
	t.Helper()
	now := time.Now()
	svc := &resource.Service{Meta: resource.Meta{Name: "s"}, Type: resource.Executable, Repository: "r", Filename: "x", TimeoutSeconds: 60}
	e := &execution.Execution{ID: execution.NewID(now), Cluster: "c1", Service: "s", Status: execution.Queued, CreatedAt: now, Spec: svc}
	if err := f.cat.CreateExecution(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	f.send(t, queue.Envelope{V: queue.EnvelopeVersion, ExecutionID: e.ID, Cluster: "c1", Service: "s", TimeoutSeconds: svc.TimeoutSeconds})
	return e.ID
}

func (f *coreFixture) get(t *testing.T, id string) *execution.Execution {
	t.Helper()
	e, err := f.cat.Execution(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func succeed(ctx context.Context, job executor.Job) (executor.Result, error) {
	return executor.Result{Status: execution.Succeeded, Stdout: execution.Output{Data: "hi\n"}}, nil
}

func TestRealCoreRedelivery(t *testing.T) {
	f := newCoreFixture(t, succeed)
	id := f.submit(t)
	if e := f.get(t, id); e.Status != execution.Queued {
		t.Fatalf("before: status %s, want queued", e.Status)
	}
	ev := f.event(t, 1)
	h := &handler.Handler{Core: f.core, Queue: f.q}

	resp, err := h.Handle(t.Context(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("first delivery: %+v, %v; want no failures", resp, err)
	}
	first := f.get(t, id)
	if first.Status != execution.Succeeded || first.Node != "lambda-1" || first.Attempt != 1 || first.Stdout.Data != "hi\n" {
		t.Fatalf("after the first delivery: %+v", first)
	}
	// The core deleted the message itself.
	if v, inFlight := f.qs.Count(t, f.qs.URL); v+inFlight != 0 {
		t.Errorf("queue holds %d+%d messages after Done, want none", v, inFlight)
	}

	// The same record delivered again (an at-least-once duplicate, or the
	// event source mapping retrying the batch) runs nothing.
	resp, err = h.Handle(t.Context(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("second delivery: %+v, %v; want no failures", resp, err)
	}
	again := f.get(t, id)
	if n := f.exe.Calls.Load(); n != 1 {
		t.Errorf("service started %d times, want once", n)
	}
	if again.Version != first.Version || again.Status != execution.Succeeded || again.Attempt != 1 {
		t.Errorf("the duplicate changed the record: version %d → %d, status %s, attempt %d",
			first.Version, again.Version, again.Status, again.Attempt)
	}
}

func TestRealCoreDuplicateInOneBatch(t *testing.T) {
	// The claimant's service waits until the duplicate has been turned
	// away, so both deliveries are in the core at the same time.
	turnedAway := make(chan struct{})
	var once sync.Once
	f := newCoreFixture(t, func(ctx context.Context, job executor.Job) (executor.Result, error) {
		select {
		case <-turnedAway:
		case <-ctx.Done():
			return executor.Result{}, ctx.Err()
		}
		return succeed(ctx, job)
	})
	id := f.submit(t)
	// Two deliveries of one message: receive it, make it visible, receive
	// it again (receive count 2, a new receipt handle).
	first := f.qs.ReceiveRaw(t, f.qs.URL, 1, 2*time.Second)
	if len(first) != 1 {
		t.Fatalf("received %d messages", len(first))
	}
	if _, err := f.qs.Client.ChangeMessageVisibility(t.Context(), &awssqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(f.qs.URL), ReceiptHandle: first[0].ReceiptHandle, VisibilityTimeout: 0,
	}); err != nil {
		t.Fatal(err)
	}
	second := f.qs.ReceiveRaw(t, f.qs.URL, 1, 2*time.Second)
	if len(second) != 1 || second[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("second receive: %+v", second)
	}
	ev := toEvent(t, f.qs, first[0], second[0])

	var mu sync.Mutex
	var outcomes []runner.Outcome
	hook := outcomeHook{core: f.core, on: func(o runner.Outcome) {
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
		// The claimant is blocked in its service, so the first outcome is
		// the duplicate's: dropped (Done, it saw the record running) or
		// handed back (Requeued, it lost the claim race).
		once.Do(func() { close(turnedAway) })
	}}
	// A deadline that fits the 60 s service plus the margin, so the
	// handler starts both; it also bounds a deadlock.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	resp, err := (&handler.Handler{Core: hook, Queue: f.q, Concurrency: 2}).Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	dup := outcomes[0]
	slices.Sort(outcomes)
	switch {
	case slices.Equal(outcomes, []runner.Outcome{runner.Done, runner.Done}):
		if len(resp.BatchItemFailures) != 0 {
			t.Errorf("failures %+v, want none: the duplicate was dropped", resp.BatchItemFailures)
		}
	case slices.Equal(outcomes, []runner.Outcome{runner.Done, runner.Requeued}) && dup == runner.Requeued:
		if len(resp.BatchItemFailures) != 1 {
			t.Errorf("failures %+v, want the handed-back duplicate", resp.BatchItemFailures)
		}
	default:
		t.Errorf("outcomes %v (duplicate's first: %v), want the claimant Done and the duplicate dropped or handed back", outcomes, dup)
	}
	e := f.get(t, id)
	if n := f.exe.Calls.Load(); n != 1 || e.Status != execution.Succeeded || e.Attempt != 1 {
		t.Errorf("service started %d times, status %s, attempt %d; want once, succeeded, 1", n, e.Status, e.Attempt)
	}
}
