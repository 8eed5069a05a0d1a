package sqs_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/queue/sqs"
	"github.com/autogate/autogate/internal/queue/sqs/sqstest"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// envelope returns a valid envelope of cluster c1 named id.
func envelope(id string) queue.Envelope {
	return queue.Envelope{V: queue.EnvelopeVersion, ExecutionID: id, Cluster: "c1", Service: "svc",
		ServiceVersion: 3, Epoch: 7, Deadline: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), TimeoutSeconds: 60, TraceID: "t-" + id}
}

func newQueue(t *testing.T, opts sqstest.Options) (*sqs.Queue, sqstest.Queues) {
	t.Helper()
	qs := sqstest.New(t, opts)
	q, err := sqs.New(qs.Client, sqs.Config{QueueURL: qs.URL, DLQURL: qs.DLQURL, Cluster: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	return q, qs
}

// receiveOne receives exactly one message within wait, or fails t.
func receiveOne(t *testing.T, q *sqs.Queue, wait time.Duration) queue.Message {
	t.Helper()
	msgs, err := q.Receive(t.Context(), 10, wait)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("Receive got %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

// receiveNone checks that nothing is visible for wait (a long poll: it
// blocks on fauxqs for the whole wait unless a message turns up).
func receiveNone(t *testing.T, q *sqs.Queue, wait time.Duration) {
	t.Helper()
	msgs, err := q.Receive(t.Context(), 10, wait)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) != 0 {
		t.Fatalf("Receive got %d messages (%+v), want none", len(msgs), msgs)
	}
}

func TestSendReceiveRoundTrip(t *testing.T) {
	t.Parallel()
	q, qs := newQueue(t, sqstest.Options{})
	want := envelope("e1")
	want.Execution = json.RawMessage(`{"id":"e1","version":1,"inputs":{"a":"b"}}`) // a record snapshot rides along
	if err := q.Send(t.Context(), want); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := receiveOne(t, q, time.Second)
	if !reflect.DeepEqual(m.Envelope, want) {
		t.Errorf("envelope\n got %+v\nwant %+v", m.Envelope, want)
	}
	if m.ReceiveCount != 1 || m.Receipt == "" {
		t.Errorf("receive count %d, receipt %q; want 1 and a receipt", m.ReceiveCount, m.Receipt)
	}
	if err := m.Envelope.Check(); err != nil {
		t.Errorf("received envelope fails Check: %v", err)
	}
	// The attributes a non-Go reader can route on.
	if err := q.Release(t.Context(), m, 0); err != nil {
		t.Fatal(err)
	}
	raw := qs.ReceiveRaw(t, qs.URL, 1, time.Second)
	if len(raw) != 1 {
		t.Fatalf("raw receive got %d messages", len(raw))
	}
	for name, want := range map[string]string{sqs.AttrEnvelopeVersion: "1", sqs.AttrCluster: "c1"} {
		if got := aws.ToString(raw[0].MessageAttributes[name].StringValue); got != want {
			t.Errorf("attribute %s = %q, want %q", name, got, want)
		}
	}
}

// signalingClient tells when a ReceiveMessage call starts.
type signalingClient struct {
	*awssqs.Client
	receiving chan struct{}
}

func (c signalingClient) ReceiveMessage(ctx context.Context, in *awssqs.ReceiveMessageInput, opts ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error) {
	close(c.receiving)
	return c.Client.ReceiveMessage(ctx, in, opts...)
}

func TestLongPollWakesOnSend(t *testing.T) {
	t.Parallel()
	qs := sqstest.New(t, sqstest.Options{})
	client := signalingClient{Client: qs.Client, receiving: make(chan struct{})}
	q, err := sqs.New(client, sqs.Config{QueueURL: qs.URL, Cluster: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		msgs []queue.Message
		err  error
		took time.Duration
	}
	res := make(chan result, 1)
	go func() {
		start := time.Now()
		msgs, err := q.Receive(t.Context(), 1, 20*time.Second)
		res <- result{msgs, err, time.Since(start)}
	}()
	<-client.receiving
	// One more round trip to fauxqs, so the long poll, sent first, is
	// waiting there before the message arrives.
	if _, _, err := q.Depth(t.Context()); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if err := q.Send(t.Context(), envelope("wake")); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || len(r.msgs) != 1 || r.msgs[0].Envelope.ExecutionID != "wake" {
		t.Fatalf("Receive = %+v, %v; want the message", r.msgs, r.err)
	}
	// With nothing sent it would have blocked for the full 20 s.
	if after := time.Since(sent); after > 5*time.Second {
		t.Errorf("long poll returned %v after the send (%v in all), want at once", after, r.took)
	}
}

func TestVisibility(t *testing.T) {
	t.Parallel()
	t.Run("hidden until released, then redelivered", func(t *testing.T) {
		t.Parallel()
		q, _ := newQueue(t, sqstest.Options{})
		if err := q.Send(t.Context(), envelope("v1")); err != nil {
			t.Fatal(err)
		}
		m := receiveOne(t, q, time.Second)
		receiveNone(t, q, time.Second)
		if err := q.Release(t.Context(), m, 0); err != nil {
			t.Fatalf("Release: %v", err)
		}
		again := receiveOne(t, q, time.Second)
		if again.ReceiveCount != 2 || again.Envelope.ExecutionID != "v1" {
			t.Errorf("redelivery: count %d id %q; want 2 v1", again.ReceiveCount, again.Envelope.ExecutionID)
		}
		if again.Receipt == m.Receipt {
			t.Error("redelivery reused the first receipt handle")
		}
	})
	t.Run("extend keeps it hidden past the queue's visibility", func(t *testing.T) {
		t.Parallel()
		q, _ := newQueue(t, sqstest.Options{Visibility: time.Second, MaxReceiveCount: 5})
		if err := q.Send(t.Context(), envelope("v2")); err != nil {
			t.Fatal(err)
		}
		m := receiveOne(t, q, time.Second)
		if err := q.Extend(t.Context(), m, 30*time.Second); err != nil {
			t.Fatalf("Extend: %v", err)
		}
		// Without the extension it reappears after 1 s (checked below).
		receiveNone(t, q, 3*time.Second)
		if err := q.Release(t.Context(), m, 0); err != nil {
			t.Fatal(err)
		}
		m = receiveOne(t, q, time.Second)
		got := receiveOne(t, q, 3*time.Second) // not extended: back after 1 s
		if got.ReceiveCount != 3 {
			t.Errorf("after the visibility ran out: receive count %d, want 3", got.ReceiveCount)
		}
		// The first hold is gone: its receipt no longer extends.
		if err := q.Extend(t.Context(), m, 30*time.Second); !errors.Is(err, sqs.ErrReceipt) {
			t.Errorf("Extend with a lapsed receipt = %v, want ErrReceipt", err)
		}
	})
	t.Run("release with a delay", func(t *testing.T) {
		t.Parallel()
		q, _ := newQueue(t, sqstest.Options{})
		if err := q.Send(t.Context(), envelope("v3")); err != nil {
			t.Fatal(err)
		}
		m := receiveOne(t, q, time.Second)
		if err := q.Release(t.Context(), m, time.Second); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if got := receiveOne(t, q, 5*time.Second); got.ReceiveCount != 2 {
			t.Errorf("receive count %d, want 2", got.ReceiveCount)
		}
		if took := time.Since(start); took < 500*time.Millisecond {
			t.Errorf("released with a 1 s delay, received again after %v", took)
		}
	})
}

func TestAckDeletes(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, sqstest.Options{Visibility: time.Second})
	if err := q.Send(t.Context(), envelope("a1")); err != nil {
		t.Fatal(err)
	}
	m := receiveOne(t, q, time.Second)
	if err := q.Ack(t.Context(), m); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	// Past the 1 s visibility: a deleted message does not come back.
	receiveNone(t, q, 2*time.Second)
	// A second delete (a Lambda event source mapping after the core's Ack)
	// is harmless.
	if err := q.Ack(t.Context(), m); err != nil {
		t.Errorf("second Ack: %v", err)
	}
	if v, f, err := q.Depth(t.Context()); err != nil || v != 0 || f != 0 {
		t.Errorf("Depth = %d, %d, %v; want 0, 0", v, f, err)
	}
}

func TestPoisonToDLQAndRedrive(t *testing.T) {
	t.Parallel()
	q, qs := newQueue(t, sqstest.Options{})
	if _, err := qs.Client.SendMessage(t.Context(), &awssqs.SendMessageInput{
		QueueUrl: aws.String(qs.URL), MessageBody: aws.String("not an envelope"),
	}); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(t.Context(), envelope("good")); err != nil {
		t.Fatal(err)
	}
	// Two receives (maxReceiveCount 2), each handed back as a failing
	// runner would leave it.
	for want := 1; want <= 2; want++ {
		msgs, err := q.Receive(t.Context(), 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var poison *queue.Message
		for i, m := range msgs {
			if m.Envelope.ExecutionID == "good" {
				if err := q.Ack(t.Context(), m); err != nil {
					t.Fatal(err)
				}
				continue
			}
			poison = &msgs[i]
		}
		if poison == nil {
			t.Fatalf("receive %d: no poison message among %d", want, len(msgs))
		}
		if poison.Envelope.Check() == nil || poison.ReceiveCount != want || poison.Receipt == "" {
			t.Fatalf("receive %d: poison = %+v; want an envelope failing Check, count %d", want, poison, want)
		}
		if err := q.Release(t.Context(), *poison, 0); err != nil {
			t.Fatal(err)
		}
	}
	// The third receive exceeds maxReceiveCount: SQS moves it to the DLQ.
	receiveNone(t, q, time.Second)
	if n, err := q.DeadLetterDepth(t.Context()); err != nil || n != 1 {
		t.Fatalf("DeadLetterDepth = %d, %v; want 1", n, err)
	}
	envs, err := q.DeadLetters(t.Context(), 10)
	if err != nil || len(envs) != 0 {
		t.Errorf("DeadLetters = %+v, %v; want no readable envelopes", envs, err)
	}

	// A readable dead letter, moved by hand, is listed by DeadLetters.
	body, err := sqs.Encode(envelope("dead"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qs.Client.SendMessage(t.Context(), &awssqs.SendMessageInput{
		QueueUrl: aws.String(qs.DLQURL), MessageBody: aws.String(body),
	}); err != nil {
		t.Fatal(err)
	}
	envs, err = q.DeadLetters(t.Context(), 10)
	if err != nil || len(envs) != 1 || !reflect.DeepEqual(envs[0], envelope("dead")) {
		t.Errorf("DeadLetters = %+v, %v; want the one envelope", envs, err)
	}
	// Peeking left both in place, visible.
	if v, f := qs.Count(t, qs.DLQURL); v != 2 || f != 0 {
		t.Errorf("DLQ after peeking: %d visible, %d in flight; want 2, 0", v, f)
	}

	moved, err := q.Redrive(t.Context(), 10)
	if err != nil || moved != 2 {
		t.Fatalf("Redrive = %d, %v; want 2", moved, err)
	}
	if v, f := qs.Count(t, qs.DLQURL); v != 0 || f != 0 {
		t.Errorf("DLQ after redrive: %d visible, %d in flight; want empty", v, f)
	}
	msgs, err := q.Receive(t.Context(), 10, time.Second)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("after redrive Receive = %d messages, %v; want 2", len(msgs), err)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.Envelope.ExecutionID)
		if m.ReceiveCount != 1 {
			t.Errorf("redriven message %q: receive count %d, want a fresh 1", m.Envelope.ExecutionID, m.ReceiveCount)
		}
	}
	if got := strings.Join(ids, ","); got != ",dead" && got != "dead," {
		t.Errorf("redriven ids %q, want the poison (no id) and dead", got)
	}
	// Redrive on an empty DLQ moves nothing.
	if moved, err := q.Redrive(t.Context(), 10); err != nil || moved != 0 {
		t.Errorf("second Redrive = %d, %v; want 0", moved, err)
	}
}

func TestRedriveRespectsMax(t *testing.T) {
	t.Parallel()
	q, qs := newQueue(t, sqstest.Options{})
	for _, id := range []string{"d1", "d2", "d3"} {
		body, err := sqs.Encode(envelope(id))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := qs.Client.SendMessage(t.Context(), &awssqs.SendMessageInput{
			QueueUrl: aws.String(qs.DLQURL), MessageBody: aws.String(body),
		}); err != nil {
			t.Fatal(err)
		}
	}
	if moved, err := q.Redrive(t.Context(), 2); err != nil || moved != 2 {
		t.Fatalf("Redrive(2) = %d, %v", moved, err)
	}
	if v, f := qs.Count(t, qs.DLQURL); v != 1 || f != 0 {
		t.Errorf("DLQ: %d visible, %d in flight; want 1, 0", v, f)
	}
	if v, f, err := q.Depth(t.Context()); err != nil || v != 2 || f != 0 {
		t.Errorf("work queue Depth = %d, %d, %v; want 2, 0", v, f, err)
	}
}

func TestDepth(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, sqstest.Options{})
	for _, id := range []string{"n1", "n2", "n3"} {
		if err := q.Send(t.Context(), envelope(id)); err != nil {
			t.Fatal(err)
		}
	}
	if v, f, err := q.Depth(t.Context()); err != nil || v != 3 || f != 0 {
		t.Fatalf("Depth = %d, %d, %v; want 3, 0", v, f, err)
	}
	msgs, err := q.Receive(t.Context(), 2, time.Second)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("Receive = %d, %v", len(msgs), err)
	}
	if v, f, err := q.Depth(t.Context()); err != nil || v != 3-len(msgs) || f != len(msgs) {
		t.Errorf("Depth = %d, %d, %v; want %d, %d", v, f, err, 3-len(msgs), len(msgs))
	}
}

func TestSendRefuses(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, sqstest.Options{})
	tests := []struct {
		name string
		env  queue.Envelope
		is   error
	}{
		{"invalid envelope", queue.Envelope{V: 9, ExecutionID: "x", Cluster: "c1"}, nil},
		{"other cluster", queue.Envelope{V: 1, ExecutionID: "x", Cluster: "c2"}, nil},
		{"too large", func() queue.Envelope {
			e := envelope("big")
			e.TraceID = strings.Repeat("x", sqs.MaxMessageBytes)
			return e
		}(), sqs.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := q.Send(t.Context(), tt.env)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("Send = %v, want an error (is %v)", err, tt.is)
			}
		})
	}
	if v, f, err := q.Depth(t.Context()); err != nil || v+f != 0 {
		t.Errorf("refused sends reached SQS: depth %d+%d, %v", v, f, err)
	}
}

