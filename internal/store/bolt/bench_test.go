package bolt_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
)

// BenchmarkCreate measures one durable (fsynced) write at a time, and
// BenchmarkCreateParallel many at once, which bbolt's Batch coalesces.
func BenchmarkCreate(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "s.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.Create(b.Context(), store.Record{Key: store.Key{Cluster: "c", Kind: resource.KindExecution, Name: fmt.Sprint(i)}, Data: []byte(`{"status":"queued"}`)}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateParallel(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "s.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var n atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := store.Key{Cluster: "c", Kind: resource.KindExecution, Name: fmt.Sprint(n.Add(1))}
			if _, err := s.Create(b.Context(), store.Record{Key: k, Data: []byte(`{"status":"queued"}`)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
