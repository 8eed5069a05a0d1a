package cache_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/internal/store/cache"
	"github.com/autogate/autogate/internal/store/storetest"
)

// The cache is a store like any other, caching the kinds the contract
// suite writes most.
func TestContract(t *testing.T) {
	dbs := map[*testing.T]*bolt.Store{}
	storetest.Run(t, func(t *testing.T, clk clock.Clock) store.Store {
		s, ok := dbs[t]
		if !ok {
			var err error
			if s, err = bolt.Open(filepath.Join(t.TempDir(), "store.db"), clk); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			dbs[t] = s
		}
		c := cache.New(s, clk, 0, resource.KindService, resource.KindDecorator, resource.KindExecution)
		c.Begin(t.Context())
		return c
	})
}

// counting counts the reads that reach the backing store, and can hold one
// read between its store read and its return.
type counting struct {
	store.Store
	gets atomic.Int64
	hold func() // called inside Get after reading, if set
}

func (c *counting) Get(ctx context.Context, k store.Key) (store.Record, error) {
	c.gets.Add(1)
	rec, err := c.Store.Get(ctx, k)
	if c.hold != nil {
		c.hold()
	}
	return rec, err
}

func newCache(t *testing.T) (*cache.Store, *counting, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC())
	b, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	inner := &counting{Store: b}
	return cache.New(inner, clk, 3, resource.KindService, resource.KindToken), inner, clk
}

var (
	svc = store.Key{Cluster: "c", Kind: resource.KindService, Name: "s"}
	tok = store.Key{Cluster: "c", Kind: resource.KindToken, Name: "t"}
	sec = store.Key{Cluster: "c", Kind: resource.KindSecret, Name: "x"}
)

