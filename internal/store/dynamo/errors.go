package dynamo

import (
	"context"
	"errors"
	"fmt"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// Errors of the DynamoDB layer, beside the store package's sentinels. SDK
// error types never leave this package: every SDK error is translated into
// one of these (or a store sentinel, or a context error) with the SDK's
// message kept as text.
var (
	// ErrTableNotFound means the configured table does not exist.
	ErrTableNotFound = errors.New("table not found")
	// ErrTableSchema means the table exists but is not laid out as this
	// package needs (key schema, attribute types, TTL attribute).
	ErrTableSchema = errors.New("table schema mismatch")
	// ErrThrottled means DynamoDB kept throttling after the SDK's retries.
	ErrThrottled = errors.New("dynamodb throttled the request")
	// ErrUnavailable means DynamoDB could not be reached or kept failing
	// (5xx, network) after the SDK's retries.
	ErrUnavailable = errors.New("dynamodb unavailable")
	// ErrRequest means DynamoDB rejected the request for another reason
	// (validation, access denied, ...); the message says which.
	ErrRequest = errors.New("dynamodb rejected the request")
)

// tableHint is appended to every table-not-found error.
const tableHint = "create it with `autogate init table` or deploy the CDK stack"

// Translate turns an error of the DynamoDB SDK into one that callers can
// branch on with errors.Is: context errors stay themselves, and the rest
// map to ErrTableNotFound, ErrThrottled, ErrUnavailable or ErrRequest (the
// store splits records before DynamoDB's size limit, so size errors are
// not expected here). op and subject name what failed ("PutItem", "table t" or a
// record key). The lease package uses it too, so neither leaks SDK types.
func Translate(op, subject string, err error) error {
	if err == nil {
		return nil
	}
	prefix := "dynamodb " + op
	if subject != "" {
		prefix += " " + subject
	}
	// The context's own error first: a cancelled call must read as one.
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("%s: %w", prefix, ctxErr)
		}
	}
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return fmt.Errorf("%s: %w: %s", prefix, ErrTableNotFound, tableHint)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded", "LimitExceededException":
			return fmt.Errorf("%s: %w (after the SDK's retries): %s", prefix, ErrThrottled, err.Error())
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
	if errors.As(err, &api) {
		return fmt.Errorf("%s: %w: %s", prefix, ErrRequest, err.Error())
	}
	return fmt.Errorf("%s: %w: %s", prefix, ErrUnavailable, err.Error())
}
