package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

// Source is where messages come from (queue.Local, the SQS queue, or a
// Lambda event batch).
type Source interface {
	Receive(ctx context.Context, max int, wait time.Duration) ([]queue.Message, error)
	Extend(ctx context.Context, m queue.Message, d time.Duration) error
	Ack(ctx context.Context, m queue.Message) error
	Release(ctx context.Context, m queue.Message, delay time.Duration) error
}

// Executor runs one service.
type Executor interface {
	Run(ctx context.Context, job executor.Job) (executor.Result, error)
}

// Checkouter provides a service's code at a resolved commit.
type Checkouter interface {
	Checkout(ctx context.Context, repo resource.Repository, credential []byte) (dir, commit string, err error)
}

// Meter records what the runner does (package metrics fits); nil records
// nothing.
type Meter interface {
	// TrackCalls returns a context that counts the AWS API calls made with
	// it, and a function that records and returns the count.
	TrackCalls(ctx context.Context) (context.Context, func() int64)
	// Heartbeat returns a context whose AWS calls (keeping a running
	// execution alive) are reported apart from the execution's own.
	Heartbeat(ctx context.Context) context.Context
	RunStarted()
	RunEnded()
	RunFinished(status execution.Status, d time.Duration)
}

type noMeter struct{}

func (noMeter) TrackCalls(ctx context.Context) (context.Context, func() int64) {
	return ctx, func() int64 { return 0 }
}
func (noMeter) Heartbeat(ctx context.Context) context.Context { return ctx }
func (noMeter) RunStarted()                                   {}
func (noMeter) RunEnded()                                     {}
func (noMeter) RunFinished(execution.Status, time.Duration)   {}

// Config configures a Core.
type Config struct {
	// Node is this runner's ID, recorded on every execution it claims.
	Node    string
	Catalog *catalog.Catalog
	// Claims, if set, is the catalog claims are written through (and the
	// loss of a stale attempt this runner takes over): in local execution
	// the gateway's term-fenced view, so a claim succeeds only while the
	// gateway's term is current and a deposed gateway starts nothing.
	// Heartbeats and results go through Catalog, under the record's own
	// guard (HeldBy), so a run already started may finish. nil is Catalog.
	Claims   *catalog.Catalog
	Source   Source
	Executor Executor
	Repos    Checkouter
	Clock    clock.Clock
	Logger   *slog.Logger
	// Concurrency is how many executions run at once; default 4.
	Concurrency int
	// Heartbeat is how often a running execution's record and message are
	// refreshed and cancellation is checked; default
	// execution.DefaultHeartbeat (5 s).
	Heartbeat time.Duration
	// CancelPoll is how often the record is checked for a cancel request
	// between heartbeats; default 1 s. In-process cancels are immediate.
	CancelPoll time.Duration
	// FollowFlush is how often the output of a running execution is
	// written to its record while a gateway follows it (the record's
	// followedUntil); otherwise it is written at heartbeats. Default 1 s;
	// the check runs at CancelPoll ticks, so it is never more often.
	FollowFlush time.Duration
	// StaleAfter is how old a running record's heartbeat must be before
	// another runner declares the attempt lost; default
	// execution.StaleAfter(Heartbeat), the policy the gateway's sweeper uses.
	StaleAfter time.Duration
	// Visibility is how long each heartbeat keeps the message hidden;
	// default DefaultVisibility(Heartbeat).
	Visibility time.Duration
	// ReceiveWait is the long-poll wait per Receive; default 20 s.
	ReceiveWait time.Duration
	// OnDone, if set, is called after an execution's terminal state is
	// recorded by this runner.
	OnDone func(*execution.Execution)
	// Metrics, if set, counts runs and the AWS calls each one costs.
	Metrics Meter
	// Protector, if set, protects the runner's task from scale-in while it
	// handles a message (from receipt to ack) and drops the protection when
	// idle. ProtectFor is how long each call protects for (default
	// DefaultProtectFor); Run renews it at half of that, checking every
	// Heartbeat, and retries failed calls on the same tick.
	Protector  Protector
	ProtectFor time.Duration
}

// DefaultVisibility is how long a runner heartbeating every heartbeat keeps
// a running execution's message hidden unless told otherwise: the
// stale-after policy (execution.StaleAfter), so the copy that comes back
// when the holder dies finds its attempt stale. The gateway's sweep takes
// it as the in-process queue's visibility timeout.
func DefaultVisibility(heartbeat time.Duration) time.Duration {
	return execution.StaleAfter(heartbeat)
}

