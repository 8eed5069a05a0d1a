package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/fence"
)

// leadership answers "am I active, and who is?" for the HTTP servers
// (api.Leadership, manager.Leadership) and the standby's forwarder. It
// reports inactive from the moment the term's context is done, before the
// duties have wound down, and then names the holder last observed in the
// lease item: a deposed active that saw the new holder's epoch forwards
// there at once instead of naming itself.
type leadership struct {
	mu sync.Mutex
	// observed is the holder last seen in the lease item, this node
	// included; it is recorded even while this node is active.
	observed lease.Term
	// own is this node's running (or last) term.
	own lease.Term
	// active is nil while not active, else the term's ctx.Done().
	active <-chan struct{}
}

// Active reports whether this node is active and the term it knows: its
// own while active, else the last observed holder.
func (l *leadership) Active() (bool, lease.Term) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active != nil {
		select {
		case <-l.active:
		default:
			return true, l.own
		}
	}
	return false, l.observed
}

// observe records term as the holder the lease item names now.
func (l *leadership) observe(term lease.Term) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observed = term
}

func (l *leadership) activate(ctx context.Context, term lease.Term) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.own, l.active = term, ctx.Done()
}

// deactivate ends the node's active state; until the lease names another
// holder, the observed one (for a fresh term, this node) stays.
func (l *leadership) deactivate(term lease.Term) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.own, l.active = term, nil
	if l.observed == (lease.Term{}) {
		l.observed = term
	}
}

// termCache is a cache valid for one lease term (cache.Store).
type termCache interface {
	Begin(ctx context.Context)
	End()
}

// adminEnsurer creates the first admin user (auth.Service).
type adminEnsurer interface {
	EnsureAdmin(ctx context.Context, passwordFile string) (bool, error)
}

// leader runs one node's lease terms: each term it fences the shared
// store to the term's view, creates the first admin, runs prepare, goes
// active and runs duty until the term's context ends.
type leader struct {
	name   string // "autogate server", "autogate manager"
	shared *fence.Store
	fenced func(lease.Term) store.Store
	// cache, if set, serves reads of what only the active writes during
	// each term (store/cache); it starts and ends empty with the term.
	cache    termCache
	lead     *leadership
	auth     adminEnsurer
	passFile string
	stdout   io.Writer
	stderr   io.Writer
	log      *slog.Logger
	// state, if set, is told when a term starts and ends (metrics).
	state func(active bool, epoch int64)
	// prepare, if set, runs on the term before the node reports active.
	prepare func(ctx context.Context, term lease.Term)
	// duty runs while active; it returns once ctx is done and what it
	// started has stopped.
	duty func(ctx context.Context, term lease.Term)
	// metric, if set, writes the ActiveHolder EMF line while active
	// (--emf-metrics).
	metric *activeMetric
}

func (l *leader) callbacks() lease.Callbacks {
	return lease.Callbacks{OnStarted: l.term, OnNewLeader: l.lead.observe}
}

// term is lease.Callbacks.OnStarted.
func (l *leader) term(ctx context.Context, term lease.Term) {
	l.shared.Begin(ctx, l.fenced(term))
	if l.cache != nil {
		l.cache.Begin(ctx)
	}
	l.lead.deactivate(term)
	if l.state != nil {
		l.state(true, term.Epoch)
	}
	defer func() {
		l.lead.deactivate(term)
		if l.cache != nil {
			l.cache.End()
		}
		l.shared.End()
		if l.state != nil {
			l.state(false, term.Epoch)
		}
	}()
	if created, err := l.auth.EnsureAdmin(ctx, l.passFile); err != nil {
		l.log.Error("create the admin user", "error", err)
	} else if created {
		fmt.Fprintf(l.stderr, "%s: created user admin; its password is in %s (0600)\n", l.name, l.passFile)
	}
	if l.prepare != nil {
		l.prepare(ctx, term)
	}
	if ctx.Err() != nil {
		return // the term ended during set-up: never report it active
	}
	l.lead.activate(ctx, term)
	l.log.Info("active", "epoch", term.Epoch)
	fmt.Fprintf(l.stdout, "%s: active (epoch %d)\n", l.name, term.Epoch)
	if l.metric != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			l.metric.run(ctx, term)
		}()
		defer func() { <-done }()
	}
	l.duty(ctx, term)
	l.log.Warn("no longer active", "epoch", term.Epoch)
}
