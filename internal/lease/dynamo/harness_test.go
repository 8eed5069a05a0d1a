package dynamo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/lease"
	leasedynamo "github.com/autogate/autogate/internal/lease/dynamo"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
)

func TestMain(m *testing.M) { emulator.Main(m) }

var seq atomic.Int64

func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1_000_000_000, seq.Add(1))
}

// newTable returns a client of DynamoDB Local and a fresh table.
func newTable(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	client := storedynamo.NewClient(emulator.AWSConfig(t, emulator.DynamoDB(t)),
		storedynamo.ClientOptions{MaxAttempts: 2, MaxBackoff: 5 * time.Millisecond})
	name := unique("lease")
	if err := storedynamo.CreateTable(t.Context(), client, name); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	return client, name
}

// testLog collects a test's log lines and prints them only if it fails.
func testLog(t *testing.T) *slog.Logger {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// faultClient wraps a DynamoDBAPI and injects faults on demand, the way a
// network between one gateway and DynamoDB can fail. It counts calls.
type faultClient struct {
	next *dynamodb.Client
	mode atomic.Value // fault
	// released is closed and replaced to let "late" calls through.
	mu      sync.Mutex
	release chan struct{}

	gets, updates, deletes, queries atomic.Int64
	slowBy                          atomic.Int64 // nanoseconds, for the slow fault
}

type fault int

const (
	healthy   fault = iota
	failFast        // every call fails at once (connection refused)
	blackhole       // every call hangs until its context ends
	late            // every call hangs, ignoring its context, until heal, then reaches DynamoDB
	slow            // every call waits slowBy (or until its context ends), then goes on: an overloaded DynamoDB
)

func newFaultClient(next *dynamodb.Client) *faultClient {
	f := &faultClient{next: next, release: make(chan struct{})}
	f.mode.Store(healthy)
	return f
}

func (f *faultClient) set(m fault) {
	f.mode.Store(m)
	if m == healthy {
		f.mu.Lock()
		close(f.release)
		f.release = make(chan struct{})
		f.mu.Unlock()
	}
}

var errInjected = errors.New("injected: connection refused")

// gate applies the current fault; it returns the context the call should
// go on with, or an error.
func (f *faultClient) gate(ctx context.Context) (context.Context, error) {
	switch f.mode.Load().(fault) {
	case failFast:
		return nil, errInjected
	case blackhole:
		<-ctx.Done()
		return nil, ctx.Err()
	case slow:
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(f.slowBy.Load())):
			return ctx, nil
		}
	case late:
		f.mu.Lock()
		rel := f.release
		f.mu.Unlock()
		<-rel
		// The request was on the wire all along: it lands now, whatever
		// the caller's deadline said.
		return context.WithoutCancel(ctx), nil
	}
	return ctx, nil
}

func (f *faultClient) GetItem(ctx context.Context, p *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	f.gets.Add(1)
	ctx, err := f.gate(ctx)
	if err != nil {
		return nil, err
	}
	return f.next.GetItem(ctx, p, o...)
}

func (f *faultClient) UpdateItem(ctx context.Context, p *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.updates.Add(1)
	ctx, err := f.gate(ctx)
	if err != nil {
		return nil, err
	}
	return f.next.UpdateItem(ctx, p, o...)
}

func (f *faultClient) DeleteItem(ctx context.Context, p *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	f.deletes.Add(1)
	ctx, err := f.gate(ctx)
	if err != nil {
		return nil, err
	}
	return f.next.DeleteItem(ctx, p, o...)
}

func (f *faultClient) PutItem(ctx context.Context, p *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	ctx, err := f.gate(ctx)
	if err != nil {
		return nil, err
	}
	return f.next.PutItem(ctx, p, o...)
}

func (f *faultClient) TransactWriteItems(ctx context.Context, p *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	ctx, err := f.gate(ctx)
	if err != nil {
		return nil, err
	}
	return f.next.TransactWriteItems(ctx, p, o...)
}

func (f *faultClient) Query(ctx context.Context, p *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	f.queries.Add(1)
	ctx, err := f.gate(ctx)
	if err != nil {
		return nil, err
	}
	return f.next.Query(ctx, p, o...)
}

