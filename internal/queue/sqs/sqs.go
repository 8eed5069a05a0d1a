package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/queue"
)

// API is the part of *sqs.Client the queue calls, with the SDK's own
// signatures, so the real client fits and tests can swap in a double.
type API interface {
	SendMessage(ctx context.Context, params *awssqs.SendMessageInput, optFns ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error)
	ReceiveMessage(ctx context.Context, params *awssqs.ReceiveMessageInput, optFns ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, params *awssqs.ChangeMessageVisibilityInput, optFns ...func(*awssqs.Options)) (*awssqs.ChangeMessageVisibilityOutput, error)
	DeleteMessage(ctx context.Context, params *awssqs.DeleteMessageInput, optFns ...func(*awssqs.Options)) (*awssqs.DeleteMessageOutput, error)
	GetQueueAttributes(ctx context.Context, params *awssqs.GetQueueAttributesInput, optFns ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error)
}

var _ API = (*awssqs.Client)(nil)

// Message attributes every message carries.
const (
	// AttrEnvelopeVersion is the Number attribute holding the envelope
	// version of the body (queue.EnvelopeVersion when this build sent it).
	AttrEnvelopeVersion = "autogate-envelope-version"
	// AttrCluster is the String attribute holding the envelope's cluster.
	AttrCluster = "autogate-cluster"
)

// Limits of SQS that the queue enforces or clamps to.
const (
	// MaxMessageBytes is the largest message Send accepts: body plus
	// attribute names, types and values, as SQS counts them. It is SQS's
	// long-standing 256 KiB limit (a queue's MaximumMessageSize may allow
	// more today; an envelope never comes close either way).
	MaxMessageBytes = 256 << 10
	// MaxReceiveBatch is the most messages one ReceiveMessage returns.
	MaxReceiveBatch = 10
	// MaxWait is the longest long poll SQS allows per ReceiveMessage.
	MaxWait = 20 * time.Second
	// MaxVisibility is the longest visibility timeout SQS allows (12 h).
	MaxVisibility = 12 * time.Hour
)

// Config configures a Queue.
type Config struct {
	// QueueURL is the cluster's work queue. Required.
	QueueURL string
	// DLQURL is the work queue's dead-letter queue; needed only by Redrive
	// and DeadLetters.
	DLQURL string
	// Cluster, when set, is the only cluster whose envelopes Send accepts
	// (each cluster has its own queue) and is logged with every warning.
	Cluster string
	// Visibility, when positive, is the visibility timeout Receive asks for
	// (rounded up to whole seconds, at most MaxVisibility); 0 keeps the
	// queue's own VisibilityTimeout attribute. The runner core extends it
	// with Extend while a service runs.
	Visibility time.Duration
	// Logger receives warnings about unreadable messages; nil discards them.
	Logger *slog.Logger
	// Clock measures how long messages waited in the queue (for logs);
	// nil means clock.Real{}.
	Clock clock.Clock
}

// Queue is a work queue on SQS. It is safe for concurrent use and holds no
// per-message state: a Message's Receipt is all Extend, Ack and Release need.
type Queue struct {
	client API
	cfg    Config
	log    *slog.Logger
	clk    clock.Clock
}

