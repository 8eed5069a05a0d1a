package fence_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/internal/store/fence"
)

// view stands for a term's fenced view: it counts the writes it is handed
// and forwards them to the raw store.
type view struct {
	store.Store
	writes atomic.Int32
}

func (v *view) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	v.writes.Add(1)
	return v.Store.Create(ctx, rec)
}

func (v *view) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	v.writes.Add(1)
	return v.Store.Update(ctx, rec)
}

func (v *view) Delete(ctx context.Context, k store.Key, version int64) error {
	v.writes.Add(1)
	return v.Store.Delete(ctx, k, version)
}

// fakeLease hands out terms the test ends by hand, as a lease's renewal
// failure would: the term's ctx is cancelled first.
type fakeLease struct{ epoch int64 }

func (l *fakeLease) term(ctx context.Context) (context.Context, lease.Term, context.CancelFunc) {
	l.epoch++
	tctx, cancel := context.WithCancel(ctx)
	return tctx, lease.Term{Holder: "n1", Epoch: l.epoch}, cancel
}

func key(name string) store.Key {
	return store.Key{Cluster: "c1", Kind: resource.KindService, Name: name}
}

func setup(t *testing.T) (*bolt.Store, *fence.Store) {
	t.Helper()
	raw, err := bolt.Open(filepath.Join(t.TempDir(), "db"), clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw, fence.New(raw)
}

// refused checks that every kind of write is refused with ErrNotLeader and
// that the raw store still holds exactly want (nil: nothing under key a).
func refused(t *testing.T, raw store.Store, s *fence.Store, want *store.Record) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.Create(ctx, store.Record{Key: key("b"), Data: []byte(`{}`)}); !errors.Is(err, lease.ErrNotLeader) {
		t.Errorf("create: got %v want lease.ErrNotLeader", err)
	}
	if _, err := s.Update(ctx, store.Record{Key: key("a"), Version: 1, Data: []byte(`{"v":2}`)}); !errors.Is(err, lease.ErrNotLeader) {
		t.Errorf("update: got %v want lease.ErrNotLeader", err)
	}
	if err := s.Delete(ctx, key("a"), 0); !errors.Is(err, lease.ErrNotLeader) {
		t.Errorf("delete: got %v want lease.ErrNotLeader", err)
	}
	if _, err := raw.Get(ctx, key("b")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused create landed: %v", err)
	}
	got, err := raw.Get(ctx, key("a"))
	switch {
	case want == nil && !errors.Is(err, store.ErrNotFound):
		t.Errorf("record a: got %v, %v want none", got, err)
	case want != nil && (err != nil || got.Version != want.Version || string(got.Data) != string(want.Data)):
		t.Errorf("record a: got version %d %s, %v want version %d %s", got.Version, got.Data, err, want.Version, want.Data)
	}
}

func TestWritesBeforeAnyTermAreRefused(t *testing.T) {
	raw, s := setup(t)
	refused(t, raw, s, nil)
}

func TestWritesGoToTheTermsView(t *testing.T) {
	raw, s := setup(t)
	l := &fakeLease{}
	ctx, _, end := l.term(t.Context())
	defer end()
	v := &view{Store: raw}
	s.Begin(ctx, v)
	rec, err := s.Create(t.Context(), store.Record{Key: key("a"), Data: []byte(`{"v":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	rec.Data = []byte(`{"v":2}`)
	if _, err := s.Update(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), key("a"), 0); err != nil {
		t.Fatal(err)
	}
	if got := v.writes.Load(); got != 3 {
		t.Errorf("writes through the view: got %d want 3", got)
	}
}

func TestWritesAfterTheTermEndedAreRefusedAndLandNowhere(t *testing.T) {
	tests := []struct {
		name string
		end  func(cancel context.CancelFunc, s *fence.Store)
	}{
		// The term's ctx is done but the leader duty has not yet called
		// End: the fence must already hold.
		{"term ctx cancelled", func(cancel context.CancelFunc, _ *fence.Store) { cancel() }},
		{"End called", func(_ context.CancelFunc, s *fence.Store) { s.End() }},
		{"both", func(cancel context.CancelFunc, s *fence.Store) { cancel(); s.End() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, s := setup(t)
			l := &fakeLease{}
			ctx, _, cancel := l.term(t.Context())
			defer cancel()
			v := &view{Store: raw}
			s.Begin(ctx, v)
			rec, err := s.Create(t.Context(), store.Record{Key: key("a"), Data: []byte(`{"v":1}`)})
			if err != nil {
				t.Fatal(err)
			}
			tt.end(cancel, s)
			refused(t, raw, s, &rec)
			if got := v.writes.Load(); got != 1 {
				t.Errorf("writes handed to the ended term's view: got %d want 1", got)
			}
			// Reads are not fenced.
			if got, err := s.Get(t.Context(), key("a")); err != nil || got.Version != rec.Version {
				t.Errorf("read after the term: got %+v, %v", got, err)
			}
		})
	}
}

func TestANewTermWritesThroughItsOwnView(t *testing.T) {
	raw, s := setup(t)
	l := &fakeLease{}
	ctx1, _, end1 := l.term(t.Context())
	old := &view{Store: raw}
	s.Begin(ctx1, old)
	end1()
	s.End()
	ctx2, term2, end2 := l.term(t.Context())
	defer end2()
	if term2.Epoch != 2 {
		t.Fatalf("epoch %d", term2.Epoch)
	}
	cur := &view{Store: raw}
	s.Begin(ctx2, cur)
	if _, err := s.Create(t.Context(), store.Record{Key: key("a"), Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if old.writes.Load() != 0 || cur.writes.Load() != 1 {
		t.Errorf("writes: old term %d, new term %d; want 0 and 1", old.writes.Load(), cur.writes.Load())
	}
}
