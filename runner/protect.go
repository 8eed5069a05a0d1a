package runner

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/autogate/autogate/internal/clock"
)

// Protector keeps the task this runner runs in from being stopped by
// scale-in (package ecsagent fits: ECS task scale-in protection). A
// protection turned on lapses by itself after expires.
type Protector interface {
	SetProtection(ctx context.Context, enabled bool, expires time.Duration) error
}

// DefaultProtectFor is how long each protection call protects the task; it
// is renewed at half of that while the runner holds work.
const DefaultProtectFor = 10 * time.Minute

// protectCallTimeout bounds one Protector call made on a message's path.
const protectCallTimeout = 10 * time.Second

// guard holds scale-in protection while any message is being handled and
// drops it when the runner is idle. Every change of the holder count is
// followed by sync, and sync calls are serialized and read the latest count,
// so the protection converges on "on while holders > 0" whatever the
// interleaving; a failed call is retried on the next tick.
type guard struct {
	p      Protector
	clk    clock.Clock
	log    *slog.Logger
	expiry time.Duration

	mu      sync.Mutex
	holders int

	call    sync.Mutex // serializes Protector calls; guards on and renewAt
	on      bool
	renewAt time.Time
}

// newGuard returns nil (protects nothing) without a Protector.
func newGuard(p Protector, clk clock.Clock, log *slog.Logger, expiry time.Duration) *guard {
	if p == nil {
		return nil
	}
	return &guard{p: p, clk: clk, log: log, expiry: expiry}
}

// hold counts one unit of work and returns once protection is on (or the
// attempt failed: the work goes ahead unprotected, as it would without ECS,
// and the next tick tries again). The returned func releases the hold.
func (g *guard) hold(ctx context.Context) (release func()) {
	if g == nil {
		return func() {}
	}
	g.mu.Lock()
	g.holders++
	g.mu.Unlock()
	g.sync(ctx)
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.holders--
			g.mu.Unlock()
			g.sync(context.WithoutCancel(ctx))
		})
	}
}

// sync makes the protection match the holder count: on (renewed once half
// its expiry has passed) while work is held, off when idle.
func (g *guard) sync(ctx context.Context) {
	g.call.Lock()
	defer g.call.Unlock()
	g.mu.Lock()
	want := g.holders > 0
	g.mu.Unlock()
	now := g.clk.Now()
	if want == g.on && (!want || now.Before(g.renewAt)) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, protectCallTimeout)
	defer cancel()
	if err := g.p.SetProtection(cctx, want, g.expiry); err != nil {
		// Off but wanted: retried next tick. On but unwanted: stays on
		// (g.on true) until a retry succeeds or it lapses by itself.
		g.log.Warn("task scale-in protection", "enable", want, "error", err)
		if want {
			g.renewAt = time.Time{}
		}
		return
	}
	if want && !g.on {
		g.log.Info("task scale-in protection on", "expires_in", g.expiry.String())
	} else if !want {
		g.log.Info("task scale-in protection off: idle")
	}
	g.on = want
	g.renewAt = now.Add(g.expiry / 2)
}

// loop syncs every interval until ctx ends: it renews a protection before it
// expires and retries failed calls.
func (g *guard) loop(ctx context.Context, every time.Duration) {
	if g == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.clk.After(every):
		}
		g.sync(ctx)
	}
}
