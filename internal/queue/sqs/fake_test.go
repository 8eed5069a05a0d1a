package sqs_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/queue/sqs"
)

// fakeAPI is a func-field double of the SQS client; a nil field fails the
// call.
type fakeAPI struct {
	send       func(in *awssqs.SendMessageInput) (*awssqs.SendMessageOutput, error)
	receive    func(in *awssqs.ReceiveMessageInput) (*awssqs.ReceiveMessageOutput, error)
	visibility func(in *awssqs.ChangeMessageVisibilityInput) (*awssqs.ChangeMessageVisibilityOutput, error)
	delete     func(in *awssqs.DeleteMessageInput) (*awssqs.DeleteMessageOutput, error)
	attributes func(in *awssqs.GetQueueAttributesInput) (*awssqs.GetQueueAttributesOutput, error)
}

var _ sqs.API = (*fakeAPI)(nil)

var errUnexpected = errors.New("unexpected call")

func (f *fakeAPI) SendMessage(ctx context.Context, in *awssqs.SendMessageInput, _ ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error) {
	if f.send == nil {
		return nil, fmt.Errorf("SendMessage: %w", errUnexpected)
	}
	return f.send(in)
}

func (f *fakeAPI) ReceiveMessage(ctx context.Context, in *awssqs.ReceiveMessageInput, _ ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error) {
	if f.receive == nil {
		return nil, fmt.Errorf("ReceiveMessage: %w", errUnexpected)
	}
	return f.receive(in)
}

func (f *fakeAPI) ChangeMessageVisibility(ctx context.Context, in *awssqs.ChangeMessageVisibilityInput, _ ...func(*awssqs.Options)) (*awssqs.ChangeMessageVisibilityOutput, error) {
	if f.visibility == nil {
		return nil, fmt.Errorf("ChangeMessageVisibility: %w", errUnexpected)
	}
	return f.visibility(in)
}

func (f *fakeAPI) DeleteMessage(ctx context.Context, in *awssqs.DeleteMessageInput, _ ...func(*awssqs.Options)) (*awssqs.DeleteMessageOutput, error) {
	if f.delete == nil {
		return nil, fmt.Errorf("DeleteMessage: %w", errUnexpected)
	}
	return f.delete(in)
}

func (f *fakeAPI) GetQueueAttributes(ctx context.Context, in *awssqs.GetQueueAttributesInput, _ ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error) {
	if f.attributes == nil {
		return nil, fmt.Errorf("GetQueueAttributes: %w", errUnexpected)
	}
	return f.attributes(in)
}

// failing returns a fake whose every call fails with err.
func failing(err error) *fakeAPI {
	return &fakeAPI{
		send:    func(*awssqs.SendMessageInput) (*awssqs.SendMessageOutput, error) { return nil, err },
		receive: func(*awssqs.ReceiveMessageInput) (*awssqs.ReceiveMessageOutput, error) { return nil, err },
		visibility: func(*awssqs.ChangeMessageVisibilityInput) (*awssqs.ChangeMessageVisibilityOutput, error) {
			return nil, err
		},
		delete:     func(*awssqs.DeleteMessageInput) (*awssqs.DeleteMessageOutput, error) { return nil, err },
		attributes: func(*awssqs.GetQueueAttributesInput) (*awssqs.GetQueueAttributesOutput, error) { return nil, err },
	}
}