// Core is the runner core.
type Core struct {
	cfg     Config
	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
	live    map[string]*executor.Live
	wg      sync.WaitGroup
	guard   *guard // nil without a Protector
	// slots holds one token per execution handled now, by the Run loop or
	// through Reserve: at most Concurrency at once.
	slots chan struct{}
	// work is Run's workCtx while Run receives (nil otherwise): Reserve
	// takes slots only then, and runs what it starts under it.
	work context.Context
}

// New validates cfg and returns a Core.
func New(cfg Config) (*Core, error) {
	switch {
	case cfg.Node == "":
		return nil, errors.New("runner: node ID is required")
	case cfg.Catalog == nil || cfg.Source == nil || cfg.Executor == nil || cfg.Repos == nil:
		return nil, errors.New("runner: catalog, source, executor and repos are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Claims == nil {
		cfg.Claims = cfg.Catalog
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = execution.DefaultHeartbeat
	}
	if cfg.CancelPoll <= 0 {
		cfg.CancelPoll = time.Second
	}
	if cfg.FollowFlush <= 0 {
		cfg.FollowFlush = time.Second
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = execution.StaleAfter(cfg.Heartbeat)
	}
	if cfg.Visibility <= 0 {
		cfg.Visibility = DefaultVisibility(cfg.Heartbeat)
	}
	if cfg.ReceiveWait <= 0 {
		cfg.ReceiveWait = 20 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMeter{}
	}
	if cfg.ProtectFor <= 0 {
		cfg.ProtectFor = DefaultProtectFor
	}
	if cfg.StaleAfter <= cfg.Heartbeat {
		return nil, fmt.Errorf("runner: stale-after %v must exceed heartbeat %v", cfg.StaleAfter, cfg.Heartbeat)
	}
	if cfg.Protector != nil && cfg.ProtectFor/2 <= cfg.Heartbeat {
		return nil, fmt.Errorf("runner: protection of %v is renewed at half of it, which must exceed heartbeat %v", cfg.ProtectFor, cfg.Heartbeat)
	}
	return &Core{cfg: cfg, running: map[string]context.CancelCauseFunc{}, live: map[string]*executor.Live{},
		guard: newGuard(cfg.Protector, cfg.Clock, cfg.Logger, cfg.ProtectFor), slots: make(chan struct{}, cfg.Concurrency)}, nil
}

// Outcome is what Handle did with a message.
type Outcome int

// The outcomes.
const (
	// Done: the execution reached (or already had) a terminal state and the
	// message was acknowledged.
	Done Outcome = iota
	// Requeued: the message was released to be delivered again (another
	// runner claimed the execution between our read and our write, or a
	// lost attempt was re-queued).
	Requeued
	// Failed: the message could not be handled (store unreachable…) and was
	// left for redelivery.
	Failed
)

// ErrShutdown is the cancel cause when the runner stops under a service.
var ErrShutdown = errors.New("runner shutting down")

// errCanceled is the cancel cause of a user's cancel request.
var errCanceled = errors.New("canceled on request")

// Run receives and handles messages until recvCtx ends, then waits for the
// executions in flight. workCtx bounds those: when it ends, running services
// are killed and their attempts recorded lost. While it receives, Reserve
// may take free slots for runs claimed elsewhere (a local claim): the slots
// are not held across Receive, so each message received waits for a slot
// of its own (at once, unless a reservation took it meanwhile).
func (c *Core) Run(recvCtx, workCtx context.Context) error {
	// Renew (and retry) the scale-in protection until the last execution
	// has finished: the deferred stop runs after the deferred Wait.
	gctx, stopGuard := context.WithCancel(context.WithoutCancel(workCtx))
	defer stopGuard()
	go c.guard.loop(gctx, c.cfg.Heartbeat)
	defer c.wg.Wait()
	c.mu.Lock()
	c.work = workCtx
	c.mu.Unlock()
	defer func() { // before the Wait: no reservation adds to the group after it
		c.mu.Lock()
		c.work = nil
		c.mu.Unlock()
	}()
	for {
		// Wait for a free slot, then count the free ones.
		select {
		case c.slots <- struct{}{}:
		case <-recvCtx.Done():
			return nil
		}
		free := c.cfg.Concurrency - len(c.slots) + 1
		<-c.slots
		msgs, err := c.cfg.Source.Receive(recvCtx, free, c.cfg.ReceiveWait)
		if err != nil {
			if recvCtx.Err() != nil || errors.Is(err, queue.ErrClosed) {
				return nil
			}
			c.cfg.Logger.Warn("receive failed", "error", err)
			select {
			case <-c.cfg.Clock.After(time.Second):
			case <-recvCtx.Done():
				return nil
			}
			continue
		}
		for i, m := range msgs {
			select {
			case c.slots <- struct{}{}:
			case <-workCtx.Done():
				// Stopped before a slot freed up: hand the rest back.
				for _, m := range msgs[i:] {
					c.release(context.WithoutCancel(workCtx), m, 0, c.cfg.Logger)
				}
				return nil
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				defer func() { <-c.slots }()
				c.Handle(workCtx, m)
			}()
		}
	}
}

// Reservation is an execution slot taken by Reserve.
type Reservation struct {
	c    *Core
	work context.Context
	done bool
}

// Reserve takes a free execution slot, without waiting, for a run its
// caller claims for this runner itself, in the same write that records
// the run (the all-in-one gateway's local claim: one durable write less
// than queueing it and claiming it here). It reports false when every slot
// is busy or Run is not receiving. The caller then writes the claim
// (execution.Start with Node and Heartbeat) and calls Start, or Cancel if
// the write failed.
func (c *Core) Reserve() (*Reservation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.work == nil || c.work.Err() != nil {
		return nil, false
	}
	select {
	case c.slots <- struct{}{}:
	default:
		return nil, false
	}
	c.wg.Add(1)
	return &Reservation{c: c, work: c.work}, true
}

// Node is the runner's node ID, which a claim written through a
// Reservation must name.
func (c *Core) Node() string { return c.cfg.Node }

// HeartbeatEvery is how often the runner heartbeats a running execution,
// which a claim written through a Reservation records.
func (c *Core) HeartbeatEvery() time.Duration { return c.cfg.Heartbeat }

// Cancel frees a reservation whose claim was not written.
func (r *Reservation) Cancel() {
	if r.done {
		return
	}
	r.done = true
	<-r.c.slots
	r.c.wg.Done()
}

// Start runs e, recorded as claimed by this runner (status running, this
// node, at e.Version), in the reserved slot, under Run's work context: it
// heartbeats, records the result and, if the attempt is lost to a
// shutdown and re-queued, releases env (e's message, not sent anywhere
// yet) to the source for redelivery, as for a message it had received.
func (r *Reservation) Start(env queue.Envelope, e *execution.Execution) {
	if r.done {
		return
	}
	r.done = true
	c := r.c
	m := queue.Message{Envelope: env, ReceiveCount: 1}
	go func() {
		defer c.wg.Done()
		defer func() { <-c.slots }()
		defer c.guard.hold(r.work)()
		ctx, calls := c.cfg.Metrics.TrackCalls(r.work)
		log := c.cfg.Logger.With("execution_id", e.ID, "receive_count", m.ReceiveCount)
		c.runClaimed(ctx, m, e, log, calls)
	}()
}

// Cancel cancels an execution this runner is running now. It reports
// whether it was.
func (c *Core) Cancel(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cancel, ok := c.running[id]
	if ok {
		cancel(errCanceled)
	}
	return ok
}

// Live returns the live output of an execution this runner is running now
// (see executor.Live): a gateway with its runner in-process streams from
// it instead of the record. It stays until the result is recorded.
func (c *Core) Live(id string) (*executor.Live, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.live[id]
	return l, ok
}

// InFlight reports how many executions this runner is running.
func (c *Core) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.running)
}

