package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/decorator"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

// Dispatcher sends an execution to the runners.
type Dispatcher interface {
	Send(ctx context.Context, env queue.Envelope) error
}

// Redriver moves dead-lettered messages back onto the work queue, and
// lists the envelopes waiting there.
type Redriver interface {
	Redrive(ctx context.Context, max int) (int, error)
	DeadLetters(ctx context.Context, max int) ([]queue.Envelope, error)
}

// ErrNoDLQ means there is no dead-letter queue to redrive (local execution).
var ErrNoDLQ = errors.New("no dead-letter queue: executions run in this process")

// Canceler cancels an execution running in this process.
type Canceler interface {
	Cancel(id string) bool
}

// Gateway is one cluster's control plane.
type Gateway struct {
	Catalog  *catalog.Catalog
	Queue    Dispatcher
	Canceler Canceler // nil when runners are remote
	Redriver Redriver // nil in local execution
	Clock    clock.Clock
	Logger   *slog.Logger
	Node     string
	// Epoch is the lease epoch of the current term, stamped on records and
	// envelopes; set by whoever runs the lease, read by every request.
	Epoch atomic.Int64

	mu      sync.Mutex
	waiters map[string][]chan struct{}
	schemas map[string]cachedSchema
}

type cachedSchema struct {
	version int64
	schema  *decorator.Schema
}

// ErrWrongType means a run named a service type that does not match.
var ErrWrongType = errors.New("service type mismatch")

// RunRequest asks for one run of a service.
type RunRequest struct {
	Service string
	// Type, if set, must match the service's type.
	Type   resource.ServiceType
	Inputs map[string]any
	// RequestKey makes the submission idempotent per submitter.
	RequestKey string
	Apply      bool
	Submitter  string
}

// Create validates references and stores a new resource.
func (g *Gateway) Create(ctx context.Context, o resource.Object) error {
	if err := g.checkRefs(ctx, o); err != nil {
		return err
	}
	return g.Catalog.Create(ctx, o)
}

// Update validates references and replaces a resource (optimistically).
func (g *Gateway) Update(ctx context.Context, o resource.Object) error {
	if err := g.checkRefs(ctx, o); err != nil {
		return err
	}
	return g.Catalog.Update(ctx, o)
}

// checkRefs makes sure a service's repository, decorator and secrets exist
// and a decorator's schema compiles, so a bad resource is refused up front
// rather than failing at run time.
func (g *Gateway) checkRefs(ctx context.Context, o resource.Object) error {
	if err := o.Validate(); err != nil {
		return err
	}
	switch v := o.(type) {
	case *resource.Decorator:
		if _, err := decorator.Compile(v.Schema); err != nil {
			return fmt.Errorf("decorator %s: %w", v.Name, err)
		}
	case *resource.Service:
		if _, err := g.Catalog.Repository(ctx, v.Repository); err != nil {
			return fmt.Errorf("service %s: %w", v.Name, err)
		}
		if v.Decorator != "" {
			if _, err := g.Catalog.Decorator(ctx, v.Decorator); err != nil {
				return fmt.Errorf("service %s: %w", v.Name, err)
			}
		}
		for _, b := range v.Secrets {
			if _, err := g.Catalog.Get(ctx, resource.KindSecret, b.Secret); err != nil {
				return fmt.Errorf("service %s: %w", v.Name, err)
			}
		}
	case *resource.Repository:
		if v.CredentialSecret != "" {
			if _, err := g.Catalog.Get(ctx, resource.KindSecret, v.CredentialSecret); err != nil {
				return fmt.Errorf("repository %s: %w", v.Name, err)
			}
		}
	}
	return nil
}

func (g *Gateway) schema(ctx context.Context, name string) (*decorator.Schema, error) {
	d, err := g.Catalog.Decorator(ctx, name)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.schemas[name]; ok && c.version == d.Version {
		return c.schema, nil
	}
	s, err := decorator.Compile(d.Schema)
	if err != nil {
		return nil, fmt.Errorf("decorator %s: %w", name, err)
	}
	if g.schemas == nil {
		g.schemas = map[string]cachedSchema{}
	}
	g.schemas[name] = cachedSchema{version: d.Version, schema: s}
	return s, nil
}

// requestKeyDoc maps an idempotency key to its execution.
type requestKeyDoc struct {
	ExecutionID string `json:"executionId"`
}