func fakeQueue(t *testing.T, api sqs.API) *sqs.Queue {
	t.Helper()
	q, err := sqs.New(api, sqs.Config{QueueURL: "https://sqs.example/1/work", DLQURL: "https://sqs.example/1/dlq", Cluster: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// sdkTypeEscapes reports whether err still carries an SDK error type.
func sdkTypeEscapes(err error) bool {
	var api smithy.APIError
	var resp *awshttp.ResponseError
	var sresp *smithyhttp.ResponseError
	var op *smithy.OperationError
	return errors.As(err, &api) || errors.As(err, &resp) || errors.As(err, &sresp) || errors.As(err, &op)
}

func httpError(status int) error {
	return &smithy.OperationError{ServiceID: "SQS", OperationName: "SendMessage", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      errors.New("boom"),
		},
	}}
}

func TestErrorsTranslated(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"throttled", &types.RequestThrottled{Message: aws.String("Rate exceeded")}, sqs.ErrThrottled},
		{"throttled, query code", &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.RequestThrottled", Message: "slow down"}, sqs.ErrThrottled},
		{"too many in flight", &types.OverLimit{Message: aws.String("120000 in flight")}, sqs.ErrThrottled},
		{"queue missing", &types.QueueDoesNotExist{}, sqs.ErrQueueNotFound},
		{"queue missing, query code", &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.NonExistentQueue"}, sqs.ErrQueueNotFound},
		{"receipt invalid", &types.ReceiptHandleIsInvalid{}, sqs.ErrReceipt},
		{"not in flight", &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.MessageNotInflight"}, sqs.ErrReceipt},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDenied", Message: "no", Fault: smithy.FaultClient}, sqs.ErrRequest},
		{"server fault", &smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultServer}, sqs.ErrUnavailable},
		{"http 503", httpError(503), sqs.ErrUnavailable},
		{"network", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, sqs.ErrUnavailable},
		{"canceled", fmt.Errorf("operation error SQS: %w", context.Canceled), context.Canceled},
		{"deadline", fmt.Errorf("operation error SQS: %w", context.DeadlineExceeded), context.DeadlineExceeded},
	}
	m := queue.Message{Envelope: envelope("e"), Receipt: "r", ReceiveCount: 1}
	ops := []struct {
		name string
		call func(context.Context, *sqs.Queue) error
	}{
		{"Send", func(ctx context.Context, q *sqs.Queue) error { return q.Send(ctx, envelope("e")) }},
		{"Receive", func(ctx context.Context, q *sqs.Queue) error { _, err := q.Receive(ctx, 1, 0); return err }},
		{"Extend", func(ctx context.Context, q *sqs.Queue) error { return q.Extend(ctx, m, time.Minute) }},
		{"Release", func(ctx context.Context, q *sqs.Queue) error { return q.Release(ctx, m, 0) }},
		{"Ack", func(ctx context.Context, q *sqs.Queue) error { return q.Ack(ctx, m) }},
		{"Depth", func(ctx context.Context, q *sqs.Queue) error { _, _, err := q.Depth(ctx); return err }},
		{"Redrive", func(ctx context.Context, q *sqs.Queue) error { _, err := q.Redrive(ctx, 5); return err }},
		{"DeadLetters", func(ctx context.Context, q *sqs.Queue) error { _, err := q.DeadLetters(ctx, 5); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := fakeQueue(t, failing(tt.err))
			for _, op := range ops {
				err := op.call(t.Context(), q)
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: got %v, want errors.Is %v", op.name, err, tt.want)
				}
				if sdkTypeEscapes(err) {
					t.Errorf("%s: an SDK error type escapes in %v (%T)", op.name, err, err)
				}
				if err != nil && !strings.Contains(err.Error(), "sqs ") {
					t.Errorf("%s: error %q does not say which queue operation failed", op.name, err)
				}
			}
		})
	}
}

