package handler_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/autogate/autogate/functions/runner/handler"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/queue/sqs"
	"github.com/autogate/autogate/internal/queue/sqs/sqstest"
	"github.com/autogate/autogate/runner"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// fakeCore is a func-field double of the runner core that records the
// messages it was given.
type fakeCore struct {
	mu     sync.Mutex
	got    []queue.Message
	handle func(ctx context.Context, m queue.Message) runner.Outcome
}

var _ handler.Core = (*fakeCore)(nil)

func (f *fakeCore) Handle(ctx context.Context, m queue.Message) runner.Outcome {
	f.mu.Lock()
	f.got = append(f.got, m)
	f.mu.Unlock()
	return f.handle(ctx, m)
}

func (f *fakeCore) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, m := range f.got {
		ids = append(ids, m.Envelope.ExecutionID)
	}
	slices.Sort(ids)
	return ids
}

// fixture is a fauxqs work queue with its DLQ and the SQS queue on it.
type fixture struct {
	qs sqstest.Queues
	q  *sqs.Queue
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	qs := sqstest.New(t, sqstest.Options{})
	q, err := sqs.New(qs.Client, sqs.Config{QueueURL: qs.URL, DLQURL: qs.DLQURL, Cluster: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{qs: qs, q: q}
}

func envelope(id string, timeoutSeconds int) queue.Envelope {
	return queue.Envelope{V: queue.EnvelopeVersion, ExecutionID: id, Cluster: "c1", Service: "svc", TimeoutSeconds: timeoutSeconds}
}

// send enqueues envelopes through the SQS queue, as the gateway does.
func (f *fixture) send(t *testing.T, envs ...queue.Envelope) {
	t.Helper()
	for _, e := range envs {
		if err := f.q.Send(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// event receives n messages from fauxqs as the event source mapping would
// and builds the events.SQSEvent Lambda delivers, through its JSON form.
func (f *fixture) event(t *testing.T, n int) events.SQSEvent {
	t.Helper()
	var msgs []types.Message
	for len(msgs) < n {
		got := f.qs.ReceiveRaw(t, f.qs.URL, n-len(msgs), 2*time.Second)
		if len(got) == 0 {
			t.Fatalf("received %d messages from fauxqs, want %d", len(msgs), n)
		}
		msgs = append(msgs, got...)
	}
	return toEvent(t, f.qs, msgs...)
}

func toEvent(t *testing.T, qs sqstest.Queues, msgs ...types.Message) events.SQSEvent {
	t.Helper()
	ev := qs.Event(msgs...)
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var out events.SQSEvent
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// messageID finds the record of execution id in ev.
func messageID(t *testing.T, ev events.SQSEvent, id string) string {
	t.Helper()
	for _, r := range ev.Records {
		if env, err := sqs.Decode(r.Body); err == nil && env.ExecutionID == id {
			return r.MessageId
		}
	}
	t.Fatalf("no record of %s in the event", id)
	return ""
}

func failures(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

// acking returns a core behaviour that acknowledges Done messages on q as
// the real core does, and returns outcome[id] (Done by default).
func acking(q *sqs.Queue, outcome map[string]runner.Outcome) func(ctx context.Context, m queue.Message) runner.Outcome {
	return func(ctx context.Context, m queue.Message) runner.Outcome {
		o := outcome[m.Envelope.ExecutionID]
		if o == runner.Done {
			if err := q.Ack(ctx, m); err != nil {
				return runner.Failed
			}
		}
		return o
	}
}

func TestBatchOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		outcome map[string]runner.Outcome
		failed  []string // execution IDs reported as batch item failures
		left    int      // messages still in the queue afterwards
	}{
		{"all succeed", nil, nil, 0},
		{"one fails", map[string]runner.Outcome{"e2": runner.Failed}, []string{"e2"}, 1},
		{"one requeued, one fails", map[string]runner.Outcome{"e1": runner.Requeued, "e3": runner.Failed}, []string{"e1", "e3"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.send(t, envelope("e1", 60), envelope("e2", 60), envelope("e3", 60))
			ev := f.event(t, 3)
			core := &fakeCore{handle: acking(f.q, tt.outcome)}
			h := &handler.Handler{Core: core, Queue: f.q}
			resp, err := h.Handle(t.Context(), ev)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			var want []string
			for _, id := range tt.failed {
				want = append(want, messageID(t, ev, id))
			}
			slices.Sort(want)
			if got := failures(resp); !slices.Equal(got, want) {
				t.Errorf("batch item failures %v, want %v (executions %v)", got, want, tt.failed)
			}
			if got := core.ids(); !slices.Equal(got, []string{"e1", "e2", "e3"}) {
				t.Errorf("core handled %v, want e1 e2 e3", got)
			}
			for _, m := range core.got {
				if m.ReceiveCount != 1 || m.Receipt == "" {
					t.Errorf("message %s: receive count %d receipt %q; want 1 and the record's receipt", m.Envelope.ExecutionID, m.ReceiveCount, m.Receipt)
				}
			}
			if v, inFlight := f.qs.Count(t, f.qs.URL); v+inFlight != tt.left {
				t.Errorf("queue holds %d+%d messages, want %d", v, inFlight, tt.left)
			}
			// The response is what Lambda expects on the wire.
			b, err := json.Marshal(resp)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.failed) == 0 && string(b) != `{"batchItemFailures":[]}` {
				t.Errorf("response %s, want an empty batchItemFailures list", b)
			}
		})
	}
}

func TestPoisonBody(t *testing.T) {
	f := newFixture(t)
	if _, err := f.qs.Client.SendMessage(t.Context(), &awssqs.SendMessageInput{
		QueueUrl: aws.String(f.qs.URL), MessageBody: aws.String(`{"v":1,"executionId":`),
	}); err != nil {
		t.Fatal(err)
	}
	f.send(t, envelope("good", 60))
	ev := f.event(t, 2)
	var poisonID string
	for _, r := range ev.Records {
		if _, err := sqs.Decode(r.Body); err != nil {
			poisonID = r.MessageId
		}
	}
	core := &fakeCore{handle: acking(f.q, nil)}
	resp, err := (&handler.Handler{Core: core, Queue: f.q}).Handle(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(resp); !slices.Equal(got, []string{poisonID}) {
		t.Errorf("failures %v, want only the poison record %s", got, poisonID)
	}
	if got := core.ids(); !slices.Equal(got, []string{"good"}) {
		t.Errorf("core handled %v, want only the readable record", got)
	}
}

func TestHandBackNearDeadline(t *testing.T) {
	f := newFixture(t)
	f.send(t, envelope("long", 60), envelope("short", 2))
	ev := f.event(t, 2)
	core := &fakeCore{handle: acking(f.q, nil)}
	h := &handler.Handler{Core: core, Queue: f.q, Margin: time.Second}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := h.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := failures(resp), []string{messageID(t, ev, "long")}; !slices.Equal(got, want) {
		t.Errorf("failures %v, want only the 60 s record %v", got, want)
	}
	// 2 s + 1 s margin fits in 5 s; 60 s does not and was never started.
	if got := core.ids(); !slices.Equal(got, []string{"short"}) {
		t.Errorf("core handled %v, want only the short record", got)
	}
	// Handed back visible at once: a short poll finds it, delivered again.
	if v, inFlight := f.qs.Count(t, f.qs.URL); v != 1 || inFlight != 0 {
		t.Errorf("queue: %d visible, %d in flight; want the handed-back message visible", v, inFlight)
	}
	again := f.qs.ReceiveRaw(t, f.qs.URL, 10, 0)
	if len(again) != 1 || aws.ToString(again[0].MessageId) != messageID(t, ev, "long") || again[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("after the hand-back a short poll got %+v; want the 60 s message, receive count 2", again)
	}
}

// fakeReleaser records hand-backs.
type fakeReleaser struct {
	mu       sync.Mutex
	released []string
	err      error
}

func (f *fakeReleaser) Release(ctx context.Context, m queue.Message, delay time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if delay != 0 {
		return errors.New("hand-back with a delay")
	}
	f.released = append(f.released, m.Envelope.ExecutionID)
	return f.err
}

func record(t *testing.T, env queue.Envelope) events.SQSMessage {
	t.Helper()
	body, err := sqs.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	return events.SQSMessage{MessageId: "m-" + env.ExecutionID, ReceiptHandle: "r-" + env.ExecutionID, Body: body,
		Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
}

func TestDeadlineRule(t *testing.T) {
	start := time.Now()
	tests := []struct {
		name     string
		left     time.Duration // 0: no deadline
		timeout  int
		margin   time.Duration
		started  bool
		relErr   error
		finished bool
	}{
		{"no deadline", 0, 3600, 0, true, nil, true},
		{"fits with the default margin", 71 * time.Second, 60, 0, true, nil, true},
		{"short of the default margin", 69 * time.Second, 60, 0, false, nil, false},
		{"unset timeout means the default 5 min", 4 * time.Minute, 0, 0, false, nil, false},
		{"unset timeout fits", 6 * time.Minute, 0, 0, true, nil, true},
		{"custom margin", 62 * time.Second, 60, time.Second, true, nil, true},
		{"deadline passed", -time.Second, 1, 0, false, nil, false},
		{"release fails: still a failure", time.Second, 60, 0, false, errors.New("sqs down"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(start)
			ctx := t.Context()
			if tt.left != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, start.Add(tt.left))
				defer cancel()
			}
			core := &fakeCore{handle: func(context.Context, queue.Message) runner.Outcome { return runner.Done }}
			rel := &fakeReleaser{err: tt.relErr}
			h := &handler.Handler{Core: core, Queue: rel, Clock: clk, Margin: tt.margin}
			resp, err := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{record(t, envelope("x", tt.timeout))}})
			if err != nil {
				t.Fatal(err)
			}
			started := len(core.ids()) == 1
			if started != tt.started || (len(resp.BatchItemFailures) == 0) != tt.finished || (len(rel.released) == 1) == tt.started {
				t.Errorf("started %v, failures %v, released %v; want started %v, success %v",
					started, resp.BatchItemFailures, rel.released, tt.started, tt.finished)
			}
		})
	}
}

func TestConcurrency(t *testing.T) {
	tests := []struct {
		name        string
		concurrency int
		want        int
	}{
		{"default is sequential", 0, 1},
		{"two at a time", 2, 2},
		{"more slots than records", 9, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			inFlight, peak := 0, 0
			reached := make(chan struct{})
			core := &fakeCore{handle: func(ctx context.Context, m queue.Message) runner.Outcome {
				mu.Lock()
				inFlight++
				peak = max(peak, inFlight)
				if inFlight == tt.want {
					select {
					case <-reached:
					default:
						close(reached)
					}
				}
				mu.Unlock()
				// Hold the slot until the expected parallelism was reached
				// once, proving records overlap (or run alone).
				select {
				case <-reached:
				case <-ctx.Done():
				}
				mu.Lock()
				inFlight--
				mu.Unlock()
				return runner.Done
			}}
			var ev events.SQSEvent
			for _, id := range []string{"a", "b", "c", "d"} {
				ev.Records = append(ev.Records, record(t, envelope(id, 1)))
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			h := &handler.Handler{Core: core, Queue: &fakeReleaser{}, Concurrency: tt.concurrency, Margin: time.Second}
			resp, err := h.Handle(ctx, ev)
			if err != nil || len(resp.BatchItemFailures) != 0 || ctx.Err() != nil {
				t.Fatalf("Handle = %v, %v (ctx %v)", resp, err, ctx.Err())
			}
			if peak != tt.want {
				t.Errorf("peak concurrency %d, want %d", peak, tt.want)
			}
		})
	}
}

func TestMisconfigured(t *testing.T) {
	tests := []struct {
		name string
		h    *handler.Handler
	}{
		{"no core", &handler.Handler{Queue: &fakeReleaser{}}},
		{"no queue", &handler.Handler{Core: &fakeCore{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.h.Handle(t.Context(), events.SQSEvent{}); err == nil {
				t.Error("Handle succeeded")
			}
		})
	}
}
