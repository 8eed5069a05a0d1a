package server

import (
	"context"
	"sync"
	"time"

	"github.com/autogate/autogate/internal/queue"
)

// termSource is the in-process queue as the gateway's own runner sees it
// (runner.Source): it hands out messages only while a term is current, so
// the moment a term ends the local runner takes no more work. Messages
// received as the term ends are dropped, and the queue is emptied: the
// next active (perhaps this node again) re-sends what is still queued
// (gateway.Reconcile). The claim itself is fenced too (runner.Config.Claims),
// so a message that slipped through starts nothing on a deposed gateway.
type termSource struct {
	*queue.Local

	mu      sync.Mutex
	term    context.Context // nil between terms
	changed chan struct{}   // closed when term changes
}

func newTermSource(q *queue.Local) *termSource {
	return &termSource{Local: q, changed: make(chan struct{})}
}

// begin hands out messages until ctx (the term's) ends or end is called.
func (s *termSource) begin(ctx context.Context) {
	s.set(ctx)
}

// end stops handing out messages and empties the queue; it returns how
// many waiting messages were dropped.
func (s *termSource) end() int {
	s.set(nil)
	return s.Purge()
}

func (s *termSource) set(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.term = ctx
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *termSource) current() (context.Context, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term, s.changed
}

// Receive waits for a current term, then receives under it: it returns
// (nil, nil) when the term ends first, and drops what it received if the
// term ended meanwhile.
func (s *termSource) Receive(ctx context.Context, max int, wait time.Duration) ([]queue.Message, error) {
	term, changed := s.current()
	if term == nil || term.Err() != nil {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		case <-timer.C:
		}
		return nil, nil
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(term, cancel)
	defer stop()
	msgs, err := s.Local.Receive(rctx, max, wait)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case term.Err() != nil:
		return nil, nil // the term ended: what it received is the next active's
	}
	return msgs, err
}
