package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/autogate/autogate/internal/clock"
)

// releaseTimeout bounds the lease hand-over on shutdown.
const releaseTimeout = 5 * time.Second

// drain is the ordered shutdown of the gateway and the manager.
type drain struct {
	// stopLease ends the term (its duties stop, the tunnels close).
	stopLease func()
	// release hands the lease over at once, so a standby serves while
	// this node drains.
	release func(ctx context.Context) error
	// stopRecv, if set, stops taking new work.
	stopRecv func()
	// handOver, if set, is how long to keep serving after the release
	// (Backend.HandOver), timed by clk: requests then get "not the active"
	// answers that forwarders and load balancers retry elsewhere.
	handOver time.Duration
	clk      clock.Clock
	http     *http.Server
	grace    time.Duration
	// kill, if set, stops what still runs once the grace is over (or
	// everything finished): running services are killed and their
	// attempts recorded lost.
	kill func()
	log  *slog.Logger
}

// run shuts down in order and returns wait's error (the process group's).
func (d drain) run(ctx context.Context, wait func() error) error {
	d.stopLease()
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	if err := d.release(rctx); err != nil {
		d.log.Warn("release lease", "error", err)
	}
	rcancel()
	if d.stopRecv != nil {
		d.stopRecv()
	}
	if d.handOver > 0 {
		d.log.Info("serving while the standbys see the hand-over", "for", d.handOver.String())
		<-d.clk.After(d.handOver)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.grace)
	defer cancel()
	if err := d.http.Shutdown(sctx); err != nil {
		d.log.Warn("http shutdown", "error", err)
	}
	// Give running services the rest of the grace period, then kill them;
	// their attempts are recorded lost (and re-queued if retryable).
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		if d.kill != nil {
			d.kill()
		}
		return err
	case <-sctx.Done():
	}
	if d.kill != nil {
		d.kill()
	}
	return <-done
}