func put(t *testing.T, s store.Store, k store.Key, v string, exp time.Time) store.Record {
	t.Helper()
	rec, err := s.Create(t.Context(), store.Record{Key: k, Data: []byte(`"` + v + `"`), ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func get(t *testing.T, s store.Store, k store.Key) string {
	t.Helper()
	rec, err := s.Get(t.Context(), k)
	if errors.Is(err, store.ErrNotFound) {
		return "<absent>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(rec.Data)
}

func TestReads(t *testing.T) {
	tests := []struct {
		name string
		// run does reads and writes through c and returns what the last
		// read saw.
		run       func(t *testing.T, c *cache.Store, clk *clock.Fake) string
		want      string
		wantReads int64 // reads that reached the store
	}{
		{
			name: "repeated reads during a term are served from memory",
			run: func(t *testing.T, c *cache.Store, _ *clock.Fake) string {
				put(t, c, svc, "v1", time.Time{})
				c.Begin(t.Context())
				for range 4 {
					get(t, c, svc)
				}
				return get(t, c, svc)
			},
			want: `"v1"`, wantReads: 1,
		},
		{
			name: "no caching before Begin",
			run: func(t *testing.T, c *cache.Store, _ *clock.Fake) string {
				put(t, c, svc, "v1", time.Time{})
				get(t, c, svc)
				return get(t, c, svc)
			},
			want: `"v1"`, wantReads: 2,
		},
		{
			name: "kinds not listed always read the store",
			run: func(t *testing.T, c *cache.Store, _ *clock.Fake) string {
				put(t, c, sec, "v1", time.Time{})
				c.Begin(t.Context())
				get(t, c, sec)
				return get(t, c, sec)
			},
			want: `"v1"`, wantReads: 2,
		},
		{
			name: "an update through the cache is seen at once",
			run: func(t *testing.T, c *cache.Store, _ *clock.Fake) string {
				rec := put(t, c, svc, "v1", time.Time{})
				c.Begin(t.Context())
				get(t, c, svc)
				rec.Data = []byte(`"v2"`)
				if _, err := c.Update(t.Context(), rec); err != nil {
					t.Fatal(err)
				}
				return get(t, c, svc)
			},
			want: `"v2"`, wantReads: 2,
		},
		{
			name: "a revoked (deleted) token is absent at once",
			run: func(t *testing.T, c *cache.Store, _ *clock.Fake) string {
				put(t, c, tok, "alice", time.Time{})
				c.Begin(t.Context())
				get(t, c, tok)
				if err := c.Delete(t.Context(), tok, 0); err != nil {
					t.Fatal(err)
				}
				return get(t, c, tok)
			},
			want: "<absent>", wantReads: 2,
		},
		{
			name: "a cached token is absent once it expires",
			run: func(t *testing.T, c *cache.Store, clk *clock.Fake) string {
				put(t, c, tok, "alice", clk.Now().Add(time.Minute))
				c.Begin(t.Context())
				get(t, c, tok)
				clk.Advance(time.Minute)
				return get(t, c, tok)
			},
			want: "<absent>", wantReads: 1,
		},
		{
			name: "absent records are not cached",
			run: func(t *testing.T, c *cache.Store, _ *clock.Fake) string {
				c.Begin(t.Context())
				get(t, c, tok)
				return get(t, c, tok)
			},
			want: "<absent>", wantReads: 2,
		},
		{
			name: "the end of the term's context stops the cache and forgets",
			run: func(t *testing.T, c *cache.Store, _ *clock.Fake) string {
				put(t, c, svc, "v1", time.Time{})
				ctx, end := context.WithCancel(t.Context())
				c.Begin(ctx)
				get(t, c, svc)
				end()
				get(t, c, svc)
				c.Begin(t.Context()) // a new term starts empty
				return get(t, c, svc)
			},
			want: `"v1"`, wantReads: 3,
		},
		{
			name: "End forgets",
			run: func(t *testing.T, c *cache.Store, _ *clock.Fake) string {
				put(t, c, svc, "v1", time.Time{})
				c.Begin(t.Context())
				get(t, c, svc)
				c.End()
				return get(t, c, svc)
			},
			want: `"v1"`, wantReads: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, inner, clk := newCache(t)
			got := tt.run(t, c, clk)
			if got != tt.want {
				t.Errorf("last read: got %s, want %s", got, tt.want)
			}
			if n := inner.gets.Load(); n != tt.wantReads {
				t.Errorf("reads that reached the store: got %d, want %d", n, tt.wantReads)
			}
		})
	}
}

// A read that raced a write must not keep the value it read before the
// write: the next read goes to the store and sees the write.
func TestReadRacingWriteIsNotKept(t *testing.T) {
	c, inner, _ := newCache(t)
	rec := put(t, c, svc, "v1", time.Time{})
	c.Begin(t.Context())
	read, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	inner.hold = func() { once.Do(func() { close(read); <-resume }) }
	done := make(chan string)
	go func() { done <- get(t, c, svc) }()
	<-read // the reader holds "v1", not yet cached
	rec.Data = []byte(`"v2"`)
	if _, err := c.Update(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	close(resume)
	if got := <-done; got != `"v1"` {
		t.Fatalf("racing read: got %s, want the value it read, \"v1\"", got)
	}
	if got := get(t, c, svc); got != `"v2"` {
		t.Errorf("read after the write: got %s, want \"v2\" (the racing read must not be cached)", got)
	}
}

// Holding at most max records, a cache of 3 cannot serve 4 records read
// twice from memory alone.
func TestBound(t *testing.T) {
	c, inner, _ := newCache(t)
	c.Begin(t.Context())
	names := []string{"a", "b", "c", "d"}
	for pass := range 2 {
		for _, n := range names {
			k := store.Key{Cluster: "c", Kind: resource.KindService, Name: n}
			if pass == 0 {
				put(t, c, k, n, time.Time{})
			}
			get(t, c, k)
		}
	}
	if n := inner.gets.Load(); n < 5 || n > 8 {
		t.Errorf("reads that reached the store: got %d, want 5..8 (4 misses, then at least one)", n)
	}
	if hits, _ := c.Stats(); hits > 3 {
		t.Errorf("hits: got %d, want at most 3", hits)
	}
}