// Handle processes one message to an outcome.
func (c *Core) Handle(ctx context.Context, m queue.Message) Outcome {
	env := m.Envelope
	log := c.cfg.Logger.With("execution_id", env.ExecutionID, "receive_count", m.ReceiveCount)
	if err := env.Check(); err != nil {
		// A malformed message can never succeed; leave it to the DLQ.
		log.Error("bad message envelope", "error", err)
		return Failed
	}
	if env.Cluster != c.cfg.Catalog.Cluster {
		log.Error("message for another cluster", "cluster", env.Cluster)
		return Failed
	}
	// Held work keeps the task from scale-in until the message is settled.
	defer c.guard.hold(ctx)()
	// Count the AWS calls of this delivery, from the first read to the ack.
	ctx, calls := c.cfg.Metrics.TrackCalls(ctx)
	e, err := c.load(ctx, m, log)
	if errors.Is(err, store.ErrNotFound) {
		return c.drop(ctx, m, log)
	}
	if err != nil {
		log.Error("load execution", "error", err)
		return Failed
	}
	switch {
	case e.Status.Terminal():
		c.ack(ctx, m, log)
		return Done
	case e.Status == execution.Running:
		return c.handleRunning(ctx, m, e, log, calls)
	}
	return c.claimAndRun(ctx, m, e, log, calls)
}

