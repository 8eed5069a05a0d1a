package metrics

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// maxAttempts is the retryer's attempt budget in these tests.
const maxAttempts = 3

// fakeDynamo answers like DynamoDB's JSON 1.0 protocol, by operation:
//
//	GetItem        200 {}
//	DescribeTable  400 ResourceNotFoundException (not retryable)
//	PutItem        500 InternalServerError, always (retryable)
//	DeleteItem     500 on the first request, then 200 {}
//
// and counts the requests it received per operation.
type fakeDynamo struct {
	mu       sync.Mutex
	requests map[string]int
}

func (f *fakeDynamo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	f.mu.Lock()
	f.requests[op]++
	n := f.requests[op]
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	fail := func(status int, typ string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"x"}`, typ)
	}
	switch {
	case op == "GetItem", op == "DeleteItem" && n > 1:
		fmt.Fprint(w, `{}`)
	case op == "DescribeTable":
		fail(http.StatusBadRequest, "ResourceNotFoundException")
	default:
		fail(http.StatusInternalServerError, "InternalServerError")
	}
}

func (f *fakeDynamo) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[op]
}

// newDynamo starts a fake DynamoDB and returns it with a client whose
// config carries apiOptions. Retries do not back off, so the test does not
// wait.
func newDynamo(t *testing.T, apiOptions []func(*middleware.Stack) error) (*fakeDynamo, *dynamodb.Client) {
	t.Helper()
	fake := &fakeDynamo{requests: map[string]int{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		BaseEndpoint: aws.String(srv.URL),
		APIOptions:   apiOptions,
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
				o.RateLimiter = ratelimit.None
			})
		},
	}
	return fake, dynamodb.NewFromConfig(cfg)
}

var (
	table = aws.String("t")
	key   = map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "k"}}
)

// The calls the tests make, by operation name.
var calls = map[string]func(ctx context.Context, c *dynamodb.Client) error{
	"GetItem": func(ctx context.Context, c *dynamodb.Client) error {
		_, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: key})
		return err
	},
	"DescribeTable": func(ctx context.Context, c *dynamodb.Client) error {
		_, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: table})
		return err
	},
	"PutItem": func(ctx context.Context, c *dynamodb.Client) error {
		_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: key})
		return err
	},
	"DeleteItem": func(ctx context.Context, c *dynamodb.Client) error {
		_, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: table, Key: key})
		return err
	},
}

func TestAWSMiddlewareCounts(t *testing.T) {
	line := func(metric, op, outcome string, n int) string {
		scope := ""
		if metric == "autogate_aws_api_calls_total" {
			scope = `,scope="execution"`
		}
		return fmt.Sprintf(`%s{aws_service="DynamoDB",%s,operation="%s",outcome="%s",role="runner"%s} %d`,
			metric, `node="n1"`, op, outcome, scope, n)
	}
	tests := []struct {
		name         string
		op           string
		wantErr      bool
		wantRequests int
		wantCalls    []string
		wantAttempts []string
	}{
		{
			name:         "success",
			op:           "GetItem",
			wantRequests: 1,
			wantCalls:    []string{line("autogate_aws_api_calls_total", "GetItem", "ok", 1)},
			wantAttempts: []string{line("autogate_aws_api_attempts_total", "GetItem", "ok", 1)},
		},
		{
			name:         "client error is not retried",
			op:           "DescribeTable",
			wantErr:      true,
			wantRequests: 1,
			wantCalls:    []string{line("autogate_aws_api_calls_total", "DescribeTable", "error", 1)},
			wantAttempts: []string{line("autogate_aws_api_attempts_total", "DescribeTable", "error", 1)},
		},
		{
			name:         "server error retried to exhaustion is one call",
			op:           "PutItem",
			wantErr:      true,
			wantRequests: maxAttempts,
			wantCalls:    []string{line("autogate_aws_api_calls_total", "PutItem", "error", 1)},
			wantAttempts: []string{line("autogate_aws_api_attempts_total", "PutItem", "error", maxAttempts)},
		},
		{
			name:         "server error then success is one good call",
			op:           "DeleteItem",
			wantRequests: 2,
			wantCalls:    []string{line("autogate_aws_api_calls_total", "DeleteItem", "ok", 1)},
			wantAttempts: []string{
				line("autogate_aws_api_attempts_total", "DeleteItem", "error", 1),
				line("autogate_aws_api_attempts_total", "DeleteItem", "ok", 1),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New("n1", RoleRunner)
			fake, client := newDynamo(t, m.AWSAPIOptions())
			ctx, cc := WithCallCounter(t.Context())

			err := calls[tt.op](ctx, client)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("%s error: got %v, want error %v", tt.op, err, tt.wantErr)
			}
			if got := fake.count(tt.op); got != tt.wantRequests {
				t.Errorf("requests the server saw: got %d, want %d", got, tt.wantRequests)
			}
			body := scrape(t, m)
			if got := samples(body, "autogate_aws_api_calls_total"); !slices.Equal(got, tt.wantCalls) {
				t.Errorf("calls:\ngot  %q\nwant %q", got, tt.wantCalls)
			}
			if got := samples(body, "autogate_aws_api_attempts_total"); !slices.Equal(got, tt.wantAttempts) {
				t.Errorf("attempts:\ngot  %q\nwant %q", got, tt.wantAttempts)
			}
			if got := cc.Total(); got != 1 {
				t.Errorf("CallCounter.Total: got %d, want 1", got)
			}
			if got, want := cc.Attempts(), int64(tt.wantRequests); got != want {
				t.Errorf("CallCounter.Attempts: got %d, want %d", got, want)
			}
			if got, want := cc.ByOperation(), map[string]int64{"DynamoDB." + tt.op: 1}; !maps.Equal(got, want) {
				t.Errorf("CallCounter.ByOperation: got %v, want %v", got, want)
			}
		})
	}
}

func TestCallCounterPerContext(t *testing.T) {
	m := New("n1", RoleRunner)
	_, client := newDynamo(t, m.AWSAPIOptions())
	ctx := t.Context()

	// Two "executions" run concurrently on one client, plus a call made
	// with no counter (a receive loop's), which neither may see.
	ctxA, a := WithCallCounter(ctx)
	ctxB, b := WithCallCounter(ctx)
	plan := []struct {
		ctx context.Context
		ops []string
	}{
		{ctxA, []string{"GetItem", "GetItem", "DescribeTable"}},
		{ctxB, []string{"GetItem", "PutItem"}},
		{ctx, []string{"GetItem"}},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for _, p := range plan {
		for _, op := range p.ops {
			wg.Go(func() {
				if err := calls[op](p.ctx, client); err != nil && op == "GetItem" {
					errs <- fmt.Errorf("%s: %w", op, err)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	tests := []struct {
		name         string
		cc           *CallCounter
		wantTotal    int64
		wantAttempts int64
		wantByOp     map[string]int64
	}{
		{"a", a, 3, 3, map[string]int64{"DynamoDB.GetItem": 2, "DynamoDB.DescribeTable": 1}},
		{"b", b, 2, 1 + maxAttempts, map[string]int64{"DynamoDB.GetItem": 1, "DynamoDB.PutItem": 1}},
		{"nil", nil, 0, 0, map[string]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cc.Total(); got != tt.wantTotal {
				t.Errorf("Total: got %d, want %d", got, tt.wantTotal)
			}
			if got := tt.cc.Attempts(); got != tt.wantAttempts {
				t.Errorf("Attempts: got %d, want %d", got, tt.wantAttempts)
			}
			if got := tt.cc.ByOperation(); !maps.Equal(got, tt.wantByOp) {
				t.Errorf("ByOperation: got %v, want %v", got, tt.wantByOp)
			}
		})
	}
	t.Run("process totals include uncounted contexts", func(t *testing.T) {
		got := samples(scrape(t, m), "autogate_aws_api_calls_total")
		want := []string{
			`autogate_aws_api_calls_total{aws_service="DynamoDB",node="n1",operation="DescribeTable",outcome="error",role="runner",scope="execution"} 1`,
			`autogate_aws_api_calls_total{aws_service="DynamoDB",node="n1",operation="GetItem",outcome="ok",role="runner",scope="background"} 1`,
			`autogate_aws_api_calls_total{aws_service="DynamoDB",node="n1",operation="GetItem",outcome="ok",role="runner",scope="execution"} 3`,
			`autogate_aws_api_calls_total{aws_service="DynamoDB",node="n1",operation="PutItem",outcome="error",role="runner",scope="execution"} 1`,
		}
		if !slices.Equal(got, want) {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
}

func TestTrackCallsObservesOnce(t *testing.T) {
	m := New("n1", RoleRunner)
	_, client := newDynamo(t, m.AWSAPIOptions())
	ctx, done := m.TrackCalls(t.Context())
	for _, op := range []string{"GetItem", "DescribeTable", "GetItem"} {
		if err := calls[op](ctx, client); err != nil && op == "GetItem" {
			t.Fatalf("%s: %v", op, err)
		}
	}
	if got := done(); got != 3 {
		t.Errorf("first done(): got %d, want 3", got)
	}
	if err := calls["GetItem"](ctx, client); err != nil { // after the end: not in the figure
		t.Fatalf("GetItem: %v", err)
	}
	if got := done(); got != 3 {
		t.Errorf("second done(): got %d, want 3 (the value observed)", got)
	}
	body := scrape(t, m)
	for _, want := range []string{
		`autogate_aws_api_calls_per_execution_bucket{node="n1",role="runner",le="2"} 0`,
		`autogate_aws_api_calls_per_execution_bucket{node="n1",role="runner",le="3"} 1`,
		`autogate_aws_api_calls_per_execution_sum{node="n1",role="runner"} 3`,
		`autogate_aws_api_calls_per_execution_count{node="n1",role="runner"} 1`,
	} {
		if got := samples(body, "autogate_aws_api_calls_per_execution"); !slices.Contains(got, want) {
			t.Errorf("got %q, want it to contain %q", got, want)
		}
	}
}

func TestAWSAPIOptionsInstalledTwiceCountsOnce(t *testing.T) {
	m := New("n1", RoleRunner)
	opts := append(m.AWSAPIOptions(), m.AWSAPIOptions()...)
	_, client := newDynamo(t, opts)
	ctx, cc := WithCallCounter(t.Context())
	if err := calls["GetItem"](ctx, client); err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	if got := cc.Total(); got != 1 {
		t.Errorf("Total: got %d, want 1", got)
	}
	got := samples(scrape(t, m), "autogate_aws_api_attempts_total")
	want := []string{`autogate_aws_api_attempts_total{aws_service="DynamoDB",node="n1",operation="GetItem",outcome="ok",role="runner"} 1`}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestNilMetricsMiddlewareStillCountsContexts(t *testing.T) {
	var m *Metrics
	_, client := newDynamo(t, m.AWSAPIOptions())
	ctx, cc := WithCallCounter(t.Context())
	if err := calls["PutItem"](ctx, client); err == nil {
		t.Fatal("PutItem: got nil error, want the fake's 500")
	}
	if got, want := [2]int64{cc.Total(), cc.Attempts()}, [2]int64{1, maxAttempts}; got != want {
		t.Errorf("Total, Attempts: got %v, want %v", got, want)
	}
}

func TestCanceledContextIsAnErrorCall(t *testing.T) {
	m := New("n1", RoleRunner)
	fake, client := newDynamo(t, m.AWSAPIOptions())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ctx, cc := WithCallCounter(ctx)
	err := calls["GetItem"](ctx, client)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("GetItem on a cancelled context: got %v, want context.Canceled", err)
	}
	if got := fake.count("GetItem"); got != 0 {
		t.Errorf("requests the server saw: got %d, want 0", got)
	}
	if got := cc.Total(); got != 1 {
		t.Errorf("Total: got %d, want 1", got)
	}
	got := samples(scrape(t, m), "autogate_aws_api_calls_total")
	want := []string{`autogate_aws_api_calls_total{aws_service="DynamoDB",node="n1",operation="GetItem",outcome="error",role="runner",scope="execution"} 1`}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// Heartbeat calls of a running execution and background calls are labelled
// apart, and only the execution's own calls reach its counter, even when
// the heartbeat context derives from the execution's.
func TestCallScopes(t *testing.T) {
	m := New("n1", RoleRunner)
	_, client := newDynamo(t, m.AWSAPIOptions())
	execCtx, cc := WithCallCounter(t.Context())
	plan := []struct {
		ctx context.Context
		n   int
	}{
		{execCtx, 2},
		{m.Heartbeat(execCtx), 3},
		{t.Context(), 1},
	}
	for _, p := range plan {
		for range p.n {
			if err := calls["GetItem"](p.ctx, client); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := cc.Total(); got != 2 {
		t.Errorf("execution counter: got %d calls, want 2 (heartbeat calls reported apart)", got)
	}
	got := samples(scrape(t, m), "autogate_aws_api_calls_total")
	want := []string{
		`autogate_aws_api_calls_total{aws_service="DynamoDB",node="n1",operation="GetItem",outcome="ok",role="runner",scope="background"} 1`,
		`autogate_aws_api_calls_total{aws_service="DynamoDB",node="n1",operation="GetItem",outcome="ok",role="runner",scope="execution"} 2`,
		`autogate_aws_api_calls_total{aws_service="DynamoDB",node="n1",operation="GetItem",outcome="ok",role="runner",scope="heartbeat"} 3`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