var (
	_ leasedynamo.DynamoDBAPI = (*faultClient)(nil)
	_ storedynamo.DynamoDBAPI = (*faultClient)(nil)
)

// history records every term's write window and fails on overlap: when a
// term starts, every earlier term's context must already be cancelled
// (checked at that instant, so no sampling or clock is involved), and
// epochs must grow.
type history struct {
	mu         sync.Mutex
	terms      []*window
	lastEpoch  int64
	violations []string
}

type window struct {
	node       string
	epoch      int64
	ctx        context.Context
	start, end time.Time
	ended      bool
}

func (h *history) start(ctx context.Context, node string, term lease.Term) *window {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.terms {
		if w.ctx.Err() == nil {
			h.violations = append(h.violations, fmt.Sprintf("%s started epoch %d while %s's epoch %d was still active", node, term.Epoch, w.node, w.epoch))
		}
	}
	if term.Epoch <= h.lastEpoch {
		h.violations = append(h.violations, fmt.Sprintf("%s started epoch %d after epoch %d: epochs must grow", node, term.Epoch, h.lastEpoch))
	}
	if term.Holder != node {
		h.violations = append(h.violations, fmt.Sprintf("%s got a term held by %q", node, term.Holder))
	}
	h.lastEpoch = max(h.lastEpoch, term.Epoch)
	w := &window{node: node, epoch: term.Epoch, ctx: ctx, start: time.Now()}
	h.terms = append(h.terms, w)
	return w
}

func (h *history) end(w *window) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w.end, w.ended = time.Now(), true
}

func (h *history) check(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range h.violations {
		t.Error(v)
	}
}

func (h *history) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.terms)
}

// node is one running elector in a test.
type node struct {
	id     string
	e      *leasedynamo.Elector
	client *faultClient
	cancel context.CancelFunc
	done   chan struct{}
	runErr error

	mu      sync.Mutex
	termCtx context.Context // of the current or last term
	starts  int
}

// startNode runs an elector for cfg on client (wrapped in a faultClient)
// until the test ends or stop is called. Its terms are recorded in h.
func startNode(t *testing.T, client *dynamodb.Client, cfg leasedynamo.Config, h *history, onTerm func(n *node, ctx context.Context, term lease.Term)) *node {
	t.Helper()
	fc := newFaultClient(client)
	if cfg.Logger == nil {
		cfg.Logger = testLog(t)
	}
	e, err := leasedynamo.New(fc, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	n := &node{id: cfg.Node, e: e, client: fc, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		n.runErr = e.Run(ctx, lease.Callbacks{
			OnStarted: func(ctx context.Context, term lease.Term) {
				n.mu.Lock()
				n.termCtx, n.starts = ctx, n.starts+1
				n.mu.Unlock()
				var w *window
				if h != nil {
					w = h.start(ctx, cfg.Node, term)
				}
				if onTerm != nil {
					onTerm(n, ctx, term)
				}
				<-ctx.Done()
				if h != nil {
					h.end(w)
				}
			},
		})
	}()
	t.Cleanup(n.stop)
	return n
}

// stop cancels the node's Run (a clean shutdown: it releases) and waits.
func (n *node) stop() {
	n.client.set(healthy)
	n.cancel()
	<-n.done
}

func (n *node) active() bool {
	a, _ := n.e.Active()
	return a
}

// currentTermCtx returns the context of the node's current or last term.
// The elector reports Active before its OnStarted callback has run, so
// this waits (up to 5 s) for the callback to have recorded a term.
func (n *node) currentTermCtx(t *testing.T) context.Context {
	t.Helper()
	var ctx context.Context
	eventually(t, 5*time.Second, n.id+"'s OnStarted", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		ctx = n.termCtx
		return ctx != nil
	})
	return ctx
}

// eventually polls cond every few milliseconds until it holds or timeout
// (real time) passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-time.After(2 * time.Millisecond)
	}
}

// parked waits until the fake clock has exactly n waiters: the goroutines
// that use it have all come back to their timed wait.
func parked(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	eventually(t, 5*time.Second, fmt.Sprintf("%d clock waiter(s)", n), func() bool { return clk.Waiters() == n })
}
