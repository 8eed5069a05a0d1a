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
	Sweep(ctx context.Context, resendAfter, staleAfter time.Duration) (resent, failed int, err error)
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

// sweepLoop runs the gateway's reconciler every interval until ctx ends: a
// queued execution whose message was presumed lost (the queue's visibility
// timeout passed) is sent again, one past its start-by time is failed with a
// reason, and a running one whose runner went silent for staleAfter is
// declared lost, so no accepted run is left behind.
type sweepLoop struct {
	clk        clock.Clock
	gw         sweeper
	queue      queueDepth
	meter      depthMeter
	staleAfter time.Duration
	interval   time.Duration
	log        *slog.Logger
}

func (s sweepLoop) run(ctx context.Context) {
	var resendAfter time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.clk.After(s.interval):
		}
		if resendAfter == 0 {
			vis, err := s.queue.VisibilityTimeout(ctx)
			if err != nil {
				s.log.Warn("read the queue's visibility timeout; the sweep waits for it", "error", err)
				continue
			}
			resendAfter = gateway.PresumedLostAfter(vis)
		}
		if v, f, err := s.queue.Depth(ctx); err == nil {
			s.meter.QueueDepth(v, f)
		}
		if n, err := s.queue.DeadLetterDepth(ctx); err == nil {
			s.meter.DeadLetterDepth(n)
		}
		if n, err := s.gw.MarkDeadLetters(ctx, 100); err != nil && ctx.Err() == nil {
			s.log.Warn("mark dead-lettered executions", "error", err)
		} else if n > 0 {
			s.log.Warn("executions dead-lettered", "count", n)
		}
		resent, failed, err := s.gw.Sweep(ctx, resendAfter, s.staleAfter)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("sweep queued executions", "error", err)
		case resent+failed > 0:
			s.log.Info("swept queued executions", "resent", resent, "failed", failed)
		}
	}
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
