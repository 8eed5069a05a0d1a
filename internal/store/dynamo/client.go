package dynamo

import (
	"context"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// DynamoDBAPI is the part of *dynamodb.Client the store calls, with the
// SDK's own signatures, so the real client fits and tests can wrap it.
type DynamoDBAPI interface {
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, params *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, params *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, params *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// TableAPI is the part of *dynamodb.Client that CreateTable and CheckTable
// call.
type TableAPI interface {
	CreateTable(ctx context.Context, params *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, params *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	UpdateTable(ctx context.Context, params *dynamodb.UpdateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
	UpdateTimeToLive(ctx context.Context, params *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	DescribeTimeToLive(ctx context.Context, params *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
}

var (
	_ DynamoDBAPI = (*dynamodb.Client)(nil)
	_ TableAPI    = (*dynamodb.Client)(nil)
)

// ClientOptions tunes NewClient.
type ClientOptions struct {
	// MaxAttempts is how many times the SDK's standard retryer tries a
	// request that failed with a retryable error (throttling, 5xx,
	// connection reset) before the error reaches the caller. 0 means the
	// config's own (AWS_MAX_ATTEMPTS or the shared config's max_attempts)
	// if it has one, else DefaultMaxAttempts.
	MaxAttempts int
	// MaxBackoff caps the retryer's exponential, jittered back-off between
	// attempts. 0 means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// OwnConnections gives the client an HTTP connection pool of its own
	// instead of the one every client made from cfg shares, so its calls
	// never wait behind another client's for a connection (the lease's
	// renewals behind request load). cfg's transport settings (a custom CA
	// bundle, proxies) are kept.
	OwnConnections bool
	// MaxConns, with OwnConnections, bounds the client's requests in
	// flight (HTTP connections; DynamoDB speaks HTTP/1.1): more wait in
	// the client for a connection instead of queueing inside DynamoDB,
	// where they would delay every other client of the table (the lease's
	// renewals). 0 means no bound.
	MaxConns int
}

// Retry defaults of NewClient: 5 attempts spread over at most about 2 s, so
// a throttling burst or a DynamoDB hiccup is absorbed, yet a request does
// not outlast an HTTP client's patience. The lease bounds each of its calls
// with its own deadline on top of this.
const (
	DefaultMaxAttempts = 5
	DefaultMaxBackoff  = time.Second
)

// NewClient returns a DynamoDB client for cfg (from config.LoadDefaultConfig:
// the SDK's standard chain of AWS_ENDPOINT_URL*, profiles, region and IAM
// roles) with the SDK's standard retryer set to opts.
//
// When the endpoint is not AWS's own (cfg.BaseEndpoint or
// AWS_ENDPOINT_URL_DYNAMODB set: DynamoDB Local, LocalStack), the CRC32
// validation of responses is turned off, because DynamoDB Local sends no
// X-Amz-Crc32 header and the SDK would report every response as corrupt.
// Against AWS the check stays on.
func NewClient(cfg aws.Config, opts ClientOptions) *dynamodb.Client {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = cfg.RetryMaxAttempts
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = opts.MaxAttempts
			so.MaxBackoff = opts.MaxBackoff
		})
		// Otherwise a RetryMaxAttempts from cfg would wrap the retryer
		// above with a different count.
		o.RetryMaxAttempts = opts.MaxAttempts
		if opts.OwnConnections {
			o.HTTPClient = ownHTTPClient(cfg.HTTPClient, opts.MaxConns)
		}
		// BaseEndpoint is resolved from cfg and the environment before
		// option functions run.
		if o.BaseEndpoint != nil && *o.BaseEndpoint != "" {
			o.DisableValidateResponseChecksum = true
		}
	})
}

// ownHTTPClient returns a copy of c with its own connection pool of at
// most maxConns connections (0: unbounded): a copy of an SDK
// BuildableClient (the default, which keeps cfg's transport settings) or a
// new one when c is nil. Any other client is the caller's own choice and
// is kept.
func ownHTTPClient(c aws.HTTPClient, maxConns int) aws.HTTPClient {
	limit := func(tr *http.Transport) {
		if maxConns > 0 {
			tr.MaxConnsPerHost = maxConns
			tr.MaxIdleConnsPerHost = maxConns // keep what may be used: no dial per request
		}
	}
	switch b := c.(type) {
	case nil:
		return awshttp.NewBuildableClient().WithTransportOptions(limit)
	case *awshttp.BuildableClient:
		return b.WithTransportOptions(limit)
	default:
		return c
	}
}
