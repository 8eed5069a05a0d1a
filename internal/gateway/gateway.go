package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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

// LocalRunner is the in-process runner of all-in-one execution
// (runner.Core, through LocalCore): when it has a free slot, Submit records
// the run already claimed by it, in the same durable write that records the
// run, and hands it over directly, instead of recording it queued, sending
// it through the queue and having the runner claim it with a second write.
type LocalRunner interface {
	// Reserve takes a free slot without waiting; ok is false when none is.
	// The claim names node and heartbeat (execution.Start).
	Reserve() (r Reservation, node string, heartbeat time.Duration, ok bool)
}

// Reservation is a slot LocalRunner.Reserve took: Start runs the claimed
// execution in it (env is its message, used if a shutdown re-queues it),
// Cancel frees it when the claim was not written. Exactly one is called.
type Reservation interface {
	Start(env queue.Envelope, e *execution.Execution)
	Cancel()
}

// Meter counts the AWS calls of one execution's path (package metrics
// fits): TrackCalls returns a context whose calls count as the
// execution's, and a function that records their number.
type Meter interface {
	TrackCalls(ctx context.Context) (context.Context, func() int64)
}

// Gateway is one cluster's control plane.
type Gateway struct {
	Catalog  *catalog.Catalog
	Queue    Dispatcher
	Canceler Canceler // nil when runners are remote
	Redriver Redriver // nil in local execution
	// DurableQueue says Queue keeps its messages across terms (SQS): a
	// take-over then re-sends nothing (see Reconcile). False for the
	// in-process queue, which starts every term empty.
	DurableQueue bool
	Live         LiveSource // nil when runners are remote
	// Local, if set, is the in-process runner, which Submit hands runs to
	// claimed when it has a free slot (see LocalRunner); nil when runners
	// are remote. The claim is written through Catalog, so it is fenced by
	// the term like every other write of the gateway.
	Local  LocalRunner
	Clock  clock.Clock
	Logger *slog.Logger
	Node   string
	// Meter, if set, counts the AWS calls of submissions and waits as
	// the executions' own (scope "execution"), apart from periodic work.
	Meter Meter
	// StartWindow is how long an accepted run may wait to be started before
	// it is failed unstarted; 0 means DefaultStartWindow.
	StartWindow time.Duration
	// MaxServiceTimeout, if positive, is the longest timeout a service of
	// this cluster may declare (the Lambda runner's limit, for one): a
	// longer one is refused when the service is written and when it runs.
	MaxServiceTimeout time.Duration
	// MaxBacklog, if positive, is how many accepted, unfinished runs
	// Backlog may count before Submit refuses more with
	// execution.ErrBacklogFull (HTTP 429), recording nothing.
	MaxBacklog int
	Backlog    Backlog
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

// DefaultStartWindow is how long an accepted run may wait for a runner by
// default: long enough for a backlog to drain and for a lost message to be
// re-sent a few times at the queue's usual visibility timeouts.
const DefaultStartWindow = 30 * time.Minute

// resendMargin is added to the queue's visibility timeout before a queued
// run's message is presumed lost: a runner that received it claims it at
// once, so an unclaimed run that long after the send has no live copy.
const resendMargin = 5 * time.Second

// PresumedLostAfter is how long after its last send a queued run's message
// is presumed lost, for a queue with the given visibility timeout: by then a
// runner that received it and died has let it become visible again, and a
// live runner would have claimed it.
func PresumedLostAfter(visibility time.Duration) time.Duration {
	return visibility + resendMargin
}

// ErrInUse means a resource cannot be deleted while services (or
// repositories) refer to it.
var ErrInUse = errors.New("in use")

// ErrTimeoutTooLong means a service declares a timeout over the cluster's
// MaxServiceTimeout.
var ErrTimeoutTooLong = errors.New("service timeout over the cluster's maximum")

// ErrRequestKeyReused means a request key came back with another service
// or other inputs than the run it first named.
var ErrRequestKeyReused = errors.New("request key reused for a different request")

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
		if err := g.checkTimeout(v); err != nil {
			return err
		}
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

func (g *Gateway) checkTimeout(s *resource.Service) error {
	if g.MaxServiceTimeout > 0 && s.Timeout() > g.MaxServiceTimeout {
		return fmt.Errorf("%w: service %s declares %v, this cluster allows at most %v (timeoutSeconds %d)",
			ErrTimeoutTooLong, s.Name, s.Timeout(), g.MaxServiceTimeout, int(g.MaxServiceTimeout.Seconds()))
	}
	return nil
}

// Get loads a resource (a secret without its value).
func (g *Gateway) Get(ctx context.Context, k resource.Kind, name string) (resource.Object, error) {
	return g.Catalog.Get(ctx, k, name)
}

// List returns one page of resources of kind k.
func (g *Gateway) List(ctx context.Context, k resource.Kind, opts store.ListOptions) ([]resource.Object, string, error) {
	return g.Catalog.List(ctx, k, opts)
}

// Delete removes a resource unless something refers to it: a repository,
// decorator or secret that a service uses (or a secret that a repository
// uses) is refused with ErrInUse naming the users, and nothing changes.
// Version 0 deletes whatever is current. The check and the delete are not
// one transaction: a service created between them can still be left
// pointing at nothing, and then fails at run time with a clear reason.
func (g *Gateway) Delete(ctx context.Context, k resource.Kind, name string, version int64) error {
	if err := resource.ValidateName(name); err != nil {
		return err
	}
	users, err := g.usersOf(ctx, k, name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("%w: %s %s is used by %s; change or delete those first", ErrInUse, k, name, strings.Join(users, ", "))
	}
	return g.Catalog.Delete(ctx, k, name, version)
}

// usersOf lists, as kind/name, the resources that refer to resource k/name.
func (g *Gateway) usersOf(ctx context.Context, k resource.Kind, name string) ([]string, error) {
	if k != resource.KindRepository && k != resource.KindDecorator && k != resource.KindSecret {
		return nil, nil
	}
	var users []string
	svcs, err := g.Catalog.ListAll(ctx, resource.KindService)
	if err != nil {
		return nil, err
	}
	for _, o := range svcs {
		s := o.(*resource.Service)
		uses := false
		switch k {
		case resource.KindRepository:
			uses = s.Repository == name
		case resource.KindDecorator:
			uses = s.Decorator == name
		case resource.KindSecret:
			for _, b := range s.Secrets {
				uses = uses || b.Secret == name
			}
		}
		if uses {
			users = append(users, string(resource.KindService)+"/"+s.Name)
		}
	}
	if k == resource.KindSecret {
		repos, err := g.Catalog.ListAll(ctx, resource.KindRepository)
		if err != nil {
			return nil, err
		}
		for _, o := range repos {
			if r := o.(*resource.Repository); r.CredentialSecret == name {
				users = append(users, string(resource.KindRepository)+"/"+r.Name)
			}
		}
	}
	return users, nil
}

// Execution loads one execution.
func (g *Gateway) Execution(ctx context.Context, id string) (*execution.Execution, error) {
	return g.Catalog.Execution(ctx, id)
}

// ExecutionFilter narrows a listing of executions; empty fields match all.
type ExecutionFilter = catalog.ExecutionFilter

// ListExecutions returns one page of executions, newest first, that match
// f, and the token of the next page ("" at the end). A filter reads through
// the catalog's status or service index (Catalog.FindExecutions), so it
// reads what it selects, not the retained history. Index entries may lag
// their records, so a filtered page may hold fewer items than asked for
// while a token remains; it reads at most 10 index pages per call, so a
// page costs a bounded amount and the client pages on.
func (g *Gateway) ListExecutions(ctx context.Context, f ExecutionFilter, opts store.ListOptions) ([]*execution.Execution, string, error) {
	want := opts.EffectiveLimit()
	out := []*execution.Execution{}
	token := opts.PageToken
	for reads := 0; len(out) < want && reads < 10; reads++ {
		es, next, err := g.Catalog.FindExecutions(ctx, f, store.ListOptions{Limit: want - len(out), PageToken: token})
		if err != nil {
			return nil, "", err
		}
		out = append(out, es...)
		token = next
		if next == "" {
			break
		}
	}
	return out, token, nil
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

// Submit validates a run request, records the execution as queued and
// dispatches it. With a RequestKey seen before (by the same submitter), it
// returns the earlier execution and dispatches nothing.
func (g *Gateway) Submit(ctx context.Context, req RunRequest) (*execution.Execution, error) {
	if g.Meter != nil {
		var done func() int64
		ctx, done = g.Meter.TrackCalls(ctx)
		defer done()
	}
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
	if err := g.checkTimeout(svc); err != nil {
		return nil, err
	}
	if req.Type != "" && req.Type != svc.Type {
		return nil, fmt.Errorf("%w: service %s is %s, not %s", ErrWrongType, svc.Name, svc.Type, req.Type)
	}
	// Snapshot the repository with the service (the catalog caches both
	// on the active gateway), so the runner reads neither. A missing one
	// is left to the runner, which fails the run saying so, as before.
	repo, err := g.Catalog.Repository(ctx, svc.Repository)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	if req.Inputs == nil {
		req.Inputs = map[string]any{}
	}
	recorded := req.Inputs
	var sch *decorator.Schema
	if svc.Decorator != "" {
		if sch, err = g.schema(ctx, svc.Decorator); err != nil {
			return nil, err
		}
	}
	if err := sch.CheckInputs(req.Inputs); err != nil {
		return nil, err
	}
	if sch != nil {
		if err := sch.Validate(req.Inputs); err != nil {
			return nil, err
		}
		// The runner re-derives the sensitive values from the sealed inputs.
		recorded, _ = sch.Redact(req.Inputs)
	}
	// Admission last among the checks and before anything is written: a
	// refused run leaves no record, no request key and no message.
	if err := g.admit(ctx); err != nil {
		return nil, err
	}
	now := g.Clock.Now().UTC()
	e := &execution.Execution{
		ID: execution.NewID(now), Cluster: g.Catalog.Cluster, Service: svc.Name,
		ServiceType: svc.Type, ServiceVersion: svc.Version, Spec: svc, Repository: repo,
		Inputs: recorded, RequestKey: req.RequestKey, Status: execution.Queued,
		Submitter: req.Submitter, Epoch: g.Epoch.Load(), CreatedAt: now, Apply: req.Apply,
		Deadline: now.Add(svc.Timeout() + time.Minute), StartBy: now.Add(g.startWindow()),
	}
	if redacted(recorded, req.Inputs) {
		if e.SealedInputs, err = g.Catalog.SealInputs(ctx, e.ID, req.Inputs); err != nil {
			return nil, err
		}
	}
	if req.RequestKey != "" {
		prev, err := g.claimRequestKey(ctx, req, e)
		if err != nil || prev != nil {
			return prev, err
		}
	}
	if claimed, err := g.submitClaimed(ctx, e); claimed || err != nil {
		return e, err
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

// submitClaimed records queued e already claimed by the local runner and
// hands it over, when that runner has a free slot: one write (fenced, as a
// claim by the runner through the gateway's store would be) instead of the
// record, a message and the runner's claim. It reports false, having
// written nothing, when there is no local runner or no free slot.
func (g *Gateway) submitClaimed(ctx context.Context, e *execution.Execution) (bool, error) {
	if g.Local == nil {
		return false, nil
	}
	r, node, heartbeat, ok := g.Local.Reserve()
	if !ok {
		return false, nil
	}
	if err := e.Start(node, heartbeat, e.CreatedAt); err != nil {
		r.Cancel()
		return false, fmt.Errorf("claim execution %s: %w", e.ID, err)
	}
	if err := g.Catalog.CreateExecution(ctx, e); err != nil {
		r.Cancel()
		return true, err
	}
	// The runner gets its own copy: it writes e's later states.
	cp := *e
	r.Start(g.envelope(e), &cp)
	return true, nil
}

func (g *Gateway) startWindow() time.Duration {
	if g.StartWindow > 0 {
		return g.StartWindow
	}
	return DefaultStartWindow
}

func redacted(recorded, orig map[string]any) bool {
	for k, v := range recorded {
		if v == execution.Redacted && orig[k] != execution.Redacted {
			return true
		}
	}
	return false
}

// claimRequestKey binds req's key to execution e, its service and a hash
// of its recorded inputs, or returns the execution the key already names
// if that was the same request; any other reuse is ErrRequestKeyReused.
func (g *Gateway) claimRequestKey(ctx context.Context, req RunRequest, e *execution.Execution) (*execution.Execution, error) {
	want := catalog.RequestKey{ExecutionID: e.ID, Service: e.Service, InputsHash: inputsHash(e.Inputs)}
	bound, prev, err := g.Catalog.ClaimRequestKey(ctx, req.Submitter, req.RequestKey, want)
	if err != nil || prev == nil {
		return nil, err
	}
	same := bound.Service == want.Service && bound.InputsHash == want.InputsHash
	if bound.Service == "" { // bound before keys named what they were for: compare the record
		same = prev.Service == want.Service && inputsHash(prev.Inputs) == want.InputsHash
	}
	if same && len(prev.SealedInputs) > 0 {
		// The hash covers redacted values only: compare the sensitive ones
		// sealed in the first execution, in constant time.
		in, err := g.Catalog.OpenInputs(ctx, prev)
		if err != nil {
			return nil, err
		}
		a, _ := json.Marshal(in)         // decoded JSON always re-encodes
		b, _ := json.Marshal(req.Inputs) // as above
		same = subtle.ConstantTimeCompare(a, b) == 1
	}
	if !same {
		return nil, fmt.Errorf("%w: request key %q was first used for execution %s of service %s with other inputs or another service; use a new key",
			ErrRequestKeyReused, req.RequestKey, prev.ID, prev.Service)
	}
	return prev, nil
}

// inputsHash is the SHA-256 of the inputs as recorded (sensitive values
// redacted), as canonical JSON (sorted keys).
func inputsHash(in map[string]any) string {
	raw, _ := json.Marshal(in) // inputs decoded from JSON always re-encode
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// dispatch sends e's message with a snapshot of the record, which saves
// the runner a read.
func (g *Gateway) dispatch(ctx context.Context, e *execution.Execution) error {
	env := g.envelope(e)
	env.Execution = catalog.Snapshot(e)
	return g.Queue.Send(ctx, env)
}

// envelope is e's message.
func (g *Gateway) envelope(e *execution.Execution) queue.Envelope {
	return queue.Envelope{
		V: queue.EnvelopeVersion, ExecutionID: e.ID, Cluster: e.Cluster, Service: e.Service,
		ServiceVersion: e.ServiceVersion, Epoch: g.Epoch.Load(), Deadline: e.Deadline, TraceID: e.ID,
		TimeoutSeconds: int(e.Spec.Timeout().Seconds()),
	}
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

// Wait polls a remote runner's result this soon after the first read, then
// twice as long each time up to waitLastPoll: a no-op run on a runner takes
// about 10 ms, and a first wait of 100 ms made that a 110 ms sync run. A
// long run costs about 2 reads more than with a 100 ms start.
const (
	waitFirstPoll = 20 * time.Millisecond
	waitLastPoll  = 2 * time.Second
)

// Wait blocks until execution id is terminal or ctx ends. It is woken by
// Notify when the runner is in-process, and otherwise re-reads the record
// with a backoff from waitFirstPoll up to waitLastPoll, never in a tight
// loop.
func (g *Gateway) Wait(ctx context.Context, id string) (*execution.Execution, error) {
	if g.Meter != nil {
		// The execution's calls, not observed as a submission's.
		ctx, _ = g.Meter.TrackCalls(ctx)
	}
	delay := waitFirstPoll
	for {
		ch := g.addWaiter(id)
		e, err := g.Catalog.Execution(ctx, id)
		if err != nil || e.Status.Terminal() {
			g.dropWaiter(id, ch)
			return e, err
		}
		select {
		case <-ch:
		case <-g.Clock.After(delay):
			g.dropWaiter(id, ch)
			delay = min(2*delay, waitLastPoll)
		case <-ctx.Done():
			g.dropWaiter(id, ch)
			return e, ctx.Err()
		}
	}
}

// addWaiter returns a channel Notify closes when id ends.
func (g *Gateway) addWaiter(id string) chan struct{} {
	ch := make(chan struct{})
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiters == nil {
		g.waiters = map[string][]chan struct{}{}
	}
	g.waiters[id] = append(g.waiters[id], ch)
	return ch
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
var ErrFinished = execution.ErrFinished

// Cancel cancels a queued or running execution.
func (g *Gateway) Cancel(ctx context.Context, id string) (*execution.Execution, error) {
	now := g.Clock.Now()
	e, err := g.Catalog.MutateExecution(ctx, id, func(x *execution.Execution) error {
		return x.RequestCancel(now)
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

// Reconcile runs at the start of each term (the all-in-one gateway's one
// term starts with the process) and sends again only what the previous term
// may have lost. With an in-process queue, which starts every term empty,
// that is every queued execution. With a durable queue (DurableQueue) it is
// nothing: a queued run's message is still in the queue or in flight at a
// runner, so Sweep re-sends one only once it is presumed lost, and a
// take-over duplicates no message. Running executions are never re-sent:
// their holder heartbeats them, or Sweep declares them lost once stale.
// It reads only the open executions (through the status index), not the
// retained history, once Catalog.IndexExecutions has indexed the records
// of an older release (one full pass per cluster, ever).
func (g *Gateway) Reconcile(ctx context.Context) (int, error) {
	// Once per cluster: records of an older release join the indexes.
	if _, err := g.Catalog.IndexExecutions(ctx); err != nil {
		return 0, err
	}
	if g.DurableQueue {
		return 0, nil
	}
	n := 0
	tok := ""
	for {
		page, next, err := g.Catalog.ListOpenExecutions(ctx, store.ListOptions{PageToken: tok, Limit: store.MaxPageSize})
		if err != nil {
			return n, err
		}
		for _, e := range page {
			if e.Status != execution.Queued || e.DeadLettered {
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
			if err := x.MarkDeadLettered(); err != nil {
				return err
			}
			n++
			return nil
		})
		if merr != nil && !errors.Is(merr, store.ErrNotFound) {
			return n, merr
		}
	}
	return n, err
}

// SweepPolicy is what one Sweep pass goes by.
type SweepPolicy struct {
	// ResendAfter is how long after its last send a queued run's message is
	// presumed lost (PresumedLostAfter of the queue's visibility timeout).
	ResendAfter time.Duration
	// StaleAfter is the stale-after policy (execution.StaleAfter of the
	// heartbeat) a running run's holder is judged by.
	StaleAfter time.Duration
	// InQueue is how many messages the work queue holds, visible and in
	// flight, read just before the pass; negative when unknown.
	InQueue int
	// LocalNode, set with an in-process queue, is the node whose queue it
	// is: of the running runs only those it holds have a message there.
	// Empty for a shared queue, where every running run's message is in
	// flight (or visible again, once its holder died).
	LocalNode string
}

// SweepResult is what one Sweep pass did.
type SweepResult struct {
	// Resent counts messages sent again: presumed lost, or of a lost
	// attempt re-queued for retry.
	Resent int
	// Failed counts runs ended: lost attempts not retried, and runs failed
	// unstarted past their start-by time.
	Failed int
	// Skipped counts queued runs presumed lost by time alone but not re-sent
	// because the queue held a message for every open run.
	Skipped int
	// NextStale is the earliest time a running execution of this pass
	// becomes stale if its holder stays silent (zero: none running). The
	// sweep loop wakes then, so a dead holder's attempt is declared lost as
	// soon as the stale-after policy allows, not a sweep interval later.
	NextStale time.Time
}

// Sweep is the reconciler of both execution modes. It declares lost the
// running executions whose holder has not heartbeated for
// p.StaleAfter (the one policy, execution.Stale: the holder is dead, or
// cut off so long that its result would not count), re-queueing and
// re-sending the retryable ones; fails queued ones past their start-by time
// with a reason (no re-send can start them in time any more); and re-sends
// queued ones whose message may be lost: last sent p.ResendAfter ago or
// more (lost between the record and the send, deleted, or received by a
// runner that died before claiming), and only while the queue holds fewer
// messages than the open runs need, one each (p.InQueue): a run whose
// message is still in the queue, behind a backlog, or in flight at a live
// runner is not sent again. A pass reads only the open executions
// (Catalog.ListOpenExecutions), so its cost does not grow with retention.
func (g *Gateway) Sweep(ctx context.Context, p SweepPolicy) (SweepResult, error) {
	now := g.Clock.Now()
	var res SweepResult
	var candidates []string
	open := 0 // open runs that should each have a message in the queue
	tok := ""
	for {
		page, next, err := g.Catalog.ListOpenExecutions(ctx, store.ListOptions{PageToken: tok, Limit: store.MaxPageSize})
		if err != nil {
			return res, err
		}
		for _, e := range page {
			switch {
			case e.Stale(now, p.StaleAfter):
				lost, requeued := false, false
				x, err := g.Catalog.MutateExecution(ctx, e.ID, func(x *execution.Execution) (err error) {
					requeued, err = x.LoseStale(now, p.StaleAfter)
					lost = err == nil
					return err
				})
				switch {
				case err != nil:
					return res, err
				case requeued:
					g.Logger.Warn("attempt lost: its holder stopped heartbeating; re-queued", "execution_id", e.ID, "holder", e.Node, "attempt", e.Attempt)
					if err := g.dispatch(ctx, x); err != nil {
						return res, fmt.Errorf("re-dispatch %s: %w", x.ID, err)
					}
					res.Resent++
				case lost:
					g.Logger.Warn("attempt lost: its holder stopped heartbeating", "execution_id", e.ID, "holder", e.Node, "attempt", e.Attempt)
					res.Failed++
					g.Notify(x)
				}
			case e.Status == execution.Running:
				if p.LocalNode == "" || e.Node == p.LocalNode {
					open++
				}
				if at := e.StaleAt(p.StaleAfter); res.NextStale.IsZero() || at.Before(res.NextStale) {
					res.NextStale = at
				}
			case e.Status != execution.Queued || e.DeadLettered:
			case !e.StartDeadline().IsZero() && !now.Before(e.StartDeadline()):
				ended := false
				x, err := g.Catalog.MutateExecution(ctx, e.ID, func(x *execution.Execution) error {
					err := x.ExpireUnstarted(now)
					ended = err == nil
					return err
				})
				if err != nil {
					return res, err
				}
				if ended {
					res.Failed++
					g.Notify(x)
				}
			default:
				open++
				if now.Sub(e.LastSent()) >= p.ResendAfter {
					candidates = append(candidates, e.ID)
				}
			}
		}
		if next == "" {
			break
		}
		tok = next
	}
	if p.InQueue >= 0 && p.InQueue >= open {
		res.Skipped = len(candidates)
		return res, nil
	}
	for _, id := range candidates {
		sent := false
		x, err := g.Catalog.MutateExecution(ctx, id, func(x *execution.Execution) error {
			err := x.Resend(now)
			sent = err == nil
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return res, err
		}
		if !sent {
			continue
		}
		if err := g.dispatch(ctx, x); err != nil {
			return res, fmt.Errorf("re-dispatch %s: %w", x.ID, err)
		}
		res.Resent++
	}
	return res, nil
}