const kindRequestKey resource.Kind = "requestkey"

// Submit validates a run request, records the execution as queued and
// dispatches it. With a RequestKey seen before (by the same submitter), it
// returns the earlier execution and dispatches nothing.
func (g *Gateway) Submit(ctx context.Context, req RunRequest) (*execution.Execution, error) {
	if err := resource.ValidateName(req.Service); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	if len(req.RequestKey) > 128 {
		return nil, fmt.Errorf("%w request key: longer than 128 bytes", resource.ErrInvalid)
	}
	svc, err := g.Catalog.Service(ctx, req.Service)
	if err != nil {
		return nil, err
	}
	if req.Type != "" && req.Type != svc.Type {
		return nil, fmt.Errorf("%w: service %s is %s, not %s", ErrWrongType, svc.Name, svc.Type, req.Type)
	}
	if req.Inputs == nil {
		req.Inputs = map[string]any{}
	}
	recorded := req.Inputs
	if svc.Decorator != "" {
		sch, err := g.schema(ctx, svc.Decorator)
		if err != nil {
			return nil, err
		}
		if err := sch.Validate(req.Inputs); err != nil {
			return nil, err
		}
		// The runner re-derives the sensitive values from the sealed inputs.
		recorded, _ = sch.Redact(req.Inputs)
	}
	now := g.Clock.Now().UTC()
	e := &execution.Execution{
		ID: execution.NewID(now), Cluster: g.Catalog.Cluster, Service: svc.Name,
		ServiceType: svc.Type, ServiceVersion: svc.Version, Spec: svc,
		Inputs: recorded, RequestKey: req.RequestKey, Status: execution.Queued,
		Submitter: req.Submitter, Epoch: g.Epoch.Load(), CreatedAt: now, Apply: req.Apply,
		Deadline: now.Add(svc.Timeout() + time.Minute),
	}
	if redacted(recorded, req.Inputs) {
		if e.SealedInputs, err = g.Catalog.SealInputs(ctx, e.ID, req.Inputs); err != nil {
			return nil, err
		}
	}
	if req.RequestKey != "" {
		prev, err := g.claimRequestKey(ctx, req, e.ID)
		if err != nil || prev != nil {
			return prev, err
		}
	}
	if err := g.Catalog.CreateExecution(ctx, e); err != nil {
		return nil, err
	}
	if err := g.dispatch(ctx, e); err != nil {
		// The record exists as queued; the reconciler re-sends it. Report the
		// execution anyway: it was accepted and will reach a terminal state.
		g.Logger.Error("dispatch failed; the reconciler will retry", "execution_id", e.ID, "error", err)
	}
	return e, nil
}

func redacted(recorded, orig map[string]any) bool {
	for k, v := range recorded {
		if v == execution.Redacted && orig[k] != execution.Redacted {
			return true
		}
	}
	return false
}

// claimRequestKey records key → id, or returns the execution the key
// already names.
func (g *Gateway) claimRequestKey(ctx context.Context, req RunRequest, id string) (*execution.Execution, error) {
	sum := sha256.Sum256([]byte(req.Submitter + "\x00" + req.RequestKey))
	k := store.Key{Cluster: g.Catalog.Cluster, Kind: kindRequestKey, Name: hex.EncodeToString(sum[:16])}
	data, _ := json.Marshal(requestKeyDoc{ExecutionID: id}) // cannot fail: a struct of one string
	exp := g.Clock.Now().Add(catalog.DefaultRetention)
	if g.Catalog.Retention > 0 {
		exp = g.Clock.Now().Add(g.Catalog.Retention)
	}
	_, err := g.Catalog.Store.Create(ctx, store.Record{Key: k, Data: data, ExpiresAt: exp})
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, store.ErrExists) {
		return nil, fmt.Errorf("request key: %w", err)
	}
	rec, err := g.Catalog.Store.Get(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("request key: %w", err)
	}
	var doc requestKeyDoc
	if err := json.Unmarshal(rec.Data, &doc); err != nil {
		return nil, fmt.Errorf("request key: %w", err)
	}
	prev, err := g.Catalog.Execution(ctx, doc.ExecutionID)
	if err == nil {
		return prev, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	// The key outlived a submission that never got recorded: take it over.
	rec.Data = data
	if _, err := g.Catalog.Store.Update(ctx, rec); err != nil {
		return nil, fmt.Errorf("request key: %w", err)
	}
	return nil, nil
}

