package sqs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Errors of the SQS queue. Every SDK error is translated into one of these
// (or a context error) with the SDK's message kept as text only, so no SDK
// type escapes the package.
var (
	// ErrQueueNotFound means the configured queue does not exist.
	ErrQueueNotFound = errors.New("sqs queue not found")
	// ErrThrottled means SQS kept throttling (or refused more in-flight
	// messages) after the SDK's retries.
	ErrThrottled = errors.New("sqs throttled the request")
	// ErrUnavailable means SQS could not be reached or kept failing (5xx,
	// network) after the SDK's retries.
	ErrUnavailable = errors.New("sqs unavailable")
	// ErrReceipt means a receipt handle no longer names an in-flight
	// delivery: the message was deleted, or its visibility ran out and
	// someone else received it. The caller's hold on the message is gone.
	ErrReceipt = errors.New("sqs receipt handle no longer valid")
	// ErrRequest means SQS rejected the request for another reason
	// (validation, access denied, ...); the message says which.
	ErrRequest = errors.New("sqs rejected the request")
	// ErrTooLarge means a message exceeds MaxMessageBytes.
	ErrTooLarge = errors.New("sqs message too large")
	// ErrNoDLQ means Redrive or DeadLetters was called on a queue configured
	// without a dead-letter queue URL.
	ErrNoDLQ = errors.New("no dead-letter queue configured")
)

// translate turns an SDK error into one of the package's errors. op names
// the SQS action, url the queue.
func translate(op, url string, err error) error {
	if err == nil {
		return nil
	}
	prefix := "sqs " + op + " " + url
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("%s: %w", prefix, ctxErr)
		}
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		// SQS speaks JSON but also sends the old query-protocol code
		// (x-amzn-query-error), which the SDK prefers when present:
		// "AWS.SimpleQueueService.NonExistentQueue" for QueueDoesNotExist.
		switch strings.TrimPrefix(api.ErrorCode(), "AWS.SimpleQueueService.") {
		case "QueueDoesNotExist", "NonExistentQueue":
			return fmt.Errorf("%s: %w: %s", prefix, ErrQueueNotFound, api.ErrorMessage())
		case "RequestThrottled", "ThrottlingException", "KmsThrottled", "OverLimit":
			return fmt.Errorf("%s: %w (after the SDK's retries): %s", prefix, ErrThrottled, api.ErrorMessage())
		case "ReceiptHandleIsInvalid", "MessageNotInflight":
			return fmt.Errorf("%s: %w: %s", prefix, ErrReceipt, api.ErrorMessage())
		}
		if api.ErrorFault() == smithy.FaultServer {
			return fmt.Errorf("%s: %w (after the SDK's retries): %s", prefix, ErrUnavailable, err.Error())
		}
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) && resp.HTTPStatusCode() >= 500 {
		return fmt.Errorf("%s: %w (after the SDK's retries): %s", prefix, ErrUnavailable, err.Error())
	}
	var netErr net.Error
	if errors.As(err, &netErr) || (errors.As(err, &resp) && resp.HTTPStatusCode() == 0) {
		return fmt.Errorf("%s: %w: %s", prefix, ErrUnavailable, err.Error())
	}
	if api != nil {
		return fmt.Errorf("%s: %w: %s", prefix, ErrRequest, err.Error())
	}
	return fmt.Errorf("%s: %w: %s", prefix, ErrUnavailable, err.Error())
}
