package fence

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/store"
)

// Store is a store whose writes go to the current term's view.
type Store struct {
	store.Store
	term atomic.Pointer[term]
}

type term struct {
	done <-chan struct{}
	view store.Store
}

var _ store.Store = (*Store)(nil)

// New returns a Store reading from raw and refusing writes until Begin.
func New(raw store.Store) *Store { return &Store{Store: raw} }

// Begin sends writes to view until ctx (the term's) is done or End is
// called, whichever comes first.
func (s *Store) Begin(ctx context.Context, view store.Store) {
	s.term.Store(&term{done: ctx.Done(), view: view})
}

// End refuses writes until the next Begin.
func (s *Store) End() { s.term.Store(nil) }

func (s *Store) writer() (store.Store, error) {
	t := s.term.Load()
	if t == nil {
		return nil, fmt.Errorf("write refused between terms: %w", lease.ErrNotLeader)
	}
	select {
	case <-t.done:
		return nil, fmt.Errorf("write refused after the term ended: %w", lease.ErrNotLeader)
	default:
		return t.view, nil
	}
}

// Create writes through the term's view.
func (s *Store) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	w, err := s.writer()
	if err != nil {
		return store.Record{}, err
	}
	return w.Create(ctx, rec)
}

// Update writes through the term's view.
func (s *Store) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	w, err := s.writer()
	if err != nil {
		return store.Record{}, err
	}
	return w.Update(ctx, rec)
}

// Delete writes through the term's view.
func (s *Store) Delete(ctx context.Context, k store.Key, version int64) error {
	w, err := s.writer()
	if err != nil {
		return err
	}
	return w.Delete(ctx, k, version)
}
