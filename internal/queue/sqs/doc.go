// Package sqs is the per-cluster work queue on Amazon SQS: a standard queue
// (no FIFO, no message groups, no deduplication IDs) whose redrive policy
// moves a message to the cluster's dead-letter queue after maxReceiveCount
// receives. Queue has the same method set as queue.Local (Send, Receive,
// Extend, Ack, Release), so the runner core uses either unchanged; Depth,
// Redrive and DeadLetters serve metrics, autoscaling and `autogate redrive`.
//
// Guarantees:
//   - Delivery is at least once. A message may arrive twice (SQS duplicates,
//     a visibility timeout that ran out, a redrive that was interrupted);
//     the runner core makes that harmless by claiming the execution record
//     with a conditional write before it starts anything.
//   - The body is the JSON of a queue.Envelope and never holds inputs, so it
//     stays far below SQS's size limit; Send still refuses a message over
//     MaxMessageBytes (body plus attributes, as SQS counts them) with
//     ErrTooLarge instead of letting SQS truncate or reject it obscurely.
//     Every message also carries the envelope version as the Number
//     attribute AttrEnvelopeVersion, so a reader can pick a decoder without
//     parsing the body. The body's own "v" field is authoritative.
//   - Receive never drops a message it cannot read. A body that is not a
//     valid envelope (poison) comes back as a Message whose Envelope fails
//     Check, so the runner core reports it Failed, leaves it alone, and the
//     queue's redrive policy moves it to the dead-letter queue once it has
//     been received maxReceiveCount times.
//   - Errors are wrapped with the operation and queue, and SDK error types
//     never leave this package: callers branch with errors.Is on
//     ErrQueueNotFound, ErrThrottled, ErrUnavailable, ErrReceipt, ErrRequest,
//     ErrTooLarge, ErrNoDLQ, or on context.Canceled/DeadlineExceeded.
//
// It does not retry beyond what the SDK's retryer does, order messages,
// or delete a message by itself: Ack does, after the result is recorded.
//
// Redrive moves dead letters back by hand (ReceiveMessage on the DLQ,
// SendMessage to the work queue, DeleteMessage on the DLQ) rather than with
// StartMessageMoveTask: the move task is asynchronous, reports no count to
// wait on, and fauxqs (the SQS emulator the tests run on) does not implement
// it. The manual move is at least once too: a crash between the send and the
// delete leaves a copy in the DLQ, which a later redrive moves again and the
// runner core then acknowledges as already finished. A moved message gets a
// new message ID and a fresh receive count.
//
// Usage:
//
//	client := awssqs.NewFromConfig(awsCfg)
//	q, err := sqs.New(client, sqs.Config{QueueURL: workURL, DLQURL: dlqURL, Cluster: "prod"})
//	...
//	err = q.Send(ctx, queue.Envelope{V: queue.EnvelopeVersion, ExecutionID: id, Cluster: "prod"})
//	msgs, err := q.Receive(ctx, 10, 20*time.Second)
package sqs
