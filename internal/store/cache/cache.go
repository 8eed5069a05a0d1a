// Package cache keeps the records of a few kinds in memory in front of a
// store.Store, for the one writer those kinds have: the active gateway.
//
// # Safety model
//
// Services, decorators, repositories, tokens and users are written only through
// the active gateway's own store (every such write is fenced by its lease
// term), so while a term lasts nobody else can change them: a record this
// process read or wrote stays what the table holds until this process
// writes it again. The cache serves reads of those kinds only between
// Begin and the end of the term's context (or End), and forgets everything
// when a term begins or ends, so a new active never trusts what it read as
// a standby or in an earlier term. Every write of a cached kind through the
// cache invalidates that record before and after the write, and a read
// that raced a write is not kept (a generation counter), so a revoked token
// or an edited service is never served from memory after the write
// returned.
//
// It does not guarantee anything for writes that bypass it: a second
// writer of a cached kind on the same table (another cluster ID is another
// key space, so it does not count) must not exist. Absent records are not
// cached (a guessed token costs a read every time, as before), and a cached
// record that expires is treated as absent at its expiry.
package cache

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

// DefaultMaxEntries bounds the records held when New is given no bound.
const DefaultMaxEntries = 10000

// Store is a store.Store that caches Get of some kinds during a term.
type Store struct {
	store.Store
	clk   clock.Clock
	kinds map[resource.Kind]bool
	max   int

	term atomic.Pointer[term]

	mu   sync.Mutex
	gen  uint64 // bumped by every write of a cached kind and every flush
	recs map[store.Key]store.Record

	hits, misses atomic.Int64
}

type term struct{ done <-chan struct{} }

var _ store.Store = (*Store)(nil)

// New returns a cache of the given kinds in front of inner, holding at most
// max records (DefaultMaxEntries if max <= 0). It serves nothing from
// memory until Begin.
func New(inner store.Store, clk clock.Clock, max int, kinds ...resource.Kind) *Store {
	if clk == nil {
		clk = clock.Real{}
	}
	if max <= 0 {
		max = DefaultMaxEntries
	}
	s := &Store{Store: inner, clk: clk, max: max, kinds: map[resource.Kind]bool{}, recs: map[store.Key]store.Record{}}
	for _, k := range kinds {
		s.kinds[k] = true
	}
	return s
}

// Begin forgets everything and caches until ctx (the lease term's) is done
// or End is called.
func (s *Store) Begin(ctx context.Context) {
	s.flush()
	s.term.Store(&term{done: ctx.Done()})
}

// End forgets everything and stops caching until the next Begin.
func (s *Store) End() {
	s.term.Store(nil)
	s.flush()
}

// Stats reports the reads served from memory and those passed on while
// caching.
func (s *Store) Stats() (hits, misses int64) { return s.hits.Load(), s.misses.Load() }

func (s *Store) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	clear(s.recs)
}

// active reports whether the cache may serve and keep records now.
func (s *Store) active() bool {
	t := s.term.Load()
	if t == nil {
		return false
	}
	select {
	case <-t.done:
		s.term.CompareAndSwap(t, nil)
		s.flush()
		return false
	default:
		return true
	}
}

// Get serves a cached kind from memory during a term, else reads inner.
func (s *Store) Get(ctx context.Context, k store.Key) (store.Record, error) {
	if !s.kinds[k.Kind] || !s.active() {
		return s.Store.Get(ctx, k)
	}
	s.mu.Lock()
	rec, ok := s.recs[k]
	if ok && rec.Expired(s.clk.Now()) {
		delete(s.recs, k)
		s.mu.Unlock()
		return store.Record{}, fmt.Errorf("%s: %w", k, store.ErrNotFound)
	}
	gen := s.gen
	s.mu.Unlock()
	if ok {
		s.hits.Add(1)
		return clone(rec), nil
	}
	s.misses.Add(1)
	rec, err := s.Store.Get(ctx, k)
	if err != nil {
		return rec, err
	}
	s.mu.Lock()
	// A write or a flush since the read began may have made rec stale.
	if s.gen == gen && s.active() {
		if len(s.recs) >= s.max {
			for victim := range s.recs { // any one: map order is random
				delete(s.recs, victim)
				break
			}
		}
		s.recs[k] = clone(rec)
	}
	s.mu.Unlock()
	return rec, nil
}

// invalidate forgets k and makes reads in flight not keep what they read.
func (s *Store) invalidate(k store.Key) {
	if !s.kinds[k.Kind] {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	delete(s.recs, k)
}

// Create writes through to inner, invalidating the record around it.
func (s *Store) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	s.invalidate(rec.Key)
	defer s.invalidate(rec.Key)
	return s.Store.Create(ctx, rec)
}

// Update writes through to inner, invalidating the record around it.
func (s *Store) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	s.invalidate(rec.Key)
	defer s.invalidate(rec.Key)
	return s.Store.Update(ctx, rec)
}

// Delete writes through to inner, invalidating the record around it.
func (s *Store) Delete(ctx context.Context, k store.Key, version int64) error {
	s.invalidate(k)
	defer s.invalidate(k)
	return s.Store.Delete(ctx, k, version)
}

// clone copies what a caller could change in place.
func clone(r store.Record) store.Record {
	r.Data = append([]byte(nil), r.Data...)
	r.Terms = maps.Clone(r.Terms)
	return r
}
