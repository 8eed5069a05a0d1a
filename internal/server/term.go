package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/fence"
)

// leadership answers "am I active, and who is?" for the HTTP servers
// (api.Leadership, manager.Leadership). It reports inactive from the
// moment the term's context is done, before the duties have wound down.
type leadership struct {
	state atomic.Pointer[leaderState]
}

type leaderState struct {
	term lease.Term
	// active is nil while not active, else the term's ctx.Done(): the
	// node stops reporting active the moment the term ends.
	active <-chan struct{}
}

// Active reports whether this node is active and the last known term.
func (l *leadership) Active() (bool, lease.Term) {
	s := l.state.Load()
	if s == nil {
		return false, lease.Term{}
	}
	if s.active == nil {
		return false, s.term
	}
	select {
	case <-s.active:
		return false, s.term
	default:
		return true, s.term
	}
}

// observe records term as the known holder while this node is not active.
func (l *leadership) observe(term lease.Term) {
	if active, _ := l.Active(); !active {
		l.state.Store(&leaderState{term: term})
	}
}

func (l *leadership) activate(ctx context.Context, term lease.Term) {
	l.state.Store(&leaderState{term: term, active: ctx.Done()})
}

func (l *leadership) deactivate(term lease.Term) { l.state.Store(&leaderState{term: term}) }

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
	l.duty(ctx, term)
	l.log.Warn("no longer active", "epoch", term.Epoch)
}
