package sqs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/autogate/autogate/internal/queue"
)

// Timing of the dead-letter operations.
const (
	// dlqHold is how long Redrive and DeadLetters keep the dead letters they
	// received hidden from other readers while they work on them.
	dlqHold = 60 * time.Second
	// dlqWait is the long poll per ReceiveMessage on the DLQ. A long poll,
	// unlike a short one, asks every SQS server, so an empty answer means
	// the DLQ is empty (as far as SQS's eventual consistency goes); each
	// Redrive or DeadLetters call ends with one such empty wait.
	dlqWait = time.Second
	// releaseTimeout bounds the best-effort hand-back of dead letters when
	// the caller's context has ended.
	releaseTimeout = 5 * time.Second
)

// Redrive moves up to max messages (max ≥ 1) from the dead-letter queue
// back to the work queue and reports how many it moved. Each message is
// sent to the work queue with its body and message attributes and then
// deleted from the DLQ; it gets a new message ID and a fresh receive count.
// It stops early, with the count so far, at the first error or when the
// DLQ is empty; messages it received but did not move are made visible in
// the DLQ again. See the package documentation for why this is not
// StartMessageMoveTask.
func (q *Queue) Redrive(ctx context.Context, max int) (moved int, err error) {
	if q.cfg.DLQURL == "" {
		return 0, fmt.Errorf("sqs redrive: %w", ErrNoDLQ)
	}
	if max < 1 {
		return 0, fmt.Errorf("sqs redrive: max %d must be at least 1", max)
	}
	for moved < max {
		msgs, err := q.receiveDLQ(ctx, min(max-moved, MaxReceiveBatch))
		if err != nil {
			return moved, err
		}
		if len(msgs) == 0 {
			break
		}
		for i, m := range msgs {
			if err := q.move(ctx, m); err != nil {
				q.releaseDLQ(ctx, msgs[i+1:])
				if errors.Is(err, errDeleteAfterSend) {
					moved++ // it is on the work queue; a copy stays in the DLQ
				} else {
					q.releaseDLQ(ctx, msgs[i:i+1])
				}
				return moved, err
			}
			moved++
		}
	}
	if moved > 0 {
		q.log.Info("redrove dead letters", "count", moved, "dlq_url", q.cfg.DLQURL)
	}
	return moved, nil
}

// errDeleteAfterSend marks a move whose send succeeded and whose delete
// from the DLQ failed.
var errDeleteAfterSend = errors.New("sent to the work queue, but not deleted from the dead-letter queue")

// move sends one dead letter to the work queue and deletes it from the DLQ.
func (q *Queue) move(ctx context.Context, m types.Message) error {
	_, err := q.client.SendMessage(ctx, &awssqs.SendMessageInput{
		QueueUrl: aws.String(q.cfg.QueueURL), MessageBody: m.Body, MessageAttributes: m.MessageAttributes,
	})
	if err != nil {
		return fmt.Errorf("redrive message %s: %w", aws.ToString(m.MessageId), translate("SendMessage", q.cfg.QueueURL, err))
	}
	_, err = q.client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(q.cfg.DLQURL), ReceiptHandle: m.ReceiptHandle})
	if err != nil {
		return fmt.Errorf("redrive message %s: %w: %w", aws.ToString(m.MessageId), errDeleteAfterSend, translate("DeleteMessage", q.cfg.DLQURL, err))
	}
	return nil
}

// DeadLetters returns the envelopes of up to max messages (max ≥ 1) in the
// dead-letter queue without removing them: it receives them, hiding each
// for a minute so it is seen once, then makes them all visible again.
// Bodies that are not valid envelopes are skipped (and counted in a
// warning). Peeking counts as a receive on the DLQ (its
// ApproximateReceiveCount grows), which matters only if the DLQ itself had
// a redrive policy; Autogate's has none.
func (q *Queue) DeadLetters(ctx context.Context, max int) ([]queue.Envelope, error) {
	if q.cfg.DLQURL == "" {
		return nil, fmt.Errorf("sqs dead letters: %w", ErrNoDLQ)
	}
	if max < 1 {
		return nil, fmt.Errorf("sqs dead letters: max %d must be at least 1", max)
	}
	var held []types.Message
	defer func() { q.releaseDLQ(ctx, held) }()
	seen := map[string]bool{}
	var envs []queue.Envelope
	unreadable := 0
	for len(envs)+unreadable < max {
		msgs, err := q.receiveDLQ(ctx, min(max-len(envs)-unreadable, MaxReceiveBatch))
		if err != nil {
			return envs, err
		}
		if len(msgs) == 0 {
			break
		}
		held = append(held, msgs...)
		for _, m := range msgs {
			if id := aws.ToString(m.MessageId); seen[id] {
				continue
			} else {
				seen[id] = true
			}
			env, err := Decode(aws.ToString(m.Body))
			if err != nil {
				unreadable++
				continue
			}
			envs = append(envs, env)
		}
	}
	if unreadable > 0 {
		q.log.Warn("dead-letter queue holds unreadable messages", "count", unreadable, "dlq_url", q.cfg.DLQURL)
	}
	return envs, nil
}

// receiveDLQ receives up to n dead letters, hidden for dlqHold.
func (q *Queue) receiveDLQ(ctx context.Context, n int) ([]types.Message, error) {
	out, err := q.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
		QueueUrl:              aws.String(q.cfg.DLQURL),
		MaxNumberOfMessages:   int32(n),
		WaitTimeSeconds:       int32(seconds(dlqWait)),
		VisibilityTimeout:     int32(seconds(dlqHold)),
		MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		return nil, translate("ReceiveMessage", q.cfg.DLQURL, err)
	}
	return out.Messages, nil
}

// releaseDLQ makes held dead letters visible again, best effort: at worst
// they stay hidden for the rest of dlqHold.
func (q *Queue) releaseDLQ(ctx context.Context, msgs []types.Message) {
	if len(msgs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	for _, m := range msgs {
		_, err := q.client.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(q.cfg.DLQURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
		})
		if err != nil {
			q.log.Warn("release dead letter", "message_id", aws.ToString(m.MessageId), "dlq_url", q.cfg.DLQURL,
				"error", translate("ChangeMessageVisibility", q.cfg.DLQURL, err))
		}
	}
}

// DeadLetterDepth reports the approximate number of messages in the
// dead-letter queue (visible plus in flight).
func (q *Queue) DeadLetterDepth(ctx context.Context) (int, error) {
	if q.cfg.DLQURL == "" {
		return 0, fmt.Errorf("sqs dead-letter depth: %w", ErrNoDLQ)
	}
	visible, inFlight, err := q.depth(ctx, q.cfg.DLQURL)
	return visible + inFlight, err
}
