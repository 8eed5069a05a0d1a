package dynamo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/lease"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
)

// ErrRunning is returned by Run when the elector already runs, and by
// Release when Run is started again while it waits.
var ErrRunning = errors.New("lease elector is running")

// Elector campaigns for one cluster's lease on DynamoDB. Create it with
// New; run it with Run. Current, Active and Observe may be called from any
// goroutine.
type Elector struct {
	client DynamoDBAPI
	cfg    Config
	clk    clock.Clock
	log    *slog.Logger
	pk, sk string
	reg    *Registry // nil when the node registry is disabled

	// runMu is held by Run for its whole duration.
	runMu sync.Mutex
	// runDone is closed when the current Run returns; nil when none runs.
	runDone chan struct{}

	mu       sync.Mutex
	observed lease.Term  // last holder seen in the table (Holder "" = none)
	active   bool        // a term of ours is running and not yet cancelled
	held     *lease.Term // our last term, until released or taken over
	versions []string    // record versions this process wrote or tried
	watchers map[chan lease.Term]struct{}
	roleCh   chan struct{} // pokes the heartbeat loop on a role change

	// renewals counts renewal rounds, renewCalls the calls they made
	// (more than one when a call was slow or failed): see Stats.
	renewals, renewCalls atomic.Int64
}

// Stats counts what an elector did since New.
type Stats struct {
	// Renewals are the active's renewal rounds, one per RetryPeriod.
	Renewals int64
	// RenewalCalls are the conditional writes those rounds made: one each
	// while DynamoDB answers within CallTimeout, at most renewAttempts
	// (4) when it is slow or failing.
	RenewalCalls int64
}

// Stats returns the elector's counters.
func (e *Elector) Stats() Stats {
	return Stats{Renewals: e.renewals.Load(), RenewalCalls: e.renewCalls.Load()}
}

// New returns an elector for cfg. It validates cfg (after defaults) and
// makes no call.
func New(client DynamoDBAPI, cfg Config) (*Elector, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil DynamoDB client", ErrConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	pk, sk := storedynamo.LeaseKey(cfg.Cluster)
	e := &Elector{
		client: client, cfg: cfg, clk: cfg.Clock, pk: pk, sk: sk,
		log:      cfg.Logger.With("cluster", cfg.Cluster, "node", cfg.Node),
		watchers: map[chan lease.Term]struct{}{},
		roleCh:   make(chan struct{}, 1),
	}
	if cfg.HeartbeatPeriod > 0 {
		reg, err := NewRegistry(client, cfg.Table, cfg.Cluster, cfg.Clock)
		if err != nil {
			return nil, err
		}
		e.reg = reg
	}
	return e, nil
}

// Config returns the elector's configuration, defaults filled in.
func (e *Elector) Config() Config { return e.cfg }

// Current returns the term last seen in the table: who is active (Holder
// empty when nobody is, e.g. just after a release), at which epoch and
// address. It may lag the table by a poll period.
func (e *Elector) Current() lease.Term {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.observed
}

// Active reports whether this node is acting as the active gateway right
// now, and the current term. It turns false the moment the term's context
// is cancelled, before OnStarted has returned.
func (e *Elector) Active() (bool, lease.Term) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.active, e.observed
}

// Observe returns a channel that receives the current term and then every
// change of holder or epoch. A slow reader only misses intermediate terms:
// the channel holds the latest. It is closed when ctx ends.
func (e *Elector) Observe(ctx context.Context) <-chan lease.Term {
	ch := make(chan lease.Term, 1)
	e.mu.Lock()
	e.watchers[ch] = struct{}{}
	ch <- e.observed
	e.mu.Unlock()
	context.AfterFunc(ctx, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(e.watchers, ch)
		close(ch)
	})
	return ch
}

// see records the lease item as read or written and tells OnNewLeader and
// the observers if the holder or epoch changed.
func (e *Elector) see(r *record, cb lease.Callbacks) {
	t := r.term()
	e.mu.Lock()
	if t == e.observed {
		e.mu.Unlock()
		return
	}
	e.observed = t
	for ch := range e.watchers {
		select {
		case <-ch: // drop the stale value
		default:
		}
		ch <- t
	}
	e.mu.Unlock()
	e.log.Info("lease holder changed", "lease_holder", t.Holder, "epoch", t.Epoch, "address", t.Address)
	if cb.OnNewLeader != nil {
		cb.OnNewLeader(t)
	}
}

// noteVersion remembers a record version this process is about to write.
func (e *Elector) noteVersion(v string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.versions = append(e.versions, v)
	if len(e.versions) > 8 {
		e.versions = e.versions[len(e.versions)-8:]
	}
}