func (g *Gateway) dispatch(ctx context.Context, e *execution.Execution) error {
	return g.Queue.Send(ctx, queue.Envelope{
		V: queue.EnvelopeVersion, ExecutionID: e.ID, Cluster: e.Cluster, Service: e.Service,
		ServiceVersion: e.ServiceVersion, Epoch: g.Epoch.Load(), Deadline: e.Deadline, TraceID: e.ID,
		TimeoutSeconds: int(e.Spec.Timeout().Seconds()),
	})
}

// Notify wakes everyone waiting on e; the runner calls it on terminal states.
func (g *Gateway) Notify(e *execution.Execution) {
	if !e.Status.Terminal() {
		return
	}
	g.mu.Lock()
	ws := g.waiters[e.ID]
	delete(g.waiters, e.ID)
	g.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

// Wait blocks until execution id is terminal or ctx ends. It is woken by
// Notify when the runner is in-process, and otherwise re-reads the record
// with a backoff from 100 ms up to 2 s, never in a tight loop.
func (g *Gateway) Wait(ctx context.Context, id string) (*execution.Execution, error) {
	delay := 100 * time.Millisecond
	for {
		ch := make(chan struct{})
		g.mu.Lock()
		if g.waiters == nil {
			g.waiters = map[string][]chan struct{}{}
		}
		g.waiters[id] = append(g.waiters[id], ch)
		g.mu.Unlock()
		e, err := g.Catalog.Execution(ctx, id)
		if err != nil || e.Status.Terminal() {
			g.dropWaiter(id, ch)
			return e, err
		}
		select {
		case <-ch:
		case <-g.Clock.After(delay):
			g.dropWaiter(id, ch)
			delay = min(2*delay, 2*time.Second)
		case <-ctx.Done():
			g.dropWaiter(id, ch)
			return e, ctx.Err()
		}
	}
}

func (g *Gateway) dropWaiter(id string, ch chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ws := g.waiters[id]
	for i, w := range ws {
		if w == ch {
			g.waiters[id] = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(g.waiters[id]) == 0 {
		delete(g.waiters, id)
	}
}

// ErrFinished means a cancel came after the execution ended.
var ErrFinished = errors.New("execution already finished")

// Cancel cancels a queued or running execution.
func (g *Gateway) Cancel(ctx context.Context, id string) (*execution.Execution, error) {
	now := g.Clock.Now()
	e, err := g.Catalog.MutateExecution(ctx, id, func(x *execution.Execution) error {
		switch {
		case x.Status.Terminal():
			return fmt.Errorf("%w: execution %s is %s", ErrFinished, x.ID, x.Status)
		case x.Status == execution.Queued:
			x.CancelRequested = true
			return x.Transition(execution.Canceled, now, "canceled before it started")
		case x.CancelRequested:
			return catalog.ErrUnchanged
		}
		x.CancelRequested = true
		return nil
	})
	if err != nil {
		return e, err
	}
	if e.Status.Terminal() {
		g.Notify(e)
		return e, nil
	}
	if g.Canceler != nil {
		g.Canceler.Cancel(id)
	}
	return e, nil
}

// Reconcile re-dispatches every execution that is not terminal: queued ones
// a crash kept from being sent, and running ones whose runner may be gone
// (the runner core marks those lost once their heartbeat is stale). The
// all-in-one gateway calls it at start; a clustered one on becoming active.
func (g *Gateway) Reconcile(ctx context.Context) (int, error) {
	n := 0
	tok := ""
	for {
		page, next, err := g.Catalog.ListExecutions(ctx, store.ListOptions{PageToken: tok, Limit: store.MaxPageSize})
		if err != nil {
			return n, err
		}
		for _, e := range page {
			if e.Status.Terminal() {
				continue
			}
			if err := g.dispatch(ctx, e); err != nil {
				return n, fmt.Errorf("re-dispatch %s: %w", e.ID, err)
			}
			n++
		}
		if next == "" {
			return n, nil
		}
		tok = next
	}
}

// Warm compiles every decorator into the schema cache, so a standby that
// takes over validates its first runs without compiling. It returns the
// number of decorators cached.
func (g *Gateway) Warm(ctx context.Context) (int, error) {
	objs, err := g.Catalog.ListAll(ctx, resource.KindDecorator)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range objs {
		if _, err := g.schema(ctx, o.GetMeta().Name); err == nil {
			n++
		}
	}
	return n, nil
}

// Redrive moves up to max dead-lettered messages back to the work queue.
func (g *Gateway) Redrive(ctx context.Context, max int) (int, error) {
	if g.Redriver == nil {
		return 0, ErrNoDLQ
	}
	return g.Redriver.Redrive(ctx, max)
}

// MarkDeadLetters flags the executions whose messages sit in the
// dead-letter queue (up to max of them), with a reason saying what to do, so
// `autogate get executions` shows them. It returns how many it marked.
func (g *Gateway) MarkDeadLetters(ctx context.Context, max int) (int, error) {
	if g.Redriver == nil {
		return 0, nil
	}
	envs, err := g.Redriver.DeadLetters(ctx, max)
	n := 0
	for _, env := range envs {
		if env.Cluster != g.Catalog.Cluster {
			continue
		}
		_, merr := g.Catalog.MutateExecution(ctx, env.ExecutionID, func(x *execution.Execution) error {
			if x.Status.Terminal() || x.DeadLettered {
				return catalog.ErrUnchanged
			}
			x.DeadLettered = true
			x.Reason = "its message failed repeatedly and is in the dead-letter queue; fix the cause, then `autogate redrive`"
			n++
			return nil
		})
		if merr != nil && !errors.Is(merr, store.ErrNotFound) {
			return n, merr
		}
	}
	return n, err
}

// Sweep is the reconciler of distributed execution. It re-dispatches queued
// executions created more than resendAfter ago (their message may have been
// lost between the record and the send), fails queued ones past their
// deadline with a reason, and declares lost the running ones whose runner
// has not heartbeated for staleAfter (their message may be gone too:
// runners drop duplicate deliveries), re-queueing them if retryable.
func (g *Gateway) Sweep(ctx context.Context, resendAfter, staleAfter time.Duration) (resent, failed int, err error) {
	now := g.Clock.Now()
	tok := ""
	for {
		page, next, err := g.Catalog.ListExecutions(ctx, store.ListOptions{PageToken: tok, Limit: store.MaxPageSize})
		if err != nil {
			return resent, failed, err
		}
		for _, e := range page {
			switch {
			case e.Status == execution.Running && e.Heartbeat != nil && now.Sub(*e.Heartbeat) >= staleAfter:
				x, err := g.Catalog.MutateExecution(ctx, e.ID, func(x *execution.Execution) error {
					if x.Status != execution.Running || x.Heartbeat == nil || now.Sub(*x.Heartbeat) < staleAfter {
						return catalog.ErrUnchanged
					}
					if err := x.Transition(execution.Lost, now, fmt.Sprintf("runner %s stopped heartbeating during attempt %d", x.Node, x.Attempt)); err != nil {
						return err
					}
					x.Retry(now)
					return nil
				})
				if err != nil {
					return resent, failed, err
				}
				if x.Status == execution.Queued {
					if err := g.dispatch(ctx, x); err != nil {
						return resent, failed, fmt.Errorf("re-dispatch %s: %w", x.ID, err)
					}
					resent++
				} else if x.Status == execution.Lost {
					failed++
					g.Notify(x)
				}
			case e.Status != execution.Queued || e.DeadLettered || now.Sub(e.CreatedAt) < resendAfter:
			case !e.Deadline.IsZero() && now.After(e.Deadline):
				x, err := g.Catalog.MutateExecution(ctx, e.ID, func(x *execution.Execution) error {
					if x.Status != execution.Queued {
						return catalog.ErrUnchanged
					}
					return x.Transition(execution.Failed, now, "not started before its deadline: no runner took it (are runners up? see `autogate get nodes`)")
				})
				if err != nil {
					return resent, failed, err
				}
				failed++
				g.Notify(x)
			default:
				if err := g.dispatch(ctx, e); err != nil {
					return resent, failed, fmt.Errorf("re-dispatch %s: %w", e.ID, err)
				}
				resent++
			}
		}
		if next == "" {
			return resent, failed, nil
		}
		tok = next
	}
}
