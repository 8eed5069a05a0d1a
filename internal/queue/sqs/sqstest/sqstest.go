// Package sqstest gives tests a fresh work queue and dead-letter queue on
// the test binary's fauxqs (started by internal/emulator), wired like a
// cluster's: the work queue's redrive policy moves a message to the DLQ
// after MaxReceiveCount receives. Each call creates queues with unique
// names, so tests of one binary share the emulator but never a queue.
//
// The test binary must stop the emulator afterwards:
//
//	func TestMain(m *testing.M) { emulator.Main(m) }
//
//	func TestX(t *testing.T) {
//		qs := sqstest.New(t, sqstest.Options{})
//		q, err := sqs.New(qs.Client, sqs.Config{QueueURL: qs.URL, DLQURL: qs.DLQURL})
//		...
//	}
package sqstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/autogate/autogate/internal/emulator"
)

// Options shapes the queues New creates.
type Options struct {
	// MaxReceiveCount is the work queue's redrive policy; default 2.
	MaxReceiveCount int
	// Visibility is the work queue's VisibilityTimeout, in whole seconds;
	// default 30 s.
	Visibility time.Duration
}

// Queues is one work queue and its dead-letter queue.
type Queues struct {
	// Client talks to the fauxqs the queues live on.
	Client *awssqs.Client
	// URL and ARN name the work queue.
	URL, ARN string
	// DLQURL and DLQARN name the dead-letter queue.
	DLQURL, DLQARN string
}

// New creates a work queue and its DLQ, or ends t if fauxqs cannot start
// (a failure with CI=true, a loud skip otherwise).
func New(t testing.TB, opts Options) Queues {
	t.Helper()
	if opts.MaxReceiveCount <= 0 {
		opts.MaxReceiveCount = 2
	}
	if opts.Visibility <= 0 {
		opts.Visibility = 30 * time.Second
	}
	client := awssqs.NewFromConfig(emulator.AWSConfig(t, emulator.SQS(t)))
	name := queueName(t)
	var qs Queues
	qs.Client = client
	qs.DLQURL, qs.DLQARN = create(t, client, name+"-dlq", nil)
	policy, err := json.Marshal(map[string]string{
		"deadLetterTargetArn": qs.DLQARN,
		"maxReceiveCount":     strconv.Itoa(opts.MaxReceiveCount),
	})
	if err != nil {
		t.Fatal(err)
	}
	qs.URL, qs.ARN = create(t, client, name, map[string]string{
		string(types.QueueAttributeNameRedrivePolicy):     string(policy),
		string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(opts.Visibility.Seconds())),
	})
	return qs
}

func create(t testing.TB, client *awssqs.Client, name string, attrs map[string]string) (url, arn string) {
	t.Helper()
	out, err := client.CreateQueue(t.Context(), &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	a, err := client.GetQueueAttributes(t.Context(), &awssqs.GetQueueAttributesInput{
		QueueUrl: out.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl), a.Attributes[string(types.QueueAttributeNameQueueArn)]
}

// queueName derives a unique, valid queue name (≤ 80 of [A-Za-z0-9_-],
// leaving room for "-dlq") from the test's name.
func queueName(t testing.TB) string {
	var b strings.Builder
	for _, r := range t.Name() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	base := b.String()
	if len(base) > 56 {
		base = base[:56]
	}
	var suffix [8]byte
	_, _ = rand.Read(suffix[:]) // crypto/rand.Read never fails
	return base + "-" + hex.EncodeToString(suffix[:])
}

// ReceiveRaw receives up to n messages from url as a Lambda event source
// mapping does: with every system and message attribute, waiting up to
// wait for the first.
func (qs Queues) ReceiveRaw(t testing.TB, url string, n int, wait time.Duration) []types.Message {
	t.Helper()
	out, err := qs.Client.ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(url),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             int32(wait / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		t.Fatalf("ReceiveMessage %s: %v", url, err)
	}
	return out.Messages
}

// Count reports the approximate numbers of visible and in-flight messages
// in url.
func (qs Queues) Count(t testing.TB, url string) (visible, inFlight int) {
	t.Helper()
	out, err := qs.Client.GetQueueAttributes(t.Context(), &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes %s: %v", url, err)
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inFlight
}

// Event is msgs (received with every attribute, as ReceiveRaw does) as the
// SQS event source mapping hands them to a Lambda function, from the work
// queue qs.ARN names.
func (qs Queues) Event(msgs ...types.Message) events.SQSEvent {
	var ev events.SQSEvent
	for _, m := range msgs {
		attrs := map[string]events.SQSMessageAttribute{}
		for k, v := range m.MessageAttributes {
			attrs[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue,
				StringListValues: v.StringListValues, BinaryListValues: v.BinaryListValues}
		}
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Md5OfBody: aws.ToString(m.MD5OfBody), Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
			Attributes: m.Attributes, MessageAttributes: attrs,
			EventSourceARN: qs.ARN, EventSource: "aws:sqs", AWSRegion: emulator.Region,
		})
	}
	return ev
}