// ours reports whether r was written (or attempted) by this process and
// names it as holder: then no term of ours runs under it (Run is
// campaigning), and it may be taken over at once.
func (e *Elector) ours(r *record) bool {
	if r == nil || r.Holder != e.cfg.Node {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range e.versions {
		if v == r.RecordVersion {
			return true
		}
	}
	return false
}

func (e *Elector) setActive(active bool, held *lease.Term) {
	e.mu.Lock()
	e.active = active
	if held != nil {
		e.held = held
	}
	e.mu.Unlock()
	select {
	case e.roleCh <- struct{}{}:
	default:
	}
}

// Run campaigns until ctx ends: as a standby it watches the lease and takes
// it over when the active has stopped renewing it for a LeaseDuration;
// as the active it renews it every RetryPeriod, calls cb.OnStarted with a
// context that is cancelled as soon as the lease cannot be proven, and
// after losing it calls cb.OnStopped and campaigns again. When ctx ends it
// stops the term, waits for OnStarted to return, releases the lease (so a
// standby takes over at once), removes this node from the registry, and
// returns nil. cb.OnStarted is required; OnNewLeader runs on Run's
// goroutine and must not block.
func (e *Elector) Run(ctx context.Context, cb lease.Callbacks) error {
	if cb.OnStarted == nil {
		return fmt.Errorf("%w: Callbacks.OnStarted is required", ErrConfig)
	}
	if !e.runMu.TryLock() {
		return fmt.Errorf("lease %s: %w", e.cfg.Cluster, ErrRunning)
	}
	done := make(chan struct{})
	e.mu.Lock()
	e.runDone = done
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.runDone = nil
		e.mu.Unlock()
		// Unlock before signalling: a Release woken by done must find
		// runMu free.
		e.runMu.Unlock()
		close(done)
	}()

	var wg sync.WaitGroup
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	if e.reg != nil {
		wg.Go(func() { e.heartbeat(hbCtx) })
	}
	defer func() {
		stopHeartbeat()
		wg.Wait()
	}()

	for {
		if term, start, ok := e.campaign(ctx, cb); ok {
			e.lead(ctx, cb, term, start)
		}
		if ctx.Err() != nil {
			// No term runs any more: hand the lease over at once. (If the
			// last term was lost, the conditional release just finds that.)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := e.release(rctx)
			cancel()
			if err != nil {
				e.log.Warn("lease not released; a standby takes over after the lease duration", "error", err)
			}
			return nil
		}
	}
}

// Release clears the lease if this elector's last term still holds it, so
// a standby acquires at once, and returns nil if there is nothing to
// release. Run already does this when its context ends; Release is for
// callers that want to be sure on their way out. If Run is still running
// (its context was just cancelled), Release first waits for it to return,
// because a lease must never be released while a term may still act; it
// gives up when ctx ends.
func (e *Elector) Release(ctx context.Context) error {
	e.mu.Lock()
	running := e.runDone
	e.mu.Unlock()
	if running != nil {
		select {
		case <-running:
		case <-ctx.Done():
			return fmt.Errorf("release lease of %s: Run has not returned (cancel its context first): %w", e.cfg.Cluster, ctx.Err())
		}
	}
	if !e.runMu.TryLock() {
		return fmt.Errorf("release lease of %s: %w", e.cfg.Cluster, ErrRunning)
	}
	defer e.runMu.Unlock()
	return e.release(ctx)
}

func (e *Elector) release(ctx context.Context) error {
	e.mu.Lock()
	held := e.held
	e.mu.Unlock()
	if held == nil {
		return nil
	}
	err := e.releaseTerm(ctx, *held)
	var lost *lostError
	switch {
	case errors.As(err, &lost):
		e.log.Info("lease already taken over; nothing to release", "lease_holder", lost.current.term().Holder)
	case err != nil:
		return fmt.Errorf("release lease of %s: %w", e.cfg.Cluster, err)
	default:
		e.log.Info("lease released", "epoch", held.Epoch)
	}
	e.mu.Lock()
	e.held = nil
	e.mu.Unlock()
	return nil
}