// load returns the execution m names: on a first delivery, the record
// snapshot the gateway sent with it (the claim is conditional on its
// version, so a stale copy costs a failed write, then a read); otherwise,
// or when there is none, the record as stored. A redelivery is read: its
// record may be running, and handleRunning needs the latest heartbeat.
func (c *Core) load(ctx context.Context, m queue.Message, log *slog.Logger) (*execution.Execution, error) {
	env := m.Envelope
	if len(env.Execution) > 0 && m.ReceiveCount <= 1 {
		e, err := c.cfg.Catalog.FromSnapshot(env.ExecutionID, env.Execution)
		if err == nil && e.Status == execution.Queued {
			return e, nil
		}
		if err != nil {
			log.Warn("ignoring the message's record snapshot; reading the record", "error", err)
		}
	}
	return c.cfg.Catalog.Execution(ctx, env.ExecutionID)
}

// drop settles a message whose execution is unknown or has expired.
func (c *Core) drop(ctx context.Context, m queue.Message, log *slog.Logger) Outcome {
	log.Warn("message for an unknown or expired execution; dropping it")
	c.ack(ctx, m, log)
	return Done
}

// handleRunning deals with a delivery for an execution already running:
// either its runner is alive (back off) or it died (mark the attempt lost).
func (c *Core) handleRunning(ctx context.Context, m queue.Message, e *execution.Execution, log *slog.Logger, calls func() int64) Outcome {
	now := c.cfg.Clock.Now()
	c.mu.Lock()
	_, mine := c.running[e.ID]
	c.mu.Unlock()
	if mine || !e.Stale(now, c.cfg.StaleAfter) {
		// A duplicate delivery while a live runner holds the execution: drop
		// this copy. Releasing it instead would make it bounce until the
		// queue dead-letters a healthy long run. If the holder dies later,
		// its own copy comes back, or the gateway's sweeper finds the stale
		// record.
		log.Info("duplicate delivery of a running execution; dropping it", "holder", e.Node)
		c.ack(ctx, m, log)
		return Done
	}
	attempt := e.Attempt
	e, err := c.cfg.Claims.MutateFrom(ctx, e, func(x *execution.Execution) error {
		_, err := x.LoseStale(now, c.cfg.StaleAfter)
		return err
	})
	if fenced(err) {
		log.Info("not the active gateway any more: the run is left to the one that is", "error", err)
		return Failed
	}
	if err != nil {
		log.Error("mark lost", "error", err)
		return Failed
	}
	log.Warn("attempt lost", "status", e.Status, "attempt", attempt)
	if e.Status == execution.Queued {
		return c.claimAndRun(ctx, m, e, log, calls)
	}
	if e.Status.Terminal() {
		c.done(e)
	}
	c.ack(ctx, m, log)
	return Done
}

func cat(c *Core) *catalog.Catalog { return c.cfg.Catalog }

// fenced reports whether err is a fenced write refused because the
// writer's term ended (Config.Claims).
func fenced(err error) bool {
	return errors.Is(err, store.ErrFenced) || errors.Is(err, lease.ErrNotLeader)
}

// claimAndRun claims queued execution e (as just read) with one
// conditional write from that read, through the term-fenced catalog
// (Config.Claims), runs it and records the result.
func (c *Core) claimAndRun(ctx context.Context, m queue.Message, e *execution.Execution, log *slog.Logger, calls func() int64) Outcome {
	now := c.cfg.Clock.Now()
	claimed := false
	e, err := c.cfg.Claims.MutateFrom(ctx, e, func(x *execution.Execution) error {
		err := x.Start(c.cfg.Node, c.cfg.Heartbeat, now)
		claimed = err == nil && x.Status == execution.Running
		return err
	})
	if fenced(err) {
		// The claim is fenced by a term that has ended: this gateway was
		// deposed, and the active one re-sends the run.
		log.Info("not the active gateway any more: the run is left to the one that is", "error", err)
		return Failed
	}
	if errors.Is(err, store.ErrNotFound) {
		return c.drop(ctx, m, log) // claimed from a snapshot of a record expired since
	}
	if err != nil {
		log.Error("claim", "error", err)
		return Failed
	}
	if !claimed {
		if e.Status.Terminal() {
			c.done(e)
			c.ack(ctx, m, log)
			return Done
		}
		// Another runner claimed it between our read and write.
		c.release(ctx, m, c.cfg.StaleAfter, log)
		return Requeued
	}
	return c.runClaimed(ctx, m, e, log, calls)
}