// New returns a queue on cfg.QueueURL. It makes no call.
func New(client API, cfg Config) (*Queue, error) {
	switch {
	case client == nil:
		return nil, errors.New("sqs queue: nil client")
	case cfg.QueueURL == "":
		return nil, errors.New("sqs queue: queue URL required")
	case cfg.Visibility < 0 || cfg.Visibility > MaxVisibility:
		return nil, fmt.Errorf("sqs queue: visibility %v out of range 0..%v", cfg.Visibility, MaxVisibility)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger.With("queue_url", cfg.QueueURL)
	if cfg.Cluster != "" {
		log = log.With("cluster", cfg.Cluster)
	}
	return &Queue{client: client, cfg: cfg, log: log, clk: cfg.Clock}, nil
}

// Encode returns the message body Send writes for env: the envelope's
// JSON. It checks env but not its size.
func Encode(env queue.Envelope) (string, error) {
	if err := env.Check(); err != nil {
		return "", fmt.Errorf("encode envelope: %w", err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		return "", fmt.Errorf("encode envelope: %w", err)
	}
	return string(b), nil
}

// attributes are the message attributes Send writes for env.
func attributes(env queue.Envelope) map[string]types.MessageAttributeValue {
	return map[string]types.MessageAttributeValue{
		AttrEnvelopeVersion: {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(env.V))},
		AttrCluster:         {DataType: aws.String("String"), StringValue: aws.String(env.Cluster)},
	}
}

// Decode reads a message body written by Send. It fails, without
// guessing, on anything that is not the JSON of an envelope this build
// reads (queue.Envelope.Check). Unknown JSON fields are ignored, so a newer
// writer may add optional fields without a version change.
func Decode(body string) (queue.Envelope, error) {
	var env queue.Envelope
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		return queue.Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	if err := env.Check(); err != nil {
		return queue.Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	return env, nil
}

// messageSize is a message's size as SQS counts it against its limit.
func messageSize(body string, attrs map[string]types.MessageAttributeValue) int {
	n := len(body)
	for k, v := range attrs {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return n
}

// Send enqueues env on the work queue. It refuses an envelope that fails
// Check, belongs to another cluster than Config.Cluster, or would exceed
// MaxMessageBytes (ErrTooLarge), before calling SQS.
func (q *Queue) Send(ctx context.Context, env queue.Envelope) error {
	if q.cfg.Cluster != "" && env.Cluster != q.cfg.Cluster {
		return fmt.Errorf("sqs send %s: envelope of cluster %q on the queue of cluster %q", env.ExecutionID, env.Cluster, q.cfg.Cluster)
	}
	body, err := Encode(env)
	if err != nil {
		return fmt.Errorf("sqs send: %w", err)
	}
	attrs := attributes(env)
	if n := messageSize(body, attrs); n > MaxMessageBytes {
		return fmt.Errorf("sqs send %s: %w: %d bytes, the limit is %d (an envelope must reference inputs, never carry them)", env.ExecutionID, ErrTooLarge, n, MaxMessageBytes)
	}
	_, err = q.client.SendMessage(ctx, &awssqs.SendMessageInput{
		QueueUrl: aws.String(q.cfg.QueueURL), MessageBody: aws.String(body), MessageAttributes: attrs,
	})
	return translate("SendMessage", q.cfg.QueueURL, err)
}

// Receive long-polls the work queue for up to limit messages (clamped to
// 1..MaxReceiveBatch), waiting up to wait (rounded up to whole seconds,
// clamped to 0..MaxWait; 0 is a short poll) for the first one. It returns
// no messages and no error when the wait ends empty. A message whose body
// is not a valid envelope is returned with an Envelope that fails Check
// (see the package documentation).
func (q *Queue) Receive(ctx context.Context, limit int, wait time.Duration) ([]queue.Message, error) {
	in := &awssqs.ReceiveMessageInput{
		QueueUrl:            aws.String(q.cfg.QueueURL),
		MaxNumberOfMessages: int32(min(max(limit, 1), MaxReceiveBatch)),
		WaitTimeSeconds:     int32(seconds(min(wait, MaxWait))),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameSentTimestamp,
		},
		MessageAttributeNames: []string{AttrEnvelopeVersion, AttrCluster},
	}
	if q.cfg.Visibility > 0 {
		in.VisibilityTimeout = int32(seconds(q.cfg.Visibility))
	}
	out, err := q.client.ReceiveMessage(ctx, in)
	if err != nil {
		return nil, translate("ReceiveMessage", q.cfg.QueueURL, err)
	}
	msgs := make([]queue.Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msgs = append(msgs, q.message(m))
	}
	return msgs, nil
}

// message converts one received SQS message.
func (q *Queue) message(m types.Message) queue.Message {
	msg := queue.Message{
		Receipt:      aws.ToString(m.ReceiptHandle),
		ReceiveCount: ReceiveCount(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]),
	}
	env, err := Decode(aws.ToString(m.Body))
	if err != nil {
		// Poison: the zero envelope fails Check, so the runner core reports
		// Failed and the redrive policy takes the message to the DLQ.
		q.log.Warn("unreadable message body; leaving it for the dead-letter queue",
			"message_id", aws.ToString(m.MessageId), "receive_count", msg.ReceiveCount,
			"body_bytes", len(aws.ToString(m.Body)), "age_ms", q.age(m).Milliseconds(), "error", err)
		return msg
	}
	msg.Envelope = env
	return msg
}

// age is how long ago m was first sent, or 0 if unknown.
func (q *Queue) age(m types.Message) time.Duration {
	ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64)
	if err != nil {
		return 0
	}
	return q.clk.Now().Sub(time.UnixMilli(ms))
}