// campaign waits as a standby until this node holds the lease (ok) or ctx
// ends. start is when the winning write began: the term is proven from
// then.
//
// The standby remembers the record version it sees and when it first saw
// it, by its own clock (the time a read returned, which is after the
// version was written). It may take over when the item is absent, when
// nobody holds it (released), when the holder is this process's own
// stale term, or when the same version has stood for a full lease
// duration — the longer of its own and the one the holder advertised.
// The takeover is a write conditional on that very version, so if the
// active renewed in the meantime the takeover fails and the watch goes on.
func (e *Elector) campaign(ctx context.Context, cb lease.Callbacks) (lease.Term, time.Time, bool) {
	var (
		watched  *record   // version being timed
		since    time.Time // when watched was first seen
		lastRead error
	)
	for {
		if ctx.Err() != nil {
			return lease.Term{}, time.Time{}, false
		}
		wait := e.cfg.PollPeriod
		cur, err := e.read(ctx)
		now := e.clk.Now()
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return lease.Term{}, time.Time{}, false
			}
			if lastRead == nil {
				e.log.Warn("cannot read the lease", "error", err)
			}
			lastRead = err
			wait = min(wait, e.cfg.failureBackoff()*5)
		default:
			if lastRead != nil {
				e.log.Info("lease readable again")
				lastRead = nil
			}
			e.see(cur, cb)
			if cur != nil && (watched == nil || cur.RecordVersion != watched.RecordVersion) {
				watched, since = cur, now
			}
			due := since.Add(e.leaseDuration(cur))
			if cur == nil || cur.Holder == "" || e.ours(cur) || !now.Before(due) {
				start := e.clk.Now()
				won, err := e.acquire(ctx, cur)
				if err == nil {
					return won.term(), start, true
				}
				var lost *lostError
				if errors.As(err, &lost) {
					// Someone else moved first: watch what is there now.
					e.see(lost.current, cb)
					watched, since = lost.current, e.clk.Now()
					continue
				}
				if ctx.Err() != nil {
					return lease.Term{}, time.Time{}, false
				}
				e.log.Warn("lease takeover failed", "error", err)
				wait = e.cfg.failureBackoff() * 5
			} else {
				// Wake exactly when the version would have stood for a
				// lease duration, if that comes before the next poll.
				wait = min(wait, due.Sub(now))
			}
		}
		select {
		case <-ctx.Done():
			return lease.Term{}, time.Time{}, false
		case <-e.clk.After(wait):
		}
	}
}

// leaseDuration is how long a standby must watch r unchanged: its own
// LeaseDuration or the holder's advertised one, whichever is longer, so a
// holder configured with a longer lease is never cut short.
func (e *Elector) leaseDuration(r *record) time.Duration {
	d := e.cfg.LeaseDuration
	if r != nil {
		d = max(d, time.Duration(r.LeaseDurationMs)*time.Millisecond)
	}
	return d
}

// renewResult is the outcome of one renewal call that started at start.
type renewResult struct {
	start time.Time
	rec   *record
	err   error
}

// renewAttempts bounds the renewal calls of one round (one round per
// RetryPeriod). The first starts with the round; another starts beside it
// when the newest has gone unanswered for CallTimeout (usually on another
// connection, so one hung connection costs nothing), or failureBackoff after
// one failed. Every call lasts until the round succeeds or the term ends:
// under load a slow answer still proves the term, where a call cut off
// after CallTimeout would prove nothing. The bound keeps a slow DynamoDB
// from being sent ever more writes (see Cost.WorstCaseRenewalsPerHour).
const renewAttempts = 4

// lead runs one term: it calls OnStarted and renews until the lease is
// lost, cannot be proven, or ctx ends. It returns after OnStarted has
// returned and OnStopped has been called.
//
// The term's context is cancelled by this loop's own timer at the start of
// the last successful renewal call + RenewDeadline, whatever DynamoDB calls
// are in flight: a hung call cannot keep the node active. Renewal calls
// run on their own goroutines; a round's calls are all cancelled once one
// of them succeeds.
func (e *Elector) lead(ctx context.Context, cb lease.Callbacks, term lease.Term, start time.Time) {
	termCtx, cancelTerm := context.WithCancel(ctx)
	defer cancelTerm()
	deadline := start.Add(e.cfg.RenewDeadline)
	if !e.clk.Now().Before(deadline) {
		// The winning write took longer than the renew deadline: the term
		// cannot be proven. The item names us, so the next campaign round
		// takes it over again at once with a new epoch.
		e.log.Warn("lease acquired too late to act on; campaigning again", "epoch", term.Epoch)
		return
	}
	e.setActive(true, &term)
	e.see(&record{Holder: term.Holder, Epoch: term.Epoch, Address: term.Address, CertFingerprint: term.CertFingerprint}, cb)
	e.log.Info("lease acquired: active", "epoch", term.Epoch)

	var calls sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		cb.OnStarted(termCtx, term)
	}()

	next := start.Add(e.cfg.RetryPeriod) // when the next round starts
	var (
		results   chan renewResult // the current round's answers; nil between rounds
		roundCtx  context.Context
		stopRound context.CancelFunc = func() {}
		attempts  int                // calls started in this round
		answered  int                // calls of this round that failed
		hedge     <-chan time.Time   // the newest call has been out CallTimeout
		retryAt   time.Time          // after a failure: when the next call may start
		reason    string
		failures  int
	)
	attempt := func() {
		attempts++
		e.renewCalls.Add(1)
		ch, callCtx, s := results, roundCtx, e.clk.Now()
		calls.Go(func() {
			rec, err := e.renew(callCtx, term)
			ch <- renewResult{s, rec, err}
		})
		hedge = nil
		if attempts < renewAttempts {
			hedge = time.After(e.cfg.CallTimeout) // real time: it bounds a network wait
		}
	}
	endRound := func() {
		stopRound()
		results, hedge, retryAt, attempts, answered = nil, nil, time.Time{}, 0, 0
	}