func TestReceiveRequestAndDecoding(t *testing.T) {
	good, err := sqs.Encode(envelope("ok"))
	if err != nil {
		t.Fatal(err)
	}
	v2 := strings.Replace(good, `"v":1`, `"v":2`, 1)
	var got *awssqs.ReceiveMessageInput
	api := &fakeAPI{receive: func(in *awssqs.ReceiveMessageInput) (*awssqs.ReceiveMessageOutput, error) {
		got = in
		msg := func(id, body, count string) types.Message {
			return types.Message{MessageId: aws.String(id), ReceiptHandle: aws.String("rh-" + id), Body: aws.String(body),
				Attributes: map[string]string{"ApproximateReceiveCount": count}}
		}
		return &awssqs.ReceiveMessageOutput{Messages: []types.Message{
			msg("1", good, "3"), msg("2", "{not json", "1"), msg("3", v2, ""), msg("4", `{"v":1}`, "2"),
		}}, nil
	}}
	q, err := sqs.New(api, sqs.Config{QueueURL: "u", Visibility: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(t.Context(), 50, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxNumberOfMessages != 10 || got.WaitTimeSeconds != 20 || got.VisibilityTimeout != 2 {
		t.Errorf("request max %d wait %d visibility %d; want 10, 20, 2", got.MaxNumberOfMessages, got.WaitTimeSeconds, got.VisibilityTimeout)
	}
	if !slices.Contains(got.MessageSystemAttributeNames, types.MessageSystemAttributeNameApproximateReceiveCount) {
		t.Errorf("request does not ask for ApproximateReceiveCount: %v", got.MessageSystemAttributeNames)
	}
	tests := []struct {
		name    string
		valid   bool
		count   int
		receipt string
	}{
		{"valid", true, 3, "rh-1"},
		{"not JSON", false, 1, "rh-2"},
		{"unknown version", false, 1, "rh-3"},
		{"no execution ID", false, 2, "rh-4"},
	}
	if len(msgs) != len(tests) {
		t.Fatalf("got %d messages, want %d: poison must not be dropped", len(msgs), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := msgs[i]
			if valid := m.Envelope.Check() == nil; valid != tt.valid || m.ReceiveCount != tt.count || m.Receipt != tt.receipt {
				t.Errorf("got valid=%v count=%d receipt=%q; want %v %d %q", valid, m.ReceiveCount, m.Receipt, tt.valid, tt.count, tt.receipt)
			}
		})
	}

	t.Run("clamps", func(t *testing.T) {
		tests := []struct {
			limit      int
			wait       time.Duration
			wantMax    int32
			wantWaitS  int32
			wantVisSet bool
		}{
			{0, 0, 1, 0, false},
			{-3, -time.Second, 1, 0, false},
			{4, 1500 * time.Millisecond, 4, 2, false},
			{10, 20 * time.Second, 10, 20, false},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("limit %d wait %v", tt.limit, tt.wait), func(t *testing.T) {
				var in *awssqs.ReceiveMessageInput
				q := fakeQueue(t, &fakeAPI{receive: func(i *awssqs.ReceiveMessageInput) (*awssqs.ReceiveMessageOutput, error) {
					in = i
					return &awssqs.ReceiveMessageOutput{}, nil
				}})
				msgs, err := q.Receive(t.Context(), tt.limit, tt.wait)
				if err != nil || len(msgs) != 0 {
					t.Fatalf("Receive = %v, %v", msgs, err)
				}
				if in.MaxNumberOfMessages != tt.wantMax || in.WaitTimeSeconds != tt.wantWaitS || (in.VisibilityTimeout != 0) != tt.wantVisSet {
					t.Errorf("got max %d wait %d visibility %d; want %d %d (visibility set %v)",
						in.MaxNumberOfMessages, in.WaitTimeSeconds, in.VisibilityTimeout, tt.wantMax, tt.wantWaitS, tt.wantVisSet)
				}
			})
		}
	})
}

func TestVisibilitySeconds(t *testing.T) {
	tests := []struct {
		name string
		call func(*sqs.Queue, queue.Message) error
		want int32
	}{
		{"extend rounds up", func(q *sqs.Queue, m queue.Message) error { return q.Extend(t.Context(), m, 1500*time.Millisecond) }, 2},
		{"extend clamps to 12 h", func(q *sqs.Queue, m queue.Message) error { return q.Extend(t.Context(), m, 13*time.Hour) }, 43200},
		{"negative extend is 0", func(q *sqs.Queue, m queue.Message) error { return q.Extend(t.Context(), m, -time.Second) }, 0},
		{"release now", func(q *sqs.Queue, m queue.Message) error { return q.Release(t.Context(), m, 0) }, 0},
		{"release later", func(q *sqs.Queue, m queue.Message) error { return q.Release(t.Context(), m, 30*time.Second) }, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in *awssqs.ChangeMessageVisibilityInput
			q := fakeQueue(t, &fakeAPI{visibility: func(i *awssqs.ChangeMessageVisibilityInput) (*awssqs.ChangeMessageVisibilityOutput, error) {
				in = i
				return &awssqs.ChangeMessageVisibilityOutput{}, nil
			}})
			if err := tt.call(q, queue.Message{Receipt: "rh"}); err != nil {
				t.Fatal(err)
			}
			if in.VisibilityTimeout != tt.want || aws.ToString(in.ReceiptHandle) != "rh" {
				t.Errorf("visibility %d receipt %q; want %d rh", in.VisibilityTimeout, aws.ToString(in.ReceiptHandle), tt.want)
			}
		})
	}
	t.Run("empty receipt never reaches SQS", func(t *testing.T) {
		q := fakeQueue(t, &fakeAPI{})
		for name, err := range map[string]error{
			"Extend":  q.Extend(t.Context(), queue.Message{}, time.Second),
			"Release": q.Release(t.Context(), queue.Message{}, 0),
			"Ack":     q.Ack(t.Context(), queue.Message{}),
		} {
			if !errors.Is(err, sqs.ErrReceipt) {
				t.Errorf("%s with no receipt = %v, want ErrReceipt", name, err)
			}
		}
	})
}