func TestQueueNotFound(t *testing.T) {
	t.Parallel()
	qs := sqstest.New(t, sqstest.Options{})
	q, err := sqs.New(qs.Client, sqs.Config{QueueURL: qs.URL + "-missing"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := q.Send(ctx, envelope("x")); !errors.Is(err, sqs.ErrQueueNotFound) {
		t.Errorf("Send to a missing queue = %v, want ErrQueueNotFound", err)
	}
}

func TestReceiveEndsWithTheContext(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, sqstest.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	msgs, err := q.Receive(ctx, 1, 20*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) || len(msgs) != 0 {
		t.Errorf("Receive = %v, %v; want context.DeadlineExceeded", msgs, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Receive returned %v after its context ended", took)
	}
}

func TestVisibilityTimeout(t *testing.T) {
	q, qs := newQueue(t, sqstest.Options{Visibility: 7 * time.Second})
	if got, err := q.VisibilityTimeout(t.Context()); err != nil || got != 7*time.Second {
		t.Errorf("VisibilityTimeout from the queue attribute = %v, %v; want 7s", got, err)
	}
	asked, err := sqs.New(qs.Client, sqs.Config{QueueURL: qs.URL, Cluster: "c1", Visibility: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := asked.VisibilityTimeout(t.Context()); err != nil || got != 2*time.Second {
		t.Errorf("VisibilityTimeout with Config.Visibility 1.5s = %v, %v; want the 2s Receive asks for", got, err)
	}
}