loop:
	for {
		now := e.clk.Now()
		if !now.Before(deadline) {
			reason = "no successful renewal within the renew deadline"
			break
		}
		wake := deadline
		if results == nil && next.Before(wake) {
			wake = next
		}
		if !retryAt.IsZero() && retryAt.Before(wake) {
			wake = retryAt
		}
		select {
		case <-ctx.Done():
			reason = "shutting down"
			break loop
		case <-e.clk.After(wake.Sub(now)):
			now = e.clk.Now()
			switch {
			case !now.Before(deadline):
			case results == nil && !now.Before(next):
				roundCtx, stopRound = context.WithCancel(ctx)
				results = make(chan renewResult, renewAttempts)
				e.renewals.Add(1)
				attempt()
			case !retryAt.IsZero() && !now.Before(retryAt):
				retryAt = time.Time{}
				attempt()
			}
		case <-hedge:
			hedge = nil
			if results != nil && retryAt.IsZero() {
				attempt()
			}
		case r := <-results:
			var lost *lostError
			switch {
			case r.err == nil:
				if attempts > 1 || failures > 0 {
					e.log.Info("lease renewed", "calls", attempts, "failed_calls", failures,
						"took", e.clk.Now().Sub(r.start).String())
				}
				endRound()
				failures = 0
				// r started after every earlier success: the deadline only moves on.
				deadline = r.start.Add(e.cfg.RenewDeadline)
				next = r.start.Add(e.cfg.RetryPeriod)
			case errors.As(r.err, &lost):
				e.see(lost.current, cb)
				reason = "lease taken over: " + lost.Error()
				break loop
			default:
				failures++
				answered++
				e.log.Warn("lease renewal call failed", "error", r.err, "failed_calls", failures,
					"deadline_in", deadline.Sub(e.clk.Now()).String())
				if attempts < renewAttempts {
					retryAt = e.clk.Now().Add(e.cfg.failureBackoff())
				} else if answered == attempts {
					// Every call of the round failed: start a new round.
					endRound()
					next = e.clk.Now().Add(e.cfg.failureBackoff())
				}
			}
		}
	}
	// Stop acting first, then tidy up.
	e.setActive(false, nil)
	cancelTerm()
	stopRound()
	if ctx.Err() != nil {
		e.log.Info("stepping down", "epoch", term.Epoch, "reason", reason)
	} else {
		e.log.Warn("stepping down", "epoch", term.Epoch, "reason", reason)
	}
	<-done
	calls.Wait()
	if cb.OnStopped != nil {
		cb.OnStopped()
	}
	select {
	case e.roleCh <- struct{}{}:
	default:
	}
}

// heartbeat keeps this node's registry entry fresh until ctx ends, then
// removes it.
func (e *Elector) heartbeat(ctx context.Context) {
	beat := func(ctx context.Context) {
		e.mu.Lock()
		n := Node{ID: e.cfg.Node, Kind: "gateway", Role: "standby", Address: e.cfg.Address, Version: e.cfg.Version}
		if e.active && e.held != nil {
			n.Role, n.Epoch = "active", e.held.Epoch
		}
		e.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := e.reg.Heartbeat(cctx, n, 3*e.cfg.HeartbeatPeriod); err != nil && ctx.Err() == nil {
			e.log.Warn("node heartbeat failed", "error", err)
		}
	}
	for {
		beat(ctx)
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := e.reg.Remove(rctx, e.cfg.Node); err != nil {
				e.log.Warn("node not removed from the registry; it expires by itself", "error", err)
			}
			cancel()
			return
		case <-e.roleCh:
		case <-e.clk.After(e.cfg.HeartbeatPeriod):
		}
	}
}