// dlqFake serves a DLQ of n readable messages and records what happens
// to them.
type dlqFake struct {
	mu       sync.Mutex
	pending  []types.Message
	sent     []string
	deleted  []string
	released []string
	sendErr  map[string]error // by message ID
	delErr   map[string]error
}

func newDLQFake(t *testing.T, n int) *dlqFake {
	f := &dlqFake{sendErr: map[string]error{}, delErr: map[string]error{}}
	for i := range n {
		id := fmt.Sprint("m", i)
		body, err := sqs.Encode(envelope(id))
		if err != nil {
			t.Fatal(err)
		}
		f.pending = append(f.pending, types.Message{MessageId: aws.String(id), ReceiptHandle: aws.String(id), Body: aws.String(body)})
	}
	return f
}

func (f *dlqFake) api() *fakeAPI {
	return &fakeAPI{
		receive: func(in *awssqs.ReceiveMessageInput) (*awssqs.ReceiveMessageOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			n := min(int(in.MaxNumberOfMessages), len(f.pending))
			out := f.pending[:n]
			f.pending = f.pending[n:]
			return &awssqs.ReceiveMessageOutput{Messages: out}, nil
		},
		send: func(in *awssqs.SendMessageInput) (*awssqs.SendMessageOutput, error) {
			env, err := sqs.Decode(aws.ToString(in.MessageBody))
			if err != nil {
				return nil, err
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if err := f.sendErr[env.ExecutionID]; err != nil {
				return nil, err
			}
			f.sent = append(f.sent, env.ExecutionID)
			return &awssqs.SendMessageOutput{}, nil
		},
		delete: func(in *awssqs.DeleteMessageInput) (*awssqs.DeleteMessageOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if err := f.delErr[aws.ToString(in.ReceiptHandle)]; err != nil {
				return nil, err
			}
			f.deleted = append(f.deleted, aws.ToString(in.ReceiptHandle))
			return &awssqs.DeleteMessageOutput{}, nil
		},
		visibility: func(in *awssqs.ChangeMessageVisibilityInput) (*awssqs.ChangeMessageVisibilityOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if in.VisibilityTimeout != 0 {
				return nil, fmt.Errorf("release with visibility %d", in.VisibilityTimeout)
			}
			f.released = append(f.released, aws.ToString(in.ReceiptHandle))
			return &awssqs.ChangeMessageVisibilityOutput{}, nil
		},
	}
}

func TestRedriveFailures(t *testing.T) {
	throttled := &types.RequestThrottled{Message: aws.String("slow down")}
	tests := []struct {
		name         string
		sendErr      string // message ID whose send fails
		delErr       string // message ID whose delete fails
		wantMoved    int
		wantSent     []string
		wantDeleted  []string
		wantReleased []string
	}{
		{"send fails", "m1", "", 1, []string{"m0"}, []string{"m0"}, []string{"m2", "m1"}},
		{"delete fails", "", "m1", 2, []string{"m0", "m1"}, []string{"m0"}, []string{"m2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDLQFake(t, 3)
			if tt.sendErr != "" {
				f.sendErr[tt.sendErr] = throttled
			}
			if tt.delErr != "" {
				f.delErr[tt.delErr] = throttled
			}
			moved, err := fakeQueue(t, f.api()).Redrive(t.Context(), 10)
			if !errors.Is(err, sqs.ErrThrottled) || sdkTypeEscapes(err) {
				t.Errorf("Redrive err = %v, want ErrThrottled without SDK types", err)
			}
			if moved != tt.wantMoved || !slices.Equal(f.sent, tt.wantSent) || !slices.Equal(f.deleted, tt.wantDeleted) || !slices.Equal(f.released, tt.wantReleased) {
				t.Errorf("moved %d sent %v deleted %v released %v; want %d %v %v %v",
					moved, f.sent, f.deleted, f.released, tt.wantMoved, tt.wantSent, tt.wantDeleted, tt.wantReleased)
			}
		})
	}
	t.Run("bad arguments", func(t *testing.T) {
		q := fakeQueue(t, &fakeAPI{})
		if _, err := q.Redrive(t.Context(), 0); err == nil {
			t.Error("Redrive(0) succeeded")
		}
		noDLQ, err := sqs.New(&fakeAPI{}, sqs.Config{QueueURL: "u"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := noDLQ.Redrive(t.Context(), 1); !errors.Is(err, sqs.ErrNoDLQ) {
			t.Errorf("Redrive without a DLQ = %v, want ErrNoDLQ", err)
		}
		if _, err := noDLQ.DeadLetters(t.Context(), 1); !errors.Is(err, sqs.ErrNoDLQ) {
			t.Errorf("DeadLetters without a DLQ = %v, want ErrNoDLQ", err)
		}
	})
}

func TestDeadLettersReleases(t *testing.T) {
	f := newDLQFake(t, 12)
	envs, err := fakeQueue(t, f.api()).DeadLetters(t.Context(), 11)
	if err != nil || len(envs) != 11 {
		t.Fatalf("DeadLetters = %d envelopes, %v; want 11", len(envs), err)
	}
	if len(f.released) != 11 || len(f.sent)+len(f.deleted) != 0 {
		t.Errorf("released %d, sent %d, deleted %d; want 11, 0, 0", len(f.released), len(f.sent), len(f.deleted))
	}
}

func TestDepthBadAttribute(t *testing.T) {
	q := fakeQueue(t, &fakeAPI{attributes: func(*awssqs.GetQueueAttributesInput) (*awssqs.GetQueueAttributesOutput, error) {
		return &awssqs.GetQueueAttributesOutput{Attributes: map[string]string{"ApproximateNumberOfMessages": "x"}}, nil
	}})
	if _, _, err := q.Depth(t.Context()); !errors.Is(err, sqs.ErrRequest) {
		t.Errorf("Depth = %v, want ErrRequest", err)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		api  sqs.API
		cfg  sqs.Config
	}{
		{"nil client", nil, sqs.Config{QueueURL: "u"}},
		{"no queue URL", &fakeAPI{}, sqs.Config{}},
		{"visibility too long", &fakeAPI{}, sqs.Config{QueueURL: "u", Visibility: 13 * time.Hour}},
		{"negative visibility", &fakeAPI{}, sqs.Config{QueueURL: "u", Visibility: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sqs.New(tt.api, tt.cfg); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	good, err := sqs.Encode(envelope("fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{good, "", "{}", `{"v":1}`, `{"v":1,"executionId":"x","cluster":"c"}`, "null", `{"v":1,"executionId":"x","cluster":"c","deadline":"bad"}`, `[]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		env, err := sqs.Decode(body)
		if err != nil {
			if !reflect.DeepEqual(env, queue.Envelope{}) {
				t.Errorf("failed Decode returned a non-zero envelope %+v", env)
			}
			return
		}
		if err := env.Check(); err != nil {
			t.Fatalf("Decode accepted an envelope failing Check: %v", err)
		}
		once, err := sqs.Encode(env)
		if err != nil {
			t.Fatalf("Encode of a decoded envelope: %v", err)
		}
		again, err := sqs.Decode(once)
		if err != nil {
			t.Fatalf("Decode of a re-encoded envelope: %v", err)
		}
		twice, err := sqs.Encode(again)
		if err != nil || twice != once {
			t.Errorf("round trip changed the body:\n%s\n%s (%v)", once, twice, err)
		}
	})
}