// ReceiveCount parses SQS's ApproximateReceiveCount attribute. A missing or
// unreadable value counts as 1: the message is being delivered now.
func ReceiveCount(attr string) int {
	n, err := strconv.Atoi(attr)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// Extend keeps m invisible for d from now (rounded up to whole seconds,
// clamped to 0..MaxVisibility). SQS also caps the total at 12 hours from
// the first receive. ErrReceipt means the hold on m is already lost.
func (q *Queue) Extend(ctx context.Context, m queue.Message, d time.Duration) error {
	return q.setVisibility(ctx, "Extend", m, d)
}

// Release makes m visible again after delay (0: at once), to be delivered
// to whichever runner receives next. The receive count is kept.
func (q *Queue) Release(ctx context.Context, m queue.Message, delay time.Duration) error {
	return q.setVisibility(ctx, "Release", m, delay)
}

func (q *Queue) setVisibility(ctx context.Context, what string, m queue.Message, d time.Duration) error {
	if m.Receipt == "" {
		return fmt.Errorf("sqs %s %s: %w: empty receipt handle", what, m.Envelope.ExecutionID, ErrReceipt)
	}
	_, err := q.client.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(q.cfg.QueueURL),
		ReceiptHandle:     aws.String(m.Receipt),
		VisibilityTimeout: int32(seconds(min(d, MaxVisibility))),
	})
	return translate("ChangeMessageVisibility", q.cfg.QueueURL, err)
}

// Ack deletes m from the queue. Deleting a message that is already gone
// succeeds (so a Lambda event source mapping deleting it again is harmless).
func (q *Queue) Ack(ctx context.Context, m queue.Message) error {
	if m.Receipt == "" {
		return fmt.Errorf("sqs Ack %s: %w: empty receipt handle", m.Envelope.ExecutionID, ErrReceipt)
	}
	_, err := q.client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{
		QueueUrl: aws.String(q.cfg.QueueURL), ReceiptHandle: aws.String(m.Receipt),
	})
	return translate("DeleteMessage", q.cfg.QueueURL, err)
}

// Depth reports the work queue's approximate number of visible messages
// (waiting to be received) and in-flight ones (received, neither deleted
// nor visible again). SQS's counts lag by up to a minute.
func (q *Queue) Depth(ctx context.Context) (visible, inFlight int, err error) {
	return q.depth(ctx, q.cfg.QueueURL)
}

func (q *Queue) depth(ctx context.Context, url string) (visible, inFlight int, err error) {
	out, err := q.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return 0, 0, translate("GetQueueAttributes", url, err)
	}
	get := func(name types.QueueAttributeName) (int, error) {
		n, err := strconv.Atoi(out.Attributes[string(name)])
		if err != nil {
			return 0, fmt.Errorf("sqs GetQueueAttributes %s: %w: attribute %s = %q", url, ErrRequest, name, out.Attributes[string(name)])
		}
		return n, nil
	}
	if visible, err = get(types.QueueAttributeNameApproximateNumberOfMessages); err != nil {
		return 0, 0, err
	}
	if inFlight, err = get(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible); err != nil {
		return 0, 0, err
	}
	return visible, inFlight, nil
}

// VisibilityTimeout is how long a received message stays hidden before it
// is delivered again: the Visibility this queue asks for on Receive, else the
// queue's own VisibilityTimeout attribute. The gateway presumes a queued
// run's message lost once this much (and a margin) has passed unclaimed.
func (q *Queue) VisibilityTimeout(ctx context.Context) (time.Duration, error) {
	if q.cfg.Visibility > 0 {
		return time.Duration(seconds(q.cfg.Visibility)) * time.Second, nil
	}
	url := q.cfg.QueueURL
	out, err := q.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout},
	})
	if err != nil {
		return 0, translate("GetQueueAttributes", url, err)
	}
	v := out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)]
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("sqs GetQueueAttributes %s: %w: attribute VisibilityTimeout = %q", url, ErrRequest, v)
	}
	return time.Duration(n) * time.Second, nil
}

// seconds rounds d up to whole seconds, never below 0: a visibility or
// wait is never shorter than asked.
func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
