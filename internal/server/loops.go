package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/gitrepo"
	"github.com/autogate/autogate/internal/resource"
)

// Loop periods.
const (
	warmEvery  = 30 * time.Second
	pruneEvery = time.Hour
)

// sweeper is the part of the gateway the sweep loop drives.
type sweeper interface {
	MarkDeadLetters(ctx context.Context, max int) (int, error)
	Sweep(ctx context.Context, p gateway.SweepPolicy) (gateway.SweepResult, error)
}

// queueDepth reads the work queue's and the dead-letter queue's depth.
type queueDepth interface {
	Depth(ctx context.Context) (visible, inFlight int, err error)
	DeadLetterDepth(ctx context.Context) (int, error)
	VisibilityTimeout(ctx context.Context) (time.Duration, error)
}

// depthMeter records queue depths (metrics.Metrics).
type depthMeter interface {
	QueueDepth(visible, inFlight int)
	DeadLetterDepth(n int)
}

// minSweepWait is the shortest wait between two passes, so a record that
// stays stale (its lost write failing) cannot make the loop spin.
const minSweepWait = 100 * time.Millisecond

// sweepLoop runs the gateway's reconciler while the node is active, in
// every execution mode: at once when the term starts, then every interval,
// and also when the earliest running attempt turns stale (so a dead
// holder's run is declared lost, or re-queued if retryable, within the
// stale-after policy of its last heartbeat, not a sweep interval later). A
// queued execution whose message may be lost (the queue's visibility timeout
// passed and the queue holds fewer messages than the open runs need) is
// sent again, one past its start-by time is failed with a reason, and a
// running one whose holder went silent for staleAfter is declared lost, so
// no accepted run is left behind.
type sweepLoop struct {
	clk        clock.Clock
	gw         sweeper
	queue      queueDepth
	meter      depthMeter
	staleAfter time.Duration
	interval   time.Duration
	// localNode is the gateway's node with an in-process queue: only the
	// runs it holds have a message there (gateway.SweepPolicy.LocalNode).
	localNode string
	log       *slog.Logger
}

func (s sweepLoop) run(ctx context.Context) {
	var resendAfter time.Duration
	for {
		wait := s.interval
		if resendAfter == 0 {
			vis, err := s.queue.VisibilityTimeout(ctx)
			if err == nil {
				resendAfter = gateway.PresumedLostAfter(vis)
			} else if ctx.Err() == nil {
				s.log.Warn("read the queue's visibility timeout; the sweep waits for it", "error", err)
			}
		}
		if resendAfter > 0 {
			if next := s.pass(ctx, resendAfter); !next.IsZero() {
				wait = min(wait, max(next.Sub(s.clk.Now()), minSweepWait))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.clk.After(wait):
		}
	}
}

// pass sweeps once and returns when the earliest running attempt turns
// stale (zero: none running, or the pass failed).
func (s sweepLoop) pass(ctx context.Context, resendAfter time.Duration) time.Time {
	inQueue := -1
	if v, f, err := s.queue.Depth(ctx); err == nil {
		s.meter.QueueDepth(v, f)
		inQueue = v + f
	}
	if n, err := s.queue.DeadLetterDepth(ctx); err == nil {
		s.meter.DeadLetterDepth(n)
	}
	if n, err := s.gw.MarkDeadLetters(ctx, 100); err != nil && ctx.Err() == nil {
		s.log.Warn("mark dead-lettered executions", "error", err)
	} else if n > 0 {
		s.log.Warn("executions dead-lettered", "count", n)
	}
	r, err := s.gw.Sweep(ctx, gateway.SweepPolicy{ResendAfter: resendAfter, StaleAfter: s.staleAfter, InQueue: inQueue, LocalNode: s.localNode})
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("sweep open executions", "error", err)
		return time.Time{}
	case r.Resent+r.Failed > 0:
		s.log.Info("swept open executions", "resent", r.Resent, "failed", r.Failed, "skipped", r.Skipped)
	case r.Skipped > 0:
		s.log.Debug("queued executions not re-sent: the queue holds a message for each", "skipped", r.Skipped, "in_queue", inQueue)
	}
	return r.NextStale
}

// localDepth is queueDepth for the in-process queue: its waiting messages,
// and the runs its runner holds as in flight. It has no dead-letter queue,
// and its "visibility timeout" is the runner's: a message handed to the
// runner is claimed at once, and kept while it runs.
type localDepth struct {
	q          interface{ Depth() int }
	inFlight   func() int
	visibility time.Duration
}

func (l localDepth) Depth(context.Context) (int, int, error)    { return l.q.Depth(), l.inFlight(), nil }
func (localDepth) DeadLetterDepth(context.Context) (int, error) { return 0, nil }
func (l localDepth) VisibilityTimeout(context.Context) (time.Duration, error) {
	return l.visibility, nil
}

// decoratorWarmer compiles the decorators (gateway.Gateway).
type decoratorWarmer interface {
	Warm(ctx context.Context) (int, error)
}

// warmLoop keeps a standby hot: every 30 s while it is not active it
// compiles the decorators and fetches every repository into the checkout
// cache, so a takeover validates and runs its first executions at once.
type warmLoop struct {
	clk   clock.Clock
	lead  *leadership
	gw    decoratorWarmer
	cat   *catalog.Catalog
	repos *gitrepo.Cache
	log   *slog.Logger
}

func (w warmLoop) run(ctx context.Context) error {
	for {
		if active, _ := w.lead.Active(); !active {
			w.warm(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.clk.After(warmEvery):
		}
	}
}

func (w warmLoop) warm(ctx context.Context) {
	if _, err := w.gw.Warm(ctx); err != nil && ctx.Err() == nil {
		w.log.Debug("warm decorators", "error", err)
	}
	objs, err := w.cat.ListAll(ctx, resource.KindRepository)
	if err != nil {
		return
	}
	for _, o := range objs {
		r := o.(*resource.Repository)
		var cred []byte
		if r.CredentialSecret != "" {
			if cred, err = w.cat.SecretValue(ctx, r.CredentialSecret); err != nil {
				continue
			}
		}
		if _, _, err := w.repos.Checkout(ctx, *r, cred); err != nil && ctx.Err() == nil {
			w.log.Debug("warm repository", "repository", r.Name, "error", err)
		}
	}
}

// pruneLoop removes expired records from the embedded store hourly.
func pruneLoop(ctx context.Context, clk clock.Clock, prune func(context.Context) (int, error), log *slog.Logger) error {
	for {
		if n, err := prune(ctx); err != nil && ctx.Err() == nil {
			log.Warn("prune", "error", err)
		} else if n > 0 {
			log.Info("pruned expired records", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-clk.After(pruneEvery):
		}
	}
}
