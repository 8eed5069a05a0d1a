package bolt_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/internal/store/storetest"
)

func TestContract(t *testing.T) {
	// One file per test, shared by the two stores a test may ask for, so the
	// cluster-isolation case really shares a database.
	dbs := map[*testing.T]*bolt.Store{}
	storetest.Run(t, func(t *testing.T, clk clock.Clock) store.Store {
		if s, ok := dbs[t]; ok {
			return s
		}
		s, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"), clk)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		dbs[t] = s
		return s
	})
}

func TestReopenKeepsRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := store.Key{Cluster: "default", Kind: resource.KindService, Name: "a"}
	if _, err := s.Create(t.Context(), store.Record{Key: k, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := bolt.Open(path, nil); err == nil {
		t.Error("second Open of a locked file succeeded, want a lock error")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, err := s.Get(t.Context(), k); err != nil || r.Version != 1 {
		t.Fatalf("after reopen Get = %+v, %v; want version 1", r, err)
	}
}

func TestPrune(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, ttl := range []time.Duration{time.Hour, 2 * time.Hour, 0} {
		r := store.Record{Key: store.Key{Cluster: "c", Kind: resource.KindExecution, Name: string(rune('a' + i))}, Data: []byte(`{}`)}
		if ttl > 0 {
			r.ExpiresAt = clk.Now().Add(ttl)
		}
		if _, err := s.Create(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(90 * time.Minute)
	n, err := s.Prune(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1 removed", n, err)
	}
	recs, _, err := s.List(t.Context(), "c", resource.KindExecution, store.ListOptions{})
	if err != nil || len(recs) != 2 {
		t.Fatalf("List after prune = %d records, %v; want 2", len(recs), err)
	}
}

// The free list is not synced (NoFreelistSync): a reopen rebuilds it, so
// the pages of deleted records are reused rather than the file growing.
func TestReopenReusesFreePages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	data := []byte(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)
	fill := func() int64 {
		t.Helper()
		s, err := bolt.Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		var keys []store.Key
		for i := range 2000 {
			k := store.Key{Cluster: "c", Kind: resource.KindExecution, Name: fmt.Sprintf("e%05d", i)}
			if _, err := s.Create(t.Context(), store.Record{Key: k, Data: data}); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		for _, k := range keys {
			if err := s.Delete(t.Context(), k, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	first := fill()
	second := fill()
	if second > first+first/4 {
		t.Errorf("file %d bytes after a second fill, %d after the first: freed pages were not reused after the reopen", second, first)
	}
}
