package metrics

import (
	"context"
	"maps"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Middleware IDs. Installing AWSAPIOptions twice on one stack is a no-op,
// so calls are never counted twice.
const (
	callMiddlewareID    = "AutogateCountCalls"
	attemptMiddlewareID = "AutogateCountAttempts"
)

// unknown stands in for a service ID or operation name the SDK did not put
// in the context (never seen with generated clients).
const unknown = "unknown"

// AWSAPIOptions returns the stack options to append to aws.Config.APIOptions
// (or a client's Options.APIOptions). They add two middlewares to every
// operation of clients built from that config:
//
//   - first in the Initialize step, outside the retry loop: one count per
//     operation invocation, with the outcome the caller saw, in
//     autogate_aws_api_calls_total and the context's CallCounter;
//   - last in the Finalize step, inside the retry loop (which is in Finalize
//     too): one count per HTTP attempt, in autogate_aws_api_attempts_total
//     and the context's CallCounter.
//
// On a nil *Metrics only the CallCounters are updated.
func (m *Metrics) AWSAPIOptions() []func(*middleware.Stack) error {
	return []func(*middleware.Stack) error{m.addMiddleware}
}

func (m *Metrics) addMiddleware(stack *middleware.Stack) error {
	if _, ok := stack.Initialize.Get(callMiddlewareID); !ok {
		mw := middleware.InitializeMiddlewareFunc(callMiddlewareID, m.handleInitialize)
		if err := stack.Initialize.Add(mw, middleware.Before); err != nil {
			return err
		}
	}
	if _, ok := stack.Finalize.Get(attemptMiddlewareID); !ok {
		mw := middleware.FinalizeMiddlewareFunc(attemptMiddlewareID, m.handleFinalize)
		if err := stack.Finalize.Add(mw, middleware.After); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) handleInitialize(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleInitialize(ctx, in)
	svc, op := operation(ctx)
	sc := scopeFrom(ctx)
	if sc.cc != nil {
		sc.cc.addCall(svc + "." + op)
	}
	if m != nil {
		m.awsCalls.WithLabelValues(svc, op, outcome(err), sc.name).Inc()
	}
	return out, md, err
}

func (m *Metrics) handleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleFinalize(ctx, in)
	if cc := scopeFrom(ctx).cc; cc != nil {
		cc.addAttempt()
	}
	if m != nil {
		svc, op := operation(ctx)
		m.awsAttempts.WithLabelValues(svc, op, outcome(err)).Inc()
	}
	return out, md, err
}

// operation returns the SDK service ID and operation name of the call in
// ctx, which the generated clients set before the stack runs.
func operation(ctx context.Context) (service, op string) {
	service, op = awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
	if service == "" {
		service = unknown
	}
	if op == "" {
		op = unknown
	}
	return service, op
}

func outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// CallCounter counts the AWS API calls made with one context, typically one
// execution's. It is safe for concurrent use; a nil *CallCounter reports
// zero.
type CallCounter struct {
	mu       sync.Mutex
	total    int64
	attempts int64
	byOp     map[string]int64
}

// The values of the scope label of autogate_aws_api_calls_total: what a
// call was made for, so per-execution figures never hide the periodic work.
const (
	// ScopeExecution: on one execution's own path (a context from
	// WithCallCounter or TrackCalls).
	ScopeExecution = "execution"
	// ScopeHeartbeat: keeping a running execution alive (record
	// heartbeats, message visibility, cancel polls): grows with run time,
	// not with the number of runs (a context from Heartbeat).
	ScopeHeartbeat = "heartbeat"
	// ScopeBackground: everything else: lease renewals, node heartbeats,
	// queue receives and depth polls, the sweeper, cache warming.
	ScopeBackground = "background"
)

// scope is what a context says about the calls made with it.
type scope struct {
	cc   *CallCounter // nil: counted by no execution
	name string
}

type scopeKey struct{}

// WithCallCounter returns a context carrying a new CallCounter, and the
// counter. The middleware of AWSAPIOptions increments it for every call made
// with that context or one derived from it, and labels those calls
// scope="execution". A counter attached here replaces, for calls made with
// the returned context, any counter attached further up: the outer one does
// not see them.
func WithCallCounter(ctx context.Context) (context.Context, *CallCounter) {
	cc := &CallCounter{byOp: map[string]int64{}}
	return context.WithValue(ctx, scopeKey{}, scope{cc: cc, name: ScopeExecution}), cc
}

// Heartbeat returns a context whose calls are labelled scope="heartbeat"
// and counted by no CallCounter: the calls that keep a running execution
// alive (they grow with its duration), reported apart from its own.
func Heartbeat(ctx context.Context) context.Context {
	return context.WithValue(ctx, scopeKey{}, scope{name: ScopeHeartbeat})
}

// ScopeOf returns the scope label (ScopeExecution, ScopeHeartbeat or
// ScopeBackground) of calls made with ctx.
func ScopeOf(ctx context.Context) string { return scopeFrom(ctx).name }

func scopeFrom(ctx context.Context) scope {
	if sc, ok := ctx.Value(scopeKey{}).(scope); ok {
		return sc
	}
	return scope{name: ScopeBackground}
}

// Total reports the number of API calls (operation invocations) counted.
func (c *CallCounter) Total() int64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Attempts reports the number of HTTP attempts behind those calls; it
// exceeds Total by the retries.
func (c *CallCounter) Attempts() int64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts
}

// ByOperation returns a copy of the call counts keyed by
// "<service ID>.<operation>", e.g. "DynamoDB.GetItem", "SQS.DeleteMessage"
// (the SDK's own span naming, unambiguous across services).
func (c *CallCounter) ByOperation() map[string]int64 {
	if c == nil {
		return map[string]int64{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.byOp)
}

func (c *CallCounter) addCall(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	c.byOp[key]++
}

func (c *CallCounter) addAttempt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts++
}