// runClaimed runs e, claimed by this runner as last written (at
// e.Version), records the result and settles m.
func (c *Core) runClaimed(ctx context.Context, m queue.Message, e *execution.Execution, log *slog.Logger, calls func() int64) Outcome {
	log = log.With("attempt", e.Attempt, "service", e.Service)
	log.Info("execution started")
	meter := c.cfg.Metrics
	meter.RunStarted()
	final := c.run(ctx, m, e, log)
	meter.RunEnded()
	c.done(final)
	outcome := Done
	if final.Status == execution.Queued {
		// Lost to a shutdown and re-queued for retry: hand the message back.
		c.release(context.WithoutCancel(ctx), m, 0, log)
		meter.RunFinished(execution.Lost, final.Duration())
		outcome = Requeued
	} else {
		c.ack(context.WithoutCancel(ctx), m, log)
		meter.RunFinished(final.Status, final.Duration())
	}
	log.Info("execution acknowledged", "aws_calls", calls())
	return outcome
}

// run executes a claimed attempt and records its terminal state.
func (c *Core) run(ctx context.Context, m queue.Message, e *execution.Execution, log *slog.Logger) *execution.Execution {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	live := executor.NewLive()
	c.mu.Lock()
	c.running[e.ID] = cancel
	c.live[e.ID] = live
	c.mu.Unlock()
	defer func() { // after the result is recorded: a follower then finds it there
		c.mu.Lock()
		delete(c.running, e.ID)
		delete(c.live, e.ID)
		c.mu.Unlock()
	}()

	hbDone := make(chan struct{})
	hbStopped := make(chan struct{})
	latest := e // the record as last read or written; the heartbeat's once it stops
	go func() {
		defer close(hbStopped)
		latest = c.heartbeat(c.cfg.Metrics.Heartbeat(runCtx), hbDone, m, e, live, cancel, log)
	}()

	res, commit, runErr := c.execute(runCtx, e, live)
	close(hbDone)
	<-hbStopped

	now := c.cfg.Clock.Now()
	// Record with a context that outlives a shutdown: the result must land.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer wcancel()
	attempt := e.Attempt
	// From the latest version this runner knows: no read before the
	// write unless someone else wrote the record meanwhile (a cancel).
	final, err := cat(c).MutateFrom(wctx, latest, func(x *execution.Execution) error {
		if !x.HeldBy(c.cfg.Node, attempt) {
			return catalog.ErrUnchanged // someone declared us lost; their word stands
		}
		x.Commit = commit
		cause := context.Cause(runCtx)
		switch {
		case errors.Is(cause, ErrShutdown) || (ctx.Err() != nil && !errors.Is(cause, errCanceled)):
			_, err := x.LoseAttempt(now, "runner shut down during the run")
			return err
		case runErr != nil:
			code := -1
			x.ExitCode = &code
			return x.Finish(c.cfg.Node, attempt, now, execution.Failed, runErr.Error(), false)
		}
		code := res.ExitCode
		x.ExitCode = &code
		x.Stdout, x.Stderr = res.Stdout, res.Stderr
		return x.Finish(c.cfg.Node, attempt, now, res.Status, res.Reason, errors.Is(cause, errCanceled))
	})
	if err != nil {
		log.Error("record result", "error", err)
		return e
	}
	log.Info("execution finished", "status", final.Status, "duration_ms", final.Duration().Milliseconds())
	return final
}

// execute resolves code, secrets and inputs, then runs the service.
func (c *Core) execute(ctx context.Context, e *execution.Execution, live *executor.Live) (executor.Result, string, error) {
	if e.Spec == nil {
		return executor.Result{}, "", errors.New("execution has no service snapshot")
	}
	svc := *e.Spec
	repo := e.Repository // the snapshot taken at submission
	if repo == nil || repo.Name != svc.Repository {
		var err error // a record of an older release: read the repository
		if repo, err = cat(c).Repository(ctx, svc.Repository); err != nil {
			return executor.Result{}, "", fmt.Errorf("repository: %w", err)
		}
	}
	var err error
	var cred []byte
	if repo.CredentialSecret != "" {
		if cred, err = cat(c).SecretValue(ctx, repo.CredentialSecret); err != nil {
			return executor.Result{}, "", fmt.Errorf("repository credential: %w", err)
		}
	}
	dir, commit, err := c.cfg.Repos.Checkout(ctx, *repo, cred)
	if err != nil {
		return executor.Result{}, "", fmt.Errorf("checkout %s: %w", repo.Name, err)
	}
	secrets := map[string][]byte{}
	for _, b := range svc.Secrets {
		v, err := cat(c).SecretValue(ctx, b.Secret)
		if err != nil {
			return executor.Result{}, commit, fmt.Errorf("secret binding: %w", err)
		}
		secrets[b.Secret] = v
	}
	inputs, err := cat(c).OpenInputs(ctx, e)
	if err != nil {
		return executor.Result{}, commit, err
	}
	var sensitive []string
	for k, v := range e.Inputs {
		if v == execution.Redacted {
			sensitive = append(sensitive, k)
		}
	}
	res, err := c.cfg.Executor.Run(ctx, executor.Job{
		ExecutionID: e.ID, Service: svc, Inputs: inputs, SourceDir: dir,
		Secrets: secrets, SensitiveInputs: sensitive, Apply: e.Apply, Live: live,
	})
	return res, commit, err
}

// heartbeat keeps the message invisible and the record fresh, cancels the
// run when a cancel request appears on the record, and writes the output
// kept so far to the record: with each heartbeat, and every FollowFlush
// while a gateway follows the run (the record read for cancel requests
// says so, at no extra cost). It returns the record as it last read or wrote it.
func (c *Core) heartbeat(ctx context.Context, done <-chan struct{}, m queue.Message, e *execution.Execution, live *executor.Live, cancel context.CancelCauseFunc, log *slog.Logger) (latest *execution.Execution) {
	next := c.cfg.Clock.Now().Add(c.cfg.Heartbeat)
	var flushed time.Time
	attempt := e.Attempt
	latest = e
	for {
		select {
		case <-done:
			return latest
		case <-ctx.Done():
			return latest
		case <-c.cfg.Clock.After(c.cfg.CancelPoll):
		}
		now := c.cfg.Clock.Now()
		if now.Before(next) {
			x, err := cat(c).Execution(ctx, e.ID)
			if err != nil {
				continue
			}
			latest = x
			if x.CancelRequested {
				cancel(errCanceled)
			}
			if x.Followed(now) && now.Sub(flushed) >= c.cfg.FollowFlush {
				stdout, stderr := live.Output()
				if x.Progress(c.cfg.Node, attempt, stdout, stderr) == nil { // else nothing new, or no longer ours
					flushed = now
					y, err := cat(c).MutateExecution(ctx, e.ID, func(x *execution.Execution) error {
						return x.Progress(c.cfg.Node, attempt, stdout, stderr)
					})
					if err != nil {
						log.Warn("flush output", "error", err)
					} else {
						latest = y
					}
				}
			}
			continue
		}
		next = now.Add(c.cfg.Heartbeat)
		flushed = now
		if err := c.cfg.Source.Extend(ctx, m, c.cfg.Visibility); err != nil {
			log.Warn("extend message visibility", "error", err)
		}
		stdout, stderr := live.Output()
		x, err := cat(c).MutateFrom(ctx, latest, func(x *execution.Execution) error {
			if err := x.Beat(c.cfg.Node, attempt, now); err != nil {
				return err
			}
			_ = x.Progress(c.cfg.Node, attempt, stdout, stderr) // ErrUnchanged: nothing new to add to the beat
			return nil
		})
		if err == nil {
			latest = x
		}
		switch {
		case err != nil:
			log.Warn("heartbeat record", "error", err)
		case x.CancelRequested:
			cancel(errCanceled)
		case !x.HeldBy(c.cfg.Node, attempt):
			// Declared lost by another runner: stop, our result won't count.
			log.Warn("attempt taken over; stopping", "status", x.Status)
			cancel(ErrShutdown)
		}
	}
}

func (c *Core) done(e *execution.Execution) {
	if c.cfg.OnDone != nil && e != nil {
		c.cfg.OnDone(e)
	}
}

func (c *Core) ack(ctx context.Context, m queue.Message, log *slog.Logger) {
	if err := c.cfg.Source.Ack(ctx, m); err != nil {
		log.Warn("ack message", "error", err)
	}
}

func (c *Core) release(ctx context.Context, m queue.Message, delay time.Duration, log *slog.Logger) {
	if err := c.cfg.Source.Release(ctx, m, delay); err != nil {
		log.Warn("release message", "error", err)
	}
}
